"""The first case on tiny sizes: comparisons, facts, growth, histograms, kernels/determinism sections."""

import pytest
import torch

from reportgen.cases import CaseSkipped, get

TINY = {"batch": 2, "length": 16, "growth_depths": [1, 2, 4], "growth_in_features": [8, 64], "growth_rows": 32}


def run(cpu_ctx, dtype=torch.float32, **extra):
    info = get("linear_vs_conv1d")
    return info.run(cpu_ctx({**info.defaults, **TINY, **extra}, dtype=dtype, timing_enabled=False))


def test_forward_and_gradients_within_their_bounds(cpu_ctx):
    out = run(cpu_ctx)
    groups = {c["group"] for c in out.comparisons}
    assert groups == {"fwd", "grad.weight", "grad.bias", "grad.input"}
    assert len(out.comparisons) == 12  # per group: Linear vs fp64, Conv1d vs fp64, Linear vs Conv1d
    for c in out.comparisons:
        assert c["verdict"] in ("identical", "within rounding"), c
        assert c["max_normalised"] is not None and c["max_normalised"] <= 1
    assert out.facts["fwd.linear_vs_conv1d.verdict"] in ("identical", "within rounding")
    assert 0 <= out.facts["fwd.linear_vs_conv1d.bitwise_equal_fraction"] <= 1


def test_a_tighter_tolerance_flips_the_verdict(cpu_ctx):
    # bound_factor shrinks the allowed error: a real (nonzero) difference must then be reported out of bound
    loose = run(cpu_ctx)
    diff = loose.facts["fwd.linear_vs_ref.max_abs"]
    assert diff > 0, "Linear must differ from the float64 reference somewhere for this test to mean anything"
    tight = get("linear_vs_conv1d").run(cpu_ctx({**get("linear_vs_conv1d").defaults, **TINY}, timing_enabled=False,
                                                bound_factor=1e-9))
    assert tight.facts["fwd.linear_vs_ref.verdict"] == "out of bound"


def test_growth_plots_tables_and_histograms(cpu_ctx):
    out = run(cpu_ctx)
    ids = {p["id"] for p in out.plots}
    assert {"diff_hist", "growth_depth", "growth_k"} <= ids
    depth = next(t for t in out.tables if t["title"] == "Growth with depth")
    assert [r[0] for r in depth["rows"]] == [1, 2, 4]
    hist = next(p for p in out.plots if p["id"] == "diff_hist")
    for h in hist["series"]:
        assert sum(h["counts"]) + h["zeros"] == h["total"]


def test_growth_runs_the_forward_comparisons_conv_kernel_or_says_it_did_not(cpu_ctx):
    # ATen picks Conv1d's CPU backend from the shapes: the growth stacks once used a batch of 1 and ran im2col + the
    # MKL GEMM Linear runs (difference 0 at every depth) while the forward comparison ran oneDNN.
    from reportgen.claims import NOT_MEASURABLE, evaluate_claim
    from reportgen.results import CaseResult
    from reportgen.suite import load_suite
    same = run(cpu_ctx).facts
    assert same["growth.conv_op"] == same["forward.conv_op"] and same["growth.conv_path_as_forward"] is True
    # fewer rows than 2 per sample of the batch: still 2 positions per sample (with 1, oneDNN's 1x1 conv reduces
    # like Linear's GEMM and the difference is 0 at every depth)
    short = run(cpu_ctx, batch=128, growth_rows=200, growth_depths=[1, 4]).facts
    assert short["growth.depth.diff_last"] > 0 and short["growth.conv_path_as_forward"] is True
    # a batch of 1 with a long input (oneDNN) vs short growth rows (im2col + GEMM in ATen 2.13's heuristic)
    other = run(cpu_ctx, batch=1, length=4096, growth_rows=64)
    f = other.facts
    assert f["forward.conv_op"] != f["growth.conv_op"], (f["forward.conv_op"], f["growth.conv_op"])
    assert f["growth.conv_path_as_forward"] is None and any("growth stacks' Conv1d ran" in n for n in other.notes)
    claim = next(c for c in load_suite("quick").cases[0].claims if c.id == "conv1d-linear-diff-grows-with-depth")
    def verdict(facts):
        r = CaseResult(id="linear_vs_conv1d/cpu/float32", case="linear_vs_conv1d", kind="linear_vs_conv1d",
                       description="", device="cpu", dtype="float32", params={}, seed=0, status="ok", facts=facts)
        return evaluate_claim(claim, "linear_vs_conv1d", [r])
    judged = verdict(f)  # not measurable here, not "does not hold" on a kernel the claim is not about
    assert judged["verdict"] == NOT_MEASURABLE and "growth.conv_path_as_forward true" in judged["reason"]
    assert verdict(same)["verdict"] != NOT_MEASURABLE


def test_kernels_and_determinism_sections(cpu_ctx):
    out = run(cpu_ctx)
    k, d = out.extra["kernels"], out.extra["determinism"]
    assert [line.split(" -> ")[0] for line in k["summary"]] == ["Linear", "Conv1d"]
    assert out.facts["determinism.linear.self_consistent"] is True
    assert out.facts["determinism.conv1d.self_consistent"] is True
    assert "facts" in d
    # the matrix's baseline is the forward comparison again (same pair, input and bound), not another draw
    fwd = next(c for c in out.comparisons if c["name"] == "fwd: Linear vs Conv1d")
    base = d["matrix"]["baseline"]["pairs"]["Linear vs Conv1d"]
    assert base["max_normalised"] == pytest.approx(fwd["max_normalised"])
    assert base["differing_fraction"] == pytest.approx(1 - fwd["bitwise_equal_fraction"])
    assert any(n.startswith("Kernels and determinism: the forward of Linear") for n in out.notes)


def test_markdown_says_which_kernels_ran_and_whether_each_side_repeats(cpu_ctx):
    # A ticket's reader first asks why the two differ and whether either side is reproducible: the Markdown answers
    # from the recorded sections, and says so when a side did not repeat or a setting changed its bits.
    import copy
    import json
    from pathlib import Path

    from reportgen.render.markdown import render_markdown
    out = run(cpu_ctx)
    run_ = json.loads((Path(__file__).parent / "fixtures" / "results_v1.json").read_text())
    case = run_["cases"][0]
    case["extra"] = json.loads(json.dumps(out.extra))
    md = render_markdown(run_)
    assert "- Linear → aten::" in md and "- Conv1d → aten::" in md
    repro = next(line for line in md.splitlines() if line.startswith("Reproducible:"))
    assert repro.startswith("Reproducible: Conv1d, Linear: bitwise identical over")  # sides in sorted order
    det = case["extra"]["determinism"]
    flipped = copy.deepcopy(run_)
    fdet = flipped["cases"][0]["extra"]["determinism"]
    fdet["self"]["Conv1d"]["self_consistent"] = False
    cell = next(c for c in det["matrix"] if c != "baseline")
    fdet["matrix"][cell]["sides"]["Linear"].update(bitwise_equal=False, max_normalised=0.5)
    md2 = render_markdown(flipped)
    repro2 = next(line for line in md2.splitlines() if line.startswith("Reproducible:"))
    assert "Conv1d: **not** bitwise identical" in repro2
    assert "Linear 0.5" in repro2.split(f"{cell} (")[1].split(")")[0]
    # a check that failed is reported as such, and a cell that could not run is not counted as "no change"
    broken = copy.deepcopy(run_)
    bdet = broken["cases"][0]["extra"]["determinism"]
    bdet["self"]["Conv1d"] = {"error": "RuntimeError: boom"}
    for c in bdet["matrix"]:
        if c != "baseline":
            bdet["matrix"][c] = {"error": "RuntimeError: refused"}
    repro3 = next(line for line in render_markdown(broken).splitlines() if line.startswith("Reproducible:"))
    assert "Conv1d: not checked (RuntimeError: boom)" in repro3 and "no settings cell ran" in repro3
    assert "Cells that could not run: " in repro3 and "none of" not in repro3


def test_unsupported_dtype_is_skipped_not_errored(cpu_ctx):
    from reportgen.cases.linear_vs_conv1d import _check_dtype_supported
    _check_dtype_supported(torch.device("cpu"), torch.float32)  # supported: no exception
    with pytest.raises(CaseSkipped):
        _check_dtype_supported(torch.device("cpu"), torch.int32)  # no integer conv kernel on CPU


def test_timing_records_raw_samples_and_ratio(cpu_ctx):
    info = get("linear_vs_conv1d")
    out = info.run(cpu_ctx({**info.defaults, **TINY}, timing_rounds=3, timing_min_sample_s=0.001))
    assert len(out.timings) == 4
    for t in out.timings:
        assert t["runs"] == 3 and len(t["samples_s"]) == 3 and t["median_s"] > 0
    assert out.facts["timing.forward.conv1d_over_linear"] > 0


def _claim_verdict(facts: dict, claim_id: str) -> str:
    from reportgen.claims import evaluate
    from reportgen.results import CaseResult
    from reportgen.suite import load_suite
    spec = load_suite("default").select(("linear_vs_conv1d",))
    r = CaseResult(id="linear_vs_conv1d/cpu/float32", case="linear_vs_conv1d", kind="linear_vs_conv1d",
                   description="", device="cpu", dtype="float32", params={}, seed=0, status="ok", facts=facts)
    return next(c for c in evaluate(spec, [r]) if c["id"] == claim_id)["verdict"]


def test_reduced_precision_is_not_blamed_on_the_formulation(cpu_ctx):
    from reportgen.measure.settings import applied_settings
    base = run(cpu_ctx)
    assert base.facts["precision.reduced_paths"] == "none" and base.facts["precision.reduced_used"] is False
    assert base.facts["precision.full"] is True
    with applied_settings(mkldnn_conv_fp32_precision="bf16"):
        bf16 = run(cpu_ctx)
    assert bf16.facts["precision.reduced_paths"] == "oneDNN conv BF16"
    # on CPU, oneDNN's implementation names do not say whether BF16 math was used: unknown, not "no"
    assert bf16.facts["precision.reduced_used"] is None and bf16.facts["precision.full"] is None
    assert any("Reduced-precision paths enabled" in n for n in bf16.notes)
    # An out-of-bound difference counts for "Conv1d captures correlation" only on a result known to be full fp32;
    # otherwise the claim cannot be judged from it (whether oneDNN really used BF16 depends on the CPU, so the
    # verdicts are set by hand).
    oob = {**base.facts, "fwd.linear_vs_conv1d.verdict": "out of bound"}
    claim = "conv1d-captures-correlation"
    assert _claim_verdict(oob, claim) == "holds"
    assert _claim_verdict({**oob, "precision.full": None}, claim) == "not measurable here"
    assert _claim_verdict(base.facts, claim) == "does not hold"
    # The real BF16 run: on a CPU with BF16 units oneDNN takes the path (here: the Conv1d input gradient went out
    # of the fp32 bound), and the claim that would otherwise "hold" on it is not measurable; elsewhere it is
    # within rounding and does not hold.
    oob_real = any(v == "out of bound" for k, v in bf16.facts.items() if k.endswith("linear_vs_conv1d.verdict"))
    assert _claim_verdict(bf16.facts, claim) == ("not measurable here" if oob_real else "does not hold")
    if oob_real:
        assert _claim_verdict({**bf16.facts, "precision.full": True}, claim) == "holds"

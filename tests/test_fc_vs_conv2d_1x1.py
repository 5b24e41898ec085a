"""fc_vs_conv2d_1x1 on tiny sizes: structure, computed facts, the bound's power, and the claim rule flipping."""

from __future__ import annotations

import json

import pytest
import torch

from reportgen import cases
from reportgen.cases.fc_vs_conv2d_1x1 import LinearModel, _fill, _layer_params, reference_with_bounds
from reportgen.errors import UsageError
from reportgen.measure.numerics import compare
from reportgen.results import CaseResult
from reportgen.suite import load_suite

TINY = {"batch_size": 2, "samples": 3, "input_dim": 8, "widths": [4, 6, 8], "num_classes": 2,
        "variants": [{"activation": "elu", "init": 1.0}, {"activation": "sigmoid", "init": 0.001}],
        "published_seeds": 2}


def _run(cpu_ctx, dtype=torch.float32, **overrides):
    info = cases.get("fc_vs_conv2d_1x1")
    return info.run(cpu_ctx({**info.defaults, **TINY, **overrides}, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_run_structure_and_facts(cpu_ctx, dtype):
    out = _run(cpu_ctx, dtype)
    # (the thread's code + 2 variants) x 2 settings x (feats, logits) x (Linear vs Conv, Linear vs ref, Conv vs ref)
    # + 2 semantics comparisons
    assert len(out.comparisons) == 2 * 2 * 3 + 2 * 2 * 3 + 2
    assert sum(c["group"] == "published" for c in out.comparisons) == 2 * 2 * 3
    assert out.facts["fwd.verdict"] in ("identical", "within rounding")
    assert out.facts["fwd.max_normalised"] <= 1.0
    assert out.facts["fwd.each_side_vs_ref.verdict"] in ("identical", "within rounding")
    # ones weights and ELU make the values grow layer by layer; sigmoid with 0.001 keeps them small
    assert out.facts["fwd.elu_w1.logits.value_max_abs"] > out.facts["fwd.elu_w1.layer1.value_max_abs"]
    assert out.facts["fwd.sigmoid_w0p001.logits.value_max_abs"] < 1.0
    for key in ("max_abs", "max_rel", "max_normalised", "bitwise_equal_fraction", "verdict"):
        assert f"fwd.elu_w1.feats.{key}" in out.facts
    assert out.facts["semantics.conv1x1_per_position"] is True
    assert out.facts["semantics.conv1x1.out_shape"] == "2x4x3x1"
    assert out.facts["semantics.kernel_sx1.out_shape"] == "2x4x1x1"
    assert out.facts["semantics.kernel_sx1_vs_flatten_linear.verdict"] in ("identical", "within rounding")
    ids = [p["id"] for p in out.plots]
    assert len(ids) == len(set(ids)) and {"rel_per_layer", "normalised_per_layer"} <= set(ids)
    # the thread's code (2 settings x 2 outputs, and the same for samples = 1), the same over 2 seeds, then the
    # variants' per-layer table (2 variants x (3 layers + logits)) and the semantics table
    assert [len(t["rows"]) for t in out.tables] == [8, 2, 2 * 4, 4]
    json.dumps(out.__dict__)  # everything must be JSON-able


def test_bound_holds_and_a_perturbation_breaks_it():
    """The propagated bound contains the real float32 error, and is tight enough to catch a small change."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    model = LinearModel([8, 4, 6, 8], 2, torch.nn.ELU)
    _fill(model, 1.0)
    with torch.no_grad():
        outs = model.forward_all(x)
    refs, bounds = reference_with_bounds(x, _layer_params(model), "elu", torch.float32)
    logits, ref, bound = outs[-1], refs[-1], bounds[-1]
    assert compare(logits, ref, bound, name="l", actual_label="a", expected_label="r").verdict != "out of bound"
    bumped = logits.double() + 3 * bound  # 3 bounds away: no rounding explains this
    assert compare(bumped.float(), ref, bound, name="l", actual_label="a",
                   expected_label="r").verdict == "out of bound"
    # relative to the magnitude the bound is small: values are large, the allowed error is a tiny fraction
    assert float((bound / ref.abs()).max()) < 1e-3


@pytest.mark.parametrize("variants, match", [
    ([{"activation": "relu", "init": 1.0}], "variants\\[0\\].activation"),
    ([{"activation": "elu"}], "variants\\[0\\]"),
    ([], "variants"),
])
def test_bad_variants_name_the_key(cpu_ctx, variants, match):
    with pytest.raises(UsageError, match=match):
        _run(cpu_ctx, variants=variants)


def _claim(case: str, claim_id: str, suite: str = "default"):
    spec = load_suite(suite).select((case,))
    return spec, next(c for c in spec.cases[0].claims if c.id == claim_id)


def _verdict(spec, facts: dict) -> str:
    from reportgen.claims import evaluate

    r = CaseResult(id=f"{spec.cases[0].name}/cpu/float32", case=spec.cases[0].name, kind=spec.cases[0].kind,
                   description="", device="cpu", dtype="float32", params={}, seed=0, status="ok", facts=facts)
    return evaluate(spec, [r])[0]["verdict"]


@pytest.mark.parametrize("suite", ["default", "quick"])
def test_claim_rule_flips(cpu_ctx, suite):
    """The claim is judged on the thread's code as published (published.fwd.*), not on the case's own input."""
    spec, _ = _claim("fc_vs_conv2d_1x1", "fc-vs-conv1x1-rounding-only", suite)
    facts = _run(cpu_ctx).facts
    within = facts["published.fwd.verdict"] in ("identical", "within rounding")
    expected = "holds" if within and facts["published.fwd.max_rel"] < 1e-4 else "does not hold"
    assert _verdict(spec, facts) == expected
    # the variant's facts do not decide it
    assert _verdict(spec, {**facts, "fwd.verdict": "out of bound", "fwd.max_rel": 1.0}) == expected
    ok = {**facts, "published.fwd.verdict": "within rounding", "published.fwd.max_rel": 1e-5}
    assert _verdict(spec, ok) == "holds"
    assert _verdict(spec, {**ok, "published.fwd.verdict": "out of bound"}) == "does not hold"
    assert _verdict(spec, {**ok, "published.fwd.max_rel": 1e-3}) == "does not hold"
    assert _verdict(spec, {}) == "not measurable here"


def test_the_threads_code_runs_first_on_the_threads_input(cpu_ctx):
    from reportgen.cases.fc_vs_conv2d_1x1 import PUBLISHED
    from reportgen.published import run_published
    out = _run(cpu_ctx)  # the variants at tiny sizes; the thread's code at its own
    sec = out.extra["published"]
    assert sec["source"] == "https://discuss.pytorch.org/t/implement-fully-connected-using-1x1-conv/114630"
    assert "torch.manual_seed(2010)" in sec["snippet"] and "x.unsqueeze(3).permute(0, 2, 1, 3)" in sec["snippet"]
    assert any("reconstructed" in e for e in sec["edits"]) and sec["departures"]
    assert "tensor(" in sec["printed"]  # the snippet's own print ran
    assert out.facts["published.input_seed"] == 2010
    run = run_published(PUBLISHED, {"__name__": "__main__"})
    torch.manual_seed(2010)
    assert torch.equal(run["x"], torch.randn(16, 5, 256))  # the thread's input, not the case's
    # the judged numbers are the snippet's: its Linear-vs-Conv difference on the logits, bit for bit
    d = float((run["logits"].detach().double() - run["logits_conv"].detach().double()).abs().max())
    assert out.facts["published.elu_w1.logits.max_abs"] == d
    assert out.facts["published.elu_w1.logits.value_max_abs"] > 1e7  # ones and ELU: the logits grow to ~1e8
    assert out.facts["published.fwd.max_rel"] == max(out.facts[f"published.{s}.{o}.max_rel"]
                                                     for s in ("elu_w1", "sigmoid_w0p001")
                                                     for o in ("feats", "logits"))
    # the follow-up samples = 1 ran the same code on (16, 1, 256)
    assert out.facts["published.samples1.elu_w1.logits.max_abs"] is not None
    # over seeds: the thread's seed first, then others, the first entry the main run's own number
    assert out.facts["published.seeds.n"] == 2
    assert out.facts["published.seeds.max_rel"][0] == out.facts["published.fwd.max_rel"]
    assert out.facts["published.seeds.max_rel"][1] != out.facts["published.seeds.max_rel"][0]


def test_a_robustness_run_reruns_the_threads_code_on_the_case_seed(cpu_ctx):
    info = cases.get("fc_vs_conv2d_1x1")
    out = info.run(cpu_ctx({**info.defaults, **TINY}, robustness_run=True))
    main = _run(cpu_ctx).facts
    assert out.facts["published.input_seed"] == 0  # cpu_ctx's seed
    assert "torch.manual_seed(0)" in out.extra["published"]["snippet"]
    assert "torch.manual_seed(2010)" not in out.extra["published"]["snippet"]
    assert out.facts["published.elu_w1.logits.max_abs"] != main["published.elu_w1.logits.max_abs"]
    # the variants are the same; the sweep over seeds and the kernels/determinism sections are main-run only
    assert out.facts["fwd.max_rel"] == main["fwd.max_rel"]
    assert "published.seeds.n" not in out.facts and "kernels" not in out.extra


def test_kernels_and_determinism_sections(cpu_ctx):
    """Both models' implementations are named per side, and each side's reproducibility is measured, on CPU."""
    out = _run(cpu_ctx)
    k, d = out.extra["kernels"], out.extra["determinism"]
    sides = ("Linear MLP", "1x1 Conv2d MLP")
    assert set(k["sides"]) == set(sides) and len(k["summary"]) == 2
    for label, key, line in zip(sides, ("linear_mlp", "1x1_conv2d_mlp"), k["summary"]):
        assert line.startswith(label + " -> ") and "error" not in k["sides"][label]
        assert out.facts[f"kernels.{key}.impl"] == k["sides"][label]["impl"] != "unknown"
    # the Linear side is a matmul, the conv side a convolution: the dispatch chains say so
    assert any("mm" in op for op in k["sides"]["Linear MLP"]["profile"]["chain"])  # addmm / matmul
    assert any("conv" in op for op in k["sides"]["1x1 Conv2d MLP"]["profile"]["chain"])
    for key in ("linear_mlp", "1x1_conv2d_mlp"):
        consistent = out.facts[f"determinism.{key}.self_consistent"]
        assert consistent == (out.facts[f"determinism.{key}.distinct_outputs"] == 1)
        assert consistent is True  # plain CPU GEMM/conv kernels: same bits every call
    assert d["repeats"] == 3 and set(d["matrix"]) >= {"baseline", "deterministic algorithms", "oneDNN off"}
    pair = d["matrix"]["baseline"]["pairs"]["Linear MLP vs 1x1 Conv2d MLP"]
    fact = "determinism.linear_mlp_vs_1x1_conv2d_mlp.baseline"
    assert out.facts[f"{fact}.bitwise_equal"] == pair["bitwise_equal"]
    # within the summed propagated bound, as the case's own logits comparison found
    assert out.facts[f"{fact}.max_normalised"] <= 1.0
    assert out.facts[f"{fact}.bitwise_equal"] == (out.facts["fwd.elu_w1.logits.bitwise_equal_fraction"] == 1.0)
    json.dumps(out.extra)

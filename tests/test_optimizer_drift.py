"""optimizer_drift on tiny sizes: the published one-step protocol, drift traces and their classification."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from reportgen.cases import get
from reportgen.cases.optimizer_drift import PUBLISHED, _GROWTH, _ROUNDING_LEVEL_U, _log_points, _Trace, _trend
from reportgen.claims import evaluate_rule
from reportgen.suite import load_suite
from reportgen.results import sanitize

TINY = {"seeds": 12, "steps": 15, "adam_lrs": [0.5], "sgd_lrs": [0.1], "mse_adam_lrs": [0.5], "mse_sgd_lrs": [],
        "thread_check_seeds": 3, "plot_points": 6, "published_seeds": 30, "robustness_block": 10}


def run(cpu_ctx, dtype=torch.float32, **over):
    info = get("optimizer_drift")
    return info.run(cpu_ctx({**info.defaults, **TINY, **over}, dtype=dtype))


@pytest.fixture(scope="module")
def out32():
    from reportgen.cases import CaseContext
    info = get("optimizer_drift")
    ctx = CaseContext(name="t", params={**info.defaults, **TINY}, device=torch.device("cpu"), dtype=torch.float32,
                      seed=0)
    return info.run(ctx)


def test_published_protocol_runs_first_as_code(out32):
    """The post's protocol runs as text (the snippet shown in the report), its facts under published.*."""
    f, sec = out32.facts, out32.extra["published"]
    assert sec["snippet"] == PUBLISHED.snippet.replace("range(1000)", "range(30)", 1)
    for line in ("x = torch.rand((10, 3, 3), generator=gen)", "out_l = linear(x)",
                 "out_c = conv(x.transpose(1, 2)).transpose(1, 2)", "out.sum(2).mean().backward()",
                 "torch.manual_seed(seed)", "conv = nn.Conv1d(3, 2, 1)"):
        assert line in sec["snippet"]
    assert any("reconstruction" in e for e in sec["edits"]) and any("range(30)" in e for e in sec["edits"])
    assert sec["departures"] and "within 1e-7:" in sec["printed"]
    assert f["published.seeds"] == 30 and f["published.first_seed"] == 0 and f["published.reconstructed"] is True
    assert 1.0 >= f["published.frac_within_1e-6"] >= f["published.frac_within_1e-7"] >= f["published.frac_equal"]
    assert f["published.threads"] == torch.get_num_threads()
    assert any(t["title"].startswith("One Adam step (lr 0.5): the published protocol") for t in out32.tables)


def test_published_protocol_is_not_the_variant(out32):
    """Seed 0 of the post's protocol, written out here: (N, L, C), default init under the seed. The case's
    published fact for it must be this computation's (the variant, (N, C, L) with drawn parameters, is another)."""
    torch.manual_seed(0)
    conv, lin = torch.nn.Conv1d(3, 2, 1), torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(conv.weight[..., 0]), lin.bias.copy_(conv.bias)
    x = torch.rand((10, 3, 3), generator=torch.Generator().manual_seed(0))
    for m, y in ((lin, lambda: lin(x)), (conv, lambda: conv(x.transpose(1, 2)).transpose(1, 2))):
        opt = torch.optim.Adam(m.parameters(), lr=0.5)
        y().sum(2).mean().backward()
        opt.step()
    with torch.no_grad():
        d = max(float((lin.weight.double() - conv.weight[..., 0].double()).abs().max()),
                float((lin.bias.double() - conv.bias.double()).abs().max()))
    assert d <= out32.facts["published.max_dparam"]
    assert (d == 0.0) <= (out32.facts["published.frac_equal"] > 0) and (d <= 1e-7) <= (
        out32.facts["published.frac_within_1e-7"] > 0)


def test_claims_are_judged_on_the_published_facts(out32):
    for suite in ("default", "quick"):
        case = next(c for c in load_suite(suite).cases if c.name == "optimizer_drift")
        claim = next(c for c in case.claims if c.id == "adam-one-step-1e-6-not-1e-7")
        outcome, evidence = evaluate_rule(claim.rule, out32.facts)
        f = out32.facts
        expected = f["published.frac_within_1e-6"] == 1.0 and f["published.frac_within_1e-7"] < 1.0
        assert outcome == ("true" if expected else "false")
        assert {e["fact"] for e in evidence} <= {"published.frac_within_1e-6", "published.frac_within_1e-7"}


def test_robustness_rerun_moves_the_published_seeds(cpu_ctx):
    """A robustness rerun on another seed runs the published protocol on another block of seeds (said so in the
    edits) and skips what no claim reads (the variant, thread check, kernels)."""
    info = get("optimizer_drift")
    out = info.run(replace(cpu_ctx({**info.defaults, **TINY}, robustness_run=True), seed=2))
    sec, f = out.extra["published"], out.facts
    assert sec["seed_call"] == "range(60, 70)" and "range(60, 70)" in sec["snippet"] and "range(30)" not in sec["snippet"]
    assert any("range(1000) replaced by range(60, 70)" in e for e in sec["edits"])
    assert f["published.first_seed"] == 60 and f["published.seeds"] == 10
    assert not any(k.startswith(("onestep.", "threads.", "kernels.", "determinism.", "drift_mse.", "drift.sgd"))
                   for k in f)
    assert "drift.adam.lr0.5.rel_dparam_final" in f  # what the many-steps claim reads


def test_one_step_fractions_are_consistent(out32):
    f = out32.facts
    assert f["onestep.seeds"] == TINY["seeds"]
    assert 1.0 >= f["onestep.frac_within_1e-6"] >= f["onestep.frac_within_1e-7"] >= f["onestep.frac_equal"] >= 0.0
    # The two float32 models are each a rounding away from the float64 one, so from each other too: a few units
    # of u at the parameters' magnitude, not more.
    assert f["onestep.max_dparam_over_u_param"] < 64
    assert f["onestep.max_dparam"] <= f["onestep.linear_vs_fp64_max"] + f["onestep.conv1d_vs_fp64_max"] + 1e-12


def test_one_step_matches_an_independent_rerun_of_the_protocol(out32):
    """Re-implement the published protocol for seed 0 directly and check the case's histogram counts it."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((10, 3, 3), generator=gen)
    w = (torch.rand((2, 3), generator=gen, dtype=torch.float64) * 2 - 1) / 3 ** 0.5
    b = (torch.rand((2,), generator=gen, dtype=torch.float64) * 2 - 1) / 3 ** 0.5
    conv, lin = torch.nn.Conv1d(3, 2, 1), torch.nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(w[..., None]), conv.bias.copy_(b), lin.weight.copy_(w), lin.bias.copy_(b)
    for m, y in ((conv, lambda: conv(x)), (lin, lambda: lin(x.transpose(1, 2)).transpose(1, 2))):
        opt = torch.optim.Adam(m.parameters(), lr=0.5)
        y().sum(2).mean().backward()
        opt.step()
    with torch.no_grad():
        d = max(float((lin.weight - conv.weight[..., 0]).abs().max()), float((lin.bias - conv.bias).abs().max()))
    assert d <= out32.facts["onestep.max_dparam"]


def test_drift_facts_plots_and_json(out32):
    f = out32.facts
    for prefix in ("drift.adam.lr0.5", "drift.sgd.lr0.1", "drift_mse.adam.lr0.5"):
        assert f[f"{prefix}.trend"] in ("rounding level", "grows", "saturates")
        assert f[f"{prefix}.max_dparam_final"] >= 0
        assert f[f"{prefix}.param_max_final"] > 0
        assert 0 <= f[f"{prefix}.equal_steps_fraction"] <= 1
    assert not any(k.startswith("drift_mse.sgd") for k in f)  # mse_sgd_lrs is empty
    ids = [p["id"] for p in out32.plots]
    assert len(ids) == len(set(ids))
    assert {"onestep_hist", "drift_published_dparam", "drift_published_dloss", "drift_mse_dparam"} <= set(ids)
    for p in out32.plots:
        if p["kind"] == "line":
            for s in p["series"]:
                assert all(y > 0 for y in s["y"]) and len(s["x"]) == len(s["y"])  # log axes: no zeros
    json.dumps(sanitize({"facts": f, "plots": out32.plots, "tables": out32.tables}), allow_nan=False)


def test_published_loss_adam_moves_parameters_by_about_lr_per_step(out32):
    # output.sum(2).mean() is linear in the parameters: Adam's steps are ~lr each, so |param| grows ~ lr * steps.
    assert out32.facts["drift.adam.lr0.5.param_max_final"] > 0.5 * 0.5 * TINY["steps"]


def test_float64_models_coincide_with_the_reference(cpu_ctx):
    out = run(cpu_ctx, dtype=torch.float64, seeds=4, steps=5, thread_check_seeds=0, mse_adam_lrs=[])
    # The float64 Linear *is* the reference model: distance 0 exactly, so the reference is really used.
    assert out.facts["onestep.linear_vs_fp64_max"] == 0.0
    assert out.facts["drift.adam.lr0.5.linear_vs_fp64_final"] == 0.0


def test_thread_check_compares_another_thread_count(cpu_ctx):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = run(cpu_ctx, seeds=3, steps=0)
        pinned = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert out.facts["threads.used"] == 1
    if out.facts["threads.checked"]:  # only where the machine has more than one core
        assert out.facts["threads.compared"] > 1
        assert 0.0 <= out.facts["threads.conv1d_equal_fraction"] <= 1.0
    assert not any(k.startswith("drift") for k in out.facts)  # steps=0: no drift runs
    # Pinned to one thread, the default CPU cells hold no other thread count; the case adds it (and runs the kernel
    # capture under it), since the thread count is what changes Conv1d's forward here.
    other = out.facts["threads.compared"] if out.facts["threads.checked"] else None
    if other is not None:
        k, d = out.extra["kernels"], out.extra["determinism"]
        assert f"threads={other}" in d["matrix"] and "error" not in d["matrix"][f"threads={other}"]
        assert d["matrix"][f"threads={other}"]["settings"]["num_threads"] == other
        assert d["matrix"]["baseline"]["settings"]["num_threads"] == 1
        assert d["controls"]["threads"]["threads"] == [1, other]  # the control compares 1 with all cores too
        assert {f"Linear, {other} threads", f"Conv1d, {other} threads"} <= set(k["sides"])
        assert out.facts["threads.forward.checked"] is True
        for key, label in (("linear", "Linear"), ("conv1d", "Conv1d")):
            cell = d["matrix"][f"threads={other}"]["sides"][label]
            assert out.facts[f"threads.forward.{key}_equal"] == cell["bitwise_equal"]
            changed = k["sides"][label]["impl"] != k["sides"][f"{label}, {other} threads"]["impl"]
            assert out.facts[f"threads.forward.{key}_impl_changes"] == changed
    assert pinned == 1  # every cell, side and control restored the pinned count


def test_kernels_and_determinism_sections(out32):
    """Both forwards' implementations are named per side, and each side's reproducibility is measured, on CPU."""
    k, d, f = out32.extra["kernels"], out32.extra["determinism"], out32.facts
    assert {"Linear", "Conv1d"} <= set(k["sides"]) and len(k["summary"]) == len(k["sides"])
    for label, line in zip(k["sides"], k["summary"]):
        assert line.startswith(label + " -> ") and "error" not in k["sides"][label]
        assert f[f"kernels.{label.lower().replace(', ', '_').replace(' ', '_')}.impl"] == k["sides"][label]["impl"]
        assert k["sides"][label]["impl"] != "unknown"
    # The chain's root is the module's op; its deepest op is picked by self time, which is noise at this size.
    assert k["sides"]["Linear"]["profile"]["chain"][0] == "aten::linear"
    assert k["sides"]["Conv1d"]["profile"]["chain"][0] == "aten::conv1d"
    if k["sides"]["Linear"].get("mkl"):  # MKL builds: the library's own account says a GEMM did Linear's work
        assert k["sides"]["Linear"]["mkl"]["main"]["function"].endswith("GEMM")
    for key in ("linear", "conv1d"):
        consistent = f[f"determinism.{key}.self_consistent"]
        assert consistent == (f[f"determinism.{key}.distinct_outputs"] == 1) and consistent is True
    assert d["repeats"] == 3 and {"baseline", "deterministic algorithms", "oneDNN off"} <= set(d["matrix"])
    pair = d["matrix"]["baseline"]["pairs"]["Linear vs Conv1d"]
    assert f["determinism.linear_vs_conv1d.baseline.bitwise_equal"] == pair["bitwise_equal"]
    # Both forwards are within their gamma_(C+1) bound of the exact value, so within the summed bound of each other.
    assert f["determinism.linear_vs_conv1d.baseline.max_normalised"] <= 1.0
    if torch.get_num_threads() > 1:  # the default cells already compare 1 thread with all of them
        assert "threads=1" in d["matrix"] and f["threads.forward.checked"] is True
    json.dumps(sanitize(out32.extra), allow_nan=False)


def _trace(rel: np.ndarray) -> _Trace:
    n = len(rel)
    ones = np.ones(n)
    return _Trace(dparam=rel, lin_ref=ones, conv_ref=ones, pmax=ones, dloss=ones, loss=ones)


def test_trend_classification_flips():
    u = 2.0 ** -24
    steps = np.arange(1, 1001, dtype=float)
    assert _trend(_trace(np.full(1000, u)), u)[0] == "rounding level"
    assert _trend(_trace(steps * _ROUNDING_LEVEL_U * u), u)[0] == "grows"
    flat = np.minimum(steps, 20) * _ROUNDING_LEVEL_U * u
    trend, growth = _trend(_trace(flat), u)
    assert trend == "saturates" and growth < _GROWTH


def test_log_points_cover_first_and_last():
    pts = _log_points(1000, 20)
    assert pts[0] == 1 and pts[-1] == 1000 and pts == sorted(set(pts))
    assert _log_points(1, 5) == [1]


@pytest.mark.gpu
def test_runs_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (torch.cuda.is_available() is False here)")
    from reportgen.cases import CaseContext
    info = get("optimizer_drift")
    ctx = CaseContext(name="t", params={**info.defaults, **TINY}, device=torch.device("cuda"),
                      dtype=torch.float32, seed=0)
    facts = info.run(ctx).facts
    assert facts["threads.checked"] is False and facts["onestep.frac_within_1e-6"] >= 0

"""shared_kernel_conv on tiny sizes: three formulations agree, summed gradients are right, averaging is not."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from reportgen.cases import CaseContext, CaseOutput, get
from reportgen.cases.shared_kernel_conv import PUBLISHED, _grads, _loop, _repeated, _shared, _sides_vs_reference
from reportgen.claims import evaluate_rule
from reportgen.measure.numerics import gamma
from reportgen.results import sanitize
from reportgen.suite import load_suite

C = 3
TINY = {"batch": 2, "channels": C, "height": 6, "width": 5, "train_batch": 1, "train_size": 5, "train_steps": 4,
        "train_report_steps": [1, 4], "sgd_lr": 0.05, "adam_lr": 0.01}


@pytest.fixture(scope="module")
def out() -> CaseOutput:
    info = get("shared_kernel_conv")
    ctx = CaseContext(name="t", params={**info.defaults, **TINY}, device=torch.device("cpu"), dtype=torch.float32,
                      seed=0, timing_rounds=2, timing_min_sample_s=0.0005)
    return info.run(ctx)


def test_published_example_runs_first_as_code(out):
    """The question's example and the answer run as text (shown in the report); facts under published.*."""
    sec, f = out.extra["published"], out.facts
    assert sec["snippet"] == PUBLISHED.snippet and sec["seed_call"] == "torch.manual_seed(0)"
    for line in ("torch.manual_seed(0)", "x = torch.rand(1, 3, 3, 3)", "kernel = nn.Conv2d(1, 1, 3)",
                 "conv = nn.Conv2d(3, 3, 3, groups=3)", "conv.bias.data = kernel.bias.data.repeat(3)",
                 "shared(x).mean().backward()"):
        assert line in sec["snippet"]
    assert any("reconstructed" in e for e in sec["edits"]) and sec["departures"]
    assert "-1.0085" in sec["printed"]  # what the question printed, printed here
    # The question's printed numbers reproduce to their 4 digits; the bits of the grouped conv and of the
    # per-channel kernel need not agree, but they are within rounding of each other.
    assert f["published.conv_x_matches_post"] is True and len(f["published.conv_x"]) == 3
    assert f["published.grouped_vs_single.max_normalised"] <= 1.0
    # The answer: summed gradients of the repeated weight are the shared kernel's gradient.
    assert f["published.grad.shared_vs_summed.max_normalised"] <= 1.0
    assert f["published.grad.bias_shared_vs_summed.max_normalised"] <= 1.0


def test_published_example_one_step_sgd_vs_adam(out):
    """On the published example averaging the copies after an SGD step gives 1/C of the shared step; after one
    Adam step it gives the shared step to rounding (each copy moves by ~lr*sign(grad), and every input is
    positive, so every copy's gradient has the same sign): the claim holds on the published run through SGD."""
    f = out.facts
    assert f["published.step.sgd.averaged_off"] == pytest.approx(1 - 1 / 3, rel=1e-5)
    assert f["published.step.adam.averaged_off"] < 1e-5
    assert f["published.step.adam.shared_step_max_abs"] == pytest.approx(get("shared_kernel_conv").defaults[
        "published_step_lr"], rel=1e-5)


def test_claims_are_judged_on_the_published_facts(out):
    for suite in ("default", "quick"):
        case = next(c for c in load_suite(suite).cases if c.name == "shared_kernel_conv")
        for claim in case.claims:
            outcome, evidence = evaluate_rule(claim.rule, out.facts)
            assert outcome == "true", (suite, claim.id)
            assert evidence and all(e["fact"].startswith("published.") for e in evidence)


def test_robustness_rerun_replaces_the_seeding_call(cpu_ctx):
    info = get("shared_kernel_conv")
    res = info.run(replace(cpu_ctx({**info.defaults, **TINY}, robustness_run=True), seed=5))
    sec, f = res.extra["published"], res.facts
    assert sec["seed_call"] == "torch.manual_seed(5)" and "torch.manual_seed(0)" not in sec["snippet"]
    assert any("torch.manual_seed(0) replaced by torch.manual_seed(5)" in e for e in sec["edits"])
    assert not f["published.conv_x_matches_post"]  # another input: not the question's numbers
    assert f["published.grad.shared_vs_summed.max_normalised"] <= 1.0
    # only the published example: no variants, kernels or timing on a robustness seed
    assert all(k.startswith("published.") for k in f) and not res.timings


def test_bad_published_step_lr_is_a_usage_error(tmp_path):
    from reportgen.errors import UsageError
    bad = tmp_path / "s.yaml"
    bad.write_text("name: s\ncases:\n  - name: shared_kernel_conv\n    params: {published_step_lr: -0.1}\n")
    with pytest.raises(UsageError, match="published_step_lr"):
        load_suite(str(bad))


def test_three_formulations_compute_the_same_conv():
    x, w = torch.randn(2, C, 5, 5), torch.randn(1, 1, 3, 3)
    expected = F.conv2d(x.double(), w.double().expand(C, -1, -1, -1), padding=1, groups=C)
    for y in (_shared(x, w), _repeated(x, w.repeat(C, 1, 1, 1)), _loop(x, w)):
        torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)


def test_forward_and_gradients_within_rounding(out):
    f = out.facts
    for part in ("fwd", "grad"):
        for side in ("shared", "repeated", "loop"):
            assert f[f"{part}.{side}_vs_ref.verdict"] in ("identical", "within rounding")
    assert f["grad.shared_vs_repeated.verdict"] in ("identical", "within rounding")


def test_averaged_gradient_would_be_caught_out_of_bound():
    """The gradient check can fail: feed it (b) with its gradients *averaged* over groups instead of summed."""
    x, w, g = torch.randn(2, C, 6, 6), torch.randn(1, 1, 3, 3), torch.randn(2, C, 6, 6)
    sides = _grads(x, w, g)
    y, grad = sides["repeated"]
    sides["repeated"] = (y, grad / C)
    x64, w64 = x.double(), w.double().requires_grad_(True)
    (_shared(x64, w64) * g.double()).sum().backward()
    w_abs = torch.zeros_like(w64, requires_grad=True)
    (_shared(x64.abs(), w_abs) * g.double().abs()).sum().backward()
    n = 2 * 6 * 6 + C
    fwd_bound = gamma(9, torch.float32) * _shared(x64.abs(), w64.detach().abs())
    out = CaseOutput()
    _sides_vs_reference(out, sides, _shared(x64, w64).detach(), w64.grad, fwd_bound,
                        gamma(n, torch.float32) * w_abs.grad, 1.0, n)
    assert out.facts["grad.repeated_vs_ref.verdict"] == "out of bound"
    assert out.facts["grad.shared_vs_repeated.verdict"] == "out of bound"
    assert out.facts["grad.shared_vs_ref.verdict"] in ("identical", "within rounding")


def test_averaging_makes_an_sgd_step_c_times_too_small(out):
    f = out.facts
    # Averaging C per-copy SGD steps (each lr * g_c) is lr * sum(g_c) / C: exactly 1/C of the correct step.
    assert f["train.sgd.averaged.step_ratio_1"] == pytest.approx(1 / C, rel=1e-4)
    assert f["train.sgd.averaged.rel_err_k1"] == pytest.approx(1 - 1 / C, rel=1e-4)
    # The correct approaches stay at rounding level of the float64 trajectory.
    for opt in ("sgd", "adam"):
        for side in ("shared", "summed"):
            assert f[f"train.{opt}.{side}.rel_err_final"] < 1e-4
    assert f["train.sgd.averaged.rel_err_final"] > 100 * f["train.sgd.shared.rel_err_final"]


def test_timing_facts_and_json(out):
    f = out.facts
    for what in ("forward", "forward_backward"):
        for side in ("shared", "repeated", "loop"):
            assert f[f"timing.{what}.{side}_median_s"] > 0
            assert isinstance(f[f"timing.{what}.{side}_median_s.noisy"], bool)
    assert len(out.timings) == 6
    ids = [p["id"] for p in out.plots]
    assert ids == ["train_sgd", "train_adam"]
    json.dumps(sanitize({"facts": f, "plots": out.plots, "tables": out.tables, "cmp": out.comparisons}),
               allow_nan=False)


def test_kernels_and_determinism_sections(out):
    """Each formulation's forward implementation is named, and each side's reproducibility is measured, on CPU."""
    k, d, f = out.extra["kernels"], out.extra["determinism"], out.facts
    sides = {"(a) expand": "a_expand", "(b) repeated": "b_repeated", "(c) loop": "c_loop"}
    assert list(k["sides"]) == list(sides) and len(k["summary"]) == 3
    for (label, key), line in zip(sides.items(), k["summary"]):
        assert line.startswith(label + " -> ") and "error" not in k["sides"][label]
        # Summed over calls a convolution op dominates (a single cat/slice event can top the chain's pick for (c)).
        assert any("conv" in op["name"] for op in k["sides"][label]["profile"]["ops"])
        assert f[f"kernels.{key}.impl"] == k["sides"][label]["impl"] != "unknown"
        consistent = f[f"determinism.{key}.self_consistent"]
        assert consistent == (f[f"determinism.{key}.distinct_outputs"] == 1) and consistent is True
    assert d["repeats"] == 3 and {"baseline", "deterministic algorithms", "oneDNN off"} <= set(d["matrix"])
    # The matrix's baseline pairs and the case's own forward comparisons (same input, same kernel) agree.
    for pair, case_key in (("a_expand_vs_b_repeated", "shared_vs_repeated"), ("a_expand_vs_c_loop", "shared_vs_loop")):
        fact = f"determinism.{pair}.baseline"
        assert f[f"{fact}.bitwise_equal"] == (f[f"fwd.{case_key}.bitwise_equal_fraction"] == 1.0)
        assert f[f"{fact}.max_normalised"] <= 1.0  # each side within gamma_9 conv(|x|, |w|) of the exact value
    json.dumps(sanitize(out.extra), allow_nan=False)


def test_timing_disabled_and_no_training(cpu_ctx):
    info = get("shared_kernel_conv")
    res = info.run(cpu_ctx({**info.defaults, **TINY, "train_steps": 0}, timing_enabled=False))
    assert not res.timings and not any(k.startswith(("timing.", "train.")) for k in res.facts)
    assert res.facts["fwd.shared_vs_loop.verdict"] in ("identical", "within rounding")


@pytest.mark.gpu
def test_runs_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (torch.cuda.is_available() is False here)")
    info = get("shared_kernel_conv")
    ctx = CaseContext(name="t", params={**info.defaults, **TINY}, device=torch.device("cuda"), dtype=torch.float32,
                      seed=0, timing_rounds=2, timing_min_sample_s=0.0005)
    facts = info.run(ctx).facts
    assert facts["grad.shared_vs_repeated.verdict"] in ("identical", "within rounding")

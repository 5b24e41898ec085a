"""conv1d_semantics on tiny sizes: structure, computed facts, the KS test's power, and claim rules flipping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from reportgen import cases
from reportgen.cases.conv1d_semantics import (aggregate_sides, extra_side, measure_same_split_1d,
                                              measure_same_split_2d, uniform_fit)
from reportgen.errors import UsageError
from reportgen.results import CaseResult
from reportgen.suite import load_suite

TINY = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "length": 20, "check_length": 12,
        "pad_amounts": [1, 2], "same_kernels": [1, 2, 3, 4], "same_dilations": [1, 2], "same_length": 12,
        "init_modules": 3, "init_groups": 2}
CPU = torch.device("cpu")


def _run(cpu_ctx, **overrides):
    info = cases.get("conv1d_semantics")
    return info.run(cpu_ctx({**info.defaults, **TINY, **overrides}))


def test_tiny_run_structure_and_facts(cpu_ctx):
    out = _run(cpu_ctx)
    f = out.facts
    assert (f["shape.valid.length"], f["shape.pad1_zeros.length"], f["shape.same.length"]) == (18, 20, 20)
    assert f["shape.formula_match"] is True
    assert f["shape.page_examples_match"] is None  # not the page's sizes: not measured
    assert f["padding_mode.worst_verdict"] != "out of bound"
    assert f["padding_mode.control_reflect_vs_zero_pad.verdict"] == "out of bound"
    for k in TINY["same_kernels"]:
        for d in TINY["same_dilations"]:
            assert f[f"same.k{k}_d{d}.left"] + f[f"same.k{k}_d{d}.right"] == d * (k - 1)
    # the aggregate is derived from the per-configuration facts (k=2, d=1 has an odd total of 1)
    expected = "right" if f["same.k2_d1.right"] > f["same.k2_d1.left"] else "left"
    assert f["same.odd_total_pad_extra_side"] == expected
    assert f["same.explicit_pad_identical"] is True and f["same.mirrored_split_differs"] is True
    assert f["init.bias_present_by_default"] is True and f["init.bias_default_argument"] is True
    assert 0.0 <= f["init.weight.ks_pvalue"] <= 1.0 and f["init.weight.n"] == 3 * 8 * 4 * 3
    assert f["init.weight.max_abs_over_bound"] <= 1.0 + 1e-6
    assert math.isclose(f["init.groups2.k"], 2 / (4 * 3))
    assert f["layout.roundtrip_bitwise"] is True
    assert f["layout.conv2d_equiv.verdict"] in ("identical", "within rounding")
    ids = [p["id"] for p in out.plots]
    assert len(ids) == len(set(ids)) and {"same_split", "init_density"} <= set(ids)
    json.dumps(out.__dict__)


def test_page_sizes_reproduce_the_page_shapes(cpu_ctx):
    """The page's own example (Conv1d(120, 240, 4) on (1, 120, 640)): lengths measured, compared to the page."""
    out = _run(cpu_ctx, in_channels=120, out_channels=240, kernel_size=4, length=640, init_groups=4,
               init_modules=1, same_kernels=[2], same_dilations=[1])
    assert (out.facts["shape.valid.length"], out.facts["shape.pad1_reflect.length"]) == (637, 639)
    assert out.facts["shape.page_examples_match"] is True


def test_same_split_measurement_is_exact():
    """Impulse measurement equals an explicit F.pad with the measured split, for an even kernel."""
    left, right = measure_same_split_1d(4, 1, 10, CPU, torch.float32)
    assert left + right == 3
    x, w = torch.randn(1, 1, 10), torch.randn(1, 1, 4)
    same = torch.nn.functional.conv1d(x, w, padding="same")
    assert torch.equal(same, torch.nn.functional.conv1d(torch.nn.functional.pad(x, (left, right)), w))
    top, bottom, l2, r2 = measure_same_split_2d(2, 1, 6, CPU, torch.float32)
    assert top + bottom == 1 and l2 + r2 == 1


def test_side_aggregation_both_outcomes():
    assert extra_side(1, 2, ("left", "right")) == "right"
    assert extra_side(2, 1, ("left", "right")) == "left"
    assert extra_side(1, 1, ("left", "right")) is None
    assert aggregate_sides(["left", None, "left"]) == "left"
    assert aggregate_sides(["right"]) == "right"
    assert aggregate_sides(["left", "right"]) == "mixed"
    assert aggregate_sides([None]) == "none"


def test_ks_fits_right_k_and_rejects_wrong_k():
    """The goodness-of-fit test can flip: right k fits, a k that ignores groups (range x2) or a normal init
    (MindSpore's default) is rejected."""
    pytest.importorskip("scipy")
    torch.manual_seed(0)
    c_in, kernel, groups = 16, 4, 4
    w = np.concatenate([torch.nn.Conv1d(c_in, 16, kernel, groups=groups).weight.detach().double().flatten().numpy()
                        for _ in range(8)])
    right = math.sqrt(groups / (c_in * kernel))
    assert uniform_fit(w, right, 0.01)["fits"] is True
    assert uniform_fit(w, right * math.sqrt(groups), 0.01)["fits"] is False  # k without groups
    normal = np.random.default_rng(0).normal(0, right / 2, size=w.size)
    assert uniform_fit(normal, right, 0.01)["fits"] is False


@pytest.mark.parametrize("overrides, match", [
    ({"same_length": 2}, "same_length"),
    ({"init_groups": 3}, "init_groups"),
    ({"pad_amounts": [12]}, "check_length"),
    ({"same_kernels": [0]}, "same_kernels\\[0\\]"),
])
def test_bad_params_name_the_key(cpu_ctx, overrides, match):
    with pytest.raises(UsageError, match=match):
        _run(cpu_ctx, **overrides)


def _spec(claim_id: str, suite: str):
    spec = load_suite(suite).select(("conv1d_semantics",))
    claims = tuple(c for c in spec.cases[0].claims if c.id == claim_id)
    assert claims, f"claim {claim_id} missing from suite {suite}"
    from dataclasses import replace
    return replace(spec, cases=(replace(spec.cases[0], claims=claims),))


def _verdict(spec, facts: dict) -> str:
    from reportgen.claims import evaluate

    r = CaseResult(id="conv1d_semantics/cpu/float32", case="conv1d_semantics", kind="conv1d_semantics",
                   description="", device="cpu", dtype="float32", params={}, seed=0, status="ok", facts=facts)
    return evaluate(spec, [r])[0]["verdict"]


@pytest.mark.parametrize("suite", ["default", "quick"])
def test_same_claim_follows_the_measurement(cpu_ctx, suite):
    spec = _spec("torch-same-odd-pad-left-first", suite)
    facts = _run(cpu_ctx).facts
    measured_left = (facts["same.odd_total_pad_extra_side"] == "left"
                     and facts["same2d.odd_total_pad_extra_side"] == "top-left")
    assert _verdict(spec, facts) == ("holds" if measured_left else "does not hold")
    flipped = {**facts, "same.odd_total_pad_extra_side": "left", "same2d.odd_total_pad_extra_side": "top-left"}
    assert _verdict(spec, flipped) == "holds"
    flipped = {**facts, "same.odd_total_pad_extra_side": "right", "same2d.odd_total_pad_extra_side": "bottom-right"}
    assert _verdict(spec, flipped) == "does not hold"


@pytest.mark.parametrize("suite", ["default", "quick"])
def test_init_claim_flips(cpu_ctx, suite):
    pytest.importorskip("scipy")
    spec = _spec("torch-conv1d-bias-and-uniform-init", suite)
    facts = {"init.bias_present_by_default": True, "init.weight.fits_uniform": True, "init.bias.fits_uniform": True,
             "init.all_fit_uniform": True, "init.control_wrong_k.rejected": True,
             # the page's own example-1 module, as published
             "published.init.bias_present_by_default": True, "published.init.weight.fits_uniform": True,
             "published.init.bias.fits_uniform": True, "published.init.control_wrong_k.weight.rejected": True}
    assert _verdict(spec, facts) == "holds"
    # a KS test too weak to reject a range 10 % too wide says nothing by "fits": not measurable, not "holds"
    assert _verdict(spec, {**facts, "init.control_wrong_k.rejected": False}) == "not measurable here"
    assert _verdict(spec, {**facts, "published.init.control_wrong_k.weight.rejected": False}) == "not measurable here"
    assert _verdict(spec, {**facts, "init.bias_present_by_default": False}) == "does not hold"
    assert _verdict(spec, {**facts, "init.weight.fits_uniform": False}) == "does not hold"
    # judged on the published module first: its weights rejected flips the claim though the pooled variant fits
    assert _verdict(spec, {**facts, "published.init.weight.fits_uniform": False}) == "does not hold"
    assert _verdict(spec, {**facts, "published.init.bias_present_by_default": False}) == "does not hold"
    assert _verdict(spec, {"init.bias_present_by_default": True}) == "not measurable here"  # no scipy: no KS facts
    # and the real tiny run produces every fact the rule reads
    real = _run(cpu_ctx).facts
    assert all(k in real for k in facts)


def test_kernels_and_determinism_sections(cpu_ctx):
    """Conv1d's own zero padding vs explicit F.pad: implementation per side and reproducibility, on CPU."""
    out = _run(cpu_ctx)
    k, d = out.extra["kernels"], out.extra["determinism"]
    sides = ("Conv1d(padding)", "F.pad + Conv1d")
    assert set(k["sides"]) == set(sides) and len(k["summary"]) == 2
    for label, line in zip(sides, k["summary"]):
        assert line.startswith(label + " -> ") and "error" not in k["sides"][label]
        assert any("conv" in op for op in k["sides"][label]["profile"]["chain"])
    assert out.facts["kernels.conv1d_padding.impl"] == k["sides"]["Conv1d(padding)"]["impl"] != "unknown"
    assert out.facts["kernels.f_pad_conv1d.impl"] == k["sides"]["F.pad + Conv1d"]["impl"] != "unknown"
    for key in ("conv1d_padding", "f_pad_conv1d"):
        consistent = out.facts[f"determinism.{key}.self_consistent"]
        assert consistent == (out.facts[f"determinism.{key}.distinct_outputs"] == 1) and consistent is True
    assert d["repeats"] == 3 and "oneDNN off" in d["matrix"]
    base = "determinism.conv1d_padding_vs_f_pad_conv1d.baseline"
    # the determinism matrix and the case's own zeros-mode comparison (same data, same weights) agree
    assert out.facts[f"{base}.bitwise_equal"] == (out.facts["padding_mode.zeros.p1.verdict"] == "identical")
    assert out.facts[f"{base}.max_normalised"] <= 1.0
    json.dumps(out.extra)


def test_global_rng_seeds_then_restores_the_global_generator():
    from reportgen.cases.base import CaseContext
    ctx = CaseContext(name="t", params={}, device=torch.device("cpu"), dtype=torch.float32, seed=5)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with ctx.global_rng(2):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream continues as if nothing happened
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(3))  # seed + offset



def test_the_pages_pytorch_examples_run_as_published(cpu_ctx):
    """The page's four PyTorch halves run as text: each prints the shape the page says, and example 1's module is
    the one whose default initialisation is tested (120 * 240 * 4 weights, 240 biases)."""
    pytest.importorskip("scipy")
    out = _run(cpu_ctx)
    f = out.facts
    says = {1: "(1, 240, 637)", 2: "(1, 240, 639)", 3: "(1, 240, 639)", 4: "(1, 240, 637)"}
    for i, shape in says.items():
        assert f[f"published.example{i}.page_says"] == shape
        assert f[f"published.example{i}.printed"] == shape and f[f"published.example{i}.matches_page"] is True
    assert f["published.examples_match_page"] is True
    assert f["published.init.weight.n"] == 120 * 240 * 4 and f["published.init.bias.n"] == 240
    assert f["published.init.k"] == 1 / (120 * 4)
    assert f["published.init.control_wrong_k.weight.rejected"] is True  # 115,200 samples: the test has power
    sec = out.extra["published"]
    assert "net = torch.nn.Conv1d(120, 240, 4, padding=1, padding_mode='reflect')" in sec["snippet"]
    assert "example 3 (PyTorch): (1, 240, 639)" in sec["printed"] and sec["departures"]


def test_page_says_reads_the_comment_under_print():
    from reportgen.cases import _mindspore_page as page

    assert page.page_says("x = 1\nprint(output)\n# (1, 2, 3)\n") == "(1, 2, 3)"
    with pytest.raises(ValueError):
        page.page_says("print(output)\n")

"""Determinism matrix on CPU with real torch ops: self-consistency, settings cells, controls, facts, template."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reportgen.measure import determinism as D
from reportgen.measure.numerics import matmul_bound
from reportgen.measure.settings import capture_settings

CPU = torch.device("cpu")


# ------------------------------------------------------------------------------------------- comparisons


def test_bitwise_equal_is_about_bits_not_values():
    nan = torch.tensor([float("nan"), 1.0])
    assert D.bitwise_equal(nan, nan.clone())  # NaN == NaN bit for bit
    assert not D.bitwise_equal(torch.tensor([0.0]), torch.tensor([-0.0]))  # equal values, different bits
    assert not D.bitwise_equal(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert not D.bitwise_equal(torch.ones(2), torch.ones(3))


def test_difference_normalises_by_the_bound_and_flags_a_zero_bound():
    a = torch.tensor([1.0, 2.0, 3.0])
    b = a + torch.tensor([0.0, 1e-3, 0.0])
    d = D.difference(a, b, torch.tensor([1e-3, 4e-3, 1.0], dtype=torch.float64))
    assert not d["bitwise_equal"] and d["differing_fraction"] == pytest.approx(1 / 3)
    assert d["max_normalised"] == pytest.approx(0.25, rel=1e-3)
    assert D.difference(a, b, torch.zeros(3, dtype=torch.float64))["max_normalised"] == math.inf
    assert D.difference(a, a.clone(), None) == {"bitwise_equal": True, "max_abs": 0.0, "differing_fraction": 0.0,
                                                "max_normalised": None}


# ------------------------------------------------------------------------------------------- self-consistency


def test_self_consistency_of_a_deterministic_op():
    x = torch.randn(64, 32)
    w = torch.randn(32, 16)
    s = D.self_consistency(lambda: x @ w, 4, None)
    assert s["self_consistent"] and s["distinct_outputs"] == 1 and s["repeats"] == 4


def test_self_consistency_sees_an_op_whose_bits_change_between_calls():
    """The check can fail: a real computation whose summation order changes on every call."""
    x = torch.randn(4096, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    calls = {"n": 0}

    def reordered_sum() -> torch.Tensor:
        calls["n"] += 1
        return x.roll(calls["n"] * 7).sum().reshape(1)  # same value, different order -> different rounding

    s = D.self_consistency(reordered_sum, 5, torch.tensor([1e-3], dtype=torch.float64))
    assert not s["self_consistent"] and s["distinct_outputs"] > 1
    assert 0 < s["worst_vs_first"]["max_normalised"] < 1


# ------------------------------------------------------------------------------------------- matrix


@pytest.fixture(scope="module")
def pair():
    gen = torch.Generator().manual_seed(0)
    conv, lin = torch.nn.Conv1d(8, 32, 1), torch.nn.Linear(8, 32)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(32, 8, generator=gen) / 3)
        lin.bias.copy_(torch.randn(32, generator=gen) / 3)
        conv.weight.copy_(lin.weight.unsqueeze(-1))
        conv.bias.copy_(lin.bias)
    x = torch.randn(8, 64, 8, generator=gen)  # (N, L, C)
    xp = x.permute(0, 2, 1).contiguous()
    bound = matmul_bound(x, lin.weight.detach().t(), torch.float32, bias=lin.bias.detach())
    sides = {"Linear": lambda: lin(x), "Conv1d": lambda: conv(xp).permute(0, 2, 1)}
    return sides, bound


@pytest.fixture(scope="module")
def section(pair):
    sides, bound = pair
    before = capture_settings()
    with torch.no_grad():
        sec = D.determinism_section(sides, CPU, bound=bound, repeats=3)
    assert capture_settings() == before, "the section must leave torch's settings as it found them"
    return sec


def test_section_is_json_and_has_every_part(section):
    json.dumps(section)
    assert set(section) >= {"self", "matrix", "controls", "facts", "notes"}
    assert set(section["matrix"]) == set(D.cpu_cells())
    for cell, r in section["matrix"].items():
        assert r["settings"]["num_threads"] >= 1, cell  # each cell records the settings it ran under
    if torch.get_num_threads() > 1:
        assert section["matrix"]["threads=1"]["settings"]["num_threads"] == 1
    assert section["matrix"]["oneDNN off"]["settings"]["mkldnn.enabled"] is False
    assert section["matrix"]["deterministic algorithms"]["settings"]["deterministic_algorithms"] is True


def test_cpu_sides_are_self_consistent_and_the_pair_is_within_the_bound(section):
    for label in ("Linear", "Conv1d"):
        assert section["self"][label]["self_consistent"], label
        assert section["facts"][f"determinism.{label.lower()}.self_consistent"] is True
        assert section["matrix"]["baseline"]["sides"][label]["bitwise_equal"]
    pair = section["matrix"]["baseline"]["pairs"]["Linear vs Conv1d"]
    # Two different kernels (MKL sgemm, oneDNN): each within its rounding bound, so their difference is too.
    assert pair["bitwise_equal"] or pair["max_normalised"] <= 1.0
    assert section["facts"]["determinism.linear_vs_conv1d.baseline.bitwise_equal"] == pair["bitwise_equal"]


def test_matrix_sees_a_thread_count_effect():
    """The matrix can fail a cell: a parallel float32 sum changes its bits with the number of threads."""
    if torch.get_num_threads() < 2:
        pytest.skip("one thread only: no thread-count effect to see")
    x = torch.randn(1 << 20, generator=torch.Generator().manual_seed(1))
    cells = {"baseline": {}, "threads=1": {"num_threads": 1}}
    m = D.settings_matrix({"sum": lambda: x.sum().reshape(1)}, cells, None)
    assert m["baseline"]["sides"]["sum"]["bitwise_equal"]
    assert not m["threads=1"]["sides"]["sum"]["bitwise_equal"]
    assert m["threads=1"]["sides"]["sum"]["max_abs"] > 0


def test_a_side_that_fails_in_a_cell_is_recorded_not_raised():
    def picky() -> torch.Tensor:
        if torch.are_deterministic_algorithms_enabled():
            raise RuntimeError("no deterministic implementation (test side)")
        return torch.ones(2)

    cells = {"baseline": {}, "deterministic algorithms": {"deterministic_algorithms": True}}
    before = capture_settings()
    m = D.settings_matrix({"picky": picky}, cells, None)
    assert "no deterministic implementation" in m["deterministic algorithms"]["sides"]["picky"]["error"]
    assert m["baseline"]["sides"]["picky"]["bitwise_equal"]
    assert capture_settings() == before


def test_a_side_that_always_fails_is_recorded_and_rendered():
    def broken() -> torch.Tensor:
        raise RuntimeError("unsupported here (test side)")

    sec = D.determinism_section({"Broken": broken, "Ones": lambda: torch.ones(3)}, CPU, repeats=2,
                                cells={"baseline": {}})
    assert "unsupported here" in sec["self"]["Broken"]["error"]
    assert "unsupported here" in sec["matrix"]["baseline"]["sides"]["Broken"]["error"]
    assert sec["facts"]["determinism.ones.self_consistent"] is True
    assert not any(k.startswith("determinism.broken.") for k in sec["facts"])
    from reportgen.render.html import environment

    html = environment().get_template("_extra_determinism.html.j2").render(
        case={"id": "t"}, section=json.loads(json.dumps(sec)))
    assert "unsupported here" in html


# ------------------------------------------------------------------------------------------- controls


def test_cpu_controls_say_what_they_show(section):
    atomics = section["controls"]["atomics"]
    assert atomics["device"] == "cpu" and atomics["default"]["repeats"] == 3
    # index_add_ on CPU adds in a fixed order: the control is honest that it cannot show nondeterminism here.
    assert atomics["nondeterminism_seen"] is False
    assert "deterministic on CPU" in atomics["reading"]
    threads = section["controls"]["threads"]
    if torch.get_num_threads() > 1:
        assert section["facts"]["determinism.control.threads_change_bits"] == (not threads["bitwise_equal"])


def test_cuda_positive_control_runs_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the atomics control needs a GPU to show nondeterminism")
    out = D.atomics_control(torch.device("cuda"), repeats=5)
    json.dumps(out)
    assert out["default"]["distinct_outputs"] >= 1
    det = out["deterministic algorithms"]
    assert "error" in det or det["self_consistent"]


def test_cuda_tf32_cells_run_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: TF32 cells cannot run here")
    dev = torch.device("cuda")
    conv, lin = torch.nn.Conv1d(64, 64, 1).to(dev), torch.nn.Linear(64, 64).to(dev)
    with torch.no_grad():
        conv.weight.copy_(lin.weight.unsqueeze(-1))
        conv.bias.copy_(lin.bias)
        x = torch.randn(8, 128, 64, device=dev)
        sides = {"Linear": lambda: lin(x), "Conv1d": lambda: conv(x.transpose(1, 2)).transpose(1, 2)}
        sec = D.determinism_section(sides, dev, repeats=3)
    json.dumps(sec)
    assert set(sec["matrix"]) == set(D.cuda_cells())
    effect = sec["tf32_effect"]["Linear vs Conv1d"]
    from reportgen.measure.kernels import capture_side, kernels_use_tf32
    with torch.no_grad():
        conv_tf32 = kernels_use_tf32(capture_side(sides["Conv1d"], dev)["profile"]["kernels"])
    if not conv_tf32:
        pytest.skip(f"cuDNN's engine for this conv is not a TF32 one by its name (tf32={conv_tf32}): no drop to show")
    # Ampere+: by default the conv runs in TF32 and the matmul does not; most of the difference is TF32.
    assert effect["off_over_baseline"] is not None and effect["off_over_baseline"] < 1


def test_tf32_effect_compares_the_pair_in_two_cells(section):
    """On CPU there is no TF32 cell; the same arithmetic read on the oneDNN-off cell shows what it computes."""
    effect = D.tf32_effect(section["matrix"], off="oneDNN off")["Linear vs Conv1d"]
    base = section["matrix"]["baseline"]["pairs"]["Linear vs Conv1d"]["max_abs"]
    other = section["matrix"]["oneDNN off"]["pairs"]["Linear vs Conv1d"]["max_abs"]
    assert effect["baseline_max_abs"] == base and effect["tf32_off_max_abs"] == other
    assert effect["off_over_baseline"] == (other / base if base > 0 else None)
    assert "Linear vs Conv1d: max |Δ|" in effect["note"]
    assert D.tf32_effect(section["matrix"]) == {}  # no TF32 cell on CPU: nothing claimed


# ------------------------------------------------------------------------------------------- template


def test_template_renders_the_section(section):
    from reportgen.render.html import environment

    data = json.loads(json.dumps(section))
    html = environment().get_template("_extra_determinism.html.j2").render(case={"id": "t/cpu/float32"},
                                                                        section=data)
    assert "Is it reproducible?" in html and "Settings matrix" in html
    assert "oneDNN off" in html and "Positive control" in html

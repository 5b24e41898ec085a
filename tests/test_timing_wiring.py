"""Timings against the machine's measured limit (roofline), and the answer's %%timeit in named allocator regimes."""

from __future__ import annotations

import pytest
import torch

from reportgen.cases import CaseContext, CaseOutput
from reportgen.engine import count_flops, time_sides
from reportgen.facts import schema, timing_facts
from reportgen.measure import peak as peak_mod


def _ctx(**kw):
    return CaseContext(name="t", params={}, device=torch.device("cpu"), dtype=torch.float32, seed=0,
                       timing_rounds=3, timing_min_sample_s=0.002, **kw)


def test_count_flops_of_a_matmul():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4
    assert count_flops(lambda: a + 1) is None  # elementwise ops are not counted: no roofline then


def test_time_sides_sets_each_timing_against_the_measured_limit(monkeypatch):
    # a known peak (a measured one varies with the machine's load): the fraction is then exactly computable
    known = peak_mod.Peak(device="cpu", dtype="float32", flops_per_s=1e9, bytes_per_s=1e8, gemm_n=512,
                          copy_bytes=64 << 20)
    monkeypatch.setitem(peak_mod._PEAKS, ("cpu", str(torch.float32), torch.get_num_threads()), known)
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    out = CaseOutput(schema=schema(timing_facts()), kind="t")
    fl, nb = 2.0 * 64 ** 3, 3.0 * 64 * 64 * 4
    by = time_sides(_ctx(), out, "forward", {"x": ("X", lambda: a @ b), "y": ("Y", lambda: a @ b.t())}, "x",
                    flops={"x": fl, "y": fl}, bytes_moved={"x": nb})
    roof = by["x"].roofline
    expected = max(fl / 1e9, nb / 1e8) / by["x"].median_s
    assert abs(roof["fraction_of_roofline"] - expected) < 1e-12 * expected
    assert out.facts["timing.forward.x.fraction_of_roofline"] == roof["fraction_of_roofline"]
    assert by["y"].roofline is None and "timing.forward.y.fraction_of_roofline" not in out.facts  # no bytes given
    assert out.timings[0]["roofline"]["peak"]["flops_per_s"] == 1e9


def test_compare_carries_the_roofline_fraction():
    from reportgen.render.compare import _timings

    t = {"name": "forward", "label": "X", "samples_s": [1e-3, 1.1e-3, 0.9e-3], "median_s": 1e-3, "noisy": False,
         "num_threads": 2}
    old = {"timings": [t]}
    new = {"timings": [{**t, "roofline": {"fraction_of_roofline": 0.25}}]}
    rows = _timings([old, new], ["A", "B"], alpha=0.01, min_effect=0.05)
    assert rows[0]["roofline"] == [None, 0.25]


def test_the_answers_timeit_runs_in_named_regimes():
    from reportgen.cases.linear_vs_conv1d import FACTS, PUBLISHED_REGIMES, _published_timing

    out = CaseOutput(schema=FACTS, kind="linear_vs_conv1d")
    ctx = CaseContext(name="t", params={"published_timing_processes": 2}, device=torch.device("cpu"),
                      dtype=torch.float32, seed=0)
    _published_timing(ctx, out)
    for regime in PUBLISHED_REGIMES:
        key = f"timing.published.{regime}"
        f = out.facts
        assert f[f"{key}.processes"] == 2 and f[f"{key}.conv1d_over_linear"] > 0
        # the median of two processes lies inside their range; stable says whether they agree
        low, high = f[f"{key}.conv1d_over_linear.per_process_min"], f[f"{key}.conv1d_over_linear.per_process_max"]
        assert low <= f[f"{key}.conv1d_over_linear"] <= high
        assert f[f"{key}.stable"] == (high <= 1.3 * low and not f[f"{key}.conv1d_regime"].startswith("mixed"))
        assert f[f"{key}.conv1d_regime"] in ("warm", "faulting", "mixed: faulting, warm")
    rows = [r for t in out.tables if "%%timeit" in t.get("title", "") for r in t["rows"]]
    assert len(rows) == 2 * len(PUBLISHED_REGIMES)  # a row per fresh process
    one = CaseOutput(schema=FACTS, kind="linear_vs_conv1d")
    _published_timing(CaseContext(name="t", params={"published_timing_processes": 1}, device=torch.device("cpu"),
                                  dtype=torch.float32, seed=0), one)
    assert one.facts["timing.published.warm.processes"] == 1 and one.facts["timing.published.warm.stable"] is None
    assert any("1 process: agreement between processes not measured" in n for n in one.notes)
    # the warm allocator keeps oneDNN's buffers mapped: no page faults per Conv1d call there
    assert out.facts["timing.published.warm.conv1d_minflt_per_call"] < 50
    assert any("Timed as the answer times it" in n for n in out.notes)


@pytest.mark.parametrize("suite", ["default", "quick"])
def test_as_timed_claim_is_decided_only_where_every_fresh_process_agrees(suite):
    """The %%timeit claim reads each regime's median and its per-process range: holds when every process has
    Linear faster, does not hold when every one has Conv1d faster, inconclusive when the processes disagree."""
    from dataclasses import replace

    from reportgen.claims import evaluate
    from reportgen.results import CaseResult
    from reportgen.suite import load_suite

    spec = load_suite(suite).select(("linear_vs_conv1d",))
    claims = tuple(c for c in spec.cases[0].claims if c.id == "linear-faster-than-conv1d-cpu-as-timed")
    spec = replace(spec, cases=(replace(spec.cases[0], claims=claims),))

    def verdict(default: tuple[float, float, float], warm: tuple[float, float, float]) -> str:
        facts = {}
        for regime, (med, low, high) in (("default", default), ("warm", warm)):
            key = f"timing.published.{regime}.conv1d_over_linear"
            facts.update({key: med, f"{key}.per_process_min": low, f"{key}.per_process_max": high})
        r = CaseResult(id="linear_vs_conv1d/cpu/float32", case="linear_vs_conv1d", kind="linear_vs_conv1d",
                       description="", device="cpu", dtype="float32", params={}, seed=0, status="ok", facts=facts)
        return evaluate(spec, [r])[0]["verdict"]

    assert verdict((9.2, 1.8, 16.3), (2.0, 1.9, 2.1)) == "holds"
    assert verdict((0.8, 0.7, 0.9), (2.0, 1.9, 2.1)) == "does not hold"
    assert verdict((1.1, 0.9, 1.3), (2.0, 1.9, 2.1)) not in ("holds", "does not hold")  # processes disagree

"""Declared facts: undeclared names refused, claims checked at load, plugins, and a conformance run of every kind."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from reportgen import cases as registry
from reportgen.cases import CaseContext, CaseOutput
from reportgen.errors import UsageError
from reportgen.facts import BOOL, NUMBER, FactSpec, UndeclaredFact, schema
from reportgen.results import dumps
from reportgen.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent


def test_patterns_types_and_noise_siblings():
    s = schema([FactSpec("fwd.*.verdict", "str"), FactSpec("timing.*.*_median_s", NUMBER, timing=True,
                                                            noise=".noisy"), FactSpec("a.**.b", BOOL)])
    assert s.match("fwd.linear_vs_ref.verdict") and not s.match("fwd.verdict")
    assert s.match("timing.forward.linear_median_s").timing
    assert s.match("timing.forward.linear_median_s.noisy").type == BOOL  # declared with its fact
    assert s.match("a.x.y.z.b") and not s.match("a.b")
    out = CaseOutput(schema=s, kind="k")
    out.fact("fwd.x.verdict", "identical")
    out.fact("fwd.x.verdict", None)  # not measured is always allowed
    with pytest.raises(UndeclaredFact, match="did you mean 'fwd.\\*.verdict'"):
        out.fact("fwd.x.verdit", "identical")
    with pytest.raises(UndeclaredFact, match="declared number"):
        out.fact("timing.forward.linear_median_s", "fast")


def test_a_case_publishing_an_undeclared_fact_is_an_error_result(tmp_path):
    from reportgen import runner
    from reportgen.suite import CaseSpec, SuiteSpec

    @registry.register("_test_undeclared", "publishes a fact it does not declare (tests only)", defaults={},
                       facts=[FactSpec("declared", NUMBER)])
    def _run(ctx: CaseContext) -> CaseOutput:
        out = CaseOutput()  # no schema: the runner still checks what came back
        out.facts["typo"] = 1.0
        return out

    spec = SuiteSpec(name="t", description="", path="-", cases=(
        CaseSpec(name="u", kind="_test_undeclared", description="", devices=("cpu",), dtypes=("float32",), seed=0,
                 params={}),))
    run, _ = runner.run_suite(spec, tmp_path, command=["t"])
    assert run.cases[0].status == "error" and "'typo' is not declared" in run.cases[0].reason


def test_claim_naming_an_undeclared_fact_fails_at_load(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""
        cases:
          - name: lin
            kind: linear_vs_conv1d
            claims:
              - id: typo
                text: t
                source: s
                rule: {fact: fwd.linear_vs_conv1d.bitwise_equal_fracton, op: "<", value: 1.0}
    """))
    with pytest.raises(UsageError) as info:
        load_suite(str(p))
    msg = str(info.value)
    assert "bitwise_equal_fracton" in msg and "did you mean" in msg and "claim 'typo'" in msg and str(p) in msg
    # a precondition and a value reference are checked too
    p.write_text(p.read_text().replace("rule: {fact: fwd.linear_vs_conv1d.bitwise_equal_fracton, op: \"<\", "
                                       "value: 1.0}",
                                       "rule: {requires: {facts: [growth.conv_path_as_foward]}, fact: growth.conv_op,"
                                       " op: \"==\", value: {fact: forward.conv_op}}"))
    with pytest.raises(UsageError, match="conv_path_as_foward"):
        load_suite(str(p))


def test_bundled_suites_claims_name_declared_facts():
    for name in ("quick", "default"):
        load_suite(name)  # raises on any undeclared fact


def test_plugin_registered_through_entry_point_metadata(tmp_path):
    """A distribution declaring an entry point in group reportgen.cases: its kind is listed and runs."""
    site = tmp_path / "site"
    dist = site / "rg_plugin_demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rg-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[reportgen.cases]\ndemo = rg_plugin_demo\nbroken = rg_plugin_missing\n")
    (site / "rg_plugin_demo.py").write_text(textwrap.dedent('''
        import torch
        from reportgen.cases import register
        from reportgen.facts import FactSpec

        @register("demo_sum_order", "sum in two orders (plugin)", defaults={"n": 1000},
                  facts=[FactSpec("equal", "bool")])
        def run(ctx):
            out = ctx.output()
            x = torch.randn(ctx.params["n"], generator=ctx.generator())
            out.fact("equal", bool(x.sum() == x.flip(0).sum()))
            return out
    '''))
    suite = tmp_path / "s.yaml"
    suite.write_text("cases:\n  - {name: d, kind: demo_sum_order, params: {n: 100},\n"
                     "     claims: [{id: c, text: t, source: s, rule: {fact: equal, op: in, value: [true, false]}}]}\n")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "reportgen", "list"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "demo_sum_order" in listed.stdout and "plugin rg-plugin-demo" in listed.stdout
    assert "rg_plugin_missing" in listed.stdout  # the broken entry point is reported, not fatal
    ran = subprocess.run([sys.executable, "-m", "reportgen", "run", "--suite", str(suite), "--out",
                          str(tmp_path / "out"), "--format", "none"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    data = json.loads(next((tmp_path / "out").glob("*/results.json")).read_text())
    assert data["cases"][0]["status"] == "ok" and isinstance(data["cases"][0]["facts"]["equal"], bool)
    assert data["claims"][0]["verdict"] == "holds"


# ----------------------------------------------------------------------------------------------- conformance

#: tiny params per bundled kind (plugins and new kinds must add theirs: the test fails for a kind without)
TINY: dict[str, dict] = {
    "linear_vs_conv1d": {"batch": 4, "length": 8, "in_features": 4, "out_features": 3, "growth_depths": [1, 2, 4],
                         "growth_in_features": [4, 8, 16], "growth_rows": 16, "growth_width": 4},
    "fc_vs_conv2d_1x1": None,  # the quick suite's params
    "conv1d_semantics": None,
    "conv1d_cross_framework": None,
    "optimizer_drift": None,
    "shared_kernel_conv": {"batch": 2, "channels": 3, "height": 5, "width": 5, "train_steps": 3,
                           "train_report_steps": [1, 3], "train_size": 4, "train_batch": 2},
    "pair": {"a": "examples/gelu_tanh_vs_exact.py:a", "b": "examples/gelu_tanh_vs_exact.py:b",
             "inputs": "examples/gelu_tanh_vs_exact.py:inputs", "backward": True},
}


def _params(kind: str) -> dict:
    info = registry.get(kind)
    tiny = TINY[kind]
    if tiny is None:
        quick = {c.kind: c for c in load_suite("quick").cases}
        return dict(quick[kind].params)
    params = {**info.defaults, **tiny}
    if info.prepare is not None:
        params = dict(info.prepare(params, ROOT))
    return params


def _run(kind: str) -> dict:
    info = registry.get(kind)
    ctx = CaseContext(name=kind, params=_params(kind), device=torch.device("cpu"), dtype=torch.float32, seed=3,
                      timing_enabled=False, facts=info.facts)
    return info.run(ctx)


def _bits(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in registry.names() if not k.startswith("_")])
def test_conformance_of_every_registered_kind(kind):
    assert kind in TINY, f"{kind}: add tiny params for the conformance test"
    info = registry.get(kind)
    first, second = _run(kind), _run(kind)
    # JSON-safe: strict JSON (no NaN/inf, no tensors)
    for part in ("comparisons", "tables", "plots", "facts", "notes", "extra"):
        json.loads(dumps({part: getattr(first, part)}))
    # declared facts match the produced ones: every produced fact is declared, with the declared type
    for key, value in first.facts.items():
        info.facts.check(key, value, kind)
    assert first.facts, f"{kind} published no facts"
    # same seed, same bits: every fact that is not a timing, nor a library's own time share, repeats exactly
    volatile = ("reorder_time_share",)
    for key, value in first.facts.items():
        if info.facts.is_timing(key) or any(v in key for v in volatile):
            continue
        assert _bits(second.facts.get(key)) == _bits(value), f"{kind}: {key} changed between two runs"
    assert [c["max_abs"] for c in first.comparisons] == [c["max_abs"] for c in second.comparisons]

"""The seed cases were rebuilt on the pair engine (reportgen.engine): their facts must not have moved.

The fixture holds the default suite's non-timing facts from the last commit before the rebuild, on this kind of
machine (its CPU, thread count and torch are recorded with it). Facts that depend on the machine's load (kernel
time shares) are left out; everything else must be equal: verdicts, flags and kernel choices exactly, numbers to
1e-12 relative (they are deterministic on one machine: same inputs, same kernels, same threads)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reportgen import runner
from reportgen.measure.environment import collect_environment
from reportgen.suite import TimingSpec, load_suite

FIXTURE = Path(__file__).parent / "fixtures" / "default_facts_before_engine.json"
#: depend on the load of the machine, not on the code: library-reported time shares, cross-framework availability
_VOLATILE = ("reorder_time_share",)


def _same_machine(before: dict) -> str | None:
    env = collect_environment()
    cpu = env["cpu"]
    for key in ("isa", "logical_cpus", "torch_cpu_capability"):
        if cpu.get(key) != before["cpu"].get(key):
            return f"the fixture was recorded on another CPU ({key}: {before['cpu'].get(key)} vs {cpu.get(key)})"
    if torch.__version__ != before["torch"] or torch.get_num_threads() != before["num_threads"]:
        return f"the fixture was recorded with torch {before['torch']} on {before['num_threads']} threads"
    return None


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return a == b or (math.isfinite(a) and math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0))
    return a == b


@pytest.mark.slow
def test_default_suite_facts_unchanged_by_the_rebuild(tmp_path):
    before = json.loads(FIXTURE.read_text())
    why = _same_machine(before)
    if why:
        pytest.skip(why)
    suite = load_suite("default")
    # timing off: timings are not compared, and they use their own generator offsets
    suite = replace(suite, cases=tuple(replace(c, timing=TimingSpec(enabled=False)) for c in suite.cases))
    run, _ = runner.run_suite(suite, tmp_path, command=["test"])
    after = {c.id: c.facts for c in run.cases}
    assert set(after) == set(before["results"])
    problems = []
    for rid, old in before["results"].items():
        new = after[rid]
        for key, value in old.items():
            if any(v in key for v in _VOLATILE):
                continue
            if key not in new:
                problems.append(f"{rid}: {key} missing")
            elif not _equal(new[key], value):
                problems.append(f"{rid}: {key}: {value!r} -> {new[key]!r}")
    assert not problems, "\n".join(problems[:40])

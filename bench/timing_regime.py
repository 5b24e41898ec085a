"""Allocator regimes of the Conv1d(k=1) vs Linear timing, and a check of the harness against torch.utils.benchmark.

Usage: python bench/timing_regime.py [--json] [--rounds 9] [--repeat 3] [--min-sample-s 0.05] [--threads N]
                                     [--no-grad] [--results out/<run-id>/results.json]

The post's objects, as the answer builds them (``torch.manual_seed(0)`` first, as the report's run on seed 0):
``nn.Conv1d(8, 32, 1)`` on a (128, 8, 256) input (``tensor.permute(0, 2, 1).clone().contiguous()``) and
``nn.Linear(8, 32)`` sharing its parameters on the (128, 256, 8) tensor; CPU forward of the answer's two cells
``_ = linear(tensor)`` and ``_ = conv(permuted_tensor)`` with grad mode on, as published and as the report times
them (``--no-grad``: under ``torch.set_grad_enabled(False)`` instead: Conv1d then faults about 2,500 pages per call
in the default regime instead of about 1,000, and the ratio is ~2.7x larger).

``--results`` also checks a report's own ratios (``timing.published.<regime>.conv1d_over_linear`` of its
linear_vs_conv1d float32 CPU result, the answer's %%timeit in fresh processes) against this run's
torch.utils.benchmark children of the same regime; the report and this run must come from the same machine.

Which regime a call lands in depends on the allocator's history in its process, so every measurement here runs in
a fresh child whose regime is set by glibc tunables (``REGIMES``): "warm" (``MALLOC_TOP_PAD_`` + trim threshold:
freed memory stays in the heap), "faulting" (a fixed 128 KiB ``MALLOC_MMAP_THRESHOLD_``: every large buffer is
mapped afresh), and "default" (nothing set: what a reader's script gets). In each regime, ``--repeat`` times,
interleaved at the process level:

1. the in-process interleaved harness (``reportgen.measure.timing.time_interleaved``) in a child;
2. an independent ``torch.utils.benchmark.Timer.blocked_autorange`` of both sides in a child (written here), the
   sides interleaved over 7 short rounds and the ratio the median of the per-round ratios;
3. the published snippet with its own ``timeit`` (``reportgen.measure.regime.time_snippets_in_fresh_process``).

The check: the harness's Conv1d/Linear ratio within +-15 % of torch.utils.benchmark's in the same regime. Every
child records minor page faults per call (getrusage) and the regime they imply. The machine is shared (2 cores,
other jobs running): absolute times drift; raw samples and noise flags are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from reportgen.measure.regime import classify, time_snippets_in_fresh_process

SETUP = """
import torch
torch.manual_seed(0)
conv = torch.nn.Conv1d(8, 32, 1)
linear = torch.nn.Linear(8, 32)
linear.weight = torch.nn.Parameter(conv.weight.squeeze(2))
linear.bias = torch.nn.Parameter(conv.bias)
tensor = torch.randn(128, 256, 8)
permuted_tensor = tensor.permute(0, 2, 1).clone().contiguous()
"""
NO_GRAD = "torch.set_grad_enabled(False)\n"
STMTS = {"Linear": "_ = linear(tensor)", "Conv1d": "_ = conv(permuted_tensor)"}

# An independent fresh-process check: torch.utils.benchmark inside a new interpreter, faults around each side.
_BENCH_CHILD = r"""
import json, resource, statistics, sys
import torch.utils.benchmark as tb
ns = {}
exec(compile(sys.argv[1], "<setup>", "exec"), ns)
if len(sys.argv) > 3 and sys.argv[3] != "0":
    ns["torch"].set_num_threads(int(sys.argv[3]))
stmts = json.loads(sys.argv[2])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 7
timers = {label: tb.Timer(stmt=stmt, globals=ns, num_threads=ns["torch"].get_num_threads())
          for label, stmt in stmts.items()}
# interleaved: one short blocked_autorange of each side per round, so that load drift on a shared machine hits
# both sides alike; the ratio is the median of the per-round ratios
per_round = {label: [] for label in stmts}
numbers = {}
for _ in range(rounds):
    for label, timer in timers.items():
        m = timer.blocked_autorange(min_run_time=0.1)
        per_round[label].append(m.median)
        numbers[label] = m.number_per_run
out = {}
for label, timer in timers.items():
    # faults of the calls alone: one more block of the same size; Timer.timeit adds warm-up calls of its own,
    # counted on a no-op statement
    count = [0]
    def tick():
        count[0] += 1
    tb.Timer(stmt="tick()", globals={"tick": tick}).timeit(numbers[label])
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    timer.timeit(numbers[label])
    f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out[label] = {"median_s": statistics.median(per_round[label]), "per_round_s": per_round[label],
                  "number_per_run": numbers[label], "minflt_per_call_approx": (f1 - f0) / count[0]}
labels = list(stmts)
out["per_round_ratio"] = [c / l for l, c in zip(per_round[labels[0]], per_round[labels[1]])]
print(json.dumps(out))
"""


# The harness in a child, so that its allocator regime is the one the child's MALLOC_* env sets.
_HARNESS_CHILD = r"""
import json, sys
import torch
from reportgen.measure.timing import ratio_summary, time_interleaved
ns = {}
exec(compile(sys.argv[1], "<setup>", "exec"), ns)
if sys.argv[4] != "0":
    torch.set_num_threads(int(sys.argv[4]))
fns = {"Linear": lambda: ns["linear"](ns["tensor"]), "Conv1d": lambda: ns["conv"](ns["permuted_tensor"])}
res = {t.label: t for t in time_interleaved("forward", fns, device=torch.device("cpu"), rounds=int(sys.argv[2]),
                                            min_sample_s=float(sys.argv[3]))}
print(json.dumps({"sides": {k: v.to_dict() for k, v in res.items()},
                  "ratio": ratio_summary(res["Conv1d"], res["Linear"])}))
"""

#: Regimes made reproducible with glibc tunables. warm: a 256 MiB top pad (and trim threshold) keeps freed
#: memory in the heap, so no call faults. faulting: a fixed 128 KiB mmap threshold (setting it turns glibc's
#: dynamic threshold off) maps every large buffer afresh, so every call faults its pages in. "default": nothing
#: set -- what a reader's fresh script gets; its regime is whatever the allocator's history makes it.
REGIMES = {"warm": {"MALLOC_TOP_PAD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(512 << 20)},
           "faulting": {"MALLOC_MMAP_THRESHOLD_": str(128 << 10)},
           "default": {}}


def _env(extra: dict) -> dict:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(extra)
    return env


def _child(code: str, args: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          env=_env(env))
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def harness_child(env: dict, rounds: int, min_sample_s: float, threads: int, setup: str = SETUP) -> dict:
    out = _child(_HARNESS_CHILD, [setup, str(rounds), str(min_sample_s), str(threads)], env)
    if "error" not in out:
        out["conv1d_over_linear"] = out["ratio"]["ratio_of_medians"]
    return out


def benchmark_child(env: dict, threads: int, setup: str = SETUP, rounds: int = 7) -> dict:
    out = _child(_BENCH_CHILD, [setup, json.dumps(STMTS), str(threads), str(rounds)], env)
    if "error" not in out:
        for side in ("Linear", "Conv1d"):
            out[side]["regime"] = classify(out[side]["minflt_per_call_approx"])
        out["conv1d_over_linear"] = statistics.median(out["per_round_ratio"])
    return out


def timeit_child(env: dict, threads: int, setup: str = SETUP) -> dict:
    lin, conv = time_snippets_in_fresh_process(setup, [STMTS["Linear"], STMTS["Conv1d"]], repeat=7,
                                               malloc_env=env, threads=threads or None, timeout_s=600)
    return {"Linear": lin.to_dict(), "Conv1d": conv.to_dict(), "conv1d_over_linear": conv.median_s / lin.median_s}


def _regime_of(d: dict) -> str | None:
    if "sides" in d:
        return d["sides"]["Conv1d"]["regime"]
    if "regime" in d.get("Conv1d", {}):
        return d["Conv1d"]["regime"]
    return None


def _faults(d: dict) -> float | None:
    c = d.get("sides", d).get("Conv1d", {})
    for key in ("mean_minflt_per_call", "minflt_per_call", "minflt_per_call_approx"):
        if key in c:  # the fresh timeit child keeps one value per repeat under minflt_per_call: take the mean
            v = c[key]
            return sum(v) / len(v) if isinstance(v, list) else v
    return None


def _agree(a: float, b: float, tol: float = 0.15) -> dict:
    return {"harness": a, "torch_utils_benchmark": b, "rel_diff": a / b - 1.0, "within_15pct": abs(a / b - 1.0) <= tol}


def report_check(path: str, res: dict) -> dict:
    """The report's own published-timing ratio per regime against this run's torch.utils.benchmark median in the
    same regime (the report's regime names: default = glibc defaults, warm = this script's warm tunables)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    result = next((c for c in data.get("cases", []) if c.get("kind") == "linear_vs_conv1d"
                   and c.get("device") == "cpu" and c.get("dtype") == "float32" and c.get("status") == "ok"), None)
    if result is None:
        return {"error": "no ok linear_vs_conv1d/cpu/float32 result in " + path}
    out = {}
    for regime in ("default", "warm"):
        facts = result.get("facts", {})
        mine = facts.get(f"timing.published.{regime}.conv1d_over_linear")
        if regime not in res["regimes"]:
            continue
        tb = res["regimes"][regime]["summary"]["torch_utils_benchmark"]
        if mine is None or tb["ratio_median"] is None:
            out[regime] = None
            continue
        out[regime] = {**_agree(mine, tb["ratio_median"]),
                       "report_conv1d_regime": facts.get(f"timing.published.{regime}.conv1d_regime"),
                       "benchmark_conv1d_regimes": tb["conv1d_regimes"]}
        out[regime]["report"] = out[regime].pop("harness")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=3, help="children per regime and method (interleaved)")
    ap.add_argument("--min-sample-s", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the children (0: torch's default)")
    ap.add_argument("--no-grad", action="store_true", help="time under torch.set_grad_enabled(False)")
    ap.add_argument("--results", help="a report's results.json: check its published-timing ratios too")
    ap.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated subset of " + ",".join(REGIMES))
    a = ap.parse_args()
    setup = SETUP + (NO_GRAD if a.no_grad else "")
    t0 = time.perf_counter()
    res: dict = {"torch": torch.__version__, "threads": a.threads or torch.get_num_threads(), "rounds": a.rounds,
                 "min_sample_s": a.min_sample_s, "repeat": a.repeat, "grad": not a.no_grad, "regimes": {}}
    for name in a.regimes.split(","):
        if name not in REGIMES:
            ap.error(f"--regimes: unknown regime {name!r} (known: {', '.join(REGIMES)})")
        env = REGIMES[name]
        runs: dict[str, list] = {"harness": [], "torch_utils_benchmark": [], "published_timeit": []}
        for _ in range(a.repeat):  # interleave the methods at the process level: load drift hits all three
            runs["harness"].append(harness_child(env, a.rounds, a.min_sample_s, a.threads, setup))
            runs["torch_utils_benchmark"].append(benchmark_child(env, a.threads, setup))
            runs["published_timeit"].append(timeit_child(env, a.threads, setup))
        summary = {}
        for method, rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            summary[method] = {"ratio_median": statistics.median(r["conv1d_over_linear"] for r in ok) if ok else None,
                               "ratios": [r["conv1d_over_linear"] for r in ok],
                               "conv1d_regimes": [_regime_of(r) for r in ok],
                               "conv1d_minflt_per_call": [_faults(r) for r in ok],
                               "errors": [r["error"] for r in rs if "error" in r]}
        # the check, for both ratios the report shows: the interleaved harness's and the published snippet's
        # own timeit in a fresh process, each against torch.utils.benchmark in fresh processes of the same regime
        b = summary["torch_utils_benchmark"]["ratio_median"]
        b_regimes = set(summary["torch_utils_benchmark"]["conv1d_regimes"])
        for method in ("harness", "published_timeit"):
            h = summary[method]["ratio_median"]
            regimes = set(summary[method]["conv1d_regimes"])
            summary[f"check_{method}"] = None if h is None or b is None else {
                **_agree(h, b), "same_regime_in_every_child": regimes == b_regimes and len(regimes) == 1}
        res["regimes"][name] = {"malloc_env": env, "runs": runs, "summary": summary}
    conv = {n: statistics.median(r["sides"]["Conv1d"]["median_s"] for r in v["runs"]["harness"] if "sides" in r)
            for n, v in res["regimes"].items()}
    if "faulting" in conv and "warm" in conv:
        res["conv1d_faulting_over_warm"] = conv["faulting"] / conv["warm"]
    if a.results:
        res["report_check"] = report_check(a.results, res)
    res["wall_s"] = time.perf_counter() - t0
    if a.json:
        print(json.dumps(res, indent=1))
        return
    for name, v in res["regimes"].items():
        print(f"== regime {name} (env {v['malloc_env'] or 'none'})")
        for r in v["runs"]["harness"]:
            if "sides" not in r:
                print("   harness error:", r.get("error"))
                continue
            for side, d in r["sides"].items():
                print(f"   harness {side:<7} median {d['median_s'] * 1e6:9.1f} us IQR/med {d['iqr_over_median']:.2f}"
                      f"{' NOISY' if d['noisy'] else ''} faults/call {d['minflt_per_call']:.0f} ({d['regime']}) "
                      f"{d['runs']}x{d['number']} samples_us {[round(x * 1e6) for x in d['samples_s']]}")
        for method, s_ in v["summary"].items():
            if not method.startswith("check"):
                print(f"   {method:<22} Conv1d/Linear {['%.2f' % x for x in s_['ratios']]} median "
                      f"{s_['ratio_median']} regimes {s_['conv1d_regimes']} faults/call "
                      f"{[None if f is None else round(f) for f in s_['conv1d_minflt_per_call']]}")
        for method in ("harness", "published_timeit"):
            print(f"   check {method} vs torch.utils.benchmark:", json.dumps(v["summary"][f"check_{method}"]))
    check = res.get("report_check") or {}
    if "error" in check:
        print(f"report {a.results}: {check['error']}")
    else:
        for regime, chk in check.items():
            print(f"report {a.results}, regime {regime}: {json.dumps(chk)}")
    if "conv1d_faulting_over_warm" in res:
        print(f"Conv1d faulting/warm (harness medians): {res['conv1d_faulting_over_warm']:.2f}")
    print(f"wall {res['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

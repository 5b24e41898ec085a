"""Allocator regimes of a timed call: page faults and RSS growth per call, and a fresh-process timer.

Why: on CPU the same ``nn.Conv1d(8, 32, 1)`` forward takes ~0.5 ms in one process and ~5 ms in another. In the
slow one each call faults in fresh pages for its temporary buffers (oneDNN's blocked layouts): glibc returns large
freed blocks to the kernel (``munmap`` above the mmap threshold, heap trimming at the top), so the next call's
``malloc`` gets untouched pages and pays a minor page fault per 4 KiB page it writes. Which regime a call lands in
depends on the allocator's history in that process; a fresh script running the post's ``timeit`` is the regime a
reader sees. So every timing records its faults per call, and :func:`time_in_fresh_process` times a snippet as
published in a new interpreter, beside the in-process interleaved harness (:mod:`reportgen.measure.timing`).

Counters: ``resource.getrusage(RUSAGE_SELF).ru_minflt`` (minor faults of the whole process, every thread) and the
resident set from ``/proc/self/statm`` (Linux; ``None`` elsewhere).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

#: A call that faults in more pages than this per call runs in the "faulting" regime. A warm call writes into
#: pages the allocator already holds and faults ~0 times; the faulting Conv1d forward above faults ~2000 times
#: (8 MiB of fresh pages). 16 pages (64 KiB) sits far from both and above the noise of a Python-level call
#: (a few pages now and then when an interpreter arena grows).
FAULTING_MINFLT_PER_CALL = 16.0
WARM, FAULTING = "warm", "faulting"

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: glibc tunables that change the regime; a fresh child gets exactly the ones asked for, never the parent's
MALLOC_ENV_PREFIX = "MALLOC_"
#: glibc tunables that keep freed memory in the heap (a large top pad, and a trim threshold above it so the pad is
#: not given back at every free): the warm regime a long-lived process usually reaches
WARM_ALLOCATOR = {"MALLOC_TOP_PAD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(512 << 20)}


def minor_faults() -> int:
    """Minor page faults of this process so far (all threads)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def rss_bytes() -> int | None:
    """Resident set size now, from /proc/self/statm (second field, in pages); None where there is no /proc."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def classify(minflt_per_call: float | None, threshold: float = FAULTING_MINFLT_PER_CALL) -> str | None:
    """"warm" or "faulting" from the faults per call; None when they were not measured."""
    if minflt_per_call is None:
        return None
    return FAULTING if minflt_per_call > threshold else WARM


@dataclass
class FaultCounter:
    """Accumulates faults and RSS growth over timed blocks: ``with counter.block(calls): run calls``."""

    calls: int = 0
    minflt: int = 0
    rss_growth: int | None = 0
    per_block: list[float] = field(default_factory=list)  # faults per call of each block (one timing sample)

    def add(self, calls: int, faults: int, rss_growth: int | None) -> None:
        self.calls += calls
        self.minflt += faults
        self.rss_growth = None if rss_growth is None or self.rss_growth is None else self.rss_growth + rss_growth
        self.per_block.append(faults / calls if calls else 0.0)

    @property
    def minflt_per_call(self) -> float | None:
        return self.minflt / self.calls if self.calls else None

    @property
    def rss_growth_per_call(self) -> float | None:
        return self.rss_growth / self.calls if self.calls and self.rss_growth is not None else None

    def summary(self) -> dict[str, Any]:
        return {"minflt_per_call": self.minflt_per_call, "rss_growth_per_call_bytes": self.rss_growth_per_call,
                "minflt_per_sample": list(self.per_block), "regime": classify(self.minflt_per_call),
                "regime_threshold_minflt_per_call": FAULTING_MINFLT_PER_CALL}


class Block:
    """Context manager measuring one block of ``calls`` calls into a :class:`FaultCounter`."""

    def __init__(self, counter: FaultCounter, calls: int) -> None:
        self.counter, self.calls = counter, calls

    def __enter__(self) -> "Block":
        self.f0, self.r0 = minor_faults(), rss_bytes()
        return self

    def __exit__(self, *exc: Any) -> None:
        r1 = rss_bytes()
        growth = None if r1 is None or self.r0 is None else r1 - self.r0
        self.counter.add(self.calls, minor_faults() - self.f0, growth)


# ----------------------------------------------------------------------------------------------- fresh process

# Runs in the child: the snippet's setup, then the post's own timeit loop (autorange for the loop count, then
# `repeat` runs, as IPython's %timeit does), with faults/RSS around each run. Reads its request from stdin.
_CHILD = r"""
import json, os, resource, sys, timeit
req = json.loads(sys.stdin.read())
def flt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def rss():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        return None
ns = {}
exec(compile(req["setup"], "<setup>", "exec"), ns)
if req.get("threads"):
    import torch
    torch.set_num_threads(int(req["threads"]))
out = []
for stmt in req["stmts"]:
    t = timeit.Timer(stmt, globals=ns)
    number = req["number"]
    if not number:
        number, _ = t.autorange()
    runs, faults, growth = [], [], []
    for _ in range(req["repeat"]):
        f0, r0 = flt(), rss()
        runs.append(t.timeit(number) / number)
        f1, r1 = flt(), rss()
        faults.append((f1 - f0) / number)
        growth.append(None if r0 is None or r1 is None else (r1 - r0) / number)
    out.append({"per_call_s": runs, "number": number, "minflt_per_call": faults, "rss_growth_per_call": growth})
threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
print(json.dumps({"results": out, "num_threads": threads}))
"""


@dataclass
class FreshTiming:
    """Per-call seconds of ``stmt`` timed by ``timeit`` in a new interpreter (one value per repeat)."""

    stmt: str
    per_call_s: list[float]
    number: int
    minflt_per_call: list[float]
    rss_growth_per_call_bytes: list[float | None]
    malloc_env: dict[str, str]
    num_threads: int | None

    @property
    def mean_s(self) -> float:
        return sum(self.per_call_s) / len(self.per_call_s)

    @property
    def median_s(self) -> float:
        s = sorted(self.per_call_s)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

    @property
    def mean_minflt_per_call(self) -> float:
        return sum(self.minflt_per_call) / len(self.minflt_per_call)

    @property
    def regime(self) -> str | None:
        return classify(self.mean_minflt_per_call)

    def to_dict(self) -> dict[str, Any]:
        return {"stmt": self.stmt, "per_call_s": list(self.per_call_s), "number": self.number,
                "mean_s": self.mean_s, "median_s": self.median_s, "minflt_per_call": list(self.minflt_per_call),
                "mean_minflt_per_call": self.mean_minflt_per_call,
                "rss_growth_per_call_bytes": list(self.rss_growth_per_call_bytes), "regime": self.regime,
                "malloc_env": dict(self.malloc_env), "num_threads": self.num_threads, "process": "fresh"}


class FreshProcessError(RuntimeError):
    """The child failed or timed out; the message says which, with the tail of its stderr."""


def time_in_fresh_process(setup: str, stmt: str, *, number: int = 0, repeat: int = 7, timeout_s: float = 120.0,
                          malloc_env: Mapping[str, str] | None = None, threads: int | None = None) -> FreshTiming:
    """Time ``stmt`` after ``setup`` (both Python source, as published) in a fresh child of this interpreter with
    its own ``timeit`` loop: ``number`` calls per run (0: ``Timer.autorange`` picks it, as ``%timeit`` does),
    ``repeat`` runs. The child's allocator starts cold, as a reader's script does.

    The child inherits the environment except the glibc ``MALLOC_*`` tunables, replaced by ``malloc_env``
    (e.g. ``{"MALLOC_TOP_PAD_": str(256 << 20)}``), so the regime is the one asked for, not whatever the parent
    had. ``threads`` sets torch's intra-op threads in the child (after setup); None leaves its default."""
    return time_snippets_in_fresh_process(setup, [stmt], number=number, repeat=repeat, timeout_s=timeout_s,
                                          malloc_env=malloc_env, threads=threads)[0]


def time_snippets_in_fresh_process(setup: str, stmts: list[str], *, number: int = 0, repeat: int = 7,
                                   timeout_s: float = 120.0, malloc_env: Mapping[str, str] | None = None,
                                   threads: int | None = None) -> list[FreshTiming]:
    """As :func:`time_in_fresh_process`, for several statements timed one after the other in *one* fresh child
    (a notebook timing ``linear(x)`` and then ``conv(x_t)``): the later ones see the allocator the earlier left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MALLOC_ENV_PREFIX)}
    for key, value in (malloc_env or {}).items():
        if not key.startswith(MALLOC_ENV_PREFIX):
            raise ValueError(f"malloc_env: {key!r} is not a glibc MALLOC_* tunable")
        env[key] = str(value)
    request = json.dumps({"setup": setup, "stmts": list(stmts), "number": int(number), "repeat": int(repeat),
                          "threads": threads})
    what = ", ".join(map(repr, stmts))
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=request, env=env, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise FreshProcessError(f"fresh-process timing of {what} timed out after {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["(no stderr)"]
        raise FreshProcessError(f"fresh-process timing of {what}: child exited {proc.returncode}: {tail[0][:300]}")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        results = data["results"]
    except (json.JSONDecodeError, IndexError, KeyError, TypeError):
        raise FreshProcessError(f"fresh-process timing of {what}: unreadable child output") from None
    return [FreshTiming(stmt=stmt, per_call_s=[float(v) for v in r["per_call_s"]], number=int(r["number"]),
                        minflt_per_call=[float(v) for v in r["minflt_per_call"]],
                        rss_growth_per_call_bytes=r["rss_growth_per_call"],
                        malloc_env={k: str(v) for k, v in (malloc_env or {}).items()},
                        num_threads=data.get("num_threads")) for stmt, r in zip(stmts, results)]

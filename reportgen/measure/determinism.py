"""Is each side reproducible with itself, and which settings change its bits?

Three measurements per case, all from real runs:

* **self-consistency**: run each side ``repeats`` times in-process under the same settings; count distinct outputs.
* **settings matrix**: run each side under each cell of settings (threads, deterministic algorithms, cuDNN
  benchmark/deterministic, TF32 for matmul and conv); each cell is bitwise equal to the baseline cell or reports the
  measured difference, normalised by the caller's rounding-error bound. The same cells also compare the sides with
  each other, which is where e.g. the TF32 part of a Conv1d-vs-Linear difference on an Ampere+ GPU shows.
* **controls**: an operation known to be nondeterministic on CUDA (``index_add_`` with float atomics) proves the
  check can see nondeterminism at all; a thread-count-sensitive reduction proves the matrix can see a settings
  effect on CPU. On CPU the atomics control is expected to be deterministic, and the report says so.

Settings are applied with :func:`reportgen.measure.settings.applied_settings`, which restores the previous state;
every cell records the settings it ran under.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, Callable

import torch

from reportgen.measure.settings import applied_settings

Bound = Callable[[str], torch.Tensor] | torch.Tensor | None

_NUMERIC_KEYS = ("deterministic_algorithms", "cudnn.benchmark", "cudnn.deterministic", "cuda.matmul.fp32_precision",
                 "cudnn.conv.fp32_precision", "float32_matmul_precision", "mkldnn.enabled", "num_threads")


def cpu_cells() -> dict[str, dict[str, Any]]:
    """Cells of the CPU matrix: thread count, deterministic algorithms, oneDNN on/off."""
    n = torch.get_num_threads()
    cells: dict[str, dict[str, Any]] = {"baseline": {}}
    if n > 1:
        cells["threads=1"] = {"num_threads": 1}
    cells[f"threads={n}"] = {"num_threads": n}
    cells["deterministic algorithms"] = {"deterministic_algorithms": True}
    cells["oneDNN off"] = {"mkldnn_enabled": False}
    return cells


def cuda_cells() -> dict[str, dict[str, Any]]:
    """Cells of the CUDA matrix: determinism switches, TF32 for matmul and conv.

    No cudnn.benchmark cell: in one process cuDNN's plan cache (keyed without benchmark) hands the benchmark call
    the plan the baseline call chose, so the cell would always read "bitwise equal". Its effect is measured in
    fresh processes instead (kernels.cudnn_benchmark_effect)."""
    return {
        "baseline": {},
        "deterministic algorithms": {"deterministic_algorithms": True},
        "cudnn.deterministic": {"cudnn_deterministic": True},
        "matmul TF32 on": {"matmul_tf32": True},
        "conv TF32 off": {"conv_tf32": False},
        "TF32 off (matmul+conv)": {"matmul_tf32": False, "conv_tf32": False},
        "TF32 on (matmul+conv)": {"matmul_tf32": True, "conv_tf32": True},
    }


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Integer view of the float bits, so NaNs compare equal to themselves and -0 differs from +0."""
    t = t.detach().contiguous()
    view = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16,
            torch.bfloat16: torch.int16}.get(t.dtype)
    return t.view(view) if view is not None else t


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(_bits(a), _bits(b)))


def _bound_for(bound: Bound, label: str) -> torch.Tensor | None:
    if bound is None:
        return None
    return bound(label) if callable(bound) else bound


def difference(a: torch.Tensor, b: torch.Tensor, bound: torch.Tensor | None) -> dict[str, Any]:
    """Bitwise equality, else max |a-b|, the fraction of differing elements and max |a-b| / bound."""
    if bitwise_equal(a, b):
        return {"bitwise_equal": True, "max_abs": 0.0, "differing_fraction": 0.0,
                "max_normalised": 0.0 if bound is not None else None}
    d = (a.detach().double().cpu() - b.detach().double().cpu()).abs()
    out: dict[str, Any] = {"bitwise_equal": False, "max_abs": float(d.max()),
                           "differing_fraction": float((_bits(a).cpu() != _bits(b).cpu()).double().mean())}
    if bound is not None:
        bd = bound.detach().double().cpu().expand_as(d)
        # Where the bound is 0 (exact zero terms) any difference is infinitely out of bound.
        ratio = torch.where(bd > 0, d / bd.clamp_min(torch.finfo(torch.float64).tiny),
                            torch.where(d > 0, torch.full_like(d, float("inf")), torch.zeros_like(d)))
        out["max_normalised"] = float(ratio.max())
    else:
        out["max_normalised"] = None
    return out


def _run(fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    out = fn()
    return out.detach().clone()


def self_consistency(fn: Callable[[], torch.Tensor], repeats: int, bound: torch.Tensor | None) -> dict[str, Any]:
    """Run ``fn`` ``repeats`` times; count distinct bit patterns and the largest difference from the first run."""
    outs = [_run(fn) for _ in range(repeats)]
    bound = 2 * bound if bound is not None else None  # two runs, each within the bound of the exact value
    distinct: list[torch.Tensor] = []
    for o in outs:
        if not any(bitwise_equal(o, d) for d in distinct):
            distinct.append(o)
    worst = max((difference(o, outs[0], bound) for o in outs[1:]),
                key=lambda d: d["max_abs"], default=difference(outs[0], outs[0], bound))
    return {"repeats": repeats, "distinct_outputs": len(distinct), "self_consistent": len(distinct) == 1,
            "worst_vs_first": worst}


def _recorded(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) for k in _NUMERIC_KEYS}


def settings_matrix(sides: dict[str, Callable[[], torch.Tensor]], cells: dict[str, dict[str, Any]],
                    bound: Bound) -> dict[str, Any]:
    """Each side under each cell vs that side's baseline cell; each pair of sides compared within each cell."""
    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    baseline = next(iter(cells))
    for cell, settings in cells.items():
        results[cell] = {"applied": settings, "sides": {}, "pairs": {}}
        outputs[cell] = {}
        try:
            with applied_settings(**settings) as recorded:
                results[cell]["settings"] = _recorded(recorded)
                for label, fn in sides.items():
                    try:
                        fn()  # warm-up: e.g. cudnn.benchmark picks its algorithm on the first call
                        outputs[cell][label] = _run(fn)
                    except RuntimeError as exc:  # e.g. an op without a deterministic implementation
                        results[cell]["sides"][label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        except RuntimeError as exc:
            results[cell]["error"] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        for label, out in outputs[cell].items():
            base, b = outputs[baseline].get(label), _bound_for(bound, label)
            # Both runs carry their own rounding error, each within the side's bound: the difference is within 2x.
            results[cell]["sides"][label] = (difference(out, base, 2 * b if b is not None else None)
                                             if base is not None else {"error": "no baseline output"})
        for a, b in itertools.combinations(outputs[cell], 2):
            ba, bb = _bound_for(bound, a), _bound_for(bound, b)
            pair_bound = ba + bb if ba is not None and bb is not None else None
            results[cell]["pairs"][f"{a} vs {b}"] = difference(outputs[cell][a], outputs[cell][b], pair_bound)
    return results


# ------------------------------------------------------------------------------------------------ controls


def atomics_control(device: torch.device, repeats: int = 5, n: int = 1 << 18, bins: int = 64) -> dict[str, Any]:
    """``index_add_`` of many float32 values into few bins: float atomics on CUDA make the order (and the bits) vary.

    Run ``repeats`` times with default settings and, where it applies, with deterministic algorithms on.
    """
    gen = torch.Generator().manual_seed(1234)
    src = torch.randn(n, generator=gen).to(device)
    idx = torch.randint(0, bins, (n,), generator=gen).to(device)

    def run() -> torch.Tensor:
        return torch.zeros(bins, device=device).index_add_(0, idx, src)

    out: dict[str, Any] = {"op": f"index_add_ of {n} float32 values into {bins} bins", "device": str(device),
                           "default": self_consistency(run, repeats, None)}
    try:
        with applied_settings(deterministic_algorithms=True):
            out["deterministic algorithms"] = self_consistency(run, repeats, None)
    except RuntimeError as exc:
        out["deterministic algorithms"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    out["nondeterminism_seen"] = not out["default"]["self_consistent"]
    if device.type == "cuda":
        out["reading"] = ("the check sees nondeterminism" if out["nondeterminism_seen"] else
                          "no nondeterminism seen in this many runs: atomics ordering happened to repeat; "
                          "the check's sensitivity is not demonstrated by this run")
    else:
        out["reading"] = ("nondeterminism seen on CPU (unexpected for this op)" if out["nondeterminism_seen"] else
                          "deterministic on CPU, as expected: the CPU kernel adds in a fixed order, so this "
                          "control cannot show nondeterminism here (see the threads control for sensitivity)")
    return out


def threads_control(n: int = 1 << 20) -> dict[str, Any]:
    """A float32 sum with 1 thread vs all threads: a parallel reduction's order depends on the thread count."""
    gen = torch.Generator().manual_seed(4321)
    x = torch.randn(n, generator=gen)
    # All cores, not the current count: a case pinned to 1 thread (suite settings) still gets a comparison.
    threads = max(torch.get_num_threads(), os.cpu_count() or 1)
    with applied_settings(num_threads=1):
        one = x.sum()
    with applied_settings(num_threads=threads):
        many = x.sum()
    d = difference(one, many, None)
    return {"op": f"sum of {n} float32 values", "threads": [1, threads], **d,
            "reading": ("only one thread available: nothing to compare" if threads == 1 else
                        "thread count changes the bits: the matrix can see a settings effect" if not
                        d["bitwise_equal"] else "thread count did not change the bits of this reduction")}


# ------------------------------------------------------------------------------------------------ section


def _fact_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def determinism_section(sides: dict[str, Callable[[], torch.Tensor]], device: torch.device,
                        bound: Bound = None, repeats: int = 5,
                        cells: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Self-consistency, settings matrix and controls; JSON-able, for ``CaseOutput.extra["determinism"]``.

    ``sides`` maps a label to a callable returning that side's output tensor. ``bound`` is the elementwise float64
    error bound of a side's output (a tensor for all sides, or a callable label -> tensor); differences between
    two sides are normalised by the sum of their bounds. ``facts`` holds flat facts such as
    ``determinism.<side>.self_consistent`` and ``determinism.<side>.<cell>.bitwise_equal``.
    """
    cells = cells if cells is not None else (cuda_cells() if device.type == "cuda" else cpu_cells())
    section: dict[str, Any] = {"device": str(device), "repeats": repeats, "self": {}, "notes": []}
    for label, fn in sides.items():
        try:
            fn()  # warm-up outside the count: first calls may pick algorithms
            section["self"][label] = self_consistency(fn, repeats, _bound_for(bound, label))
        except RuntimeError as exc:
            section["self"][label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    section["matrix"] = settings_matrix(sides, cells, bound)
    section["controls"] = {"atomics": atomics_control(device, repeats)}
    if device.type == "cpu":
        section["controls"]["threads"] = threads_control()
    if device.type == "cuda":
        section["notes"].append("TF32 rounds inputs to 10 mantissa bits: cells with TF32 on are expected to exceed "
                                "the fp32 rounding bound; that excess is the TF32 effect, not an error.")
        section["notes"].append("With deterministic algorithms on, cuBLAS raises unless CUBLAS_WORKSPACE_CONFIG is "
                                "set (e.g. :4096:8) before the run; such a cell shows the error instead of a result.")
        section["notes"].append("cudnn.benchmark has no cell: within one process cuDNN reuses the plan the first "
                                "call chose whatever the flag says; where a case provides the call as code, the "
                                "kernels section compares the engines cuDNN picks with benchmark off and on, each "
                                "in a fresh process.")
        section["tf32_effect"] = tf32_effect(section["matrix"])
        section["notes"] += [e["note"] for e in section["tf32_effect"].values()]
    section["facts"] = _facts(section)
    return section


def tf32_effect(matrix: dict[str, Any], off: str = "TF32 off (matmul+conv)") -> dict[str, Any]:
    """Per pair of sides: the difference with default settings against the difference with TF32 off.

    By default cuDNN convolutions may use TF32 while cuBLAS matmuls do not, so an fp32 Conv1d(k=1)-vs-Linear
    difference on an Ampere+ GPU is mostly TF32; turning it off shows how much of it was.
    """
    base, cell = matrix.get("baseline", {}), matrix.get(off, {})
    out: dict[str, Any] = {}
    for pair, d0 in base.get("pairs", {}).items():
        d1 = cell.get("pairs", {}).get(pair)
        if d1 is None or "max_abs" not in d0 or "max_abs" not in d1:
            continue
        ratio = d1["max_abs"] / d0["max_abs"] if d0["max_abs"] > 0 else None
        conv_prec = base.get("settings", {}).get("cudnn.conv.fp32_precision")
        matmul_prec = base.get("settings", {}).get("cuda.matmul.fp32_precision")
        out[pair] = {"baseline_max_abs": d0["max_abs"], "tf32_off_max_abs": d1["max_abs"],
                     "baseline_max_normalised": d0.get("max_normalised"),
                     "tf32_off_max_normalised": d1.get("max_normalised"), "off_over_baseline": ratio,
                     "note": (f"{pair}: max |Δ| {d0['max_abs']:.3g} with default settings (cuDNN conv "
                              f"fp32_precision={conv_prec}, cuBLAS matmul fp32_precision={matmul_prec}), "
                              f"{d1['max_abs']:.3g} with TF32 off"
                              + (f" ({ratio:.3g}× the default)." if ratio is not None else "."))}
    return out


def _facts(section: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for label, s in section["self"].items():
        if "error" in s:
            continue
        key = f"determinism.{_fact_name(label)}"
        facts[f"{key}.self_consistent"] = s["self_consistent"]
        facts[f"{key}.distinct_outputs"] = s["distinct_outputs"]
    for cell, r in section["matrix"].items():
        for label, d in r["sides"].items():
            if "bitwise_equal" in d:
                facts[f"determinism.{_fact_name(label)}.{_fact_name(cell)}.bitwise_equal"] = d["bitwise_equal"]
        for pair, d in r["pairs"].items():
            key = f"determinism.{_fact_name(pair)}.{_fact_name(cell)}"
            facts[f"{key}.bitwise_equal"] = d["bitwise_equal"]
            if d.get("max_normalised") is not None:
                facts[f"{key}.max_normalised"] = d["max_normalised"]
    for pair, e in section.get("tf32_effect", {}).items():
        facts[f"determinism.{_fact_name(pair)}.tf32_off_over_baseline"] = e["off_over_baseline"]
    facts["determinism.control.nondeterminism_seen"] = section["controls"]["atomics"]["nondeterminism_seen"]
    if "threads" in section["controls"]:
        facts["determinism.control.threads_change_bits"] = not section["controls"]["threads"]["bitwise_equal"]
    return facts

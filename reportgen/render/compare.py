"""Compare two or more runs: what differs in the environment, which verdicts and claims changed, which timings
moved by more than noise.

The first input is the baseline (A); every other input X is compared with it (X/A). Inputs are results dicts
(see ``reportgen.render.inputs.load_input``); the comparison itself is a JSON-able dict (the *model*) that the
terminal summary, the HTML/PDF page and the Markdown summary all render, so they cannot disagree.

Timing: a ratio of medians X/A per (result, statement, side), tested on the raw per-call samples with a two-sided
Mann–Whitney U test (scipy, when installed; asv uses the same test) or, without scipy, a bootstrap confidence
interval of the median ratio. A change is reported as faster/slower only if it is significant at ``alpha`` *and*
at least ``min_effect`` in size: with enough samples a 0.5 % drift is "significant" and still irrelevant.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable

import numpy as np

from reportgen.render.html import comparison_label, fmt_duration, fmt_num, worst_verdict

MIN_EFFECT = 0.05
ALPHA = 0.01
FASTER, SLOWER, SAME = "faster", "slower", "no significant difference"
_BOOTSTRAP = 4000

# Machine *state* at run time (not configuration) and which rank of a launch a run was (launch.*): expected to differ between any two runs, so it is listed apart
# and never headlines a comparison.
_VOLATILE = re.compile(r"(^launch\.|^memory\.available|load_avg|temperature|power_draw|power\.draw|clocks?\.(current|sm|mem)"
                       r"|memory_used|memory\.used|utili[sz]ation|pstate|fan)", re.IGNORECASE)
# Order in which differing environment fields are shown: what decides numerics and speed first.
_PRIORITY = [r"^cuda\.devices\[\d+\]\.name$", r"^cpu\.model$", r"driver", r"cudnn.*version|version.*cudnn",
             r"^cuda\.", r"^torch\.(version|git_version)$", r"^packages\.torch$",
             r"tf32|fp32_precision|float32_matmul|reduced_precision|fp16_accumulation",
             r"num_threads|num_interop_threads|OMP_NUM_THREADS|MKL_NUM_THREADS",
             r"^settings\.", r"^env_vars\.", r"^torch\.", r"^packages\.", r"^cpu\.", r"^platform\."]
# Case settings under which timings of the same statement are not comparable.
_TIMING_SENSITIVE = re.compile(r"(num_threads|num_interop_threads|tf32|fp32_precision|float32_matmul_precision"
                               r"|reduced_precision|fp16_accumulation|cudnn\.benchmark$|deterministic_algorithms"
                               r"|default_dtype|mkldnn\.enabled|cudnn\.enabled)")


def labels(n: int) -> list[str]:
    return [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(n)]


# ---------------------------------------------------------------------------------------------- environment

def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested environment dict -> {"cuda.devices[0].name": value, ...}; lists of scalars stay one value."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, item in enumerate(v):
                out.update(flatten(item, f"{key}[{i}]"))
        else:
            out[key] = v
    return out


def _priority(key: str) -> int:
    return next((i for i, pat in enumerate(_PRIORITY) if re.search(pat, key)), len(_PRIORITY))


def env_diff(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(configuration fields that differ, machine-state fields that differ), each [{key, values}], most
    important first."""
    flats = [flatten(r.get("environment", {})) for r in runs]
    keys = sorted({k for f in flats for k in f}, key=lambda k: (_priority(k), k))
    config, state = [], []
    for k in keys:
        values = [f.get(k, "absent") for f in flats]
        if all(v == values[0] for v in values[1:]):
            continue
        (state if _VOLATILE.search(k) else config).append({"key": k, "values": values})
    return config, state


# ---------------------------------------------------------------------------------------------- timing test

def _bootstrap_ci(a: np.ndarray, b: np.ndarray, conf: float, seed: int = 0) -> tuple[float, float]:
    # Fixed seed: the same inputs give the same interval (and the same report bytes).
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, len(a), (_BOOTSTRAP, len(a)))], axis=1)
    mb = np.median(b[rng.integers(0, len(b), (_BOOTSTRAP, len(b)))], axis=1)
    ratios = mb / ma
    lo, hi = np.quantile(ratios, [(1 - conf) / 2, 1 - (1 - conf) / 2])
    return float(lo), float(hi)


def _mannwhitney(a: np.ndarray, b: np.ndarray) -> float | None:
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        return None
    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def significance_method() -> str:
    try:
        import scipy
    except ImportError:
        return "bootstrap confidence interval of the median ratio (scipy not installed)"
    return f"two-sided Mann–Whitney U on the raw samples (scipy {scipy.__version__})"


def min_p_value(n: int, m: int) -> float:
    """Smallest two-sided exact Mann–Whitney p-value possible with n and m samples (complete separation)."""
    return min(1.0, 2.0 / math.comb(n + m, n))


def timing_change(a_samples: Iterable[float], b_samples: Iterable[float], *, alpha: float = ALPHA,
                  min_effect: float = MIN_EFFECT) -> dict[str, Any]:
    """B vs A timing: ratio of medians, (1 - alpha) bootstrap CI, p-value, and faster/slower/no difference."""
    a = np.asarray([float(x) for x in a_samples], dtype=float)
    b = np.asarray([float(x) for x in b_samples], dtype=float)
    a, b = a[np.isfinite(a) & (a > 0)], b[np.isfinite(b) & (b > 0)]
    out: dict[str, Any] = {"n_a": int(a.size), "n_b": int(b.size), "ratio": None, "ci": None, "p": None,
                           "verdict": SAME, "detail": ""}
    if a.size < 2 or b.size < 2:
        out["detail"] = "fewer than 2 samples on a side"
        return out
    out["ratio"] = float(np.median(b) / np.median(a))
    out["ci"] = list(_bootstrap_ci(a, b, 1 - alpha))
    p = _mannwhitney(a, b)
    out["p"] = p
    significant = p < alpha if p is not None else (out["ci"][0] > 1 or out["ci"][1] < 1)
    large = abs(math.log(out["ratio"])) >= math.log1p(min_effect)
    if significant and large:
        out["verdict"] = SLOWER if out["ratio"] > 1 else FASTER
    elif significant:
        out["detail"] = f"significant but smaller than {100 * min_effect:g} %"
    elif p is not None and min_p_value(a.size, b.size) >= alpha:
        out["detail"] = f"too few samples ({a.size} and {b.size}) to reach p < {alpha:g}"
    return out


# ---------------------------------------------------------------------------------------------- cases

def _index(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in run.get("cases", []) if isinstance(c, dict) and "id" in c}


def _same_problem(c: dict[str, Any]) -> tuple[Any, Any]:
    return c.get("case"), c.get("dtype")


def aligned(runs: list[dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """Per run, its results keyed by the row they are compared in.

    Results pair by id (``case/device/dtype``). A CPU run and a CUDA run share no id, so a result whose id is not
    in A pairs with A's result of the same case and dtype when that is the only unpaired one on both sides (a
    CPU-vs-GPU comparison); the row keeps A's id and says which devices it pairs."""
    base = _index(runs[0])
    out = [base]
    for run in runs[1:]:
        idx = _index(run)
        lonely_a = [c for k, c in base.items() if k not in idx]
        lonely_x = [c for k, c in idx.items() if k not in base]
        rows: dict[str, dict[str, Any]] = {}
        for cid, c in idx.items():
            if cid not in base:
                mates = [a for a in lonely_a if _same_problem(a) == _same_problem(c)]
                if len(mates) == 1 and sum(_same_problem(x) == _same_problem(c) for x in lonely_x) == 1:
                    cid = mates[0]["id"]
            rows[cid] = c
        out.append(rows)
    return out


def _case_ids(rows: list[dict[str, dict[str, Any]]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for cid in r:
            seen.setdefault(cid, None)
    return list(seen)


def _comparisons(cases: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    # Keyed by name and sides: a case may compare several pairs under one name.
    names: dict[str, None] = {}
    for c in cases:
        for x in (c or {}).get("comparisons", []):
            names.setdefault(comparison_label(x), None)
    rows = []
    for name in names:
        per = [next((x for x in (c or {}).get("comparisons", []) if comparison_label(x) == name), None)
               for c in cases]
        verdicts = [x.get("verdict") if x else None for x in per]
        # Only results that ran (status ok) count: a missing result or an error is a status change, reported
        # once per result, not once per comparison.
        ran = [v for c, v in zip(cases, verdicts) if c is not None and c.get("status") == "ok"]
        rows.append({"name": name, "verdict": verdicts,
                     "max_normalised": [x.get("max_normalised") if x else None for x in per],
                     "max_abs": [x.get("max_abs") if x else None for x in per],
                     "max_ulp": [x.get("max_ulp") if x else None for x in per],
                     "bitwise_equal_fraction": [x.get("bitwise_equal_fraction") if x else None for x in per],
                     "changed": len(set(ran)) > 1})
    return rows


def _is_timing_fact(key: str) -> bool:
    # Timing-derived facts move with load; the timing section tests them properly on the raw samples.
    return key.startswith("timing.") or key.endswith(".noisy") or "per_round" in key or key.endswith("_s")


def _facts(cases: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    keys: dict[str, None] = {}
    for c in cases:
        for k in (c or {}).get("facts", {}):
            if not _is_timing_fact(k):
                keys.setdefault(k, None)
    rows = []
    for k in keys:
        values = [(c or {}).get("facts", {}).get(k, "absent") if c else "absent" for c in cases]
        if any(v != values[0] for v in values[1:]):
            kind = "numeric" if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
                else "changed"
            rows.append({"key": k, "values": values, "kind": kind})
    # Non-numeric changes (a verdict string, a bool flipping) first: they are the ones a reader must see.
    return sorted(rows, key=lambda r: (r["kind"] != "changed", r["key"]))


def _timings(cases: list[dict[str, Any] | None], names: list[str], alpha: float,
             min_effect: float) -> list[dict[str, Any]]:
    base = cases[0]
    rows = []
    for t in (base or {}).get("timings", []):
        per = [next((u for u in (c or {}).get("timings", [])
                     if u.get("name") == t.get("name") and u.get("label") == t.get("label")), None) for c in cases]
        changes = []
        for label, u in zip(names[1:], per[1:]):
            if u is None:
                changes.append({"vs": label, "missing": True, "verdict": "missing", "ratio": None, "ci": None,
                                "p": None, "detail": f"not timed in {label}", "n_a": 0, "n_b": 0})
                continue
            ch = timing_change(t.get("samples_s", []), u.get("samples_s", []), alpha=alpha, min_effect=min_effect)
            changes.append({"vs": label, "missing": False, **ch})
        rows.append({"name": t.get("name"), "label": t.get("label"),
                     "median_s": [u.get("median_s") if u else None for u in per],
                     "noisy": [bool(u.get("noisy")) if u else None for u in per],
                     # efficiency against each machine's own measured limit (absent in older archives)
                     "roofline": [((u.get("roofline") or {}).get("fraction_of_roofline") if u else None)
                                  for u in per],
                     "threads": [u.get("num_threads") if u else None for u in per], "changes": changes})
    return rows


def _same_device(device: str) -> str:
    # runs before reportgen named the index recorded the current GPU as "cuda" (almost always cuda:0)
    return "cuda:0" if device == "cuda" else device


def _case_row(cid: str, rows: list[dict[str, dict[str, Any]]], names: list[str], alpha: float,
              min_effect: float) -> dict[str, Any]:
    cases = [r.get(cid) for r in rows]
    present = [c is not None for c in cases]
    devices = [str(c.get("device")) if c else None for c in cases]
    status = [c.get("status") if c else "absent" for c in cases]
    ok_everywhere = all(s == "ok" for s in status)
    params = [c.get("params") for c in cases if c]
    return {"id": cid, "present": present, "status": status, "devices": devices,
            "across_devices": len({_same_device(d) for d in devices if d is not None}) > 1,
            "reason": [(c.get("reason") or "") if c else "" for c in cases],
            "worst": [worst_verdict([x.get("verdict") for x in c.get("comparisons", [])]) if c else None
                      for c in cases],
            # A result missing from some run is reported as such ("not in every input"), not as a status change.
            "status_changed": len({st for st in status if st != "absent"}) > 1,
            "params_differ": any(p != params[0] for p in params[1:]),
            "comparisons": _comparisons(cases),
            "facts": _facts(cases) if ok_everywhere else [],
            "timings": _timings(cases, names, alpha, min_effect) if cases[0] else []}


def _claims(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keyed: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for i, r in enumerate(runs):
        for cl in r.get("claims") or []:
            key = (cl.get("case", "?"), cl.get("id", "?"))
            keyed.setdefault(key, [None] * len(runs))[i] = cl
    rows = []
    for (case, cid), per in keyed.items():
        verdicts = [cl.get("verdict") if cl else "absent" for cl in per]
        first = next(cl for cl in per if cl)
        rows.append({"case": case, "id": cid, "text": first.get("text", ""), "source": first.get("source", ""),
                     "verdict": verdicts, "reason": [cl.get("reason", "") if cl else "" for cl in per],
                     "changed": len({v for v in verdicts if v != "absent"}) > 1})
    return rows


# ---------------------------------------------------------------------------------------------- warnings

def _setting(case: dict[str, Any], key: str) -> Any:
    return case.get("settings", {}).get(key, "absent")


def _warnings(runs: list[dict[str, Any]], names: list[str], cases: list[dict[str, Any]],
              rows: list[dict[str, dict[str, Any]]]) -> list[str]:
    out: list[str] = []
    flats = [flatten(r.get("environment", {})) for r in runs]
    hw_keys = [k for k in sorted({k for f in flats for k in f})
               if k == "cpu.model" or re.fullmatch(r"cuda\.devices\[\d+\]\.name", k)]
    for i, label in enumerate(names[1:], start=1):
        hw = [k for k in hw_keys if flats[0].get(k) != flats[i].get(k)]
        if hw:
            out.append(f"{label} ran on different hardware ({'; '.join(f'{k}: {flats[0].get(k)} vs {flats[i].get(k)}' for k in hw)}): "
                       f"{label}/A timing ratios compare machines, not only software")
        out += _settings_warnings(rows, i, label, cases)
        across = [c["id"] for c in cases if c["devices"][0] and c["devices"][i]
                  and _same_device(c["devices"][0]) != _same_device(c["devices"][i])]
        if across:
            pairs = sorted({f"{c['devices'][0]} in A, {c['devices'][i]} in {label}" for c in cases
                            if c["id"] in across})
            out.append(f"{len(across)} result(s) are compared across devices ({'; '.join(pairs)}): their "
                       f"differences include the device's kernels and precision, and {label}/A timing ratios "
                       "compare devices")
    out += _dtype_warnings(runs, names)
    differ = [c["id"] for c in cases if c["params_differ"]]
    if differ:
        out.append(f"parameters differ for {len(differ)} result(s) ({', '.join(differ[:5])}"
                   f"{', …' if len(differ) > 5 else ''}): their numbers measure different problems")
    return out


def _settings_warnings(rows: list[dict[str, dict[str, Any]]], i: int, label: str,
                       cases: list[dict[str, Any]]) -> list[str]:
    a_idx, x_idx = rows[0], rows[i]
    found: dict[tuple[str, str, str], list[str]] = {}
    for c in cases:
        a, x = a_idx.get(c["id"]), x_idx.get(c["id"])
        if not a or not x or not a.get("timings") or not x.get("timings"):
            continue
        keys = {k for k in {*a.get("settings", {}), *x.get("settings", {})} if _TIMING_SENSITIVE.search(k)}
        for k in sorted(keys):
            va, vx = _setting(a, k), _setting(x, k)
            if va != vx:
                found.setdefault((k, str(va), str(vx)), []).append(c["id"])
        ta = {t.get("num_threads") for t in a["timings"]}
        tx = {t.get("num_threads") for t in x["timings"]}
        if ta != tx and not any(k[0] == "num_threads" for k in found):
            found.setdefault(("timing threads", str(sorted(ta)), str(sorted(tx))), []).append(c["id"])
    return [f"{k} differs (A: {va}, {label}: {vx}) in {len(ids)} timed result(s): {label}/A timing ratios "
            "include its effect" for (k, va, vx), ids in found.items()]


def _dtype_warnings(runs: list[dict[str, Any]], names: list[str]) -> list[str]:
    out = []
    per_run = [{} for _ in runs]  # case name -> {device/dtype part of ids}
    for i, r in enumerate(runs):
        for c in r.get("cases", []):
            per_run[i].setdefault(c.get("case"), set()).add(c.get("dtype"))
    for case in per_run[0]:
        for i, label in enumerate(names[1:], start=1):
            a, x = per_run[0][case], per_run[i].get(case)
            if x is not None and not (a & x):
                out.append(f"{case} ran in dtype {'/'.join(sorted(a))} in A but {'/'.join(sorted(x))} in {label}: "
                           "its results are not compared")
    return out


# ---------------------------------------------------------------------------------------------- the model

def _where(run: dict[str, Any]) -> str:
    env = run.get("environment", {})
    cuda = env.get("cuda", {}) if isinstance(env.get("cuda"), dict) else {}
    gpus = [str(d.get("name", "?")) for d in cuda.get("devices", []) if isinstance(d, dict)]
    return " · ".join([str(env.get("cpu", {}).get("model", "?")), f"torch {env.get('torch', {}).get('version', '?')}",
                       ", ".join(gpus) if gpus else "no CUDA",
                       f"threads={env.get('settings', {}).get('num_threads', '?')}"])


def compare_runs(runs: list[dict[str, Any]], sources: list[str], *, alpha: float = ALPHA,
                 min_effect: float = MIN_EFFECT) -> dict[str, Any]:
    """The comparison model of ``runs`` (first = baseline A); pure function of its inputs."""
    names = labels(len(runs))
    config, state = env_diff(runs)
    rows = aligned(runs)
    cases = [_case_row(cid, rows, names, alpha, min_effect) for cid in _case_ids(rows)]
    model = {
        "inputs": [_input_row(n, s, r) for n, s, r in zip(names, sources, runs)],
        "options": {"alpha": alpha, "min_effect": min_effect, "test": significance_method(),
                    "ci": f"{100 * (1 - alpha):g} % bootstrap CI of the ratio of medians ({_BOOTSTRAP} resamples)"},
        "env_diff": config, "env_state": state,
        "cases": cases, "claims": _claims(runs),
        "warnings": _warnings(runs, names, cases, rows)}
    model["summary"] = _summary(model)
    return model


#: Above this many inputs only the fleet screen is built: a column per run in every pairwise table stops being
#: readable (and quadratic work) long before 256 runs.
PAIRWISE_MAX = 8


def _input_row(label: str, source: str, r: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "source": source, "run_id": r.get("run_id"), "suite": r.get("suite", {}).get("name"),
            "started": r.get("started"), "finished": r.get("finished"), "status": r.get("status"),
            "tool_version": r.get("tool_version"), "schema_version": r.get("schema_version"), "where": _where(r)}


def compare_inputs(inputs: list[tuple[str, dict[str, Any]]], *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT,
                   fleet: bool | None = None, failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The comparison model of ``inputs`` ((source, run dict)): the pairwise X/A model for up to PAIRWISE_MAX
    runs, and the fleet screen (reportgen.fleet) when there are three devices or more (or ``fleet`` says so; a
    distributed launch always has it). Two plain runs give exactly the pairwise model."""
    from reportgen import fleet as fleet_mod

    runs, sources = [r for _, r in inputs], [s for s, _ in inputs]
    n_members = len(fleet_mod.members_of(inputs))
    # One run of several devices (--device all) has no pairwise view: its devices are the fleet.
    with_fleet = fleet if fleet is not None else (n_members >= 3 or len(runs) >= 3 or len(runs) < 2)
    if len(runs) <= PAIRWISE_MAX and len(runs) >= 2:
        model = compare_runs(runs, sources, alpha=alpha, min_effect=min_effect)
    else:
        model = {"inputs": [_input_row(n, s, r) for n, s, r in zip(labels(len(runs)), sources, runs)],
                 "options": {"alpha": alpha, "min_effect": min_effect, "test": significance_method(),
                             "ci": "pairwise timing tests are made for up to "
                                   f"{PAIRWISE_MAX} runs; the fleet screen uses median and MAD"}}
    if with_fleet:
        model["fleet"] = fleet_mod.fleet_model(inputs, min_effect=min_effect, failures=failures)
    return model


def summary_text(model: dict[str, Any], *, report: str | None = None, width: int = 100) -> str:
    """The terminal screen: the fleet lines first (one per device that is not OK), then the pairwise summary
    when the model has one."""
    from reportgen.fleet import terminal_lines

    out = ""
    if "fleet" in model:
        out = "\n".join(terminal_lines(model["fleet"], width=max(width, 160))) + "\n"
        if "summary" not in model:
            return out + (f"Report: {report}\n" if report else "")
        out += "\n"
    return out + terminal_summary(model, report=report, width=width)


def _summary(model: dict[str, Any]) -> dict[str, Any]:
    names = [i["label"] for i in model["inputs"]]
    verdict_changes = [{"id": c["id"], "name": x["name"], "verdict": x["verdict"]}
                       for c in model["cases"] for x in c["comparisons"] if x["changed"]]
    counts = {n: {FASTER: 0, SLOWER: 0, SAME: 0, "missing": 0, "noisy": 0} for n in names[1:]}
    moved = []
    for c in model["cases"]:
        for t in c["timings"]:
            for ch in t["changes"]:
                counts[ch["vs"]][ch["verdict"]] += 1
                if ch["verdict"] in (FASTER, SLOWER):
                    noisy = noisy_sides(t, ch["vs"], names)
                    counts[ch["vs"]]["noisy"] += bool(noisy)
                    moved.append({"id": c["id"], "name": t["name"], "label": t["label"], **ch, "noisy": noisy})
    moved.sort(key=lambda m: -abs(math.log(m["ratio"])))
    return {"status_changes": [{"id": c["id"], "status": c["status"]} for c in model["cases"] if c["status_changed"]],
            "verdict_changes": verdict_changes,
            "claim_changes": [c for c in model["claims"] if c["changed"]],
            "timing_counts": counts, "timing_moved": moved,
            "only_in_some": [c["id"] for c in model["cases"] if not all(c["present"])]}


def noisy_sides(timing: dict[str, Any], vs: str, names: list[str]) -> list[str]:
    """Labels of the two sides of ``vs``/A whose timing was flagged noisy (IQR/median at or above the case's
    noise_iqr), as compare.html marks each median: a faster/slower verdict between noisy timings may be load."""
    flags = timing.get("noisy") or []
    sides = [names[0], vs] if vs != names[0] else [vs]
    return [n for n in sides if names.index(n) < len(flags) and flags[names.index(n)]]


def counts_text(c: dict[str, int]) -> str:
    """"1 faster, 2 slower (1 noisy), 5 no significant difference": the noisy ones are among the faster/slower."""
    return (f"{c[FASTER]} faster, {c[SLOWER]} slower" + (f" ({c['noisy']} noisy)" if c.get("noisy") else "")
            + f", {c[SAME]} no significant difference" + (f", {c['missing']} not timed" if c["missing"] else ""))


# ---------------------------------------------------------------------------------------------- rendering

def short(value: Any, width: int = 28) -> str:
    text = value if isinstance(value, str) else fmt_num(value)
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def ratio_text(ch: dict[str, Any], digits: int = 3) -> str:
    """"×0.94 [0.90, 0.98] p=0.0079": ratio X/A, its confidence interval, the test's p-value."""
    if ch.get("ratio") is None:
        return ch.get("detail") or "–"
    ci, p = ch.get("ci"), ch.get("p")
    return (f"×{_g(ch['ratio'], digits)}" + (f" [{_g(ci[0], digits)}, {_g(ci[1], digits)}]" if ci else "")
            + (f" p={p:.2g}" if p is not None else ""))


def _g(x: float, digits: int) -> str:
    # "200", not "2e+02": ratios are read by people; exponents only for really large or small values.
    return f"{x:.0f}" if 10 ** digits <= abs(x) < 1e6 else f"{x:.{digits}g}"


SCREEN_LINES = 40


def terminal_summary(model: dict[str, Any], *, report: str | None = None, width: int = 100) -> str:
    """One screen (at most SCREEN_LINES lines of at most ``width``): the inputs, then environment differences,
    warnings, results that changed status, verdict and claim changes, significant timing changes. When it would
    not fit, the longest lists are shortened (each says how many more the report has)."""
    s, names = model["summary"], [i["label"] for i in model["inputs"]]
    opts = model["options"]
    keyw = min(40, max([len(d["key"]) for d in model["env_diff"]] + [10]))
    counts = "; ".join(f"{n}/A {counts_text(c)}" for n, c in s["timing_counts"].items())
    presence = {c["id"]: c["present"] for c in model["cases"]}
    # (heading, rendered items, what the "... N more" line calls them); a heading of None: no section at all
    sections = [
        (f"Environment: {len(model['env_diff'])} field(s) differ"
         + (f" (+{len(model['env_state'])} machine-state fields)" if model["env_state"] else ""),
         [f"  {short(d['key'], keyw):<{keyw}}  " + " | ".join(short(v, 24) for v in d["values"])
          for d in model["env_diff"]], "fields"),
        ("Warnings:" if model["warnings"] else None, ["  ! " + w for w in model["warnings"]], "warnings"),
        (f"Results: {len(s['only_in_some'])} not in every input, {len(s['status_changes'])} changed status"
         if s["only_in_some"] or s["status_changes"] else None,
         [f"  {short(c['id'], 44):<44} " + " → ".join(c["status"]) for c in s["status_changes"]]
         + [f"  {short(cid, 44):<44} only in " + ", ".join(n for n, p in zip(names, presence[cid]) if p)
            for cid in s["only_in_some"]], "results"),
        (f"Verdict changes: {len(s['verdict_changes'])}" + ("" if s["verdict_changes"] else " (none)"),
         [f"  {short(v['id'], 34)} {short(v['name'], 30)}: " + " → ".join(str(x) for x in v["verdict"])
          for v in s["verdict_changes"]], "verdict changes"),
        (f"Claim changes: {len(s['claim_changes'])}" if s["claim_changes"] else None,
         [f"  {short(c['case'] + ': ' + c['id'], 50)}: " + " → ".join(c["verdict"]) for c in s["claim_changes"]],
         "claim changes"),
        (f"Timing (p < {opts['alpha']:g}, ≥ {100 * opts['min_effect']:g} %): {counts or 'no timings'}",
         _timing_items(s["timing_moved"], len(names) > 2, width), "significant timing changes"),
    ]
    head = [_wrap_parts([f"{i['label']}: {i['run_id']} ({i['suite']}, {i['status']})",
                         *str(i["where"]).split(" · ")], width) for i in model["inputs"]]
    tail = [f"Report: {report}"] if report else []
    physical = [p for line in head + tail for p in _wrap(line, width).split("\n")]
    lines = _fit([(h, [_wrap(x, width) for x in items], more) for h, items, more in sections if h is not None],
                 SCREEN_LINES - len(physical), width)
    return "\n".join(_wrap(line, width) for line in head + lines + tail) + "\n"


def _timing_items(moved: list[dict[str, Any]], many: bool, width: int) -> list[str]:
    """"  slower ×1.9 [1.5, 2.3] p=0.0079  noisy A  result · statement · side": the ratio in a column, a noisy
    side marked as compare.html marks it, and the labels whole (a second line before a label that does not fit
    rather than "(c) …")."""
    ratios = [ratio_text(m, 2) for m in moved]
    noise = [f"noisy {','.join(m['noisy'])}" if m.get("noisy") else "" for m in moved]
    rw, nw = max(map(len, ratios), default=0), max(map(len, noise), default=0)
    out = []
    for m, r, n in zip(moved, ratios, noise):
        lead = f"  {m['verdict']:<6} {m['vs'] + '/A ' if many else ''}{r:<{rw}}  " + (f"{n:<{nw}}  " if nw else "")
        out.append(_wrap_parts([lead + str(m["id"]), str(m["name"]), str(m["label"])], width))
    return out


def _wrap_parts(parts: list[str], width: int, sep: str = " · ", indent: str = "      ") -> str:
    """Join ``parts`` with ``sep``, starting a new (indented) line between parts rather than inside one."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + len(sep) + len(part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(indent + short(part, width - len(indent)))
    # The first part alone may be too long; cut it without short()'s whitespace folding, which would undo the
    # column padding of a timing row.
    return "\n".join(line[: width - 1] + "…" if len(line) > width else line for line in lines)


def _fit(sections: list[tuple[str, list[str], str]], budget: int, width: int) -> list[str]:
    """Headings and items, the longest item lists cut (with a "… N more" line) until they fit ``budget`` lines."""
    keep = [len(items) for _, items, _ in sections]

    def render() -> list[str]:
        out = []
        for (heading, items, more), k in zip(sections, keep):
            out += [_wrap(heading, width)] + items[:k]
            if k < len(items):
                out.append(f"  … {len(items) - k} more {more} in the report")
        return [piece for line in out for piece in line.split("\n")]

    lines = render()
    while len(lines) > budget and any(keep):
        longest = max(range(len(keep)), key=lambda i: keep[i])
        keep[longest] -= 1
        lines = render()
    return lines


def _wrap(line: str, width: int) -> str:
    # Long warnings continue on an indented second line instead of being cut mid-word; a line already split
    # (by _wrap_parts) is wrapped piece by piece.
    if "\n" in line:
        return "\n".join(_wrap(piece, width) for piece in line.split("\n"))
    if len(line) <= width:
        return line
    head, _, tail = line[:width].rpartition(" ")
    rest = line[len(head) + 1:]
    return head + "\n    " + short(rest, width - 4)


def _filters() -> dict[str, Any]:
    return {"dur": fmt_duration, "short": short, "ratio_text": ratio_text}


def render_compare_html(model: dict[str, Any]) -> str:
    """The comparison page: self-contained like report.html, the model embedded as JSON."""
    from markupsafe import Markup

    from reportgen.render.html import embedded_json, environment, templates_dir

    model = json.loads(json.dumps(model))
    env = environment()
    env.filters.update(_filters())
    css = Markup((templates_dir() / "report.css").read_text(encoding="utf-8"))
    return env.get_template("compare.html.j2").render(cmp=model, css=css, embedded=embedded_json(model),
                                                       pairwise_max=PAIRWISE_MAX,
                                                       forest=Markup(forest_svg(model)) if "cases" in model and _has_ratios(model) else "")


def _has_ratios(model: dict[str, Any]) -> bool:
    return any(ch.get("ratio") for c in model["cases"] for t in c["timings"] for ch in t["changes"])


def forest_svg(model: dict[str, Any]) -> str:
    """Every timing ratio X/A with its CI on a log axis, the no-effect band shaded; our own SVG, no data text
    other than labels (escaped by matplotlib's SVG writer)."""
    from matplotlib.figure import Figure

    from reportgen.render.plots import figure_svg, log_axis  # sets the Agg backend

    many = len(model["inputs"]) > 2
    rows = [(short(f"{c['id']} · {t['name']} · {t['label']}", 64) + (f" ({ch['vs']}/A)" if many else ""), ch)
            for c in model["cases"] for t in c["timings"] for ch in t["changes"] if ch.get("ratio")]
    eff = model["options"]["min_effect"]
    # Wide: the labels (result · statement · side) take half of it; the page scales it down to fit.
    fig = Figure(figsize=(10.5, 0.9 + 0.26 * len(rows)), dpi=72)
    ax = fig.add_subplot()
    colours = {FASTER: "#1a7f37", SLOWER: "#c62828", SAME: "#6b7280"}
    for y, (_, ch) in enumerate(rows):
        lo, hi = ch["ci"] or (ch["ratio"], ch["ratio"])
        ax.plot([lo, hi], [y, y], color=colours.get(ch["verdict"], "black"), linewidth=1.5)
        ax.plot([ch["ratio"]], [y], "o", color=colours.get(ch["verdict"], "black"), markersize=4)
    ax.axvspan(1 / (1 + eff), 1 + eff, color="#d0d7de", alpha=0.5, linewidth=0)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    log_axis(ax.xaxis)
    ax.set_yticks(range(len(rows)), [r[0].replace("$", r"\$") for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(f"time ratio X/A (median, {model['options']['ci']}); < 1 is faster; band: ±{100 * eff:g} %",
                  fontsize=8)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    return figure_svg(fig, "reportgen-compare-forest")


def render_compare_pdf(model: dict[str, Any], *, page_size: str = "A4", html: str | None = None) -> bytes:
    """compare.html laid out as PDF, the comparison model attached as compare.json."""
    from reportgen.render.pdf import PdfAttachment, html_to_pdf
    from reportgen.results import dumps

    stamps = sorted(str(i.get(k)) for i in model["inputs"] for k in ("started", "finished") if i.get(k))
    label = "reportgen compare · " + " vs ".join(f"{i['label']} {i['run_id']}" for i in model["inputs"][:4]) \
        + (f" and {len(model['inputs']) - 4} more" if len(model["inputs"]) > 4 else "")
    # Dates of the newest input, never the clock: the same inputs give the same bytes.
    return html_to_pdf(html if html is not None else render_compare_html(model), margin_label=label, page_size=page_size,
                       created=stamps[-1] if stamps else None, modified=stamps[-1] if stamps else None,
                       attachments=[PdfAttachment("compare.json", dumps(model).encode("utf-8"),
                                                  "reportgen comparison model")])


def render_compare_markdown(model: dict[str, Any], *, limit: int = 65_000) -> str:
    """The comparison as Markdown for a ticket, at most ``limit`` characters (rows capped, cuts announced); a
    fleet screen first when the model has one."""
    from reportgen.render.markdown import fleet_md

    for cap in (None, 200, 60, 20, 5, 0):
        text = (fleet_md(model, cap) if "fleet" in model else "") \
            + (_compare_md(model, cap) if "cases" in model else "")
        if len(text) <= limit:
            return text
    return text[: limit - 40].rsplit("\n", 1)[0] + "\n\n_(truncated; see compare.html)_\n"


def _md_rows(items: list[Any], cap: int | None, row: Any, what: str, ncols: int) -> list[str]:
    from reportgen.render.markdown import esc

    shown = items if cap is None else items[:cap]
    lines = [row(x) for x in shown]
    if len(items) > len(shown):
        lines.append("| " + " | ".join([f"_… {len(items) - len(shown)} more {esc(what)} in compare.html_"]
                                       + [""] * (ncols - 1)) + " |")
    return lines


def _md_noisy(moved: dict[str, Any]) -> str:
    return f" ⚠ noisy ({', '.join(moved['noisy'])})" if moved.get("noisy") else ""


def _compare_md(model: dict[str, Any], cap: int | None) -> str:
    from reportgen.render.markdown import code, esc, verdict_md

    s, names = model["summary"], [i["label"] for i in model["inputs"]]
    out = [f"## reportgen compare: {' vs '.join(code(i['run_id']) for i in model['inputs'])}", "",
           "| | run | suite | status | machine |", "|---|---|---|---|---|"]
    out += [f"| **{i['label']}** | {code(i['run_id'])} | {esc(i['suite'])} | {esc(i['status'])} | {esc(i['where'])} |"
            for i in model["inputs"]]
    out += ["", f"### Environment: {len(model['env_diff'])} field(s) differ", ""]
    if model["env_diff"]:
        out += ["| field | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        out += _md_rows(model["env_diff"], cap, lambda d: f"| {code(d['key'], 80)} | "
                        + " | ".join(esc(short(v, 60)) for v in d["values"]) + " |", "fields", len(names) + 1)
    out += [""] + [f"- ⚠ {esc(w, 400)}" for w in model["warnings"][: cap if cap is not None else None]] + [""]
    out += [f"### Verdict changes: {len(s['verdict_changes'])}", ""]
    if s["verdict_changes"]:
        out += ["| result | comparison | " + " → ".join(names) + " |", "|---|---|---|"]
        out += _md_rows(s["verdict_changes"], cap, lambda v: f"| {esc(v['id'])} | {esc(v['name'])} | "
                        + " → ".join(verdict_md(x) for x in v["verdict"]) + " |", "changes", 3)
        out.append("")
    for st in s["status_changes"][: cap if cap is not None else None]:
        out.append(f"- {esc(st['id'])}: status " + " → ".join(esc(x) for x in st["status"]))
    if s["claim_changes"]:
        out += ["", f"### Claim changes: {len(s['claim_changes'])}", "", "| claim | " + " → ".join(names) + " |",
                "|---|---|"]
        out += _md_rows(s["claim_changes"], cap, lambda c: f"| {esc(c['text'])} ({code(c['id'], 60)}) | "
                        + " → ".join(verdict_md(x) for x in c["verdict"]) + " |", "claims", 2)
    opts = model["options"]
    out += ["", f"### Timing: significant changes (p < {opts['alpha']:g}, at least {100 * opts['min_effect']:g} %)",
            "", "; ".join(f"{n}/A: {counts_text(c)}" for n, c in s["timing_counts"].items()) or "No timings.", ""]
    if s["timing_moved"]:
        out += ["| | vs | result | what · side | ratio [CI] p |", "|---|---|---|---|---|"]
        out += _md_rows(s["timing_moved"], cap, lambda m: f"| **{m['verdict']}**{_md_noisy(m)} | {m['vs']}/A | "
                        f"{esc(m['id'])} | {esc(m['name'])} · {esc(m['label'])} | {esc(ratio_text(m))} |",
                        "changes", 5)
        if any(m.get("noisy") for m in s["timing_moved"]):
            out += ["", "_⚠ noisy: that side's timing varied by at least its noise threshold (IQR/median), so the "
                        "change may be machine load rather than code; re-run on a quiet machine._"]
    out += ["", f"_{esc(opts['test'])}; {esc(opts['ci'])}. Made by `reportgen compare`; attach compare.html and "
                "the runs' report.html files for everything else._", ""]
    return "\n".join(out)

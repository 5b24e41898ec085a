"""A fleet comparison: many runs (or devices of one run, or ranks of one distributed launch), one question: which
device is different -- in its output bits, its speed, or its driver and settings.

The unit is a *member*: one device of one run (a ``--device all`` run has one member per GPU; a distributed
launch has one run, so one member, per rank). Every comparison records sha256 fingerprints of its two sides'
bits (``reportgen.measure.numerics.fingerprint``); a member's fingerprint of a result is the tuple of them.

Bits are judged within groups of the same *numerics environment* (GPU model, driver, CUDA/cuDNN/torch versions,
the CPU for CPU runs, the numerics settings and thread counts, the case's own settings): a member whose bits
differ from the majority of its own group is the strongest signal there is ("possible corruption": same
hardware model, same software, same settings, different bits). A member whose group as a whole differs from the
fleet's majority bits is reported as differing with the environment fields that set its group apart named as the
likely cause (another driver or TF32 setting picks another kernel). Timings are outliers when they exceed the
median of their timing group (same device model, threads, torch) by a robust z-score over the median absolute
deviation *and* a minimum relative effect; a timing flagged noisy by its own run is never counted.

The model is a JSON-able dict, a pure function of its inputs, rendered by compare.html, the Markdown summary and
the terminal screen.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.errors import UsageError

OK, DIFFERS, SLOWER, ERROR = "OK", "DIFFERS", "SLOWER", "ERROR"
STATUSES = (ERROR, DIFFERS, SLOWER, OK)  # worst first
FLEET_KIND = "reportgen-fleet"
#: robust z-score (|x - median| / (1.4826 MAD)) above which a timing is an outlier (Iglewicz and Hoaglin's 3.5)
Z_LIMIT = 3.5
#: fewest members of a timing group for a median/MAD judgement
MIN_TIMING_GROUP = 3

# Per process / per board, expected to differ between members: shown as identity, never as a difference.
_IDENTITY = re.compile(r"^launch\.|^gpu\.(index|uuid|pci_bus_id)$|^gpu\.nvml\.pci_bus_id$"
                       r"|^env_vars\.(CUDA_VISIBLE_DEVICES|LOCAL_RANK|RANK|WORLD_SIZE|TORCHELASTIC.*)$")
# Machine state at run time (as in render/compare.py), plus NVML's throttle reasons and the current clocks.
_VOLATILE = re.compile(r"(^memory\.available|load_avg|temperature|power_draw|clocks_(sm|mem)_mhz$|memory_used"
                       r"|utili[sz]ation|pstate|fan|throttle)", re.IGNORECASE)
# The numerics environment: members that agree on these should produce the same bits.
_GROUP = re.compile(r"^gpu\.(name|capability)$|^gpu\.nvml\.(driver|cuda_driver|mig_mode)$"
                    r"|^cuda\.(runtime|cudnn_loaded|preferred_blas_library|cublas(lt)?_workspace_size)$"
                    r"|^torch\.(version|git_version|blas|onednn|mkl)$|^cpu\.(model|torch_cpu_capability)$"
                    r"|^settings\.|^env_vars\.(NVIDIA_TF32_OVERRIDE|CUBLAS_WORKSPACE_CONFIG|OMP_NUM_THREADS"
                    r"|MKL_NUM_THREADS|ONEDNN_.*|DNNL_.*)$")
# Configuration that makes a member DIFFERS when it is not the majority's: the numerics environment plus what
# decides speed and reliability on a GPU (ECC, MIG, power limit, application clocks, persistence, PCIe link).
_STATUS_ENV = re.compile(_GROUP.pattern + r"|^gpu\.nvml\.(ecc_mode|power_limit_mw|power_default_limit_mw"
                         r"|clocks_app_sm_mhz|clocks_max_sm_mhz|persistence_mode|compute_mode|pcie_gen|pcie_width)$"
                         r"|^packages\.torch$")


# ---------------------------------------------------------------------------------------------- inputs

def is_fleet_archive(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == FLEET_KIND


def fleet_archive(run_id: str, runs: list[dict[str, Any]], failures: list[dict[str, Any]], *,
                  world_size: int, backend: str | None) -> dict[str, Any]:
    """The one archive of a distributed launch: every rank's RunResult dict, in rank order, and the ranks that
    failed before producing one (rank and message)."""
    from reportgen.results import SCHEMA_VERSION
    return {"kind": FLEET_KIND, "schema_version": SCHEMA_VERSION, "run_id": run_id, "world_size": world_size,
            "backend": backend, "runs": runs, "failures": failures}


def _members_of_archive(data: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    from reportgen.render.files import check_shape
    from reportgen.results import upgrade

    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise UsageError(f"{source}: key 'runs': expected a list of run objects")
    out = []
    for i, run in enumerate(runs):
        where = f"{source}#runs[{i}]"
        run = upgrade(run, where)
        check_shape(run, where)
        out.append((where, _normalised(run)))
    return out


def _scan(directory: Path) -> list[Path]:
    """Archives under ``directory``, in path order: a fleet.json stands for the rank directories beside it (it
    holds them), and a results.json for the report.html beside it (the same run)."""
    fleets = sorted(directory.rglob("fleet.json"))
    covered = [f.parent for f in fleets]
    found: list[Path] = list(fleets)
    for p in sorted(directory.rglob("results.json")):
        if not any(c in p.parents for c in covered):
            found.append(p)
    for p in sorted(directory.rglob("report.html")):
        if not (p.parent / "results.json").exists() and not any(c in p.parents for c in covered):
            found.append(p)
    return sorted(found)


def load_inputs(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(source, run dict) for every run in ``paths``: results.json, report.html, a fleet.json (every rank) or a
    directory scanned for them. UsageError naming the path on anything unreadable."""
    from reportgen.redact import redact_tree
    from reportgen.render.files import check_shape, load_input, mark_stale
    from reportgen.results import load_dict

    out: list[tuple[str, dict[str, Any]]] = []
    for raw in paths:
        p = Path(raw)
        files = _scan(p) if p.is_dir() else [p]
        if p.is_dir() and not files:
            raise UsageError(f"{p}: no results.json, report.html or fleet.json under this directory")
        for f in files:
            if f.suffix == ".json" and f.is_file():
                data = load_dict(f)  # parsed once: a fleet archive or one run
                if is_fleet_archive(data):
                    out += _members_of_archive(data, str(f))
                    continue
                check_shape(data, str(f))
                # as load_input does: a dead writer's archive reads as interrupted, every string redacted
                out.append((str(f), redact_tree(_normalised(mark_stale(data)))))
                continue
            out.append((str(f), load_input(f)))
    return out


def _normalised(data: dict[str, Any]) -> dict[str, Any]:
    """What load_input returns (plain JSON types, keys sorted, non-finite floats as strings), through the C
    encoder: results.dumps indents, which makes json fall back to its pure-Python encoder -- 30 s of 40 at 256
    archives."""
    from reportgen.results import sanitize
    try:
        text = json.dumps(data, sort_keys=True, allow_nan=False)
    except ValueError:  # a NaN/Infinity token in a hand-edited file: spelled as results.sanitize spells it
        text = json.dumps(sanitize(data), sort_keys=True, allow_nan=False)
    return json.loads(text)


# ---------------------------------------------------------------------------------------------- members

def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    from reportgen.render.compare import flatten
    return flatten(d, prefix)


def _norm_device(device: Any) -> str:
    return "cuda:0" if device == "cuda" else str(device)


@dataclass
class Member:
    index: int
    source: str
    run: dict[str, Any]
    device: str
    env: dict[str, Any]  # flattened, this member's GPU under "gpu."
    identity: dict[str, Any]
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # "case/dtype" -> result


def _member_env(run: dict[str, Any], device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    env = run.get("environment") or {}
    flat = {k: v for k, v in _flatten({k: v for k, v in env.items() if k != "cuda"}).items()}
    cuda = env.get("cuda") if isinstance(env.get("cuda"), dict) else {}
    flat.update(_flatten({k: v for k, v in cuda.items() if k != "devices"}, "cuda"))
    if device.startswith("cuda"):
        idx = int(device.split(":")[1]) if ":" in device else 0
        gpu = next((d for d in cuda.get("devices", []) if isinstance(d, dict) and d.get("index") == idx), None)
        if gpu is not None:
            flat.update(_flatten(gpu, "gpu"))
    identity = {k: v for k, v in flat.items() if _IDENTITY.search(k)}
    return {k: v for k, v in flat.items() if not _IDENTITY.search(k) and not _VOLATILE.search(k)}, identity


def members_of(runs: list[tuple[str, dict[str, Any]]]) -> list[Member]:
    out: list[Member] = []
    for source, run in runs:
        by_device: dict[str, dict[str, dict[str, Any]]] = {}
        for c in run.get("cases", []):
            by_device.setdefault(_norm_device(c.get("device")), {})[f"{c.get('case')}/{c.get('dtype')}"] = c
        # A device every result of which was skipped did not run here (cuda on a CPU-only machine): not a member.
        ran = {d: cs for d, cs in by_device.items() if any(c.get("status") != "skipped" for c in cs.values())}
        for device, cases in (ran or by_device or {"?": {}}).items():
            env, identity = _member_env(run, device)
            out.append(Member(len(out), source, run, device, env, identity, cases))
    return out


def _label(m: Member, multi_device: bool) -> str:
    launch = (m.run.get("environment") or {}).get("launch") or {}
    text = str(m.run.get("run_id") or "?")
    if isinstance(launch, dict) and isinstance(launch.get("world_size"), int) and launch["world_size"] > 1:
        text += f" rank {launch.get('rank')} ({launch.get('host')})"
    if multi_device:
        text += f" {m.device}"
    return text


# ---------------------------------------------------------------------------------------------- judging

def _mode(values: list[Any]) -> tuple[Any, int] | None:
    """(value, count) of the strict majority (> half) of ``values``, or None when there is none."""
    if not values:
        return None
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    key, n = counts.most_common(1)[0]
    return (json.loads(key), n) if 2 * n > len(values) else None


def _fingerprint(case: dict[str, Any]) -> tuple[Any, ...] | None:
    comps = case.get("comparisons") or []
    if any(not x.get("actual_sha256") for x in comps):
        return None  # archived before fingerprints existed
    return tuple(sorted((str(x.get("name")), str(x.get("actual")), str(x.get("expected")), str(x.get("dtype")),
                         json.dumps(x.get("shape")), x.get("actual_sha256"), x.get("expected_sha256"))
                        for x in comps))


def _differing_comparisons(case: dict[str, Any], reference: tuple[Any, ...]) -> list[str]:
    ref = {r[:3]: r for r in reference}
    mine = _fingerprint(case) or ()
    return [r[0] for r in mine if ref.get(r[:3]) != r]


# A GPU's results do not depend on the host CPU's model or its BLAS: a fleet of GPU nodes with two CPU SKUs is
# not two environments.
_HOST_ONLY = re.compile(r"^cpu\.|^torch\.(blas|onednn|mkl)$")


def _relevant(m: Member, key: str) -> bool:
    return not (m.device.startswith("cuda") and _HOST_ONLY.search(key))


def _group_key(m: Member, case: dict[str, Any]) -> dict[str, Any]:
    key = {k: v for k, v in m.env.items() if _GROUP.search(k) and _relevant(m, k)}
    key.update({f"case.settings.{k}": v for k, v in (case.get("settings") or {}).items()})
    return key


def _fmt(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= 40 else text[:39] + "…"


def _key_diff(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    keys = sorted(set(mine) | set(theirs))
    return [f"{k}={_fmt(mine.get(k, 'absent'))} (majority {_fmt(theirs.get(k, 'absent'))})"
            for k in keys if mine.get(k, "absent") != theirs.get(k, "absent")]


def _judge_bits(members: list[Member], case_key: str, cells: dict[tuple[int, str], str],
                reasons: dict[int, list[dict[str, Any]]], notes: list[str]) -> None:
    ran = [m for m in members if case_key in m.cases and m.cases[case_key].get("status") == "ok"]
    fps = {m.index: _fingerprint(m.cases[case_key]) for m in ran}
    judged = [m for m in ran if fps[m.index] is not None]
    for m in ran:
        if fps[m.index] is None:
            cells[(m.index, case_key)] = "nofp"
        elif fps[m.index] == ():
            cells[(m.index, case_key)] = "none"  # no comparisons: nothing to fingerprint
    judged = [m for m in judged if fps[m.index] != ()]
    fleet = _mode([list(fps[m.index]) for m in judged])
    fleet_fp = tuple(tuple(x) for x in fleet[0]) if fleet else None
    groups: dict[str, list[Member]] = {}
    keys: dict[str, dict[str, Any]] = {}
    for m in judged:
        k = _group_key(m, m.cases[case_key])
        gid = json.dumps(k, sort_keys=True, default=str)
        groups.setdefault(gid, []).append(m)
        keys[gid] = k
    # The majority environment: the group holding most of the members with the fleet's majority bits.
    major_gid = max(groups, key=lambda g: (sum(fps[m.index] == fleet_fp for m in groups[g]), len(groups[g])),
                    default=None)
    unjudged: set[str] = set()
    for gid, group in groups.items():
        gm = _mode([list(fps[m.index]) for m in group]) if len(group) >= 2 else None
        group_fp = tuple(tuple(x) for x in gm[0]) if gm else None
        for m in group:
            fp = fps[m.index]
            if group_fp is not None and fp != group_fp:
                names = _differing_comparisons(m.cases[case_key], group_fp)
                cells[(m.index, case_key)] = "bits"
                reasons[m.index].append({
                    "kind": "bits", "case": case_key, "comparisons": names,
                    "text": f"{case_key}: bits differ from {gm[1]} of {len(group)} devices with the same GPU "
                            f"model, driver and settings (possible corruption) in {', '.join(names[:3])}"
                            + (f" and {len(names) - 3} more" if len(names) > 3 else "")})
                continue
            if group_fp is None and len(group) >= 2:
                # Devices that should agree and do not, with no majority to say which is odd: nondeterministic
                # kernels, most likely; said once for the fleet, not held against each device.
                cells[(m.index, case_key)] = "nomaj"
                unjudged.add(gid)
                continue
            reference = fleet_fp
            if reference is None or fp == reference:
                cells[(m.index, case_key)] = "ok" if reference is not None else "nomaj"
                if reference is None and len(judged) > 1:
                    unjudged.add(gid)
                continue
            cause = _key_diff(keys[gid], keys[major_gid]) if major_gid is not None else []
            names = _differing_comparisons(m.cases[case_key], reference)
            cells[(m.index, case_key)] = "env"
            reasons[m.index].append({
                "kind": "bits-env", "case": case_key, "comparisons": names, "cause": cause,
                "text": f"{case_key}: bits differ from the fleet majority ({fleet[1]} of {len(judged)})"
                        + (f", environment differs: {'; '.join(cause[:3])}"
                           + (f" and {len(cause) - 3} more" if len(cause) > 3 else "") if cause else "")
                        + f"; in {', '.join(names[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else "")})
    if unjudged:
        n = sum(len(groups[g]) for g in unjudged)
        kinds = len({fps[m.index] for g in unjudged for m in groups[g]})
        notes.append(f"{case_key}: {n} device(s) in {len(unjudged)} environment(s) have no majority of bits "
                     f"({kinds} different fingerprints): not judged; within one environment nondeterministic "
                     "kernels are the usual cause (see the runs' determinism matrix)")


def _timing_group(m: Member, t: dict[str, Any]) -> str:
    model = m.env.get("gpu.name") if m.device.startswith("cuda") else m.env.get("cpu.model")
    return json.dumps([model, t.get("num_threads"), m.env.get("torch.version"), m.device.split(":")[0]])


def _judge_timing(members: list[Member], case_key: str, min_effect: float, cells: dict[tuple[int, str], str],
                  reasons: dict[int, list[dict[str, Any]]]) -> None:
    series: dict[tuple[str, str, str], list[tuple[Member, dict[str, Any]]]] = {}
    for m in members:
        c = m.cases.get(case_key)
        if not c or c.get("status") != "ok":
            continue
        for t in c.get("timings") or []:
            med = t.get("median_s")
            if isinstance(med, (int, float)) and med > 0 and math.isfinite(med):
                series.setdefault((str(t.get("name")), str(t.get("label")), _timing_group(m, t)), []).append((m, t))
    for (name, label, _), items in series.items():
        if len(items) < MIN_TIMING_GROUP:
            continue
        x = np.array([float(t["median_s"]) for _, t in items])
        med = float(np.median(x))
        mad = 1.4826 * float(np.median(np.abs(x - med)))
        for (m, t), v in zip(items, x):
            ratio = v / med
            z = math.inf if mad == 0 else (v - med) / mad
            if ratio < 1 + min_effect or z <= Z_LIMIT:
                continue
            if t.get("noisy"):
                reasons[m.index].append({"kind": "noisy", "case": case_key,
                                         "text": f"{case_key}: {name} · {label} ×{ratio:.2f} the fleet median, "
                                                 "but its timing was noisy: not counted"})
                continue
            if cells.get((m.index, case_key)) in (None, "ok", "nomaj", "nofp"):
                cells[(m.index, case_key)] = "slow"
            reasons[m.index].append({"kind": "slower", "case": case_key, "ratio": ratio,
                                     "text": f"{case_key}: {name} · {label} ×{ratio:.2f} the median of "
                                             f"{len(items)} devices (robust z {_z_text(z)})"})


def _z_text(z: float) -> str:
    return "∞ (no spread)" if math.isinf(z) else f"{z:.1f}"


def _judge_env(members: list[Member], reasons: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    keys = sorted({k for m in members for k in m.env if _STATUS_ENV.search(k)})
    fields = []
    for k in keys:
        judged = [m for m in members if _relevant(m, k)]
        values = [m.env.get(k, "absent") for m in judged]
        if not values:
            continue
        if all(v == values[0] for v in values[1:]):
            continue
        major = _mode(values)
        odd = [m for m, v in zip(judged, values) if major is None or v != major[0]]
        fields.append({"key": k, "majority": major[0] if major else None, "n_majority": major[1] if major else 0,
                       "n_differ": len(odd) if major else len(judged),
                       "values": dict(Counter(_fmt(v) for v in values).most_common(6))})
        if major is None:
            continue
        for m in odd:
            reasons[m.index].append({"kind": "env", "key": k,
                                     "text": f"{k}={_fmt(m.env.get(k, 'absent'))} (majority {_fmt(major[0])}, "
                                             f"{major[1]} of {len(judged)})"})
    return fields


def _judge_errors(members: list[Member], case_keys: list[str], cells: dict[tuple[int, str], str],
                  reasons: dict[int, list[dict[str, Any]]]) -> None:
    have = Counter(k for m in members for k in m.cases)
    for m in members:
        status = m.run.get("status")
        if status != "complete":
            reasons[m.index].append({"kind": "error", "text": f"run status {status!r} (not complete)"})
        for k in case_keys:
            c = m.cases.get(k)
            if c is None:
                cells[(m.index, k)] = "absent"
                if 2 * have[k] > len(members):
                    reasons[m.index].append({"kind": "missing", "case": k,
                                             "text": f"{k}: not run here ({have[k]} of {len(members)} devices ran it)"})
            elif c.get("status") == "error":
                cells[(m.index, k)] = "err"
                reasons[m.index].append({"kind": "error", "case": k,
                                         "text": f"{k}: error: {str(c.get('reason') or '')[:160]}"})
            elif c.get("status") == "skipped":
                cells[(m.index, k)] = "skip"


_STATUS_OF = {"error": ERROR, "missing": DIFFERS, "bits": DIFFERS, "bits-env": DIFFERS, "env": DIFFERS,
              "slower": SLOWER}


def fleet_model(runs: list[tuple[str, dict[str, Any]]], *, min_effect: float = 0.05,
                failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The fleet screen of ``runs`` ((source, run dict), in input order)."""
    members = members_of(runs)
    multi = len({(m.source, m.run.get("run_id")) for m in members}) < len(members)
    case_keys = list(dict.fromkeys(k for m in members for k in m.cases))
    cells: dict[tuple[int, str], str] = {}
    reasons: dict[int, list[dict[str, Any]]] = {m.index: [] for m in members}
    _judge_errors(members, case_keys, cells, reasons)
    notes: list[str] = []
    for k in case_keys:
        _judge_bits(members, k, cells, reasons, notes)
        _judge_timing(members, k, min_effect, cells, reasons)
    env_fields = _judge_env(members, reasons)
    labels = [_label(m, multi) for m in members]
    seen = Counter(labels)
    rows = []
    for m, label in zip(members, labels):
        if seen[label] > 1:
            label = f"{label} [#{m.index + 1}]"
        kinds = {r["kind"] for r in reasons[m.index]}
        status = next((s for s in STATUSES if any(_STATUS_OF.get(k) == s for k in kinds)), OK)
        ordered = sorted(reasons[m.index], key=lambda r: ["error", "bits", "bits-env", "missing", "slower", "env",
                                                          "noisy"].index(r["kind"]))
        launch = m.identity
        rows.append({"label": label, "source": m.source, "run_id": m.run.get("run_id"), "device": m.device,
                     "host": launch.get("launch.host"),
                     "rank": launch.get("launch.rank") if (launch.get("launch.world_size") or 1) > 1 else None,
                     "env_differs": [r["key"] for r in ordered if r["kind"] == "env"],
                     "gpu": m.env.get("gpu.name") if m.device.startswith("cuda") else m.env.get("cpu.model"),
                     "uuid": launch.get("gpu.uuid"), "pci_bus_id": launch.get("gpu.pci_bus_id"),
                     "status": status, "reasons": ordered,
                     "cells": [cells.get((m.index, k), "ok") for k in case_keys]})
    # Worst first; within DIFFERS the strongest signal first: bits that differ where the environment does not.
    strength = {"bits": 0, "error": 0, "bits-env": 1, "missing": 2, "slower": 3, "env": 4, "noisy": 5}
    order = sorted(range(len(rows)), key=lambda i: (STATUSES.index(rows[i]["status"]),
                                                    min((strength[r["kind"]] for r in rows[i]["reasons"]), default=9), i))
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    return {"members": [rows[i] for i in order], "cases": case_keys, "env_fields": env_fields,
            "counts": counts, "n_runs": len(runs), "failures": failures or [], "notes": notes,
            "options": {"min_effect": min_effect, "z_limit": Z_LIMIT, "min_timing_group": MIN_TIMING_GROUP}}


def failed(model: dict[str, Any], policy: set[str]) -> list[dict[str, Any]]:
    """Members whose status is in ``policy`` (statuses in upper case)."""
    return [m for m in model["members"] if m["status"] in policy]


def parse_fail_on(value: str | None) -> set[str]:
    """"differs,slower,error" -> {"DIFFERS", "SLOWER", "ERROR"}; UsageError on another word."""
    if not value:
        return set()
    words = {w.strip().upper() for w in value.split(",") if w.strip()}
    bad = sorted(words - {DIFFERS, SLOWER, ERROR})
    if bad:
        raise UsageError(f"--fail-on {value!r}: expected a comma list of differs, slower, error")
    return words


def terminal_lines(model: dict[str, Any], width: int = 160) -> list[str]:
    """One headline, then one line per member that is not OK (worst first) with its first reasons."""
    c = model["counts"]
    out = [f"Fleet: {len(model['members'])} device(s) in {model['n_runs']} run(s): {c[OK]} OK, {c[DIFFERS]} DIFFERS, "
           f"{c[SLOWER]} SLOWER, {c[ERROR]} ERROR"]
    for f in model.get("failures", []):
        out.append(f"  ERROR   rank {f.get('rank')}: {f.get('error')}"[:width])
    for note in model.get("notes", []):
        out.append(f"  note: {note}"[:width])
    for m in model["members"]:
        if m["status"] == OK:
            continue
        why = "; ".join(r["text"] for r in m["reasons"] if r["kind"] != "noisy") or "?"
        line = f"  {m['status']:<7} {m['label']}: {why}"
        out.append(line if len(line) <= width else line[: width - 1] + "…")
    return out

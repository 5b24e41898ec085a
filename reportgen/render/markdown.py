"""Markdown summary of a run, for pasting into a bug ticket (GitHub issues cap a comment at 65,536 characters).

Verdicts first, then claims, key numbers, and the environment folded into a ``<details>`` block. The summary is
guaranteed to fit ``limit`` characters whatever the suite size: it is rendered at decreasing levels of detail
(every comparison -> only the worst per result -> none), and if even the shortest form is too long, the per-result
rows are capped with a line saying how many were left out. Every cut is announced in the text; report.html
always has the rest.
"""

from __future__ import annotations

import html
import re
from typing import Any, Callable, Iterable

from reportgen.claims import NOT_MEASURABLE
from reportgen.render.html import (RERENDER_COMMAND, comparison_label, comparison_note, fmt_duration, fmt_field, fmt_num,
                                   is_http_url, robustness_note, worst_verdict)

GITHUB_LIMIT = 65_000  # GitHub rejects comments/issue bodies over 65,536 characters; keep a margin
_CELL_MAX = 240  # characters of free text (reasons, claim texts) in one table cell
_BAD = {"out of bound", "does not hold", "error", "inconclusive"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#<>~])")


def esc(value: Any, limit: int = _CELL_MAX) -> str:
    """Data as inert Markdown inside a table cell: one line, specials escaped, HTML impossible, length capped."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;")
    return _MD_SPECIAL.sub(lambda m: "&lt;" if m.group(1) == "<" else "&gt;" if m.group(1) == ">" else "\\" + m.group(1),
                           text)


def code(value: Any, limit: int = 120) -> str:
    """Data as a code span: backslash escapes do not work inside one, so only the backtick (cannot be escaped:
    replaced) and the table-cell pipe (GFM splits cells before parsing code spans) need handling."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def verdict_md(verdict: Any) -> str:
    # Bad outcomes in bold so they stand out in a plain ticket; no colours or emoji (not every tracker has them).
    text = esc(verdict)
    return f"**{text}**" if verdict in _BAD else text


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _capped(items: list[Any], cap: int | None) -> tuple[list[Any], int]:
    if cap is None or len(items) <= cap:
        return items, 0
    return items[:cap], len(items) - cap


# ------------------------------------------------------------------------------------------------ sections

def _header(run: dict[str, Any]) -> list[str]:
    env = run.get("environment", {})
    cuda = env.get("cuda", {}) if isinstance(env.get("cuda"), dict) else {}
    gpus = [d.get("name", "?") for d in cuda.get("devices", []) if isinstance(d, dict)]
    where = [env.get("platform", {}).get("os", "unknown OS"), env.get("cpu", {}).get("model", "unknown CPU"),
             f"torch {env.get('torch', {}).get('version', '?')}",
             ", ".join(gpus) if gpus else f"no CUDA ({cuda.get('reason', 'unavailable')})",
             f"{env.get('settings', {}).get('num_threads', '?')} CPU threads"]
    launch = _launch_text(env.get("launch"))
    if launch:
        where.append(launch)
    return [f"## reportgen: suite {code(run['suite'].get('name', '?'))}, run {code(run.get('run_id', '?'))}", "",
            f"Status **{esc(run.get('status', '?'))}** · reportgen {esc(run.get('tool_version', '?'))} · "
            f"schema {esc(run.get('schema_version', '?'))} · started {esc(run.get('started'))} · "
            f"finished {esc(run.get('finished') or '–')}  ",
            " · ".join(esc(w) for w in where), ""]


def _launch_text(launch: Any) -> str:
    """"rank 1 of 4 (torchrun, local rank 1, node 0, host gpu-3)" when the run is one rank of a launch, else "":
    a process alone (launcher none, world of one) and archives from before launches were recorded say nothing."""
    if not isinstance(launch, dict) or launch.get("launcher") in (None, "none"):
        return ""
    world = launch.get("world_size")
    if not isinstance(world, int) or isinstance(world, bool) or world < 2:
        return ""
    where = [str(launch.get("launcher"))] + [f"{word} {launch[key]}" for key, word in
                                             (("local_rank", "local rank"), ("node_rank", "node"), ("host", "host"))
                                             if launch.get(key) is not None]
    return f"rank {launch.get('rank', '?')} of {world} ({', '.join(where)})"


def _counts(values: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    # "does not hold: 3", not "3 does not hold": verdicts are phrases, not nouns to count
    return ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())) or "none"


def _verdicts(run: dict[str, Any], cap: int | None) -> list[str]:
    cases = run.get("cases", [])
    if not cases:  # e.g. interrupted before the first case finished: say so instead of an empty table
        return ["### Verdicts", "", f"No results (run status: {esc(run.get('status', '?'))}).", ""]
    # Problems first when rows must be cut, so a cap never hides an error or an out-of-bound result.
    def rank(c: dict[str, Any]) -> int:
        worst = worst_verdict([x.get("verdict") for x in c.get("comparisons", [])])
        return 0 if c.get("status") == "error" or worst == "out of bound" else 1 if c.get("status") != "ok" else 2
    ordered = sorted(cases, key=rank) if cap is not None and len(cases) > cap else cases
    shown, left = _capped(ordered, cap)
    rows = []
    for c in shown:
        verdicts = [x.get("verdict") for x in c.get("comparisons", [])]
        worst = worst_verdict(verdicts)
        oob = sum(v == "out of bound" for v in verdicts)
        rows.append([esc(c.get("id")), verdict_md(c.get("status")), verdict_md(worst) if worst else "–",
                     f"{len(verdicts)} ({oob} out of bound)" if verdicts else "–", esc(c.get("reason") or "")])
    lines = ["### Verdicts", "",
             f"{len(cases)} results: {_counts(c.get('status', '?') for c in cases)}. Worst comparison verdict: "
             f"{verdict_md(worst_verdict([x.get('verdict') for c in cases for x in c.get('comparisons', [])]) or '–')}.",
             ""]
    lines += _table(["result", "status", "worst verdict", "comparisons", "reason"], rows)
    if left:
        hidden = ordered[len(shown):]
        lines += ["", f"_{left} more results not listed here ({_counts(c.get('status', '?') for c in hidden)}); "
                      "see report.html._"]
    return lines + [""]


def _robustness_md(claim: dict[str, Any]) -> str:
    note = robustness_note(claim)
    if not note:
        return ""
    return f" **{esc(note)}**" if claim.get("fragile") else f" ({esc(note)})"


def _claims(run: dict[str, Any], cap: int | None) -> list[str]:
    claims = run.get("claims") or []
    if not claims:
        return []
    # As in report.html: the claims no result could test are named by id under their shared reason, not given a
    # row each (23 of the default suite's 33 rows on a CPU-only run without the framework venvs).
    measured = [cl for cl in claims if cl.get("verdict") != NOT_MEASURABLE]
    unmeasured = [cl for cl in claims if cl.get("verdict") == NOT_MEASURABLE]
    if cap is not None and len(measured) > cap:  # when rows must be cut, keep the claims that fail or waver
        measured = sorted(measured, key=lambda cl: cl.get("verdict") not in _BAD and not cl.get("fragile"))
    shown, left = _capped(measured, cap)
    rows = [[esc(cl.get("text")) + f" ({code(cl.get('id'), 80)}, {_source(cl.get('source'))})",
             verdict_md(cl.get("verdict")) + _robustness_md(cl), esc(cl.get("reason") or "")] for cl in shown]
    lines = ["### Claims", "", f"{len(claims)} claims: {_counts(cl.get('verdict', '?') for cl in claims)}.", ""]
    if rows:
        lines += _table(["claim", "verdict", "why"], rows)
    if left:
        lines += ["", f"_{left} more claims not listed here; see report.html._"]
    if unmeasured:
        lines += ["", f"Not measurable in this run ({len(unmeasured)}):", ""]
        by_reason: dict[str, list[str]] = {}
        for cl in unmeasured:
            by_reason.setdefault(str(cl.get("reason") or ""), []).append(str(cl.get("id")))
        for reason, ids in by_reason.items():
            named, rest = _capped(ids, cap)
            more = f" and {rest} more" if rest else ""
            lines.append(f"- {esc(reason)} ({len(ids)}): " + ", ".join(code(i, 80) for i in named) + more)
    return lines + [""]


_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{1,300}")


def _source(value: Any) -> str:
    # A plain http(s) URL stays as is so the tracker links it (escaping its "_" would break the link); anything
    # else is escaped text.
    text = str(value or "")
    return text if _URL.fullmatch(text) else esc(text, 160)


def _note(c: dict[str, Any]) -> str:
    note = comparison_note(c)
    return f" ({note})" if note else ""


_COMPARISON_HEADER = ["comparison", "verdict", "max abs", "max abs/bound", "max ULP", "bitwise equal"]


def _has_min_tol(comps: list[dict[str, Any]]) -> bool:
    # archives from before minimum tolerances existed lack the keys: their table keeps its old columns
    return any(c.get("min_atol") is not None or c.get("min_rtol") is not None for c in comps)


def _min_tol(c: dict[str, Any]) -> str:
    if c.get("min_atol") is None and c.get("min_rtol") is None:
        return "–"
    return esc(f"{fmt_num(c.get('min_rtol'))} / {fmt_num(c.get('min_atol'))}")


def _comparison_rows(comps: list[dict[str, Any]]) -> list[list[str]]:
    tol = _has_min_tol(comps)
    return [[esc(comparison_label(c)), verdict_md(c.get("verdict")) + _note(c), esc(fmt_num(c.get("max_abs"))),
             esc(fmt_num(c.get("max_normalised"))), esc(fmt_num(c.get("max_ulp"))),
             esc(fmt_num(100 * c["bitwise_equal_fraction"]) + " %"
                 if isinstance(c.get("bitwise_equal_fraction"), (int, float)) else "–")]
            + ([_min_tol(c)] if tol else []) for c in comps]


def _comparison_table(comps: list[dict[str, Any]]) -> list[str]:
    header = _COMPARISON_HEADER + (["min rtol / atol"] if _has_min_tol(comps) else [])
    lines = _table(header, _comparison_rows(comps))
    # The relative rule's statement once under the table (it names its factor), not in every row's note.
    rules = list(dict.fromkeys(str(c.get("bound_desc")) for c in comps
                               if c.get("rule") == "relative" and c.get("bound_desc")))
    notes = [f"_{esc(r, 400)}._" for r in rules]
    if _has_min_tol(comps):
        notes.append("_min rtol / atol: the smallest rtol (atol 0) and atol (rtol 0) torch.testing.assert_close "
                     "would pass with._")
    return lines + ([""] + notes if notes else [])


def _pair_lines(case: dict[str, Any]) -> list[str]:
    """A ``kind: pair`` result in one line, then the code that ran on each side: "a (eager) vs b (compiled):
    within rounding; farther from the reference: a; the float64 reruns agree to 5e-16 (one function)"."""
    extra = case.get("extra") if isinstance(case.get("extra"), dict) else {}
    pair = extra.get("pair")
    if not isinstance(pair, dict):
        return []
    facts = case.get("facts") if isinstance(case.get("facts"), dict) else {}
    text = f"a ({esc(pair.get('a', '?'), 80)}) vs b ({esc(pair.get('b', '?'), 80)})"
    verdict = facts.get("verdict") or worst_verdict([x.get("verdict") for x in case.get("comparisons", [])
                                                     if isinstance(x, dict)])
    if not verdict and case.get("status") not in (None, "ok"):
        verdict = case.get("status")  # e.g. error: the pair never produced a verdict
    text += f": {verdict_md(verdict) if verdict else 'no verdict'}"
    if facts.get("worse_side") in ("a", "b"):
        text += f"; farther from the reference: {facts['worse_side']}"
    twins, same = facts.get("reference.twins_max_rel"), facts.get("reference.same_function")
    if isinstance(twins, (int, float)) and not isinstance(twins, bool):
        if same is False:
            text += f"; the float64 reruns differ by {esc(fmt_num(float(twins)))} (relative): **not the same function**"
        else:
            text += f"; the float64 reruns agree to {esc(fmt_num(float(twins)))}" + (" (one function)" if same else "")
    elif pair.get("reference") == "none":
        text += "; no reference: a and b compared with each other only"
    lines = [text + ".", ""]
    prov = pair.get("provenance") if isinstance(pair.get("provenance"), dict) else {}
    # a, b first, then inputs/reference/bound in a fixed order: the same text from a run or from results.json
    keys = [k for k in ("a", "b", "inputs", "reference", "bound") if k in prov] + sorted(
        k for k in prov if k not in ("a", "b", "inputs", "reference", "bound"))
    rows = []
    for key in keys:
        p = prov[key] if isinstance(prov[key], dict) else {}
        sha = p.get("sha256")
        rows.append(f"- {esc(key, 40)}: {code(p.get('name') or '?', 160)}"
                    + (f", sha256 {code(str(sha)[:16], 20)}" if sha else ", sha256 –"))
    if rows:
        lines += ["Code that ran:", ""] + rows + [""]
    return lines


def _timing_rows(timings: list[dict[str, Any]]) -> list[list[str]]:
    return [[esc(t.get("name")), esc(t.get("label")), esc(fmt_duration(t.get("median_s"))),
             esc(fmt_num(t.get("iqr_over_median")) + (" (noisy)" if t.get("noisy") else "")),
             esc(f"{t.get('runs', len(t.get('samples_s', [])))} × {t.get('number', '?')}"),
             esc(t.get("num_threads", "?")),
             esc(f"{100 * t['roofline']['fraction_of_roofline']:.3g} %" if isinstance(t.get("roofline"), dict)
                 else "–")] for t in timings]


def _key_numbers(run: dict[str, Any], level: int) -> list[str]:
    """level 0: every comparison and timing; 1: the worst comparison of each result, no timings; 2: none."""
    if level >= 2:
        return ["### Key numbers", "", "_Left out to keep this summary short; see report.html._", ""]
    head = ["### Key numbers", "",
            "max |Δ|/bound ≤ 1 means within the rounding-error bound any correct kernel satisfies.", ""]
    lines: list[str] = []
    for c in run.get("cases", []):
        comps = [x for x in c.get("comparisons", []) if isinstance(x, dict)]
        timings = [t for t in c.get("timings", []) if isinstance(t, dict)] if level == 0 else []
        if level == 1 and comps:
            comps = [max(comps, key=lambda x: (x.get("verdict") == "out of bound",
                                               _as_float(x.get("max_normalised"))))]
        why = _pair_lines(c) + (_why_lines(c) if level == 0 else [])
        if not comps and not timings and not why:
            continue
        lines += [f"#### {esc(c.get('id'))}", ""] + why
        if comps:
            lines += _comparison_table(comps) + [""]
        if timings:
            lines += _table(["timing", "side", "median", "IQR/median", "samples × calls", "threads", "of roofline"],
                            _timing_rows(timings)) + [""]
    if not lines:
        return []
    if level == 1:
        lines += ["_Only the worst comparison of each result is listed (and no timings) to keep this summary "
                  "short; see report.html._", ""]
    return head + lines


def _why_lines(case: dict[str, Any]) -> list[str]:
    """What each side ran and whether it repeats: the two questions a ticket's reader asks first."""
    extra = case.get("extra") if isinstance(case.get("extra"), dict) else {}
    kernels, det = extra.get("kernels"), extra.get("determinism")
    lines: list[str] = []
    summary = kernels.get("summary") if isinstance(kernels, dict) else None
    if isinstance(summary, list) and summary:
        lines += ["Kernels:", ""] + [f"- {esc(str(line).replace(' -> ', ' → '), 300)}" for line in summary] + [""]
    if isinstance(det, dict) and isinstance(det.get("self"), dict) and det["self"]:
        lines += [_repro_line(det), ""]
    return lines


def _repro_line(det: dict[str, Any]) -> str:
    groups: dict[str, list[str]] = {}
    # sorted: results.json sorts keys, and a report rendered at run time must equal one rendered from the file
    for label, st in sorted(det["self"].items()):
        if not isinstance(st, dict):
            continue
        if st.get("error"):  # the check itself failed: say so, not "not identical over ? runs"
            verdict = f"not checked ({esc(st['error'], 120)})"
        else:
            verdict = (f"{'bitwise identical' if st.get('self_consistent') else '**not** bitwise identical'} "
                       f"over {st.get('repeats', '?')} runs")
        groups.setdefault(verdict, []).append(esc(label))
    selfs = "; ".join(f"{', '.join(labels)}: {v}" for v, labels in groups.items())
    matrix = det.get("matrix") if isinstance(det.get("matrix"), dict) else {}
    cells = {k: v for k, v in sorted(matrix.items()) if k != "baseline" and isinstance(v, dict)}
    failed = [k for k, v in cells.items() if v.get("error") or not isinstance(v.get("sides"), dict)]
    ran = {k: v for k, v in cells.items() if k not in failed}
    moved = [f"{esc(cell)} (" + ", ".join(f"{esc(label)} {esc(fmt_num(d.get('max_normalised')))}"
                                          for label, d in changed) + ")"
             for cell, row in ran.items()
             if (changed := [(label, d) for label, d in sorted(row["sides"].items())
                             if isinstance(d, dict) and d.get("bitwise_equal") is False])]
    text = f"Reproducible: {selfs}. Settings that change a side's bits"
    text += (f" (max |Δ|/bound): {'; '.join(moved)}." if moved
             else f": none of {len(ran)} ({esc(', '.join(ran))})." if ran else ": no settings cell ran.")
    if failed:
        text += f" Cells that could not run: {esc(', '.join(failed))}."
    return text


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("-inf")


def _kv_lines(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(d, dict):
        return [(prefix or "value", str(d))]
    out: list[tuple[str, str]] = []
    for k, v in sorted(d.items()):  # sorted: the same text whether the dict came from a run or from results.json
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out += _kv_lines(v, key)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, item in enumerate(v):
                out += _kv_lines(item, f"{key}[{i}]")
        else:
            out.append((key, ", ".join(map(str, v)) if isinstance(v, list) else fmt_field(k, v)))
    return out


def _environment(run: dict[str, Any], level: int) -> list[str]:
    env = run.get("environment", {})
    sections = ["platform", "cpu", "memory", "torch", "cuda", "packages", "env_vars", "settings"]
    if level >= 2:  # the essentials only
        sections = ["platform", "torch", "cuda"]
    rows = []
    for s in sections:
        for k, v in _kv_lines(env.get(s, {}), s):
            if k == "torch.config":  # the multi-line build configuration: report.html has it
                continue
            rows.append([code(k, 80), esc(v, 160 if level else _CELL_MAX)])
    return (["<details><summary>Environment</summary>", ""] + _table(["field", "value"], rows)
            + ["", "</details>", ""])


_SNIPPET_MAX = (4000, 1500)  # characters of a published snippet at level 0, 1 (report.html has all of it)
_PRINTED_MAX = 1500  # characters of what it printed (level 0 only)


def _html_text(value: Any, limit: int = 200) -> str:
    # For a <summary>: an HTML block, where Markdown is not parsed, so HTML escaping, not backslashes
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _fenced(text: str, limit: int, lang: str = "") -> list[str]:
    """``text`` verbatim in a fenced code block that it cannot close: the fence is longer than any run of
    backticks in it. Cut at a line boundary to ``limit`` characters, the cut said below the block."""
    body = str(text).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    body = _CONTROL.sub("", body)  # terminal escapes in what a script printed: not for a ticket
    total = len(body)
    if total > limit:
        body = body[:limit].rsplit("\n", 1)[0] if "\n" in body[:limit] else body[:limit]
    runs = [len(m) for m in re.findall(r"`+", body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    lines = [fence + lang] + body.split("\n") + [fence]
    if total > len(body):
        lines += ["", f"_Cut at {len(body)} of {total} characters; report.html has all of it._"]
    return lines


def _items(values: Any, cap: int = 20) -> list[str]:
    items = [v for v in values if v is not None] if isinstance(values, list) else []
    shown, left = _capped(items, cap)
    return [f"- {esc(v, 600)}" for v in shown] + ([f"- _… {left} more in report.html_"] if left else [])


def _published_block(case: dict[str, Any], level: int) -> list[str]:
    """The source's code a result ran as published, folded: the snippet, the edits made to run it here, where
    the case's variants depart from it, the source (linked only when http(s))."""
    extra = case.get("extra") if isinstance(case.get("extra"), dict) else {}
    pub = extra.get("published")
    if not isinstance(pub, dict):
        return []
    title = pub.get("title") or "published code"
    lines = [f"<details><summary>{_html_text(case.get('id'), 120)}: the published code it ran "
             f"({_html_text(title, 160)})</summary>", ""]
    source = pub.get("source")
    if source:
        link = is_http_url(source) and _URL.fullmatch(str(source))
        lines += [f"Source: {source if link else esc(source, 300)}", ""]
    lines += _fenced(str(pub.get("snippet") or ""), _SNIPPET_MAX[min(level, 1)], "python") + [""]
    edits = _items(pub.get("edits"))
    lines += (["Changed to run it here:", ""] + edits if edits else ["Run verbatim (no edits)."]) + [""]
    departures = _items(pub.get("departures"))
    if departures:
        lines += ["Where the case's variants depart from it:", ""] + departures + [""]
    if level == 0 and pub.get("printed"):
        lines += ["What it printed:", ""] + _fenced(str(pub["printed"]), _PRINTED_MAX) + [""]
    return lines + ["</details>", ""]


def _published(run: dict[str, Any], level: int, cap: int | None) -> list[str]:
    cases = [c for c in run.get("cases", []) if isinstance(c, dict)
             and isinstance(c.get("extra"), dict) and isinstance(c["extra"].get("published"), dict)]
    if not cases:
        return []
    if level >= 2:
        return ["### Published code", "", f"_The published code {len(cases)} result(s) ran is left out to keep "
                                          "this summary short; see report.html._", ""]
    shown, left = _capped(cases, cap)
    lines = ["### Published code", ""] + [line for c in shown for line in _published_block(c, level)]
    if left:
        lines += [f"_{left} more results ran published code; see report.html._", ""]
    return lines


def _footer(run: dict[str, Any]) -> list[str]:
    return ["---", f"_Summary by reportgen {esc(run.get('tool_version', '?'))} from results.json (schema "
                   f"{esc(run.get('schema_version', '?'))}). **Attach report.html** for the rest: plots, every "
                   "comparison and table, kernels, settings per case, raw timing samples; it embeds the complete "
                   f"results.json (`{RERENDER_COMMAND}` re-renders it)._", ""]


def _compose(run: dict[str, Any], level: int, cap: int | None) -> str:
    parts: list[Callable[[], list[str]]] = [
        lambda: _header(run), lambda: _verdicts(run, cap), lambda: _claims(run, cap),
        lambda: _key_numbers(run, level), lambda: _published(run, level, cap), lambda: _environment(run, level),
        lambda: _footer(run)]
    return "\n".join(line for part in parts for line in part())


def render_markdown(data: dict[str, Any], *, limit: int = GITHUB_LIMIT) -> str:
    """A results dict -> Markdown summary of at most ``limit`` characters (deterministic)."""
    for level in (0, 1, 2):
        text = _compose(data, level, None)
        if len(text) <= limit:
            return text
    # Still too long: cap the per-result and per-claim rows; find the largest cap that fits (bisection).
    lo, hi = 0, max(len(data.get("cases", [])), len(data.get("claims") or []))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_compose(data, 2, mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    text = _compose(data, 2, lo)
    if len(text) > limit:  # header/environment alone too long: only possible with absurd limits
        text = text[: limit - 40].rsplit("\n", 1)[0] + "\n\n_(truncated; see report.html)_\n"
    return text


# ------------------------------------------------------------------------------------------------ fleet compare

_CELL_MD = {"ok": "·", "bits": "**B**", "env": "E", "slow": "S", "err": "**X**", "skip": "–", "absent": " ",
            "nofp": "?", "nomaj": "~", "none": "·"}


def fleet_md(model: dict[str, Any], cap: int | None) -> str:
    """The fleet screen of a comparison: counts, one row per device that is not OK (reasons, worst first), the
    environment fields where devices differ from the majority. ``cap`` limits the rows (None: all); the cut is
    announced. OK devices are only counted: at 256 runs listing them would crowd out the ones that matter."""
    f = model["fleet"]
    c = f["counts"]
    out = [f"## reportgen fleet: {len(f['members'])} device(s) in {f['n_runs']} run(s)", "",
           f"**{c['OK']} OK**, **{c['DIFFERS']} DIFFERS**, **{c['SLOWER']} SLOWER**, **{c['ERROR']} ERROR**", ""]
    for fail in f.get("failures", []):
        out.append(f"- **ERROR** rank {esc(fail.get('rank'))}: {esc(fail.get('error'))}")
    notes, left_notes = _capped(f.get("notes", []), cap)
    out += [f"- {esc(n, 400)}" for n in notes] + ([f"- _… {left_notes} more notes in compare.html_"] if left_notes else [])
    if f.get("failures") or notes:
        out.append("")
    bad = [m for m in f["members"] if m["status"] != "OK"]
    if bad:
        cases = f["cases"]
        out += ["| status | device | reason | " + " | ".join(code(k, 40) for k in cases) + " |",
                "|---|---|---|" + "---|" * len(cases)]
        shown, left = _capped(bad, cap)
        for m in shown:
            why = "; ".join(r["text"] for r in m["reasons"] if r["kind"] != "noisy")
            out.append(f"| **{m['status']}** | {esc(m['label'], 80)} | {esc(why, 400)} | "
                       + " | ".join(_CELL_MD.get(x, esc(x)) for x in m["cells"]) + " |")
        if left:
            out.append(f"| _… {left} more devices that are not OK in compare.html_ | | |" + " |" * len(cases))
        out += ["", "_Cells: **B** bits differ from same-environment devices (possible corruption), E bits differ "
                    "and so does the environment, S slower, **X** error, ? no fingerprints (older archive), "
                    "~ no majority, – skipped._", ""]
    else:
        out += ["Every device agrees with the majority in bits, timing and environment.", ""]
    if f["env_fields"]:
        out += [f"### Environment: {len(f['env_fields'])} field(s) differ between devices", "",
                "| field | majority | devices differing | values |", "|---|---|---|---|"]
        shown, left = _capped(f["env_fields"], cap)
        out += [f"| {code(e['key'], 80)} | {esc(e['majority'], 60)} | {e['n_differ']} | "
                + esc(", ".join(f"{v} ×{n}" for v, n in e["values"].items()), 200) + " |" for e in shown]
        if left:
            out.append(f"| _… {left} more fields in compare.html_ | | | |")
        out.append("")
    return "\n".join(out) + "\n"

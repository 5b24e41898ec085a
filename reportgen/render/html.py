"""HTML report: Jinja2 templates (autoescape on, StrictUndefined) -> one self-contained page.

The page is a pure function of the results dict: no clock, no random ids, inline CSS and SVG, no external URL,
and the results themselves embedded as JSON so the HTML alone is the archive.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from reportgen.verdicts import worst_verdict
from reportgen.resources import resource_dir
from reportgen.results import dumps

VERDICT_CLASS = {
    "identical": "good", "within rounding": "good", "holds": "good", "ok": "good",
    "out of bound": "bad", "does not hold": "bad", "error": "bad",
    "inconclusive": "warn", "not measurable here": "muted", "skipped": "muted",
}


# The re-render command a report shows for itself. Not `reportgen render report.html`: the folder holds that very
# report.html already, and render never overwrites (exit 2); a new folder beside it always works.
RERENDER_DIR = "rerendered"
RERENDER_COMMAND = f"reportgen render report.html --out {RERENDER_DIR}"


def templates_dir() -> Path:
    return resource_dir("templates")


def fmt_num(value: Any, digits: int = 3) -> str:
    """Numbers for people: ints as is, floats to ``digits`` significant figures, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.{digits}g}"
        return f"{value:.{digits - 1}e}"
    return str(value)


def fmt_duration(seconds: Any) -> str:
    """Seconds in the unit that keeps 3 significant figures readable: 2.41 ms, 312 µs, 1.20 s."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return fmt_num(seconds)
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(value: Any) -> str:
    """A byte count for people, in binary units to three significant figures: 134987776000 -> "126 GiB"."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return fmt_num(value)
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_field(key: Any, value: Any) -> str:
    """A key/value table's value: byte counts (keys ending in ``bytes``) in GiB/MiB, everything else as fmt_num."""
    return fmt_bytes(value) if str(key).endswith("bytes") else fmt_num(value)


# torch.testing.assert_close's default (rtol, atol) per dtype (torch/testing/_comparison.py, unchanged since
# torch 1.12; tests/test_report_reader.py checks them against the installed torch).
ASSERT_CLOSE_DEFAULTS = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
                         "float64": (1e-7, 1e-7)}


def assert_close_note(c: dict[str, Any]) -> bool:
    """True when ``assert_close: fail`` sits beside ``within rounding``: the defaults allow
    |Δ| <= atol + rtol·|expected| per element, which for this comparison is tighter than the rounding-error bound
    somewhere, so a difference any correct summation order may give fails it. The table marks these cells and
    says so once below it (assert_close_footnote), instead of the same sentence in every row."""
    return c.get("assert_close") is False and c.get("verdict") == "within rounding"


def assert_close_footnote(comparisons: list[dict[str, Any]]) -> str:
    """The note under a comparisons table for its marked ``assert_close`` cells, or "" when none is marked."""
    dtypes = list(dict.fromkeys(str(c.get("dtype")) for c in comparisons if assert_close_note(c)))
    if not dtypes:
        return ""
    tols = [f"{d} rtol {ASSERT_CLOSE_DEFAULTS[d][0]:g}, atol {ASSERT_CLOSE_DEFAULTS[d][1]:g}"
            if d in ASSERT_CLOSE_DEFAULTS else f"{d}: its defaults" for d in dtypes]
    return (f"assert_close fails beside within rounding: its default tolerances ({'; '.join(tols)}) are tighter "
            "than the rounding-error bound, so a difference that any correct summation order may give fails "
            "them; the verdict is judged against the bound.")


def comparison_label(c: dict[str, Any]) -> str:
    """A comparison's name, with its two sides when the name does not say them: one case may compare several
    pairs under one name ("feats": Linear vs 1x1 Conv2d, Linear vs float64, 1x1 Conv2d vs float64)."""
    name, actual = str(c.get("name", "?")), c.get("actual")
    return name if not actual or str(actual) in name else f"{name} ({actual} vs {c.get('expected', '?')})"


def comparison_note(c: dict[str, Any]) -> str:
    """What a comparison's verdict needs beside its numbers, or "": the numbers cover finite values only, so an
    overflow would read "out of bound" next to max |Δ| 0 and 100 % bitwise equal; a vacuous bound makes any
    finite difference "within rounding"."""
    if c.get("nonfinite_mismatch"):
        return (f"{c['nonfinite_mismatch']} of {c.get('numel', '?')} values non-finite on one side only "
                "(overflow?); the numbers beside are over the finite rest")
    if c.get("rule") == "relative":
        ratio = c.get("error_ratio")
        # the rule itself is the bound's footnote; the row says only where it stands
        return f"RMS error {fmt_num(ratio)}× the better side's" if ratio is not None else ""
    if c.get("rule") == "none":
        return "no bound and no reference: measured, not judged"
    if c.get("max_normalised") is None and c.get("verdict") == "within rounding":
        return "the bound is vacuous (n·u ≥ 1): any finite difference is within it"
    return ""


_AFTER_SEPARATOR = re.compile(r"(?<=[/_.])")


def break_points(value: Any) -> Markup:
    """``value`` escaped, with ``<wbr>`` after each ``/``, ``_`` and ``.``: for identifiers in narrow fixed-width
    columns ("conv1d_semantics" in the claims table's Case column at 800 px), which are shorter than the long
    tokens render_html breaks by itself, but wider than the column."""
    return Markup("<wbr>").join(escape(part) for part in _AFTER_SEPARATOR.split(str(value)))


_ROBUSTNESS_ORDER = ("holds", "does not hold", "inconclusive", "not measurable here")


def robustness_note(claim: dict[str, Any]) -> str:
    """How the claim's verdict fares over the robustness seeds, or "" for a claim judged on one seed (results
    written before robustness existed, or a suite without it): "fragile (holds 14/20, does not hold 6/20)"."""
    rob = claim.get("robustness")
    if not isinstance(rob, dict) or not rob.get("verdicts"):
        return ""
    n, counts = rob.get("seeds", 0), rob["verdicts"]
    keys = [k for k in _ROBUSTNESS_ORDER if k in counts] + sorted(k for k in counts if k not in _ROBUSTNESS_ORDER)
    tally = ", ".join(f"{k} {counts[k]}/{n}" for k in keys)
    if rob.get("fragile"):
        return f"fragile ({tally})"
    measured = sum(v for k, v in counts.items() if k != "not measurable here" and isinstance(v, int))
    if measured <= 1 < n:
        # e.g. a timing claim: reruns over seeds run with timing off, so its robustness is its rounds' spread
        return f"not judged over seeds (measured on {measured} of {n} seeds): {tally}"
    if measured < n:
        return f"same verdict on every seed measured ({measured} of {n} seeds): {tally}"
    return f"same verdict on every seed measured ({n} seeds): {tally}"


def anchor(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(value)).strip("-")


def verdict_badge(value: Any) -> Markup:
    text = str(value)
    return Markup('<span class="badge {}">{}</span>').format(VERDICT_CLASS.get(text, "muted"), text)


def is_http_url(value: Any) -> bool:
    """Whether ``value`` may be an href: an absolute http(s) URL with a host and no whitespace or control
    characters. Every href built from data passes this (as the Jinja test ``http_url``): an archive is data, and a
    ``javascript:`` or ``data:`` source in it must stay text, not become a live link."""
    if not isinstance(value, str) or len(value) > 2000 or re.search(r"[\s\x00-\x1f\x7f]", value):
        return False
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def environment(loader_root: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(loader_root or templates_dir())),
        autoescape=True,  # select_autoescape() would not cover .html.j2: escape everything, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    from reportgen.claims import evidence_text

    env.filters.update(num=fmt_num, dur=fmt_duration, anchor=anchor, verdict=verdict_badge, worst_verdict=worst_verdict,
                       comparison_note=comparison_note, robustness_note=robustness_note, assert_close_note=assert_close_note,
                       assert_close_footnote=assert_close_footnote, bytes=fmt_bytes,
                       breaks=break_points,
                       evidence_text=lambda ev: evidence_text(ev, fmt_num))
    env.globals.update(field=fmt_field, rerender_command=RERENDER_COMMAND, rerender_dir=RERENDER_DIR)
    env.tests["http_url"] = is_http_url
    return env


def _svgs(data: dict[str, Any]) -> dict[str, Markup]:
    from reportgen.render.plots import render_svg  # matplotlib import only when there are plots

    out: dict[str, Markup] = {}
    for case in data.get("cases", []):
        for i, plot in enumerate(case.get("plots", [])):
            key = f"{case['id']}#{plot.get('id', i)}"
            try:
                svg = render_svg(plot, salt=f"reportgen-{key}")
            except Exception as exc:  # a broken plot spec must not lose the whole report
                out[key] = Markup('<p class="muted">plot unavailable: {}</p>').format(f"{type(exc).__name__}: {exc}")
                continue
            # Our own matplotlib output: its text is already XML-escaped by the SVG backend.
            out[key] = Markup(svg)
    return out


def embedded_json(data: dict[str, Any]) -> Markup:
    """JSON for a <script type="application/json"> block: '<', '>', '&' escaped so '</script>' cannot end it."""
    text = dumps(data)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def render_html(data: dict[str, Any], template: str = "report.html.j2") -> str:
    """Render a results dict; byte-identical output for equal input (keys normalised through JSON first)."""
    data = json.loads(dumps(data))
    env = environment()
    from reportgen.render.pdf import soft_breaks  # pdf imports this module: imported here, not at the top

    css = Markup((templates_dir() / "report.css").read_text(encoding="utf-8"))  # our own file, not data
    # Titles, labels and notes from today's views (reportgen.render.views); the page embeds the archive as stored.
    from reportgen.render.views import apply_views

    shown = apply_views(data)
    page = env.get_template(template).render(run=shown, svgs=_svgs(shown), embedded=embedded_json(data), css=css)
    # Long tokens (result ids, kernel names, paths) get <wbr> at their separators so table cells wrap there;
    # "overflow-wrap: anywhere" wrapped every word mid-letter once a column was narrow ("conv1d_semantic|s").
    return soft_breaks(page, joiner="<wbr>")


def extract_embedded(page: str) -> dict[str, Any]:
    """The results dict embedded in a report.html (for re-rendering and comparing archived reports)."""
    return json.loads(embedded_block(page))


def embedded_block(page: str) -> str:
    """The JSON text embedded in a report.html; ValueError when there is none."""
    m = re.search(r'<script type="application/json" id="reportgen-results">(.*?)</script>', page, re.DOTALL)
    if not m:
        raise ValueError("no embedded reportgen results in this HTML")
    return m.group(1)

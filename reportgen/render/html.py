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
from markupsafe import Markup

from reportgen.verdicts import worst_verdict
from reportgen.resources import resource_dir
from reportgen.results import dumps

VERDICT_CLASS = {
    "identical": "good", "within rounding": "good", "holds": "good", "ok": "good",
    "out of bound": "bad", "does not hold": "bad", "error": "bad",
    "inconclusive": "warn", "not measurable here": "muted", "skipped": "muted",
}


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


def anchor(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(value)).strip("-")


def verdict_badge(value: Any) -> Markup:
    text = str(value)
    return Markup('<span class="badge {}">{}</span>').format(VERDICT_CLASS.get(text, "muted"), text)


def environment(loader_root: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(loader_root or templates_dir())),
        autoescape=True,  # select_autoescape() would not cover .html.j2: escape everything, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(num=fmt_num, dur=fmt_duration, anchor=anchor, verdict=verdict_badge, worst_verdict=worst_verdict,
                       comparison_note=comparison_note)
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
    css = Markup((templates_dir() / "report.css").read_text(encoding="utf-8"))  # our own file, not data
    return env.get_template(template).render(run=data, svgs=_svgs(data), embedded=embedded_json(data), css=css)


def extract_embedded(page: str) -> dict[str, Any]:
    """The results dict embedded in a report.html (for re-rendering and comparing archived reports)."""
    m = re.search(r'<script type="application/json" id="reportgen-results">(.*?)</script>', page, re.DOTALL)
    if not m:
        raise ValueError("no embedded reportgen results in this HTML")
    return json.loads(m.group(1))

"""Files for ``render`` and ``compare``: archived inputs (a results.json, or a report.html and its embedded JSON)
and the report files written from them.

Whatever the form, the dict is brought up to the current schema by ``reportgen.results.upgrade`` and checked to
have the shape of a RunResult, so a corrupt or foreign file gives one line naming it (exit 2), not a traceback
from deep inside a template.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from reportgen.errors import UsageError
from reportgen.render.html import embedded_block
from reportgen.redact import redact_tree
from reportgen.writer import writer_gone
from reportgen.results import RunResult, dumps, load_dict, parse_json, read_text_limited, upgrade

_HTML_SUFFIXES = (".html", ".htm")


def _from_html(path: Path) -> dict[str, Any]:
    page = read_text_limited(path, "a report.html written by reportgen")
    try:
        block = embedded_block(page)
    except ValueError as exc:  # no block
        raise UsageError(f"{path}: no readable embedded reportgen results ({exc}); "
                         "is it a report.html written by reportgen?") from None
    data = parse_json(block, f"{path} (embedded results)")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: embedded results are not a JSON object")
    return upgrade(data, str(path))


# Per case: field -> (type, type of each item or None). ``compare`` reads these without a template in between, so
# a wrong type must stop here with the key named, not as an AttributeError deep inside the comparison.
_CASE_FIELDS: dict[str, tuple[type, type | None]] = {
    "id": (str, None), "status": (str, None), "comparisons": (list, dict), "tables": (list, dict),
    "plots": (list, dict), "timings": (list, dict), "notes": (list, None), "facts": (dict, None),
    "extra": (dict, None), "settings": (dict, None), "params": (dict, None)}
_JSON_TYPE = {str: "a string", list: "a list", dict: "an object"}


def _check_case(case: dict[str, Any], source: str, prefix: str) -> None:
    for key, (want, item) in _CASE_FIELDS.items():
        if key not in case:
            continue  # required fields are the dataclass constructor's to name (below)
        value = case[key]
        if not isinstance(value, want):
            raise UsageError(f"{source}: key '{prefix}.{key}': expected {_JSON_TYPE[want]}, "
                             f"got {json.dumps(value)[:40]}")
        bad = next((i for i, v in enumerate(value) if not isinstance(v, item)), None) if item else None
        if bad is not None:
            raise UsageError(f"{source}: key '{prefix}.{key}[{bad}]': expected {_JSON_TYPE[item]}, "
                             f"got {json.dumps(value[bad])[:40]}")
    for i, t in enumerate(case.get("timings", [])):
        samples = t.get("samples_s", [])
        if not isinstance(samples, list) or not all(isinstance(x, (int, float, str)) for x in samples):
            raise UsageError(f"{source}: key '{prefix}.timings[{i}].samples_s': expected a list of numbers")


def check_shape(data: dict[str, Any], source: str) -> None:
    """UsageError unless ``data`` has the fields of a RunResult and each case those of a CaseResult."""
    if not isinstance(data.get("cases", []), list) or not all(isinstance(c, dict) for c in data.get("cases", [])):
        raise UsageError(f"{source}: 'cases' must be a list of objects")
    for key in ("environment", "suite"):
        if not isinstance(data.get(key), dict):
            raise UsageError(f"{source}: missing or malformed '{key}' (not a reportgen results file?)")
    claims = data.get("claims", [])
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise UsageError(f"{source}: key 'claims': expected a list of objects")
    for i, case in enumerate(data.get("cases", [])):
        _check_case(case, source, f"cases[{i}]")
    try:
        RunResult.from_dict(data)
    except TypeError as exc:  # a required field is missing: the dataclass constructor names it
        raise UsageError(f"{source}: malformed results: {exc}") from None


def load_input(path: str | Path) -> dict[str, Any]:
    """A results dict (current schema) from a results.json or a report.html; UsageError on anything else."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; expected a results.json or a report.html")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    data = _from_html(path) if path.suffix.lower() in _HTML_SUFFIXES else load_dict(path)
    check_shape(data, str(path))
    return redact_tree(json.loads(dumps(mark_stale(data))))


def mark_stale(data: dict[str, Any]) -> dict[str, Any]:
    """An archive still ``running`` whose writer is gone (SIGKILL, a crash: it could not mark itself) is shown as
    ``interrupted``, with why in ``writer.gone``. Every reader of archives (render, compare, a fleet) calls it."""
    if data.get("status") == "running":
        # A run killed hard (SIGKILL, a crash) could not mark its archive: if its writer is gone, say so.
        gone = writer_gone(data.get("writer"))
        if gone is not None:
            data["status"] = "interrupted"
            data["writer"] = {**data["writer"], "gone": gone}
    # The caller normalises through JSON (as render_html does) and redacts again: an archive written before
    # every string was redacted may still hold the home directory.
    return data


# ---------------------------------------------------------------------------------------------- outputs

FORMATS = ("html", "pdf", "md")
_SUFFIX = {"html": ".html", "pdf": ".pdf", "md": ".md"}


def parse_formats(value: str, option: str = "--format") -> list[str]:
    """"html,pdf" -> ["html", "pdf"] (order kept, duplicates dropped); "none" -> []; UsageError otherwise."""
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    if items == ["none"]:
        return []
    bad = [v for v in items if v not in FORMATS]
    if bad or not items:
        raise UsageError(f"{option} {value!r}: expected a comma-separated list of {', '.join(FORMATS)} (or none)")
    return list(dict.fromkeys(items))


def output_paths(out_dir: Path, stem: str, formats: list[str], *, force: bool) -> dict[str, Path]:
    """Where each format goes; UsageError naming the first existing file unless ``force`` (never overwrite
    silently). Checked before anything is rendered, so a refusal leaves no half-written set behind."""
    paths = {f: Path(out_dir) / f"{stem}{_SUFFIX[f]}" for f in formats}
    if not force:
        for p in paths.values():
            if p.exists():
                raise UsageError(f"{p}: already exists; refusing to overwrite it (use --force or another --out)")
    return paths


def write_file(path: Path, content: str | bytes) -> None:
    """Write via a temporary file and rename, so an interrupted render never leaves a truncated report."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_bytes(content)
        os.replace(tmp, path)
    except OSError as exc:  # read-only directory, permission denied, --out under a file: the user's to fix
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write: no half-written temporary left beside the reports
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _render(fmt: str, data: dict[str, Any], stem: str, page_size: str, html: str | None) -> str | bytes:
    # Imports inside: matplotlib, WeasyPrint and scipy load only for the formats asked for.
    if stem == "compare":
        from reportgen.render import compare
        if fmt == "html":
            return compare.render_compare_html(data)
        if fmt == "pdf":
            return compare.render_compare_pdf(data, page_size=page_size, html=html)
        return compare.render_compare_markdown(data)
    if fmt == "html":
        from reportgen.render.html import render_html
        return render_html(data)
    if fmt == "pdf":
        from reportgen.render.pdf import render_pdf
        return render_pdf(data, page_size=page_size, html=html)
    from reportgen.render.markdown import render_markdown
    return render_markdown(data)


def write_reports(data: dict[str, Any], out_dir: Path, stem: str, formats: list[str], *, force: bool = False,
                  page_size: str = "A4", source: str | None = None) -> list[Path]:
    """Render ``data`` into OUT_DIR/STEM.<ext> for each format: stem "report" for a results dict, "compare" for
    a comparison model. ``source`` names the archived input(s): a template failing on them is then reported as
    malformed input (exit 2) rather than as a bug; for a fresh run (source None) it stays a traceback."""
    import jinja2

    paths = output_paths(out_dir, stem, formats, force=force)
    html: str | None = None  # rendered once, shared by the html and pdf outputs
    input_errors = (jinja2.UndefinedError, KeyError, TypeError, AttributeError, IndexError, ValueError)
    for fmt, path in paths.items():
        try:
            if fmt in ("html", "pdf") and html is None:
                html = str(_render("html", data, stem, page_size, None))
            content = html if fmt == "html" else _render(fmt, data, stem, page_size, html)
        except input_errors as exc:
            if source is None:
                raise
            # Valid JSON of the right version can still lack a field a template reads.
            raise UsageError(f"{source}: cannot render {fmt}: malformed results ({type(exc).__name__}: {exc})") \
                from None
        write_file(path, content)
    return list(paths.values())

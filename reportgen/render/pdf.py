"""PDF: the same HTML as report.html, laid out by WeasyPrint with a print stylesheet, results.json attached.

WeasyPrint is optional (the ``pdf`` extra): it is imported only here, and its absence is one line naming the fix.
The bytes are a pure function of the input: WeasyPrint writes no file identifier by default, the document dates
are the run's own ``started``/``finished`` (never the clock), and the attachment's dates are the same. Plots
stay vector: the report's inline SVG is drawn by WeasyPrint's SVG renderer, not rasterised.
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
from typing import Any, NamedTuple

from reportgen.errors import UsageError
from reportgen.render.html import render_html, templates_dir
from reportgen.results import dumps

PAGE_SIZES = ("A4", "Letter")
_EMBEDDED = re.compile(r'<script type="application/json"[^>]*>.*?</script>', re.DOTALL)
_INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
# Text between tags, outside <pre>/<style>/<script>/<svg> (split() keeps these and every tag at the odd indices;
# inline SVG only reaches here from report.html, the PDF has turned it into images by then).
_MARKUP = re.compile(r"(<pre\b.*?</pre>|<style\b.*?</style>|<script\b.*?</script>|<svg\b.*?</svg>|<[^>]*>)",
                     re.DOTALL)
_LONG_TOKEN = re.compile(r"[^\s<>]{21,}")
_SEPARATORS = "/_.,:=\\-›"
# Up to 16 characters (an entity counts as one) followed by any separators, or a run of separators: never splits
# an entity, and breaks after separators, not around every entity ("&lt;script&gt;" stays one piece).
_UNIT = rf"(?:&#?\w+;|[^{_SEPARATORS}&]|&)"
_PIECE = re.compile(rf"{_UNIT}{{1,16}}[{_SEPARATORS}]*|[{_SEPARATORS}]+")
ZERO_WIDTH_SPACE = "\u200b"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class PdfAttachment(NamedTuple):
    name: str
    content: bytes
    description: str


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the Python package is there but Pango is not
        raise UsageError(f"PDF output needs WeasyPrint (pip install 'reportgen[pdf]'): {exc}") from None
    return weasyprint


def check_available() -> None:
    """UsageError now (e.g. before a long run) if PDF output could not be written later."""
    _weasyprint()


def css_string(text: str) -> str:
    """``text`` as a CSS string literal; every character outside a safe set hex-escaped, so data cannot end it."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-+()·/#")
    return '"' + "".join(ch if ch in safe else f"\\{ord(ch):06x}" for ch in text) + '"'


def _parse_time(value: Any) -> _dt.datetime:
    # Run timestamps are ISO 8601 with an offset; anything else (None, a hand-edited value) falls back to the
    # epoch rather than to "now", which would make the bytes differ between two renders.
    try:
        parsed = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.timezone.utc)


def _svg_image(match: re.Match[str]) -> str:
    data = base64.b64encode(match.group(0).encode("utf-8")).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/svg+xml;base64,{data}">'


def soft_breaks(html: str, joiner: str = ZERO_WIDTH_SPACE) -> str:
    """``html`` with a zero-width space after the separators (and every 16 characters) of each text token longer
    than 20 characters: oneDNN problem descriptors, CUDA kernel names, dispatch chains, result ids.

    Such tokens are wider than a table column. ``overflow-wrap: anywhere`` would let them wrap, but it makes every
    character a break opportunity when WeasyPrint measures each cell's minimum width for the automatic table layout
    (default suite's report: 4.4 -> 3.4 s of layout without it); explicit break points cost nothing there and wrap
    at the separators instead of mid-word. Copying such a token from the PDF copies the zero-width spaces too;
    report.html and the attached results.json keep the exact text. ``joiner``: what goes between the pieces
    (report.html uses ``<wbr>``, a break opportunity that copying does not turn into a character)."""
    head, body_tag, body = html.partition("<body")
    parts = _MARKUP.split(body)
    for i in range(0, len(parts), 2):  # even indices: text; odd: tags and skipped blocks
        parts[i] = _LONG_TOKEN.sub(lambda m: joiner.join(_PIECE.findall(m.group(0))), parts[i])
    return head + body_tag + "".join(parts)


def _page_css(page_size: str, margin_label: str) -> str:
    if page_size not in PAGE_SIZES:
        raise UsageError(f"--page-size {page_size!r}: expected one of {', '.join(PAGE_SIZES)}")
    return f"@page {{ size: {page_size}; @top-left {{ content: {css_string(margin_label)}; }} }}"


def print_html(html: str, *, margin_label: str, page_size: str = "A4") -> str:
    """``html`` (one of our own rendered pages) as WeasyPrint lays it out: print stylesheet, no embedded JSON,
    plots as SVG images, break points in long tokens."""
    css = (templates_dir() / "pdf.css").read_text(encoding="utf-8") + "\n" + _page_css(page_size, margin_label)
    # Added as an author stylesheet after report.css (not as WeasyPrint's ``stylesheets=``, which are *user*
    # stylesheets and lose to the page's own rules of equal specificity).
    html = html.replace("</head>", f'<style id="reportgen-pdf">\n{css}\n</style>\n</head>', 1)
    # The embedded JSON is never drawn but costs parsing time; the PDF carries it as an attachment instead.
    html = _EMBEDDED.sub("", html)
    # Inline SVG as an SVG *image*: still vector, drawn by the same SVG renderer, but its thousands of nodes are no
    # longer HTML elements that WeasyPrint computes CSS for (about a quarter of the layout time of the default
    # suite's report).
    html = _INLINE_SVG.sub(_svg_image, html)
    # report.html's <wbr> break points as zero-width spaces: inside an inline element (a link in a table cell)
    # with overflow-wrap: break-word, WeasyPrint 70 ignores a <wbr> and breaks the word mid-letter instead
    # ("conv1d_semant|ics"). "<wbr>" can only be our own tag: data is escaped.
    return soft_breaks(html).replace("<wbr>", ZERO_WIDTH_SPACE)


def html_to_pdf(html: str, *, margin_label: str, page_size: str = "A4", created: Any = None,
                modified: Any = None, attachments: list[PdfAttachment] | None = None) -> bytes:
    """Lay out ``html`` (one of our own rendered pages) as PDF; ``margin_label`` is printed on every page."""
    wp = _weasyprint()
    document = wp.HTML(string=print_html(html, margin_label=margin_label, page_size=page_size),
                       base_url=None).render()
    created_dt, modified_dt = _parse_time(created), _parse_time(modified if modified else created)
    document.metadata.created = created_dt.isoformat()
    document.metadata.modified = modified_dt.isoformat()
    files = [wp.Attachment(string=a.content, name=a.name, description=a.description,
                           created=created_dt.astimezone(_dt.timezone.utc),
                           modified=modified_dt.astimezone(_dt.timezone.utc))
             for a in attachments or []]
    return document.write_pdf(attachments=files)


def render_pdf(data: dict[str, Any], *, page_size: str = "A4", html: str | None = None) -> bytes:
    """A results dict -> PDF bytes (report.html's content, paginated, with results.json attached).

    ``html``: render_html(data) when the caller has it already (``--format html,pdf``), to render it once."""
    _page_css(page_size, "")  # validate the option before spending seconds on layout
    results = dumps(data).encode("utf-8")
    label = f"reportgen · {data.get('suite', {}).get('name', '?')} · run {data.get('run_id', '?')}"
    return html_to_pdf(html if html is not None else render_html(data), margin_label=label, page_size=page_size, created=data.get("started"),
                       modified=data.get("finished"),
                       attachments=[PdfAttachment("results.json", results,
                                                  "reportgen results (schema "
                                                  f"{data.get('schema_version')}); "
                                                  "`reportgen render` / `reportgen compare` read it")])

"""Plot specs (data kept in results.json) -> inline SVG, deterministically.

matplotlib is used through ``Figure`` objects (no pyplot state), the Agg canvas, text kept as text
(svg.fonttype none) and a hash salt per figure: SVG ids are derived from the salt, so one shared salt would give
two figures on one page the same clip-path ids, and a random one would make the HTML differ on every render.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import ticker  # noqa: E402
from matplotlib.axis import Axis  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_STYLE = {"bound": {"color": "black", "linestyle": "--", "linewidth": 1.2},
          "dashed": {"color": "grey", "linestyle": ":", "linewidth": 1.0}}
_HEADER = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_SUPERSCRIPT = str.maketrans("-−0123456789", "⁻⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_MATHTEXT_POWER = re.compile(r"\$\\mathdefault\{(?:([^{}]*?)\\times\s*)?(\d+)\^\{([^{}]*)\}\}\$")


def plain_power(label: str) -> str:
    """matplotlib's mathtext tick label ``$\\mathdefault{2\\times10^{-7}}$`` as plain text ``2×10⁻⁷``."""
    m = _MATHTEXT_POWER.fullmatch(label)
    if not m:
        return label
    coeff, base, exponent = m.groups()
    return (f"{coeff}×" if coeff else "") + base + exponent.translate(_SUPERSCRIPT)


class PlainLogFormatter(ticker.LogFormatterSciNotation):
    """Log-axis tick labels in Unicode superscripts instead of mathtext.

    Parsing mathtext (pyparsing) for every tick label was 40 % of the plot rendering time of the default suite's
    report (19 plots: 1.86 s -> 1.16 s without it), and the SVG text reads the same in a browser and in the PDF."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return plain_power(super().__call__(x, pos))


def log_axis(axis: Axis) -> None:
    """Plain-text tick labels on a log axis (call after its data is plotted and its scale set)."""
    lo, hi = sorted(axis.get_view_interval())
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    if lo > 0 and math.log10(hi / lo) > 3:
        # Over many decades the 8 minor ticks per decade are clutter, and each is several SVG nodes that the
        # browser and the PDF engine draw (the 14-decade error axes had over 100).
        axis.set_minor_locator(ticker.NullLocator())


def _text(s: Any) -> str:
    # Data strings are shown literally: "$" would switch matplotlib into mathtext (and can fail to parse).
    return str(s).replace("$", r"\$")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _power_of_two(x: float) -> bool:
    return x >= 1 and x.is_integer() and (int(x) & (int(x) - 1)) == 0


def _line(ax: Any, plot: dict[str, Any]) -> None:
    log_y = plot.get("yscale") == "log"
    for s in plot["series"]:
        ys = [_num(v) for v in s["y"]]
        # Markers only on short series: on long ones they add one SVG node per point (the PDF engine draws each)
        # and hide the line anyway.
        style = _STYLE.get(s.get("style", ""), {"marker": "o", "markersize": 3} if len(ys) <= 40 else {})
        label = _text(s["label"])
        if log_y and any(y <= 0 for y in ys):
            # A log axis cannot show 0 (bitwise equal): leave a gap and say so instead of a line to -inf.
            label += f" ({sum(y <= 0 for y in ys)} zero points not drawn)"
            ys = [y if y > 0 else float("nan") for y in ys]
        ax.plot([_num(v) for v in s["x"]], ys, label=label, **style)
    ax.set_xscale(plot.get("xscale", "linear"))
    ax.set_yscale(plot.get("yscale", "linear"))
    for axis, scale in ((ax.xaxis, plot.get("xscale")), (ax.yaxis, plot.get("yscale"))):
        if scale == "log":
            log_axis(axis)
    xs = sorted({_num(v) for s in plot["series"] for v in s["x"]})
    if plot.get("xscale") == "log" and 3 <= len(xs) <= 16 and all(_power_of_two(x) for x in xs):
        # Sweeps over depths or widths 1, 2, 4 ... 32: label those values, not the one decade they span.
        ax.xaxis.set_major_locator(ticker.FixedLocator(xs))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
    elif plot.get("xscale", "linear") == "linear" and xs and all(float(x).is_integer() for x in xs):
        # Layers, steps, kernel sizes: integer positions; no tick at layer 1.5.
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


def _hist(ax: Any, plot: dict[str, Any]) -> None:
    for s in plot["series"]:
        edges, counts = s.get("edges") or [], s.get("counts") or []
        label = f"{_text(s['label'])} ({s.get('zeros', 0)} of {s.get('total', 0)} exactly equal)"
        if edges:
            ax.stairs(counts, edges, label=label, fill=False, linewidth=1.4)
        else:
            ax.plot([], [], label=label)


FIGSIZE = (6.4, 3.4)  # inches; at 72 dpi 461 x 245 px, the SVG's natural size (the page scales it to its column)
_DIGIT_EM = 0.64  # width of a digit in DejaVu Sans, in em (tick labels are digits, signs and superscripts)


def _left_margin(ax: Any, fig: Figure) -> float:
    """Room for the y tick labels and the y label, as a fraction of the figure width.

    A fixed fraction clipped the histogram's "count" label under tick labels such as 175000. The width comes
    from the tick label strings themselves (their formatter, no renderer: measuring text through a draw is what
    made tight_layout slow), at the digit width of the default font; so it is the same for the same plot."""
    lo, hi = sorted(ax.get_ylim())
    locs = [v for v in ax.yaxis.get_majorticklocs() if lo <= v <= hi]  # the others are not drawn
    labels = ax.yaxis.get_major_formatter().format_ticks(locs)
    size = matplotlib.rcParams["ytick.labelsize"]
    size = size if isinstance(size, (int, float)) else matplotlib.rcParams["font.size"]
    widest = max((len(t) for t in labels), default=1) * _DIGIT_EM * size
    ylabel = matplotlib.rcParams["axes.labelsize"]
    ylabel = ylabel if isinstance(ylabel, (int, float)) else matplotlib.rcParams["font.size"]
    # tick (3.5) + pad (3.5) + labels + label pad (4) + the label's line height + a margin at the edge (6), in pt
    points = 3.5 + 3.5 + widest + 4 + 1.2 * ylabel * bool(ax.get_ylabel()) + 6
    return min(0.3, points / 72 / fig.get_figwidth())


def build_figure(plot: dict[str, Any]) -> Figure:
    """One plot spec -> a finished matplotlib Figure (render_svg draws it)."""
    fig = Figure(figsize=FIGSIZE, dpi=72)
    ax = fig.add_subplot()
    (_hist if plot.get("kind") == "hist" else _line)(ax, plot)
    ax.set_title(_text(plot.get("title", "")), fontsize=10)
    ax.set_xlabel(_text(plot.get("xlabel", "")))
    ax.set_ylabel(_text(plot.get("ylabel", "")))
    ax.grid(True, which="major", alpha=0.3)
    if plot.get("series"):
        ax.legend(fontsize=7, loc="best")
    # Computed margins, not tight_layout(): it measured 40% of the render time (19 plots: 5.1 s -> 3.0 s).
    fig.subplots_adjust(left=_left_margin(ax, fig), right=0.98, top=0.9, bottom=0.16)
    return fig


def render_svg(plot: dict[str, Any], salt: str) -> str:
    """One plot spec -> an ``<svg>`` element string (no XML header), identical for identical input."""
    return figure_svg(build_figure(plot), salt)


def figure_svg(fig: Figure, salt: str) -> str:
    """A finished figure -> an inline ``<svg>`` string: text kept as text, no date, ids derived from ``salt``."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return _HEADER.sub("", buf.getvalue(), count=1)

"""Report pieces that are pure functions of data: plot SVG (log axes without mathtext) and the claims
section (claims no result could test grouped by reason, below the table of claims that were measured)."""

import copy
import re
from pathlib import Path

import pytest

from reportgen.render.files import load_input
from reportgen.render.html import render_html
from reportgen.render.plots import plain_power, render_svg

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"


@pytest.fixture(scope="module")
def data():
    return load_input(FIXTURE)


@pytest.mark.parametrize("label, expected", [
    (r"$\mathdefault{10^{-7}}$", "10⁻⁷"),
    (r"$\mathdefault{10^{0}}$", "10⁰"),
    (r"$\mathdefault{2\times10^{-12}}$", "2×10⁻¹²"),
    (r"$\mathdefault{10^{−3}}$", "10⁻³"),  # matplotlib may write a Unicode minus
    ("0.5", "0.5"),            # linear tick labels pass through
    ("$x$", "$x$"),            # anything that is not a power of ten is left alone
])
def test_plain_power(label, expected):
    assert plain_power(label) == expected


def _log_plot(lo: float, hi: float) -> dict:
    xs = [1, 2, 4, 8, 16, 32]
    ys = [lo * (hi / lo) ** (i / 5) for i in range(6)]
    return {"kind": "line", "xscale": "log", "yscale": "log", "title": "t", "xlabel": "x", "ylabel": "y",
            "series": [{"label": "s", "x": xs, "y": ys}]}


def _tick_labels(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_log_axes_have_plain_text_labels_no_mathtext():
    svg = render_svg(_log_plot(1e-9, 1e-3), salt="t")
    labels = _tick_labels(svg)
    assert "10⁻⁶" in labels and "10⁻⁹" in labels, labels
    assert "mathdefault" not in svg and "$" not in "".join(labels)


def test_minor_ticks_dropped_only_on_axes_spanning_many_decades():
    # Few decades on y: its minor ticks (2x, 3x ...) are kept; many decades: dropped. The x axis is the same in both.
    few, many = render_svg(_log_plot(1e-4, 1e-2), salt="a"), render_svg(_log_plot(1e-17, 1e-3), salt="b")
    y_few = len(re.findall(r'<g id="ytick_\d+">', few))
    y_many = len(re.findall(r'<g id="ytick_\d+">', many))
    assert y_few > 10 > y_many, (y_few, y_many)


def _claim(data, verdict, reason, i):
    c = copy.deepcopy(data["claims"][0])
    c.update(id=f"c{i}", text=f"claim number {i}", verdict=verdict, reason=reason, evidence=[])
    return c


def _claims_section(page: str) -> str:
    return re.search(r'<section class="claims".*?</section>', page, re.DOTALL).group(0)


def test_unmeasurable_claims_grouped_by_reason_below_the_table(data):
    d = copy.deepcopy(data)
    d["claims"] = [_claim(d, "holds", "holds on x", 0),
                   _claim(d, "not measurable here", "the rule requires device cuda", 1),
                   _claim(d, "not measurable here", "the facts the rule reads are missing on y", 2),
                   _claim(d, "not measurable here", "the rule requires device cuda", 3)]
    section = _claims_section(render_html(d))
    table, _, rest = section.partition("</table>")
    assert "claim number 0" in table and "claim number 1" not in table
    assert "4 claims: " in section and "holds</span> 1, " in section and "Not measurable in this run (3)" in rest
    assert "The rule requires device cuda (2):" in rest and "The facts the rule reads are missing on y (1):" in rest
    # each claim still has its own anchor (links from elsewhere keep working)
    for i in range(4):
        assert f'id="claim-linear_vs_conv1d-c{i}"' in section


def test_claim_moves_into_the_table_when_it_becomes_measurable(data):
    d = copy.deepcopy(data)
    d["claims"] = [_claim(d, "not measurable here", "the rule requires device cuda", 0)]
    section = _claims_section(render_html(d))
    assert '<table class="claims-table"' not in section and "Not measurable in this run (1)" in section
    d["claims"][0].update(verdict="does not hold", reason="does not hold on z")
    section = _claims_section(render_html(d))
    assert '<table class="claims-table"' in section and "Not measurable in this run" not in section


def test_power_of_two_sweeps_label_their_values():
    svg = render_svg(_log_plot(1e-9, 1e-3), salt="t")  # x = 1, 2, 4 ... 32
    labels = _tick_labels(svg)
    assert all(str(x) in labels for x in (1, 2, 4, 8, 16, 32)), labels
    other = _log_plot(1e-9, 1e-3)
    other["series"][0]["x"] = [1, 3, 10, 30, 100, 300]  # not powers of two: decades as usual
    assert "3" not in _tick_labels(render_svg(other, salt="t")) and "10²" in _tick_labels(render_svg(other, salt="t"))


def test_integer_x_values_get_integer_ticks_only():
    # per-layer plots (layers 1, 2, 3) had ticks at 1.5 and 2.5
    plot = {"kind": "line", "xscale": "linear", "yscale": "linear", "title": "t", "xlabel": "layer",
            "ylabel": "y", "series": [{"label": "s", "x": [1, 2, 3], "y": [0.1, 0.2, 0.3]}]}
    assert "1.5" not in _tick_labels(render_svg(plot, salt="t"))
    plot["series"][0]["x"] = [1, 1.5, 2]  # not integers: matplotlib's usual fractional ticks
    assert any("." in t and not t.endswith(".0") for t in _tick_labels(render_svg(plot, salt="t")))


def test_markdown_names_unmeasurable_claims_by_reason(data):
    from reportgen.render.markdown import render_markdown
    d = copy.deepcopy(data)
    d["claims"] = [_claim(d, "holds", "holds on x", 0),
                   _claim(d, "not measurable here", "the rule requires device cuda", 1),
                   _claim(d, "not measurable here", "the rule requires device cuda", 2)]
    md = render_markdown(d)
    table = md.split("| claim | verdict | why |")[1].split("\n\n")[0]
    assert "claim number 0" in table and "claim number 1" not in table
    assert "- the rule requires device cuda (2): `c1`, `c2`" in md
    d["claims"][1].update(verdict="inconclusive", reason="results disagree")
    md = render_markdown(d)
    assert "claim number 1" in md.split("| claim | verdict | why |")[1] and "(1): `c2`" in md

"""The report as a reader sees it: the commands it shows work, numbers and evidence read as text, and the
layout choices (break points, plot margins) that the browser tests check on screen."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reportgen.claims import evaluate_claim, evidence_text
from reportgen.suite import ClaimSpec
from reportgen.cli import main
from reportgen.render import html as html_mod
from reportgen.render.files import load_input, write_reports
from reportgen.render.html import extract_embedded, render_html
from reportgen.render.markdown import render_markdown

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"


@pytest.fixture
def data():
    return load_input(FIXTURE)


def _archive_command(page: str) -> str:
    section = page.split('id="archive"', 1)[1]
    start = section.index("<code>reportgen render")
    return section[start + len("<code>"):section.index("</code>", start)]


def test_the_rerender_command_the_report_shows_works_and_gives_the_same_page(data, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    write_reports(data, run_dir, "report", ["html"])
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    command = _archive_command(page)
    argv = shlex.split(command)
    assert argv[:2] == ["reportgen", "render"]
    monkeypatch.chdir(run_dir)  # "in this page's folder", as the page says
    result = CliRunner().invoke(main, argv[1:])
    assert result.exit_code == 0, result.output  # was: "report.html: already exists" (exit 2)
    out = run_dir / html_mod.RERENDER_DIR / "report.html"
    assert out.read_bytes() == (run_dir / "report.html").read_bytes()
    # the Markdown summary names the same command
    assert f"`{command}`" in render_markdown(data)


def test_long_tokens_get_break_points_not_mid_word_wrapping(data):
    page = render_html(data)
    # a result id (34 characters) breaks after its separators; the embedded archive keeps the exact text
    assert "linear_<wbr>vs_<wbr>conv1d/<wbr>cpu/<wbr>float32" in page or "linear_vs_conv1d/<wbr>" in page
    assert extract_embedded(page) == json.loads(json.dumps(data))
    css = (html_mod.templates_dir() / "report.css").read_text(encoding="utf-8")
    assert "overflow-wrap: anywhere" not in css.split("*/")[-1] and "overflow-wrap: anywhere" not in page.split(
        "</style>", 1)[1]


def test_break_points_escape_their_text():
    assert str(html_mod.break_points("a_<b>/c")) == "a_<wbr>&lt;b&gt;/<wbr>c"


def test_svg_text_is_left_alone(data):
    # <wbr> inside an inline SVG's <text> would be an unknown SVG element
    page = render_html(data)
    for svg in page.split("<svg")[1:]:
        assert "<wbr>" not in svg.split("</svg>", 1)[0]


def test_memory_in_binary_units(data):
    page = render_html(data)
    total = data["environment"]["memory"]["total_bytes"]
    assert str(total) not in page.split('id="reportgen-results"')[0]
    assert html_mod.fmt_bytes(total) == "23.5 GiB" and "23.5 GiB" in page
    assert "23.5 GiB" in render_markdown(data)
    assert html_mod.fmt_bytes(512) == "512 B" and html_mod.fmt_bytes(1536) == "1.5 KiB"
    assert html_mod.fmt_bytes(None) == "–" and html_mod.fmt_bytes(True) == "yes"


def _result(facts):
    return {"id": "c/cpu/float32", "case": "c", "device": "cpu", "dtype": "float32", "status": "ok", "facts": facts}


@pytest.mark.parametrize("rule, facts, text", [
    ({"fact": "f", "op": "==", "value": True}, {"f": True}, "is true"),
    ({"fact": "f", "op": "==", "value": True}, {"f": False}, "is false, not true"),
    ({"fact": "f", "op": "<", "value": 1.0}, {"f": 0.392}, "= 0.392, which is < 1"),
    ({"fact": "f", "op": "<", "value": 1.0}, {"f": 1.0}, "= 1, which is not < 1"),
    ({"fact": "f", "op": "==", "value": "out of bound"}, {"f": "within rounding"},
     "is “within rounding”, not “out of bound”"),
    ({"fact": "f", "op": "!=", "value": "left"}, {"f": "right"}, "is “right”, not “left”"),
    ({"fact": "f", "op": "in", "value": ["a", "b"]}, {"f": "a"}, "is “a”, one of [“a”, “b”]"),
    ({"fact": "f", "op": "not_in", "value": ["a", "b"]}, {"f": "a"}, "is “a”, one of [“a”, “b”]"),
    ({"fact": "f", "op": ">", "value": {"fact": "g", "times": 2}}, {"f": 5.0, "g": 2.0},
     "= 5, which is > 2 x g (= 4)"),
    ({"fact": "f", "op": ">", "value": 1.0, "spread": {"low": "lo", "high": "hi"}},
     {"f": 1.9, "lo": 0.9, "hi": 3.4}, "= 1.9 (rounds 0.9 to 3.4): > 1 in some rounds only, too noisy to decide"),
    ({"fact": "f", "op": "<", "value": 1.0}, {}, "not measured in this result"),
])
def test_evidence_reads_as_a_sentence_computed_from_the_rule(rule, facts, text):
    claim = evaluate_claim(ClaimSpec(id="x", text="t", source="s", rule=rule), "c", [_result(facts)])
    assert evidence_text(claim["evidence"][0], html_mod.fmt_num) == text


def test_evidence_in_the_report_has_no_raw_comparison(data):
    rule = {"fact": "precision.full", "op": "==", "value": True,
            "requires": {"facts": ["growth.conv_path_as_forward"]}}
    claim = evaluate_claim(ClaimSpec(id="x", text="t", source="s", rule=rule), "c",
                           [_result({"precision.full": True, "growth.conv_path_as_forward": True})])
    data["claims"] = [claim]
    page = render_html(data)
    assert "True == True" not in page and ": <strong>true</strong>" not in page
    assert "as_<wbr>forward</code> is true" in page.replace(".<wbr>", ".") or "forward</code> is true" in page


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_assert_close_defaults_are_torchs(dtype):
    from torch.testing._comparison import default_tolerances
    assert html_mod.ASSERT_CLOSE_DEFAULTS[dtype] == pytest.approx(default_tolerances(getattr(torch, dtype)))


def test_assert_close_fail_beside_within_rounding_says_why(data):
    comps = data["cases"][0]["comparisons"]
    comps[0].update(assert_close=False, verdict="within rounding", dtype="float32")
    comps[1].update(assert_close=False, verdict="within rounding", dtype="float32")
    assert html_mod.assert_close_note(comps[0])
    assert not html_mod.assert_close_note(dict(comps[0], verdict="out of bound"))  # no excuse for a real miss
    assert not html_mod.assert_close_note(dict(comps[0], assert_close=True))
    note = html_mod.assert_close_footnote(comps)
    assert "float32 rtol 1.3e-06, atol 1e-05" in note and "tighter than the rounding-error bound" in note
    page = render_html(data)
    assert page.count("fail<span class=\"flag\"") == 2  # the marked cells
    assert page.count(note) == 1  # and the reason once, under the table
    assert html_mod.assert_close_footnote(comps[2:]) == ""


BOOM = "name: b\ncases:\n  - name: boom\n    kind: _test_boom\n"


def test_run_writes_the_pdf_by_default_when_weasyprint_is_there(tmp_path):
    pytest.importorskip("weasyprint")
    suite = tmp_path / "b.yaml"
    suite.write_text(BOOM)
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--run-id", "r"])
    assert result.exit_code == 1, result.output  # the case errors; the reports are still written
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.html", "report.md", "report.pdf",
                                                                 "results.json"]


def test_run_without_weasyprint_writes_html_and_md_and_exits_as_usual(tmp_path, monkeypatch):
    from reportgen.errors import UsageError
    from reportgen.render import pdf

    def missing():
        raise UsageError("PDF output needs WeasyPrint")
    monkeypatch.setattr(pdf, "check_available", missing)
    suite = tmp_path / "b.yaml"
    suite.write_text(BOOM)
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--run-id", "r"])
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.html", "report.md", "results.json"]
    # asked for explicitly, a missing WeasyPrint is still an error before the run
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--run-id", "s",
                                       "--format", "html,pdf"])
    assert result.exit_code == 2 and not (tmp_path / "s").exists()


def _y_label_and_ticks(fig):
    """Window extents of the y label and the y tick labels, as drawn (Agg, the canvas the SVG backend shares)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    lo, hi = sorted(ax.get_ylim())
    # only the ticks inside the view are drawn; the others keep a label text that is never shown
    ticks = [t.get_window_extent(renderer) for loc, t in zip(ax.yaxis.get_majorticklocs(), ax.yaxis.get_ticklabels())
             if t.get_text() and lo <= loc <= hi]
    return ax.yaxis.label.get_window_extent(renderer), ticks


def test_hist_y_label_is_clear_of_its_tick_labels():
    from reportgen.render.plots import build_figure
    plot = {"kind": "hist", "title": "t", "xlabel": "log10 |Δ|", "ylabel": "count",
            "series": [{"label": "forward", "edges": [-8.0, -7.5, -7.0], "counts": [175000, 90000],
                        "zeros": 3, "total": 265003}]}
    label, ticks = _y_label_and_ticks(build_figure(plot))
    assert ticks and label.x0 >= 0
    assert all(label.x1 <= t.x0 for t in ticks), (label, [t.x0 for t in ticks])  # was: "count" under "175000"


@pytest.mark.parametrize("plot", [
    {"kind": "line", "title": "t", "xlabel": "x", "ylabel": "max |error|", "yscale": "log",
     "series": [{"label": "a", "x": [1, 2, 4], "y": [1e-14, 1e-7, 1e18]}]},
    {"kind": "line", "title": "t", "xlabel": "x", "ylabel": "value",
     "series": [{"label": "a", "x": [1, 2, 3], "y": [-0.000123, 0.5, 0.25]}]},
])
def test_line_plot_y_labels_fit(plot):
    from reportgen.render.plots import build_figure

    label, ticks = _y_label_and_ticks(build_figure(plot))
    assert label.x0 >= 0 and all(label.x1 <= t.x0 for t in ticks)


def _pdf_lines(html: str) -> list[str]:
    weasyprint = pytest.importorskip("weasyprint")
    doc = weasyprint.HTML(string=html).render()
    out: list[str] = []

    def text(box) -> str:
        t = getattr(box, "text", None)
        return t if t is not None else "".join(text(c) for c in getattr(box, "children", []))

    def walk(box) -> None:
        if type(box).__name__ == "LineBox":
            out.append(text(box).replace("\u200b", ""))
            return
        for c in getattr(box, "children", []):
            walk(c)
    for page in doc.pages:
        walk(page._page_box)
    return out


def test_pdf_claims_table_breaks_case_names_at_separators(data):
    from reportgen.render.pdf import print_html
    data["claims"] = [{"id": f"c{i}", "case": name, "text": "t", "source": "s", "verdict": "holds", "reason": "r",
                       "anchor": f"{name}/cpu/float32", "rule": {}, "evidence": []}
                      for i, name in enumerate(["conv1d_semantics", "conv1d_cross_framework"])]
    page = print_html(render_html(data), margin_label="t")
    assert "<wbr>" not in page  # WeasyPrint gets zero-width spaces (its <wbr> inside a link breaks mid-word)
    lines = _pdf_lines(page)
    # was: "conv1d_semant" / "ics", "conv1d_cross_f" / "ramework"
    assert any("semantics" in ln for ln in lines) and any("framework" in ln for ln in lines), \
        [ln for ln in lines if "conv1d" in ln]

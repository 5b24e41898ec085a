"""The view registry: plot and table text comes from reportgen.render.views at render time, not from the archive."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from test_facts import _params  # the conformance test's tiny params per kind

from reportgen import cases as registry
from reportgen import runner
from reportgen.cases import CaseContext
from reportgen.render import views
from reportgen.render.files import load_input
from reportgen.render.html import embedded_block, render_html
from reportgen.render.markdown import render_markdown
from reportgen.render.views import PlotView, TableView
from reportgen.results import dumps
from reportgen.suite import CaseSpec, SuiteSpec, TimingSpec

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict:
    """A real tiny run of linear_vs_conv1d, written to results.json and read back as `reportgen render` reads it."""
    kind = "linear_vs_conv1d"
    spec = SuiteSpec(name="views", description="", path="-", cases=(
        CaseSpec(name="lin", kind=kind, description="", devices=("cpu",), dtypes=("float32",), seed=0,
                 params=_params(kind), timing=TimingSpec(enabled=False)),))
    run, path = runner.run_suite(spec, tmp_path_factory.mktemp("views"), command=["t"])
    assert run.cases[0].status == "ok", run.cases[0].reason
    return load_input(path if path.name == "results.json" else path / "results.json")


def _case(data: dict) -> dict:
    return data["cases"][0]


def test_cases_store_ids_and_data_not_the_views_text(archive):
    case = _case(archive)
    growth_k = next(p for p in case["plots"] if p["id"] == "growth_k")
    assert "title" not in growth_k and "xlabel" not in growth_k and growth_k["views"] == 1
    assert set(growth_k["meta"]) == {"batches", "rows_per_batch"}
    vp = next(t for t in case["tables"] if t.get("id") == "growth_depth_vp_table")
    assert "note" not in vp and vp["rows"]
    stored = json.dumps(case["plots"], ensure_ascii=False)
    assert "Max error vs in_features K" not in stored  # the wording lives in the registry only


def test_rerender_picks_up_a_changed_view(archive, monkeypatch):
    before_html, before_md = render_html(archive), render_markdown(archive)
    nb = next(p for p in _case(archive)["plots"] if p["id"] == "growth_k")["meta"]["batches"]
    assert "Max error vs in_features K (one layer, " in before_html
    width = _case(archive)["params"]["growth_width"]
    assert f"Variant: growth with depth, variance-preserving init (width-{width} layers" in before_html

    monkeypatch.setitem(views.VIEWS, ("linear_vs_conv1d", "growth_k"),
                        PlotView(title="Error against the inner dimension, over {batches} batches",
                                 xlabel="inner dimension K", ylabel="largest error"))
    monkeypatch.setitem(views.VIEWS, ("linear_vs_conv1d", "growth_depth_vp_table"),
                        TableView(title="Deeper stacks of width {growth_width}", note="A reworded note."))
    html, md = render_html(archive), render_markdown(archive)
    assert f"Error against the inner dimension, over {nb} batches" in html  # the plot's title, as SVG text
    assert "inner dimension K" in html and "largest error" in html
    assert "Max error vs in_features K" not in html and "K (in_features)" not in html
    assert f"Deeper stacks of width {width}</caption>" in html and "A reworded note." in html
    captions = re.findall(r"<caption[^>]*>(.*?)</caption>", html, re.DOTALL)
    assert not any("variance-preserving" in c for c in captions)
    # the report still embeds the archive as stored: a later re-render rewords it again
    assert json.loads(embedded_block(html)) == json.loads(dumps(archive))
    # the Markdown summary prints no plot or table text (it points to report.html for those): unchanged
    assert md == before_md and "Max error vs in_features K" not in md
    assert html != before_html and render_html(archive) == html  # byte-identical for the same input and views


def test_a_view_that_cannot_be_filled_shows_the_stored_text():
    case = {"kind": "linear_vs_conv1d", "params": {}}
    plot = {"id": "growth_k", "kind": "line", "views": 1, "title": "stored title", "series": []}
    shown = views.view_plot(case, plot)  # no meta: "{batches}" cannot be filled
    assert shown["title"] == "stored title" and shown["xlabel"] == "K (in_features)"
    hist = views.view_plot({"kind": "plugin_kind"}, {"id": "h", "kind": "hist", "views": 1, "series": []})
    assert hist["ylabel"] == "count" and hist["title"] == ""  # no view for a plugin kind: nothing invented


def test_v1_archive_renders_as_before(monkeypatch):
    data = load_input(FIXTURE)
    html, md = render_html(data), render_markdown(data)
    assert "Max error vs depth (stack of width-32 layers, 16 rows)" in html  # its own title, not today's
    assert "Growth with depth</caption>" in html
    # v1 reuses the id growth_depth for another stack: no registry entry may reword it, whatever it says
    monkeypatch.setattr(views, "VIEWS", {("linear_vs_conv1d", i): PlotView(title="REWORDED", xlabel="REWORDED")
                                         for i in ("diff_hist", "growth_depth", "growth_k")})
    assert render_html(data) == html and render_markdown(data) == md and "REWORDED" not in html


def test_rendering_the_views_does_not_import_torch(tmp_path):
    import subprocess
    import sys
    code = ("import sys, json; from reportgen.render.views import apply_views, VIEWS; "
            "assert VIEWS; apply_views({'cases': []}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def _bundled() -> list[str]:
    return [k for k in registry.names() if not k.startswith("_") and registry.get(k).origin == "reportgen"]


@pytest.mark.parametrize("kind", _bundled())
def test_every_bundled_plot_and_table_has_a_view_that_fills(kind):
    info = registry.get(kind)
    params = _params(kind)
    ctx = CaseContext(name=kind, params=params, device=torch.device("cpu"), dtype=torch.float32, seed=3,
                      timing_enabled=False, facts=info.facts)
    result = info.run(ctx)
    plots, tables = json.loads(dumps(result.plots)), json.loads(dumps(result.tables))
    case = {"kind": kind, "params": json.loads(dumps(dict(params))), "seed": 3}
    values = views._values(case, {})
    for p in plots:
        view = views.lookup(kind, p["id"], PlotView)
        assert view is not None, f"{kind}: plot {p['id']!r} has no view"
        assert p.get("views") == 1
        for field in ("title", "xlabel", "ylabel", "note"):
            template = getattr(view, field)
            if template:
                assert views._fill(template, {**values, **p.get("meta", {})}) is not None, (kind, p["id"], field)
        shown = views.view_plot(case, p)
        assert shown["title"] and shown["xlabel"] and "{" not in shown["title"] + shown["xlabel"] + shown["note"]
    for t in tables:
        assert t.get("id"), f"{kind}: a table without an id: {t.get('title')!r}"
        view = views.lookup(kind, t["id"], TableView)
        assert view is not None, f"{kind}: table {t['id']!r} has no view"
        for template in (view.title, view.note, *(view.columns or ())):
            if template:
                assert views._fill(template, {**values, **t.get("meta", {})}) is not None, (kind, t["id"], template)
        shown = views.view_table(case, t)
        assert shown["title"] and "{" not in shown["title"] + shown["note"]
        assert shown["columns"] and all(len(r) == len(shown["columns"]) for r in t["rows"]), (kind, t["id"])
    assert kind == "pair" or plots or tables  # every seed case has something to look at

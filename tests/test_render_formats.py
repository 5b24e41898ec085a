"""PDF, Markdown and `reportgen render` from an archived results.json (tests/fixtures/results_v1.json: a real tiny
run with an ok, a skipped and an errored result and one claim, schema version 1)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen import results as results_mod
from reportgen.cli import main
from reportgen.errors import UsageError
from reportgen.render.files import load_input, parse_formats
from reportgen.render.html import render_html
from reportgen.render.markdown import GITHUB_LIMIT, render_markdown
from reportgen.results import SCHEMA_VERSION, dumps

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"
ROOT = Path(__file__).resolve().parents[1]
needs_poppler = pytest.mark.skipif(not shutil.which("pdfinfo"), reason="poppler-utils (pdfinfo) not installed")


def _weasyprint_ok() -> bool:
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


needs_weasyprint = pytest.mark.skipif(not _weasyprint_ok(), reason="WeasyPrint (the 'pdf' extra) not installed")


@pytest.fixture(scope="module")
def data():
    return load_input(FIXTURE)


@pytest.fixture(scope="module")
def pdf_bytes(data):
    if not _weasyprint_ok():
        pytest.skip("WeasyPrint (the 'pdf' extra) not installed")
    from reportgen.render.pdf import render_pdf
    return render_pdf(data)


def _pdfinfo(pdf: bytes) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


# ------------------------------------------------------------------------------------------------ inputs

def test_fixture_is_schema_1_with_every_status(data):
    assert json.loads(FIXTURE.read_text())["schema_version"] == 1
    assert data["schema_version"] == SCHEMA_VERSION and data["writer"] is None  # migrated: writer unknown
    assert {c["status"] for c in data["cases"]} == {"ok", "skipped", "error"}
    assert data["claims"] and data["cases"][0]["timings"][0]["samples_s"]


def test_report_html_input_gives_the_same_dict_as_results_json(data, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(data), encoding="utf-8")
    assert load_input(page) == data


def test_newer_schema_is_one_line_error_and_exit_2(data, tmp_path):
    newer = dict(data, schema_version=SCHEMA_VERSION + 1)
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(newer))
    with pytest.raises(UsageError, match="newer than this reportgen supports") as err:
        load_input(path)
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(main, ["render", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and str(path) in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content, message", [
    ('{"schema_version": 1, "cases": [', "not valid JSON"),
    ("[1, 2]", "top level is not an object"),
    ('{"cases": []}', "no integer 'schema_version'"),
    ('{"schema_version": 1, "cases": [], "environment": {}, "suite": {}}', "malformed results"),
    ('{"schema_version": 1, "cases": 3, "environment": {}, "suite": {}}', "'cases' must be a list"),
])
def test_corrupt_results_json_exit_2(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["render", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1


def test_results_missing_a_field_a_template_reads_exit_2(data, tmp_path):
    broken = json.loads(json.dumps(data))
    del broken["cases"][0]["comparisons"][0]["max_abs"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(broken))
    result = CliRunner().invoke(main, ["render", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "cannot render html: malformed results" in result.output
    assert not (tmp_path / "o" / "report.html").exists()


def test_html_without_embedded_results_exit_2(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("<!DOCTYPE html><html><body><p>not a report</p></body></html>")
    result = CliRunner().invoke(main, ["render", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no readable embedded reportgen results" in result.output
    broken = tmp_path / "broken.html"
    broken.write_text('<script type="application/json" id="reportgen-results">{"schema_version": </script>')
    result = CliRunner().invoke(main, ["render", str(broken), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and str(broken) in result.output


def test_older_schema_is_migrated_on_load(monkeypatch, tmp_path):
    # Simulate the day schema 2 exists: a v1 file (the fixture) must load through the migration chain.
    def to_2(d):
        return dict(d, schema_version=2, migrated=True)
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(results_mod._MIGRATIONS, 1, to_2)
    loaded = load_input(FIXTURE)
    assert loaded["schema_version"] == 2 and loaded["migrated"] is True


def test_parse_formats():
    assert parse_formats("pdf, html,pdf") == ["pdf", "html"]
    assert parse_formats("none") == []
    for bad in ("", "docx", "html,xml"):
        with pytest.raises(UsageError, match="--format"):
            parse_formats(bad)


# ------------------------------------------------------------------------------------------------ markdown

def test_markdown_has_verdicts_claims_environment_and_escapes_data(data):
    md = render_markdown(data)
    assert md.startswith("## reportgen: suite `fixture-v1`, run `fixture-v1`")
    assert "### Verdicts" in md and "### Claims" in md and "### Key numbers" in md
    assert "| linear\\_vs\\_conv1d/cpu/float32 | ok | within rounding |" in md
    assert "**error**" in md and "holds" in md
    assert "<details><summary>Environment</summary>" in md and md.rstrip().endswith("._")
    assert "report.html" in md
    # the errored case's message contains markup: it must arrive as text, never as HTML
    assert "<b>" not in md and "&lt;b&gt;for the fixture&lt;/b&gt;" in md


def _huge(data, n_cases=3000, n_claims=800):
    # Shallow copies: the renderers only read, so the cases may share their (large) contents.
    big = dict(data)
    ok = next(c for c in data["cases"] if c["status"] == "ok")
    big["cases"] = [dict(ok, id=f"case_{i:05d}/cpu/float32") for i in range(n_cases)]
    err = next(c for c in data["cases"] if c["status"] == "error")
    big["cases"].append(dict(err, id="zz_failing/cpu/float32"))  # last: a cap keeping the first rows drops it
    big["claims"] = [dict(data["claims"][0], id=f"claim-{i}", text="x" * 200) for i in range(n_claims)]
    return big


def test_markdown_stays_under_the_limit_whatever_the_suite_size(data):
    big = _huge(data)
    md = render_markdown(big)
    assert len(md) <= GITHUB_LIMIT
    assert "zz\\_failing/cpu/float32" in md  # problems are listed first when rows are capped
    assert "more results not listed here" in md and "more claims not listed here" in md
    assert md.count("<details>") == md.count("</details>") == 1
    small = render_markdown(big, limit=8000)
    assert len(small) <= 8000 and "zz\\_failing" in small


def test_markdown_drops_detail_before_rows(data):
    # A suite a little too big for every comparison still keeps every result row.
    big = _huge(data, n_cases=60, n_claims=0)
    md = render_markdown(big)
    assert len(md) <= GITHUB_LIMIT and "more results not listed" not in md
    assert "Only the worst comparison of each result is listed" in md


# ------------------------------------------------------------------------------------------------ pdf

@needs_weasyprint
def test_pdf_is_a_pdf_with_results_attached_and_run_dates(pdf_bytes, data, tmp_path):
    assert pdf_bytes.startswith(b"%PDF-")
    if not shutil.which("pdfdetach"):
        pytest.skip("poppler-utils (pdfdetach) not installed")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(pdf_bytes)
    listing = subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "results.json" in listing
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "att.json"), str(pdf)], check=True)
    assert (tmp_path / "att.json").read_text(encoding="utf-8") == dumps(data)
    info = _pdfinfo(pdf_bytes)
    assert info["Title"].endswith("fixture-v1") and "Nov 23" in info["CreationDate"]  # the run's date, not today's


@needs_weasyprint
@needs_poppler
def test_pdf_pages_carry_run_id_and_page_numbers(pdf_bytes):
    pages = int(_pdfinfo(pdf_bytes)["Pages"])
    assert pages >= 2
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf_bytes, capture_output=True,
                          check=True).stdout.decode()
    assert text.count("run fixture-v1") == pages
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text


@needs_weasyprint
def test_pdf_plots_stay_vector(pdf_bytes, tmp_path):
    if not shutil.which("pdfimages"):
        pytest.skip("poppler-utils (pdfimages) not installed")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(pdf_bytes)
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert len(listing.strip().splitlines()) == 2  # the two header lines: not one raster image in the file
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Max error vs depth" in text  # a plot title, drawn as text, not pixels


@needs_weasyprint
@needs_poppler
def test_letter_page_size_and_bad_page_size(data):
    from reportgen.render.pdf import render_pdf
    letter = render_pdf(data, page_size="Letter", html=render_html(data))
    assert "612 x 792 pts" in _pdfinfo(letter)["Page size"]
    with pytest.raises(UsageError, match="--page-size"):
        render_pdf(data, page_size="A3")


@needs_weasyprint
def test_pdf_byte_identical_across_processes(pdf_bytes, tmp_path):
    # Another interpreter with another hash seed: set/dict order or a clock in the output would show here.
    out = tmp_path / "other.pdf"
    code = ("import sys; from reportgen.render.files import load_input; from reportgen.render.pdf import render_pdf;"
            "open(sys.argv[2], 'wb').write(render_pdf(load_input(sys.argv[1])))")
    subprocess.run([sys.executable, "-c", code, str(FIXTURE), str(out)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.read_bytes() == pdf_bytes


def test_missing_weasyprint_is_one_line_usage_error(monkeypatch):
    from reportgen.render import pdf
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # makes `import weasyprint` raise ImportError
    with pytest.raises(UsageError, match=r"pip install 'reportgen\[pdf\]'") as err:
        pdf.check_available()
    assert "\n" not in str(err.value)


def test_soft_breaks_only_in_long_text_tokens():
    from reportgen.render.pdf import ZERO_WIDTH_SPACE as ZW, soft_breaks
    page = ('<html><head><style>a { font: 14px/1.45 x_aaaaaaaaaaaaaaaaaaaaaaaaaaaa }</style></head><body>'
            '<p class="very_long_attribute_value_with_underscores">linear_vs_conv1d/cpu/float32 short_word</p>'
            '<code>' + "a" * 40 + '</code>' + "&amp;" * 20 + '<pre>pre_formatted_text_is_left_alone_entirely</pre>'
            '<script type="application/json">{"key_that_is_long_enough_to_split": 1}</script></body></html>')
    out = soft_breaks(page)
    assert f"linear_{ZW}vs_{ZW}conv1d/{ZW}cpu/{ZW}float32 short_word" in out  # tokens of <= 20 chars untouched
    assert f"{'a' * 16}{ZW}{'a' * 16}{ZW}{'a' * 8}</code>" in out  # no separator: a break every 16 characters
    assert out.replace(ZW, "") == page  # only zero-width spaces added...
    for kept in ("x_aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "very_long_attribute_value_with_underscores",
                 "pre_formatted_text_is_left_alone_entirely", "key_that_is_long_enough_to_split"):
        assert kept in out  # ...never in CSS, attributes, <pre> or <script>
    # entities stay whole and count as one character each (no break around every "&lt;")
    assert f"{'&amp;' * 16}{ZW}{'&amp;' * 4}<pre>" in out and "&am" + ZW not in out


def _overflowing_boxes(document) -> list[str]:
    """Boxes whose right edge passes the page's content area (a table too wide for the page)."""
    bad = []
    for n, page in enumerate(document.pages, 1):
        root = page._page_box
        right = root.margin_width() - root.margin_right
        for box in root.descendants():
            if type(box).__name__ in ("PageBox", "MarginBox") or box.position_x is None:
                continue
            if box.position_x + box.margin_width() > right + 1:
                bad.append(f"page {n}: {type(box).__name__} {box.position_x + box.margin_width() - right:.0f}px over")
    return bad


@needs_weasyprint
def test_long_identifiers_wrap_inside_the_page(data, monkeypatch):
    # CUDA kernel names and oneDNN descriptors are single tokens wider than a column; without break points a
    # table of them runs past the page edge (shown by the flip below), with them it fits.
    import weasyprint

    from reportgen.render import pdf
    d = json.loads(dumps(data))
    name = "sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_warpgroupsize1x1x1_execute_segment_k_off"
    d["cases"][0]["tables"] = [{"title": "kernels", "columns": ["a", "b", "c", "d"], "rows": [[name] * 4], "note": ""}]

    def layout():  # render_html puts the break points in already (<wbr>, the same soft_breaks), print_html too
        return weasyprint.HTML(string=pdf.print_html(render_html(d), margin_label="t")).render()
    assert _overflowing_boxes(layout()) == []
    monkeypatch.setattr(pdf, "soft_breaks", lambda page, joiner="": page)
    assert _overflowing_boxes(layout()) != []


def test_css_string_cannot_be_ended_by_data():
    from reportgen.render.pdf import css_string
    s = css_string('run"; } body { display: none } \\ "')
    assert s.startswith('"') and s.endswith('"') and '"' not in s[1:-1] and "}" not in s and "\\\\" not in s


# ------------------------------------------------------------------------------------------------ CLI

@needs_weasyprint
def test_render_cli_writes_each_format_and_refuses_to_overwrite(tmp_path, pdf_bytes, data):
    out = tmp_path / "o"
    args = ["render", str(FIXTURE), "--format", "html,md,pdf", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "report.pdf").read_bytes() == pdf_bytes  # same input, same bytes
    assert (out / "report.md").read_text(encoding="utf-8") == render_markdown(data)
    assert (out / "report.html").read_text(encoding="utf-8") == render_html(data)
    again = CliRunner().invoke(main, ["render", str(FIXTURE), "--format", "md", "--out", str(out)])
    assert again.exit_code == 2 and "report.md: already exists" in again.output
    forced = CliRunner().invoke(main, ["render", str(out / "report.html"), "--format", "md", "--force"])
    assert forced.exit_code == 0 and (out / "report.md").read_text(encoding="utf-8") == render_markdown(data)


TINY = """
name: tiny-formats
cases:
  - name: linear_vs_conv1d
    devices: [cpu]
    params: {batch: 2, length: 16, growth_depths: [1, 2], growth_in_features: [8, 16], growth_rows: 16}
    timing: {rounds: 3, min_sample_s: 0.001}
"""


def test_run_with_format_writes_reports_and_rejects_bad_format(tmp_path):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY)
    bad = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--format", "html,docx"])
    assert bad.exit_code == 2 and "--format" in bad.output and not any(tmp_path.glob("*/results.json"))
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--run-id", "r",
                                       "--format", "md,html"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "r"
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "report.md", "results.json"]
    assert (run_dir / "report.md").read_text(encoding="utf-8") == render_markdown(load_input(run_dir / "results.json"))


def test_an_overflow_is_shown_beside_numbers_that_cover_only_the_finite_values(data):
    # float16 logits overflow: the comparison is out of bound on its non-finite values while max |Δ| and bitwise
    # equality, computed over the finite rest, read 0 and 100 %; the report must say so, not contradict itself.
    import copy

    import torch

    from reportgen.measure.numerics import compare
    big = torch.tensor([1.0, 7.0e4, 2.0], dtype=torch.float64)
    c = compare(big.half(), big, 1e-3, name="logits", actual_label="Linear", expected_label="float64 reference")
    assert c.verdict == "out of bound" and c.nonfinite_mismatch == 1 and c.max_abs == 0
    run = copy.deepcopy(data)
    run["cases"][0]["comparisons"] = [c.to_dict()]
    assert "1 of 3 values non-finite on one side only" in render_markdown(run)
    assert "1 of 3 values non-finite on one side only" in render_html(run)
    run["cases"][0]["comparisons"][0]["nonfinite_mismatch"] = 0
    assert "non-finite" not in render_markdown(run) and "non-finite on one side" not in render_html(run)
    # a vacuous bound (n·u >= 1, e.g. a bfloat16 reduction over 32768 terms) makes any finite difference "within"
    run["cases"][0]["comparisons"][0].update(verdict="within rounding", max_normalised=None)
    assert "the bound is vacuous (n·u ≥ 1)" in render_markdown(run) and "the bound is vacuous" in render_html(run)


def test_markdown_of_a_run_without_results_says_so(data):
    # interrupted before the first case finished: no empty table, no empty "Key numbers" heading
    import copy
    run = copy.deepcopy(data)
    run.update(cases=[], claims=[], status="interrupted")
    md = render_markdown(run)
    assert "No results (run status: interrupted)." in md and "### Key numbers" not in md and "| result |" not in md
    assert "### Key numbers" in render_markdown(data)

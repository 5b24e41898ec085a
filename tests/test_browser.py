"""report.html and compare.html opened in headless Chromium as a reader would; PDF pages turned into PNGs.

Chromium checks: the page loads with no console message at all (the pages contain no script, so any message is
a problem: a blocked resource, a parse error), and every plot is really drawn: a laid-out SVG of sensible size
with drawn paths. The second check runs a probe script in a *copy* of the page (the real pages stay script-free)
and reads its findings back from Chromium's --dump-dom output.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reportgen.render import compare as cmp
from reportgen.render.files import load_input
from reportgen.render.html import render_html

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)")

_CAPTURE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)));
const __err = console.error.bind(console);
console.error = (...a) => { window.__errors.push(a.join(' ')); __err(...a); };
</script>"""
_MEASURE = """<script>
const svgs = Array.from(document.querySelectorAll('figure svg')).map(s => {
  const r = s.getBoundingClientRect();
  return {w: r.width, h: r.height, paths: s.querySelectorAll('path, line, polyline, use').length,
          texts: s.querySelectorAll('text').length};
});
// Outermost elements sticking out of the window (their parent fits): what makes the page scroll sideways. Content
// of an element that scrolls sideways by itself (a wide table on a narrow window) does not move the page.
const inScroller = e => { for (let a = e.parentElement; a; a = a.parentElement) {
  if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return true; } return false; };
const wide = Array.from(document.querySelectorAll('body *')).filter(e =>
  e.getBoundingClientRect().right > window.innerWidth + 1 && !inScroller(e) &&
  e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1).map(e => e.tagName + '.' + e.className);
const pageWidth = document.documentElement.scrollWidth;
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({errors: window.__errors, svgs: svgs, wide: wide, pageWidth: pageWidth,
                                  innerWidth: window.innerWidth});
document.body.appendChild(out);
</script>"""


def _chromium(url: str, tmp: Path, *extra: str, width: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--window-size={width},900", *extra, url],
        capture_output=True, text=True, timeout=120, check=False)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    data = load_input(FIXTURE)
    for c in data["cases"][0]["comparisons"]:  # the widest numbers a real run prints (fc_vs_conv2d_1x1, default)
        c.update(masked=11776, numel=20480, cosine=0.9999999999997581, max_rel=2.636876147748948e-06)
    b = json.loads(json.dumps(data))
    for t in b["cases"][0]["timings"]:
        t["samples_s"] = [3 * s for s in t["samples_s"]]
    report = tmp / "report.html"
    report.write_text(render_html(data), encoding="utf-8")
    compare = tmp / "compare.html"
    compare.write_text(cmp.render_compare_html(cmp.compare_runs([data, b], ["a", "b"])), encoding="utf-8")
    return tmp, {"report": (report, sum(len(c["plots"]) for c in data["cases"])), "compare": (compare, 1)}


@pytest.mark.parametrize("name", ["report", "compare"])
def test_page_loads_without_console_messages(pages, name):
    tmp, files = pages
    page, _ = files[name]
    run = _chromium(page.as_uri(), tmp, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "<h1>" in run.stdout  # the DOM came back
    assert _console_lines(run.stderr) == []


# a wide window, a laptop with a side panel (1000, 920), a phone-ish one
@pytest.mark.parametrize("width", [1200, 1000, 920, 700])
@pytest.mark.parametrize("name", ["report", "compare"])
def test_plots_are_drawn_and_page_does_not_overflow(pages, name, width):
    tmp, files = pages
    page, n_plots = files[name]
    probe = tmp / f"{name}-{width}-probe.html"
    html = page.read_text(encoding="utf-8")
    probe.write_text(html.replace("<head>", "<head>" + _CAPTURE, 1).replace("</body>", _MEASURE + "</body>", 1),
                     encoding="utf-8")
    run = _chromium(probe.as_uri(), tmp, "--dump-dom", width=width)
    m = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.DOTALL)
    assert m, run.stderr[-2000:]
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                       .replace("&gt;", ">"))
    assert found["errors"] == [] and _console_lines(run.stderr) == []
    assert len(found["svgs"]) == n_plots >= 1
    for svg in found["svgs"]:
        assert svg["w"] > 200 and svg["h"] > 100 and svg["paths"] >= 5 and svg["texts"] >= 2, svg
    assert found["wide"] == []  # nothing wider than the window: no sideways scrolling
    assert found["pageWidth"] <= found["innerWidth"], found


def test_screenshot_is_not_blank(pages):
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed: cannot inspect the screenshot")
    tmp, files = pages
    png = tmp / "compare.png"
    run = _chromium(files["compare"][0].as_uri(), tmp, f"--screenshot={png}", "--hide-scrollbars")
    assert png.exists(), run.stderr[-2000:]
    img = pil.open(png).convert("L")
    dark = sum(img.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 0.005 * img.width * img.height  # text and plot lines, not an empty page


def test_pdf_pages_turn_into_pngs(pages):
    if not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils (pdftoppm) not installed")
    try:
        from reportgen.render.pdf import render_pdf
        pdf = render_pdf(load_input(FIXTURE))
    except Exception as exc:  # UsageError when WeasyPrint is missing
        pytest.skip(f"no PDF output here: {exc}")
    tmp, _ = pages
    (tmp / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(tmp / "r.pdf"), str(tmp / "page")], check=True)
    pngs = sorted(tmp.glob("page-*.png"))
    assert len(pngs) >= 2 and all(p.stat().st_size > 2000 for p in pngs)
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed: cannot inspect the pages")
    for png in pngs:
        # Nothing may be drawn in the right page margin (13 mm of 210 mm; the running header and page number
        # live in the top and bottom margins, left out here): a table wider than the page would be.
        img = pil.open(png).convert("L")
        margin_x, margin_y = round(img.width * 13 / 210), round(img.height * 16 / 297)
        strip = img.crop((img.width - margin_x + 2, margin_y + 2, img.width - 1, img.height - margin_y - 2))
        assert sum(strip.histogram()[:200]) == 0, f"{png.name}: something runs into the right margin"


_READER = """<script>
// Pieces of text (between spaces and <wbr> break points) that the layout split over two lines: a word broken
// mid-letter. Cells whose content sticks out of them. How much of its row each case's first plots take.
const broken = [], overflowing = [];
for (const td of document.querySelectorAll('td')) {
  if (td.scrollWidth > td.clientWidth + 1) overflowing.push(td.textContent.slice(0, 60));
  const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const re = /[^\\s\/-]+[\/-]*|[\/-]+/g;  // a line may end after a hyphen or slash: separators too
    for (let m = re.exec(node.data); m; m = re.exec(node.data)) {
      const r = document.createRange();
      r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
      const tops = new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
}
const plots = Array.from(document.querySelectorAll('.plots')).map(g => {
  const figs = Array.from(g.querySelectorAll('figure')).map(f => f.getBoundingClientRect());
  const top = figs[0].top;
  const row = figs.filter(f => Math.abs(f.top - top) < 2);
  return {n: figs.length, perRow: row.length,
          rowShare: (Math.max(...row.map(f => f.right)) - Math.min(...row.map(f => f.left))) /
                    g.getBoundingClientRect().width};
});
const out = document.createElement('pre');
out.id = 'reader';
out.textContent = JSON.stringify({broken: broken, overflowing: overflowing, plots: plots});
document.body.appendChild(out);
</script>"""


def _claims_of_the_default_suite() -> list[dict]:
    """The default suite's claims as a run shows them (measured: in the table), with long result ids in the
    reason and fact names of the real length in the evidence."""
    from reportgen.suite import load_suite
    out = []
    for spec in load_suite("default").cases:
        for claim in spec.claims:
            rid = f"{spec.name}/cpu/float32"
            out.append({"id": claim.id, "case": spec.name, "text": claim.text, "source": claim.source,
                        "verdict": "holds", "reason": f"holds on {rid}; not applicable to {spec.name}/cpu/bfloat16",
                        "anchor": rid, "rule": claim.rule,
                        "evidence": [{"result_id": rid, "fact": "grad.weight.linear_vs_conv1d.bitwise_equal_fraction",
                                      "value": 0.332, "op": "<", "threshold": 1.0, "outcome": "true",
                                      "noisy": False}]})
    return out


@pytest.mark.parametrize("width", [1280, 800])
def test_words_break_only_at_separators_and_plots_use_the_width(tmp_path, width):
    data = load_input(FIXTURE)
    data["claims"] = _claims_of_the_default_suite()
    page = tmp_path / "report.html"
    page.write_text(render_html(data).replace("</body>", _READER + "</body>", 1), encoding="utf-8")
    run = _chromium(page.as_uri(), tmp_path, "--dump-dom", width=width)
    m = re.search(r'<pre id="reader">(.*?)</pre>', run.stdout, re.DOTALL)
    assert m, run.stderr[-2000:]
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                       .replace("&gt;", ">"))
    # was: "conv1d_semantic|s", "convolutio|n" (overflow-wrap: anywhere in every cell)
    assert found["broken"] == []
    assert found["overflowing"] == []  # and no word sticks out of its cell instead
    multi = [p for p in found["plots"] if p["n"] >= 2]
    assert multi, found["plots"]
    for p in multi:
        # was: one 461 px plot per row, half of a 1280 px window
        assert p["perRow"] == (2 if width >= 1280 else 1) and p["rowShare"] > 0.95, p

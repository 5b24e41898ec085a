"""Render times of one results.json (or report.html) in every output format, and the size of each output.

    python bench/render_times.py out/<run-id>/results.json [--repeat 3] [--page-size A4] [--busy N]

Prints, per format, the best and median wall time over ``--repeat`` renders (the first render of a process pays
for imports and font loading, so it is shown apart as "first"), the output size, the PDF page count, and whether
repeated renders were byte-identical. ``--busy N`` keeps N busy-loop processes running meanwhile, to see the times
on a machine whose cores are taken by others (the shared CI/dev machines this tool runs on).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reportgen.render.files import load_input  # noqa: E402
from reportgen.render.html import render_html  # noqa: E402
from reportgen.render.markdown import render_markdown  # noqa: E402


def _pdf(page_size: str) -> Callable[[dict[str, Any]], bytes]:
    from reportgen.render.pdf import render_pdf
    return lambda data: render_pdf(data, page_size=page_size)


def _pdf_layout_only(page_size: str, data: dict[str, Any]) -> Callable[[dict[str, Any]], bytes]:
    # What `--format html,pdf` pays on top of the HTML: the HTML is rendered once and shared.
    from reportgen.render.pdf import render_pdf
    html = render_html(data)
    return lambda d: render_pdf(d, page_size=page_size, html=html)


def _pages(pdf: bytes) -> str:
    # Object streams are compressed, so count with poppler's pdfinfo when it is installed.
    if not shutil.which("pdfinfo"):
        return "?"
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=False).stdout.decode()
    m = re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE)
    return m.group(1) if m else "?"


def bench(fn: Callable[[dict[str, Any]], Any], data: dict[str, Any], repeat: int) -> dict[str, Any]:
    times, digests, out = [], set(), None
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        out = fn(data)
        times.append(time.perf_counter() - t0)
        raw = out.encode("utf-8") if isinstance(out, str) else out
        digests.add(hashlib.sha256(raw).hexdigest())
    rest = times[1:] or times
    return {"first": times[0], "best": min(rest), "median": statistics.median(rest), "output": out,
            "identical": len(digests) == 1}


@contextlib.contextmanager
def _busy(n: int) -> Any:
    """``n`` child processes spinning on a core each for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--page-size", default="A4", choices=["A4", "Letter"])
    ap.add_argument("--busy", type=int, default=0, help="busy-loop processes competing for the cores meanwhile")
    args = ap.parse_args()
    data = load_input(args.input)
    print(f"{args.input}: {len(data.get('cases', []))} results, {len(data.get('claims') or [])} claims")
    print("pdf = results -> PDF (HTML rendered inside); pdf* = PDF from an HTML already rendered "
          "(run/render --format html,pdf)")
    if args.busy:
        print(f"with {args.busy} busy-loop process(es) competing for {os.cpu_count()} cores")
    print(f"{'format':<6} {'first s':>8} {'best s':>8} {'median s':>9} {'size':>10}  details")
    with _busy(args.busy):
        _table(data, args)


def _table(data: dict[str, Any], args: argparse.Namespace) -> None:
    for name, fn in (("html", render_html), ("md", render_markdown), ("pdf", _pdf(args.page_size)),
                     ("pdf*", _pdf_layout_only(args.page_size, data))):
        r = bench(fn, data, args.repeat)
        out = r["output"]
        size = len(out) if isinstance(out, bytes) else len(out.encode("utf-8"))
        details = [f"byte-identical x{args.repeat + 1}: {'yes' if r['identical'] else 'NO'}"]
        if name.startswith("pdf"):
            details.insert(0, f"{_pages(out)} pages ({args.page_size})")
        if name == "md":
            details.insert(0, f"{len(out)} characters")
        print(f"{name:<6} {r['first']:8.2f} {r['best']:8.2f} {r['median']:9.2f} {size:>10}  {', '.join(details)}")


if __name__ == "__main__":
    main()

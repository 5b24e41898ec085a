"""Time `reportgen compare` on fleets of 16, 64 and 256 archives; print seconds and the size of compare.html/.md.

    python bench/compare_fleet.py [--sizes 16,64,256] [--repeat 3] [--base RESULTS.json --outlier RESULTS.json]

The archives are real: by default the tiny fleet suite (tests/fixtures/fleet_suite.yaml) is run once with two
threads (the base, copied to every node) and once with one thread (the outlier, every 16th node), which differ in
bits for two of its cases on a multi-core CPU. Each measurement is the wall time of one `reportgen compare DIR
--format html,md` process (loading, the fleet model, rendering, writing), sizes interleaved within each repeat
so that drifting machine load spreads over all of them; every raw time is printed with the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_suite(tmp: Path, threads: int) -> Path:
    import yaml

    suite = yaml.safe_load((ROOT / "tests" / "fixtures" / "fleet_suite.yaml").read_text())
    suite["defaults"]["settings"] = {"num_threads": threads}
    path = tmp / f"suite{threads}.yaml"
    path.write_text(yaml.safe_dump(suite))
    subprocess.run([sys.executable, "-m", "reportgen", "run", "--suite", str(path), "--out", str(tmp / "runs"),
                    "--run-id", f"t{threads}", "--format", "none"], check=True, capture_output=True, timeout=600)
    return tmp / "runs" / f"t{threads}" / "results.json"


def _fleet(tmp: Path, n: int, base: dict, outlier: dict) -> Path:
    d = tmp / f"fleet{n}"
    for i in range(n):
        run = dict(outlier if i % 16 == 5 else base, run_id=f"node{i:03d}")
        p = d / f"node{i:03d}" / "results.json"
        p.parent.mkdir(parents=True)
        p.write_text(json.dumps(run))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16,64,256")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--base", type=Path, help="results.json copied to every node (default: run the tiny suite)")
    ap.add_argument("--outlier", type=Path, help="results.json of every 16th node")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        base_p = args.base or _run_suite(tmp, 2)
        out_p = args.outlier or _run_suite(tmp, 1)
        base, outlier = json.loads(base_p.read_text()), json.loads(out_p.read_text())
        print(f"archive: {base_p.stat().st_size / 1e3:.0f} kB each ({len(base['cases'])} results)")
        fleets = {n: _fleet(tmp, n, base, outlier) for n in sizes}
        times: dict[int, list[float]] = {n: [] for n in sizes}
        sizes_out: dict[int, tuple[int, int, str]] = {}
        for r in range(args.repeat):
            for n in sizes:  # interleaved: each repeat visits every size once
                out = tmp / f"out{n}-{r}"
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "reportgen", "compare", str(fleets[n]), "--out", str(out),
                                       "--format", "html,md"], capture_output=True, text=True, timeout=1200)
                times[n].append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    sys.exit(f"compare failed on {n} archives: {proc.stderr[-2000:]}")
                sizes_out[n] = ((out / "compare.html").stat().st_size, (out / "compare.md").stat().st_size,
                                proc.stdout.splitlines()[0])
        print(f"{'archives':>8}  {'median s':>8}  {'raw s':<24}  {'html kB':>8}  {'md chars':>8}  first line")
        for n in sizes:
            html, md, first = sizes_out[n]
            raw = ", ".join(f"{x:.2f}" for x in times[n])
            print(f"{n:>8}  {statistics.median(times[n]):>8.2f}  {raw:<24}  {html / 1e3:>8.0f}  {md:>8}  {first}")


if __name__ == "__main__":
    main()

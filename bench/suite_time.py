"""Wall time of whole suites as a user runs them (`reportgen run --suite NAME`), plus per-case times.

Usage: python bench/suite_time.py [quick default ...]   (writes runs under a temporary directory)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    suites = sys.argv[1:] or ["quick"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in suites:
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "reportgen", "run", "--suite", name, "--out", tmp,
                                   "--run-id", name], capture_output=True, text=True, timeout=1800)
            wall = time.perf_counter() - t
            print(f"suite {name}: {wall:.1f} s wall (exit {proc.returncode})")
            data = json.loads((Path(tmp) / name / "results.json").read_text())
            for c in data["cases"]:
                print(f"  {c['id']:<48} {c['status']:<8} {c['elapsed_s'] or 0:7.1f} s")


if __name__ == "__main__":
    main()

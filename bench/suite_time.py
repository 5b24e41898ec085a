"""Wall time of whole suites as a user runs them (`reportgen run --suite NAME`), plus per-case times.

Usage: python bench/suite_time.py [--robustness N [--budget-s S]] [quick default ...]
(writes runs under a temporary directory). --robustness runs a copy of each suite with
defaults.robustness = {seeds: N, budget_s: S} and prints, per claim, how many seeds ran and whether it is fragile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _with_robustness(name: str, seeds: int, budget_s: float, tmp: str) -> str:
    import yaml

    from reportgen.suite import resolve

    data = yaml.safe_load(resolve(name).read_text(encoding="utf-8"))
    data.setdefault("defaults", {})["robustness"] = {"seeds": seeds, "budget_s": budget_s}
    path = Path(tmp) / f"{name}-robust.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("suites", nargs="*", default=["quick"])
    ap.add_argument("--robustness", type=int, default=0, help="seeds per case (0: the suite as it is)")
    ap.add_argument("--budget-s", type=float, default=60.0, help="robustness time budget per job")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.suites:
            suite = _with_robustness(name, a.robustness, a.budget_s, tmp) if a.robustness else name
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "reportgen", "run", "--suite", suite, "--out", tmp,
                                   "--run-id", name], capture_output=True, text=True, timeout=3600)
            wall = time.perf_counter() - t
            print(f"suite {name}: {wall:.1f} s wall (exit {proc.returncode})")
            data = json.loads((Path(tmp) / name / "results.json").read_text())
            for c in data["cases"]:
                print(f"  {c['id']:<48} {c['status']:<8} {c['elapsed_s'] or 0:7.1f} s")
                for note in c.get("notes", []):
                    if note.startswith("Robustness:"):
                        print(f"    {note}")
            for cl in data.get("claims", []):
                rob = cl.get("robustness")
                if rob:
                    flag = "FRAGILE" if cl.get("fragile") else "stable"
                    print(f"  claim {cl['id']:<44} {cl['verdict']:<20} {flag:<8} {rob['seeds']} seeds "
                          f"{json.dumps(rob['verdicts'])}")


if __name__ == "__main__":
    main()

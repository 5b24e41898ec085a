"""Env capture cost: reportgen's collect_environment vs torch.utils.collect_env, in-process and as commands.

Usage: python bench/env_capture.py [--reps N]
Prints medians (interleaved repetitions, so machine load hits both sides alike) and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    import torch  # noqa: F401  (both sides need torch imported; not part of either capture)
    from torch.utils import collect_env

    from reportgen.measure.environment import collect_environment

    ours, theirs = [], []
    for _ in range(args.reps):
        ours += _time(collect_environment, 1)
        theirs += _time(collect_env.get_pretty_env_info, 1)
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"in-process  reportgen collect_environment(): median {mo * 1e3:8.1f} ms  (n={len(ours)})")
    print(f"in-process  torch collect_env.get_pretty_env_info(): median {mt * 1e3:8.1f} ms  (n={len(theirs)})")
    print(f"in-process  ratio collect_env / reportgen: {mt / mo:.0f}x")

    cmd_ours = [sys.executable, "-m", "reportgen", "env", "--json"]
    cmd_theirs = [sys.executable, "-m", "torch.utils.collect_env"]
    co, ct = [], []
    for _ in range(args.reps):
        co += _time(lambda: subprocess.run(cmd_ours, capture_output=True, check=True, timeout=120), 1)
        ct += _time(lambda: subprocess.run(cmd_theirs, capture_output=True, check=True, timeout=120), 1)
    mco, mct = statistics.median(co), statistics.median(ct)
    print(f"command     reportgen env --json: median {mco:6.2f} s  (n={len(co)}, includes Python + torch import)")
    print(f"command     python -m torch.utils.collect_env: median {mct:6.2f} s  (n={len(ct)})")
    print(f"command     ratio: {mct / mco:.2f}x;  of which torch import alone: ", end="")
    imp = _time(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=120), 3)
    print(f"{statistics.median(imp):.2f} s")


if __name__ == "__main__":
    main()

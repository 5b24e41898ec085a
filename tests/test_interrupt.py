"""An interrupted run (Ctrl-C) leaves valid JSON of what finished, marked 'interrupted'."""

import json
import signal
import subprocess
import sys
import time

SUITE = """
name: interrupt
cases:
  - name: first
    kind: linear_vs_conv1d
    devices: [cpu]
    params: {batch: 2, length: 8, growth_depths: [1], growth_in_features: [8], growth_rows: 8}
    timing: {enabled: false}
  - name: long
    kind: linear_vs_conv1d
    devices: [cpu]
    params: {batch: 2, length: 8, growth_depths: [1], growth_in_features: [8], growth_rows: 8}
    timing: {rounds: 100000, min_sample_s: 0.001}
"""


def test_sigint_leaves_valid_partial_json(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "out" / "r" / "results.json"
    proc = subprocess.Popen([sys.executable, "-m", "reportgen", "run", "--suite", str(suite), "--out",
                             str(tmp_path / "out"), "--run-id", "r"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if results.exists() and len(json.loads(results.read_text())["cases"]) == 1:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("first case never finished")
        time.sleep(0.5)  # inside the long case's timing loop now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    data = json.loads(results.read_text())
    assert data["status"] == "interrupted"
    assert [c["case"] for c in data["cases"]] == ["first"]
    assert "Traceback" not in err
    # the user is told where the partial archive is, and gets the report of what finished
    assert f"kept in {results}" in err and (results.parent / "report.html").exists()

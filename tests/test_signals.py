"""Signals and a full disk, with real processes: SIGINT while still importing, SIGTERM mid-run, SIGKILL (then the
archive is read back as interrupted), Ctrl-C during a PDF render, and a file size limit at the results.json write."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"
TINY = "{batch: 2, length: 8, growth_depths: [1], growth_in_features: [8], growth_rows: 8}"
SUITE = f"""
name: signals
cases:
  - name: first
    kind: linear_vs_conv1d
    devices: [cpu]
    params: {TINY}
    timing: {{enabled: false}}
  - name: long
    kind: linear_vs_conv1d
    devices: [cpu]
    params: {TINY}
    timing: {{rounds: 100000, min_sample_s: 0.001}}
"""
TWO_QUICK = f"""
name: two
cases:
  - name: first
    kind: linear_vs_conv1d
    params: {TINY}
    timing: {{enabled: false}}
  - name: second
    kind: linear_vs_conv1d
    params: {TINY}
    timing: {{enabled: false}}
"""


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reportgen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(predicate, what: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _one_finished(results: Path) -> bool:
    try:
        return len(json.loads(results.read_text())["cases"]) == 1
    except (OSError, ValueError):
        return False


def _mid_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A run that has finished its first case and is inside the second (a long timing loop)."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "out" / "r" / "results.json"
    proc = _cli("run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--run-id", "r", "--format", "html,md")
    _wait_for(lambda: _one_finished(results), "the first case")
    time.sleep(0.5)
    return proc, results


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the import in progress")
def test_ctrl_c_while_still_importing_is_one_line_and_130(tmp_path):
    proc = _cli("run", "--suite", "quick", "--out", str(tmp_path / "out"))
    try:
        # torch's shared library is mapped while `import torch` runs: the command is past click, before any case
        _wait_for(lambda: "libtorch" in _maps(proc.pid), "torch being imported")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted!" not in err
    assert err.strip().splitlines()[-1].startswith(("reportgen: interrupted", "interrupted"))


def test_sigterm_mid_run_keeps_the_partial_archive_as_interrupted_and_exits_143(tmp_path):
    proc, results = _mid_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated (SIGTERM)" in err
    data = json.loads(results.read_text())
    assert data["status"] == "interrupted" and [c["case"] for c in data["cases"]] == ["first"]
    assert (results.parent / "report.html").exists() and (results.parent / "report.md").exists()


def test_sigkill_leaves_running_which_readers_show_as_interrupted(tmp_path):
    proc, results = _mid_run(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    data = json.loads(results.read_text())
    assert data["status"] == "running" and data["writer"]["pid"] == proc.pid  # what a crash leaves
    out = tmp_path / "rendered"
    r = subprocess.run([sys.executable, "-m", "reportgen", "render", str(results), "--out", str(out), "--format",
                        "html,md"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert "This run did not complete (interrupted)" in html
    assert "Status **interrupted**" in md
    r = subprocess.run([sys.executable, "-m", "reportgen", "compare", str(results), str(results), "--out",
                        str(tmp_path / "cmp"), "--format", "md"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "interrupted" in (tmp_path / "cmp" / "compare.md").read_text()


def test_running_archive_of_a_live_writer_stays_running(tmp_path):
    from reportgen.render.files import load_input
    from reportgen.results import dumps
    from reportgen.writer import writer_info

    data = json.loads(FIXTURE.read_text())
    data.update(status="running", schema_version=2, writer=writer_info("2026-01-01T00:00:00+00:00"))  # this pytest
    path = tmp_path / "results.json"
    path.write_text(dumps(data))
    assert load_input(path)["status"] == "running"
    data["writer"] = {**data["writer"], "host": "another-host"}  # elsewhere and a long time ago: gone
    path.write_text(dumps(data))
    loaded = load_input(path)
    assert loaded["status"] == "interrupted" and "another host" in loaded["writer"]["gone"]


def _weasyprint_ok() -> bool:
    try:
        import weasyprint  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _weasyprint_ok() or not Path("/proc/self/maps").exists(),
                    reason="needs WeasyPrint (the pdf extra) and /proc")
def test_ctrl_c_during_the_pdf_render_is_one_line_and_130(tmp_path):
    proc = _cli("render", str(FIXTURE), "--out", str(tmp_path), "--format", "pdf")
    try:
        _wait_for(lambda: "libpango" in _maps(proc.pid) or "libharfbuzz" in _maps(proc.pid), "WeasyPrint loading")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if proc.returncode == 0:
        pytest.skip("the PDF was finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted!" not in err and "reportgen: interrupted" in err
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob(".*.tmp"))


def _file_size_limit(limit: int):
    def apply() -> None:
        # Past the limit write() fails with EFBIG (instead of SIGXFSZ killing the process): a disk that is full
        # exactly at the results.json write, with no root or tmpfs needed.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_at_the_results_write_is_one_line_and_keeps_valid_json(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(TWO_QUICK)
    results = tmp_path / "out" / "r" / "results.json"
    # ~15 KB before any case, ~60 KB after one, ~100 KB after two: the third write fails.
    proc = subprocess.run([sys.executable, "-m", "reportgen", "run", "--suite", str(suite), "--out",
                           str(tmp_path / "out"), "--run-id", "r"], capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(80_000), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"reportgen: error: {results}: cannot write results: File too large"), last
    data = json.loads(results.read_text())  # the last complete write
    assert [c["case"] for c in data["cases"]] == ["first"]
    assert not list(results.parent.glob("*.tmp"))


def test_writer_gone_tells_dead_reused_and_rebooted_writers_from_live_ones():
    from reportgen.writer import writer_gone, writer_info

    me = writer_info("2026-01-01T00:00:00+00:00")
    assert writer_gone(me) is None  # this process: alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert "no longer running" in writer_gone({**me, "pid": child.pid, "pid_start": None})
    if me["pid_start"] is not None:  # a live pid that started at another time is another process
        assert "another process" in writer_gone({**me, "pid_start": me["pid_start"] + 1})
    if me["boot"] is not None:
        assert "booted" in writer_gone({**me, "boot": "0" * 16})
    recent = {**me, "host": "elsewhere", "updated": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
    assert writer_gone(recent) is None  # another host, written just now: cannot tell, so still running
    assert writer_gone(None) is None and writer_gone({"pid": "x"}) is None  # unknown writer: left as it is

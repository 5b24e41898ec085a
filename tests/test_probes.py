"""The probe protocol against fake frameworks: scripts run by this interpreter that answer, crash, hang or write
garbage. Every failure must come back as a ProbeResult with a clear reason, never as an exception."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from reportgen import probes
from reportgen.probes import (BAD_OUTPUT, CRASHED, IMPORT_ERROR, INTERPRETER_MISSING, NOT_CONFIGURED, OK, TIMEOUT,
                              PROBES_DIR, run_probe)

PY = sys.executable


def fake(tmp_path: Path, body: str, name: str = "fake_probe.py") -> Path:
    """A probe script in tmp_path that can ``import _probe_io`` as the real ones do."""
    script = tmp_path / name
    head = (f"import sys, os, json, time\nsys.path.insert(0, {str(PROBES_DIR)!r})\n"
            "import numpy as np\nimport _probe_io\n")
    script.write_text(head + textwrap.dedent(body), encoding="utf-8")
    return script


def task_script(tmp_path: Path, task_body: str) -> Path:
    return fake(tmp_path, "def task(p, inputs):\n" + textwrap.indent(textwrap.dedent(task_body), "    ")
                + "\n_probe_io.run(task)\n")


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its new parent) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc").is_dir()  # /proc exists but has no entry: gone


# ------------------------------------------------------------------------------------------- answers


def test_round_trip_arrays_facts_versions(tmp_path):
    script = task_script(tmp_path, """
        return {"facts": {"fake.sum": float(inputs["x"].sum()), "fake.param": p["k"]},
                "outputs": {"doubled": inputs["x"] * 2}, "versions": {"fakefw": "0.1"}}
    """)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    res = run_probe("fake", PY, script, params={"k": 4}, inputs={"x": x}, expect_outputs=["doubled"], timeout_s=30)
    assert res.status == OK and res.ok and res.reason == "" and res.skip_text == ""
    np.testing.assert_array_equal(res.outputs["doubled"], x * 2)
    assert res.outputs["doubled"].dtype == np.float32
    assert res.facts == {"fake.sum": 15.0, "fake.param": 4}
    assert res.versions["fakefw"] == "0.1" and res.versions["numpy"] == np.__version__
    assert res.returncode == 0 and res.wall_s > 0
    assert res.summary()["status"] == OK  # JSON-able summary without arrays
    assert "outputs" not in res.summary()


def test_sub_experiment_errors_are_reported_not_fatal(tmp_path):
    script = task_script(tmp_path, """
        errors = {}
        _probe_io.attempt(errors, "broken", lambda: 1 / 0)
        return {"facts": {"fake.ok": True}, "errors": errors}
    """)
    res = run_probe("fake", PY, script, timeout_s=30)
    assert res.ok and res.facts == {"fake.ok": True}
    assert res.errors == {"broken": "ZeroDivisionError: division by zero"}


def test_missing_expected_output_unless_reported(tmp_path):
    script = task_script(tmp_path, 'return {"outputs": {"a": np.zeros(2)}, "errors": {"b": "ValueError: no"}}')
    res = run_probe("fake", PY, script, expect_outputs=["a", "b"], timeout_s=30)
    assert res.ok  # b is excused: the probe said why it is missing
    res = run_probe("fake", PY, script, expect_outputs=["a", "c"], timeout_s=30)
    assert res.status == BAD_OUTPUT and "outputs missing: c" in res.reason


def test_child_does_not_inherit_pythonpath(tmp_path, monkeypatch):
    # reportgen's own PYTHONPATH would put its numpy 2 in front of a MindSpore environment's numpy<2.
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    script = task_script(tmp_path, 'return {"facts": {"fake.pythonpath": os.environ.get("PYTHONPATH")}}')
    res = run_probe("fake", PY, script, timeout_s=30)
    assert res.ok and res.facts["fake.pythonpath"] is None


# ------------------------------------------------------------------------------------------- not available


def test_not_configured():
    for python in (None, ""):
        res = run_probe("mindspore", python, "mindspore_conv1d")
        assert res.status == NOT_CONFIGURED and res.skip_text == "skipped: not configured"


def test_interpreter_missing(tmp_path):
    res = run_probe("mindspore", str(tmp_path / "nope" / "bin" / "python"), "mindspore_conv1d")
    assert res.status == INTERPRETER_MISSING and "nope" in res.reason
    assert res.skip_text.startswith("skipped: interpreter missing: ")
    not_exec = tmp_path / "python"
    not_exec.write_text("")
    assert run_probe("x", str(not_exec), "mindspore_conv1d").status == INTERPRETER_MISSING
    assert run_probe("x", "no-such-python-anywhere-3.99", "mindspore_conv1d").status == INTERPRETER_MISSING


def test_import_error_reported_by_protocol(tmp_path):
    script = task_script(tmp_path, "import not_a_framework_xyz\nreturn {}")
    res = run_probe("fake", PY, script, timeout_s=30)
    assert res.status == IMPORT_ERROR
    assert res.reason == "ModuleNotFoundError: No module named 'not_a_framework_xyz'"
    assert res.skip_text == "skipped: import error: ModuleNotFoundError: No module named 'not_a_framework_xyz'"


def test_import_error_before_protocol(tmp_path):
    # e.g. numpy is not installed in the framework's environment: the script dies before it can answer.
    script = tmp_path / "early.py"
    script.write_text("import not_numpy_either_xyz\n")
    res = run_probe("fake", PY, script, timeout_s=30)
    assert res.status == IMPORT_ERROR and "not_numpy_either_xyz" in res.reason


def test_real_probe_script_without_its_framework():
    # The shipped MindSpore probe, run by reportgen's own interpreter (no MindSpore here): a clean import error.
    pytest.importorskip("numpy")
    try:
        import mindspore  # noqa: F401
        pytest.skip("mindspore is importable in this environment")
    except ImportError:
        pass
    res = run_probe("mindspore", PY, "mindspore_conv1d", params={}, timeout_s=60)
    assert res.status == IMPORT_ERROR and "mindspore" in res.reason


# ------------------------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("body, expect", [
    ("os.abort()\n", "killed by signal SIGABRT"),
    ("sys.stderr.write('fatal: out of cheese\\n'); sys.exit(7)\n", "exit code 7: fatal: out of cheese"),
    ("def task(p, i):\n    raise ValueError('bad shape (3,)')\n_probe_io.run(task)\n",
     "probe raised ValueError: bad shape (3,)"),
])
def test_crash(tmp_path, body, expect):
    res = run_probe("fake", PY, fake(tmp_path, body), timeout_s=30)
    assert res.status == CRASHED and res.reason.startswith(expect), res.reason


def test_segfault_is_a_crash_with_python_traceback(tmp_path):
    res = run_probe("fake", PY, fake(tmp_path, "import ctypes\nctypes.string_at(0)\n"), timeout_s=30)
    assert res.status == CRASHED and "SIGSEGV" in res.reason
    assert "Fatal Python error" in res.stderr_tail  # PYTHONFAULTHANDLER is set for the child


# ------------------------------------------------------------------------------------------- hang


def test_hang_times_out_and_kills_the_process_group(tmp_path):
    pids = tmp_path / "pids.txt"
    script = fake(tmp_path, f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(120)
    """)
    t0 = time.perf_counter()
    res = run_probe("fake", PY, script, timeout_s=2)
    elapsed = time.perf_counter() - t0
    assert res.status == TIMEOUT and "no answer within 2 s" in res.reason
    assert elapsed < 10
    assert res.returncode is not None and res.returncode < 0  # killed by a signal, and reaped
    probe_pid, grandchild_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5  # the grandchild is reaped by init, which may take a moment
    while alive(grandchild_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(probe_pid)
    assert not alive(grandchild_pid)


# ------------------------------------------------------------------------------------------- garbage


GARBAGE = {
    "no response": ("print('all good, honest')\n", "exited without writing response.json"),
    "not json": ("open(sys.argv[1] + '/response.json', 'w').write('{not json')\n", "is not JSON"),
    "json list": ("open(sys.argv[1] + '/response.json', 'w').write('[1, 2]')\n", "is a list, not an object"),
    "wrong protocol": ("json.dump({'protocol': 99, 'status': 'ok'}, open(sys.argv[1] + '/response.json', 'w'))\n",
                       "speaks protocol 99"),
    "bad npy": ("open(sys.argv[1] + '/out_y.npy', 'wb').write(b'garbage')\n"
                "json.dump({'protocol': 1, 'status': 'ok', 'outputs': {'y': 'out_y.npy'}},"
                " open(sys.argv[1] + '/response.json', 'w'))\n", "not a readable .npy file"),
    "path escape": ("json.dump({'protocol': 1, 'status': 'ok', 'outputs': {'y': '../../etc/passwd'}},"
                    " open(sys.argv[1] + '/response.json', 'w'))\n", "names a bad file"),
    "nested fact": ("json.dump({'protocol': 1, 'status': 'ok', 'facts': {'a': [1, 2]}},"
                    " open(sys.argv[1] + '/response.json', 'w'))\n", "fact 'a' is a list"),
    "facts not object": ("json.dump({'protocol': 1, 'status': 'ok', 'facts': 3},"
                         " open(sys.argv[1] + '/response.json', 'w'))\n", "key 'facts' is not an object"),
    "unknown status": ("json.dump({'protocol': 1, 'status': 'maybe'}, open(sys.argv[1] + '/response.json', 'w'))\n",
                       "response status 'maybe'"),
    "binary response": ("open(sys.argv[1] + '/response.json', 'wb').write(b'\\xff\\xfe\\x00')\n", "is not JSON"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_output(tmp_path, case):
    body, reason = GARBAGE[case]
    res = run_probe("fake", PY, fake(tmp_path, body), timeout_s=30)
    assert res.status == BAD_OUTPUT, (res.status, res.reason)
    assert reason in res.reason
    assert res.outputs == {} and res.facts == {}


# ------------------------------------------------------------------------------------------- probe scripts


ALLOWED_IMPORTS = {"__future__", "contextlib", "io", "inspect", "os", "sys", "time", "json", "re", "traceback", "typing", "numpy",
                   "_probe_io", "mindspore", "jax", "jaxlib"}


@pytest.mark.parametrize("name", ["_probe_io", "mindspore_conv1d", "jax_conv"])
def test_probe_scripts_import_only_numpy_and_their_framework(name):
    tree = ast.parse(probes.script_path(name).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    assert "torch" not in imported and "reportgen" not in imported and "scipy" not in imported

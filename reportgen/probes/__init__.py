"""Probes: run a small script under ANOTHER framework's Python interpreter and read back arrays and facts.

Why a child process: MindSpore needs ``numpy<2`` and JAX wants numpy 2, and neither belongs in reportgen's own
environment, so each framework lives in its own virtual environment and is reached only through its
interpreter. The child also isolates us from the framework: a crash, a hang or garbage output becomes a
:class:`ProbeResult` with a status and a one-line reason, never an exception in the run.

Protocol (child side in ``_probe_io.py``): a fresh temporary directory gets ``request.json`` and one ``.npy``
per input; ``PYTHON SCRIPT DIR`` runs with a timeout in its own process group (killed as a group on timeout, so
grandchildren die too); the child writes ``out_<name>.npy`` files and, last, ``response.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

PROTOCOL = 1
PROBES_DIR = Path(__file__).resolve().parent

OK = "ok"
NOT_CONFIGURED = "not configured"
INTERPRETER_MISSING = "interpreter missing"
IMPORT_ERROR = "import error"
CRASHED = "crashed"
TIMEOUT = "timeout"
BAD_OUTPUT = "bad output"
STATUSES = (OK, NOT_CONFIGURED, INTERPRETER_MISSING, IMPORT_ERROR, CRASHED, TIMEOUT, BAD_OUTPUT)

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# PYTHONPATH/PYTHONHOME of reportgen's environment would put its numpy 2 in front of the framework's numpy<2.
_DROP_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class ProbeResult:
    """What one probe run gave. ``status`` is one of STATUSES; anything but "ok" comes with a ``reason``."""

    framework: str
    status: str
    reason: str = ""
    python: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # sub-experiments that failed inside the probe
    returncode: int | None = None
    wall_s: float = 0.0  # child start to exit, interpreter start-up and framework import included
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def skip_text(self) -> str:
        """What a report cell shows instead of a value, e.g. "skipped: not configured"."""
        if self.ok:
            return ""
        return f"skipped: {self.status}" + (f": {self.reason}" if self.reason and self.status != NOT_CONFIGURED
                                             else "")

    def summary(self) -> dict[str, Any]:
        """JSON-able description without the arrays (for results.json)."""
        return {"framework": self.framework, "status": self.status, "reason": self.reason, "python": self.python,
                "versions": dict(self.versions), "returncode": self.returncode, "wall_s": round(self.wall_s, 3),
                "errors": dict(self.errors), "stderr_tail": self.stderr_tail}


def script_path(name: str) -> Path:
    """A probe script shipped in this package, by module name (``"mindspore_conv1d"``)."""
    return PROBES_DIR / f"{name}.py"


def _resolve_interpreter(python: str) -> str | None:
    if os.sep in python or (os.altsep and os.altsep in python):
        path = Path(python).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(python)


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write __pycache__ into an installed reportgen
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault in the framework leaves a Python traceback in stderr
    env.update(extra or {})
    return env


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-_STDERR_TAIL:]
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _write_request(workdir: Path, task: str, params: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> None:
    files = {}
    for name, array in inputs.items():
        if not _NAME.match(name):
            raise ValueError(f"probe input name {name!r} is not a plain name")
        files[name] = f"in_{name}.npy"
        np.save(workdir / files[name], np.ascontiguousarray(array), allow_pickle=False)
    request = {"protocol": PROTOCOL, "task": task, "params": dict(params), "inputs": files}
    (workdir / "request.json").write_text(json.dumps(request), encoding="utf-8")


def _read_response(workdir: Path, expect_outputs: Iterable[str]) -> tuple[dict, dict[str, np.ndarray]] | str:
    """The parsed response and its arrays, or a one-line reason why they are garbage."""
    path = workdir / "response.json"
    if not path.is_file():
        return "the probe exited without writing response.json"
    try:
        response = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return f"response.json is not JSON ({type(exc).__name__})"
    if not isinstance(response, dict):
        return f"response.json is a {type(response).__name__}, not an object"
    if response.get("protocol") != PROTOCOL:
        return f"response.json speaks protocol {response.get('protocol')!r}, expected {PROTOCOL}"
    for key, kind in (("facts", dict), ("versions", dict), ("outputs", dict), ("errors", dict)):
        if not isinstance(response.setdefault(key, {}), kind):
            return f"response.json key {key!r} is not an object"
    for key, value in response["facts"].items():
        if not (isinstance(value, (str, int, float, bool)) or value is None):
            return f"fact {key!r} is a {type(value).__name__}, not a number, string, bool or null"
    arrays = {}
    for name, fname in response["outputs"].items():
        if not (isinstance(fname, str) and _NAME.match(fname)):
            return f"output {name!r} names a bad file {fname!r}"
        try:
            arrays[name] = np.load(workdir / fname, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            return f"output {name!r} ({fname}) is not a readable .npy file ({type(exc).__name__})"
    missing = [n for n in expect_outputs if n not in arrays and n not in response["errors"]]
    if missing and response.get("status") == OK:
        return f"outputs missing: {', '.join(sorted(missing))}"
    return response, arrays


def run_probe(framework: str, python: str | None, script: str | os.PathLike, *, task: str = "",
              params: Mapping[str, Any] | None = None, inputs: Mapping[str, np.ndarray] | None = None,
              timeout_s: float = 120.0, expect_outputs: Iterable[str] = (),
              env: Mapping[str, str] | None = None) -> ProbeResult:
    """Run ``script`` (a path, or the name of a script in this package) with interpreter ``python``.

    Never raises for anything the child does: not configured (``python`` empty/None), interpreter missing,
    import error, crash (non-zero exit, signal, probe-reported exception), timeout (the whole process group
    is killed) and garbage output each give a ProbeResult with that status and a one-line reason.
    ``expect_outputs`` are output names that must come back unless the probe reported an error for them.
    """
    if not python:
        return ProbeResult(framework, NOT_CONFIGURED, "no interpreter configured")
    exe = _resolve_interpreter(python)
    if exe is None:
        return ProbeResult(framework, INTERPRETER_MISSING, f"{python} is not an executable file", python=python)
    path = Path(script) if os.sep in str(script) or str(script).endswith(".py") else script_path(str(script))
    with tempfile.TemporaryDirectory(prefix=f"reportgen-probe-{framework}-") as tmp:
        workdir = Path(tmp)
        _write_request(workdir, task, params or {}, inputs or {})
        out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        started = time.perf_counter()
        # Output goes to files, not pipes: a grandchild that outlives the kill cannot block us on a pipe.
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([exe, str(path), str(workdir)], stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, cwd=workdir, env=_child_env(env), start_new_session=True)
            except OSError as exc:
                return ProbeResult(framework, INTERPRETER_MISSING, f"cannot start {python}: {exc.strerror or exc}",
                                   python=python)
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return ProbeResult(framework, TIMEOUT, f"no answer within {timeout_s:g} s; process group killed",
                                   python=python, returncode=proc.returncode,
                                   wall_s=time.perf_counter() - started, stderr_tail=_tail(err_path))
        wall = time.perf_counter() - started
        return _judge(framework, python, rc, wall, _tail(err_path), _read_response(workdir, expect_outputs))


def _judge(framework: str, python: str, rc: int, wall: float, stderr: str,
           parsed: tuple[dict, dict[str, np.ndarray]] | str) -> ProbeResult:
    common = {"python": python, "returncode": rc, "wall_s": wall, "stderr_tail": stderr}
    if isinstance(parsed, str):  # no usable response
        last = _last_line(stderr)
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
            return ProbeResult(framework, CRASHED, f"killed by signal {name}" + (f": {last}" if last else ""),
                               **common)
        if rc != 0 and re.match(r"^(ModuleNotFoundError|ImportError)\b", last):
            return ProbeResult(framework, IMPORT_ERROR, last, **common)  # e.g. numpy missing in that env
        if rc != 0:
            return ProbeResult(framework, CRASHED, f"exit code {rc}" + (f": {last}" if last else ""), **common)
        return ProbeResult(framework, BAD_OUTPUT, parsed, **common)
    response, arrays = parsed
    status = response.get("status")
    versions = {str(k): str(v) for k, v in response["versions"].items()}
    errors = {str(k): str(v) for k, v in response["errors"].items()}
    if status == IMPORT_ERROR:
        return ProbeResult(framework, IMPORT_ERROR, str(response.get("error", ""))[:300], versions=versions,
                           **common)
    if status == "error":
        return ProbeResult(framework, CRASHED, f"probe raised {str(response.get('error', ''))[:300]}",
                           versions=versions, **common)
    if status != OK or rc != 0:
        return ProbeResult(framework, BAD_OUTPUT, f"response status {status!r} with exit code {rc}", **common)
    return ProbeResult(framework, OK, "", facts=response["facts"], versions=versions, outputs=arrays,
                       errors=errors, **common)

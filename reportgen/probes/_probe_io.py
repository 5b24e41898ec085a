"""Child side of the probe protocol. Runs inside ANOTHER framework's interpreter: stdlib + numpy only.

A probe script (e.g. ``mindspore_conv1d.py``) is started as ``python SCRIPT WORKDIR``. Python puts the script's
own directory first on ``sys.path``, so the script can ``import _probe_io`` without reportgen being installed in
that environment (it never is: MindSpore needs numpy<2, reportgen's own environment has torch and numpy 2).

WORKDIR holds ``request.json`` ({"protocol": 1, "task", "params", "inputs": {name: file}}) and the input
``.npy`` files. The script answers with ``response.json`` ({"protocol": 1, "status": "ok" | "import error" |
"error", "facts", "versions", "outputs": {name: file}, "errors", "error"}) plus one ``out_<name>.npy`` per
output. The response is written last and atomically: a child that dies half-way leaves no response, which the
parent reports as a crash instead of reading half a file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np

PROTOCOL = 1
IMPORT_ERROR_EXIT = 3
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

Task = Callable[[dict, dict], dict]


def _write_response(workdir: str, response: dict) -> None:
    tmp = os.path.join(workdir, "response.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(response, fh)
    os.replace(tmp, os.path.join(workdir, "response.json"))


def _versions() -> dict:
    return {"python": sys.version.split()[0], "numpy": np.__version__}


def run(task: Task) -> None:
    """Read the request, call ``task(params, inputs)``, write outputs and the response, exit.

    ``task`` returns {"facts": {...}, "outputs": {name: ndarray}, "versions": {...}, "errors": {...}}; every
    key optional. An ImportError (the framework is not installed, or was built against another numpy) is
    reported as status "import error"; any other exception as "error" with its last traceback line.
    """
    workdir = sys.argv[1]
    with open(os.path.join(workdir, "request.json"), encoding="utf-8") as fh:
        request = json.load(fh)
    inputs = {name: np.load(os.path.join(workdir, fname), allow_pickle=False)
              for name, fname in request.get("inputs", {}).items()}
    response: dict[str, Any] = {"protocol": PROTOCOL, "versions": _versions()}
    started = time.perf_counter()
    try:
        result = task(dict(request.get("params", {})), inputs)
    except ImportError as exc:
        response.update(status="import error", error=f"{type(exc).__name__}: {exc}")
        _write_response(workdir, response)
        sys.exit(IMPORT_ERROR_EXIT)
    except Exception as exc:  # the parent turns this into a structured "crashed" result
        response.update(status="error", error=f"{type(exc).__name__}: {exc}",
                        traceback=traceback.format_exc()[-4000:])
        _write_response(workdir, response)
        sys.exit(1)
    outputs = {}
    for name, array in result.get("outputs", {}).items():
        if not _NAME.match(name):
            raise ValueError(f"bad output name {name!r}")
        fname = f"out_{name}.npy"
        np.save(os.path.join(workdir, fname), np.asarray(array), allow_pickle=False)
        outputs[name] = fname
    response["versions"].update(result.get("versions", {}))
    response.update(status="ok", facts=result.get("facts", {}), outputs=outputs,
                    errors=result.get("errors", {}), task_s=time.perf_counter() - started)
    _write_response(workdir, response)


def attempt(errors: dict, key: str, fn: Callable[[], Any]) -> Any:
    """Run one sub-experiment; on failure record ``errors[key]`` and return None (the others still run)."""
    try:
        return fn()
    except Exception as exc:
        errors[key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return None

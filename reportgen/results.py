"""Run and case results: dataclasses <-> versioned JSON (the archive format).

History of ``SCHEMA_VERSION`` (bump it, add a line here and a migration in ``_MIGRATIONS``, and keep a sample
file of the old version under tests/fixtures/):

1 (reportgen 0.1.0): first version.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from reportgen.errors import UsageError

SCHEMA_VERSION = 1

OK, ERROR, SKIPPED = "ok", "error", "skipped"

#: old version -> function upgrading a dict of that version to the next one.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass
class CaseResult:
    """One case run on one device and dtype."""

    id: str  # "<case name>/<device>/<dtype>", unique within a run
    case: str
    kind: str
    description: str
    device: str
    dtype: str
    params: dict[str, Any]
    seed: int
    status: str  # ok | error | skipped
    reason: str | None = None  # why error/skipped
    started: str | None = None
    elapsed_s: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # numerics settings this case ran under
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # flat named measurements, what claim rules read
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # further sections: kernels, determinism, ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaseResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunResult:
    run_id: str
    started: str
    command: list[str]
    suite: dict[str, Any]  # the suite as run (after CLI overrides)
    environment: dict[str, Any]
    tool_version: str
    status: str = "running"  # running | complete | interrupted
    finished: str | None = None
    cases: list[CaseResult] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return sanitize(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["cases"] = [CaseResult.from_dict(c) for c in data.get("cases", [])]
        return cls(**kwargs)


def sanitize(obj: Any) -> Any:
    """Make ``obj`` strict JSON: non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    return obj


def jsonable(value: Any) -> Any:
    """Params as JSON: a callable handed in through the Python API is recorded by name (``module:qualname``)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"<{getattr(value, '__module__', None) or '?'}:{name}>"


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(sanitize(data), indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file and rename, so a reader (or an interrupted run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        # mkstemp creates the file 0600; the archive should be as readable as the reports beside it (umask).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps(data))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upgrade(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Bring a results dict of any older schema version up to SCHEMA_VERSION; refuse newer or unknown ones."""
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise UsageError(f"{source}: not a reportgen results file (no integer 'schema_version')")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{source}: schema_version {version} is newer than this reportgen supports "
                         f"({SCHEMA_VERSION}); upgrade reportgen")
    while version < SCHEMA_VERSION:
        if version not in _MIGRATIONS:
            raise UsageError(f"{source}: schema_version {version} has no migration to {SCHEMA_VERSION}")
        data = _MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


def load_dict(path: Path) -> dict[str, Any]:
    """Read a results.json (any supported schema version) into an up-to-date dict; UsageError on bad input."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a reportgen results file (top level is not an object)")
    return upgrade(data, str(path))


def load(path: Path) -> RunResult:
    return RunResult.from_dict(load_dict(path))

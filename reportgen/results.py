"""Run and case results: dataclasses <-> versioned JSON (the archive format).

History of ``SCHEMA_VERSION`` (bump it, add a line here and a migration in ``_MIGRATIONS``, and keep a sample
file of the old version under tests/fixtures/):

1 (reportgen 0.1.0): first version.
2: ``writer`` (pid, hashed host, boot id, pid start time, time of the last write) of the process writing the
   archive, so a reader can tell a run that was killed (still ``running``) from one in progress; None before.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from reportgen.errors import UsageError

SCHEMA_VERSION = 2

OK, ERROR, SKIPPED = "ok", "error", "skipped"

#: old version -> function upgrading a dict of that version to the next one.
def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "writer": None, "schema_version": 2}  # the writer of an old archive is unknown


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


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
    # the process that wrote this archive (reportgen.writer.writer_info), refreshed with every write
    writer: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        # The one choke point between a run and everything written from it (results.json, the reports): the home
        # directory and key=value secrets leave no string, whichever field it is in (suite.path used to).
        from reportgen.redact import redact_tree
        return redact_tree(sanitize(asdict(self)))

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


# Limits on an archive read back: generous for real ones (the default suite's results.json is ~1 MB, ~10 levels deep),
# small enough that a hostile or corrupt file is refused in one line instead of a RecursionError, the int-string
# ValueError, or gigabytes of memory.
MAX_INPUT_BYTES = 256 << 20
MAX_JSON_DEPTH = 100


def _check_depth(data: Any, source: str) -> None:
    """UsageError when ``data`` nests deeper than MAX_JSON_DEPTH (iterative: the check itself must not recurse)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise UsageError(f"{source}: nested deeper than {MAX_JSON_DEPTH} levels; not a reportgen results file")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj)


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` for an archive, every way it can fail as a one-line UsageError naming ``source``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply; not a reportgen results file") from None
    except ValueError as exc:  # an integer past Python's int-string limit (4,300 digits)
        detail = " ".join(str(exc).split())
        if "integer string conversion" in detail:
            detail = f"an integer with more than {sys.get_int_max_str_digits():,} digits"
        raise UsageError(f"{source}: not a reportgen results file ({detail[:160]})") from None
    _check_depth(data, source)
    return data


def read_text_limited(path: Path, what: str = "a reportgen results file") -> str:
    """The UTF-8 text of ``path``; UsageError (naming it) when unreadable, larger than MAX_INPUT_BYTES or not
    UTF-8."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_INPUT_BYTES:
            raise UsageError(f"{path}: {size:,} bytes, more than the {MAX_INPUT_BYTES:,} read back; is it {what}?")
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); is it {what}?") from None


def load_dict(path: Path) -> dict[str, Any]:
    """Read a results.json (any supported schema version) into an up-to-date dict; UsageError on bad input."""
    data = parse_json(read_text_limited(path), str(path))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a reportgen results file (top level is not an object)")
    return upgrade(data, str(path))


def load(path: Path) -> RunResult:
    return RunResult.from_dict(load_dict(path))

"""Who is writing a results.json, and whether that process is still alive.

A run that is killed (SIGKILL, a crash, the machine going down) cannot mark its archive; it stays ``running``.
So the runner records its writer with every write, and a reader that finds ``running`` asks whether the writer
can still be alive: on this host (and this boot) by its pid and the pid's start time, which tells a reused pid
apart; on another host only by age, since that process cannot be asked.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import secrets
import socket
from pathlib import Path
from typing import Any

# A run on another host that has not written for this long is taken as gone. Every finished case writes the
# archive, and the slowest bundled case takes minutes: a day without a write is a dead run, not a slow one.
STALE_AFTER_S = 24 * 3600


def _host_id(salt: str = "") -> str:
    # A salted hash, not the host name: the name can carry a user's or an organisation's name into a public report,
    # and an unsalted hash of a likely name (a dictionary of "gpu-node-17"s) would give it back.
    return hashlib.sha256((salt + socket.gethostname()).encode("utf-8", "replace")).hexdigest()[:16]


#: this process's salt for its writer record: random, so the hash cannot be looked up; kept beside the hash so that
#: a later reader on the same host can recompute it (equality is all that is ever asked of it)
_SALT = secrets.token_hex(8)


def _boot_id() -> str | None:
    # Hashed like the host: only equality matters, and the raw id would fingerprint the machine in a public report.
    try:
        raw = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None
    return hashlib.sha256(raw.encode()).hexdigest()[:16] if raw else None


def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def writer_info(updated: str) -> dict[str, Any]:
    """This process as the writer of an archive, last written at ``updated`` (ISO 8601)."""
    pid = os.getpid()
    return {"pid": pid, "host": _host_id(_SALT), "host_salt": _SALT, "boot": _boot_id(), "pid_start": _start_ticks(pid),
            "updated": updated}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _age_s(updated: Any, now: _dt.datetime) -> float | None:
    if not isinstance(updated, str):
        return None
    try:
        then = _dt.datetime.fromisoformat(updated)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=_dt.timezone.utc)
    return (now - then).total_seconds()


def writer_gone(writer: Any, now: _dt.datetime | None = None) -> str | None:
    """Why the process that wrote an archive still marked ``running`` cannot be writing it any more, or None when
    it may be (or nothing is known: an archive from before writers were recorded)."""
    if not isinstance(writer, dict):
        return None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    pid = writer.get("pid")
    salt = writer.get("host_salt") if isinstance(writer.get("host_salt"), str) else ""  # unsalted: older archives
    if writer.get("host") == _host_id(salt[:64]) and isinstance(pid, int) and not isinstance(pid, bool):
        boot = _boot_id()
        if boot is not None and writer.get("boot") not in (None, boot):
            return f"its writer (pid {pid}) ran before this machine last booted"
        if not _pid_alive(pid):
            return f"its writer (pid {pid}) is no longer running"
        start = writer.get("pid_start")
        if start is not None and _start_ticks(pid) not in (None, start):
            return f"its writer (pid {pid}) is no longer running (the pid now belongs to another process)"
        return None
    age = _age_s(writer.get("updated"), now)
    if age is not None and age > STALE_AFTER_S:
        return f"written on another host, last updated {age / 3600:.0f} h ago"
    return None

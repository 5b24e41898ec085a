"""``reportgen frameworks install|list``: the MindSpore and JAX environments of the cross-framework probes, made
with pinned versions and recorded in the user's config so that ``run`` finds them without ``--framework``.

Why a command and not a paragraph of docs: 22 of the default suite's 33 claims need these two interpreters, and
a user who has to build them by hand mostly does not. Each framework gets its own virtual environment (MindSpore
needs ``numpy<2``, JAX wants numpy 2; neither belongs in reportgen's environment, see docs/frameworks.md) under
a data directory, pinned to versions whose probes were run on CPython 3.11 / x86-64.

Where things go (each overridable, for tests and for users who keep environments elsewhere):

- environments: ``--dir``, else ``$REPORTGEN_FRAMEWORKS_DIR``, else ``$XDG_DATA_HOME/reportgen/frameworks``
  (``~/.local/share/reportgen/frameworks``), one ``<name>/`` each;
- config: ``$REPORTGEN_CONFIG``, else ``$XDG_CONFIG_HOME/reportgen/config.yaml`` (``~/.config/...``), a YAML
  mapping whose ``frameworks:`` key maps a name to ``{python, requirements, versions}``.

Precedence in ``run``: ``--framework NAME=PYTHON`` > the suite's ``frameworks:`` > the config.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from reportgen.errors import UsageError

Progress = Callable[[str], None]

# The probe's own environment rules (reportgen/probes): reportgen's PYTHONPATH must not leak into the new venv.
from reportgen.probes import _DROP_ENV  # noqa: E402  (one list for the probes and the installs)
_TAIL_LINES = 30


@dataclass(frozen=True)
class Framework:
    """One installable framework: what pip installs and how to tell that the result works."""

    name: str
    label: str
    requirements: tuple[str, ...]
    # Run by the environment's interpreter: imports the framework, does one tiny convolution (an import alone
    # can succeed with a broken native library) and prints, last, a JSON object of versions.
    check: str
    size_note: str = ""


_MS_CHECK = """\
import json, os, platform
os.environ.setdefault("GLOG_v", "3")
import numpy as np, mindspore as ms
y = ms.nn.Conv1d(1, 1, 3)(ms.Tensor(np.ones((1, 1, 5), np.float32)))
assert tuple(y.shape) == (1, 1, 5), y.shape
print(json.dumps({"mindspore": ms.__version__, "numpy": np.__version__, "python": platform.python_version()}))
"""

_JAX_CHECK = """\
import json, platform
import numpy as np, jax, jaxlib
y = jax.lax.conv_general_dilated(np.ones((1, 1, 5), np.float32), np.ones((1, 1, 3), np.float32), (1,), "SAME")
assert tuple(y.shape) == (1, 1, 5), y.shape
print(json.dumps({"jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                  "python": platform.python_version()}))
"""

# Pinned: the versions whose probes ran here (CPython 3.11.7, x86-64, CPU). numpy is pinned too: a new numpy
# would otherwise change under a reinstall what "the same environment" means. MindSpore 2.10.0 needs numpy<2.
FRAMEWORKS: dict[str, Framework] = {
    "mindspore": Framework("mindspore", "MindSpore", ("mindspore==2.10.0", "numpy==1.26.4"), _MS_CHECK,
                           "about 870 MB download"),
    "jax": Framework("jax", "JAX", ("jax==0.10.2", "jaxlib==0.10.2", "numpy==2.4.6"), _JAX_CHECK,
                     "about 140 MB download"),
}


class InstallError(Exception):
    """An install step failed (network, no wheel for this Python, timeout): one line, exit code 1."""


# ------------------------------------------------------------------------------------------------ locations

def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var, "")
    # The XDG spec: a relative value is invalid and must be ignored.
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Directory holding one environment per framework."""
    if override:
        return Path(override).expanduser().absolute()
    env = os.environ.get("REPORTGEN_FRAMEWORKS_DIR")
    if env:
        return Path(env).expanduser().absolute()
    return _xdg("XDG_DATA_HOME", ".local/share") / "reportgen" / "frameworks"


def config_path() -> Path:
    """The user's reportgen config file (it need not exist)."""
    env = os.environ.get("REPORTGEN_CONFIG")
    if env:
        return Path(env).expanduser().absolute()
    return _xdg("XDG_CONFIG_HOME", ".config") / "reportgen" / "config.yaml"


def venv_python(env_dir: Path) -> Path:
    # Not resolved: a venv's bin/python is a symlink to the base interpreter, and only the unresolved path
    # makes Python find pyvenv.cfg and the environment's site-packages.
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


# ------------------------------------------------------------------------------------------------ config

@dataclass(frozen=True)
class Recorded:
    """A framework environment as the config records it."""

    name: str
    python: str
    requirements: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config as a dict ({} when there is none); UsageError naming the file when it cannot be used."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def recorded(path: Path | None = None) -> dict[str, Recorded]:
    """Framework name -> its recorded environment; UsageError naming file and key for a malformed entry."""
    path = path or config_path()
    section = read_config(path).get("frameworks") or {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: key 'frameworks': expected a mapping of name -> {{python: PATH}}")
    out = {}
    for name, entry in section.items():
        if isinstance(entry, str):  # a hand-written "mindspore: /path/to/python" is fine too
            entry = {"python": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("python"), str) or not entry["python"]:
            raise UsageError(f"{path}: key 'frameworks.{name}.python': expected the path of an interpreter")
        reqs = entry.get("requirements") or []
        versions = entry.get("versions") or {}
        if not isinstance(reqs, list) or not isinstance(versions, dict):
            raise UsageError(f"{path}: key 'frameworks.{name}': 'requirements' must be a list and 'versions' "
                             "a mapping")
        out[str(name)] = Recorded(str(name), entry["python"], tuple(map(str, reqs)),
                                  {str(k): str(v) for k, v in versions.items()})
    return out


def record(entry: Recorded, path: Path | None = None) -> Path:
    """Add or replace ``entry`` in the config, keeping every other key; written atomically."""
    path = path or config_path()
    data = read_config(path)
    section = data.get("frameworks")
    if not isinstance(section, dict):
        section = {}
    section[entry.name] = {"python": entry.python, "requirements": list(entry.requirements),
                           "versions": dict(entry.versions)}
    data["frameworks"] = section
    text = ("# reportgen user config. `reportgen frameworks install` writes the frameworks: entries;\n"
            "# `reportgen run` uses them unless --framework or the suite's frameworks: names another.\n"
            + yaml.safe_dump(data, sort_keys=True, default_flow_style=False))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


def for_run(explicit: Mapping[str, str], suite: Mapping[str, str], *,
            path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """The frameworks ``run`` passes to the runner, and warnings to print.

    The runner lays ``explicit`` over the suite's own ``frameworks:``; recorded ones fill only the names neither
    gives, so the precedence is --framework > suite > config. A recorded interpreter that vanished is still
    passed on (its probe then says ``interpreter missing`` in the report) with a warning saying how to fix it:
    the run is worth having without that framework, and a missing framework is not a usage error.
    """
    path = path or config_path()
    out = dict(explicit)
    warnings = []
    for name, rec in recorded(path).items():
        if name in explicit or name in suite:
            continue
        exe = Path(rec.python)
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            hint = (f"reinstall it with `reportgen frameworks install {name}`" if name in FRAMEWORKS
                    else f"fix or remove frameworks.{name} there")
            warnings.append(f"{name}: the interpreter recorded in {path} is gone ({rec.python}); its probe is "
                            f"skipped: {hint}")
        out[name] = _tilde(rec.python)
    return out, warnings


def _tilde(path: str) -> str:
    """``path`` with the home directory as ``~``: the probe expands it to run the interpreter, and what the
    report records of it (the cross-framework table's interpreter column, the suite's frameworks) then names no
    user, although the default environments live under the home directory."""
    home = os.path.expanduser("~")
    if home in ("", "/", "~") or not path.startswith(home.rstrip("/") + "/"):
        return path
    return "~" + path[len(home.rstrip("/")):]


# ------------------------------------------------------------------------------------------------ processes

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"  # never wait for a password prompt with nobody at the terminal
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_streamed(argv: Sequence[str], *, timeout_s: float, progress: Progress, log: Any = None,
                 prefix: str = "  | ", cwd: Path | None = None) -> tuple[int, list[str]]:
    """Run ``argv`` in its own process group, passing each output line to ``progress`` (and ``log``), killing
    the group after ``timeout_s``. Returns (exit code, last output lines); raises InstallError on timeout or
    when the program cannot start."""
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=_env(), start_new_session=True, cwd=cwd)
    except OSError as exc:
        raise InstallError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    tail: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if log is not None:
                log.write(line + "\n")
                log.flush()
            if line.strip():
                tail.append(line)
                del tail[:-_TAIL_LINES]
                progress(prefix + line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        reader.join(5)
        raise InstallError(f"{Path(argv[0]).name} {' '.join(argv[1:3])}: no result after {timeout_s:g} s "
                           "(killed; raise --timeout on a slow network)") from None
    except BaseException:  # Ctrl-C: take pip and its children down with us, not leave them downloading
        _kill_group(proc)
        raise
    reader.join(5)
    return rc, tail


@dataclass(frozen=True)
class Check:
    """Whether an interpreter runs its framework: ``versions`` when it does, else a one-line ``reason``."""

    ok: bool
    versions: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    wall_s: float = 0.0


def check(fw: Framework, python: str, timeout_s: float = 300.0) -> Check:
    """Run ``fw.check`` with ``python`` (with a timeout): import, one tiny convolution, versions."""
    exe = Path(python)
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        return Check(False, reason=f"{python}: no such interpreter")
    t0 = time.perf_counter()
    try:
        # -I: neither the current directory (a stray numpy/ or jax.py there) nor PYTHON* variables decide what
        # the check imports; the probes run in a fresh temporary directory for the same reason.
        proc = subprocess.run([str(exe), "-I", "-c", fw.check], stdin=subprocess.DEVNULL, capture_output=True,
                              env=_env(), timeout=timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired:
        return Check(False, reason=f"the check did not finish in {timeout_s:g} s", wall_s=timeout_s)
    except OSError as exc:
        return Check(False, reason=f"cannot start {python}: {exc.strerror or exc}")
    wall = time.perf_counter() - t0
    out = proc.stdout.decode("utf-8", errors="replace").strip().splitlines()
    err = [ln for ln in proc.stderr.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    if proc.returncode != 0:
        return Check(False, reason=(err[-1].strip()[:300] if err else f"exit code {proc.returncode}"), wall_s=wall)
    try:
        versions = json.loads(out[-1]) if out else None
    except ValueError:
        versions = None
    if not isinstance(versions, dict):
        return Check(False, reason="the check printed no versions", wall_s=wall)
    return Check(True, {str(k): str(v) for k, v in versions.items()}, wall_s=wall)


def disk_usage(path: Path) -> int:
    """Bytes the files under ``path`` take on disk (blocks, not apparent size; symlinks not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


# ------------------------------------------------------------------------------------------------ install

@dataclass(frozen=True)
class Step:
    what: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What ``install`` will do for one framework, printable before anything runs (``--dry-run``)."""

    framework: Framework
    env_dir: Path
    python: Path
    steps: tuple[Step, ...]

    def describe(self) -> list[str]:
        lines = [f"{self.framework.name}: environment {self.env_dir} ({self.framework.size_note})"]
        lines += [f"  {i}. {s.what}: {' '.join(s.argv)}" for i, s in enumerate(self.steps, 1)]
        lines.append(f"  {len(self.steps) + 1}. check: {self.python} -c <import {self.framework.name}, one "
                     "conv, print versions>")
        lines.append(f"  {len(self.steps) + 2}. record {self.framework.name}: {self.python} in {config_path()}")
        return lines


def plan(fw: Framework, root: Path, *, base_python: str = sys.executable,
         pip_args: Sequence[str] = ()) -> Plan:
    """The steps that make ``root/<name>``: a fresh venv (with pip), then one pinned ``pip install``."""
    env_dir = root / fw.name
    py = venv_python(env_dir)
    steps = (
        Step("create the environment", (base_python, "-m", "venv", str(env_dir))),
        Step("install " + ", ".join(fw.requirements),
             (str(py), "-m", "pip", "install", "--progress-bar", "off", *pip_args, *fw.requirements)),
    )
    return Plan(fw, env_dir, py, steps)


@dataclass(frozen=True)
class Installed:
    name: str
    python: str
    versions: Mapping[str, str]
    wall_s: float
    disk_bytes: int
    reused: bool = False  # already there and working: nothing was installed


def _fail(what: str, tail: list[str], log_path: Path) -> InstallError:
    # pip's most useful line is usually the last ERROR: one, not the last line.
    errors = [ln.strip() for ln in tail if ln.strip().startswith("ERROR")]
    last = (errors or [ln.strip() for ln in tail] or ["no output"])[-1][:300]
    return InstallError(f"{what} failed: {last} (full log: {log_path})")


def install(p: Plan, *, timeout_s: float = 1800.0, force: bool = False, progress: Progress = lambda m: None,
            config: Path | None = None) -> Installed:
    """Carry out plan ``p``, check the result, record it in the config.

    An environment that is already recorded and passes its check is kept (so the README's command can be run
    twice); ``force`` rebuilds it. A directory at the target that is not a working environment of ours is
    only replaced with ``force``. A failed step removes what this call created and records nothing."""
    fw, env_dir = p.framework, p.env_dir
    config = config or config_path()
    t0 = time.perf_counter()
    if env_dir.exists() and not force:
        current = check(fw, str(p.python), timeout_s=min(timeout_s, 300.0))
        if current.ok and pinned_versions_match(fw, current.versions):
            record(Recorded(fw.name, str(p.python), fw.requirements, current.versions), config)
            progress(f"{fw.name}: already installed and working ({versions_text(current.versions)}); "
                     "--force reinstalls")
            return Installed(fw.name, str(p.python), current.versions, time.perf_counter() - t0,
                             disk_usage(env_dir), reused=True)
        why = current.reason or "installed with other versions than this reportgen pins"
        raise UsageError(f"{env_dir}: already exists but is not a working {fw.label} environment of this "
                         f"reportgen ({why}); use --force to replace it, or --dir elsewhere")
    if env_dir.exists():
        progress(f"{fw.name}: removing {env_dir} (--force)")
        shutil.rmtree(env_dir)
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = env_dir.parent / f"{fw.name}.install.log"
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            for i, step in enumerate(p.steps, 1):
                progress(f"{fw.name} [{i}/{len(p.steps) + 1}] {step.what} ...")
                log.write(f"$ {' '.join(step.argv)}\n")
                s0 = time.perf_counter()
                # cwd: the environments' folder, not the user's (python -m pip puts the cwd on sys.path)
                rc, tail = run_streamed(step.argv, timeout_s=timeout_s, progress=progress, log=log,
                                        cwd=env_dir.parent)
                if rc != 0:
                    raise _fail(f"{fw.name}: {step.what}", tail, log_path)
                progress(f"{fw.name} [{i}/{len(p.steps) + 1}] done in {time.perf_counter() - s0:.0f} s")
            progress(f"{fw.name} [{len(p.steps) + 1}/{len(p.steps) + 1}] checking: import, one convolution ...")
            result = check(fw, str(p.python), timeout_s=min(timeout_s, 300.0))
            log.write(f"check: {result}\n")
        if not result.ok:
            raise InstallError(f"{fw.name}: installed, but the check failed: {result.reason} "
                               f"(full log: {log_path})")
    except BaseException:
        shutil.rmtree(env_dir, ignore_errors=True)  # half an environment must never be found and recorded
        raise
    record(Recorded(fw.name, str(p.python), fw.requirements, result.versions), config)
    return Installed(fw.name, str(p.python), result.versions, time.perf_counter() - t0, disk_usage(env_dir))


def pinned_versions_match(fw: Framework, versions: Mapping[str, str]) -> bool:
    """True when every ``name==version`` pin of ``fw`` is what the environment reports (for the names it does)."""
    for req in fw.requirements:
        name, sep, version = req.partition("==")
        if sep and name in versions and versions[name] != version:
            return False
    return True


def versions_text(v: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {x}" for k, x in v.items())


def selected(names: Sequence[str]) -> list[Framework]:
    """``("all",)`` or no names -> every framework; else those named, in the order given, once each."""
    if not names or "all" in names:
        return list(FRAMEWORKS.values())
    return [FRAMEWORKS[n] for n in dict.fromkeys(names)]


def status_lines(config: Path | None = None, *, run_check: bool = True) -> list[str]:
    """What ``frameworks list`` prints: each known or recorded framework, its interpreter and whether it works."""
    config = config or config_path()
    rec = recorded(config)
    lines = [f"config: {config}" + ("" if config.exists() else " (none yet)")]
    for name in list(FRAMEWORKS) + [n for n in rec if n not in FRAMEWORKS]:
        r = rec.get(name)
        if r is None:
            lines.append(f"  {name:<10} not installed (reportgen frameworks install {name})")
            continue
        fw = FRAMEWORKS.get(name)
        if not run_check:
            state = versions_text(r.versions) or "recorded"
        elif fw is None:
            exe = Path(r.python)
            state = "interpreter exists" if exe.is_file() and os.access(exe, os.X_OK) else "interpreter gone"
        else:
            c = check(fw, r.python)
            state = f"works: {versions_text(c.versions)} ({c.wall_s:.1f} s)" if c.ok else f"BROKEN: {c.reason}"
        lines.append(f"  {name:<10} {r.python}")
        lines.append(f"  {'':<10} {state}")
    return lines

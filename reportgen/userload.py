"""Resolve a user's code references: ``"pkg.mod:attr"`` or ``"path/to/file.py:attr"`` (``reportgen check`` and
``kind: pair``), and check what they resolve to before anything runs.

A file is imported once per path (``a``, ``b`` and ``inputs`` of one file share its globals, so modules built at
its top level are the same objects for both sides), under a fixed global seed: a file that builds
``nn.Linear(8, 32)`` at import gets the same default initialisation on every run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from reportgen.errors import UsageError

_FILES: dict[str, ModuleType] = {}
#: the global seed a user's file is imported under
IMPORT_SEED = 0


def split_ref(ref: str, where: str) -> tuple[str, str]:
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr or not attr.replace("_", "a").replace(".", "a").isalnum():
        raise UsageError(f"{where}: {ref!r} is not a reference (expected 'package.module:name' or "
                         "'path/to/file.py:name')")
    return target, attr


def load_file(path: Path, where: str) -> ModuleType:
    """Import a Python file by path (once per resolved path); UsageError naming it when it cannot."""
    import torch

    resolved = path.expanduser().resolve()
    key = str(resolved)
    if key in _FILES:
        return _FILES[key]
    if not resolved.is_file():
        raise UsageError(f"{where}: {path}: no such file")
    name = f"_reportgen_user_{hashlib.sha256(key.encode()).hexdigest()[:10]}_{resolved.stem}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise UsageError(f"{where}: {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(IMPORT_SEED)
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise UsageError(f"{where}: {path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"{where}: {path}: importing it raised {type(exc).__name__}: {first}") from None
    _FILES[key] = module
    return module


def resolve(ref: str, where: str, base: Path | None = None) -> Any:
    """The object ``ref`` names. A file path is relative to ``base`` (the suite file's folder) when given."""
    target, attr = split_ref(ref, where)
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_absolute() and base is not None:
            path = base / path
        module = load_file(path, where)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise UsageError(f"{where}: cannot import module {target!r}: {exc}") from None
        except Exception as exc:
            raise UsageError(f"{where}: importing {target!r} raised {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            have = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
            raise UsageError(f"{where}: {target} has no attribute {part!r} (it has: {', '.join(have)})")
        obj = getattr(obj, part)
    return obj


def check_side(fn: Any, where: str) -> None:
    """A side must be callable with the input tensors positionally."""
    if not callable(fn):
        raise UsageError(f"{where}: expected a callable (a function or an nn.Module), got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and C functions: nothing to check before the call
    required_kw = [p.name for p in sig.parameters.values()
                   if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if required_kw:
        raise UsageError(f"{where}: takes required keyword-only argument(s) {', '.join(required_kw)}; a side is "
                         "called with the input tensors only")


#: the names by which ``inputs`` may ask for what the run provides
INPUT_ARGS = {"generator", "gen", "g", "rng", "device", "dtype"}


def check_inputs(fn: Any, where: str) -> None:
    """``inputs`` may take a generator (``generator``/``gen``/``g``/``rng``), ``device`` and ``dtype``, by name."""
    if not callable(fn):
        raise UsageError(f"{where}: expected a callable returning the input tensors, got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    for p in sig.parameters.values():
        if p.name not in INPUT_ARGS and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise UsageError(f"{where}: parameter {p.name!r} has no default and is not one the run provides "
                             f"({', '.join(sorted(INPUT_ARGS))})")


def check_arity(fn: Any, n_inputs: int | None, where: str) -> None:
    """When the number of inputs is known, a side must accept that many positional arguments."""
    if n_inputs is None:
        return
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*([None] * n_inputs))
    except TypeError as exc:
        raise UsageError(f"{where}: cannot take the {n_inputs} input tensor(s): {exc}") from None


def callable_or(value: Any, where: str, allowed: tuple[str, ...], base: Path | None) -> Callable[..., Any] | str | None:
    """A param that is one of the ``allowed`` words, None, a callable, or a reference to one."""
    if value is None or (isinstance(value, str) and value in allowed):
        return value
    if isinstance(value, str):
        return resolve(value, where, base)
    if callable(value):
        return value
    raise UsageError(f"{where}: expected {' | '.join(allowed)} or a reference 'module:name', got {value!r}")

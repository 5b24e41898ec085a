"""The case registry: one module per experiment in this package, each registering itself by name.

A case module calls :func:`register` on a function ``run(ctx: CaseContext) -> CaseOutput``. Modules are
discovered, so adding a case means adding a module; nothing else to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Mapping

from reportgen.cases.base import CaseContext, CaseInfo, CaseOutput, CaseSkipped

__all__ = ["CaseContext", "CaseInfo", "CaseOutput", "CaseSkipped", "register", "get", "names", "all_cases"]

_REGISTRY: dict[str, CaseInfo] = {}
_LOADED = False


def register(name: str, description: str, defaults: dict | None = None,
             validate: Callable[[Mapping[str, Any]], None] | None = None
             ) -> Callable[[Callable[[CaseContext], CaseOutput]], Callable[[CaseContext], CaseOutput]]:
    """Register ``run`` as case ``name``; ``defaults`` lists every parameter (the suite may set only these);
    ``validate(params)`` raises UsageError on values the case cannot run with, when the suite loads."""
    def deco(run: Callable[[CaseContext], CaseOutput]) -> Callable[[CaseContext], CaseOutput]:
        if name in _REGISTRY and _REGISTRY[name].run is not run:
            raise RuntimeError(f"case {name!r} registered twice")
        _REGISTRY[name] = CaseInfo(name=name, description=description.strip(), run=run,
                                   defaults=dict(defaults or {}), validate=validate)
        return run
    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED = True


def get(name: str) -> CaseInfo | None:
    _load()
    return _REGISTRY.get(name)


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def all_cases() -> list[CaseInfo]:
    _load()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]

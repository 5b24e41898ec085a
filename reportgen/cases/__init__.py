"""The case registry: one module per experiment in this package, each registering itself by name.

A case module calls :func:`register` on a function ``run(ctx: CaseContext) -> CaseOutput``. Modules are
discovered, so adding a case means adding a module; nothing else to edit.

Third-party case kinds come from the entry-point group ``reportgen.cases`` (pluggy's
``load_setuptools_entrypoints`` shape): each entry point names a module (imported: it calls :func:`register`) or a
callable (called with no arguments: it registers its kinds). A plugin that fails to load is reported by
:func:`plugin_errors` and in ``reportgen list``, not fatal to the bundled kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Mapping

from reportgen.cases.base import CaseContext, CaseInfo, CaseOutput, CaseSkipped
from reportgen.facts import FactSchema, FactSpec, schema

__all__ = ["CaseContext", "CaseInfo", "CaseOutput", "CaseSkipped", "register", "get", "names", "all_cases",
           "plugin_errors", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "reportgen.cases"

_REGISTRY: dict[str, CaseInfo] = {}
_LOADED = False
_PLUGIN_ERRORS: list[str] = []
_ORIGIN = "reportgen"  # set while a plugin's entry point loads, so its kinds say where they come from


def register(name: str, description: str, defaults: dict | None = None,
             validate: Callable[[Mapping[str, Any]], None] | None = None,
             facts: FactSchema | list[FactSpec] | None = None,
             prepare: Callable[[Mapping[str, Any], Any], Mapping[str, Any]] | None = None,
             ) -> Callable[[Callable[[CaseContext], CaseOutput]], Callable[[CaseContext], CaseOutput]]:
    """Register ``run`` as case ``name``; ``defaults`` lists every parameter (the suite may set only these);
    ``validate(params)`` raises UsageError on values the case cannot run with, when the suite loads; ``facts``
    declares every fact the case publishes (reportgen.facts)."""
    if facts is None:
        raise TypeError(f"case {name!r}: register(..., facts=...) is required: declare the facts it publishes")
    declared = facts if isinstance(facts, FactSchema) else schema(facts)

    def deco(run: Callable[[CaseContext], CaseOutput]) -> Callable[[CaseContext], CaseOutput]:
        if name in _REGISTRY and _REGISTRY[name].run is not run:
            raise RuntimeError(f"case {name!r} registered twice ({_REGISTRY[name].origin} and {_ORIGIN})")
        _REGISTRY[name] = CaseInfo(name=name, description=description.strip(), run=run,
                                   defaults=dict(defaults or {}), validate=validate, facts=declared,
                                   prepare=prepare, origin=_ORIGIN)
        return run
    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    load_plugins()


def load_plugins() -> None:
    """Load the case kinds of every installed distribution's ``reportgen.cases`` entry points."""
    global _ORIGIN
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
        _ORIGIN = f"plugin {dist} ({ep.name})"
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:  # a broken plugin must not take the bundled cases with it
            _PLUGIN_ERRORS.append(f"{ep.name} = {ep.value}: {type(exc).__name__}: {exc}")
        finally:
            _ORIGIN = "reportgen"


def plugin_errors() -> list[str]:
    _load()
    return list(_PLUGIN_ERRORS)


def get(name: str) -> CaseInfo | None:
    _load()
    return _REGISTRY.get(name)


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def all_cases() -> list[CaseInfo]:
    _load()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]

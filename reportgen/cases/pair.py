"""``kind: pair``: a user's two implementations through the pair engine (reportgen.engine.run_pair).

Params (the suite's ``params:``, or what ``reportgen check FILE.py`` and ``reportgen.check()`` build):

* ``a``, ``b``: the two sides, ``"pkg.mod:attr"`` or ``"path/to/file.py:attr"`` (relative to the suite file), or
  a callable from Python: functions or nn.Modules taking the input tensors, returning a tensor or a tuple/dict of
  tensors;
* ``inputs``: a callable returning the input tensors; it may take ``generator`` (a seeded torch.Generator),
  ``device`` and ``dtype`` by name;
* ``reference``: ``float64`` (rerun each side on float64 copies of the inputs and its modules; default), a
  callable reference (given the float64 inputs) or ``none``;
* ``bound``: a number (absolute, every element), a callable ``(inputs64, output_name, reference) -> bound``, or
  none (default: the relative rule judges, see reportgen.engine);
* ``backward``: also compare gradients w.r.t. the inputs and each side's parameters;
* ``a_label``, ``b_label``: how the report names the sides (default: the callables' names);
* ``rel_factor``: the relative rule's factor (default 2, 3 for float16/bfloat16); ``explain``: kernels and
  determinism sections (default true).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from reportgen.cases import CaseContext, CaseOutput, register
from reportgen.engine import PairError, PairSpec, provenance, run_pair
from reportgen.errors import UsageError
from reportgen.facts import (BOOL, EXPLAIN_FACTS, NUMBER, STR, FactSpec, comparison_facts, schema,
                             timing_facts)
from reportgen import userload

DEFAULTS: dict[str, Any] = {"a": None, "b": None, "inputs": None, "reference": "float64", "bound": None,
                            "backward": False, "a_label": "", "b_label": "", "rel_factor": None, "explain": True}

FACTS = schema(
    comparison_facts("fwd.*"), comparison_facts("fwd.*.*"), comparison_facts("grad.*.*"),
    comparison_facts("grad.param.*.*"),
    FactSpec("fwd.*_sha256", STR, doc="sha256 of a side's output bytes"), FactSpec("fwd.*.*_sha256", STR),
    FactSpec("verdict", STR, doc="worst a-vs-b verdict over outputs and gradients"),
    FactSpec("worse_side", STR, doc="the side farther from the reference (a or b), if they differ"),
    FactSpec("reference.kind", STR), FactSpec("reference.same_function", BOOL), FactSpec("reference.twins_max_rel", NUMBER,
                                              doc="max relative distance between a's and b's float64 reruns"),
    EXPLAIN_FACTS, timing_facts(),
)

_REFERENCE_WORDS = ("float64", "none")


def _resolved(params: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Params with every reference resolved to its object and checked (UsageError naming the key)."""
    p = dict(params)
    for key in ("a", "b", "inputs"):
        if p.get(key) is None:
            raise UsageError(f"pair: params.{key}: required (a reference 'module:name' or 'file.py:name')")
        if isinstance(p[key], str):
            p[key] = userload.resolve(p[key], f"pair: params.{key}", base)
        check = userload.check_inputs if key == "inputs" else userload.check_side
        check(p[key], f"pair: params.{key}")
    p["reference"] = userload.callable_or(p.get("reference", "float64"), "pair: params.reference",
                                          _REFERENCE_WORDS, base)
    if p["reference"] == "none":
        p["reference"] = None
    if p["reference"] is not None and p["reference"] != "float64":
        userload.check_side(p["reference"], "pair: params.reference")
    bound = p.get("bound")
    if isinstance(bound, str):
        bound = userload.resolve(bound, "pair: params.bound", base)
    if bound is not None and not callable(bound):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound >= 0:
            raise UsageError(f"pair: params.bound: expected a non-negative number or a callable, got {bound!r}")
    p["bound"] = bound
    rel = p.get("rel_factor")
    if rel is not None and (isinstance(rel, bool) or not isinstance(rel, (int, float)) or not rel >= 1):
        raise UsageError(f"pair: params.rel_factor: expected a number >= 1, got {rel!r}")
    for key in ("backward", "explain"):
        if not isinstance(p.get(key, False), bool):
            raise UsageError(f"pair: params.{key}: expected true/false, got {p[key]!r}")
    return p


def prepare(params: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    """At suite load: resolve and check every reference (so a typo is exit 2 before the run), and make file
    references absolute so the run finds them from any working directory."""
    _resolved(params, base)
    p = dict(params)
    for key in ("a", "b", "inputs", "reference", "bound"):
        v = p.get(key)
        if isinstance(v, str) and ":" in v and v not in _REFERENCE_WORDS:
            target, attr = userload.split_ref(v, f"pair: params.{key}")
            if (target.endswith(".py") or "/" in target) and not Path(target).is_absolute() and base is not None:
                p[key] = f"{(base / target).resolve()}:{attr}"
    return p


def _label(fn: Any, given: str, default: str) -> str:
    if given:
        return given
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return default if name in (default, "<lambda>") else name


@register("pair", "Your own two implementations (a, b) of the same computation: each side's error against a "
          "float64 reference, the pair's verdict, minimum tolerance, gradients, kernels, determinism, timing.",
          defaults=DEFAULTS, facts=FACTS, prepare=prepare)
def run(ctx: CaseContext) -> CaseOutput:
    p = _resolved(ctx.params)
    out = ctx.output()
    from reportgen.measure.environment import redact
    spec = PairSpec(a=p["a"], b=p["b"], inputs=p["inputs"], a_label=_label(p["a"], p["a_label"], "a"),
                    b_label=_label(p["b"], p["b_label"], "b"), reference=p["reference"], bound=p["bound"],
                    backward=p["backward"], rel_factor=p["rel_factor"], explain=p["explain"])
    prov = {k: provenance(p[k], redact) for k in ("a", "b", "inputs")}
    if callable(p["reference"]):
        prov["reference"] = provenance(p["reference"], redact)
    if callable(p["bound"]):
        prov["bound"] = provenance(p["bound"], redact)
    out.extra["pair"] = {"a": spec.a_label, "b": spec.b_label,
                         "reference": "float64" if spec.reference == "float64" else
                         ("none" if spec.reference is None else "callable"),
                         "bound": "none" if spec.bound is None else
                         ("callable" if callable(spec.bound) else float(spec.bound)),
                         "backward": spec.backward, "provenance": prov}
    try:
        run_pair(ctx, out, spec)
    except PairError as exc:
        raise RuntimeError(str(exc)) from None
    return out

"""Declared facts: every case kind says which facts it publishes (name pattern, type, timing or not).

Facts are the flat named measurements claim rules read. A typo in a claim's fact used to read "not measurable
here" with no warning, and a case could publish any name; now both are checked against the kind's declaration:
``CaseOutput.fact`` refuses an undeclared name, and a claim naming a fact its kind does not declare fails when the
suite loads (exit 2, with a "did you mean").

A pattern is a dotted name whose segments may be ``*`` (exactly one segment) or ``**`` (one or more), or hold a
``*`` inside (``*_median_s``: any text within the segment), e.g. ``fwd.*.verdict`` or
``determinism.**.bitwise_equal``. Types are JSON kinds: ``bool``, ``number``, ``str``,
``list`` or ``any``; ``None`` (not measured) is always allowed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from reportgen.errors import UsageError

BOOL, NUMBER, STR, LIST, ANY = "bool", "number", "str", "list", "any"
_TYPES = (BOOL, NUMBER, STR, LIST, ANY)


class UndeclaredFact(KeyError):
    """A case published a fact its kind does not declare (a bug in the case, not in the user's suite)."""

    def __str__(self) -> str:  # KeyError's str() would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class FactSpec:
    pattern: str
    type: str = ANY
    #: a timing (seconds or a ratio of times): noisy by nature, never part of a bitwise fingerprint
    timing: bool = False
    #: the name (relative: appended to the matched fact) of its noise flag, e.g. ".noisy"
    noise: str | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"fact {self.pattern!r}: type {self.type!r} is not one of {', '.join(_TYPES)}")


def _regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for seg in pattern.split("."):
        if seg == "**":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        elif seg == "*":
            parts.append(r"[^.]+")
        elif "*" in seg:  # a wildcard inside a segment: "*_median_s"
            parts.append(re.escape(seg).replace(r"\*", r"[^.]*"))
        else:
            parts.append(re.escape(seg))
    return re.compile(r"\.".join(parts))


def _type_ok(kind: str, value: Any) -> bool:
    if value is None or kind == ANY:
        return True
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    return isinstance(value, (list, tuple))


@dataclass(frozen=True)
class FactSchema:
    """The facts one case kind publishes."""

    specs: tuple[FactSpec, ...] = ()
    _compiled: tuple[tuple[re.Pattern[str], FactSpec], ...] = field(default=(), init=False, repr=False,
                                                                     compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple((_regex(s.pattern), s) for s in self.specs))

    def __add__(self, other: "FactSchema") -> "FactSchema":
        return FactSchema(self.specs + other.specs)

    def match(self, name: str) -> FactSpec | None:
        for rx, spec in self._compiled:
            if rx.fullmatch(name):
                return spec
        # a noise flag of a declared fact is declared with it
        for rx, spec in self._compiled:
            if spec.noise and name.endswith(spec.noise) and rx.fullmatch(name[: -len(spec.noise)]):
                return FactSpec(name, BOOL, doc=f"noise flag of {spec.pattern}")
        return None

    def check(self, name: str, value: Any, kind: str = "") -> None:
        spec = self.match(name)
        if spec is None:
            raise UndeclaredFact(f"{kind or 'case'}: fact {name!r} is not declared by its kind"
                                 f"{self.suggestion(name)}")
        if not _type_ok(spec.type, value):
            raise UndeclaredFact(f"{kind or 'case'}: fact {name!r} is declared {spec.type}, got "
                                 f"{type(value).__name__} {value!r:.60}")

    def suggestion(self, name: str) -> str:
        """' (did you mean 'x'?)' from the declared patterns, or ''."""
        candidates = [s.pattern for s in self.specs]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        if not close:  # compare with the patterns' wildcards filled by the name's own segments
            filled = {_fill(p, name): p for p in candidates}
            hit = difflib.get_close_matches(name, list(filled), n=1, cutoff=0.6)
            close = [filled[hit[0]]] if hit else []
        return f" (did you mean {close[0]!r}?)" if close else ""

    def is_timing(self, name: str) -> bool:
        spec = self.match(name)
        return bool(spec and spec.timing)

    def to_list(self) -> list[dict[str, Any]]:
        return [{"pattern": s.pattern, "type": s.type, "timing": s.timing, "noise": s.noise, "doc": s.doc}
                for s in self.specs]


def _fill(pattern: str, name: str) -> str:
    segs, have = pattern.split("."), name.split(".")
    return ".".join(have[i] if s in ("*", "**") and i < len(have) else s for i, s in enumerate(segs))


def schema(*groups: Iterable[FactSpec] | FactSpec) -> FactSchema:
    specs: list[FactSpec] = []
    for g in groups:
        specs.extend([g] if isinstance(g, FactSpec) else g)
    return FactSchema(tuple(specs))


def facts(prefix: str, names: Iterable[str], type: str = ANY, **kw: Any) -> list[FactSpec]:
    """``facts("fwd.*", ["verdict", "max_abs"])`` -> FactSpecs ``fwd.*.verdict``, ``fwd.*.max_abs``."""
    return [FactSpec(f"{prefix}.{n}" if prefix else n, type, **kw) for n in names]


#: the metrics of one Comparison published as facts, and their types
COMPARISON_FACT_TYPES: dict[str, str] = {
    "verdict": STR, "max_abs": NUMBER, "mean_abs": NUMBER, "max_normalised": NUMBER, "max_rel": NUMBER,
    "max_ulp": NUMBER, "bitwise_equal_fraction": NUMBER, "cosine": NUMBER, "assert_close": BOOL,
    "min_rtol": NUMBER, "min_atol": NUMBER, "error_ratio": NUMBER, "value_max_abs": NUMBER,
}


def comparison_facts(prefix: str, keys: Iterable[str] = tuple(COMPARISON_FACT_TYPES)) -> list[FactSpec]:
    """Declarations for the metrics of comparisons published under ``prefix`` (a pattern)."""
    return [FactSpec(f"{prefix}.{k}", COMPARISON_FACT_TYPES.get(k, ANY)) for k in keys]


#: what CaseOutput.explain (kernels + determinism sections) publishes, for every kind that calls it
EXPLAIN_FACTS: tuple[FactSpec, ...] = (
    FactSpec("kernels.*.impl", STR), FactSpec("kernels.*.op", STR), FactSpec("kernels.*.kernel", STR),
    FactSpec("kernels.*.reorders_per_call", NUMBER),
    FactSpec("kernels.*.reorder_time_share", NUMBER, noise=".noisy"),
    FactSpec("kernels.*.tf32", BOOL), FactSpec("kernels.*.cudnn_benchmark_changes_engine", BOOL),
    FactSpec("determinism.*.self_consistent", BOOL), FactSpec("determinism.*.distinct_outputs", NUMBER),
    FactSpec("determinism.*.*.bitwise_equal", BOOL), FactSpec("determinism.*.*.max_normalised", NUMBER),
    FactSpec("determinism.*.tf32_off_over_baseline", NUMBER),
    FactSpec("determinism.control.nondeterminism_seen", BOOL),
    FactSpec("determinism.control.threads_change_bits", BOOL),
)

#: what one interleaved two-sided timing publishes under ``timing.<key>`` (see engine.time_pair)
def timing_facts(prefix: str = "timing.*") -> list[FactSpec]:
    return [FactSpec(f"{prefix}.*_median_s", NUMBER, timing=True, noise=".noisy"),
            FactSpec(f"{prefix}.*_over_*", NUMBER, timing=True, noise=".noisy"),
            FactSpec(f"{prefix}.*_over_*.per_round_min", NUMBER, timing=True),
            FactSpec(f"{prefix}.*_over_*.per_round_max", NUMBER, timing=True),
            FactSpec(f"{prefix}.*.fraction_of_roofline", NUMBER, timing=True,
                     doc="roofline time over the measured median: 1 = at the machine's measured limit")]


def rule_facts(rule: Any) -> list[str]:
    """Every fact name a claim rule reads (leaves, value references, spreads, preconditions)."""
    names: list[str] = []
    if isinstance(rule, dict):
        req = rule.get("requires")
        if isinstance(req, dict):
            names.extend(f for f in req.get("facts", []) or [] if isinstance(f, str))
        if isinstance(rule.get("fact"), str):
            names.append(rule["fact"])
        value = rule.get("value")
        if isinstance(value, dict) and isinstance(value.get("fact"), str):
            names.append(value["fact"])
        spread = rule.get("spread")
        if isinstance(spread, dict):
            names.extend(spread[k] for k in ("low", "high") if isinstance(spread.get(k), str))  # not its "over"
        for key in ("all", "any"):
            for sub in rule.get(key, []) or []:
                names.extend(rule_facts(sub))
        if "not" in rule:
            names.extend(rule_facts(rule["not"]))
    return names


def check_claim_facts(rule: Any, declared: FactSchema, where: str) -> None:
    """UsageError naming the claim and the fact when the rule reads a fact its case kind does not declare."""
    for name in rule_facts(rule):
        if declared.match(name) is None:
            raise UsageError(f"{where}: fact {name!r} is not published by this case kind"
                             f"{declared.suggestion(name)}")

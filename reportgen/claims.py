"""Claims: public statements about PyTorch numerics, judged by rules over a case's measured facts.

A claim lives in the suite next to the case that tests it and carries a *rule* over that case's facts
(``CaseResult.facts``). Verdicts are computed here from measurements, never written down.

Rule format (YAML)::

    rule:
      fact: fwd.linear_vs_conv1d.bitwise_equal_fraction   # a key of the case's facts
      op: "<"                  # < <= > >= == != in not_in
      value: 1.0               # a literal, or {fact: other.fact, times: 2.0} (another fact of the same result)
      margin: 0.10             # optional: relative margin a *noisy* fact must clear (default 0.10)
      spread: {low: f.min, high: f.max}   # optional: the fact's measured range (e.g. per interleaved round);
                                          # over: what the range is over, as the evidence says it (default rounds)
    # or {all: [rule, ...]} / {any: [rule, ...]} / {not: rule}
    # optional, at the top of a rule only: requires: {device: cuda, dtype: float32, facts: [a.fact]}
    # (facts: preconditions, each must be true in a result for the rule to judge it, e.g. "the kernel under
    # test ran"; where one is not, the result is not applicable, as for another device or dtype)

Each leaf evaluates, per result, to one of four outcomes:

* ``true`` / ``false`` -- the comparison is decided;
* ``missing`` -- the fact (or the fact named as the value) is absent or null in that result;
* ``noisy`` -- a fact flagged uncertain by the case (``<fact>.noisy`` is true, e.g. a timing whose IQR/median
  is above the noise threshold) lies within ``margin * |threshold|`` of the threshold, so noise could flip the
  comparison. A noisy fact that clears the threshold by more than that margin still decides. ``==``/``!=``/
  ``in`` on a noisy fact are always ``noisy``: there is no margin for equality.
  With ``spread``, the measured range replaces flag and margin: the comparison decides only when ``low`` and
  ``high`` fall on the same side of the threshold (e.g. Conv1d slower than Linear in *every* interleaved timing
  round), and is ``noisy`` otherwise.

``all``/``any``/``not`` combine outcomes in Kleene three-valued logic: a decisive ``false`` (``true``) settles
``all`` (``any``) whatever the rest; otherwise ``missing`` dominates ``noisy``.

Verdict of a claim, over every ok result of its case (each device x dtype) that its ``requires`` admits:

* no such result -> ``not measurable here`` (the reason says which results were skipped/failed/excluded);
* every result ``missing`` -> ``not measurable here``; results where the rule is ``missing`` are otherwise
  left out (and named in the reason);
* all remaining ``true`` -> ``holds``; all ``false`` -> ``does not hold``;
* any mix, or any ``noisy`` -> ``inconclusive`` (the reason says which results disagree or were noisy).

Robustness (suite key ``robustness: {seeds: N}``): the runner reruns the case with seeds seed+1 .. seed+N-1
(timing off) and :func:`evaluate` judges each claim on every seed's results as well; the claim then carries
``robustness: {seeds, verdicts: {verdict: count}, per_seed: {seed: verdict}}`` and ``fragile``: true when the
seeds' measured verdicts (holds / does not hold / inconclusive) are not all the same. A seed on which the claim is
not measurable (a failed rerun, a timing fact absent with timing off) is counted but does not make it fragile.
"""

from __future__ import annotations

import re

import math
from typing import Any, Callable, Iterable, Mapping

from reportgen.errors import UsageError

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_MEASURABLE = "not measurable here"

TRUE, FALSE, MISSING, NOISY = "true", "false", "missing", "noisy"

ORDER_OPS = ("<", "<=", ">", ">=")
EQUAL_OPS = ("==", "!=")
MEMBER_OPS = ("in", "not_in")
OPS = ORDER_OPS + EQUAL_OPS + MEMBER_OPS
DEFAULT_MARGIN = 0.10  # same scale as the default timing noise flag (IQR/median >= 10%)

_LEAF_KEYS = {"fact", "op", "value", "margin", "spread"}
_COMBINERS = ("all", "any", "not")
_REQUIRES_KEYS = {"device", "dtype", "facts"}
_DTYPES = ("float32", "float64", "float16", "bfloat16")


# ----------------------------------------------------------------------------------------------- validation

def validate_rule(rule: Any, where: str) -> None:
    """Raise UsageError (one line naming ``where`` and the rule key) unless ``rule`` is well formed."""
    if isinstance(rule, Mapping) and "requires" in rule:
        _validate_requires(rule["requires"], where)
        rule = {k: v for k, v in rule.items() if k != "requires"}
    _validate(rule, where, "rule")


def _fail(where: str, path: str, message: str) -> UsageError:
    return UsageError(f"{where}: key {path!r}: {message}")


def _validate(rule: Any, where: str, path: str) -> None:
    if not isinstance(rule, Mapping):
        raise _fail(where, path, f"expected a mapping (a fact comparison or all/any/not), got {rule!r}")
    if "requires" in rule:
        raise _fail(where, f"{path}.requires", "'requires' is only allowed at the top of a rule")
    kinds = [k for k in ("fact",) + _COMBINERS if k in rule]
    if len(kinds) != 1:
        got = ", ".join(sorted(map(str, rule))) or "nothing"
        raise _fail(where, path, f"expected exactly one of fact, all, any, not (got keys: {got})")
    kind = kinds[0]
    if kind == "fact":
        _validate_leaf(rule, where, path)
        return
    extra = sorted(set(map(str, rule)) - {kind})
    if extra:
        raise _fail(where, f"{path}.{extra[0]}", f"unknown key beside {kind!r}")
    if kind == "not":
        _validate(rule["not"], where, f"{path}.not")
        return
    items = rule[kind]
    if not isinstance(items, list) or not items:
        raise _fail(where, f"{path}.{kind}", f"expected a non-empty list of rules, got {items!r}")
    for i, sub in enumerate(items):
        _validate(sub, where, f"{path}.{kind}[{i}]")


def _validate_leaf(rule: Mapping[str, Any], where: str, path: str) -> None:
    extra = sorted(set(map(str, rule)) - _LEAF_KEYS)
    if extra:
        raise _fail(where, f"{path}.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(_LEAF_KEYS))})")
    for key in ("op", "value"):
        if key not in rule:
            raise _fail(where, f"{path}.{key}", "missing (a comparison needs fact, op and value)")
    if not isinstance(rule["fact"], str) or not rule["fact"]:
        raise _fail(where, f"{path}.fact", f"expected a fact name, got {rule['fact']!r}")
    op, value = rule["op"], rule["value"]
    if op not in OPS:
        raise _fail(where, f"{path}.op", f"unknown op {op!r} (allowed: {' '.join(OPS)})")
    if "margin" in rule and (not _is_number(rule["margin"]) or rule["margin"] < 0):
        raise _fail(where, f"{path}.margin", f"expected a number >= 0, got {rule['margin']!r}")
    if "spread" in rule:
        _validate_spread(rule["spread"], op, where, f"{path}.spread")
    if isinstance(value, Mapping):
        _validate_fact_ref(value, where, f"{path}.value")
        if op in MEMBER_OPS:
            raise _fail(where, f"{path}.value", f"op {op!r} needs a literal list, not a fact reference")
    elif op in MEMBER_OPS:
        if not isinstance(value, list) or not all(_is_scalar(v) for v in value):
            raise _fail(where, f"{path}.value", f"op {op!r} needs a list of scalars, got {value!r}")
    elif op in ORDER_OPS and not _is_number(value):
        raise _fail(where, f"{path}.value", f"op {op!r} needs a number, got {value!r}")
    elif not _is_scalar(value):
        raise _fail(where, f"{path}.value", f"expected a number, string, true/false or null, got {value!r}")


def _validate_fact_ref(ref: Mapping[str, Any], where: str, path: str) -> None:
    extra = sorted(set(map(str, ref)) - {"fact", "times"})
    if extra:
        raise _fail(where, f"{path}.{extra[0]}", "unknown key (a fact reference has fact and times)")
    if not isinstance(ref.get("fact"), str) or not ref.get("fact"):
        raise _fail(where, f"{path}.fact", f"expected a fact name, got {ref.get('fact')!r}")
    if "times" in ref and not _is_number(ref["times"]):
        raise _fail(where, f"{path}.times", f"expected a number, got {ref['times']!r}")


def _validate_spread(spread: Any, op: str, where: str, path: str) -> None:
    if op not in ORDER_OPS:
        raise _fail(where, path, f"a spread needs an ordering op ({' '.join(ORDER_OPS)}), not {op!r}")
    if not isinstance(spread, Mapping) or not {"low", "high"} <= set(map(str, spread)) <= {"low", "high", "over"}:
        raise _fail(where, path, f"expected {{low: <fact>, high: <fact>[, over: <word>]}}, got {spread!r}")
    if "over" in spread and not (isinstance(spread["over"], str) and re.fullmatch(r"[a-z][a-z -]{0,39}",
                                                                                  spread["over"])):
        raise _fail(where, f"{path}.over", f"expected a plural noun such as rounds or processes, got "
                                           f"{spread['over']!r}")
    for key in ("low", "high"):
        if not isinstance(spread[key], str) or not spread[key]:
            raise _fail(where, f"{path}.{key}", f"expected a fact name, got {spread[key]!r}")


def _validate_requires(req: Any, where: str) -> None:
    if not isinstance(req, Mapping) or not req:
        raise _fail(where, "rule.requires", f"expected a mapping with device and/or dtype, got {req!r}")
    extra = sorted(set(map(str, req)) - _REQUIRES_KEYS)
    if extra:
        raise _fail(where, f"rule.requires.{extra[0]}", "unknown key (allowed: device, dtype, facts)")
    device = req.get("device")
    if device is not None and not (isinstance(device, str) and _device_ok(device)):
        raise _fail(where, "rule.requires.device", f"{device!r} is not a device (cpu, cuda, cuda:N)")
    dtype = req.get("dtype")
    if dtype is not None and dtype not in _DTYPES:
        raise _fail(where, "rule.requires.dtype", f"{dtype!r} is not one of {', '.join(_DTYPES)}")
    facts = req.get("facts")
    if facts is not None and not (isinstance(facts, list) and facts
                                  and all(isinstance(f, str) and f for f in facts)):
        raise _fail(where, "rule.requires.facts", f"expected a non-empty list of fact names, got {facts!r}")


def _device_ok(device: str) -> bool:
    return device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


# ----------------------------------------------------------------------------------------------- evaluation

def _number(v: Any) -> float | None:
    """Fact values come back from JSON with non-finite floats as strings; read those as floats again."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return None


def _compare(value: Any, op: str, threshold: Any) -> bool | None:
    """The comparison itself; None where the value has the wrong type for the op (treated as missing)."""
    if op in MEMBER_OPS:
        return (value in threshold) == (op == "in")
    if op in EQUAL_OPS:
        a, b = _number(value), _number(threshold)
        equal = a == b if a is not None and b is not None else value == threshold
        return equal == (op == "==")
    a, b = _number(value), _number(threshold)
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _clear_by_margin(value: Any, op: str, threshold: Any, margin: float) -> bool:
    """True when a noisy value is on the same side of the threshold even after moving it by the margin."""
    if op not in ORDER_OPS:
        return False
    a, b = _number(value), _number(threshold)
    if a is None or b is None or not math.isfinite(b):
        return False
    slack = margin * abs(b)
    return _compare(a - slack, op, b) == _compare(a + slack, op, b)


def _leaf(rule: Mapping[str, Any], facts: Mapping[str, Any], result_id: str,
          evidence: list[dict[str, Any]]) -> str:
    name, op = rule["fact"], rule["op"]
    value = facts.get(name)
    threshold = rule["value"]
    noisy = bool(facts.get(f"{name}.noisy"))
    shown_threshold: Any = threshold
    if isinstance(threshold, Mapping):
        ref_n = _number(facts.get(threshold["fact"]))
        noisy = noisy or bool(facts.get(f"{threshold['fact']}.noisy"))
        threshold = None if ref_n is None else ref_n * float(threshold.get("times", 1.0))
        shown_threshold = _describe_ref(rule["value"], threshold)
    decided = None if value is None or threshold is None else _compare(value, op, threshold)
    spread = _spread(rule, facts)
    if decided is None or (spread is not None and None in spread):
        outcome = MISSING
    elif spread is not None:
        low, high = (_compare(v, op, threshold) for v in spread)
        outcome = NOISY if low is None or low != high else (TRUE if low else FALSE)
        noisy = outcome == NOISY
    elif noisy and not _clear_by_margin(value, op, threshold, float(rule.get("margin", DEFAULT_MARGIN))):
        outcome = NOISY
    else:
        outcome = TRUE if decided else FALSE
    ev = {"result_id": result_id, "fact": name, "value": value, "op": op, "threshold": shown_threshold,
          "outcome": outcome, "noisy": noisy}
    if spread is not None:
        ev["spread"] = list(spread)
        ev["spread_over"] = str(rule["spread"].get("over", "rounds"))
    evidence.append(ev)
    return outcome


def _spread(rule: Mapping[str, Any], facts: Mapping[str, Any]) -> tuple[Any, Any] | None:
    if "spread" not in rule:
        return None
    return facts.get(rule["spread"]["low"]), facts.get(rule["spread"]["high"])


def _describe_ref(ref: Mapping[str, Any], resolved: float | None) -> str:
    """How a fact-valued threshold reads in the evidence table: '2 x timing.b (= 0.0012)'."""
    times = float(ref.get("times", 1.0))
    head = ref["fact"] if times == 1.0 else f"{times:g} x {ref['fact']}"
    return f"{head} (= {resolved:.6g})" if resolved is not None else f"{head} (missing)"


def _combine(kind: str, outcomes: list[str]) -> str:
    decisive, other = (FALSE, TRUE) if kind == "all" else (TRUE, FALSE)
    if decisive in outcomes:
        return decisive
    if MISSING in outcomes:
        return MISSING
    if NOISY in outcomes:
        return NOISY
    return other


def _eval(rule: Mapping[str, Any], facts: Mapping[str, Any], result_id: str,
          evidence: list[dict[str, Any]]) -> str:
    if "fact" in rule:
        return _leaf(rule, facts, result_id, evidence)
    if "not" in rule:
        out = _eval(rule["not"], facts, result_id, evidence)
        return {TRUE: FALSE, FALSE: TRUE}.get(out, out)
    kind = "all" if "all" in rule else "any"
    return _combine(kind, [_eval(sub, facts, result_id, evidence) for sub in rule[kind]])


def evaluate_rule(rule: Mapping[str, Any], facts: Mapping[str, Any], result_id: str = "") -> tuple[str, list]:
    """Outcome (true/false/missing/noisy) of ``rule`` (without its ``requires``) on one result's facts."""
    evidence: list[dict[str, Any]] = []
    body = {k: v for k, v in rule.items() if k != "requires"}
    return _eval(body, facts, result_id, evidence), evidence


def _preconditions_met(requires: Mapping[str, Any] | None, facts: Mapping[str, Any] | None) -> bool:
    return all((facts or {}).get(name) is True for name in (requires or {}).get("facts") or [])


def _admitted(requires: Mapping[str, Any] | None, device: str, dtype: str) -> bool:
    if not requires:
        return True
    want_dev, want_dtype = requires.get("device"), requires.get("dtype")
    if want_dev is not None:
        if want_dev == "cuda" and not device.startswith("cuda"):
            return False
        if want_dev != "cuda" and device != want_dev:
            return False
    return want_dtype is None or dtype == want_dtype


def _get(r: Any, key: str) -> Any:
    return r.get(key) if isinstance(r, Mapping) else getattr(r, key)


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(ids)


def _verdict(outcomes: dict[str, str], excluded_note: str) -> tuple[str, str]:
    decided = {rid: o for rid, o in outcomes.items() if o != MISSING}
    missing = [rid for rid, o in outcomes.items() if o == MISSING]
    tail = f"; fact missing on {_ids(missing)}" if missing and decided else ""
    tail += excluded_note
    if not decided:
        return NOT_MEASURABLE, f"the facts the rule reads are missing on {_ids(missing)}{excluded_note}"
    by = {o: [rid for rid, x in decided.items() if x == o] for o in (TRUE, FALSE, NOISY)}
    if len(by[TRUE]) == len(decided):
        return HOLDS, f"holds on {_ids(by[TRUE])}{tail}"
    if len(by[FALSE]) == len(decided):
        return FAILS, f"does not hold on {_ids(by[FALSE])}{tail}"
    parts = []
    if by[TRUE]:
        parts.append(f"holds on {_ids(by[TRUE])}")
    if by[FALSE]:
        parts.append(f"does not hold on {_ids(by[FALSE])}")
    if by[NOISY]:
        parts.append(f"too noisy to decide on {_ids(by[NOISY])} (a noisy fact within "
                     f"the margin of its threshold)")
    return INCONCLUSIVE, "; ".join(parts) + tail


def evaluate_claim(claim: Any, case_name: str, results: list[Any]) -> dict[str, Any]:
    """Judge one claim (ClaimSpec or dict) against the results of its case; returns the claim dict for results."""
    rule = _get(claim, "rule")
    requires = rule.get("requires") if isinstance(rule, Mapping) else None
    mine = [r for r in results if _get(r, "case") == case_name]
    ok = [r for r in mine if _get(r, "status") == "ok"]
    admitted = [r for r in ok if _admitted(requires, _get(r, "device"), _get(r, "dtype"))
                and _preconditions_met(requires, _get(r, "facts"))]
    excluded = [r for r in ok if r not in admitted]
    excluded_note = (f"; not applicable to {_ids(_get(r, 'id') for r in excluded)} (rule requires "
                     f"{_requires_text(requires)})") if excluded else ""
    evidence: list[dict[str, Any]] = []
    outcomes: dict[str, str] = {}
    for r in admitted:
        # preconditions first in the evidence: a reader sees what the verdict stands on
        evidence.extend({"result_id": _get(r, "id"), "fact": name, "value": True, "op": "==", "threshold": True,
                         "outcome": TRUE, "noisy": False} for name in (requires or {}).get("facts") or [])
        outcome, ev = evaluate_rule(rule, _get(r, "facts") or {}, _get(r, "id"))
        outcomes[_get(r, "id")] = outcome
        evidence.extend(ev)
    if not admitted:
        verdict, reason = NOT_MEASURABLE, _unmeasurable_reason(mine, ok, requires)
    else:
        verdict, reason = _verdict(outcomes, excluded_note)
    anchor_from = admitted or ok or mine
    return {"id": _get(claim, "id"), "case": case_name, "text": _get(claim, "text"),
            "source": _get(claim, "source"), "verdict": verdict, "reason": reason, "evidence": evidence,
            "rule": rule, "anchor": _get(anchor_from[0], "id") if anchor_from else case_name}


def _requires_text(requires: Mapping[str, Any] | None) -> str:
    return ", ".join(", ".join(f"{f} true" for f in v) if k == "facts" else f"{k} {v}"
                     for k, v in (requires or {}).items())


def _unmeasurable_reason(mine: list[Any], ok: list[Any], requires: Mapping[str, Any] | None) -> str:
    if not mine:
        return "the case has not run (not selected, or not reached yet)"
    if ok:
        ran = _ids(sorted({f"{_get(r, 'device')}/{_get(r, 'dtype')}" for r in ok}))
        if requires and requires.get("facts") and any(_admitted(requires, _get(r, "device"), _get(r, "dtype"))
                                                      for r in ok):
            return f"the rule requires {_requires_text(requires)}, which no result of {ran} has"
        return f"the rule requires {_requires_text(requires)}; this run measured {ran} only"
    return "no ok result: " + "; ".join(f"{_get(r, 'id')} {_get(r, 'status')}"
                                        + (f" ({_get(r, 'reason')})" if _get(r, "reason") else "")
                                        for r in mine)


#: Verdicts that judge a claim; "not measurable here" on a seed (a rerun that failed, a fact the seed's run did
#: not produce) says nothing about the claim and does not make it fragile.
_MEASURED = (HOLDS, FAILS, INCONCLUSIVE)


def judge_over_seeds(claim: Any, case_name: str, main: dict[str, Any], main_seed: int,
                     per_seed: Mapping[int, list[Any]]) -> dict[str, Any]:
    """The claim judged on every seed: ``main`` (its verdict on the main run) plus one verdict per seed of
    ``per_seed`` (that seed's results of the case). Returns ``{seeds, verdicts: {verdict: count}, per_seed:
    {seed: verdict}, fragile}``; fragile when the seeds' measured verdicts (holds / does not hold / inconclusive)
    are not all the same."""
    verdicts = {main_seed: main["verdict"]}
    for seed in sorted(per_seed):
        verdicts[seed] = evaluate_claim(claim, case_name, per_seed[seed])["verdict"]
    counts: dict[str, int] = {}
    for v in verdicts.values():
        counts[v] = counts.get(v, 0) + 1
    measured = {v for v in verdicts.values() if v in _MEASURED}
    return {"seeds": len(verdicts), "verdicts": counts, "per_seed": {str(k): v for k, v in verdicts.items()},
            "fragile": len(measured) > 1}


def evaluate(suite: Any, cases: list[Any],
             robustness: Mapping[str, Mapping[int, list[Any]]] | None = None) -> list[dict[str, Any]]:
    """Verdicts for every claim of every case in ``suite`` over the (possibly partial) results ``cases``.

    ``robustness`` (case name -> seed -> that seed's results of the case, from the runner's robustness reruns):
    where a case has some, each of its claims also gets ``robustness`` (see :func:`judge_over_seeds`) and
    ``fragile``."""
    out = []
    for spec in suite.cases:
        per_seed = (robustness or {}).get(spec.name) or {}
        for claim in spec.claims:
            judged = evaluate_claim(claim, spec.name, cases)
            if per_seed:
                rob = judge_over_seeds(claim, spec.name, judged, spec.seed, per_seed)
                judged["robustness"] = rob
                judged["fragile"] = rob["fragile"]
            out.append(judged)
    return out


# ------------------------------------------------------------------------------------------------ evidence text

def _shown(value: Any, fmt: Callable[[Any], str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return fmt(value)
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v, fmt) for v in value) + "]"
    return str(value)


def evidence_text(ev: Mapping[str, Any], fmt: Callable[[Any], str] = str) -> str:
    """How one evidence entry reads after its fact's name, computed from the leaf it records (value, op,
    threshold, outcome): "= 0.392, which is < 1", "is true", "is “within rounding”, not “out of bound”",
    "= 1.9 (rounds 0.909 to 3.37): > 1 in some rounds only, too noisy to decide". It states the leaf's own
    comparison, not what the claim needs of it (under ``not``/``any`` that differs); ``fmt`` formats numbers."""
    value, op, threshold, outcome = ev.get("value"), ev.get("op"), ev.get("threshold"), ev.get("outcome")
    if outcome == MISSING or value is None:
        return "not measured in this result"
    v, t = _shown(value, fmt), _shown(threshold, fmt)
    if op in ORDER_OPS and isinstance(threshold, str):  # another fact ("2 x timing.b (= 0.0012)"): no quotes
        t = threshold
    spread = ev.get("spread")
    over = ev.get("spread_over") if isinstance(ev.get("spread_over"), str) else "rounds"
    rounds = (f" ({over} {_shown(spread[0], fmt)} to {_shown(spread[1], fmt)})"
              if isinstance(spread, (list, tuple)) and len(spread) == 2 else "")
    if outcome == NOISY:
        if rounds:
            return f"= {v}{rounds}: {op} {t} in some {over} only, too noisy to decide"
        return f"= {v}, within the noise margin of {op} {t}: too noisy to decide"
    ok = outcome == TRUE
    if op == "==":
        return f"is {v}" if ok else f"is {v}, not {t}"
    if op == "!=":
        return f"is {v}, not {t}" if ok else f"is {v}, the value the rule excludes"
    if op in MEMBER_OPS:
        one_of = ok == (op == "in")
        return f"is {v}, {'one of' if one_of else 'none of'} {t}"
    return f"= {v}{rounds}, which is {'' if ok else 'not '}{op} {t}"

"""The second front door: a user's own two implementations, from a file (``reportgen check FILE.py``) or from
Python and pytest (``reportgen.check``, ``reportgen.assert_equivalent``). Both build a one-case suite of
``kind: pair`` and run it through the same runner as ``reportgen run``.

A check file defines ``a`` and ``b`` (callables taking the input tensors) and ``inputs`` (a callable returning
them; it may take ``generator``, ``device``, ``dtype``). Optional: a module docstring or ``DESCRIPTION`` (shown in
the report), ``reference`` (a callable, or "float64"/"none"), ``bound`` (a number or a callable), ``backward``
(bool), ``labels`` (``("eager", "compiled")``) and ``claims`` (a list of claim mappings, as in a suite).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from reportgen.errors import UsageError
from reportgen.suite import CaseSpec, SuiteSpec, TimingSpec, Tolerances, _claims, check_device
from reportgen.verdicts import IDENTICAL, WITHIN

_FILE_KEYS = ("a", "b", "inputs")


def suite_from_file(path: str | Path, *, timing: bool = True) -> SuiteSpec:
    """A one-case suite for the check file ``path``; UsageError (exit 2) naming the file and the key."""
    from reportgen import cases as registry
    from reportgen import userload

    p = Path(path)
    where = str(p)
    if p.suffix != ".py":
        raise UsageError(f"{where}: expected a Python file (FILE.py) defining a, b and inputs")
    module = userload.load_file(p, where)
    missing = [k for k in _FILE_KEYS if not hasattr(module, k)]
    if missing:
        raise UsageError(f"{where}: defines no {', '.join(repr(m) for m in missing)} (a check file defines a, b "
                         "and inputs)")
    abs_path = p.expanduser().resolve()
    params: dict[str, Any] = {k: f"{abs_path}:{k}" for k in _FILE_KEYS}
    for key in ("reference", "bound"):
        if hasattr(module, key):
            value = getattr(module, key)
            params[key] = value if isinstance(value, (str, int, float)) or value is None else f"{abs_path}:{key}"
    if hasattr(module, "backward"):
        params["backward"] = getattr(module, "backward")
    labels = getattr(module, "labels", None)
    if labels is not None:
        if not (isinstance(labels, (tuple, list)) and len(labels) == 2 and all(isinstance(x, str) for x in labels)):
            raise UsageError(f"{where}: labels: expected two strings, e.g. ('eager', 'compiled')")
        params["a_label"], params["b_label"] = labels
    description = getattr(module, "DESCRIPTION", None) or (module.__doc__ or "").strip()
    if not isinstance(description, str):
        raise UsageError(f"{where}: DESCRIPTION: expected a string")
    info = registry.get("pair")
    assert info is not None
    merged = {**info.defaults, **params}
    try:
        merged = dict(info.prepare(merged, abs_path.parent)) if info.prepare else merged
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    claims = _claims(getattr(module, "claims", None), f"{where}: claims")
    from reportgen.facts import check_claim_facts
    for claim in claims:
        check_claim_facts(claim.rule, info.facts, f"{where}: claim {claim.id!r}")
    case = CaseSpec(name=abs_path.stem, kind="pair", description=description, devices=("cpu",),
                    dtypes=("float32",), seed=0, params=merged, timing=TimingSpec(enabled=timing), claims=claims)
    return SuiteSpec(name=f"check-{abs_path.stem}"[:64], description=description, path=str(abs_path),
                     cases=(case,))


@dataclass
class CheckResult:
    """What ``reportgen.check`` returns: the pair's verdict and everything measured."""

    verdict: str | None  # worst a-vs-b verdict; None when the check errored
    status: str  # ok | error | skipped
    reason: str | None
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    report: Path | None = None  # report.html, when one was written
    results: Path | None = None

    @property
    def equivalent(self) -> bool:
        """Identical or within rounding: the two sides differ by nothing a summation order cannot explain."""
        return self.status == "ok" and self.verdict in (IDENTICAL, WITHIN)

    def table(self) -> str:
        """The verdict table as text (for an AssertionError or a terminal)."""
        head = f"verdict: {self.verdict or self.status}" + (f" ({self.reason})" if self.reason else "")
        return "\n".join([head, *_rows_text(self.comparisons)])


def _rows_text(comparisons: list[dict[str, Any]]) -> list[str]:
    def g(v: Any) -> str:
        return "—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
    head = f"  {'comparison':<44} {'verdict':<16} {'max |Δ|':>9} {'max rel':>9} {'|Δ|/bound':>9} {'min rtol':>9}"
    rows = [head]
    for c in comparisons:
        extra = f"  (error ratio {c['error_ratio']:.3g})" if c.get("error_ratio") not in (None, 1.0) else ""
        rows.append(f"  {c['name'][:44]:<44} {c['verdict']:<16} {g(c['max_abs']):>9} {g(c.get('max_rel')):>9} "
                    f"{g(c.get('max_normalised')):>9} {g(c.get('min_rtol')):>9}{extra}")
    return rows


def check(a: Any, b: Any, inputs: Callable[..., Any], *, reference: Any = "float64", bound: Any = None,
          backward: bool = False, labels: Sequence[str] = ("", ""), device: str = "cpu", dtype: str = "float32",
          seed: int = 0, timing: bool = False, explain: bool = False, claims: Sequence[Mapping[str, Any]] = (),
          out: str | Path | None = None, formats: Sequence[str] = ("html",), name: str = "check",
          description: str = "") -> CheckResult:
    """Run a pair through the engine from Python. ``a``/``b``/``inputs`` may be callables or references
    (``"pkg.mod:name"``, ``"file.py:name"``). With ``out``, results.json and the reports are written under
    ``out/<run-id>/`` (as ``reportgen run`` does); without, nothing is written. Timing and the kernels/determinism
    sections are off by default here (a test wants the verdict fast); turn them on for a full report."""
    from reportgen import cases as registry
    from reportgen import runner
    from reportgen.suite import DTYPES

    if dtype not in DTYPES:
        raise UsageError(f"check: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    check_device(device, "check: device")
    info = registry.get("pair")
    assert info is not None
    params = {**info.defaults, "a": a, "b": b, "inputs": inputs, "reference": reference, "bound": bound,
              "backward": backward, "a_label": labels[0], "b_label": labels[1], "explain": explain}
    params = dict(info.prepare(params, Path.cwd())) if info.prepare else params
    claim_specs = _claims(list(claims) or None, "check: claims")
    case = CaseSpec(name=name, kind="pair", description=description, devices=(device,), dtypes=(dtype,),
                    seed=seed, params=params, timing=TimingSpec(enabled=timing), tolerances=Tolerances(),
                    claims=claim_specs)
    suite = SuiteSpec(name=name, description=description, path="<python>", cases=(case,))
    if out is None:
        job = runner.plan(suite)[0]
        result = runner.run_job(job, {}, lambda msg: None)
        from reportgen import claims as claims_mod
        evaluated = claims_mod.evaluate(suite, [result]) if claim_specs else []
        return _result(result.status, result.reason, result.comparisons, result.facts, evaluated, None, None)
    run, path = runner.run_suite(suite, Path(out), command=["reportgen.check", name])
    from reportgen.render.files import write_reports
    written = write_reports(run.to_dict(), path.parent, "report", list(formats), force=False)
    result = run.cases[0]
    html = next((p for p in written if p.suffix == ".html"), None)
    return _result(result.status, result.reason, result.comparisons, result.facts, run.claims, html, path)


def _result(status: str, reason: str | None, comparisons: list[dict[str, Any]], facts: dict[str, Any],
            claims: list[dict[str, Any]], report: Path | None, results: Path | None) -> CheckResult:
    return CheckResult(verdict=facts.get("verdict") if status == "ok" else None, status=status, reason=reason,
                       comparisons=comparisons, facts=facts, claims=claims, report=report, results=results)


def assert_equivalent(a: Any, b: Any, inputs: Callable[..., Any], *, out: str | Path | None = None,
                      allow: Sequence[str] = (IDENTICAL, WITHIN), **kwargs: Any) -> CheckResult:
    """``check`` and raise AssertionError (the verdict table and the report's path) unless the pair's verdict is
    in ``allow`` and every claim given holds. On failure a report is written (under ``out``, default a new
    temporary folder) so the message can point at it."""
    result = check(a, b, inputs, **kwargs)
    failed_claims = [c for c in result.claims if c.get("verdict") != "holds"]
    if result.status == "ok" and result.verdict in allow and not failed_claims:
        return result
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="reportgen-check-"))
    written = check(a, b, inputs, out=target, **kwargs)
    lines = [written.table()]
    lines += [f"claim {c['id']}: {c['verdict']}" for c in failed_claims]
    lines.append(f"report: {written.report}")
    raise AssertionError("\n".join(lines))

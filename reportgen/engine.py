"""The pair engine: inputs -> sides -> float64 reference -> bound -> compare -> kernels/determinism -> timing.

Written once, used by every case: the seed cases call its stages (``judge``, ``publish``, ``time_sides``) with their
own inputs, sides and bounds; ``kind: pair``, ``reportgen check FILE.py`` and ``reportgen.check()`` run the whole
pipeline (:func:`run_pair`) on a user's two implementations.

Verdicts use the words of :mod:`reportgen.verdicts`. Where a rounding bound is known (the case's, or the user's)
a comparison is judged against it. Where none is known the engine falls back to the rule torch._dynamo's
``same()`` and Ascend msprobe use: each side's error against the float64 reference is compared with the other
side's, and a side is "within rounding" while its RMS error is no more than ``factor`` times the other's (plus a
floor of one unit roundoff of the reference's RMS, so two correctly rounded sides are not told apart by noise).
The factor is recorded with the verdict.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from reportgen.measure.numerics import Comparison, compare, unit_roundoff
from reportgen.verdicts import IDENTICAL, OUT_OF_BOUND, WITHIN, worst_verdict

#: the metrics a comparison publishes as facts unless a case asks for fewer
DEFAULT_FACT_KEYS = ("verdict", "max_abs", "max_normalised", "max_rel", "max_ulp", "bitwise_equal_fraction",
                     "cosine", "assert_close", "min_rtol", "min_atol")


#: above this relative distance between the float64 reruns of a and b, they are not one function
SAME_FUNCTION_REL = 1e-10


class PairError(RuntimeError):
    """A user's side, inputs or reference cannot be run or compared; the message names which and why."""


# ----------------------------------------------------------------------------------------------- outputs

def flatten(outputs: Any, where: str) -> dict[str, torch.Tensor]:
    """A side's return value as named tensors: a tensor -> {"out"}, a tuple/list -> {"0", "1", ...}, a dict -> its
    keys (nested structures joined with "."). Anything else is a PairError naming ``where``."""
    flat: dict[str, torch.Tensor] = {}

    def walk(obj: Any, name: str) -> None:
        if isinstance(obj, torch.Tensor):
            flat[name or "out"] = obj
        elif isinstance(obj, (tuple, list)):
            if not obj:
                raise PairError(f"{where}: returned an empty {type(obj).__name__}")
            for i, v in enumerate(obj):
                walk(v, f"{name}.{i}" if name else str(i))
        elif isinstance(obj, Mapping):
            if not obj:
                raise PairError(f"{where}: returned an empty mapping")
            for k, v in obj.items():
                walk(v, f"{name}.{k}" if name else str(k))
        else:
            raise PairError(f"{where}: returned {type(obj).__name__}, expected a tensor or a tuple/list/dict of "
                            "tensors")
    walk(outputs, "")
    return flat


def check_same_structure(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], a_name: str,
                         b_name: str) -> None:
    """PairError naming both sides when their outputs differ in names, shapes or dtypes."""
    if list(a) != list(b):
        raise PairError(f"outputs differ in structure: {a_name} returns {_describe(a)}, {b_name} returns "
                        f"{_describe(b)}")
    for k in a:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
            raise PairError(f"output {k!r} differs: {a_name} gives {_tensor_text(a[k])}, {b_name} gives "
                            f"{_tensor_text(b[k])}")


def _tensor_text(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}"


def _describe(flat: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{k}: {_tensor_text(v)}" for k, v in flat.items())


def fingerprint(t: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, on the CPU), so two runs can be checked for the same bits."""
    data = t.detach().contiguous().cpu()
    if data.dtype == torch.bfloat16:
        data = data.view(torch.int16)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- float64 twins

def _modules_in(fn: Any) -> dict[str, nn.Module]:
    """nn.Modules a plain function reaches by a global name it uses or a closure cell."""
    found: dict[str, nn.Module] = {}
    code = getattr(fn, "__code__", None)
    if code is None:
        return found
    for name in code.co_names:
        v = fn.__globals__.get(name)
        if isinstance(v, nn.Module):
            found[name] = v
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            v = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(v, nn.Module):
            found[name] = v
    return found


def float64_twin(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` computing in float64: an nn.Module is deep-copied and converted; a plain function is rebuilt with
    float64 copies of the modules it reaches through its globals and closure (its own code, untouched); a bound
    method of a module runs on a float64 copy of that module. Tensors the code creates itself follow
    ``torch.get_default_dtype()``, which :func:`run_float64` sets to float64 for the call."""
    if isinstance(fn, nn.Module):
        return copy.deepcopy(fn).double()
    if isinstance(fn, types.MethodType) and isinstance(fn.__self__, nn.Module):
        twin = copy.deepcopy(fn.__self__).double()
        return types.MethodType(fn.__func__, twin)
    if isinstance(fn, types.FunctionType):
        mods = _modules_in(fn)
        if not mods:
            return fn
        twins = {name: copy.deepcopy(m).double() for name, m in mods.items()}
        glb = dict(fn.__globals__)
        glb.update({k: v for k, v in twins.items() if k in fn.__code__.co_names})
        closure = None
        if fn.__closure__:
            closure = tuple(types.CellType(twins[n]) if n in twins else c
                            for n, c in zip(fn.__code__.co_freevars, fn.__closure__))
        g = types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, closure)
        g.__kwdefaults__ = fn.__kwdefaults__
        return g
    return fn


def to_float64(inputs: Sequence[Any]) -> list[Any]:
    """Floating-point tensors upcast to float64 (the same rounded values); everything else as is."""
    return [x.detach().double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]


def run_float64(fn: Callable[..., Any], inputs: Sequence[Any]) -> Any:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return fn(*inputs)
    finally:
        torch.set_default_dtype(previous)


def parameters_of(fn: Any) -> dict[str, nn.Parameter]:
    """The trainable parameters a side uses: of the module itself, or of the modules a function reaches."""
    if isinstance(fn, nn.Module):
        return dict(fn.named_parameters())
    if isinstance(fn, types.MethodType) and isinstance(fn.__self__, nn.Module):
        return dict(fn.__self__.named_parameters())
    out: dict[str, nn.Parameter] = {}
    for name, m in _modules_in(fn).items():
        for pn, p in m.named_parameters():
            out[f"{name}.{pn}"] = p
    return out


# ----------------------------------------------------------------------------------------------- judging

def relative_factor(dtype: torch.dtype) -> float:
    """torch._dynamo's ``same()`` multiplier: 2 for float32/float64, 3 for the 16-bit types."""
    return 3.0 if dtype in (torch.float16, torch.bfloat16) else 2.0


def _rms(t: torch.Tensor) -> float:
    t = t.detach().double().cpu()
    t = t[torch.isfinite(t)]
    return float(t.pow(2).mean().sqrt()) if t.numel() else 0.0


def relative_verdicts(errors: Mapping[str, float], floor: float, factor: float) -> dict[str, tuple[str, float]]:
    """Per side: (verdict, error ratio) under the relative rule. A side is within rounding while its RMS error is
    at most ``factor`` x the best side's plus ``floor``; the ratio is its error over the best side's (inf when
    the best side is exact and this one is not, 1.0 for the best side itself)."""
    best = min(errors.values())
    out = {}
    for k, e in errors.items():
        ratio = 1.0 if e == best else (e / best if best > 0 else math.inf)
        out[k] = (WITHIN if e <= factor * best + floor else OUT_OF_BOUND, ratio)
    return out


@dataclass(frozen=True)
class SideOutput:
    """One side's output tensor for one comparison group, with its elementwise bound against the exact value
    (None: no bound known)."""

    key: str  # fact key, e.g. "linear"
    label: str  # display label, e.g. "Linear"
    value: torch.Tensor
    bound: torch.Tensor | float | None = None


def publish(out: Any, prefix: str, c: Comparison, keys: Iterable[str] = DEFAULT_FACT_KEYS) -> None:
    """A comparison's metrics as facts ``<prefix>.<metric>`` (through CaseOutput.fact: declared names only)."""
    for key in keys:
        out.fact(f"{prefix}.{key}", getattr(c, key))


def judge(out: Any, group: str, sides: Sequence[SideOutput], reference: torch.Tensor | None, *,
          desc: str = "", factor: float = 1.0, keys: Iterable[str] = DEFAULT_FACT_KEYS,
          pairs: Sequence[tuple[str, str]] | None = None, fact_prefix: str | None = None,
          ref_key: str = "ref", ref_label: str = "float64 reference", name: str | None = None,
          rel_factor: float | None = None, add: bool = True, pair_desc: str | None = None,
          pair_label: Callable[[SideOutput], str] | None = None) -> dict[str, Comparison]:
    """The compare stage: each side against the float64 reference, then each pair of sides with each other
    (allowed: the sum of their bounds), added to the report under ``group`` and published as facts
    ``<fact_prefix>.<side>_vs_<ref_key>.*`` and ``<fact_prefix>.<a>_vs_<b>.*``.

    Where any side has no bound, the relative rule judges (see the module docstring). ``pair_desc`` describes the
    pairs' (summed) bound, ``pair_label(side)`` names the expected side of a pair (default: its label). Returns
    the comparisons keyed like their facts (``"linear_vs_ref"``, ``"linear_vs_conv1d"``)."""
    keys = tuple(keys)
    prefix = group if fact_prefix is None else fact_prefix
    title = name or group
    by = {s.key: s for s in sides}
    pairs = list(pairs) if pairs is not None else [(sides[i].key, sides[j].key)
                                                    for i in range(len(sides)) for j in range(i + 1, len(sides))]
    results: dict[str, Comparison] = {}
    bounded = all(s.bound is not None for s in sides)
    dtype = sides[0].value.dtype
    if reference is not None:
        for s in sides:
            # no bound: 0 (any difference "exceeds" it; the relative rule below replaces the verdict), so that
            # relative error and ULP still mask only elements near zero, not every element
            c = compare(s.value, reference, (s.bound * factor) if bounded else 0.0,
                        name=f"{title}: {s.label} vs {ref_label}", actual_label=s.label, expected_label=ref_label,
                        bound_desc=desc if bounded else "")
            results[f"{s.key}_vs_{ref_key}"] = c
        if not bounded:
            results.update(_relative(results, sides, reference, ref_key, rel_factor or relative_factor(dtype)))
    for a, b in pairs:
        sa, sb = by[a], by[b]
        bound = (sa.bound + sb.bound) * factor if bounded else 0.0
        lb = pair_label(sb) if pair_label else sb.label
        c = compare(sa.value, sb.value, bound, name=f"{title}: {sa.label} vs {lb}", actual_label=sa.label,
                    expected_label=lb, reference=reference,
                    bound_desc=(desc if pair_desc is None else pair_desc) if bounded else "")
        if not bounded and reference is not None and c.verdict != IDENTICAL:
            va, vb = results[f"{a}_vs_{ref_key}"], results[f"{b}_vs_{ref_key}"]
            worse = max((va, vb), key=lambda v: v.error_ratio or 0.0)
            c = replace(c, verdict=worst_verdict([va.verdict, vb.verdict]) or WITHIN, rule="relative",
                        error_ratio=worse.error_ratio, max_normalised=None, p99_normalised=None,
                        bound_desc=va.bound_desc)
        elif not bounded and c.verdict != IDENTICAL:
            # neither bound nor reference: nothing can say whether the difference is rounding
            c = replace(c, rule="none", max_normalised=None, p99_normalised=None,
                        bound_desc="no bound and no reference: the difference is measured, not judged")
        results[f"{a}_vs_{b}"] = c
    for key, c in results.items():
        if add:
            out.add_comparison(c, group=group)
        publish(out, f"{prefix}.{key}", c, keys)
    return results


def _relative(results: dict[str, Comparison], sides: Sequence[SideOutput], reference: torch.Tensor, ref_key: str,
              factor: float) -> dict[str, Comparison]:
    ref = reference.detach().double().cpu()
    errors = {s.key: _rms(s.value.detach().double().cpu() - ref) for s in sides}
    floor = unit_roundoff(sides[0].value.dtype) * _rms(ref)
    verdicts = relative_verdicts(errors, floor, factor)
    desc = (f"no rounding bound known: relative rule, a side is within rounding while its RMS error against the "
            f"float64 reference is ≤ {factor:g}× the better side's + u·RMS(reference)")
    out = {}
    for s in sides:
        key = f"{s.key}_vs_{ref_key}"
        c = results[key]
        verdict, ratio = verdicts[s.key]
        if c.verdict == IDENTICAL:
            verdict = IDENTICAL
        out[key] = replace(c, verdict=verdict, rule="relative", error_ratio=ratio, max_normalised=None,
                           p99_normalised=None, bound_desc=desc)
    return out


# ----------------------------------------------------------------------------------------------- timing

def time_sides(ctx: Any, out: Any, what: str, fns: Mapping[str, tuple[str, Callable[[], Any]]], base: str, *,
               flops: Mapping[str, float] | None = None, ratios: Sequence[str] | None = None,
               fact_base_median: bool = True, bytes_moved: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Interleaved timing of each side (``fns``: fact key -> (label, callable)) and facts
    ``timing.<what>.<key>_median_s`` (+ ``.noisy``) and ``timing.<what>.<key>_over_<base>`` (+ ``.noisy``,
    ``.per_round_min/max``) for each key in ``ratios`` (default: every side but ``base``). Returns the
    TimingResults by key.

    With ``flops`` and ``bytes_moved`` for a side, its median is also set against the machine's limit, measured in
    this run on the same device and dtype (reportgen.measure.peak): fact ``timing.<what>.<key>.fraction_of_roofline``
    and the timing's ``roofline`` record, so two machines compare by efficiency, not only by seconds."""
    from reportgen.measure.timing import ratio_summary, time_interleaved

    key = what.replace("+", "_")
    ctx.progress(f"timing {what}")
    labels = {k: label for k, (label, _) in fns.items()}
    results = time_interleaved(what, {label: fn for label, fn in fns.values()}, device=ctx.device,
                               rounds=ctx.timing_rounds, min_sample_s=ctx.timing_min_sample_s,
                               noise_iqr=ctx.noise_iqr,
                               flops={labels[k]: f for k, f in (flops or {}).items()})
    by = dict(zip(fns, results))
    for k, r in by.items():
        fl, nbytes = (flops or {}).get(k), (bytes_moved or {}).get(k)
        if fl and nbytes and r.median_s > 0:
            from reportgen.measure.peak import fraction_of_peak, peak_for
            r.roofline = fraction_of_peak(r.median_s, fl, nbytes, peak_for(ctx.device, ctx.dtype))
            out.fact(f"timing.{key}.{k}.fraction_of_roofline", r.roofline["fraction_of_roofline"])
        out.add_timing(r)
        if k != base or fact_base_median:
            out.fact(f"timing.{key}.{k}_median_s", r.median_s)
            out.fact(f"timing.{key}.{k}_median_s.noisy", r.noisy)
    for k in (ratios if ratios is not None else [k for k in fns if k != base]):
        ratio = ratio_summary(by[k], by[base])
        name = f"timing.{key}.{k}_over_{base}"
        out.fact(name, ratio["ratio_of_medians"])
        out.fact(f"{name}.noisy", by[k].noisy or by[base].noisy)
        out.fact(f"{name}.per_round_min", ratio["per_round_min"])
        out.fact(f"{name}.per_round_max", ratio["per_round_max"])
    return by


# ----------------------------------------------------------------------------------------------- provenance

def provenance(obj: Any, redact: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
    """Which code a callable is: ``module:qualname``, its source file (home redacted by ``redact``) and the
    sha256 of that file, so an archived report says what ran."""
    target = obj.func if hasattr(obj, "func") and callable(getattr(obj, "func", None)) else obj
    if isinstance(target, nn.Module):
        target_t: Any = type(target)
    elif isinstance(target, types.MethodType):
        target_t = target.__func__
    else:
        target_t = target
    mod = getattr(target_t, "__module__", None) or "?"
    qual = getattr(target_t, "__qualname__", None) or type(target).__name__
    if mod.startswith("_reportgen_user_"):  # a file imported by path (reportgen.userload): name it by its file
        mod = mod.split("_", 4)[-1] + ".py"
    info: dict[str, Any] = {"name": f"{mod}:{qual}", "file": None, "sha256": None}
    try:
        path = inspect.getsourcefile(target_t)
    except (TypeError, OSError):
        path = None
    if path and Path(path).is_file():
        info["file"] = redact(str(Path(path).resolve()))
        info["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return info


# ----------------------------------------------------------------------------------------------- whole pipeline

@dataclass(frozen=True)
class PairSpec:
    """A user's pair: two callables taking the input tensors, and the inputs' maker."""

    a: Callable[..., Any]
    b: Callable[..., Any]
    inputs: Callable[..., Any]
    a_label: str = "a"
    b_label: str = "b"
    #: "float64" (rerun on float64 copies), a callable (the user's reference, given the float64 inputs) or None
    reference: Any = "float64"
    #: a scalar absolute bound for every element, a callable (inputs, output name, float64 reference) -> bound
    #: tensor, or None: the relative rule judges
    bound: Any = None
    backward: bool = False
    rel_factor: float | None = None
    explain: bool = True
    provenance: Mapping[str, Any] = field(default_factory=dict)


def call_inputs(make: Callable[..., Any], gen: torch.Generator, device: torch.device,
                dtype: torch.dtype) -> list[Any]:
    """Call the user's ``inputs`` with whichever of ``generator``/``gen``, ``device``, ``dtype`` it accepts (by
    name), and return a list (a single tensor becomes a one-element list)."""
    try:
        params = inspect.signature(make).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    for name in params:
        if name in ("generator", "gen", "g", "rng"):
            kwargs[name] = gen
        elif name == "device":
            kwargs[name] = device
        elif name == "dtype":
            kwargs[name] = dtype
    made = make(**kwargs)
    if isinstance(made, torch.Tensor):
        made = [made]
    if not isinstance(made, (tuple, list)) or not made:
        raise PairError(f"inputs: returned {type(made).__name__}, expected a tensor or a non-empty tuple/list")
    # cast floating inputs the user left in another dtype, put everything on the device
    out = []
    for x in made:
        if isinstance(x, torch.Tensor):
            x = x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
        out.append(x)
    return out


def _call(fn: Callable[..., Any], inputs: Sequence[Any], where: str) -> Any:
    try:
        return fn(*inputs)
    except PairError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PairError(f"{where} raised {type(exc).__name__}: {first}") from exc


def _prepare(fn: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """A module side moved to the case's device and dtype (a copy: the user's object is left alone)."""
    if isinstance(fn, nn.Module):
        return copy.deepcopy(fn).to(device=device, dtype=dtype)
    return fn


def run_pair(ctx: Any, out: Any, spec: PairSpec) -> dict[str, Any]:
    """The whole pipeline for a user's pair; facts under ``fwd.``, ``grad.``, ``verdict``, ``reference.``,
    ``kernels.``, ``determinism.`` and ``timing.``. Returns {"comparisons": {...}, "verdict": str}."""
    dtype, device = ctx.dtype, ctx.device
    la, lb = spec.a_label, spec.b_label
    a, b = _prepare(spec.a, device, dtype), _prepare(spec.b, device, dtype)
    inputs = call_inputs(spec.inputs, ctx.generator(0), device, dtype)
    ctx.progress("sides")

    def fresh(requires_grad: bool) -> list[Any]:
        return [x.detach().clone().requires_grad_(requires_grad)
                if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]

    xa, xb = fresh(spec.backward), fresh(spec.backward)
    ya = flatten(_call(a, xa, f"a ({la})"), f"a ({la})")
    yb = flatten(_call(b, xb, f"b ({lb})"), f"b ({lb})")
    check_same_structure(ya, yb, f"a ({la})", f"b ({lb})")
    for k, t in ya.items():
        if not t.is_floating_point():
            raise PairError(f"output {k!r} is {t.dtype}: only floating-point outputs can be compared")

    ctx.progress("float64 reference")
    ref, x64 = _reference(spec, a, b, inputs, ya, out)
    outputs = list(ya)
    multi = len(outputs) > 1
    comparisons: dict[str, Comparison] = {}
    bounds: dict[str, Any] = {}  # per output: the user's bound callable runs once, reused by the determinism check
    for name in outputs:
        bound = bounds[name] = _bound(spec, x64, name, ref.get(name) if ref else None)
        sides = [SideOutput("a", la, ya[name].detach(), bound), SideOutput("b", lb, yb[name].detach(), bound)]
        group = f"fwd.{name}" if multi else "fwd"
        got = judge(out, group, sides, ref.get(name) if ref else None, desc=_bound_desc(spec, bound),
                    factor=ctx.bound_factor, rel_factor=spec.rel_factor, name=f"output {name}" if multi else
                    "forward")
        comparisons.update({f"{group}.{k}": v for k, v in got.items()})
        out.fact(f"{group}.a_sha256", fingerprint(ya[name]))
        out.fact(f"{group}.b_sha256", fingerprint(yb[name]))
    if spec.backward:
        ctx.progress("gradients")
        comparisons.update(_gradients(ctx, out, spec, a, b, inputs, xa, xb, ya, yb))
    pair_verdicts = [c.verdict for k, c in comparisons.items() if k.endswith(".a_vs_b")]
    verdict = worst_verdict(pair_verdicts) or IDENTICAL
    out.fact("verdict", verdict)
    side_err = {s: max((c.max_abs for k, c in comparisons.items() if k.endswith(f".{s}_vs_ref")), default=None)
                for s in ("a", "b")}
    if side_err["a"] is not None and side_err["b"] is not None and side_err["a"] != side_err["b"]:
        out.fact("worse_side", "a" if side_err["a"] > side_err["b"] else "b")
    else:
        out.fact("worse_side", None)

    first = outputs[0]
    if spec.explain and not getattr(ctx, "robustness_run", False):
        def side_fn(fn: Any, xs: list[Any]) -> Callable[[], torch.Tensor]:
            return lambda: _cat(flatten(fn(*[x.detach() if isinstance(x, torch.Tensor) else x for x in xs]),
                                        "side"))
        bound_cat = None
        b0 = bounds[first]
        if b0 is not None and not multi:
            bound_cat = torch.as_tensor(b0, dtype=torch.float64).expand(ya[first].shape) * ctx.bound_factor
        out.explain(ctx, {la: side_fn(a, inputs), lb: side_fn(b, inputs)}, bound_cat)
    if ctx.timing_enabled and not getattr(ctx, "robustness_run", False):
        _timing(ctx, out, spec, a, b, inputs)
    return {"comparisons": comparisons, "verdict": verdict}


def _cat(flat: Mapping[str, torch.Tensor]) -> torch.Tensor:
    ts = list(flat.values())
    return ts[0] if len(ts) == 1 else torch.cat([t.reshape(-1) for t in ts])


def _reference(spec: PairSpec, a: Any, b: Any, inputs: list[Any], ya: Mapping[str, torch.Tensor],
               out: Any) -> tuple[dict[str, torch.Tensor] | None, list[Any]]:
    x64 = to_float64(inputs)
    if spec.reference is None:
        out.fact("reference.kind", "none")
        return None, x64
    if spec.reference == "float64":
        with torch.no_grad():
            ra = flatten(_call(float64_twin(a), x64, "the float64 rerun of a"), "the float64 rerun of a")
            rb = flatten(_call(float64_twin(b), x64, "the float64 rerun of b"), "the float64 rerun of b")
        out.fact("reference.kind", "float64")
        # Two formulations that are mathematically equal agree in float64 to about float64's rounding; a large
        # distance means they compute different functions (an approximation), whatever float32 shows.
        dist = max(_rel_dist(ra[k], rb[k]) for k in ra) if list(ra) == list(rb) else None
        out.fact("reference.twins_max_rel", dist)
        # float64 rounding of even a million-term sum stays far below 1e-10 relative: above it the two sides
        # compute different functions (an approximation, a bug), not two summation orders of one
        out.fact("reference.same_function", None if dist is None else dist <= SAME_FUNCTION_REL)
        ref = ra
    else:
        with torch.no_grad():
            ref = flatten(_call(spec.reference, x64, "reference"), "reference")
        out.fact("reference.kind", "callable")
        out.fact("reference.twins_max_rel", None)
        out.fact("reference.same_function", None)
    if list(ref) != list(ya):
        raise PairError(f"reference returns {_describe(ref)}, the sides return {_describe(ya)}")
    for k in ref:
        if ref[k].shape != ya[k].shape:
            raise PairError(f"reference output {k!r} has shape {list(ref[k].shape)}, the sides "
                            f"{list(ya[k].shape)}")
    return {k: v.detach().double() for k, v in ref.items()}, x64


def _rel_dist(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    scale = float(torch.maximum(x.abs(), y.abs()).max()) if x.numel() else 0.0
    return float((x - y).abs().max()) / scale if scale > 0 else 0.0


def _bound(spec: PairSpec, x64: list[Any], name: str, ref: torch.Tensor | None) -> torch.Tensor | float | None:
    if spec.bound is None:
        return None
    if callable(spec.bound):
        got = spec.bound(x64, name, ref)
        return got if isinstance(got, torch.Tensor) else float(got)
    return float(spec.bound)


def _bound_desc(spec: PairSpec, bound: Any) -> str:
    if bound is None:
        return ""
    return "the user's bound" if callable(spec.bound) else f"the user's bound: |Δ| ≤ {float(spec.bound):.3g}"


def _gradients(ctx: Any, out: Any, spec: PairSpec, a: Any, b: Any, inputs: list[Any], xa: list[Any],
               xb: list[Any], ya: Mapping[str, torch.Tensor], yb: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Gradients of <y, g> (g a fixed random cotangent per output, the same for every side) w.r.t. the inputs
    and each side's parameters; each side's against its own float64 twin's, and a vs b where names and sizes
    match. The relative rule judges (a gradient's rounding bound depends on the whole backward graph)."""
    gen = ctx.generator(1)
    cot = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in ya.items()}
    def backward(y: Mapping[str, torch.Tensor], params: Mapping[str, nn.Parameter]) -> dict[str, torch.Tensor]:
        # Sides may share parameters (b = torch.compile(model) shares model's): each side's gradients are taken
        # from zero and copied out before the next side accumulates into the same .grad.
        for p in params.values():
            p.grad = None
        loss = sum((t * cot[k].to(t.device, t.dtype)).sum() for k, t in y.items() if t.requires_grad)
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            loss.backward()
        return {n: p.grad.detach().clone() for n, p in params.items() if p.grad is not None}

    ta, tb = float64_twin(a), float64_twin(b)
    pa, pb, pa64, pb64 = parameters_of(a), parameters_of(b), parameters_of(ta), parameters_of(tb)
    ga, gb = backward(ya, pa), backward(yb, pb)
    x64a = [x.detach().double().requires_grad_(True) if isinstance(x, torch.Tensor) and x.is_floating_point()
            else x for x in inputs]
    x64b = [x.detach().double().requires_grad_(True) if isinstance(x, torch.Tensor) and x.is_floating_point()
            else x for x in inputs]
    ga64 = backward(flatten(run_float64(ta, x64a), "a64"), pa64)
    gb64 = backward(flatten(run_float64(tb, x64b), "b64"), pb64)
    results: dict[str, Any] = {}
    for i, (ia, ib) in enumerate(zip(xa, xb)):
        if not isinstance(ia, torch.Tensor) or ia.grad is None or ib.grad is None:
            continue
        sides = [SideOutput("a", spec.a_label, ia.grad), SideOutput("b", spec.b_label, ib.grad)]
        got = judge(out, f"grad.input{i}", sides, x64a[i].grad, rel_factor=spec.rel_factor,
                    name=f"gradient of input {i}")
        results.update({f"grad.input{i}.{k}": v for k, v in got.items()})
    for side, grads, twins in (("a", ga, ga64), ("b", gb, gb64)):
        label = spec.a_label if side == "a" else spec.b_label
        for pname, g in grads.items():
            if pname not in twins:
                continue
            c = compare(g, twins[pname], 0.0, name=f"gradient of {label}.{pname} vs float64",
                        actual_label=label, expected_label="float64 twin")
            # facts only: with no other side to weigh it against, a verdict would say nothing
            publish(out, f"grad.param.{side}.{_key(pname)}", c, ("max_abs", "max_rel", "bitwise_equal_fraction",
                                                                  "min_rtol", "min_atol"))
    for pname, g in ga.items():  # a vs b where both sides have a parameter of that name and size
        h = gb.get(pname)
        if h is None or g.numel() != h.numel() or pname not in ga64:
            continue
        sides = [SideOutput("a", spec.a_label, g), SideOutput("b", spec.b_label, h.reshape(g.shape))]
        got = judge(out, f"grad.{_key(pname)}", sides, ga64[pname], rel_factor=spec.rel_factor,
                    name=f"gradient of {pname}")
        results.update({f"grad.{_key(pname)}.{k}": v for k, v in got.items()})
    return results


def _key(name: str) -> str:
    return name.replace(".", "_")


def _timing(ctx: Any, out: Any, spec: PairSpec, a: Any, b: Any, inputs: list[Any]) -> None:
    xs = [x.detach() if isinstance(x, torch.Tensor) else x for x in inputs]

    def fwd(fn: Any) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return fn(*xs)
        return run
    flops, nbytes = {}, {}
    for key, fn in (("a", a), ("b", b)):
        counted = count_flops(fwd(fn))
        if counted:  # FLOPs torch's counter knows (matmul, conv, ...): then the roofline says something
            flops[key] = counted
            nbytes[key] = float(sum(x.numel() * x.element_size() for x in xs if isinstance(x, torch.Tensor)) +
                                sum(t.numel() * t.element_size() for t in flatten(fwd(fn)(), "side").values()))
    time_sides(ctx, out, "forward", {"a": (spec.a_label, fwd(a)), "b": (spec.b_label, fwd(b))}, "a",
               ratios=["b"], flops=flops, bytes_moved=nbytes)


def count_flops(fn: Callable[[], Any]) -> float | None:
    """FLOPs of one call as torch.utils.flop_counter counts them (matmuls, convolutions; elementwise ops are not
    counted); None when it counts none or cannot run."""
    from torch.utils.flop_counter import FlopCounterMode
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    except Exception:  # compiled graphs and custom ops the counter cannot trace: no roofline, not an error
        return None
    total = counter.get_total_flops()
    return float(total) if total else None

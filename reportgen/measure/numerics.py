"""Compare tensors against each other and against a float64 reference, in units of a rounding-error bound.

The bound is the classical one for inner products (Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1):
``|fl(x.w + b) - (x.w + b)| <= gamma_n * (|x|.|w| + |b|)`` with ``gamma_n = n*u / (1 - n*u)``, ``n`` the number of
terms summed (K products, plus one for a bias) and ``u`` the unit roundoff of the dtype. It holds for any summation
order, blocking or FMA use, which is exactly why two kernels may disagree *within* it. When two results are each
within their bound of the same exact value, their difference is within the sum of the two bounds.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reportgen.verdicts import IDENTICAL, OUT_OF_BOUND, WITHIN

#: Unit roundoff u = 2**-p for p significand bits (round to nearest).
UNIT_ROUNDOFF: dict[torch.dtype, float] = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}

_INT_VIEW = {torch.float64: torch.int64, torch.float32: torch.int32,
             torch.float16: torch.int16, torch.bfloat16: torch.int16}



def unit_roundoff(dtype: torch.dtype) -> float:
    return UNIT_ROUNDOFF[dtype]


def gamma(n: int, dtype: torch.dtype) -> float:
    """gamma_n for ``dtype``; ``inf`` once n*u >= 1 (the bound says nothing any more)."""
    nu = n * unit_roundoff(dtype)
    return nu / (1.0 - nu) if nu < 1.0 else math.inf


def matmul_bound(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise float64 bound on the rounding error of ``a @ b (+ bias)`` computed in ``dtype``.

    ``a`` is (..., n) and ``b`` is (n, m); the bound is ``gamma_{n(+1)} * (|a| @ |b| + |bias|)``.
    """
    n = a.shape[-1] + (1 if bias is not None else 0)
    scale = a.double().abs() @ b.double().abs()
    if bias is not None:
        scale = scale + bias.double().abs()
    return gamma(n, dtype) * scale


def conv1d_bound(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype,
                 **conv_kwargs: Any) -> torch.Tensor:
    """Elementwise float64 bound on the rounding error of ``F.conv1d(x, w, bias, **conv_kwargs)`` in ``dtype``.

    Each output is a dot product of ``C_in/groups * k`` products (plus the bias), so the inner-product bound
    ``gamma_n * (conv1d(|x|, |w|) + |bias|)`` holds for any summation order or blocking; zero padding adds zero
    terms, so ``conv_kwargs`` (padding including ``'same'``, dilation, groups) pass straight through. Computed on
    the CPU, where float64 convolution is exact enough to be the scale."""
    n = w.shape[1] * w.shape[2] + (1 if bias is not None else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about an extra padded copy
        scale = F.conv1d(x.detach().double().abs().cpu(), w.detach().double().abs().cpu(),
                         None if bias is None else bias.detach().double().abs().cpu(), **conv_kwargs)
    return gamma(n, dtype) * scale


def ordered_bits(t: torch.Tensor) -> torch.Tensor:
    """Map floats to int64 so that adjacent floats are adjacent integers (and -0 == +0)."""
    bits = t.contiguous().view(_INT_VIEW[t.dtype]).to(torch.int64)
    sign_bit = 1 << (torch.finfo(t.dtype).bits - 1)
    return torch.where(bits < 0, -(bits + sign_bit), bits)


def ulp_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """How many representable values of their (shared) dtype lie between a and b."""
    if a.dtype != b.dtype:
        raise ValueError(f"ulp_distance needs one dtype, got {a.dtype} and {b.dtype}")
    return (ordered_bits(a) - ordered_bits(b)).abs()


@dataclass(frozen=True)
class Comparison:
    """One actual-vs-expected comparison with every metric the report shows. Plain data, JSON-ready."""

    name: str
    actual: str
    expected: str
    dtype: str
    numel: int
    max_abs: float
    mean_abs: float
    p99_abs: float
    max_normalised: float | None  # max |delta| / bound; None where the bound is vacuous (n*u >= 1)
    p99_normalised: float | None
    max_rel: float | None  # over elements that are not near zero (see masked)
    median_rel: float | None
    masked: int  # elements left out of rel/ULP: |reference| <= max(bound, sqrt(u)*max|reference|)
    max_ulp: int | None
    median_ulp: float | None
    bitwise_equal_fraction: float
    cosine: float | None
    assert_close: bool  # torch.testing.assert_close with the dtype's default tolerances
    nonfinite_mismatch: int
    bound_max: float | None
    bound_desc: str
    verdict: str
    #: the smallest tolerances torch.testing.assert_close would pass with (Polygraphy's "minimum required
    #: tolerance"): rtol with atol = 0, and atol with rtol = 0; None where none would (a non-finite mismatch)
    min_rtol: float | None = None
    min_atol: float | None = None
    #: how the verdict was reached: "bound" (|Δ| against a rounding bound) or "relative" (no bound known: each
    #: side's error against the reference compared with the other side's, see engine.relative_verdicts)
    rule: str = "bound"
    #: relative rule only: this side's RMS error over the other side's (or the worse side's over the better one)
    error_ratio: float | None = None
    # Fingerprints of the two sides' output bits (sha256 of the contiguous CPU tensor's bytes), so that two
    # devices that should agree can be checked bit for bit without shipping tensors (reportgen compare, fleet).
    # Defaults: results archived before fingerprints existed, and Comparisons built without tensors.
    shape: tuple[int, ...] = ()
    actual_sha256: str | None = None
    expected_sha256: str | None = None
    expected_dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(t: torch.Tensor) -> str:
    """sha256 of ``t``'s bytes as a contiguous CPU tensor in its own dtype (with shape and dtype recorded beside
    it, equal fingerprints mean bitwise-equal tensors; NaN payloads and the sign of zero count, as bits do)."""
    data = t.detach().cpu().contiguous().reshape(-1)  # 1-D: a 0-dim tensor cannot be viewed as bytes
    # Through uint8 rather than numpy: bfloat16 has no numpy dtype.
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest()


def _percentile(values: np.ndarray, q: float) -> float:
    if not values.size:
        return 0.0
    with np.errstate(invalid="ignore"):  # inf entries (a difference against a zero bound) interpolate to nan
        v = float(np.percentile(values, q))
    return float("inf") if np.isnan(v) else v


def compare(actual: torch.Tensor, expected: torch.Tensor, bound: torch.Tensor | float, *, name: str,
            actual_label: str, expected_label: str, reference: torch.Tensor | None = None,
            bound_desc: str = "") -> Comparison:
    """Compare ``actual`` to ``expected`` (same dtype, or a float64 reference) in units of ``bound``.

    ``bound`` is an elementwise (or scalar) float64 bound on ``|actual - expected|`` that any correct
    implementation satisfies. ``reference`` (float64) decides which elements are near zero for relative error
    and ULP distance; by default ``expected`` itself. Bitwise/ULP metrics compare in ``actual``'s dtype, so
    against a float64 reference they measure distance from the correctly rounded result.
    """
    a = actual.detach().cpu()
    e = expected.detach().cpu()
    if a.shape != e.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(a.shape)} vs {tuple(e.shape)}")
    ref = (reference if reference is not None else e).detach().cpu().double()
    e_rounded = e.to(a.dtype)
    bound_t = torch.as_tensor(bound, dtype=torch.float64).cpu().expand(a.shape)

    finite = torch.isfinite(a) & torch.isfinite(e)
    nonfinite_mismatch = int(((~torch.isfinite(a)) != (~torch.isfinite(e))).sum())
    delta = (a.double() - e.double()).abs()[finite]
    b = bound_t[finite]
    delta_np = delta.numpy()

    vacuous = not bool(torch.isfinite(b).all())
    if vacuous:
        norm = None
    else:
        # 0/0 (exact zero bound and no difference) is 0; x/0 is inf: a difference where none is allowed.
        norm_t = torch.where(delta == 0, torch.zeros_like(delta), delta / b)
        norm = norm_t.numpy()

    # Near zero: |ref| within its own error bound (not even its sign is determined) or below sqrt(u)*max|ref|.
    # There cancellation, not the kernel, drives relative error and ULP distance, so those elements are counted
    # apart ("masked") instead of swamping the statistics.
    ref_abs = ref.abs()[finite]
    floor = math.sqrt(unit_roundoff(a.dtype)) * float(ref_abs.max()) if ref_abs.numel() else 0.0
    mask = (ref_abs > b) & (ref_abs > floor)
    masked = int(delta.numel() - int(mask.sum()))
    rel = (delta[mask] / ref_abs[mask]).numpy()
    ulp = ulp_distance(a[finite], e_rounded[finite])[mask].double().numpy()

    bitwise = float((ordered_bits(a) == ordered_bits(e_rounded)).double().mean()) if a.numel() else 1.0
    a64, e64 = a.double().flatten(), e.double().flatten()
    denom = float(a64.norm() * e64.norm())
    cosine = float(a64 @ e64) / denom if denom > 0 and math.isfinite(denom) else None
    try:
        torch.testing.assert_close(a.double() if a.dtype == torch.float64 else a, e.to(a.dtype),
                                   equal_nan=True)
        close = True
    except AssertionError:
        close = False

    min_rtol, min_atol = minimum_tolerance(a, e)

    if bitwise == 1.0 and nonfinite_mismatch == 0:
        verdict = IDENTICAL
    elif norm is not None and nonfinite_mismatch == 0 and (norm.size == 0 or float(norm.max()) <= 1.0):
        verdict = WITHIN
    elif norm is None and nonfinite_mismatch == 0:
        verdict = WITHIN  # vacuous bound: any finite difference is "within"; the report says the bound is vacuous
    else:
        verdict = OUT_OF_BOUND

    return Comparison(
        name=name, actual=actual_label, expected=expected_label, dtype=str(a.dtype).removeprefix("torch."),
        numel=a.numel(),
        max_abs=float(delta_np.max()) if delta_np.size else 0.0,
        mean_abs=float(delta_np.mean()) if delta_np.size else 0.0,
        p99_abs=_percentile(delta_np, 99),
        max_normalised=None if norm is None else (float(norm.max()) if norm.size else 0.0),
        p99_normalised=None if norm is None else _percentile(norm, 99),
        max_rel=float(rel.max()) if rel.size else None,
        median_rel=float(np.median(rel)) if rel.size else None,
        masked=masked,
        max_ulp=int(ulp.max()) if ulp.size else None,
        median_ulp=float(np.median(ulp)) if ulp.size else None,
        bitwise_equal_fraction=bitwise,
        cosine=cosine,
        assert_close=close,
        nonfinite_mismatch=nonfinite_mismatch,
        bound_max=None if vacuous else float(b.max()) if b.numel() else 0.0,
        bound_desc=bound_desc,
        verdict=verdict,
        min_rtol=min_rtol,
        min_atol=min_atol,
        shape=tuple(a.shape),
        actual_sha256=fingerprint(a),
        expected_sha256=fingerprint(e),
        expected_dtype=str(e.dtype).removeprefix("torch."),
    )


def minimum_tolerance(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float | None, float | None]:
    """The smallest ``rtol`` (with ``atol=0``) and ``atol`` (with ``rtol=0``) for which
    ``torch.testing.assert_close(actual, expected, rtol=..., atol=...)`` passes (NaNs compared equal).

    assert_close passes where ``|a - e| <= atol + rtol * |e|``: with atol = 0 that is ``max |a - e| / |e|`` (inf
    when some ``e`` is 0 and ``a`` is not), with rtol = 0 it is ``max |a - e|``. Both are computed in float64 from
    ``actual`` and ``expected`` as given (``expected`` rounded to ``actual``'s dtype, as assert_close compares).
    None when no finite tolerance passes: a value non-finite on one side only, or infinities of opposite sign."""
    a = actual.detach().cpu()
    e = expected.detach().cpu().to(a.dtype).double()
    a = a.double()
    both_nan = torch.isnan(a) & torch.isnan(e)
    same_inf = torch.isinf(a) & torch.isinf(e) & (a == e)
    skip = both_nan | same_inf
    finite = torch.isfinite(a) & torch.isfinite(e)
    if bool((~finite & ~skip).any()):
        return None, None
    d = (a - e).abs()[finite]
    ref = e.abs()[finite]
    if d.numel() == 0:
        return 0.0, 0.0
    atol = float(d.max())
    nz = d > 0
    if not bool(nz.any()):
        return 0.0, 0.0
    rtol = math.inf if bool((ref[nz] == 0).any()) else float((d[nz] / ref[nz]).max())
    return rtol, atol


def log10_abs_histogram(delta: torch.Tensor, bins: int = 40) -> dict[str, Any]:
    """Histogram of log10|delta| over the non-zero differences, plus how many were exactly zero."""
    d = delta.detach().cpu().double().abs().flatten()
    nonzero = d[d > 0]
    zeros = int(d.numel() - nonzero.numel())
    if nonzero.numel() == 0:
        return {"edges": [], "counts": [], "zeros": zeros, "total": int(d.numel())}
    logs = nonzero.log10().numpy()
    counts, edges = np.histogram(logs, bins=bins)
    return {"edges": [float(x) for x in edges], "counts": [int(c) for c in counts], "zeros": zeros,
            "total": int(d.numel())}

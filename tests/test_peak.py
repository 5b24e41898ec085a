"""In-run peaks and roofline: structure and sanity on tiny sizes (a tiny size measures overheads, not limits)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from reportgen.measure.peak import Peak, fraction_of_peak, measure_peak, roofline_s, tensor_bytes


def _peak(**kw) -> Peak:
    return measure_peak("cpu", torch.float32, gemm_n=64, copy_bytes=1 << 20, repeats=2, **kw)


def test_tiny_peak_structure():
    p = _peak()
    assert p.gemm_n == 64 and p.copy_bytes == 1 << 20 and len(p.gemm_s) == 2 and len(p.copy_s) == 2
    # the peak is the best repeat: 2 n^3 FLOPs over the fastest GEMM, 2 x buffer over the fastest copy
    assert p.flops_per_s == pytest.approx(2 * 64 ** 3 / min(p.gemm_s))
    assert p.bytes_per_s == pytest.approx(2 * (1 << 20) / min(p.copy_s))
    assert 0 < p.flops_per_s < 1e16 and 0 < p.bytes_per_s < 1e14  # finite, physical
    d = p.to_dict()
    assert d["dtype"] == "float32" and d["device"] == "cpu" and d["ridge_flops_per_byte"] > 0


def test_calibrated_peak_is_bounded_in_time():
    t0 = time.perf_counter()
    p = measure_peak("cpu", torch.float32, target_s=0.05, repeats=1)
    took = time.perf_counter() - t0
    assert p.gemm_n % 64 == 0 and p.copy_bytes >= 64 << 20  # copy sized past the caches
    assert took < 30  # calibration keeps it near the target even on a loaded machine (generous)


def test_roofline_is_the_binding_limit():
    p = Peak(device="cpu", dtype="float32", flops_per_s=1e11, bytes_per_s=1e10, gemm_n=64, copy_bytes=1)
    assert roofline_s(1e9, 1e6, p) == pytest.approx(1e-2)  # compute-bound: 1e9 / 1e11
    assert roofline_s(1e6, 1e9, p) == pytest.approx(1e-1)  # memory-bound: 1e9 / 1e10
    assert roofline_s(1e9, 1e8, p) == max(1e9 / 1e11, 1e8 / 1e10)
    with pytest.raises(ValueError):
        roofline_s(-1, 0, p)
    f = fraction_of_peak(0.02, 1e9, 1e6, p)
    assert f["bound"] == "compute" and f["fraction_of_roofline"] == pytest.approx(0.5)
    assert f["fraction_of_peak_flops"] == pytest.approx(0.5) and f["arithmetic_intensity"] == pytest.approx(1e3)
    assert fraction_of_peak(0.2, 1e6, 1e9, p)["bound"] == "memory"
    with pytest.raises(ValueError):
        fraction_of_peak(0.0, 1, 1, p)


def test_real_op_as_fraction_of_measured_peak():
    p = _peak()
    x, w = torch.randn(128, 256, 8), torch.randn(32, 8)
    y = torch.nn.functional.linear(x, w)
    t0 = time.perf_counter()
    for _ in range(20):
        torch.nn.functional.linear(x, w)
    per_call = (time.perf_counter() - t0) / 20
    f = fraction_of_peak(per_call, 2 * x.numel() * 32, tensor_bytes(x, w, y, None), p)
    assert tensor_bytes(x, w, y) == (x.numel() + w.numel() + y.numel()) * 4
    assert f["roofline_s"] > 0 and math.isfinite(f["fraction_of_roofline"])
    # in (0, something]: not above what a cache-resident op could plausibly beat a tiny DRAM probe by
    assert 0 < f["fraction_of_roofline"] < 1e3


def test_bad_arguments():
    with pytest.raises(ValueError):
        measure_peak("cpu", repeats=0)
    with pytest.raises(ValueError):
        measure_peak("cpu", target_s=float("nan"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CI has no GPU)")
def test_cuda_peak_tiny():
    p = measure_peak("cuda", torch.float32, gemm_n=256, copy_bytes=1 << 22, repeats=2)
    assert p.device.startswith("cuda") and p.flops_per_s > 0 and p.bytes_per_s > 0

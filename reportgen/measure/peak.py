"""Distance to the machine's limit: in-run peaks (GEMM FLOP/s, copy bytes/s) and the roofline time of an op.

A timing in seconds says little across machines: 0.4 ms may be 80 % of one CPU's limit and 3 % of a GPU's. So
the peak is *measured in the same run*, on the same device and dtype, with the two operations that reach it in
practice -- a large square GEMM (``2 n^3`` FLOPs) for arithmetic and a large ``copy_`` (reads + writes) for
memory bandwidth -- and an op's timing is expressed as a fraction of its roofline time

    roofline_s = max(flops / peak_flops_per_s, bytes / peak_bytes_per_s)

(the least time the op could take if it ran at the machine's measured arithmetic *or* memory limit, whichever
binds). ``fraction = roofline_s / measured_s`` is in (0, 1] for an op that streams its data from memory; it can
exceed 1 when the op's data stays in a cache the copy's buffers do not fit (the copy measures DRAM bandwidth by
design: its buffers are sized past the last-level cache).

Sizes are calibrated from a small probe so that the whole measurement takes about ``target_s`` (0.2-0.5 s on a
CPU); every repeat's seconds are kept, and the peak is the best repeat (a peak is a maximum, not a typical value).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

#: the copy's buffers are at least this large, past any CPU's last-level cache (and a GPU's L2)
MIN_COPY_BYTES = 64 << 20
_MAX_COPY_BYTES = {"cpu": 512 << 20, "cuda": 4 << 30}
_MAX_GEMM_N = {"cpu": 4096, "cuda": 16384}
#: below these a GEMM measures call overhead and cache effects, not the arithmetic limit: never calibrate under
_MIN_GEMM_N = {"cpu": 512, "cuda": 2048}


@dataclass
class Peak:
    device: str
    dtype: str
    flops_per_s: float
    bytes_per_s: float
    gemm_n: int
    copy_bytes: int  # size of one buffer; a copy moves 2x this (read + write)
    gemm_s: list[float] = field(default_factory=list)  # seconds of each repeat
    copy_s: list[float] = field(default_factory=list)
    num_threads: int = 1
    elapsed_s: float = 0.0

    @property
    def ridge_flops_per_byte(self) -> float:
        """Arithmetic intensity above which an op is compute-bound on this machine."""
        return self.flops_per_s / self.bytes_per_s

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype, "flops_per_s": self.flops_per_s,
                "bytes_per_s": self.bytes_per_s, "gemm_n": self.gemm_n, "copy_bytes": self.copy_bytes,
                "gemm_s": list(self.gemm_s), "copy_s": list(self.copy_s), "num_threads": self.num_threads,
                "ridge_flops_per_byte": self.ridge_flops_per_byte, "elapsed_s": self.elapsed_s,
                "method": "best of repeats: square GEMM (2 n^3 FLOPs), copy_ (2 x buffer bytes)"}


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _gemm_n(device: torch.device, dtype: torch.dtype, per_op_s: float) -> int:
    """n whose n x n GEMM takes about ``per_op_s``, from a 256 probe (time ~ n^3), multiple of 64."""
    n0 = 256
    a = torch.randn(n0, n0, device=device).to(dtype)
    _timed(lambda: a @ a, device)  # first call: library init, thread pool start
    t0 = min(_timed(lambda: a @ a, device) for _ in range(3))
    n = n0 * (per_op_s / max(t0, 1e-7)) ** (1 / 3)
    low = _MIN_GEMM_N.get(device.type, 512)
    return int(min(max(low, round(n / 64) * 64), _MAX_GEMM_N.get(device.type, 4096)))


def _copy_bytes(device: torch.device, per_op_s: float) -> int:
    probe = 16 << 20
    src = torch.empty(probe, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    t0 = min(_timed(lambda: dst.copy_(src), device) for _ in range(3))
    size = probe * per_op_s / max(t0, 1e-7)
    return int(min(max(MIN_COPY_BYTES, size), _MAX_COPY_BYTES.get(device.type, 512 << 20))) // 4096 * 4096


def measure_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *, target_s: float = 0.3,
                 repeats: int = 3, gemm_n: int | None = None, copy_bytes: int | None = None) -> Peak:
    """Measure the GEMM FLOP/s and copy bytes/s of ``device`` in ``dtype`` now, in about ``target_s`` seconds.

    ``gemm_n`` / ``copy_bytes`` fix the sizes instead of calibrating them (tests use tiny ones; a tiny size
    measures overheads and caches, not the machine's limit)."""
    device = torch.device(device)
    if repeats < 1 or not (target_s > 0 and math.isfinite(target_s)):
        raise ValueError(f"repeats must be >= 1 and target_s > 0, got {repeats}, {target_s}")
    t_start = time.perf_counter()
    per_op = target_s / (2 * repeats)  # half the time for the GEMM repeats, half for the copies
    n = gemm_n or _gemm_n(device, dtype, per_op)
    size = copy_bytes or _copy_bytes(device, per_op)
    if n < 1 or size < 1:
        raise ValueError(f"gemm_n and copy_bytes must be positive, got {n}, {size}")
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    torch.matmul(a, b, out=c)  # warm-up at this size
    gemm_s = [_timed(lambda: torch.matmul(a, b, out=c), device) for _ in range(repeats)]
    del a, b, c
    src = torch.ones(size, dtype=torch.uint8, device=device)
    dst = torch.zeros_like(src)
    dst.copy_(src)  # warm-up: fault both buffers in before timing
    copy_s = [_timed(lambda: dst.copy_(src), device) for _ in range(repeats)]
    del src, dst
    return Peak(device=str(device), dtype=str(dtype).removeprefix("torch."), flops_per_s=2.0 * n ** 3 / min(gemm_s),
                bytes_per_s=2.0 * size / min(copy_s), gemm_n=n, copy_bytes=size, gemm_s=gemm_s, copy_s=copy_s,
                num_threads=torch.get_num_threads(), elapsed_s=time.perf_counter() - t_start)


def roofline_s(flops: float, bytes_moved: float, peak: Peak) -> float:
    """Least time for an op of ``flops`` FLOPs moving ``bytes_moved`` bytes at the measured limits."""
    if flops < 0 or bytes_moved < 0:
        raise ValueError(f"flops and bytes must be >= 0, got {flops}, {bytes_moved}")
    return max(flops / peak.flops_per_s, bytes_moved / peak.bytes_per_s)


def tensor_bytes(*tensors: torch.Tensor | None) -> int:
    """Bytes of the given tensors: the least traffic of an op that reads its inputs and writes its outputs once."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def fraction_of_peak(measured_s: float, flops: float, bytes_moved: float, peak: Peak) -> dict[str, Any]:
    """A timing against the machine's limit: roofline time, fraction of it achieved, which limit binds."""
    if not (measured_s > 0 and math.isfinite(measured_s)):
        raise ValueError(f"measured_s must be a positive time, got {measured_s!r}")
    t_compute, t_memory = flops / peak.flops_per_s, bytes_moved / peak.bytes_per_s
    roof = max(t_compute, t_memory)
    return {"measured_s": measured_s, "flops": flops, "bytes": bytes_moved, "roofline_s": roof,
            "fraction_of_roofline": roof / measured_s,
            "bound": "compute" if t_compute >= t_memory else "memory",
            "achieved_flops_per_s": flops / measured_s, "achieved_bytes_per_s": bytes_moved / measured_s,
            "fraction_of_peak_flops": flops / measured_s / peak.flops_per_s,
            "fraction_of_peak_bytes": bytes_moved / measured_s / peak.bytes_per_s,
            "arithmetic_intensity": flops / bytes_moved if bytes_moved else None,
            "peak": {"flops_per_s": peak.flops_per_s, "bytes_per_s": peak.bytes_per_s, "device": peak.device,
                     "dtype": peak.dtype}}


_PEAKS: dict[tuple[str, str, int], Peak] = {}


def peak_for(device: torch.device | str, dtype: torch.dtype) -> Peak:
    """The peak of ``device`` in ``dtype`` at the current thread count, measured once per process (a run's cases
    share it: every timing of the run is then expressed against the same limit)."""
    key = (str(device), str(dtype), torch.get_num_threads())
    if key not in _PEAKS:
        _PEAKS[key] = measure_peak(device, dtype)
    return _PEAKS[key]

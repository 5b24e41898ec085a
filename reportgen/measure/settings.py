"""Every torch setting that changes numerics or determinism, read (best effort) into a flat dict.

Each measurement records the settings it ran under, so a report can say *why* two runs differ. Reads never
fail the run: a missing API (older torch, no CUDA build) gives ``"unavailable: <reason>"``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch


def _fp32_precision(path: str) -> Callable[[], Any]:
    # torch >= 2.9 exposes per-backend fp32_precision attributes ("ieee", "tf32", "none" = inherit).
    def read() -> Any:
        obj: Any = torch.backends
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj.fp32_precision
    return read


_READERS: dict[str, Callable[[], Any]] = {
    "deterministic_algorithms": torch.are_deterministic_algorithms_enabled,
    "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled,
    "deterministic_debug_mode": torch.get_deterministic_debug_mode,
    "fill_uninitialized_memory": lambda: torch.utils.deterministic.fill_uninitialized_memory,
    "float32_matmul_precision": torch.get_float32_matmul_precision,
    "fp32_precision": lambda: torch.backends.fp32_precision,
    "cuda.matmul.fp32_precision": _fp32_precision("cuda.matmul"),
    "cudnn.fp32_precision": _fp32_precision("cudnn"),
    "cudnn.conv.fp32_precision": _fp32_precision("cudnn.conv"),
    "cudnn.rnn.fp32_precision": _fp32_precision("cudnn.rnn"),
    "mkldnn.fp32_precision": _fp32_precision("mkldnn"),
    "mkldnn.matmul.fp32_precision": _fp32_precision("mkldnn.matmul"),
    "mkldnn.conv.fp32_precision": _fp32_precision("mkldnn.conv"),
    "cuda.matmul.allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
    "cuda.matmul.allow_fp16_reduced_precision_reduction":
        lambda: torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
    "cuda.matmul.allow_bf16_reduced_precision_reduction":
        lambda: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
    "cuda.matmul.allow_fp16_accumulation": lambda: torch.backends.cuda.matmul.allow_fp16_accumulation,
    "cudnn.enabled": lambda: torch.backends.cudnn.enabled,
    "cudnn.benchmark": lambda: torch.backends.cudnn.benchmark,
    "cudnn.benchmark_limit": lambda: torch.backends.cudnn.benchmark_limit,
    "cudnn.deterministic": lambda: torch.backends.cudnn.deterministic,
    "cudnn.allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
    "mkldnn.enabled": lambda: torch.backends.mkldnn.enabled,
    "num_threads": torch.get_num_threads,
    "num_interop_threads": torch.get_num_interop_threads,
    "default_dtype": lambda: str(torch.get_default_dtype()).removeprefix("torch."),
    # Environment variables that change numerics without any torch call.
    "env.CUBLAS_WORKSPACE_CONFIG": lambda: os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    "env.NVIDIA_TF32_OVERRIDE": lambda: os.environ.get("NVIDIA_TF32_OVERRIDE"),
}


def unavailable(exc: BaseException) -> str:
    return f"unavailable: {type(exc).__name__}: {exc}"


def capture_settings() -> dict[str, Any]:
    """Read every numerics/determinism setting; never raises."""
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        # Mixing the legacy allow_tf32 flags with fp32_precision warns on newer torch; reading must stay silent.
        warnings.simplefilter("ignore")
        for key, read in _READERS.items():
            try:
                value = read()
            except Exception as exc:  # best effort: an API missing in this torch build
                value = unavailable(exc)
            out[key] = value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
    return out

"""Every torch setting that changes numerics or determinism, read (best effort) into a flat dict.

Each measurement records the settings it ran under, so a report can say *why* two runs differ. Reads never
fail the run: a missing API (older torch, no CUDA build) gives ``"unavailable: <reason>"``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

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
    "mkldnn.deterministic": lambda: torch.backends.mkldnn.deterministic,
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


# ---------------------------------------------------------------------------------------------------------------
# Applying settings for one measurement and restoring the previous state *exactly*.
#
# Why this is more than "save the getters, call the setters": since torch 2.9 the TF32 state lives in two families
# that share storage (aten/src/ATen/Context.cpp):
#   * an fp32_precision tree generic/all -> (cuda|mkldnn)/all -> (cuda|mkldnn)/(matmul|conv|rnn) whose getter
#     *resolves* a "none" node through its parents, so reading a node does not tell whether it is "none" (inherits);
#   * two legacy values, float32_matmul_precision and cuDNN's allow_tf32, whose getters raise when the tree disagrees
#     with them ("mix of the legacy and new APIs"), and whose setters write tree leaves as a side effect.
# Measured on torch 2.13: cuda/conv and cuda/rnn start in a state no setter can recreate: they read "tf32" yet follow a
# parent that is set (a fresh `cudnn.fp32_precision = "ieee"` turns conv to ieee), while a leaf *set* to "tf32" ignores
# its parent. So the snapshot records, per node, what it resolves to and whether it follows its parent (found by moving
# the parent, which is always undone exactly), the restore writes a node only when it no longer matches, and the
# appliers avoid writing inheriting leaves (see _set_conv_tf32).

_ROOT = ("generic", "all")
_TREE: dict[tuple[str, str], tuple[str, str]] = {  # node -> parent, parents first
    ("cuda", "all"): _ROOT, ("mkldnn", "all"): _ROOT,
    **{(b, op): (b, "all") for b in ("cuda", "mkldnn") for op in ("matmul", "conv", "rnn")},
}
_PROBE_VALUES = ("ieee", "tf32")  # valid for every backend


def _get_prec(node: tuple[str, str]) -> str:
    return torch._C._get_fp32_precision_getter(*node)


def _set_prec(node: tuple[str, str], value: str) -> None:
    torch._C._set_fp32_precision_setter(*node, value)


def _follows_parent(node: tuple[str, str], parent_raw: str) -> bool:
    """Whether ``node`` inherits: move its parent to a value it does not show and see if it moves along."""
    parent = _TREE[node]
    probe = _PROBE_VALUES[1] if _get_prec(node) == _PROBE_VALUES[0] else _PROBE_VALUES[0]
    _set_prec(parent, probe)
    try:
        return _get_prec(node) == probe
    finally:
        _set_prec(parent, parent_raw)


def precision_state() -> dict[str, tuple[str, bool]]:
    """Observable fp32_precision state: node -> (resolved value, follows its parent). Leaves torch as it was."""
    raw = {_ROOT: _get_prec(_ROOT)}  # the root resolves to itself
    state = {_ROOT: (raw[_ROOT], False)}
    for node in _TREE:  # parents come first, so each parent's raw value is known when it is moved
        follows = _follows_parent(node, raw[_TREE[node]])
        raw[node] = "none" if follows else _get_prec(node)
        state[node] = (_get_prec(node), follows)
    return {"/".join(k): v for k, v in state.items()}


def _restore_precisions(saved: dict[str, tuple[str, bool]]) -> None:
    for key, (value, follows) in saved.items():
        node = tuple(key.split("/"))
        if key == "/".join(_ROOT):
            if _get_prec(_ROOT) != value:
                _set_prec(_ROOT, value)
            continue
        parent_raw = "none" if saved["/".join(_TREE[node])][1] else saved["/".join(_TREE[node])][0]
        if _get_prec(node) == value and _follows_parent(node, parent_raw) == follows:
            continue
        _set_prec(node, "none" if follows else value)
        if _get_prec(node) != value:  # only for a default leaf someone else made explicit: the value is what is left
            _set_prec(node, value)


def _with_leaves(nodes: tuple[tuple[str, str], ...], value: str, read: Callable[[], Any]) -> Any:
    """Call ``read`` with ``nodes`` resolving to ``value`` for a moment; put every node back exactly.

    An inheriting leaf is moved through its parent, never written: writing would end its inheritance for good.
    """
    saved = precision_state()
    try:
        for node in nodes:
            _set_prec(_TREE[node] if saved["/".join(node)][1] else node, value)
        return read()
    finally:
        _restore_precisions(saved)


def _legacy_matmul_precision() -> str:
    """float32_matmul_precision; its getter raises in a mixed state, and "ieee" matmul leaves agree with any value."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return _with_leaves((("cuda", "matmul"), ("mkldnn", "matmul")), "ieee", torch.get_float32_matmul_precision)


def _legacy_cudnn_tf32() -> bool:
    """cuDNN's legacy allow_tf32; with conv and rnn both TF32 its getter succeeds exactly when the flag is True."""
    try:
        return bool(torch._C._get_cudnn_allow_tf32())
    except RuntimeError:
        def read() -> bool:
            try:
                return bool(torch._C._get_cudnn_allow_tf32())
            except RuntimeError:
                return False
        return _with_leaves((("cuda", "conv"), ("cuda", "rnn")), "tf32", read)


@dataclass(frozen=True)
class _Snapshot:
    deterministic: bool
    warn_only: bool
    fill_uninitialized_memory: bool
    cudnn_enabled: bool
    cudnn_benchmark: bool
    cudnn_deterministic: bool
    mkldnn_enabled: bool
    mkldnn_deterministic: bool
    num_threads: int
    precisions: dict[str, tuple[str, bool]]
    matmul_precision: str
    cudnn_tf32: bool


def _snapshot() -> _Snapshot:
    return _Snapshot(
        deterministic=torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        fill_uninitialized_memory=torch.utils.deterministic.fill_uninitialized_memory,
        cudnn_enabled=torch.backends.cudnn.enabled,
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        cudnn_deterministic=torch.backends.cudnn.deterministic,
        mkldnn_enabled=torch.backends.mkldnn.enabled,
        mkldnn_deterministic=torch.backends.mkldnn.deterministic,
        num_threads=torch.get_num_threads(),
        precisions=precision_state(),
        matmul_precision=_legacy_matmul_precision(),
        cudnn_tf32=_legacy_cudnn_tf32(),
    )


def _restore(s: _Snapshot) -> None:
    torch.use_deterministic_algorithms(s.deterministic, warn_only=s.warn_only)
    torch.utils.deterministic.fill_uninitialized_memory = s.fill_uninitialized_memory
    torch.backends.cudnn.enabled = s.cudnn_enabled
    torch.backends.cudnn.benchmark = s.cudnn_benchmark
    torch.backends.cudnn.deterministic = s.cudnn_deterministic
    torch.backends.mkldnn.enabled = s.mkldnn_enabled
    torch.backends.mkldnn.deterministic = s.mkldnn_deterministic
    if torch.get_num_threads() != s.num_threads:
        torch.set_num_threads(s.num_threads)
    # The tree first: then the legacy getters agree with it again and can be read without probing. The legacy
    # setters write tree leaves, so only when a legacy value really changed, set it and restore the tree again.
    _restore_precisions(s.precisions)
    changed = False
    if _legacy_matmul_precision() != s.matmul_precision:
        torch.set_float32_matmul_precision(s.matmul_precision)
        changed = True
    if _legacy_cudnn_tf32() != s.cudnn_tf32:
        torch._C._set_cudnn_allow_tf32(s.cudnn_tf32)
        changed = True
    if changed:
        _restore_precisions(s.precisions)


def _set_matmul_tf32(on: bool) -> None:
    # The legacy setter keeps float32_matmul_precision and the cuda/matmul leaf consistent (both families agree).
    torch._C._set_cublas_allow_tf32(on)


def _set_conv_tf32(on: bool) -> None:
    """cuDNN conv TF32 on/off without destroying state that cannot be recreated.

    torch's initial cuda/conv (and cuda/rnn) leaf reads "tf32" but follows a parent that is set; writing the leaf
    would make it explicit for good (no setter brings the inheriting default back). So when conv inherits, move its
    parent cuda/all instead (rnn, which shares cuDNN's legacy flag, moves along) and pin cuda/matmul if it would
    otherwise change its TF32 use; only an explicit conv leaf is written. The legacy ``cudnn.allow_tf32`` flag is
    left alone (its setter writes both leaves), so inside the block its getter may report a legacy/new mix.
    """
    target = "tf32" if on else "ieee"
    state = precision_state()
    conv_value, conv_follows = state["cuda/conv"]
    if conv_value == target:
        return
    if not conv_follows:
        _set_prec(("cuda", "conv"), target)
        return
    matmul_value, matmul_follows = state["cuda/matmul"]
    _set_prec(("cuda", "all"), target)
    if matmul_follows and (_get_prec(("cuda", "matmul")) == "tf32") != (matmul_value == "tf32"):
        _set_prec(("cuda", "matmul"), "tf32" if matmul_value == "tf32" else "ieee")


#: What applied_settings accepts: name -> (setter, type). None as a value means "leave as it is".
APPLIERS: dict[str, tuple[Callable[[Any], None], type]] = {
    "deterministic_algorithms": (lambda v: torch.use_deterministic_algorithms(
        v, warn_only=torch.is_deterministic_algorithms_warn_only_enabled()), bool),
    "deterministic_warn_only": (lambda v: torch.use_deterministic_algorithms(
        torch.are_deterministic_algorithms_enabled(), warn_only=v), bool),
    "fill_uninitialized_memory": (
        lambda v: setattr(torch.utils.deterministic, "fill_uninitialized_memory", v), bool),
    "cudnn_enabled": (lambda v: setattr(torch.backends.cudnn, "enabled", v), bool),
    "cudnn_benchmark": (lambda v: setattr(torch.backends.cudnn, "benchmark", v), bool),
    "cudnn_deterministic": (lambda v: setattr(torch.backends.cudnn, "deterministic", v), bool),
    "mkldnn_enabled": (lambda v: setattr(torch.backends.mkldnn, "enabled", v), bool),
    "mkldnn_deterministic": (lambda v: setattr(torch.backends.mkldnn, "deterministic", v), bool),
    "matmul_tf32": (_set_matmul_tf32, bool),
    "conv_tf32": (_set_conv_tf32, bool),
    "float32_matmul_precision": (torch.set_float32_matmul_precision, str),
    "mkldnn_matmul_fp32_precision": (lambda v: _set_prec(("mkldnn", "matmul"), v), str),
    "mkldnn_conv_fp32_precision": (lambda v: _set_prec(("mkldnn", "conv"), v), str),
    "num_threads": (torch.set_num_threads, int),
}


# ---------------------------------------------------------------------------------------------------------------
# What each setting accepts, declared once (in the manner of scikit-learn's _param_validation) and checked when the
# suite loads. Without it torch's own checks came late or never: set_float32_matmul_precision("garbage") only warns
# and the report said "highest"; an unknown oneDNN precision failed the case at run time; num_threads=100000
# crashed the process with SIGSEGV inside libgomp.

@dataclass(frozen=True)
class Options:
    """The value must be one of ``values``."""
    values: tuple[str, ...]

    def check(self, value: Any) -> str | None:
        return None if value in self.values else f"must be one of {', '.join(self.values)}, got {value!r}"


@dataclass(frozen=True)
class Interval:
    """An integer in [low, high]; ``why`` says where the upper limit comes from."""
    low: int
    high: Callable[[], int]
    why: str

    def check(self, value: Any) -> str | None:
        high = self.high()
        if self.low <= value <= high:
            return None
        return f"must be an integer in [{self.low}, {high}] ({self.why}), got {value!r}"


def _max_threads() -> int:
    # Far above any useful count (oversubscription only slows down), far below what crashed libgomp.
    return min(1024, 4 * (os.cpu_count() or 1))


# Accepted by torch 2.13's fp32_precision setters for the oneDNN backend (Context.cpp: "Unknown precision" otherwise).
MKLDNN_FP32_PRECISIONS = ("ieee", "tf32", "bf16", "none")
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision; others only warn

CONSTRAINTS: dict[str, Options | Interval] = {
    "float32_matmul_precision": Options(MATMUL_PRECISIONS),
    "mkldnn_matmul_fp32_precision": Options(MKLDNN_FP32_PRECISIONS),
    "mkldnn_conv_fp32_precision": Options(MKLDNN_FP32_PRECISIONS),
    "num_threads": Interval(1, _max_threads, "at most 4 x this machine's logical CPUs, and 1024"),
}


def check_setting(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for setting ``name`` (a known name), or None. Types first, then the
    declared constraint."""
    kind = APPLIERS[name][1]
    if value is None:
        return None
    if type(value) is not kind:
        return f"must be {kind.__name__}, got {value!r}"
    constraint = CONSTRAINTS.get(name)
    return constraint.check(value) if constraint is not None else None


def _resolved_precision(settings: dict[str, Any], *path: str) -> str:
    """A fp32_precision leaf as it takes effect: "none" defers to its backend's value, then to the root's."""
    for key in (".".join(path), path[0], ""):
        value = settings.get(f"{key}.fp32_precision" if key else "fp32_precision")
        if isinstance(value, str) and value not in ("none", ""):
            return value
    return "ieee"


def reduced_precision_paths(settings: dict[str, Any], device: torch.device, dtype: torch.dtype) -> list[str]:
    """The lower-precision paths ``settings`` (a :func:`capture_settings` dict) enable for float32 matmul and
    convolution on ``device``: TF32 in cuBLAS/cuDNN on an Ampere or newer GPU, BF16/TF32 in oneDNN on the CPU.

    A result computed on such a path may exceed the float32 rounding bound without any fault of the formulation
    under test; claims that blame the formulation must check this first. Enabled is not used: oneDNN and cuDNN
    may still pick a full-precision kernel (the kernels section tells which ran)."""
    if dtype != torch.float32:
        return []
    paths = []
    if device.type == "cuda":
        if torch.cuda.get_device_capability(device) < (8, 0):  # no TF32 units before Ampere
            return []
        if settings.get("env.NVIDIA_TF32_OVERRIDE") == "0":  # the CUDA libraries' own switch: TF32 off for all
            return []
        for label, path in (("cuBLAS matmul", ("cuda", "matmul")), ("cuDNN conv", ("cudnn", "conv"))):
            if _resolved_precision(settings, *path) == "tf32":
                paths.append(f"{label} TF32")
    elif device.type == "cpu":
        for label, path in (("oneDNN matmul", ("mkldnn", "matmul")), ("oneDNN conv", ("mkldnn", "conv"))):
            value = _resolved_precision(settings, *path)
            if value in ("bf16", "tf32"):
                paths.append(f"{label} {value.upper()}")
    return paths


def cuda_settings_now() -> dict[str, Any]:
    """The settings that decide cuDNN/cuBLAS algorithm choice, as :func:`applied_settings` keyword arguments.

    For a child process that must run a kernel the way this process would (the cuDNN log child): it applies
    these on start. TF32 is read from the resolved fp32_precision leaves, whichever API set it."""
    state = precision_state()
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_enabled": bool(torch.backends.cudnn.enabled),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "conv_tf32": state["cuda/conv"][0] == "tf32",
            "matmul_tf32": state["cuda/matmul"][0] == "tf32"}


@contextlib.contextmanager
def applied_settings(**settings: Any) -> Iterator[dict[str, Any]]:
    """Apply ``settings`` (names in :data:`APPLIERS`) for the block; restore the previous state exactly on exit.

    Yields :func:`capture_settings` as read inside the block, so a measurement can record what it ran under.
    Restores even when the block (or applying a setting) raises. Unknown names, wrong types or values outside
    :data:`CONSTRAINTS` raise ``TypeError`` before anything changes. Not thread-safe: these are process-global torch settings.
    """
    for name, value in settings.items():
        if name not in APPLIERS:
            raise TypeError(f"applied_settings: unknown setting {name!r}; known: {', '.join(APPLIERS)}")
        problem = check_setting(name, value)
        if problem is not None:
            raise TypeError(f"applied_settings: {name} {problem}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy/new TF32 setters warn on mixing; we mix on purpose, then undo
        saved = _snapshot()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, value in settings.items():
                if value is not None:
                    APPLIERS[name][0](value)
        yield capture_settings()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _restore(saved)

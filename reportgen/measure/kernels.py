"""Which implementation each side of a comparison actually ran: ATen ops, library primitives, GPU kernels.

A report that says "these differ" must say why. Two sides that compute the same maths usually differ because they
ran different code: on CPU e.g. ``aten::addmm`` -> MKL SGEMM versus ``aten::mkldnn_convolution`` -> a oneDNN JIT
kernel on a blocked layout with reorders around it; on CUDA a cuBLAS gemm versus a cuDNN implicit-gemm kernel, one
of them in TF32. This module captures that evidence per side:

* torch.profiler: ATen ops with their self-time share, the dispatch chain, and on CUDA the kernel names (which encode
  library, algorithm, tile and precision);
* oneDNN's and MKL's own verbose accounts (both print from C, so they are captured at the file-descriptor level);
* the BLAS identity from the build configuration (``torch.__config__.show()``);
* on CUDA, cuDNN's API log from a child process (cuDNN reads ``CUDNN_LOGLEVEL_DBG`` when it loads).

Every parser works on text, so the tests run them on recorded real output (tests/fixtures/).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from reportgen.measure.settings import applied_settings, cuda_settings_now

# ---------------------------------------------------------------------------------------------------------- fd capture


@dataclass
class Captured:
    """Text written to a file descriptor while :func:`capture_fd` was active (filled in on exit)."""

    text: str = ""


def _flush_c_stdio() -> None:
    # C stdio buffers output written by libraries (oneDNN, MKL use printf); flush all streams before moving the fd.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def capture_fd(fd: int = 1) -> Iterator[Captured]:
    """Redirect file descriptor ``fd`` into a temporary file for the block; the text lands in the yielded object.

    oneDNN and MKL print their verbose lines with C ``printf`` to fd 1, below Python's ``sys.stdout``, so
    ``contextlib.redirect_stdout`` cannot see them. Process-wide while active: another thread's output to ``fd``
    is captured too.
    """
    captured = Captured()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _flush_c_stdio()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield captured
        finally:
            _flush_c_stdio()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ oneDNN verbose

_FORMAT_KINDS = {"blocked", "any", "undef", "sparse", "wino", "rnn_packed", "opaque"}


def _parse_md(md: str) -> dict[str, str] | None:
    """``src:f32::blocked:abcd::f0`` (oneDNN 3.x) or ``src_f32::blocked:abcd:f0`` (2.x) -> arg, dtype, format tag."""
    m = re.match(r"([a-z_]+?\d*)[:_](f32|f16|bf16|f64|s8|u8|s32|f8_e5m2|f8_e4m3|undef|s4|u4|tf32)", md)
    if not m:
        return None
    fields = md.split(":")
    tag = ""
    for i, f in enumerate(fields):
        if f in _FORMAT_KINDS and i + 1 < len(fields):
            tag = fields[i + 1]
            break
    return {"arg": m.group(1), "dtype": m.group(2), "tag": tag}


def _is_plain(tag: str) -> bool:
    """A plain (strided, unblocked) layout tag is letters only, e.g. ``abcd``; blocked ones carry digits."""
    return tag.isalpha()


@dataclass(frozen=True)
class OneDNNExec:
    """One ``exec`` line of oneDNN's verbose output."""

    engine: str
    primitive: str
    impl: str
    prop_kind: str
    mds: tuple[dict[str, str], ...]
    alg: str
    problem: str
    time_ms: float

    def md(self, arg: str) -> dict[str, str] | None:
        return next((m for m in self.mds if m["arg"] == arg), None)

    @property
    def reorder_direction(self) -> str:
        """For reorders: plain->blocked, blocked->plain, blocked->blocked or plain->plain (by the layout tags)."""
        src, dst = self.md("src"), self.md("dst")
        if src is None or dst is None:
            return "unknown"
        name = lambda tag: "plain" if _is_plain(tag) else "blocked"  # noqa: E731
        return f"{name(src['tag'])}->{name(dst['tag'])}"

    def to_dict(self) -> dict[str, Any]:
        d = {"engine": self.engine, "primitive": self.primitive, "impl": self.impl, "prop_kind": self.prop_kind,
             "formats": {m["arg"]: f"{m['dtype']}:{m['tag']}" if m["tag"] else m["dtype"] for m in self.mds},
             "alg": self.alg,
             "problem": self.problem, "time_ms": self.time_ms}
        if self.primitive == "reorder":
            d["direction"] = self.reorder_direction
        return d


def parse_onednn_verbose(text: str) -> dict[str, Any]:
    """Parse oneDNN verbose text: ``{"info": {...}, "execs": [OneDNNExec, ...]}``.

    Handles oneDNN 3.x lines (``onednn_verbose,v1,primitive,exec,cpu,convolution,jit_1x1:avx512_core,...``) and
    2.x lines (``onednn_verbose,exec,cpu,...`` / ``dnnl_verbose,exec,cpu,...``), with or without a timestamp
    field. Graph-API lines and non-verbose text are ignored.
    """
    info: dict[str, str] = {}
    execs: list[OneDNNExec] = []
    for line in text.splitlines():
        if not line.startswith(("onednn_verbose,", "dnnl_verbose,")):
            continue
        parts = line.split(",")
        if "info" in parts[:4]:
            _parse_info(parts, info)
            continue
        if "exec" not in parts or "graph" in parts[: parts.index("exec")]:
            continue
        fields = parts[parts.index("exec") + 1:]
        if len(fields) < 9:
            continue
        engine, primitive, impl, prop_kind, mds, _attrs, aux, problem = fields[:8]
        try:
            time_ms = float(fields[-1])
        except ValueError:
            continue
        parsed = tuple(m for m in (_parse_md(x) for x in mds.split()) if m is not None)
        alg = next((a.removeprefix("alg:") for a in aux.split() if a.startswith("alg:")), "")
        execs.append(OneDNNExec(engine, primitive, impl, prop_kind, parsed, alg, problem, time_ms))
    return {"info": info, "execs": execs}


def _parse_info(parts: list[str], info: dict[str, str]) -> None:
    text = ",".join(parts)
    if m := re.search(r"oneDNN (v[\d.]+)", text):
        info["version"] = m.group(1)
    if m := re.search(r"isa:(.*)$", text):  # the ISA text itself may contain commas
        info["isa"] = m.group(1).strip()
    if m := re.search(r"runtime:([^,]+),nthr:(\d+)", text):
        info["cpu_runtime"], info["nthr"] = m.group(1), m.group(2)


def summarise_onednn(execs: list[OneDNNExec], calls: int) -> dict[str, Any] | None:
    """Group oneDNN execs by (primitive, impl); count reorders per call and their share of oneDNN's time."""
    if not execs:
        return None
    total = sum(e.time_ms for e in execs)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in execs:
        key = (e.primitive, e.impl, e.reorder_direction if e.primitive == "reorder" else "")
        g = groups.setdefault(key, {"primitive": e.primitive, "impl": e.impl, "direction": key[2],
                                    "prop_kind": e.prop_kind, "alg": e.alg, "problem": e.problem,
                                    "formats": e.to_dict()["formats"], "count": 0, "time_ms": 0.0})
        g["count"] += 1
        g["time_ms"] += e.time_ms
    rows = sorted(groups.values(), key=lambda g: -g["time_ms"])
    for g in rows:
        g["share"] = g["time_ms"] / total if total > 0 else None
        g["per_call"] = g["count"] / calls
    reorders = [e for e in execs if e.primitive == "reorder"]
    compute = [g for g in rows if g["primitive"] != "reorder"]
    reorder_ms = sum(e.time_ms for e in reorders)
    return {
        "primitives": rows,
        "main": compute[0] if compute else rows[0],
        "reorders_per_call": len(reorders) / calls,
        "reorder_time_ms": reorder_ms,
        "reorder_time_share": reorder_ms / total if total > 0 else None,
        "total_time_ms": total,
    }


# ------------------------------------------------------------------------------------------------ MKL verbose

_MKL_CALL = re.compile(r"^MKL_VERBOSE\s+(\w+)\(([^)]*)\)\s+([\d.]+)(ns|us|ms|s)\s+(.*)$")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_mkl_verbose(text: str) -> dict[str, Any]:
    """Parse ``MKL_VERBOSE`` lines: header (version, threading) and calls (function, shape args, time, CNR, threads).

    CNR (conditional numerical reproducibility) OFF means MKL may pick code paths, and so summation orders, by
    ISA and thread count: bitwise results may then depend on them.
    """
    info: dict[str, str] = {}
    calls: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("MKL_VERBOSE"):
            continue
        m = _MKL_CALL.match(line)
        if not m:
            if "oneMKL" in line or "Intel(R) MKL" in line:
                info["version"] = line.removeprefix("MKL_VERBOSE").strip()
                if t := re.search(r"(\w+_thread|sequential)", line):
                    info["threading"] = t.group(1)
            continue
        func, args, value, unit, rest = m.groups()
        fields = dict(re.findall(r"(\w+):(\S+)", rest))
        arglist = args.split(",")
        call = {"function": func, "args": ",".join(a for a in arglist if not a.startswith("0x")),
                "time_ms": float(value) * _UNIT_MS[unit], "cnr": fields.get("CNR"),
                "threads": int(fields["NThr"]) if fields.get("NThr", "").isdigit() else None}
        if func.endswith("GEMM") and len(arglist) >= 5:
            call.update(transa=arglist[0], transb=arglist[1], m=_int(arglist[2]), n=_int(arglist[3]),
                        k=_int(arglist[4]))
        calls.append(call)
    return {"info": info, "calls": calls}


def _int(s: str) -> int | None:
    return int(s) if s.strip().lstrip("-").isdigit() else None


def summarise_mkl(calls: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    if not calls:
        return None
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for c in calls:
        g = groups.setdefault((c["function"], c["args"]), {**c, "count": 0, "time_ms": 0.0})
        g["count"] += 1
        g["time_ms"] += c["time_ms"]
    rows = sorted(groups.values(), key=lambda g: -g["time_ms"])
    for g in rows:
        g["per_call"] = g["count"] / n
    return {"calls": rows, "main": rows[0], "cnr": sorted({str(c["cnr"]) for c in calls}),
            "threads": sorted({c["threads"] for c in calls if c["threads"] is not None})}


# ------------------------------------------------------------------------------------------------ BLAS identity


def parse_build_config(text: str) -> dict[str, Any]:
    """BLAS/LAPACK/oneDNN/MKL/cuDNN identity from ``torch.__config__.show()`` text."""
    out: dict[str, Any] = {}
    if m := re.search(r"BLAS_INFO=(\w+)", text):
        out["blas"] = m.group(1)
    if m := re.search(r"LAPACK_INFO=(\w+)", text):
        out["lapack"] = m.group(1)
    if m := re.search(r"Math Kernel Library Version ([^\n]+?) for", text):
        out["mkl_version"] = m.group(1).strip()
    if m := re.search(r"(?:MKL-DNN|oneDNN) (v[\d.]+)", text):
        out["onednn_version"] = m.group(1)
    if m := re.search(r"CPU capability usage: (\w+)", text):
        out["cpu_capability"] = m.group(1)
    if m := re.search(r"CuDNN ([\d.]+)", text):
        out["cudnn_version"] = m.group(1)
    if m := re.search(r"CUDA Runtime ([\d.]+)", text):
        out["cuda_runtime"] = m.group(1)
    for flag in ("USE_MKL", "USE_MKLDNN", "USE_OPENMP", "USE_CUDNN", "USE_CUDA"):
        if m := re.search(rf"{flag}=(\w+)", text):
            out[flag.lower()] = m.group(1)
    return out


def build_identity() -> dict[str, Any]:
    ident = parse_build_config(torch.__config__.show())
    ident["torch"] = torch.__version__
    with contextlib.suppress(Exception):
        ident["cpu_capability_runtime"] = torch.backends.cpu.get_cpu_capability()
    if torch.cuda.is_available():
        with contextlib.suppress(Exception):
            ident["cudnn_runtime"] = torch.backends.cudnn.version()
            ident["gpu"] = torch.cuda.get_device_name()
            ident["gpu_cc"] = ".".join(map(str, torch.cuda.get_device_capability()))
    return ident


# ------------------------------------------------------------------------------------------------ CUDA kernel names

# First match wins. A CUTLASS kernel name does not say which library launched it (cuBLAS and cuDNN ship CUTLASS
# kernels) unless it carries a "_cudnn"/"_cublas" suffix; the ATen op above it in the profile tells.
_LIBRARY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"cudnn|fprop|dgrad|wgrad|implicit_convolve|winograd|fft2d|nchwToNhwc|nhwcToNchw|conv2d_grouped", "cuDNN"),
    (r"cublasLt|nvjet", "cuBLASLt"),
    (r"cublas", "cuBLAS"),
    (r"cutlass", "CUTLASS"),
    (r"sgemm|hgemm|gemv|gemmSN|xmma_gemm|s1688gemm|s16816gemm|gemm_", "cuBLAS"),
    (r"at::native|at_cuda_detail|elementwise_kernel|reduce_kernel", "ATen"),
)


def classify_cuda_kernel(name: str) -> dict[str, Any]:
    """What a CUDA kernel name says: library, algorithm, precision (TF32?), tile, architecture.

    Kernel names are vendor conventions, not an API: ``sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_...``
    (cuDNN, implicit GEMM, TF32 tensor cores), ``ampere_sgemm_128x64_tn`` (cuBLAS, FP32 SIMT),
    ``sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_..._cublas`` (cuBLAS, TF32). Best effort.
    """
    low = name.lower()
    library = next((lib for pat, lib in _LIBRARY_PATTERNS if re.search(pat, name, re.I)), "other")
    algo = next((a for a in ("implicit_precomp_gemm", "implicit_gemm", "implicit_convolve_sgemm", "winograd",
                             "fft", "direct", "splitk", "gemv", "gemm", "fprop", "dgrad", "wgrad")
                 if a in low), "")
    if "tonhwc" in low or "tonchw" in low:
        algo = "layout transform"
    # CUTLASS "tensorop_s1688..." with no data type before it: fp32 data through the m16n8k8 TF32 MMA
    # ("tensorop_f16_s1688" is fp16 data with fp32 accumulation).
    precision = ("tf32" if "tf32" in low or "tensorop_s1688" in low
                 else "bf16" if "bf16" in low
                 else "f16" if re.search(r"f16|h1688|h16816|hgemm|fp16|__half", low)
                 else "f32" if re.search(r"sgemm|f32|float|implicit_convolve", low) else "")
    tile = ""
    if m := re.search(r"tilesize(\d+x\d+(?:x\d+)?)", low) or re.search(r"_(\d+x\d+(?:x\d+)?)(?:_|$)", low):
        tile = m.group(1)
    arch = ""
    if m := re.match(r"(sm\d+|ampere|volta|turing|maxwell|hopper)", low):
        arch = m.group(1)
    return {"name": name, "library": library, "algo": algo, "precision": precision, "tile": tile, "arch": arch,
            "tensor_cores": bool(re.search(r"xmma|tensorop|1688|16816|884|nvjet|wgmma|tensor\d", low))}


# ------------------------------------------------------------------------------------------------ profiler


def _self_device_us(e: Any) -> float:
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(e, attr):
            return float(getattr(e, attr))
    return 0.0


def profile_rows(fn: Callable[[], Any], calls: int, device: torch.device) -> list[dict[str, Any]]:
    """Run ``fn`` ``calls`` times under torch.profiler; one row per op/kernel name (JSON-able, recordable)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch.no_grad() if not torch.is_grad_enabled() else contextlib.nullcontext():
        # kineto prints start/stop banners from C; keep them out of the run's log, but keep what it said: when
        # CUPTI is unavailable or denied, that text is the only trace of why no GPU kernel was recorded.
        with capture_fd(1), capture_fd(2) as err:
            with profile(activities=activities) as prof:
                for _ in range(calls):
                    fn()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
    rows = []
    for e in prof.key_averages():
        is_kernel = str(getattr(e, "device_type", "")).endswith("CUDA") and e.self_cpu_time_total == 0
        rows.append({"name": e.key, "count": int(e.count), "self_cpu_us": float(e.self_cpu_time_total),
                     "cpu_total_us": float(e.cpu_time_total), "self_device_us": _self_device_us(e),
                     "kind": "kernel" if is_kernel else "op"})
    chain = _dispatch_chain(prof.events())
    return [{"chain": chain, "log": err.text.strip()[-600:]}] + rows


_PRODUCT_OP = re.compile(r"(?:mm|matmul|conv|gemm|addmv|\bdot\b|einsum)")


def _has_product_below(event: Any) -> bool:
    stack = list(getattr(event, "cpu_children", []) or [])
    while stack:
        e = stack.pop()
        if e.name.startswith("aten::") and e.name not in _GLUE and _PRODUCT_OP.search(e.name):
            return True
        stack.extend(getattr(e, "cpu_children", []) or [])
    return False


def _dispatch_chain(events: Any) -> list[str]:
    """Top-level op down to the op that did the work: the non-glue ATen op with the most self (CPU + device) time.

    Following the heaviest child instead would end in layout glue (e.g. ``aten::copy_`` making a permuted input
    contiguous, or addmm copying the bias into the output), which is not the implementation choice.
    """
    candidates = [e for e in events if e.name.startswith("aten::") and e.name not in _GLUE]
    if not candidates:
        return []
    # Among them, the products (matmul, convolution) when there are any: on a tiny problem the bias add_ can take
    # as long as the mm itself, and which one "wins" on self time then depends on the machine's load.
    # Only the innermost ones: aten::convolution -> aten::_convolution -> aten::mkldnn_convolution are all
    # "products", and on a tiny problem a wrapper's self time can exceed the kernel's.
    products = [e for e in candidates if _PRODUCT_OP.search(e.name) and not _has_product_below(e)]
    candidates = products or candidates
    node = max(candidates, key=lambda e: e.self_cpu_time_total + _self_device_us(e))
    chain = [node.name]
    while node.cpu_parent is not None:
        node = node.cpu_parent
        chain.insert(0, node.name)
    return chain


def parse_profiler_table(text: str) -> list[dict[str, Any]]:
    """Rows of a ``prof.key_averages().table()`` printout: name, self CPU us, self device us, calls.

    Lets the report read tables recorded elsewhere (issue threads, logs); kernel rows are those with zero self CPU.
    """
    lines = text.splitlines()
    header_idx = next((i for i, l in enumerate(lines) if "Name" in l and "# of Calls" in l), None)
    if header_idx is None:
        return []
    header = lines[header_idx]
    cols = [c.strip() for c in re.split(r"\s{2,}", header.strip())]
    rows = []
    for line in lines[header_idx + 1:]:
        if not line.strip() or set(line.strip()) <= {"-", " "} or line.startswith("Self "):
            continue
        cells = [c.strip() for c in re.split(r"\s{2,}", line.strip())]
        if len(cells) != len(cols):
            continue
        rec = dict(zip(cols, cells))
        self_cpu = _us(rec.get("Self CPU", "0us"))
        self_dev = _us(rec.get("Self CUDA", rec.get("Self Device", "0us")))
        rows.append({"name": rec["Name"], "count": int(rec["# of Calls"]), "self_cpu_us": self_cpu,
                     "self_device_us": self_dev,
                     "kind": "kernel" if self_cpu == 0 and self_dev > 0 and not rec["Name"].startswith("aten::")
                     else "op"})
    return rows


def _us(cell: str) -> float:
    m = re.match(r"([\d.]+)\s*(us|ms|s|ns)", cell)
    if not m:
        return 0.0
    return float(m.group(1)) * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[m.group(2)]


def summarise_profile(rows: list[dict[str, Any]], top: int = 6) -> dict[str, Any]:
    """Top ATen ops by self CPU share and CUDA kernels by device-time share, with kernel classification."""
    head = next((r for r in rows if "chain" in r), {})
    chain = head.get("chain", [])
    ops = [r for r in rows if r.get("kind") == "op" and r["name"].startswith("aten::")]
    kernels = [r for r in rows if r.get("kind") == "kernel"]
    cpu_total = sum(r["self_cpu_us"] for r in ops) or 0.0
    dev_total = sum(r["self_device_us"] for r in kernels) or 0.0
    top_ops = sorted(ops, key=lambda r: -r["self_cpu_us"])[:top]
    top_kernels = sorted(kernels, key=lambda r: -r["self_device_us"])[:top]
    return {
        "chain": chain,
        "ops": [{"name": r["name"], "count": r["count"], "self_us": r["self_cpu_us"],
                 "share": r["self_cpu_us"] / cpu_total if cpu_total else None} for r in top_ops],
        "kernels": [{**classify_cuda_kernel(r["name"]), "count": r["count"], "time_us": r["self_device_us"],
                     "share": r["self_device_us"] / dev_total if dev_total else None} for r in top_kernels],
        "log": head.get("log", ""),
    }


# ------------------------------------------------------------------------------------------------ cuDNN log


# "I! CuDNN (v91200 46) function f() called:" in the logs PyTorch users post (cuDNN 7-9); NVIDIA's cuDNN 9
# documentation shows the same record as "cuDNN (v90000) function f() called:" with no severity prefix, and warnings
# and errors start "W!"/"E!". Accept all of them.
_CUDNN_CALL = re.compile(r"^(?:[IWE]! )?CuDNN \(v(\d+)[^)]*\) function (\w+)\(\) called:", re.M | re.I)
# cuDNN 9 logs a call twice: its arguments, then its outputs with "status: type=cudnnStatus_t" (a return record)
_CUDNN_STATUS = re.compile(r"^(?:i! )?\s*status: type=cudnnStatus_t;", re.M)


def _cudnn_blocks(text: str) -> list[tuple[str, str, str]]:
    """Split a cuDNN API log into (version, function, body) per logged call."""
    marks = list(_CUDNN_CALL.finditer(text))
    return [(m.group(1), m.group(2), text[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)])
            for i, m in enumerate(marks)]


def parse_cudnn_log(text: str) -> dict[str, Any]:
    """cuDNN API log (``CUDNN_LOGLEVEL_DBG`` / v8 ``CUDNN_LOGINFO_DBG``): version, API calls, engines, algos, notes.

    Engine ids come from ``engine_id``/``engineId`` fields of engine descriptors and from the value set for
    ``CUDNN_ATTR_ENGINE_GLOBAL_INDEX`` (the ``[0]`` element of that SetAttribute call, not its element count);
    legacy-API algorithms are ``CUDNN_CONVOLUTION_*_ALGO_*``; cudnn-frontend plan tags look like ``engN_kX=Y``.
    """
    blocks = _cudnn_blocks(text)
    functions: dict[str, int] = {}
    engines: list[str] = []
    executed: list[str] = []
    for _version, func, body in blocks:
        if not _CUDNN_STATUS.search(body):
            functions[func] = functions.get(func, 0) + 1
        ids = re.findall(r"engine_?[iI]d: type=int(?:64_t)?; val=(-?\d+)", body)
        engines += ids
        if func == "cudnnBackendExecute":  # the plan that ran, where the log spells out its engine
            executed += ids
        if func == "cudnnBackendSetAttribute" and "CUDNN_ATTR_ENGINE_GLOBAL_INDEX" in body:
            engines += re.findall(r"\[0\]: type=int(?:64_t)?; val=(-?\d+)", body)
    knobs = re.findall(r"(CUDNN_KNOB_TYPE_\w+): type=\w+; val=(-?\d+)", text)
    notes = sorted(set(re.findall(r"(CUDNN_(?:NUMERICAL|BEHAVIOR)_NOTE_\w+): type=bool; val=true", text)))
    algos = sorted(set(re.findall(r"(CUDNN_CONVOLUTION_(?:FWD|BWD_DATA|BWD_FILTER)_ALGO_\w+)", text)))
    math = sorted(set(re.findall(r"mathType: type=cudnnMathType_t; val=(\w+)", text)))
    tags = list(dict.fromkeys(re.findall(r"\b(eng\d+(?:_k\d+=\d+)*)\b", text)))
    return {"versions": sorted({v for v, _, _ in blocks}), "functions": functions,
            "engine_ids": list(dict.fromkeys(e for e in engines if e != "-1")),
            "executed_engine_ids": list(dict.fromkeys(e for e in executed if e != "-1")),
            "knobs": list(dict.fromkeys(f"{k}={v}" for k, v in knobs)), "notes": notes, "algos": algos,
            "math_types": math, "plan_tags": tags}


def cudnn_log_capture(script: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run ``script`` (self-contained Python) in a child process with cuDNN API logging on; parse the log.

    cuDNN reads its logging variables once, when the library loads, so the current process (cuDNN already loaded)
    cannot switch logging on: a child process is the reliable way. Returns ``{"available": False, "reason"}``
    without CUDA.
    """
    if not torch.cuda.is_available():
        return {"available": False, "reason": "CUDA not available"}
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "cudnn.log")
        fe_log = os.path.join(tmp, "cudnn_frontend.log")
        env = {**os.environ, "CUDNN_LOGLEVEL_DBG": "3", "CUDNN_LOGDEST_DBG": log,
               "CUDNN_LOGINFO_DBG": "1",  # cuDNN 8 spelling
               "CUDNN_FRONTEND_LOG_INFO": "1", "CUDNN_FRONTEND_LOG_FILE": fe_log}
        try:
            proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"available": False, "reason": f"cuDNN log child timed out after {timeout:.0f} s"}
        text = ""
        for path in (log, fe_log):
            if os.path.exists(path):
                with open(path, errors="replace") as fh:
                    text += fh.read()
        if proc.returncode != 0:
            return {"available": False, "reason": f"child exited {proc.returncode}: {proc.stderr[-300:]}"}
        parsed = parse_cudnn_log(text)
        return {"available": True, "log_chars": len(text), **parsed}


def cudnn_child_script(body: str, device: torch.device, **overrides: Any) -> str:
    """A self-contained script that runs ``body`` as this process would: on ``device`` (the name ``device`` is
    defined for it), without grad, under this process's cuDNN/TF32/determinism settings
    (:func:`~reportgen.measure.settings.cuda_settings_now`) with ``overrides`` on top (``cudnn_benchmark=True``).

    The cuDNN log child must see the same layout, device and settings as the profiled call, or its log names the
    engine of another problem."""
    settings = {**cuda_settings_now(), **overrides}
    lines = ["import torch", "from reportgen.measure.settings import applied_settings"]
    if device.type == "cuda":
        # "cuda" (no index) means the current device: name it, since set_device() needs an index
        index = device.index if device.index is not None else torch.cuda.current_device()
        lines += [f"device = torch.device('cuda', {index})", f"torch.cuda.set_device({index})"]
    else:
        lines.append(f"device = torch.device({str(device)!r})")
    lines.append(f"with applied_settings(**{settings!r}), torch.no_grad():")
    lines += [f"    {line}" for line in body.strip("\n").splitlines()]
    if device.type == "cuda":
        lines.append("    torch.cuda.synchronize(device)")
    return "\n".join(lines) + "\n"


def _executed(log: dict[str, Any]) -> list[str] | None:
    """Engines of the plans cuDNN executed; None when the log does not say (every engine a log mentions is no
    answer: with benchmark on, every candidate is built and timed, and the candidate lists differ anyway)."""
    return (log.get("executed_engine_ids") or None) if log.get("available") else None


def cudnn_benchmark_effect(body: str, device: torch.device) -> dict[str, Any]:
    """cuDNN's log of ``body`` with cudnn.benchmark off and on, each in a fresh process.

    In-process the comparison says nothing: cuDNN's plan cache is looked up before the benchmark branch and its
    key (shapes, layout, dtype, deterministic, TF32) does not include benchmark, so once the default call has run,
    a benchmark call reuses its plan (aten/src/ATen/native/cudnn/Conv_v8.cpp, run_single_conv)."""
    logs = {flag: cudnn_log_capture(cudnn_child_script(body, device, cudnn_benchmark=flag)) for flag in (False, True)}
    off, on = _executed(logs[False]), _executed(logs[True])
    return {"off": logs[False], "on": logs[True], "engine_changed": None if off is None or on is None else off != on}


# ------------------------------------------------------------------------------------------------ per side


def _library_capture(fn: Callable[[], Any], calls: int) -> tuple[str, str]:
    """Run ``fn`` with oneDNN and MKL verbose on; return (captured C stdout, reason if unavailable)."""
    reasons = []
    with contextlib.ExitStack() as stack:
        captured = stack.enter_context(capture_fd(1))
        for name, mod in (("oneDNN", torch.backends.mkldnn), ("MKL", torch.backends.mkl)):
            try:
                stack.enter_context(mod.verbose(mod.VERBOSE_ON))
            except (AssertionError, RuntimeError, AttributeError) as exc:
                reasons.append(f"{name} verbose unavailable: {exc}")
        for _ in range(calls):
            fn()
    return captured.text, "; ".join(reasons)


def capture_side(fn: Callable[[], Any], device: torch.device, calls: int = 3) -> dict[str, Any]:
    """Everything about one side: profiler summary, oneDNN/MKL accounts (CPU), kernel names (CUDA)."""
    fn()  # warm-up: first calls create primitives / pick algorithms
    rows = profile_rows(fn, calls, device)
    side: dict[str, Any] = {"profile": summarise_profile(rows)}
    if device.type == "cpu":
        text, reason = _library_capture(fn, calls)
        onednn = parse_onednn_verbose(text)
        mkl = parse_mkl_verbose(text)
        side["onednn"] = summarise_onednn(onednn["execs"], calls)
        side["onednn_info"] = onednn["info"]
        side["mkl"] = summarise_mkl(mkl["calls"], calls)
        side["mkl_info"] = mkl["info"]
        if reason:
            side["note"] = reason
    elif device.type == "cuda" and not side["profile"]["kernels"]:
        said = side["profile"]["log"]
        side["note"] = ("the profiler recorded no CUDA kernel (CUPTI unavailable, or profiling not permitted for "
                        "this user?); the implementation below is inferred from the op name"
                        + (f". Profiler output: {said[-300:]}" if said else ""))
    side["impl"] = implementation(side)
    return side


def _compute_kernels(kernels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernels that did the arithmetic: not layout transforms, not ATen's elementwise helpers (if any are)."""
    return [k for k in kernels if k["algo"] != "layout transform" and k["library"] != "ATen"] or kernels


def implementation(side: dict[str, Any]) -> str:
    """Short name of what did the arithmetic, from the strongest evidence available."""
    if side.get("onednn"):
        main = side["onednn"]["main"]
        return f"oneDNN {main['primitive']} {main['impl']}"
    if side.get("mkl"):
        main = side["mkl"]["main"]
        return f"MKL {main['function']}"
    compute = _compute_kernels(side.get("profile", {}).get("kernels", []))
    if compute:
        k = compute[0]
        prec = f" {k['precision'].upper()}" if k["precision"] else ""
        return f"{k['library']} {k['algo'] or 'kernel'}{prec}".strip()
    op = _compute_op(side.get("profile", {}).get("chain", []))
    if not op:
        return "unknown"
    # No library printed an account: name the backend the ATen op belongs to, and say the evidence is the op name.
    library = next((lib for key, lib in _OP_LIBRARIES if key in op), "ATen native kernel")
    return f"{library} (from the op name; no verbose account)"


def summary_line(label: str, side: dict[str, Any]) -> str:
    """One line per side, e.g.
    ``Conv1d -> aten::mkldnn_convolution -> oneDNN convolution jit_1x1:avx512_core + 3 reorders (41% of its time)``.
    """
    chain = side.get("profile", {}).get("chain", [])
    op = _compute_op(chain)
    parts = [label]
    if op:
        parts.append(op)
    impl = side.get("impl", "unknown")
    if side.get("onednn"):
        d = side["onednn"]
        n = d["reorders_per_call"]
        if n:
            share = d["reorder_time_share"]
            impl += f" + {n:g} reorder{'s' if n != 1 else ''}"
            if share is not None:
                impl += f" ({share:.0%} of its time)"
    elif side.get("mkl"):
        m = side["mkl"]["main"]
        if m.get("m") is not None:
            impl += f"({m['transa']},{m['transb']}, m={m['m']}, n={m['n']}, k={m['k']})"
    kernels = side.get("profile", {}).get("kernels", [])
    if kernels and not side.get("onednn") and not side.get("mkl"):
        k0 = kernels[0]
        extra = [x for x in (k0["tile"] and f"tile {k0['tile']}", k0["share"] is not None
                             and f"{k0['share']:.0%} of GPU time") if x]
        if extra:
            impl += f" [{', '.join(extra)}]"
    parts.append(impl)
    return " -> ".join(parts)


_OP_LIBRARIES = (("nnpack", "NNPACK"), ("mkldnn", "oneDNN"), ("onednn", "oneDNN"), ("cudnn", "cuDNN"),
                  ("miopen", "MIOpen"), ("slow_conv", "ATen im2col + BLAS gemm"), ("thnn_conv", "ATen im2col + BLAS gemm"))

_GLUE = {"aten::view", "aten::t", "aten::transpose", "aten::as_strided", "aten::unsqueeze", "aten::squeeze",
         "aten::empty", "aten::expand", "aten::resize_", "aten::as_strided_", "aten::resolve_conj", "aten::reshape",
         "aten::copy_", "aten::contiguous", "aten::clone", "aten::fill_", "aten::zero_", "aten::empty_strided",
         "aten::empty_like", "aten::permute", "aten::_to_copy", "aten::to", "aten::_unsafe_view",
         "aten::_reshape_alias"}


def dispatched_op(fn: Callable[[], Any], device: torch.device) -> str:
    """The ATen op that did the work in one call of ``fn`` (e.g. ``aten::mkldnn_convolution`` or
    ``aten::_slow_conv2d_forward`` for the same nn.Conv1d: ATen picks the backend from shapes and thread count)."""
    fn()  # warm-up, as in capture_side
    return _compute_op(profile_rows(fn, 1, device)[0]["chain"])


def _compute_op(chain: list[str]) -> str:
    """The deepest op in the chain that is not view/copy glue (e.g. aten::addmm under aten::linear)."""
    real = [c for c in chain if c not in _GLUE]
    return real[-1] if real else (chain[-1] if chain else "")


# ------------------------------------------------------------------------------------------------ section

#: Variants the CUDA capture repeats under, to show which settings change the kernel choice. cudnn.benchmark is
#: not one of them: in-process it would reuse the plan the default call chose (see cudnn_benchmark_effect).
CUDA_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "tf32 off": {"matmul_tf32": False, "conv_tf32": False},
    # warn-only: strict mode raises in cuBLAS without CUBLAS_WORKSPACE_CONFIG, and the question here is only which
    # kernels the deterministic flags select
    "deterministic": {"deterministic_algorithms": True, "deterministic_warn_only": True, "cudnn_deterministic": True},
}


def _fact_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def kernel_section(sides: dict[str, Callable[[], Any]], device: torch.device, calls: int = 3,
                   cudnn_bodies: dict[str, str] | None = None) -> dict[str, Any]:
    """Per side: which ops/kernels ran and a one-line summary; JSON-able, for ``CaseOutput.extra["kernels"]``.

    ``sides`` maps a label (e.g. "Linear", "Conv1d") to a callable that runs that side once. On CUDA the capture
    is repeated under :data:`CUDA_VARIANTS` and, when ``cudnn_bodies`` (label -> Python code running that side
    once, self-contained but for ``device``; see :func:`cudnn_child_script`) is given, cuDNN's API log is read
    from child processes, under this process's settings and with cudnn.benchmark off and on. ``facts`` holds flat facts:
    ``kernels.<side>.impl``, ``kernels.<side>.op`` (the ATen op that did the work) and, where measured, ``kernels.<side>.reorders_per_call`` and
    ``kernels.<side>.reorder_time_share`` (CPU) or ``kernels.<side>.tf32`` (CUDA).
    """
    section: dict[str, Any] = {"device": str(device), "calls": calls, "build": build_identity(), "sides": {},
                               "summary": [], "facts": {}, "notes": []}
    for label, fn in sides.items():
        try:
            side = capture_side(fn, device, calls)
        except Exception as exc:  # evidence capture must not cost the case its measurements
            msg = f"capture failed: {type(exc).__name__}: {exc}"[:300]
            section["sides"][label] = {"error": msg, "impl": "unknown", "summary": f"{label}: {msg}"}
            section["summary"].append(section["sides"][label]["summary"])
            continue
        if device.type == "cuda":
            side["variants"] = _cuda_variants(fn, device, calls)
            if cudnn_bodies and label in cudnn_bodies:
                side["cudnn_benchmark"] = cudnn_benchmark_effect(cudnn_bodies[label], device)
                # One of those two children ran under exactly this process's settings: its log is the side's.
                side["cudnn_log"] = side["cudnn_benchmark"]["on" if torch.backends.cudnn.benchmark else "off"]
        side["summary"] = summary_line(label, side)
        section["sides"][label] = side
        section["summary"].append(side["summary"])
        section["facts"].update(_side_facts(label, side))
    info = next((s.get("onednn_info") for s in section["sides"].values() if s.get("onednn_info")), None)
    if info:
        section["onednn_info"] = info
    if device.type == "cpu":
        section["notes"].append("oneDNN and MKL times are the libraries' own (verbose) timings; the profiler's "
                                "self time is ATen's. Both are noisy on a shared machine; shares are indicative.")
    return section


def _cuda_variants(fn: Callable[[], Any], device: torch.device, calls: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, settings in CUDA_VARIANTS.items():
        try:
            with applied_settings(**settings):
                fn()
                out[name] = summarise_profile(profile_rows(fn, calls, device))["kernels"]
        except RuntimeError as exc:  # e.g. a library refusing a setting: this variant only, not the case
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    names = {k: [x["name"] for x in v] for k, v in out.items() if isinstance(v, list)}
    base = names.get("default")
    out["changed_by"] = [k for k in names if k != "default" and base is not None and names[k] != base]
    out["failed"] = [k for k, v in out.items() if isinstance(v, dict) and "error" in v]
    return out


def _side_facts(label: str, side: dict[str, Any]) -> dict[str, Any]:
    key = f"kernels.{_fact_name(label)}"
    facts: dict[str, Any] = {f"{key}.impl": side["impl"],
                             f"{key}.op": _compute_op(side.get("profile", {}).get("chain", []))}
    if side.get("onednn"):
        facts[f"{key}.reorders_per_call"] = side["onednn"]["reorders_per_call"]
        facts[f"{key}.reorder_time_share"] = side["onednn"]["reorder_time_share"]
        facts[f"{key}.reorder_time_share.noisy"] = True  # library timings on a shared machine
    kernels = side.get("profile", {}).get("kernels", [])
    if kernels:
        facts[f"{key}.tf32"] = kernels_use_tf32(kernels)
        facts[f"{key}.kernel"] = kernels[0]["name"]
    bench = side.get("cudnn_benchmark")
    if bench is not None:
        facts[f"{key}.cudnn_benchmark_changes_engine"] = bench["engine_changed"]
    return facts


def kernels_use_tf32(kernels: list[dict[str, Any]]) -> bool | None:
    """True if a compute kernel's name says TF32; False only if every compute kernel's precision is known and none
    is TF32; None when a name does not tell (e.g. cuBLASLt ``nvjet_*`` kernels encode no precision)."""
    compute = _compute_kernels(kernels)
    if any(k["precision"] == "tf32" for k in compute):
        return True
    return False if all(k["precision"] for k in compute) else None

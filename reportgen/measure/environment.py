"""Environment capture: small best-effort ``collect_*`` functions (in the manner of pyperf's metadata).

Every function returns a dict and never raises; a field that cannot be read says ``"unavailable: <reason>"``.
No subprocess is started (that is what makes this ~100x faster than torch.utils.collect_env in-process), and
environment variables are read from an allowlist only, with secret-looking values redacted: reports go onto
public tickets.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from reportgen.measure.settings import capture_settings, unavailable
from reportgen.redact import _SECRET_NAME, REDACTED, redact  # noqa: F401 (REDACTED, redact: re-exported)

ENV_ALLOW_PREFIXES = ("CUDA_", "CUBLAS", "CUDNN_", "NVIDIA_TF32_OVERRIDE", "OMP_", "MKL_", "OPENBLAS_",
                      "ONEDNN_", "DNNL_", "KMP_", "PYTORCH_", "TORCH_")
PACKAGES = ("torch", "numpy", "scipy", "jinja2", "matplotlib", "click", "pyyaml", "weasyprint", "nvidia-ml-py",
            "triton", "mkl", "intel-openmp", "nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12",
            "nvidia-cudnn-cu13", "nvidia-cublas", "reportgen")


def _best_effort(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:  # a collector must never take the run down
        return {"unavailable": unavailable(exc)}


def _field(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:
        return unavailable(exc)


def collect_env_vars() -> dict[str, str]:
    out = {}
    for name in sorted(os.environ):
        if not name.startswith(ENV_ALLOW_PREFIXES):
            continue
        out[name] = REDACTED if _SECRET_NAME.search(name) else redact(os.environ[name])
    return out


def _os_release() -> str:
    info = platform.freedesktop_os_release()
    return info.get("PRETTY_NAME") or f"{info.get('NAME', '')} {info.get('VERSION', '')}".strip()


def collect_platform() -> dict[str, Any]:
    return {
        "os": _field(_os_release),
        "system": platform.system(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "libc": _field(lambda: " ".join(platform.libc_ver())),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "python_compiler": platform.python_compiler(),
    }


def _cpuinfo() -> dict[str, str]:
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    first = text.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def _governor() -> str:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if not path.exists():  # VMs and many containers expose no cpufreq: say that, not a raw FileNotFoundError
        return "not exposed (no cpufreq: VM or container?)"
    return path.read_text(encoding="utf-8").strip()


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> str:
    """The CPU bandwidth a cgroup grants this process ("2 CPUs" / "unlimited"): on a shared or containerised
    machine it, not the core count, is what threads compete for, and it explains a thread count that slows down."""
    v2 = root / "cpu.max"  # "max 100000" or "<quota> <period>"
    if v2.exists():
        parts = v2.read_text(encoding="utf-8").split()
        quota, period = parts[0], int(parts[1]) if len(parts) > 1 else 100000  # the kernel's default period
        return "unlimited" if quota == "max" else f"{int(quota) / period:g} CPUs"
    v1 = root / "cpu" / "cpu.cfs_quota_us"
    if v1.exists():
        quota = int(v1.read_text(encoding="utf-8"))
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text(encoding="utf-8"))
        return "unlimited" if quota < 0 else f"{quota / period:g} CPUs"
    return "not exposed"


def collect_cpu() -> dict[str, Any]:
    info = _field(_cpuinfo)
    flags = set(info.get("flags", "").split()) if isinstance(info, dict) else set()
    return {
        "model": info.get("model name", "unavailable: not in /proc/cpuinfo") if isinstance(info, dict) else info,
        "logical_cpus": os.cpu_count(),
        "affinity": _field(lambda: len(os.sched_getaffinity(0))),
        "torch_cpu_capability": _field(torch.backends.cpu.get_cpu_capability),
        "isa": sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16",
                                                "avx512_vnni", "amx_tile", "amx_bf16", "amx_fp16", "sse4_2",
                                                "neon", "asimd", "sve"}),
        "governor": _field(_governor),
        "cgroup_cpu_limit": _field(cgroup_cpu_limit),
        "load_avg_1m": _field(lambda: round(os.getloadavg()[0], 2)),
    }


def collect_memory() -> dict[str, Any]:
    def meminfo() -> dict[str, Any]:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                fields[key] = int(rest.split()[0]) * 1024
        return {"total_bytes": fields.get("MemTotal"), "available_bytes": fields.get("MemAvailable")}
    return _best_effort(meminfo)


def _config_value(config: str, pattern: str) -> str:
    m = re.search(pattern, config)
    return m.group(1).strip() if m else "unavailable: not in torch.__config__.show()"


def collect_torch() -> dict[str, Any]:
    config = _field(torch.__config__.show)
    cfg = config if isinstance(config, str) else ""
    return {
        "version": torch.__version__,
        "git_version": _field(lambda: torch.version.git_version),
        "debug": _field(lambda: torch.version.debug),
        "cuda_build": torch.version.cuda,
        "hip_build": _field(lambda: torch.version.hip),
        "blas": _config_value(cfg, r"BLAS_INFO=([^,\s]+)"),
        "mkl": _config_value(cfg, r"(Intel\(R\) (?:oneAPI )?Math Kernel Library Version [^\n]*)"),
        "onednn": _config_value(cfg, r"(?:MKL-DNN|oneDNN) (v[0-9.]+[^\n]*)"),
        "openmp": _config_value(cfg, r"- (OpenMP [^\n]*)"),
        "cpu_capability_build": _config_value(cfg, r"CPU capability usage: ([^\n]*)"),
        "mkldnn_available": _field(torch.backends.mkldnn.is_available),
        "mkl_available": _field(torch.backends.mkl.is_available),
        "openmp_available": _field(torch.backends.openmp.is_available),
        "parallel_backend": _config_value(_field(torch.__config__.parallel_info) or "",
                                          r"ATen parallel backend: ([^\n]*)"),
        "config": config,
    }


def _nvml(index_uuid: str | None) -> dict[str, Any]:
    import pynvml  # nvidia-ml-py; optional

    pynvml.nvmlInit()
    try:
        handle = None
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            if index_uuid and index_uuid in str(pynvml.nvmlDeviceGetUUID(h)):
                handle = h
        if handle is None:
            return {"unavailable": "no NVML device with this torch device's uuid"}
        g = lambda fn, *a: _field(lambda: fn(handle, *a))  # noqa: E731
        return {
            "driver": _field(pynvml.nvmlSystemGetDriverVersion),
            "cuda_driver": _field(pynvml.nvmlSystemGetCudaDriverVersion_v2),
            "persistence_mode": g(pynvml.nvmlDeviceGetPersistenceMode),
            "compute_mode": g(pynvml.nvmlDeviceGetComputeMode),
            "mig_mode": g(pynvml.nvmlDeviceGetMigMode),
            "ecc_mode": g(pynvml.nvmlDeviceGetEccMode),
            "pstate": g(pynvml.nvmlDeviceGetPerformanceState),
            "clocks_sm_mhz": g(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM),
            "clocks_mem_mhz": g(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM),
            "clocks_max_sm_mhz": g(pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_SM),
            "clocks_app_sm_mhz": g(pynvml.nvmlDeviceGetApplicationsClock, pynvml.NVML_CLOCK_SM),
            "power_limit_mw": g(pynvml.nvmlDeviceGetPowerManagementLimit),
            "power_default_limit_mw": g(pynvml.nvmlDeviceGetPowerManagementDefaultLimit),
            "power_draw_mw": g(pynvml.nvmlDeviceGetPowerUsage),
            "temperature_c": g(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU),
            "throttle_reasons": g(pynvml.nvmlDeviceGetCurrentClocksEventReasons),
            "pci_bus_id": g(lambda h: _text(pynvml.nvmlDeviceGetPciInfo(h).busId)),
            "pcie_gen": g(pynvml.nvmlDeviceGetCurrPcieLinkGeneration),
            "pcie_width": g(pynvml.nvmlDeviceGetCurrPcieLinkWidth),
        }
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pci_bus_id(p: Any) -> str | None:
    """The PCI address torch reports for a device ("00000000:1B:00.0", NVML's spelling); None on builds without
    the fields. With the UUID it names the physical board whatever CUDA_VISIBLE_DEVICES renumbered."""
    bus, dev, dom = (getattr(p, k, None) for k in ("pci_bus_id", "pci_device_id", "pci_domain_id"))
    if not all(isinstance(x, int) for x in (bus, dev, dom)):
        return None
    return f"{dom:08X}:{bus:02X}:{dev:02X}.0"


#: Variables the launchers export per process: torchrun (RANK, LOCAL_RANK, GROUP_RANK, ...) and Slurm's srun.
_LAUNCH_VARS = {"torchrun": ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"),
                "slurm": ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID")}


def collect_launch(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Which process of which launch this is: the launcher (torchrun, slurm or none), rank, world size, local
    rank, node and host. A fleet comparison names each device by it; one process alone (no launcher, or a launch
    of one: a plain run inside a Slurm job) is rank 0 of 1, and its host name is not recorded: a report of one process goes onto a public ticket, where a machine's name tells
    nothing about the numerics and may tell an outsider something about the network."""
    env = os.environ if environ is None else environ

    def num(name: str) -> int | None:
        value = env.get(name, "").split("(")[0]  # SLURM_NTASKS_PER_NODE may read "2(x3)"
        return int(value) if value.isdigit() else None

    launcher = next((k for k, names in _LAUNCH_VARS.items()
                     if num(names[0]) is not None and num(names[1]) is not None), "none")
    names = _LAUNCH_VARS.get(launcher)
    values = [num(n) for n in names] if names else [0, 1, 0, 1, 0]
    launch = {"launcher": launcher, "rank": values[0], "world_size": values[1], "local_rank": values[2],
              "local_world_size": values[3], "node_rank": values[4]}
    if isinstance(values[1], int) and values[1] > 1:  # a rank of a launch of several (as distributed.detect)
        launch["host"] = _field(socket.gethostname)
    return launch


def collect_cuda() -> dict[str, Any]:
    if not torch.cuda.is_available():
        reason = "torch built without CUDA" if torch.version.cuda is None else "no CUDA device visible"
        return {"available": False, "reason": reason, "cuda_build": torch.version.cuda}
    devices = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        uuid = str(getattr(p, "uuid", "")) or None
        devices.append({
            "index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
            "uuid": uuid, "pci_bus_id": _pci_bus_id(p),
            "total_memory_bytes": p.total_memory, "multiprocessors": p.multi_processor_count,
            "nvml": _best_effort(lambda: _nvml(uuid)),
        })
    return {
        "available": True,
        "runtime": torch.version.cuda,
        "cudnn_loaded": _field(torch.backends.cudnn.version),  # the library actually loaded, not one on disk
        "device_count": torch.cuda.device_count(),
        "devices": devices,
        # Which BLAS library matmuls go to (cuBLAS or cuBLASLt pick different kernels) and their workspaces (a
        # bigger workspace admits other algorithms; CUBLAS_WORKSPACE_CONFIG is also what determinism asks for).
        "preferred_blas_library": _field(lambda: str(torch.backends.cuda.preferred_blas_library()).split(".")[-1]),
        "cublas_workspace_size": _field(torch.backends.cuda.cublas_workspace_size),
        "cublaslt_workspace_size": _field(torch.backends.cuda.cublaslt_workspace_size),
    }


def collect_packages() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def collect_environment() -> dict[str, Any]:
    """Everything the report needs about where the numbers came from. Fast, never raises."""
    return {
        "platform": _best_effort(collect_platform),
        "cpu": _best_effort(collect_cpu),
        "memory": collect_memory(),
        "torch": _best_effort(collect_torch),
        "cuda": _best_effort(collect_cuda),
        "packages": _best_effort(collect_packages),
        "settings": _best_effort(capture_settings),
        "env_vars": _best_effort(collect_env_vars),
        "launch": _best_effort(collect_launch),
    }

"""What this machine computes on: usable CPU cores, and NVIDIA GPUs through NVML (nvidia-ml-py).

Nothing here imports torch or a library; without a GPU every answer is "none", never an error.
"""

import os
import platform

import msgspec


def usable_cpus() -> list[int]:
    """The core ids this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _visible_ordinals() -> list[int] | None:
    """CUDA_VISIBLE_DEVICES as CUDA ordinals ("" is the empty list); None when it is unset, or not a list of integers
    (UUIDs, MIG names: not mapped here, so every GPU counts). The one place tuibench reads the variable for what it
    means (the run's environment records it as it was, and the cluster's node agent unsets it for its own process)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")] if value.strip() else []
    if not all(p.lstrip("-").isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def visible_gpu_indices(count: int) -> list[int]:
    """NVML indices of the GPUs this process may use, in CUDA's order (so gpuN is cuda:N), of `count` on the machine."""
    ordinals = _visible_ordinals()
    if ordinals is None:
        return list(range(count))
    indices = []
    for index in ordinals:
        if not 0 <= index < count:
            break  # CUDA stops at the first invalid ordinal
        indices.append(index)
    return indices


def cuda_visible() -> bool:
    """Is there an NVIDIA device this process may use? (Without importing torch, nor initialising NVML.)"""
    if not os.path.exists("/proc/driver/nvidia"):
        return False
    ordinals = _visible_ordinals()
    # Without the count of GPUs, only a first ordinal that is negative ("-1", the usual way to hide them) says none.
    return ordinals is None or (bool(ordinals) and ordinals[0] >= 0)


class GpuInfo(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    name: str
    driver: str
    memory_total_mib: float
    compute_capability: str | None = None


def detect_gpus() -> list[GpuInfo]:
    """Every NVIDIA GPU of the machine (CUDA_VISIBLE_DEVICES or not: this describes the machine); none without NVML."""
    from tuibench.telemetry import nvml

    try:
        with nvml.session() as lib:
            driver = lib.nvmlSystemGetDriverVersion()
            gpus = []
            for index in range(lib.nvmlDeviceGetCount()):
                handle = lib.nvmlDeviceGetHandleByIndex(index)
                capability = nvml.query(lib, "nvmlDeviceGetCudaComputeCapability", handle)
                gpus.append(GpuInfo(
                    index=index,
                    name=lib.nvmlDeviceGetName(handle),
                    driver=driver,
                    memory_total_mib=lib.nvmlDeviceGetMemoryInfo(handle).total / 2**20,
                    compute_capability=None if capability is None else "{}.{}".format(*capability),
                ))
            return gpus
    except nvml.NvmlUnavailable:  # no driver / no library: a CPU-only machine
        return []


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

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


def cuda_visible() -> bool:
    """Is there an NVIDIA device this process may use? (Without importing torch.)"""
    return os.path.exists("/proc/driver/nvidia") and os.environ.get("CUDA_VISIBLE_DEVICES", "0") != ""


class GpuInfo(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    name: str
    driver: str
    memory_total_mib: float
    compute_capability: str | None = None


def detect_gpus() -> list[GpuInfo]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver / no library: a CPU-only machine
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                capability = f"{major}.{minor}"
            except pynvml.NVMLError:
                capability = None
            gpus.append(GpuInfo(
                index=index,
                name=pynvml.nvmlDeviceGetName(handle),
                driver=driver,
                memory_total_mib=pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20,
                compute_capability=capability,
            ))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

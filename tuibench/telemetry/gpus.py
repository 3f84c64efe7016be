"""What NVIDIA GPUs are present, through NVML (nvidia-ml-py). Empty, never an error, without one."""

import msgspec


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

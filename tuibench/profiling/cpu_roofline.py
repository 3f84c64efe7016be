"""This CPU's roofline, measured: matmul FLOP/s and copy bandwidth, at a thread count and dtype. Cached.

Datasheet peaks mean little on a shared VM, so the CPU's ceiling is what torch reaches here: the best
of several square matmuls (large enough to be compute-bound) and the best of several large copies
(far larger than the caches; a copy reads and writes each byte once). Measuring takes a few seconds
and the figures are cached per CPU model, thread count and dtype.
"""

import json
import os
import subprocess
import sys
import time

import msgspec

from tuibench.core.roofline import Roofline
from tuibench.core.paths import cache_dir
from tuibench.telemetry.devices import cpu_model

MATMUL_N = 1024
COPY_BYTES = 256 * 2**20
SOURCE = "measured here: best of torch matmul {n}x{n} and a {mib} MiB copy"


def _cache_path():
    return cache_dir() / "cpu_roofline.json"


def _key(threads: int, dtype: str) -> str:
    return f"{cpu_model()}|{threads}|{dtype}"


def _best_s(run, repeats: int, budget_s: float) -> float:
    best, deadline = float("inf"), time.perf_counter() + budget_s
    for done in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        if done >= 2 and time.perf_counter() > deadline:
            break
    return best


def measure(threads: int, dtype: str) -> Roofline:
    """Runs the microbenchmark in this process (threads must already be pinned)."""
    import torch

    torch.set_num_threads(threads)
    torch_dtype = getattr(torch, dtype)
    a = torch.randn(MATMUL_N, MATMUL_N, dtype=torch_dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, dtype=torch_dtype)
    a @ b  # warm-up: first call picks kernels and faults pages in
    matmul_s = _best_s(lambda: a @ b, repeats=20, budget_s=3.0)
    src = torch.ones(COPY_BYTES // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    copy_s = _best_s(lambda: dst.copy_(src), repeats=10, budget_s=3.0)
    return Roofline(
        device=f"{cpu_model()} ({threads} thread{'s' if threads > 1 else ''})",
        dtype=dtype,
        peak_flops_s=2.0 * MATMUL_N**3 / matmul_s,
        bandwidth_bytes_s=2.0 * COPY_BYTES / copy_s,
        source=SOURCE.format(n=MATMUL_N, mib=COPY_BYTES // 2**20),
    )


def _read_cache() -> dict:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def cached(threads: int, dtype: str) -> Roofline | None:
    entry = _read_cache().get(_key(threads, dtype))
    return Roofline(**entry) if entry else None


def store(roofline: Roofline, threads: int) -> None:
    import msgspec

    path = _cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = _read_cache()
    entries[_key(threads, roofline.dtype)] = msgspec.to_builtins(roofline)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(path)


def cpu_roofline(threads: int, dtype: str, in_process: bool = False) -> Roofline:
    """The cached figures, or measured now: in this process (a child with torch) or in a fresh one."""
    found = cached(threads, dtype)
    if found:
        return found
    if in_process:
        roofline = measure(threads, dtype)
        store(roofline, threads)
        return roofline
    env = os.environ | {var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    subprocess.run([sys.executable, "-m", "tuibench.profiling.cpu_roofline", str(threads), dtype], check=True, env=env)
    found = cached(threads, dtype)
    if found is None:
        raise RuntimeError("the CPU microbenchmark ran but left no figures in the cache")
    return found


def roofline_for(gpu_name: str | None, dtype: str, threads: int, in_process: bool = False) -> Roofline | None:
    """The ceiling of what a run computes on: a listed GPU by its NVML name, or this CPU measured.

    None for a GPU the table does not list (the profile then has times and theory, but no % of roofline).
    """
    if gpu_name is None:
        return cpu_roofline(threads, dtype, in_process)
    from tuibench.analysis.hardware import gpu_by_nvml_name

    gpu = gpu_by_nvml_name(gpu_name)
    return gpu.roofline(dtype) if gpu and dtype in gpu.peak_flops_s else None



class DeviceRoofline(msgspec.Struct, frozen=True):
    roofline: Roofline
    dtype: str  # the dtype asked for, `auto` resolved for the device
    note: str = ""  # how a typed device name was taken, when it was not the table's own key


def device_roofline(device: str, dtype: str, threads: int) -> DeviceRoofline:
    """The roofline theory is drawn on, for a device as a user names it: auto (the GPU here, else this CPU), cpu,
    or a GPU of the table (h100, a100-80gb, …). UserError for a GPU here that the table does not list."""
    from tuibench.analysis.hardware import gpu_by_key, gpu_by_nvml_name
    from tuibench.core.errors import UserError
    from tuibench.telemetry.devices import detect_gpus

    key = device.lower()
    if key == "auto":
        gpus = detect_gpus()
        known = gpu_by_nvml_name(gpus[0].name) if gpus else None
        if gpus and known is None:
            raise UserError(f"{gpus[0].name} is not in the device table: pass --device with one of the listed GPUs, "
                            "or cpu")
        key = known.key if known else "cpu"
    resolved = dtype if dtype != "auto" else ("float32" if key == "cpu" else "bfloat16")
    if key == "cpu":
        if resolved == "float8":
            raise UserError("--dtype float8: the CPU roofline is measured at float32, bfloat16 or float16")
        return DeviceRoofline(cpu_roofline(threads, resolved), resolved)
    gpu = gpu_by_key(key)
    note = f"--device {device}: the {gpu.name} ({gpu.key})" if gpu.key != key else ""
    return DeviceRoofline(gpu.roofline(resolved), resolved, note)


if __name__ == "__main__":
    threads_arg, dtype_arg = int(sys.argv[1]), sys.argv[2]
    result = measure(threads_arg, dtype_arg)
    store(result, threads_arg)
    print(f"{result.device}: {result.peak_flops_s / 1e9:.1f} GFLOP/s {dtype_arg}, "
          f"{result.bandwidth_bytes_s / 1e9:.1f} GB/s", file=sys.stderr)

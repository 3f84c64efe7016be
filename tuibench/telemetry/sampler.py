"""Device telemetry sampled in a thread of the run's child, so samples share the run's clock.

One source per device: `gpu0`, `gpu1`, ... through NVML where it initialises, and `cpu` (psutil)
always. A field a device cannot report is None (NA), never an error and never 0.
"""

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, Self

from tuibench.core.events import TelemetrySample
from tuibench.telemetry import nvml
from tuibench.telemetry.devices import usable_cpus, visible_gpu_indices
from tuibench.telemetry.processes import ProcessTree, others_among

DEFAULT_INTERVAL_S = 0.25
_JOIN_TIMEOUT_S = 5.0  # a wedged driver can stall an NVML call; the run must still end

Values = dict[str, float | None]


class Source(Protocol):
    name: str

    def read(self) -> Values: ...


class NvmlSource:
    """One NVIDIA GPU. NVML must already be held (gpu_sources holds it for its sources, close_sources lets go)."""

    def __init__(self, index: int, name: str | None = None, tree: ProcessTree | None = None):
        import pynvml

        self._nvml = pynvml
        self._tree = tree
        self.name = name or f"gpu{index}"
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._energy_origin_mj: float | None = None
        self._energy_mj()  # the origin: energy_j counts from the sampler's start

    def _call(self, function: str, *args):
        # Fields are read one by one: a GPU lacking one (no power sensor on some boards, no energy
        # counter before Volta, a function an old library lacks) loses that field only.
        return nvml.query(self._nvml, function, self._handle, *args)

    def _energy_mj(self) -> float | None:
        total_mj = self._call("nvmlDeviceGetTotalEnergyConsumption")
        if total_mj is None:
            return None
        if self._energy_origin_mj is None:
            self._energy_origin_mj = float(total_mj)
        return float(total_mj) - self._energy_origin_mj

    def read(self) -> Values:
        nvml = self._nvml
        util = self._call("nvmlDeviceGetUtilizationRates")
        memory = self._call("nvmlDeviceGetMemoryInfo")
        power_mw = self._call("nvmlDeviceGetPowerUsage")
        energy_mj = self._energy_mj()
        reasons = self._call("nvmlDeviceGetCurrentClocksEventReasons")
        if reasons is None:  # drivers before 535 only have the older name
            reasons = self._call("nvmlDeviceGetCurrentClocksThrottleReasons")
        return {
            "util_pct": _number(util, "gpu"),
            "mem_util_pct": _number(util, "memory"),
            "mem_used_mib": None if memory is None else memory.used / 2**20,
            "mem_total_mib": None if memory is None else memory.total / 2**20,
            "power_w": None if power_mw is None else power_mw / 1000.0,
            "sm_clock_mhz": _float(self._call("nvmlDeviceGetClockInfo", getattr(nvml, "NVML_CLOCK_SM", 1))),
            "mem_clock_mhz": _float(self._call("nvmlDeviceGetClockInfo", getattr(nvml, "NVML_CLOCK_MEM", 2))),
            "temp_c": _float(self._call("nvmlDeviceGetTemperature", getattr(nvml, "NVML_TEMPERATURE_GPU", 0))),
            "energy_j": None if energy_mj is None else energy_mj / 1000.0,
            "throttle_reasons": _float(reasons),
            "other_processes": self._other_processes(),
        }

    def _other_processes(self) -> float | None:
        listed = self._call("nvmlDeviceGetComputeRunningProcesses")
        if listed is None or self._tree is None:
            return None
        others = others_among((p.pid for p in listed), self._tree.pids())
        return None if others is None else float(others)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _number(struct, field: str) -> float | None:
    return None if struct is None else float(getattr(struct, field))


def _busy_and_total(times) -> tuple[float, float]:
    """As psutil counts it: guest time is already inside user/nice, idle and iowait are not busy."""
    fields = times._asdict()
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    return total - fields["idle"] - fields.get("iowait", 0.0), total


class CpuSource:
    """System and per-core CPU use (the cores this process may run on), a process's RSS, system memory, and with
    a process tree, how many cores' worth other processes used (`others_cores`).

    CPU shares are computed here from successive cpu_times() rather than with psutil.cpu_percent,
    whose state is per calling thread: the sampler's thread and stop()'s caller would each see a
    different window.
    """

    name = "cpu"

    def __init__(self, pid: int | None = None, tree: ProcessTree | None = None, process: bool = True):
        import psutil

        self._psutil = psutil
        self._tree = tree
        self._cores = usable_cpus()
        self._process = None
        if process:  # False: the machine's figures only (a node's, read by an agent whose own RSS says nothing)
            try:
                self._process = psutil.Process(os.getpid() if pid is None else pid)
            except psutil.Error:
                pass
        self._last = self._core_times()  # primes the first window
        self._last_wall_s = time.monotonic()
        if tree is not None:
            tree.cpu_s_since_last()

    def _core_times(self) -> list[tuple[float, float]]:
        return [_busy_and_total(t) for t in self._psutil.cpu_times(percpu=True)]

    def read(self) -> Values:
        now, wall_s = self._core_times(), time.monotonic()
        deltas = [(b1 - b0, t1 - t0) for (b0, t0), (b1, t1) in zip(self._last, now)]
        window_s, self._last, self._last_wall_s = wall_s - self._last_wall_s, now, wall_s
        busy_s = sum(d[0] for d in deltas)
        total_s = sum(d[1] for d in deltas)
        values: Values = {"cpu_pct": _share_pct(busy_s, total_s)}
        if self._tree is not None:
            # Every core's busy time (the whole machine's), less what the run's own processes used.
            ours_s = self._tree.cpu_s_since_last()
            values["others_cores"] = max(0.0, busy_s - ours_s) / window_s if window_s > 0 else None
        for core in self._cores:
            values[f"cpu{core}_pct"] = _share_pct(*deltas[core]) if core < len(deltas) else None
        values["rss_mib"] = self._rss_mib()
        values["mem_used_pct"] = float(self._psutil.virtual_memory().percent)
        return values

    def _rss_mib(self) -> float | None:
        if self._process is None:
            return None
        try:
            return self._process.memory_info().rss / 2**20
        except self._psutil.Error:  # the process is gone (or no longer ours to read)
            return None


def _share_pct(busy_s: float, total_s: float) -> float:
    # A window shorter than one clock tick (10 ms) has no time in it: call it idle, as psutil does.
    return min(100.0, max(0.0, 100.0 * busy_s / total_s)) if total_s > 0 else 0.0


def gpu_sources(tree: ProcessTree | None = None) -> list[NvmlSource]:
    """Every GPU this process may use, through NVML; none without a driver. The sources together hold NVML once,
    until close_sources (none: nothing is held)."""
    try:
        lib = nvml.acquire()
    except nvml.NvmlUnavailable:  # no driver, no libnvidia-ml, a container without the device: CPU only
        return []
    sources = []
    try:
        for ordinal, index in enumerate(visible_gpu_indices(lib.nvmlDeviceGetCount())):
            try:
                sources.append(NvmlSource(index, name=f"gpu{ordinal}", tree=tree))
            except lib.NVMLError:  # a GPU that fell off the bus, or one we may not query
                continue
    except lib.NVMLError:
        pass
    if not sources:
        nvml.release()
    return sources


def make_sources(pid: int | None = None, ours: Sequence[int] = (), gpus: bool = True) -> list[Source]:
    """Every visible GPU through NVML (initialised here when there is one; none with gpus=False), and always the
    CPU. With `ours`, the roots of the run's own processes, each also says what other processes used."""
    tree = ProcessTree(ours) if ours else None
    return [*(gpu_sources(tree) if gpus else []), CpuSource(pid, tree)]


def close_sources(sources: Sequence[Source]) -> None:
    if any(isinstance(s, NvmlSource) for s in sources):
        nvml.release()  # the one hold gpu_sources took for them all


class TelemetrySampler:
    """Emits one TelemetrySample per source every `interval_s`, from a daemon thread, until stop().

    Deadlines are absolute (start + k * interval), so the rate does not drift with the cost of a
    sample; a deadline missed entirely (a stalled process) is skipped rather than caught up in a burst.
    """

    def __init__(self, emit: Callable[[TelemetrySample], None], clock_s: Callable[[], float],
                 interval_s: float = DEFAULT_INTERVAL_S, pid: int | None = None,
                 sources: Sequence[Source] | None = None, ours: Sequence[int] = (), gpus: bool = True,
                 extra: Sequence[Source] = ()):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self._emit = emit
        self._clock_s = clock_s
        self.interval_s = interval_s
        self._pid = pid
        self._ours = tuple(ours)
        self._gpus = gpus
        self._extra = list(extra)  # sampled beside the devices (a server's metrics), never closed here
        self.sources: list[Source] = list(sources) if sources is not None else []
        self._given_sources = sources is not None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._emit_failed = False

    def start(self) -> Self:
        if self._thread is not None:
            return self
        if not self._given_sources:
            self.sources = make_sources(self._pid, self._ours, self._gpus)
        self.sources += self._extra
        self._thread = threading.Thread(target=self._loop, name="tuibench-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the thread, then takes one last sample (so the run's end is covered). Idempotent."""
        if self._stopped or self._thread is None:
            self._stopped = True
            return
        self._stopped = True
        self._stop.set()
        self._thread.join(_JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            return  # stuck in a driver call: leave NVML to the process's exit
        self.sample()
        if not self._given_sources:
            close_sources(self.sources)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _loop(self) -> None:
        start = time.monotonic()
        k = 1
        while not self._stop.wait(max(0.0, start + k * self.interval_s - time.monotonic())):
            if not self.sample():
                return
            k = max(k + 1, math.floor((time.monotonic() - start) / self.interval_s) + 1)

    def sample(self) -> bool:
        """Reads every source once, stamped with one time; False once the sink is gone (the run ended)."""
        if self._emit_failed:
            return False
        t_s = self._clock_s()
        for source in self.sources:
            try:
                values = source.read()
            except Exception:  # noqa: BLE001, S112 - telemetry must never take a run down; NA this time
                continue
            try:
                self._emit(TelemetrySample(t_s=t_s, source=source.name, values=values))
            except Exception:  # noqa: BLE001 - a closed pipe: the parent has gone or stopped listening
                self._emit_failed = True
                return False
        return True

"""The telemetry sampler on this machine's real CPU; NVML only through a fake module (there is no GPU here)."""

import os
import sys
import time
import types
from collections import namedtuple

import pytest

from tuibench.core import events as ev
from tuibench.core.aggregate import compute_metrics
from tuibench.core.metrics import gpu_energy_j
from tuibench.core.records import RequestRecord
from tuibench.core.reducer import RunState
from tuibench.telemetry.devices import usable_cpus
from tuibench.telemetry.sampler import (
    CpuSource,
    NvmlSource,
    TelemetrySampler,
    make_sources,
    visible_gpu_indices,
)


def test_cpu_source_reports_sane_cpu_and_this_process_rss():
    source = CpuSource()
    sum(i * i for i in range(200_000))  # some busy time in the first window
    values = source.read()
    cores = os.cpu_count()
    assert source.name == "cpu"
    assert 0.0 <= values["cpu_pct"] <= 100.0 * cores
    for core in usable_cpus():
        assert 0.0 <= values[f"cpu{core}_pct"] <= 100.0
    assert values["rss_mib"] > 0
    assert 0.0 < values["mem_used_pct"] <= 100.0


def test_cpu_source_of_a_process_that_is_gone_has_no_rss():
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    source = CpuSource(child.pid)
    child.wait()
    assert source.read()["rss_mib"] is None


def test_sampler_at_20_hz_keeps_its_rate_and_clock_and_stops_promptly():
    samples: list[ev.TelemetrySample] = []
    origin = time.perf_counter() - 100.0  # a run clock that is clearly not perf_counter

    def clock_s() -> float:
        return time.perf_counter() - origin

    sampler = TelemetrySampler(samples.append, clock_s, interval_s=0.05).start()
    started_s = clock_s()
    time.sleep(0.5)
    before_stop = time.perf_counter()
    sampler.stop()
    stop_took_s = time.perf_counter() - before_stop
    sampler.stop()  # idempotent: no second last sample

    assert {s.source for s in samples} == {"cpu"}
    # 10 on the deadlines (0.05 ... 0.5 s), the one stop() takes; a loaded machine may miss one.
    assert 9 <= len(samples) <= 12
    times = [s.t_s for s in samples]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert started_s < times[0] < started_s + 0.2 and times[-1] - started_s < 0.7
    assert stop_took_s < 0.2
    assert not sampler._thread.is_alive()
    assert all(s.values["rss_mib"] > 0 for s in samples)


def test_sampler_stops_quietly_when_its_sink_breaks():
    calls = []

    def broken_emit(sample):
        calls.append(sample)
        raise BrokenPipeError

    sampler = TelemetrySampler(broken_emit, time.perf_counter, interval_s=0.01).start()
    time.sleep(0.1)
    assert not sampler._thread.is_alive()
    sampler.stop()
    assert len(calls) == 1


def test_make_sources_on_this_machine_is_cpu_only():
    sources = make_sources()
    assert [s.name for s in sources] == ["cpu"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, [0, 1, 2, 3]), ("2,0", [2, 0]), ("1, 3", [1, 3]), ("", []), ("0,7,1", [0]),
    ("GPU-8f6a1c2e", [0, 1, 2, 3]), ("MIG-1/2/3", [0, 1, 2, 3]),
])
def test_visible_gpu_indices_follow_integer_cuda_visible_devices(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert visible_gpu_indices(4) == expected


def _fake_pynvml(energy_mj: list[int], with_event_reasons: bool) -> types.ModuleType:
    """A GPU with utilisation, memory, clocks and energy, but no power sensor and no temperature."""
    nvml = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    Util = namedtuple("Util", "gpu memory")
    Memory = namedtuple("Memory", "total free used")
    nvml.NVMLError = NVMLError
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0

    def unsupported(*args):
        raise NVMLError("Not Supported")

    nvml.nvmlDeviceGetHandleByIndex = lambda index: f"handle{index}"
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: Util(87, 40)
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: Memory(80 * 2**30, 60 * 2**30, 20 * 2**30)
    nvml.nvmlDeviceGetPowerUsage = unsupported
    nvml.nvmlDeviceGetTemperature = unsupported
    nvml.nvmlDeviceGetClockInfo = lambda handle, clock: {1: 1980, 2: 2619}[clock]
    nvml.nvmlDeviceGetTotalEnergyConsumption = lambda handle: energy_mj.pop(0)
    if with_event_reasons:
        nvml.nvmlDeviceGetCurrentClocksEventReasons = lambda handle: 0x4
    return nvml


@pytest.mark.parametrize("with_event_reasons", [True, False])
def test_nvml_source_with_fake_nvml_no_gpu_here(monkeypatch, with_event_reasons):
    counter_mj = [5_000_000, 5_000_250, 5_012_750]  # a counter since driver load; read once at start
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(counter_mj, with_event_reasons))
    source = NvmlSource(1)
    first, second = source.read(), source.read()

    assert source.name == "gpu1"
    assert first["util_pct"] == 87.0 and first["mem_util_pct"] == 40.0
    assert first["mem_used_mib"] == 20 * 1024 and first["mem_total_mib"] == 80 * 1024
    assert first["sm_clock_mhz"] == 1980.0 and first["mem_clock_mhz"] == 2619.0
    assert first["power_w"] is None and first["temp_c"] is None  # NVMLError: NA for that field only
    # The old library has no ClocksEventReasons nor ClocksThrottleReasons here: a missing function is NA too.
    assert first["throttle_reasons"] == (4.0 if with_event_reasons else None)
    assert first["energy_j"] == pytest.approx(0.25) and second["energy_j"] == pytest.approx(12.75)


def _record(index: int, start_s: float, e2el_ms: float, output_tokens: int) -> RequestRecord:
    return RequestRecord(index=index, input_tokens=8, output_tokens=output_tokens, target_output_tokens=output_tokens,
                         start_s=start_s, ttft_ms=10.0, e2el_ms=e2el_ms)


def _energy(t_s: float, source: str, energy_j: float | None) -> ev.TelemetrySample:
    return ev.TelemetrySample(t_s=t_s, source=source, values={"energy_j": energy_j, "power_w": None})


def test_energy_per_output_token_sums_gpus_over_the_measured_window():
    # Measured window: 1.0 s (first start) to 3.0 s (last end); 100 output tokens.
    records = [_record(0, 1.0, 1000.0, 40), _record(1, 2.0, 1000.0, 60)]
    telemetry = [
        # gpu0 draws 100 W: 0 J at 0 s, samples every 0.5 s -> 200 J between 1 and 3 s.
        *(_energy(0.5 * k, "gpu0", 50.0 * k) for k in range(9)),
        # gpu1 draws 50 W, sampled off the window's edges (0.75 ... 3.25 s): edges interpolated -> 100 J.
        *(_energy(0.75 + 0.5 * k, "gpu1", 25.0 * k) for k in range(6)),
        _energy(2.0, "gpu2", None),  # a GPU without the counter adds nothing
        ev.TelemetrySample(t_s=2.0, source="cpu", values={"cpu_pct": 50.0}),
    ]
    metrics = compute_metrics(records, telemetry=telemetry)
    assert metrics.output_tokens == 100
    assert metrics.energy_per_output_token_j == pytest.approx(300.0 / 100)
    assert gpu_energy_j(telemetry, 1.0, 3.0) == pytest.approx(300.0)


def test_energy_per_output_token_is_na_without_a_counter():
    records = [_record(0, 1.0, 1000.0, 40)]
    assert compute_metrics(records).energy_per_output_token_j is None
    cpu_only = [ev.TelemetrySample(t_s=1.5, source="cpu", values={"cpu_pct": 50.0})]
    assert compute_metrics(records, telemetry=cpu_only).energy_per_output_token_j is None
    # Samples that all lie before the window say nothing about it.
    early = [_energy(0.1, "gpu0", 0.0), _energy(0.5, "gpu0", 10.0)]
    assert compute_metrics(records, telemetry=early).energy_per_output_token_j is None


def test_reducer_energy_follows_samples_up_to_the_first_past_the_last_request():
    state = RunState()
    state.apply(_energy(0.0, "gpu0", 0.0))
    state.apply(ev.RequestDone(t_s=2.0, record=_record(0, 1.0, 1000.0, 50)))
    assert state.metrics().energy_per_output_token_j is None  # no sample reaches into [1, 2] s yet
    state.apply(_energy(3.0, "gpu0", 300.0))  # 100 W: 100 J in [1, 2]
    assert state.metrics().energy_per_output_token_j == pytest.approx(100.0 / 50)
    cached = state.metrics()
    state.apply(_energy(4.0, "gpu0", 900.0))  # past the window and not the first past it: no recompute
    state.apply(ev.TelemetrySample(t_s=4.0, source="cpu", values={"cpu_pct": 1.0}))
    assert state.metrics() is cached


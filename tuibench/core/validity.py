"""Run-validity warnings: what may make a run's numbers untrustworthy, judged once when it ends and stored with it.

A warning never changes a number; it says why a number may not be the library's alone: other load on the
machine, a throttled GPU, a client too slow to send on time, failed requests, a workload that was not the
one planned, threads that share a core with tuibench itself.
"""

from collections.abc import Sequence
from typing import Literal

import msgspec

from tuibench.core.events import TelemetrySample
from tuibench.core.metrics import RunMetrics
from tuibench.core.spec import RunSpec, gpus_used

WarningKind = Literal["failed", "input_drift", "output_drift", "client_saturated", "hidden_wait", "cpu_contention",
                      "gpu_contention", "gpu_throttled", "threads_unpinned"]

CLIENT_LAG_P99_MS = 10.0  # a client later than this at p99 no longer offers the planned load
# TTFT p99 from the intended send over TTFT p99 from the actual send above which the gap is said: requests waited
# long before they left (a concurrency limit, a client behind), and the figures from the send hide it.
HIDDEN_WAIT_RATIO = 1.5
# Other processes' CPU use, in cores, above which a run is flagged: half a core, or a tenth of a big machine.
OTHERS_CORES_MIN = 0.5
OTHERS_CORES_SHARE = 0.1
# NVML clock-event reasons that slow a GPU down (not idle, application clocks or sync boost):
# SW power cap, HW slowdown, SW thermal, HW thermal, HW power brake.
THROTTLE_BITS = {0x4: "power cap", 0x8: "hardware slowdown", 0x20: "thermal (software)",
                 0x40: "thermal (hardware)", 0x80: "power brake"}


class RunWarning(msgspec.Struct, frozen=True):
    kind: WarningKind
    message: str


def run_warnings(spec: RunSpec | None, environment: dict[str, object], metrics: RunMetrics | None,
                 window_s: tuple[float, float] | None, telemetry: Sequence[TelemetrySample]) -> list[RunWarning]:
    """`window_s`: the measured window (first request sent to last finished); samples outside it are not judged."""
    if spec is None:
        return []
    samples = [s for s in telemetry if window_s is None or window_s[0] <= s.t_s <= window_s[1]]
    return [w for w in (*_workload(spec, metrics), _client(spec, metrics), _hidden_wait(spec, metrics),
                        _cpu(environment, samples),
                        *_gpu(samples), _threads(spec, environment)) if w is not None]


def _workload(spec: RunSpec, metrics: RunMetrics | None) -> list[RunWarning]:
    if metrics is None:
        return []
    found = []
    if metrics.failed:
        found.append(RunWarning("failed", f"{metrics.failed} of {metrics.failed + metrics.completed} requests "
                                          f"failed (first: {metrics.first_error or ''})"))
    if (drift := metrics.input_drift) and drift.off:
        found.append(RunWarning("input_drift", drift.describe("input tokens") + ": not the workload planned"))
    holds_length = (spec.serving.length_policy != "none" if spec.scenario == "serving"
                    else not spec.offline.honor_eos)
    if (drift := metrics.output_drift) and drift.off and holds_length:
        found.append(RunWarning("output_drift", drift.describe("output tokens") + ": the library did not hold "
                                                                                 "outputs to length"))
    return found


def _client(spec: RunSpec, metrics: RunMetrics | None) -> RunWarning | None:
    lag = metrics.schedule_lag_ms if metrics else None
    if spec.scenario != "serving" or lag is None or lag.p99 <= CLIENT_LAG_P99_MS:
        return None
    late = [f"worker {w.worker} p99 {w.lag_ms.p99:,.1f} ms" for w in metrics.workers or ()
            if w.lag_ms.p99 > CLIENT_LAG_P99_MS]
    which = f" ({', '.join(late)})" if late else ""
    return RunWarning("client_saturated", f"the client sent late (schedule lag p99 {lag.p99:,.1f} ms > "
                                          f"{CLIENT_LAG_P99_MS:g} ms{which}): the load offered was below the plan")


def _hidden_wait(spec: RunSpec, metrics: RunMetrics | None) -> RunWarning | None:
    """Coordinated omission, said where it matters: at a set rate or a trace's times (a burst is meant to wait),
    TTFT as the user waited is far above TTFT from the send."""
    burst = spec.serving.request_rate is None and spec.dataset.kind != "trace"  # a trace has times of its own
    if spec.scenario != "serving" or burst or metrics is None:
        return None
    sent, intended = metrics.ttft_ms, metrics.ttft_intended_ms
    if sent is None or intended is None or intended.p99 <= HIDDEN_WAIT_RATIO * sent.p99:
        return None
    return RunWarning("hidden_wait", f"TTFT p99 is {intended.p99:,.1f} ms from when requests were meant to be sent, "
                                     f"{sent.p99:,.1f} ms from when they were: they waited to leave (a concurrency "
                                     f"limit, or a client behind); the user's wait is the first")


def _cpu(environment: dict[str, object], samples: Sequence[TelemetrySample]) -> RunWarning | None:
    others = [v for s in samples if s.source == "cpu" and (v := s.values.get("others_cores")) is not None]
    if not others:
        return None
    cores = int(environment.get("cpus") or 1)
    limit = max(OTHERS_CORES_MIN, OTHERS_CORES_SHARE * cores)
    mean = sum(others) / len(others)
    if mean <= limit:
        return None
    return RunWarning("cpu_contention", f"other processes used {mean:.1f} of {cores} cores on average while it "
                                        f"ran (more than {limit:.1f}): its numbers are not the library's alone")


def _gpu(samples: Sequence[TelemetrySample]) -> list[RunWarning]:
    by_gpu: dict[str, list[dict]] = {}
    for sample in samples:
        if sample.source.startswith("gpu"):
            by_gpu.setdefault(sample.source, []).append(sample.values)
    found = []
    for gpu, values in sorted(by_gpu.items()):
        if others := max((v.get("other_processes") or 0 for v in values), default=0):
            found.append(RunWarning("gpu_contention", f"{gpu}: {others:.0f} other process(es) used it while the "
                                                      "run did"))
        masks = [int(m) for v in values if (m := v.get("throttle_reasons")) is not None]
        throttled = [m for m in masks if any(m & bit for bit in THROTTLE_BITS)]
        if throttled:
            why = sorted({name for m in throttled for bit, name in THROTTLE_BITS.items() if m & bit})
            found.append(RunWarning("gpu_throttled", f"{gpu}: clocks held down in {len(throttled)} of {len(masks)} "
                                                     f"samples ({', '.join(why)})"))
    return found


def _threads(spec: RunSpec, environment: dict[str, object]) -> RunWarning | None:
    if gpus_used(spec, environment):
        return None  # a GPU run: host threads matter little
    if spec.scenario == "serving" and not spec.serving.managed:
        return None  # a server the user started: its threads are theirs
    threads, cores = environment.get("threads"), environment.get("cpus")
    if not isinstance(threads, int) or not isinstance(cores, int) or cores < 2 or threads < cores:
        return None
    return RunWarning("threads_unpinned", f"{threads} library thread(s) on {cores} cores: they share a core with "
                                          f"tuibench's own process and spin; --threads {cores - 1} leaves it one")

"""Run figures in bounded memory: the aggregate against the figures of all requests at once, the sketch past its
exact limit, the telemetry window and the charts' timeline when they thin, and a run state that stops growing."""

import random
import tracemalloc

import pytest

from tuibench.core import aggregate, events as ev
from tuibench.core.aggregate import Distribution, RunAggregate, compute_metrics
from tuibench.core.metrics import describe, request_end_s
from tuibench.core.records import RequestRecord
from tuibench.core.reducer import RunState
from tuibench.core.sample_window import SourceWindow, TelemetryWindow
from tuibench.core.server_view import server_view
from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams
from tuibench.core.timeline import Timeline


def _record(i: int, rng: random.Random, gaps: int = 8, failed: bool = False) -> RequestRecord:
    start_s = i * 0.1 + rng.random() * 0.05
    if failed:
        return RequestRecord(index=i, input_tokens=16, output_tokens=0, target_output_tokens=gaps + 1,
                             start_s=start_s, scheduled_s=i * 0.1, error=f"HTTP 500 on {i}")
    itl = [rng.uniform(5, 15) for _ in range(gaps)]
    ttft = rng.uniform(20, 200)
    return RequestRecord(index=i, input_tokens=16, output_tokens=gaps + 1, target_output_tokens=gaps + 1,
                         start_s=start_s, scheduled_s=i * 0.1, ttft_ms=ttft, e2el_ms=ttft + sum(itl), itl_ms=itl)


def _trimmed(records: list[RequestRecord], trim: int) -> list[RequestRecord]:
    """The paper's trim as a sort, to check the aggregate's two heaps against."""
    ordered = sorted(records, key=lambda r: (r.start_s, r.index))
    return ordered[trim:len(ordered) - trim]


@pytest.mark.parametrize("trim", [0, 1, 3, 20])
def test_streaming_trim_keeps_the_middle_whatever_order_requests_end_in(trim):
    rng = random.Random(trim)
    records = [_record(i, rng, failed=i % 7 == 3) for i in range(30)]
    shuffled = records[:]
    rng.shuffle(shuffled)
    got = compute_metrics(shuffled, trim=trim)
    kept = _trimmed(records, trim)
    done = [r for r in kept if r.ok]
    assert (got.completed, got.failed) == (len(done), len(kept) - len(done))
    if done:
        assert got.ttft_ms == describe(r.ttft_ms for r in done)
        assert got.duration_s == pytest.approx(max(map(request_end_s, done)) - min(r.start_s for r in kept))
        assert got.first_error in {r.error for r in kept if not r.ok} | {None}
    else:
        assert got.ttft_ms is None and got.duration_s is None


def test_a_distribution_is_exact_to_its_limit_then_a_sketch_within_its_accuracy(monkeypatch):
    monkeypatch.setattr(aggregate, "EXACT_VALUES", 1000)
    rng = random.Random(1)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    exact, sketched = Distribution(), Distribution()
    exact.extend(values[:1000])
    sketched.extend(values)
    assert exact.stat() == describe(values[:1000])  # still a list of values: exactly as before
    truth, got = describe(values), sketched.stat()
    assert got.relative_error == aggregate.SKETCH_RELATIVE_ACCURACY and truth.relative_error == 0.0
    assert (got.n, got.min, got.max) == (truth.n, truth.min, truth.max)
    assert got.mean == pytest.approx(truth.mean, rel=1e-9) and got.std == pytest.approx(truth.std, rel=1e-9)
    for q in ("p50", "p90", "p99"):  # the sketch's own guarantee, on the rank it picks
        assert getattr(got, q) == pytest.approx(getattr(truth, q), rel=0.02)


def test_telemetry_thins_to_its_capacity_keeping_counters_and_peaks():
    window = SourceWindow(capacity=64)
    samples = [ev.TelemetrySample(t_s=0.5 * i, source="server",
                                  values={"waiting_requests": 40.0 if i == 777 else 1.0,
                                          "prefix_cache_hits_tokens": 10.0 * i, "prefix_cache_queries_tokens": 20.0 * i})
               for i in range(5000)]
    for sample in samples:
        window.add(sample)
    kept = window.samples()
    assert len(kept) <= 64 + 2
    assert kept[0] == samples[0] and kept[-1].values == samples[-1].values  # a counter's first and last value
    assert [s.t_s for s in kept] == sorted(s.t_s for s in kept)
    assert server_view(kept) == server_view(samples)  # the peak of 40 waiting survived the folds


def test_the_timeline_stays_small_and_its_throughput_ends_exact():
    rng = random.Random(2)
    records = [_record(i, rng) for i in range(10_000)]
    timeline = Timeline(max_points=256)
    for record in records:
        timeline.add(record)
    xs, ys = timeline.throughput()
    assert len(xs) < 256
    metrics = compute_metrics(records)
    assert ys[-1] == pytest.approx(metrics.output_throughput_tok_s)  # every token counted at the last point
    assert len(timeline.latency("ttft_ms")[0]) == len(xs)


def test_a_run_state_stops_growing_with_its_requests(monkeypatch):
    """Each request brings 64 ITL gaps and every half second of the run two samples. Once the distributions are
    past their exact limit (lowered here to 1,000) and the charts and telemetry have thinned once, more requests
    add nothing but the swing of the windows between half full and full (telemetry ~0.6 MiB, charts ~0.2 MiB)."""
    monkeypatch.setattr(aggregate, "EXACT_VALUES", 1000)
    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random", input_len=16, output_len=65),
                   scenario="serving", serving=ServingParams(request_rate=10.0))
    state = RunState()
    state.apply(ev.RunStarted(t_s=0.0, spec=spec, num_requests=16_000, pid=1))
    rng = random.Random(3)

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            record = _record(i, rng, gaps=64)
            state.apply(ev.RequestDone(t_s=record.start_s + 1, record=record))
            if i % 5 == 0:
                for source in ("cpu", "server"):
                    state.apply(ev.TelemetrySample(t_s=i * 0.1, source=source, values={"cpu_pct": 50.0,
                                                                                         "waiting_requests": 2.0}))
        state.metrics()

    feed(0, 6_000)
    tracemalloc.start()
    feed(6_000, 16_000)
    grown_kib = tracemalloc.get_traced_memory()[0] / 1024
    tracemalloc.stop()
    # Held as records, 10,000 more requests were ~57 MiB (5.7 KiB each, measured in the app before this change).
    assert grown_kib < 1536, f"the run state grew {grown_kib:,.0f} KiB over 10,000 requests"
    metrics = state.metrics()
    assert metrics.completed == 16_000 and metrics.itl_ms.n == 16_000 * 64 and metrics.itl_ms.relative_error > 0


def test_the_reducer_and_the_figures_at_once_agree():
    rng = random.Random(4)
    records = [_record(i, rng, failed=i % 9 == 0) for i in range(200)]
    state = RunState()
    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random", input_len=16, output_len=9),
                   scenario="serving", serving=ServingParams(request_rate=10.0, trim=5))
    state.apply(ev.RunStarted(t_s=0.0, spec=spec, num_requests=200, pid=1))
    for record in records:
        state.apply(ev.RequestDone(t_s=request_end_s(record), record=record))
    assert state.metrics() == compute_metrics(records, trim=5)
    assert (state.requests_done, state.requests_ok) == (200, 200 - 23)


def test_an_aggregate_with_nothing_is_all_not_applicable():
    metrics = RunAggregate().metrics()
    assert metrics.completed == 0 and metrics.ttft_ms is None and metrics.duration_s is None
    assert metrics.workers is None and metrics.turns is None and TelemetryWindow().samples() == []


def test_a_sketched_latency_is_marked_in_the_run_table(monkeypatch):
    from rich.console import Console

    from tuibench.report.tables import latency_table

    monkeypatch.setattr(aggregate, "EXACT_VALUES", 100)
    rng = random.Random(5)
    console = Console(width=120, record=True)
    console.print(latency_table(compute_metrics([_record(i, rng, gaps=20) for i in range(50)])))
    text = console.export_text()
    assert "ITL ≈" in text and "TTFT ≈" not in text  # 1,000 gaps sketched, 50 TTFTs exact
    assert "within ±0.5 %" in text

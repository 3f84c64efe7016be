"""Serving metrics on scripted timestamps, expected values worked by hand."""

import msgspec
import pytest

from tuibench.core.aggregate import compute_metrics
from tuibench.core.spec import Slo
from tuibench.core.records import RequestRecord


def rec(index, start_s, ttft_ms, e2el_ms, out, inp=10, scheduled_s=None, error=None):
    return RequestRecord(index=index, input_tokens=inp, output_tokens=out, target_output_tokens=out, start_s=start_s,
                         scheduled_s=start_s if scheduled_s is None else scheduled_s, ttft_ms=ttft_ms, e2el_ms=e2el_ms,
                         error=error)


RECORDS = [
    #   start   ttft  e2el   out  -> tpot = (e2el - ttft) / (out - 1)
    rec(0, 0.0, 100.0, 1000.0, 10, scheduled_s=0.0),  # tpot 100, ends 1.0
    rec(1, 0.5, 200.0, 700.0, 11, scheduled_s=0.499),  # tpot 50, lag 1 ms, ends 1.2
    rec(2, 1.0, 50.0, 1000.0, 20, scheduled_s=0.998),  # tpot 50, lag 2 ms, ends 2.0
    rec(3, 1.5, None, None, 0, error="HTTP 500: boom"),  # failed: counted, not in latency stats
]


def test_goodput_counts_requests_meeting_every_set_slo():
    # duration = last end 2.0 - first start 0.0 = 2.0 s
    # ttft <= 150 and tpot <= 60: request 0 fails tpot (100), 1 fails ttft (200), 2 meets both -> 1 / 2.0 s
    metrics = compute_metrics(RECORDS, slo=Slo(ttft_ms=150, tpot_ms=60))
    assert metrics.duration_s == pytest.approx(2.0)
    assert metrics.goodput_rps == pytest.approx(0.5)
    # e2el <= 1000 alone: all three successes meet it -> 3 / 2.0
    assert compute_metrics(RECORDS, slo=Slo(e2el_ms=1000)).goodput_rps == pytest.approx(1.5)
    # no SLO: goodput is N/A, not 0
    assert compute_metrics(RECORDS).goodput_rps is None


def test_schedule_lag_includes_failed_requests():
    # lags: 0, 1, 2 ms and 0 for the failed one (it was sent on time) -> mean 0.75, max 2
    lag = compute_metrics(RECORDS).schedule_lag_ms
    assert lag.n == 4
    assert lag.mean == pytest.approx(0.75) and lag.max == pytest.approx(2.0)


def test_paper_latency_per_token_and_per_output_token():
    # per token: 1000/(10+10)=50, 700/(10+11)=33.33, 1000/(10+20)=33.33 -> mean 38.89
    # per output token: 1000/10=100, 700/11=63.64, 1000/20=50 -> mean 71.21
    metrics = compute_metrics(RECORDS)
    assert metrics.latency_per_token_ms.mean == pytest.approx((50 + 700 / 21 + 1000 / 30) / 3)
    assert metrics.latency_per_output_token_ms.mean == pytest.approx((100 + 700 / 11 + 50) / 3)
    assert metrics.failed == 1 and metrics.completed == 3


def test_trim_drops_first_and_last_by_send_time():
    shuffled = [RECORDS[2], RECORDS[0], RECORDS[3], RECORDS[1]]
    metrics = compute_metrics(shuffled, trim=1)
    # left: requests 1 and 2 -> duration 2.0 - 0.5 = 1.5 s, output 31 tokens
    assert metrics.completed == 2 and metrics.trimmed == 1
    assert metrics.duration_s == pytest.approx(1.5)
    assert metrics.output_throughput_tok_s == pytest.approx(31 / 1.5)
    assert compute_metrics(shuffled, trim=2).completed == 0  # everything trimmed: N/A throughout
    assert compute_metrics(shuffled, trim=2).ttft_ms is None


def test_offline_records_have_no_serving_metrics():
    offline = [RequestRecord(index=0, input_tokens=4, output_tokens=2, target_output_tokens=2, start_s=0.0, ttft_ms=5.0,
                             e2el_ms=9.0)]
    assert compute_metrics(offline).schedule_lag_ms is None


def test_the_reducer_applies_the_spec_slo_and_trim_of_a_serving_run():
    from tuibench.core import events as ev
    from tuibench.core.reducer import RunState
    from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams

    spec = RunSpec(dataset=DatasetSpec(kind="builtin", source="short2short"), scenario="serving",
                   serving=ServingParams(slo=Slo(ttft_ms=150, tpot_ms=60)))
    state = RunState()
    state.apply(ev.RunStarted(t_s=0.0, spec=spec, num_requests=4, pid=1))
    for record in RECORDS:
        state.apply(ev.RequestDone(t_s=2.0, record=record))
    state.apply(ev.RunFinished(t_s=2.0))
    # as in test_goodput_counts_requests_meeting_every_set_slo: only request 2 meets both -> 1 / 2.0 s
    assert state.metrics().goodput_rps == pytest.approx(0.5)
    assert state.status == "partial"  # request 3 failed


def test_offered_and_completion_rates_come_from_the_spans_of_sends_and_ends():
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.records import RequestRecord

    def record(i: int, e2el_ms: float) -> RequestRecord:
        return RequestRecord(index=i, input_tokens=4, output_tokens=2, target_output_tokens=2, start_s=0.5 * i,
                             scheduled_s=0.5 * i, ttft_ms=10.0, e2el_ms=e2el_ms, itl_ms=[e2el_ms - 10.0])

    steady = compute_metrics([record(i, 100.0) for i in range(5)])
    assert steady.offered_rps == 2.0 and steady.completion_rps == 2.0  # 4 gaps over 2 s, both ways
    queueing = compute_metrics([record(i, 100.0 + 500.0 * i) for i in range(5)])
    assert queueing.offered_rps == 2.0 and queueing.completion_rps == pytest.approx(1.0)  # ends spread over 4 s
    offline = compute_metrics([RequestRecord(index=0, input_tokens=4, output_tokens=2, target_output_tokens=2,
                                             start_s=0.0, ttft_ms=1.0, e2el_ms=2.0, itl_ms=[1.0])])
    assert offline.offered_rps is None and offline.completion_rps is None


def test_the_view_with_failures_counts_each_sent_failure_at_its_time_to_failure():
    """Successes' E2EL (1000, 700, 1000 ms) with a timeout after 600 ms and a refusal after 4 ms; a turn never
    sent (no time to failure) is not in it. Without a failure sent, the view is the successes' and not shown."""
    timed_out = msgspec.structs.replace(RECORDS[3], error="timeout after 0.6 s", failed_after_ms=600.0)
    refused = msgspec.structs.replace(RECORDS[3], index=4, error="HTTP 500: boom", failed_after_ms=4.0)
    unsent = msgspec.structs.replace(RECORDS[3], index=5, error="turn 0 of this conversation failed")
    metrics = compute_metrics([*RECORDS[:3], timed_out, refused, unsent])
    both = metrics.e2el_with_failures_ms
    assert (both.n, both.min, both.max, both.mean) == (5, 4.0, 1000.0, pytest.approx(3304 / 5))
    assert metrics.e2el_ms.n == 3 and metrics.failed == 3
    assert compute_metrics(RECORDS[:3]).e2el_with_failures_ms is None

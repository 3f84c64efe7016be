"""Metric definitions: percentile, describe, compute_metrics. Expected values are worked by hand."""

import math

import msgspec
import pytest

from tuibench.core.aggregate import compute_metrics
from tuibench.core.metrics import Stat, describe, percentile, request_end_s
from tuibench.core.records import BatchRecord, RequestRecord

approx = pytest.approx


# -- percentile ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0, 1.0),  # rank 0 -> data[0]
        (50, 2.5),  # rank 3*0.5 = 1.5 -> 2 + (3-2)*0.5
        (90, 3.7),  # rank 3*0.9 = 2.7 -> 3 + (4-3)*0.7
        (99, 3.97),  # rank 3*0.99 = 2.97 -> 3 + (4-3)*0.97
        (100, 4.0),  # rank 3 -> data[3], no index past the end
    ],
)
def test_percentile_linear_interpolation(q, expected):
    assert percentile([1.0, 2.0, 3.0, 4.0], q) == approx(expected)


def test_percentile_two_values_quarter():
    # rank (2-1)*0.25 = 0.25 -> 10 + (20-10)*0.25 = 12.5
    assert percentile([10.0, 20.0], 25) == approx(12.5)


@pytest.mark.parametrize("q", [0, 50, 90, 99, 100])
def test_percentile_single_element_is_that_element(q):
    assert percentile([7.5], q) == 7.5


def test_percentile_of_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


# -- describe --------------------------------------------------------------------------------------


def test_describe_classic_sample():
    # Given unsorted on purpose; sorted: [2, 4, 4, 4, 5, 5, 7, 9]
    stat = describe([9, 4, 2, 5, 4, 7, 4, 5])
    assert stat.n == 8
    assert stat.mean == approx(5.0)  # 40 / 8
    # population std: squared deviations 9+1+1+1+0+0+4+16 = 32; 32/8 = 4; sqrt -> 2
    assert stat.std == approx(2.0)
    assert stat.min == 2
    assert stat.max == 9
    assert stat.p50 == approx(4.5)  # rank 7*0.5 = 3.5 -> 4 + (5-4)*0.5
    assert stat.p90 == approx(7.6)  # rank 6.3 -> 7 + (9-7)*0.3
    assert stat.p99 == approx(8.86)  # rank 6.93 -> 7 + (9-7)*0.93


def test_describe_std_is_population_not_sample():
    # [1, 3]: mean 2, deviations 1+1 = 2; population 2/2 = 1 -> 1.0 (sample std would be sqrt(2))
    assert describe([1.0, 3.0]).std == approx(1.0)


def test_describe_single_value():
    assert describe([3.0]) == Stat(n=1, mean=3.0, std=0.0, min=3.0, max=3.0, p50=3.0, p90=3.0, p99=3.0)


def test_describe_empty_is_none():
    assert describe([]) is None
    assert describe(x for x in []) is None


# -- RequestRecord.tpot_ms -------------------------------------------------------------------------


def _rec(index, *, start_s=0.0, input_tokens=10, output_tokens=5, ttft_ms=None, e2el_ms=None, itl_ms=(), batch=0,
         error=None):
    return RequestRecord(index=index, input_tokens=input_tokens, output_tokens=output_tokens,
                         target_output_tokens=output_tokens, start_s=start_s, ttft_ms=ttft_ms, e2el_ms=e2el_ms,
                         itl_ms=list(itl_ms), batch=batch, error=error)


def test_tpot_definition():
    # (500 - 100) / (5 - 1) = 100
    assert _rec(0, output_tokens=5, ttft_ms=100.0, e2el_ms=500.0).tpot_ms == approx(100.0)
    # (300 - 100) / (2 - 1) = 200
    assert _rec(0, output_tokens=2, ttft_ms=100.0, e2el_ms=300.0).tpot_ms == approx(200.0)


def test_tpot_undefined_for_one_token_errors_and_missing_times():
    assert _rec(0, output_tokens=1, ttft_ms=100.0, e2el_ms=100.0).tpot_ms is None
    assert _rec(0, output_tokens=5, ttft_ms=100.0, e2el_ms=500.0, error="boom").tpot_ms is None
    assert _rec(0, output_tokens=5, ttft_ms=None, e2el_ms=500.0).tpot_ms is None
    assert _rec(0, output_tokens=5, ttft_ms=100.0, e2el_ms=None).tpot_ms is None


def test_request_end_s():
    # 2.0 s + 250 ms = 2.25 s; no e2el -> the start itself
    assert request_end_s(_rec(0, start_s=2.0, e2el_ms=250.0)) == approx(2.25)
    assert request_end_s(_rec(0, start_s=2.0, e2el_ms=None)) == 2.0


# -- compute_metrics -------------------------------------------------------------------------------

# r0: 5 tokens, tpot (500-100)/4 = 100, ends 0.0 + 0.5 = 0.5 s
# r1: 3 tokens, tpot (600-200)/2 = 200, ends 0.0 + 0.6 = 0.6 s
# r2: 1 token (no TPOT), ends 1.0 + 0.3 = 1.3 s
# r3: failed; had it counted it would end at 0.2 + 5.0 = 5.2 s and add 7 tokens, ttft 50, itl 999
RECORDS = [
    _rec(0, start_s=0.0, input_tokens=10, output_tokens=5, ttft_ms=100.0, e2el_ms=500.0,
         itl_ms=[100.0, 100.0, 100.0, 100.0], batch=0),
    _rec(1, start_s=0.0, input_tokens=20, output_tokens=3, ttft_ms=200.0, e2el_ms=600.0, itl_ms=[150.0, 250.0],
         batch=0),
    _rec(2, start_s=1.0, input_tokens=30, output_tokens=1, ttft_ms=300.0, e2el_ms=300.0, itl_ms=[], batch=1),
    _rec(3, start_s=0.2, input_tokens=40, output_tokens=7, ttft_ms=50.0, e2el_ms=5000.0, itl_ms=[999.0], batch=1,
         error="CUDA out of memory"),
]
BATCHES = [
    BatchRecord(batch=0, size=2, start_s=0.0, prefill_ms=200.0, decode_ms=400.0, decode_steps=4),
    BatchRecord(batch=1, size=2, start_s=1.0, prefill_ms=300.0, decode_ms=0.0, decode_steps=0),
]


@pytest.fixture(scope="module")
def metrics():
    return compute_metrics(RECORDS, BATCHES)


def test_counts_and_tokens_exclude_failed(metrics):
    assert metrics.completed == 3
    assert metrics.failed == 1
    assert metrics.input_tokens == 60  # 10 + 20 + 30 (not the failed 40)
    assert metrics.output_tokens == 9  # 5 + 3 + 1 (not the failed 7)


def test_duration_is_last_end_minus_first_start(metrics):
    # last end of a completed request: 1.3 s (r2); first start 0.0 s -> 1.3 s (the failed r3 would give 5.2)
    assert metrics.duration_s == approx(1.3)


def test_duration_measured_from_first_start_not_zero():
    records = [
        _rec(0, start_s=2.0, output_tokens=4, ttft_ms=10.0, e2el_ms=500.0),  # ends 2.5
        _rec(1, start_s=2.5, output_tokens=4, ttft_ms=10.0, e2el_ms=1000.0),  # ends 3.5
    ]
    m = compute_metrics(records)
    assert m.duration_s == approx(1.5)  # 3.5 - 2.0
    assert m.output_throughput_tok_s == approx(8 / 1.5)  # 8 tokens / 1.5 s = 5.333...


def test_throughputs(metrics):
    assert metrics.request_throughput_rps == approx(3 / 1.3)  # 2.3077 req/s
    assert metrics.output_throughput_tok_s == approx(9 / 1.3)  # 6.9231 tok/s
    assert metrics.total_throughput_tok_s == approx(69 / 1.3)  # (60 + 9) / 1.3 = 53.077 tok/s


def test_ttft_stats(metrics):
    t = metrics.ttft_ms
    assert t.n == 3  # failed request's ttft=50 excluded
    assert t.mean == approx(200.0)  # (100 + 200 + 300) / 3
    assert t.std == approx(math.sqrt(20000 / 3))  # (100^2 + 0 + 100^2) / 3 -> sqrt = 81.65
    assert (t.min, t.max) == (100.0, 300.0)
    assert t.p50 == approx(200.0)  # rank 1
    assert t.p90 == approx(280.0)  # rank 1.8 -> 200 + 100*0.8
    assert t.p99 == approx(298.0)  # rank 1.98 -> 200 + 100*0.98


def test_tpot_excludes_single_token_and_failed(metrics):
    t = metrics.tpot_ms
    assert t.n == 2  # r0 and r1 only
    assert t.mean == approx(150.0)  # (100 + 200) / 2
    assert t.std == approx(50.0)  # deviations 50, 50 -> sqrt(2500)
    assert t.p90 == approx(190.0)  # rank 0.9 -> 100 + 100*0.9


def test_itl_pooled_across_requests(metrics):
    t = metrics.itl_ms
    # pooled: [100, 100, 100, 100, 150, 250]; the failed request's 999 is excluded
    assert t.n == 6
    assert t.mean == approx(800 / 6)  # 133.33
    assert (t.min, t.max) == (100.0, 250.0)
    assert t.p50 == approx(100.0)  # rank 2.5 -> 100 + 0*0.5
    assert t.p90 == approx(200.0)  # rank 4.5 -> 150 + 100*0.5
    assert t.p99 == approx(245.0)  # rank 4.95 -> 150 + 100*0.95


def test_e2el_stats(metrics):
    t = metrics.e2el_ms
    assert t.n == 3
    assert t.mean == approx(1400 / 3)  # (500 + 600 + 300) / 3 = 466.67
    assert t.p50 == approx(500.0)  # sorted [300, 500, 600], rank 1
    assert t.max == 600.0  # not the failed 5000


def test_prefill_and_decode_from_batches(metrics):
    assert metrics.prefill_s == approx(0.5)  # (200 + 300) ms
    assert metrics.decode_s == approx(0.4)  # (400 + 0) ms


def test_no_batches_gives_none_prefill_decode():
    m = compute_metrics(RECORDS[:1])
    assert m.prefill_s is None
    assert m.decode_s is None


def _assert_all_na(m):
    assert m.completed == 0
    assert m.duration_s is None
    assert m.input_tokens == 0
    assert m.output_tokens == 0
    for name in ("request_throughput_rps", "output_throughput_tok_s", "total_throughput_tok_s",
                 "ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        assert getattr(m, name) is None, name


def test_nothing_completed_all_failed_is_na():
    m = compute_metrics([RECORDS[3], _rec(4, ttft_ms=1.0, e2el_ms=2.0, itl_ms=[1.0], error="x")])
    _assert_all_na(m)
    assert m.failed == 2


def test_no_records_at_all_is_na():
    m = compute_metrics([])
    _assert_all_na(m)
    assert m.failed == 0


def test_zero_duration_gives_na_throughput_not_division_error():
    # one request with e2el 0 ms: duration 1.0 - 1.0 = 0 -> throughputs undefined
    m = compute_metrics([_rec(0, start_s=1.0, output_tokens=1, ttft_ms=0.0, e2el_ms=0.0)])
    assert m.completed == 1
    assert m.duration_s == 0.0
    assert m.request_throughput_rps is None
    assert m.output_throughput_tok_s is None


def test_output_throughput_per_gpu_divides_by_the_gpus_the_run_used_and_is_na_on_a_cpu():
    # Two requests of 5 tokens over 1 s: 10 tok/s, so 2.5 tok/s on each of 4 GPUs.
    records = [_rec(0, e2el_ms=1000.0, ttft_ms=100.0), _rec(1, e2el_ms=500.0, ttft_ms=100.0)]
    assert compute_metrics(records, gpus=4).output_throughput_per_gpu_tok_s == approx(2.5)
    assert compute_metrics(records, gpus=4).output_throughput_tok_s == approx(10.0)
    assert compute_metrics(records).output_throughput_per_gpu_tok_s is None


def test_gpus_used_is_the_layout_on_a_machine_with_gpus_and_none_on_a_cpu():
    from tuibench.core.spec import DatasetSpec, Parallelism, RunSpec, gpus_used

    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random"), library="vllm",
                   parallel=Parallelism(tensor=2, data=2))
    assert gpus_used(spec, {"gpus": [{"name": "fake"}] * 4}) == 4
    assert gpus_used(spec, {"gpus": []}) == 0
    assert gpus_used(msgspec.structs.replace(spec, device="cpu"), {"gpus": [{"name": "fake"}] * 4}) == 0

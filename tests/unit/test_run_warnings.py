"""How a run's numbers are judged trustworthy or not, from what it recorded. The CPU case runs for real in
tests/integration/test_validity.py; GPU samples cannot be made here, so those below are written by hand."""

from tuibench.core.events import TelemetrySample
from tuibench.core.aggregate import RunAggregate, compute_metrics
from tuibench.core.records import RequestRecord
from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec, ServingParams
from tuibench.core.validity import run_warnings
from tuibench.telemetry.processes import others_among

DATASET = DatasetSpec(kind="random", source="random")
QUIET = {"cpus": 2, "threads": 1, "gpus": []}


def _records(count=4, lag_ms=0.0, counted=None, out=8, target=8, failed=0):
    ok = [RequestRecord(index=i, input_tokens=16, counted_input_tokens=counted, output_tokens=out,
                        target_output_tokens=target, start_s=0.1 * i + lag_ms / 1000, scheduled_s=0.1 * i,
                        ttft_ms=10.0, e2el_ms=50.0, itl_ms=[5.0] * (out - 1)) for i in range(count)]
    return ok + [RequestRecord(index=count + i, input_tokens=16, output_tokens=0, target_output_tokens=target,
                               start_s=0.0, error="HTTP 500: boom") for i in range(failed)]


def _kinds(spec, records, telemetry=(), environment=QUIET):
    return [w.kind for w in run_warnings(spec, environment, compute_metrics(records), _window(records), telemetry)]


def _window(records):
    aggregate = RunAggregate()
    for record in records:
        aggregate.add(record)
    return aggregate.window_s


def test_a_clean_run_has_no_warning():
    spec = RunSpec(dataset=DATASET, scenario="serving")
    assert _kinds(spec, _records(counted=16)) == []


def test_failures_drift_and_a_late_client_are_each_named():
    serving = RunSpec(dataset=DATASET, scenario="serving")
    warnings = run_warnings(serving, QUIET, compute_metrics(records := _records(counted=17, failed=1)), _window(records), ())
    assert [w.kind for w in warnings] == ["failed", "input_drift"]
    assert "1 of 5 requests failed (first: HTTP 500: boom)" in warnings[0].message
    assert "planned 16.0, counted 17.0 (+6.2 %) on 4 of 4" in warnings[1].message
    assert _kinds(serving, _records(lag_ms=25.0)) == ["client_saturated"]
    assert _kinds(serving, _records(out=6)) == ["output_drift"]
    # Where the plan let EOS end outputs early, a short output is no drift worth a warning.
    eos = RunSpec(dataset=DATASET, offline=OfflineParams(honor_eos=True))
    assert _kinds(eos, _records(out=6)) == []
    assert _kinds(RunSpec(dataset=DATASET, scenario="serving", serving=ServingParams(length_policy="none")),
                  _records(out=6)) == []


def test_threads_on_every_core_of_a_cpu_run_are_flagged_but_not_a_users_server():
    offline = RunSpec(dataset=DATASET, threads=2)
    assert _kinds(offline, _records(), environment={"cpus": 2, "threads": 2, "gpus": []}) == ["threads_unpinned"]
    users = RunSpec(dataset=DATASET, scenario="serving", threads=2, serving=ServingParams(endpoint="http://x"))
    assert _kinds(users, _records(), environment={"cpus": 2, "threads": 2, "gpus": []}) == []


def test_cpu_load_of_others_counts_inside_the_measured_window_only():
    spec = RunSpec(dataset=DATASET)
    busy = [TelemetrySample(t_s=t, source="cpu", values={"others_cores": 1.0}) for t in (0.05, 0.2)]
    assert _kinds(spec, _records(), busy) == ["cpu_contention"]
    before = [TelemetrySample(t_s=-5.0, source="cpu", values={"others_cores": 1.5})]  # a server loading, say
    assert _kinds(spec, _records(), before) == []


def test_fake_gpu_samples_throttled_and_shared_are_named():
    """Handwritten NVML samples (no GPU here): a power cap in one sample of two, another process on the GPU."""
    spec = RunSpec(dataset=DATASET, device="cuda")
    samples = [TelemetrySample(t_s=0.1, source="gpu0", values={"throttle_reasons": 0x4, "other_processes": 1.0}),
               TelemetrySample(t_s=0.2, source="gpu0", values={"throttle_reasons": 0x1, "other_processes": 0.0})]
    warnings = run_warnings(spec, {**QUIET, "gpus": [{"name": "H200"}]}, compute_metrics(_records()), _window(_records()),
                            samples)
    assert [w.kind for w in warnings] == ["gpu_contention", "gpu_throttled"]
    assert "1 of 2 samples (power cap)" in warnings[1].message


def test_gpu_process_lists_from_another_pid_namespace_are_not_read():
    assert others_among([10, 11], ours={10}, exists=lambda pid: True) == 1
    assert others_among([10, 11, 12], ours={10}, exists=lambda pid: pid != 12) == 1  # 12 is gone
    assert others_among([500, 501], ours={10}, exists=lambda pid: True) is None  # host PIDs in a container
    assert others_among([], ours={10}) == 0


def test_a_wait_before_the_send_is_said_at_a_set_rate_where_it_hides_from_the_latencies():
    """TTFT 10 ms from the send; sent 25 ms after it was meant to be: 35 ms as the user waited (over 1.5 × 10)."""
    at_rate = RunSpec(dataset=DATASET, scenario="serving", serving=ServingParams(request_rate=10.0))
    warnings = run_warnings(at_rate, QUIET, compute_metrics(records := _records(lag_ms=25.0)), _window(records), ())
    assert [w.kind for w in warnings] == ["client_saturated", "hidden_wait"]
    assert warnings[1].message.startswith("TTFT p99 is 35.0 ms from when requests were meant to be sent, 10.0 ms")
    assert _kinds(at_rate, _records(lag_ms=4.0)) == []  # 14 ms: within 1.5 × 10
    burst = RunSpec(dataset=DATASET, scenario="serving")  # all at once: waiting is what a burst means
    assert _kinds(burst, _records(lag_ms=25.0)) == ["client_saturated"]
    trace = DatasetSpec(kind="trace", source="t.jsonl", trace_format="mooncake")  # its own times: not a burst
    assert _kinds(RunSpec(dataset=trace, scenario="serving"), _records(lag_ms=25.0)) == ["client_saturated",
                                                                                         "hidden_wait"]

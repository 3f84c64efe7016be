"""RunState: a scripted event stream reduced to a run's state and metrics."""

import pytest

from tuibench.core import events as ev
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.reducer import RunState
from tuibench.core.spec import DatasetSpec, RunSpec

approx = pytest.approx

SPEC = RunSpec(dataset=DatasetSpec(kind="builtin", source="short2short"), num_requests=3, seed=7)


def _rec(index, *, start_s, input_tokens, output_tokens, ttft_ms, e2el_ms, itl_ms, batch, error=None):
    return RequestRecord(index=index, input_tokens=input_tokens, output_tokens=output_tokens,
                         target_output_tokens=output_tokens, start_s=start_s, ttft_ms=ttft_ms, e2el_ms=e2el_ms,
                         itl_ms=itl_ms, batch=batch, error=error)


# r0: ends 2.0 + 0.5 = 2.5 s; tpot (500-100)/3 = 133.33
R0 = _rec(0, start_s=2.0, input_tokens=10, output_tokens=4, ttft_ms=100.0, e2el_ms=500.0,
          itl_ms=[100.0, 100.0, 200.0], batch=0)
# r1: ends 2.0 + 0.6 = 2.6 s; tpot (600-200)/1 = 400
R1 = _rec(1, start_s=2.0, input_tokens=20, output_tokens=2, ttft_ms=200.0, e2el_ms=600.0, itl_ms=[400.0], batch=0)
# r2: ends 2.7 + 0.5 = 3.2 s; tpot (500-300)/5 = 40
R2 = _rec(2, start_s=2.7, input_tokens=30, output_tokens=6, ttft_ms=300.0, e2el_ms=500.0, itl_ms=[40.0] * 5,
          batch=1)
B0 = BatchRecord(batch=0, size=2, start_s=2.0, prefill_ms=200.0, decode_ms=400.0, decode_steps=3)
B1 = BatchRecord(batch=1, size=1, start_s=2.7, prefill_ms=300.0, decode_ms=200.0, decode_steps=5)

SCRIPT = [
    ev.RunStarted(t_s=0.0, spec=SPEC, num_requests=3, pid=4242, environment={"torch": "2.5.0", "threads": 4}),
    ev.Phase(t_s=0.1, name="loading", detail="smollm2-135m"),
    ev.Log(t_s=0.2, message="loading model"),
    ev.Phase(t_s=1.0, name="warmup"),
    ev.Phase(t_s=2.0, name="measuring"),
    ev.Progress(t_s=2.0, phase="measuring", done=0, total=3),
    ev.RequestDone(t_s=2.5, record=R0),
    ev.RequestDone(t_s=2.6, record=R1),
    ev.BatchDone(t_s=2.6, record=B0),
    ev.Progress(t_s=2.6, phase="measuring", done=2, total=3),
    ev.TelemetrySample(t_s=2.7, source="gpu0", values={"util_pct": 50.0, "power_w": None}),
    ev.RequestDone(t_s=3.2, record=R2),
    ev.BatchDone(t_s=3.2, record=B1),
    ev.Progress(t_s=3.2, phase="measuring", done=3, total=3),
    ev.Log(t_s=3.25, message="done", level="debug"),
    ev.RunFinished(t_s=3.3),
]


def _run(events, state=None):
    state = state or RunState()
    for event in events:
        state.apply(event)
    return state


def test_initial_state_is_pending():
    state = RunState()
    assert state.status == "pending"
    assert not state.ended
    assert state.metrics().completed == 0
    assert state.metrics().ttft_ms is None


def test_status_transitions_pending_running_finished():
    state = RunState()
    seen = [state.status]
    for event in SCRIPT:
        state.apply(event)
        seen.append(state.status)
    # one 'pending' before anything, 'running' after RunStarted and the 14 events after it, then 'finished'
    assert seen == ["pending"] + ["running"] * 15 + ["finished"]
    assert state.ended


def test_run_started_fields():
    state = _run(SCRIPT[:1])
    assert state.spec == SPEC
    assert state.num_requests == 3
    assert state.environment == {"torch": "2.5.0", "threads": 4}


def test_phases_progress_logs_telemetry():
    state = _run(SCRIPT)
    assert state.phase == "measuring"
    assert state.phase_started_s == {"loading": 0.1, "warmup": 1.0, "measuring": 2.0}
    assert state.progress == ev.Progress(t_s=3.2, phase="measuring", done=3, total=3)
    assert [log.message for log in state.logs] == ["loading model", "done"]
    assert len(state.telemetry) == 1
    assert state.telemetry[0].values == {"util_pct": 50.0, "power_w": None}
    assert state.last_t_s == 3.3


def test_records_and_tokens_done():
    state = _run(SCRIPT)
    assert state.requests_done == state.requests_ok == 3
    assert state.metrics().completed == 3
    assert state.metrics().prefill_s == (B0.prefill_ms + B1.prefill_ms) / 1000  # both batches folded in
    assert state.output_tokens_done == 12  # 4 + 2 + 6


def test_output_tokens_done_mid_run():
    state = _run(SCRIPT[:8])  # through r1's RequestDone
    assert state.output_tokens_done == 6  # 4 + 2
    assert state.status == "running"


def test_metrics_worked_by_hand():
    m = _run(SCRIPT).metrics()
    assert m.completed == 3
    assert m.failed == 0
    assert m.duration_s == approx(1.2)  # last end 3.2 - first start 2.0
    assert m.output_tokens == 12
    assert m.input_tokens == 60  # 10 + 20 + 30
    assert m.output_throughput_tok_s == approx(10.0)  # 12 / 1.2
    assert m.request_throughput_rps == approx(2.5)  # 3 / 1.2
    assert m.total_throughput_tok_s == approx(60.0)  # (60 + 12) / 1.2
    assert m.ttft_ms.mean == approx(200.0)  # (100 + 200 + 300) / 3
    assert m.ttft_ms.p90 == approx(280.0)  # rank 2*0.9 = 1.8 -> 200 + 100*0.8
    # tpot sorted [40, 133.33, 400]: mean (40 + 400/3 + 400) / 3 = 191.11
    assert m.tpot_ms.mean == approx((40 + 400 / 3 + 400) / 3)
    assert m.tpot_ms.p50 == approx(400 / 3)
    # itl pooled sorted [40,40,40,40,40,100,100,200,400]: mean 1000/9; p90 rank 7.2 -> 200 + 200*0.2
    assert m.itl_ms.n == 9
    assert m.itl_ms.mean == approx(1000 / 9)
    assert m.itl_ms.p50 == approx(40.0)
    assert m.itl_ms.p90 == approx(240.0)
    assert m.prefill_s == approx(0.5)  # (200 + 300) ms
    assert m.decode_s == approx(0.6)  # (400 + 200) ms


def test_last_t_s_is_the_max_even_out_of_order():
    state = _run([ev.Log(t_s=5.0, message="a"), ev.Log(t_s=3.0, message="b")])
    assert state.last_t_s == 5.0


def test_log_lines_are_bounded():
    state = _run([ev.Log(t_s=float(i), message=str(i)) for i in range(5)], RunState(log_lines=2))
    assert [log.message for log in state.logs] == ["3", "4"]


@pytest.mark.parametrize(
    ("kind", "status"),
    [("interrupted", "interrupted"), ("crashed", "failed"), ("error", "failed"), ("input", "failed")],
)
def test_run_failed_kinds(kind, status):
    failed = _rec(1, start_s=2.0, input_tokens=20, output_tokens=0, ttft_ms=None, e2el_ms=None, itl_ms=[],
                  batch=0, error="RuntimeError: boom")
    events = [*SCRIPT[:7], ev.RequestDone(t_s=2.6, record=failed),
              ev.RunFailed(t_s=2.7, kind=kind, error="child exited with signal 9")]
    state = _run(events)
    assert state.status == status
    assert state.ended
    assert state.failure_kind == kind
    assert state.error == "child exited with signal 9"
    # records before the failure are kept and measured
    assert (state.requests_done, state.requests_ok, state.first_error) == (2, 1, failed.error)
    m = state.metrics()
    assert m.completed == 1
    assert m.failed == 1
    assert m.output_tokens == 4
    assert m.duration_s == approx(0.5)  # r0 ends 2.5 - first start 2.0
    assert m.output_throughput_tok_s == approx(8.0)  # 4 / 0.5
    assert state.output_tokens_done == 4


def test_metrics_cached_until_new_record():
    state = _run(SCRIPT[:7])  # r0 only
    first = state.metrics()
    assert first.completed == 1
    assert state.metrics() is first  # cached while nothing changed
    state.apply(SCRIPT[7])  # RequestDone r1
    second = state.metrics()
    assert second is not first
    assert second.completed == 2
    assert second.output_tokens == 6  # 4 + 2
    assert second.ttft_ms.mean == approx(150.0)  # (100 + 200) / 2


def test_metrics_cache_invalidated_by_batch_done():
    state = _run(SCRIPT[:8])
    assert state.metrics().prefill_s is None
    state.apply(SCRIPT[8])  # BatchDone b0
    assert state.metrics().prefill_s == approx(0.2)  # 200 ms
    assert state.metrics().decode_s == approx(0.4)  # 400 ms


def test_a_plans_events_move_its_steps_and_each_run_event_reaches_the_running_steps_state():
    from tuibench.core.plan import Plan, PlanEnded, PlanRequest, PlanStarted, PlanStep, StepEnded, StepStarted
    from tuibench.core.reducer import PlanState

    vllm = RunSpec(library="vllm", dataset=SPEC.dataset)
    plan = Plan(label="p", request=PlanRequest(), steps=(PlanStep(index=1, spec=SPEC), PlanStep(index=2, spec=vllm),
                                                         PlanStep(index=3, spec=vllm, skip="no GPU")))
    state = PlanState()
    assert state.run.status == "pending" and not state.ended
    state.apply(PlanStarted(plan_id=4, plan=plan))
    assert [s.status for s in state.steps] == ["pending", "pending", "skipped"] and state.steps[2].reason == "no GPU"
    state.apply(StepStarted(index=1, run_id=10))
    for event in SCRIPT:
        state.apply(event)
    first = state.steps[0].run
    assert state.run is first and first.run_id == 10 and first.status == "finished" and first.requests_done == 3
    state.apply(StepEnded(index=1, status="finished", run_id=10))
    state.apply(StepStarted(index=2, run_id=11))
    state.apply(ev.RunFailed(t_s=0.1, kind="error", error="the server died"))
    state.apply(StepEnded(index=2, status="failed", run_id=11, reason="the server died"))
    assert state.steps[1].run.status == "failed" and first.status == "finished"  # each run its own
    state.apply(PlanEnded(status="partial"))
    assert state.ended and state.status == "partial" and state.current is None
    assert state.run is state.steps[1].run  # the last step that ran


def test_a_single_run_is_a_plan_of_one_step():
    from tuibench.core.reducer import PlanState

    running = PlanState.of_run(SPEC)
    assert running.status == "running" and running.run is running.steps[0].run
    ended = RunState()
    for event in SCRIPT:
        ended.apply(event)
    shown = PlanState.of_run(SPEC, ended)
    assert shown.status == "finished" and shown.current is None and shown.run is ended


def test_live_throughput_is_one_figure_that_becomes_the_runs_when_it_ends():
    state = RunState()
    for event in SCRIPT[:7]:  # up to R0's end at 2.5 s
        state.apply(event)
    assert state.live_output_tok_s() == approx(4 / (2.5 - 2.0))  # R0's 4 tokens since the first start (2.0 s)
    for event in SCRIPT[7:]:
        state.apply(event)
    assert state.ended and state.live_output_tok_s() == state.metrics().output_throughput_tok_s


def test_a_server_launched_for_the_run_gives_its_cold_start_and_a_reused_one_none():
    started = [ev.ServerStarted(t_s=0.0, server="vllm", process_start_s=2.5, load_s=20.0),
               ev.RunStarted(t_s=0.5, spec=SPEC, num_requests=1, pid=1),
               ev.FirstRequest(t_s=21.0, ttft_ms=750.0), ev.RequestDone(t_s=22.0, record=R0)]
    state = RunState()
    for event in started:
        state.apply(event)
    cold = state.metrics().cold_start
    assert (cold.process_start_s, cold.load_s, cold.first_request_s) == (2.5, 20.0, 0.75)
    assert cold.total_s == approx(23.25)
    reused = RunState()
    for event in started[1:]:  # no ServerStarted: the server was already up
        reused.apply(event)
    assert reused.metrics().cold_start is None


def test_a_run_that_ended_with_every_request_failed_is_failed_not_partial():
    failed = [_rec(i, start_s=2.0, input_tokens=10, output_tokens=0, ttft_ms=None, e2el_ms=None, itl_ms=[], batch=None,
                   error="connection failed: Connection refused") for i in range(3)]
    state = _run([SCRIPT[0], *(ev.RequestDone(t_s=2.5, record=r) for r in failed), ev.RunFinished(t_s=3.0)])
    assert state.status == "failed" and state.metrics().failed == 3
    assert state.error == "none of its 3 requests succeeded; the first: connection failed: Connection refused"
    one_ok = _run([SCRIPT[0], ev.RequestDone(t_s=2.5, record=R0), ev.RequestDone(t_s=2.6, record=failed[1]),
                   ev.RunFinished(t_s=3.0)])
    assert one_ok.status == "partial" and one_ok.error is None

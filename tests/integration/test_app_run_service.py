"""The app's run service, a process of its own (runner/app_server.py) driven as the app drives it (ui/run_service.py):
the fake engine's plans are checked, run and streamed across the boundary; the end of its stdin (the app quit or
died) stops a plan, keeps what it measured, and leaves no process behind."""

import threading
import time

import psutil
import pytest

from tuibench.core import events as ev
from tuibench.core.errors import UserError
from tuibench.core.plan import PlanEnded, PlanRequest
from tuibench.core.reducer import PlanState
from tuibench.core.store import ResultsStore
from tuibench.ui.run_service import RunService

FAKE = {"libraries": ("fake",), "datasets": ("random",), "input_len": 8, "output_len": 4, "num_requests": 6,
        "batch_size": 2}


@pytest.fixture
def service(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("TUIBENCH_FAKE_PREFILL_MS", "10")
    monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", "5")
    running = RunService(log_path=tmp_path / "service.log")
    yield running
    running.close()


def test_the_fake_engines_plan_is_checked_run_and_streamed_across_the_boundary(service, tmp_path, model_path):
    with pytest.raises(UserError, match="unknown library 'nope'"):
        service.build(PlanRequest(libraries=("nope",)))
    assert {row.name for row in service.libraries()} >= {"transformers", "vllm", "endpoint"}  # the fake: unlisted
    plan = service.build(PlanRequest(**FAKE))
    state, seen = PlanState(), []

    def reduce(event) -> None:
        state.apply(event)
        seen.append(type(event))

    service.run(plan, tmp_path / "r.db", reduce)
    assert seen[-1] is PlanEnded and state.status == "finished"
    (step,) = state.steps
    assert step.run.requests_ok == 6 and seen.count(ev.RequestDone) == 6
    with ResultsStore.open(tmp_path / "r.db", create=False) as store:
        stored = store.get_run(step.run_id)
    # What the app reduced from the stream is what the service stored: the fake's script, exactly.
    assert sorted(r.ttft_ms for r in stored.requests) == [10.0] * 6
    assert state.run.metrics().completed == 6


def test_the_end_of_its_stdin_stops_the_plan_keeps_what_it_measured_and_leaves_no_process(service, tmp_path,
                                                                                           model_path, monkeypatch):
    monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", "100")  # 6 requests of 60 tokens: about 18 s if left alone
    plan = service.build(PlanRequest(**{**FAKE, "output_len": 60}))
    state = PlanState()
    children: list[int] = []

    def reduce(event) -> None:
        state.apply(event)
        if isinstance(event, ev.RunStarted):
            children.append(event.pid)

    runner = threading.Thread(target=service.run, args=(plan, tmp_path / "r.db", reduce), daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while state.run.requests_done < 2:  # the first batch of two measured
        assert time.monotonic() < deadline, "no request measured in a minute"
        time.sleep(0.05)
    server = service._process
    service.close()  # as the app's quit: stdin closed, the service winds the plan down and exits
    runner.join(30)
    assert server.returncode is not None and not runner.is_alive()
    assert not psutil.pid_exists(children[0]) or psutil.Process(children[0]).status() == psutil.STATUS_ZOMBIE
    with ResultsStore.open(tmp_path / "r.db", create=False) as store:
        (run,) = store.list_runs()
        assert run.status == "interrupted" and 2 <= store.request_count(run.id) < 6

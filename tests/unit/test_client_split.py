"""Splitting one schedule over client workers, and reading each worker's lateness: pure parts."""

import os
import subprocess
import sys
import time

import pytest

from tuibench.core.errors import UserError
from tuibench.core.aggregate import compute_metrics
from tuibench.core.plan import PlanRequest
from tuibench.core.records import RequestRecord
from tuibench.loadgen.client import Endpoint, Prompted
from tuibench.loadgen.workers import shares
from tuibench.runner.plans import build_plan
from tuibench.telemetry.processes import ProcessTree


def test_request_k_goes_to_worker_k_mod_n_with_its_own_offset():
    prompts = [Prompted(i, [1], 1, 1) for i in range(7)]
    offsets = [0.1 * i for i in range(7)]
    split = shares(prompts, offsets, 3, Endpoint(base_url="http://x", model="m"), 60.0)
    assert [[p.index for p in s.prompts] for s in split] == [[0, 3, 6], [1, 4], [2, 5]]
    assert split[1].offsets_s == [offsets[1], offsets[4]]  # the schedule's own offsets, not recomputed
    assert sorted(p.index for s in split for p in s.prompts) == list(range(7))  # each request once


def test_each_workers_lag_is_its_own():
    # Lateness in 1/1024 s steps (0.9765625 ms): exact in binary, so each worker's lags are asserted with ==.
    def sent(index: int, worker: int, late_steps: int) -> RequestRecord:
        return RequestRecord(index=index, input_tokens=1, output_tokens=1, target_output_tokens=1,
                             scheduled_s=10.0, start_s=10.0 + late_steps / 1024, worker=worker)

    records = [sent(0, 0, 1), sent(1, 1, 30), sent(2, 0, 3), sent(3, 1, 50)]
    workers = compute_metrics(records).workers
    assert [w.worker for w in workers] == [0, 1] and [w.requests for w in workers] == [2, 2]
    assert (workers[0].lag_ms.min, workers[0].lag_ms.max) == (0.9765625, 2.9296875)  # 1 and 3 steps: worker 0's
    assert workers[1].lag_ms.p50 == 39.0625  # halfway between 30 and 50 steps: worker 1's alone
    assert compute_metrics([sent(0, None, 5)]).workers is None  # one client: nothing per worker


def test_a_concurrency_limit_cannot_be_split_over_workers_yet():
    with pytest.raises(UserError, match="--max-concurrency with --client-workers"):
        build_plan(PlanRequest(datasets=("random",), scenarios=("serving",), endpoint="http://127.0.0.1:1",
                               libraries=("endpoint",), client_workers=2, max_concurrency=4))


def test_a_process_born_during_the_run_counts_as_the_runs_from_its_first_tick():
    tree = ProcessTree([os.getpid()])
    tree.cpu_s_since_last()
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
                              "time.sleep(30)"])
    try:
        time.sleep(2.5)  # past its busy start, and past the tree's next listing
        assert tree.cpu_s_since_last() >= 0.35  # its start-up CPU is the run's, though listed after it
    finally:
        child.kill()
        child.wait()

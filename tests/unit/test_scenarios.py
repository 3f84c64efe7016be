"""The offline scenario's own decisions, for every way an engine takes a workload: its batches, its warm-ups, and
the records it makes of what an engine timed."""

import pytest

from tuibench.backends.engine import Generated, Split, Timed
from tuibench.core.prompts import Prompt
from tuibench.core.spec import OfflineParams
from tuibench.scenarios import scenario
from tuibench.scenarios.offline import plan_batches, records_of

PROMPTS = [Prompt(i, [7] * (i + 1), 4) for i in range(5)]


def test_each_batching_has_its_batches_and_its_warm_up():
    params = OfflineParams(batch_size=2, warmup_batches=2)
    static = plan_batches("static", PROMPTS, params)
    assert [[p.index for p in b] for b in static.batches] == [[0, 1], [2, 3], [4]]
    assert static.warmups == static.batches[:2] and static.warmup_detail == "2 batch(es), not counted"
    continuous = plan_batches("continuous", PROMPTS, params)
    assert continuous.batches == [PROMPTS] and continuous.warmups == [PROMPTS[:2]]  # one call of a batch's worth
    assert continuous.measuring_detail == "all requests at once"
    sequential = plan_batches("sequential", PROMPTS, params)
    assert sequential.batches == [[p] for p in PROMPTS] and sequential.warmups == [PROMPTS[:1]]


def test_records_name_a_static_batch_and_keep_what_the_engine_did_not_time_as_none():
    timed = [Timed(index=3, output_tokens=4, counted_input_tokens=4, ttft_ms=2.0, e2el_ms=5.0, itl_ms=[1.0] * 3),
             Timed(index=4, output_tokens=4, e2el_ms=9.0)]
    generated = Generated(start_s=10.0, requests=timed, split=Split(prefill_ms=2.0, decode_ms=3.0, decode_steps=3))
    records, batch = records_of(1, PROMPTS[3:], generated, lambda t: t - 4.0)
    assert [(r.index, r.input_tokens, r.target_output_tokens, r.start_s, r.batch) for r in records] == [
        (3, 4, 4, 6.0, 1), (4, 5, 4, 6.0, 1)]
    assert records[1].ttft_ms is None and records[1].itl_ms == [] and records[1].counted_input_tokens is None
    assert (batch.batch, batch.size, batch.prefill_ms, batch.decode_ms, batch.decode_steps) == (1, 2, 2.0, 3.0, 3)
    unbatched, none = records_of(None, PROMPTS[3:], generated, lambda t: t)
    assert none is None and {r.batch for r in unbatched} == {None}


def test_a_scenario_is_found_by_its_name():
    assert {scenario(name).__name__ for name in ("offline", "serving", "profile")} == {
        "tuibench.scenarios.offline", "tuibench.scenarios.serving", "tuibench.scenarios.profile"}
    with pytest.raises(ValueError, match="unknown scenario 'capacity'"):
        scenario("capacity")

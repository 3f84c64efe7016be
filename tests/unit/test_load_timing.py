"""The load driver's timing pinned exactly: a virtual clock, a scripted server, no network.

The driver reads and waits on the clock it is handed (core/timing.py: VirtualClock). Virtual time stands still
while any task can run and jumps to the next deadline when all wait, so a chunk scripted at 1.125 s is read at
exactly 1.125 s. Scripted times are sums of powers of two (1.125, 0.03125, ...): their differences, and those times
1000 in ms, are exact in binary floating point, so every timing below is asserted with ==. Where an expected value
comes from a rounding operation of its own (a division; an arrival offset added to the origin), the test computes
it with the same operation, and == still holds.
"""

import json

import msgspec

from tuibench.core.metrics import schedule_lag_ms
from tuibench.core.timing import VirtualClock
from tuibench.loadgen.arrivals import arrival_offsets_s
from tuibench.loadgen.client import Endpoint, Prompted
from tuibench.loadgen.conversations import drive_conversations
from tuibench.loadgen.driver import START_LEAD_S, LoadPlan, drive

ENDPOINT = Endpoint(base_url="http://scripted", model="m")
ORIGIN_S = 1.0  # where the measured schedule starts in these tests (the clock starts START_LEAD_S before it)
assert (ORIGIN_S - START_LEAD_S) + START_LEAD_S == ORIGIN_S  # so the origin the driver computes is exactly 1.0


def token(text: str = "t") -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "text": text, "finish_reason": None}]}).encode() + b"\n"


DONE = b"data: [DONE]\n"


def stream(*token_times_s: float, done_s: float | None = None) -> list[tuple[float, bytes]]:
    """A reply: a token at each time (seconds after the request was posted), then [DONE] (at the last token)."""
    return [(t, token()) for t in token_times_s] + [(token_times_s[-1] if done_s is None else done_s, DONE)]



class _Reads:
    """A response body read by read, as aiohttp's `content.iter_any()` gives it."""

    def __init__(self, reads):
        self._reads = reads

    def iter_any(self):
        return self._reads()

class _Reply:
    def __init__(self, clock: VirtualClock, posted_s: float, script):
        self.status, self._clock, self._posted_s, self._script = 200, clock, posted_s, script

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    @property
    def content(self):
        """Each scripted line as one read of the response (aiohttp's iter_any), at its time."""
        async def lines():
            for after_s, line in self._script:
                await self._clock.sleep_until(self._posted_s + after_s)  # the line arrives then
                yield line
        return _Reads(lines)


class ScriptedServer:
    """An HTTP session whose server answers the prompt [..., i] with `scripts[i]`: (seconds after the POST, line) pairs.
    `send_cost_s` is what posting costs the client: time it holds the loop for, without yielding."""

    def __init__(self, clock: VirtualClock, scripts: dict[int, list], send_cost_s: float = 0.0):
        self.clock, self.scripts, self.send_cost_s = clock, scripts, send_cost_s
        self.posted: list[tuple[int, float]] = []  # (prompt, when)

    def post(self, url, data=None, headers=None):
        prompt = msgspec.json.decode(data)["prompt"][-1]  # a conversation's later turn: the turns before, then its own prompt
        posted_s = self.clock.now_s()
        self.posted.append((prompt, posted_s))
        self.clock.advance(self.send_cost_s)
        return _Reply(self.clock, posted_s, self.scripts[prompt])


def prompts(*indices: int) -> list[Prompted]:
    return [Prompted(i, [i], 1, 4) for i in indices]


def run(plan: LoadPlan, measured: list[Prompted], server_scripts: dict[int, list], send_cost_s: float = 0.0,
        clock: VirtualClock | None = None, **options):
    """Drives `measured` on `clock` (by default one START_LEAD_S before ORIGIN_S); the records (on the run's clock,
    here the virtual clock itself) by index, and the server (what it was sent, when)."""
    clock = clock or VirtualClock(ORIGIN_S - START_LEAD_S)
    server = ScriptedServer(clock, server_scripts, send_cost_s)
    records = []
    clock.run(drive(ENDPOINT, measured, plan, records.append, lambda t: t, time_source=clock, session=server,
                    **options))
    return {r.index: r for r in records}, server


def test_ttft_itl_e2el_and_tpot_of_streamed_requests_are_the_scripted_gaps():
    # Request 0: tokens at +125, +156.25, +187.5, +250 ms. Request 1, sent at the same moment (rate inf), interleaves
    # its tokens with request 0's: its gaps must not take any of request 0's chunks.
    scripts = {0: stream(0.125, 0.15625, 0.1875, 0.25),
               1: stream(0.0625, 0.140625, 0.15625, 0.5, done_s=0.75)}
    records, _ = run(LoadPlan(), prompts(0, 1), scripts)
    first, second = records[0], records[1]
    assert first.ok and first.output_tokens == 4
    assert first.ttft_ms == 125.0
    assert first.itl_ms == [31.25, 31.25, 62.5]
    assert first.e2el_ms == 250.0  # the last token; [DONE] ends nothing measured
    assert first.tpot_ms == (250.0 - 125.0) / 3  # (E2EL - TTFT) / (tokens - 1): the division's own rounding only
    assert second.ttft_ms == 62.5 and second.itl_ms == [78.125, 15.625, 343.75]
    assert second.e2el_ms == 500.0  # the last token at +500 ms, though [DONE] came at +750
    assert first.start_s == second.start_s == ORIGIN_S


def test_requests_are_sent_at_their_planned_times_exactly_when_the_loop_is_free():
    # A finite rate: each request's planned time is the origin plus its seeded offset, and with nothing holding the
    # loop it starts exactly then, even while earlier answers still stream (request 0's lasts 2 s, past them all).
    plan = LoadPlan(rate_rps=8.0, seed=3)
    offsets_s = arrival_offsets_s(4, 8.0, seed=3)
    scripts = {0: stream(0.125, 2.0), 1: stream(0.125), 2: stream(0.125), 3: stream(0.125)}
    records, server = run(plan, prompts(0, 1, 2, 3), scripts)
    planned_s = [ORIGIN_S + offset for offset in offsets_s]  # the driver's own sum: the same rounding
    assert [records[i].scheduled_s for i in range(4)] == planned_s
    assert [records[i].start_s for i in range(4)] == planned_s
    assert server.posted == list(enumerate(planned_s))
    assert [schedule_lag_ms(records[i]) for i in range(4)] == [0.0, 0.0, 0.0, 0.0]


def test_schedule_lag_is_the_time_the_loop_was_held_past_the_planned_time():
    # All three planned at the origin (rate inf). Posting a request holds the loop 1/256 s (3.90625 ms): the second
    # starts that late, the third twice that. No concurrency limit, so all of it is lag, none queue.
    scripts = {i: stream(0.125) for i in range(3)}
    records, server = run(LoadPlan(), prompts(0, 1, 2), scripts, send_cost_s=1 / 256)
    assert [records[i].scheduled_s for i in range(3)] == [ORIGIN_S] * 3
    assert [records[i].start_s for i in range(3)] == [1.0, 1.00390625, 1.0078125]
    assert [schedule_lag_ms(records[i]) for i in range(3)] == [0.0, 3.90625, 7.8125]
    assert [records[i].client_queue_ms for i in range(3)] == [None, None, None]
    # The late start is where its TTFT is counted from: 125 ms after its own post, not after the planned time.
    assert [records[i].ttft_ms for i in range(3)] == [125.0, 125.0, 125.0]


def test_a_request_waiting_for_a_concurrency_slot_counts_the_wait_as_client_queue_not_lag():
    # One slot, three requests planned at the origin, each answer done 250 ms after its post: request 1 waits for
    # request 0 (250 ms), request 2 for both (500 ms). Their lag, start - planned - queue, is 0.
    scripts = {i: stream(0.0625, 0.25) for i in range(3)}
    records, server = run(LoadPlan(max_concurrency=1), prompts(0, 1, 2), scripts)
    assert [records[i].client_queue_ms for i in range(3)] == [0.0, 250.0, 500.0]
    assert [records[i].start_s for i in range(3)] == [1.0, 1.25, 1.5]
    assert [records[i].scheduled_s for i in range(3)] == [1.0, 1.0, 1.0]
    assert [schedule_lag_ms(records[i]) for i in range(3)] == [0.0, 0.0, 0.0]
    assert server.posted == [(0, 1.0), (1, 1.25), (2, 1.5)]


def test_a_freed_slot_goes_to_the_next_waiting_request_when_the_first_answer_ends():
    # Two slots: request 0's answer takes 500 ms, request 1's 125 ms; request 2 takes request 1's slot at +125 ms.
    scripts = {0: stream(0.5), 1: stream(0.125), 2: stream(0.25)}
    records, _ = run(LoadPlan(max_concurrency=2), prompts(0, 1, 2), scripts)
    assert [records[i].client_queue_ms for i in range(3)] == [0.0, 0.0, 125.0]
    assert records[2].start_s == 1.125 and records[2].e2el_ms == 250.0


def test_warm_ups_are_not_measured_and_the_schedule_starts_after_them_and_before_measuring():
    # Two warm-ups, one after the other from 0 s, each answered in 250 ms; then before_measuring (the server's
    # histograms, say) takes until 1.99 s. The schedule's origin is its end plus START_LEAD_S: 2.0 s.
    scripts = {100: stream(0.125, 0.25), 101: stream(0.125, 0.25), 0: stream(0.125), 1: stream(0.125)}
    clock, warm, phases = VirtualClock(0.0), [], []

    async def before_measuring():
        phases.append(("before measuring", clock.now_s()))
        await clock.sleep_until(2.0 - START_LEAD_S)

    records, server = run(LoadPlan(rate_rps=float("inf")), prompts(0, 1), scripts, clock=clock,
                          warmups=prompts(100, 101), on_warmup=warm.append, before_measuring=before_measuring,
                          on_measuring=lambda: phases.append(("measuring", clock.now_s())))
    assert sorted(records) == [0, 1]  # the measured records hold no warm-up
    assert [r.index for r in warm] == [100, 101]
    assert [(r.scheduled_s, r.start_s, r.e2el_ms) for r in warm] == [(0.0, 0.0, 250.0), (0.25, 0.25, 250.0)]
    assert phases == [("before measuring", 0.5), ("measuring", 1.99)]
    assert (1.99 + START_LEAD_S) == 2.0  # the origin the driver computes from the time measuring began
    assert [(records[i].scheduled_s, records[i].start_s) for i in (0, 1)] == [(2.0, 2.0), (2.0, 2.0)]
    assert server.posted == [(100, 0.0), (101, 0.25), (0, 2.0), (1, 2.0)]


def test_without_before_measuring_the_schedule_starts_start_lead_after_the_last_warm_up():
    scripts = {100: stream(0.125, 0.25), 0: stream(0.125)}
    records, _ = run(LoadPlan(), prompts(0), scripts, clock=VirtualClock(0.0), warmups=prompts(100))
    assert records[0].scheduled_s == records[0].start_s == 0.25 + START_LEAD_S  # the driver's sum, same rounding


def test_a_conversations_next_turn_is_planned_when_the_reply_came_plus_the_think_time():
    # Two conversations start at the origin (rate inf). Conversation 0's first reply ends at +0.25 s, conversation
    # 1's at +0.5 s; with 0.125 s of think time their second turns are planned, and sent, at 1.375 and 1.625.
    clock = VirtualClock(ORIGIN_S - START_LEAD_S)
    turns = [Prompted(i, [i], 1, 2, conversation=i // 2, turn=i % 2) for i in range(4)]
    server = ScriptedServer(clock, {0: stream(0.125, 0.25), 1: stream(0.0625, 0.125),
                                    2: stream(0.25, 0.5), 3: stream(0.0625, 0.125)})
    records = []
    clock.run(drive_conversations(ENDPOINT, turns, LoadPlan(), records.append, lambda t: t, lambda text: [9],
                                  think_time_s=0.125, time_source=clock, session=server))
    by_index = {r.index: r for r in records}
    assert [(by_index[i].scheduled_s, by_index[i].start_s) for i in range(4)] == [
        (1.0, 1.0), (1.375, 1.375), (1.0, 1.0), (1.625, 1.625)]
    assert by_index[1].ttft_ms == 62.5 and by_index[3].e2el_ms == 125.0
    assert server.posted == [(0, 1.0), (2, 1.0), (1, 1.375), (3, 1.625)]

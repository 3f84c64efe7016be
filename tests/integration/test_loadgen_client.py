"""The streaming client against a real server on 127.0.0.1: timings, usage, and every failure counted and named."""

import asyncio
import random
import time

import pytest

from loopback_server import LoopbackServer
from tuibench.loadgen.client import Endpoint, Prompted, send
from tuibench.loadgen.driver import LoadPlan, drive
from tuibench.servers.managed import free_port


@pytest.fixture(scope="module")
def server():
    with LoopbackServer() as running:
        yield running


def _send(url: str, prompt: str, tokens: int = 5, timeout_s: float = 10.0, api: str = "completions"):
    from tuibench.loadgen.http import Session

    async def go():
        async with Session() as session:
            request = Prompted(0, prompt, 3, tokens)
            return await send(session, Endpoint(base_url=url, model="m", api=api), request, time.perf_counter(),
                              timeout_s, lambda t: t)

    return asyncio.run(go())


def test_a_streamed_request_is_timed_and_counted_from_usage(server):
    record = _send(server.url, "ok", tokens=6)
    assert record.ok, record.error
    # usage is the server's count, kept beside the plan's: the difference is drift, never hidden by overwriting
    assert record.output_tokens == 6 and record.input_tokens == 3 and record.counted_input_tokens == 7
    assert len(record.itl_ms) == 5 and all(gap > 0 for gap in record.itl_ms)
    assert 0 < record.ttft_ms < record.e2el_ms


def test_chat_completions_time_content_deltas_not_the_role_chunk(server):
    record = _send(server.url, "hello", tokens=4, api="chat")
    assert record.ok, record.error
    assert record.output_tokens == 4 and record.input_tokens == 3 and record.counted_input_tokens == 9
    assert len(record.itl_ms) == 3  # 4 content deltas; the role-only delta is not a token


@pytest.mark.parametrize("mode", ["no-usage", "no-done"])
def test_without_usage_or_done_chunks_are_counted_and_the_stream_ends(server, mode):
    record = _send(server.url, mode, tokens=4)
    assert record.ok, record.error
    assert record.output_tokens == 4


@pytest.mark.parametrize("mode, fragment", [
    ("http500", "HTTP 500: internal error: boom"),
    ("malformed", "malformed stream: SSE data is not JSON"),
])
def test_server_failures_are_counted_and_named(server, mode, fragment):
    record = _send(server.url, mode)
    assert not record.ok and fragment in record.error
    assert record.output_tokens == 0 and record.ttft_ms is None


def test_timeout_is_counted_and_named(server):
    started = time.perf_counter()
    record = _send(server.url, "slow", timeout_s=0.5)
    assert record.error == "timeout after 0.5 s"
    assert time.perf_counter() - started < 5


def test_refused_connection_is_counted_and_named():
    record = _send(f"http://127.0.0.1:{free_port()}", "ok")
    assert record.error.startswith("connection failed") and "refused" in record.error.lower()


@pytest.mark.serial  # lags within 20 ms: alone
def test_driver_sends_on_schedule_and_records_everything(server):
    records = []
    prompts = [Prompted(i, "http500" if i == 3 else "ok", 3, 4) for i in range(12)]
    warmups = [Prompted(100 + i, "ok", 3, 4) for i in range(2)]
    plan = LoadPlan(rate_rps=40.0, seed=5)
    asyncio.run(drive(Endpoint(base_url=server.url, model="m"), prompts, plan, records.append, lambda t: t,
                      warmups=warmups))
    assert sorted(r.index for r in records) == list(range(12))  # warm-up requests are not recorded
    assert [r.index for r in records if not r.ok] == [3]
    lags_ms = [(r.start_s - r.scheduled_s) * 1000 for r in records]
    assert all(0 <= lag < 20 for lag in lags_ms), lags_ms
    # The schedule exactly: request k planned at the origin + its offset, the seeded Poisson schedule recomputed
    # from its definition (gamma gaps of shape 1, mean 1/40 s, drawn in order from Random(5); arrivals.py). Within
    # 1e-9 s: perf_counter's rounding of origin + offset (about 1e-11 s at its magnitude) is the only error, and a
    # wrong schedule (another seed, rate or order) is off by milliseconds.
    rng, expected, now = random.Random(5), [], 0.0
    for _ in range(12):
        expected.append(now)
        now += rng.gammavariate(1.0, 1.0 / 40.0)
    scheduled = [r.scheduled_s for r in sorted(records, key=lambda r: r.index)]
    assert [t - scheduled[0] for t in scheduled] == pytest.approx(expected, abs=1e-9)


def test_the_connections_a_schedule_needs_are_open_before_its_clock_starts(server):
    """12 requests at once, after a warm-up: 18 connections (12 with the margin of 1.5) are opened by GETs of
    /v1/models before the first measured request, and every measured request goes out on one of them (none pays a
    TCP connect on the run's clock)."""
    from loopback_server import SEEN

    SEEN.clear()
    records = []
    asyncio.run(drive(Endpoint(base_url=server.url, model="m"), [Prompted(i, "ok", 3, 4) for i in range(12)],
                      LoadPlan(), records.append, lambda t: t, warmups=[Prompted(100, "ok", 3, 4)]))
    first = next(i for i, (path, _) in enumerate(SEEN) if path == "/v1/models")
    opened = {port for path, port in SEEN[first:] if path == "/v1/models"}
    measured = [port for path, port in SEEN[first:] if path == "/v1/completions"]
    assert len(records) == 12 and len(opened) == 18 and len(measured) == 12
    assert set(measured) <= opened


def test_connections_needed_are_the_most_in_flight_with_a_margin_within_the_limits():
    from tuibench.loadgen.driver import POOL_MAX, connections_needed

    # 0.2 s each: at 0.25 the requests of 0.1, 0.2 and 0.25 are in flight (0 ended at 0.2): 3, x1.5 -> 5.
    assert connections_needed([0.0, 0.1, 0.2, 0.25, 1.0], 0.2, None) == 5
    assert connections_needed([0.0, 0.1, 0.2, 0.25, 1.0], 0.2, 2) == 2
    assert connections_needed([0.0] * 5000, 1.0, None) == POOL_MAX
    assert connections_needed([], 1.0, None) == 0


@pytest.mark.serial  # lags within 20 ms: alone
def test_max_concurrency_holds_requests_back(server):
    records = []
    prompts = [Prompted(i, "ok", 3, 20) for i in range(6)]  # ~40 ms each
    asyncio.run(drive(Endpoint(base_url=server.url, model="m"), prompts, LoadPlan(max_concurrency=2), records.append,
                      lambda t: t))
    starts = sorted(r.start_s for r in records)
    # all planned at once; with 2 at a time the 5th and 6th start only after two requests finished
    assert starts[4] - starts[0] > 0.03
    # That wait is the client's queue, recorded apart: what is left of start - planned is the lag, near 0.
    waited = sorted(r.client_queue_ms for r in records)
    assert waited[:2] == [pytest.approx(0.0, abs=2.0)] * 2 and waited[4] > 30
    # (20 ms, as for the schedule above: on a loaded 2-core CI box the event loop itself is that late at times)
    lags_ms = [(r.start_s - r.scheduled_s) * 1000 - r.client_queue_ms for r in records]
    assert all(lag < 20 for lag in lags_ms) and max(lags_ms) < waited[4], lags_ms

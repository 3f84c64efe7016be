"""Drives a workload against an endpoint: warm-up, then each request sent at its planned time."""

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.core.timing import PERF_COUNTER, Clock
from tuibench.loadgen.arrivals import schedule_s, send_on_schedule
from tuibench.loadgen.client import Endpoint, Prompted, send, warm_up
from tuibench.loadgen.http import Session

START_LEAD_S = 0.01  # the first request is planned this far ahead, so it is not already late


class LoadPlan(msgspec.Struct, frozen=True, kw_only=True):
    rate_rps: float = float("inf")
    burstiness: float = 1.0
    max_concurrency: int | None = None
    timeout_s: float = 600.0
    seed: int = 0
    # A trace's own schedule: each request's send time, seconds from the start (rate and burstiness then unused).
    trace_s: tuple[float, ...] | None = None

    def offsets_s(self, count: int) -> list[float]:
        """When each of `count` requests is sent, seconds from the start (loadgen/arrivals.py)."""
        return schedule_s(count, self.rate_rps, self.burstiness, self.seed, self.trace_s)


async def drive(endpoint: Endpoint, prompts: Sequence[Prompted], plan: LoadPlan,
                on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                on_measuring: Callable[[], None] = lambda: None, warmups: Sequence[Prompted] = (),
                before_measuring: Callable[[], Awaitable[None]] | None = None,
                on_warmup: Callable[[RequestRecord], None] = lambda record: None,
                time_source: Clock = PERF_COUNTER, session=None) -> None:
    """Sends `warmups` one by one (not recorded), awaits `before_measuring()`, then sends every prompt at its
    planned time (counted from after it, so what it does costs no request its schedule).

    `time_source` is what every time is read from and waited on; `clock` maps its readings to the run's clock.
    `session`: an open HTTP session to send on (a test's scripted one); by default one of our own.

    The warm-ups should not be measured prompts: on a server with a prefix cache the measured request would then
    be a cache hit."""
    own_session = session is None
    async with client(endpoint, plan, clock, time_source, session) as (session, in_slot):
        longest_s = 0.0
        for prompt in warmups:
            record = await send(session, endpoint, prompt, time_source.now_s(), plan.timeout_s, clock,
                                now=time_source.now_s)
            longest_s = max(longest_s, (record.e2el_ms or 0.0) / 1000.0)
            on_warmup(record)
        if before_measuring is not None:
            await before_measuring()
        offsets = plan.offsets_s(len(prompts))
        if own_session and longest_s:
            await open_connections(session, endpoint, connections_needed(offsets, longest_s, plan.max_concurrency))
        on_measuring()
        origin = time_source.now_s() + START_LEAD_S

        async def one(prompt: Prompted, scheduled_s: float) -> None:
            on_record(await in_slot(prompt, scheduled_s))

        await send_on_schedule(prompts, offsets, origin, time_source, one)


def freeze_heap() -> None:
    """Before a schedule's clock starts: what lives as long as the load (imports, a tokenizer, the prompts) is
    collected once and frozen out of the garbage collector. A full collection walks every object the process holds:
    in the serving child it held the loop 200 ms mid-run (100 streams, benchmarks/timing_error.py), in a process
    that had imported vLLM about 350 ms (benchmarks/loadgen_capacity.py), and every send or token then due was that
    late. The load's own short-lived objects are still collected as they go."""
    import gc

    gc.collect()
    gc.freeze()


POOL_MARGIN = 1.5  # requests take longer under load than the warm-up did alone
POOL_MAX = 1024  # connections opened ahead at most


def connections_needed(offsets_s: Sequence[float], request_s: float, limit: int | None) -> int:
    """The most requests the schedule has in flight at once if each takes `request_s` (a warm-up's E2EL), with a
    margin; within the concurrency limit, and POOL_MAX."""
    most, first = 0, 0
    for last, at_s in enumerate(offsets_s):  # offsets are in order: a window of request_s slides over them
        while offsets_s[first] < at_s - request_s:
            first += 1
        most = max(most, last - first + 1)
    return min(math.ceil(most * POOL_MARGIN), limit or POOL_MAX, POOL_MAX)


async def open_connections(session, endpoint: Endpoint, count: int) -> None:
    """`count` connections opened and left in the session's pool before the clock starts, by as many concurrent
    warm-up round trips. A connection opened mid-run costs the loop a TCP connect and the client's set-up of it
    (about 0.5 ms each, one after another as the first requests of a run ramp up): 50 streams held the loop for
    15 ms at their start, and every token then due read that late (benchmarks/timing_error.py)."""
    await asyncio.gather(*(warm_up(session, endpoint) for _ in range(count)))


@contextlib.asynccontextmanager
async def client(endpoint: Endpoint, plan: LoadPlan, clock: Callable[[float], float],
                 time_source: Clock = PERF_COUNTER, session=None):
    """The load's HTTP session, and `in_slot(prompt, scheduled_s, **send_options)`: the request sent once one of
    the plan's concurrency slots is free, its record returned. `session`: send on this one instead of our own."""
    limit = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else contextlib.nullcontext()
    now = time_source.now_s
    # Our own session has no connection limit: the plan's concurrency limit is in_slot's.
    async with (contextlib.nullcontext(session) if session is not None else Session()) as session:

        async def in_slot(prompt: Prompted, scheduled_s: float, **options) -> RequestRecord:
            # The wait for a slot is the client's queue, not lateness: it is recorded apart from the schedule lag.
            waiting_since = now()
            async with limit:
                waited_s = now() - waiting_since if plan.max_concurrency else None
                return await send(session, endpoint, prompt, scheduled_s, plan.timeout_s, clock, now=now,
                                  slot_wait_s=waited_s, **options)

        yield session, in_slot


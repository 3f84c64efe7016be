"""Drives a workload against an endpoint: warm-up, then each request sent at its planned time."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.core.timing import sleep_until
from tuibench.loadgen.arrivals import arrival_offsets_s
from tuibench.loadgen.client import Endpoint, Prompted, send

START_LEAD_S = 0.01  # the first request is planned this far ahead, so it is not already late


class LoadPlan(msgspec.Struct, frozen=True, kw_only=True):
    rate_rps: float = float("inf")
    burstiness: float = 1.0
    max_concurrency: int | None = None
    timeout_s: float = 600.0
    seed: int = 0


async def drive(endpoint: Endpoint, prompts: Sequence[Prompted], plan: LoadPlan,
                on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                on_measuring: Callable[[], None] = lambda: None, warmups: Sequence[Prompted] = (),
                before_measuring: Callable[[], Awaitable[None]] | None = None,
                on_warmup: Callable[[RequestRecord], None] = lambda record: None) -> None:
    """Sends `warmups` one by one (not recorded), awaits `before_measuring()`, then sends every prompt at its
    planned time (counted from after it, so what it does costs no request its schedule).

    The warm-ups should not be measured prompts: on a server with a prefix cache the measured request would then
    be a cache hit."""
    async with client(endpoint, plan, clock) as (session, in_slot):
        for prompt in warmups:
            on_warmup(await send(session, endpoint, prompt, time.perf_counter(), plan.timeout_s, clock))
        if before_measuring is not None:
            await before_measuring()
        on_measuring()
        offsets = arrival_offsets_s(len(prompts), plan.rate_rps, plan.burstiness, plan.seed)
        origin = time.perf_counter() + START_LEAD_S

        async def one(prompt: Prompted, scheduled_s: float) -> None:
            on_record(await in_slot(prompt, scheduled_s))

        tasks = []
        for prompt, offset in zip(prompts, offsets, strict=True):
            await sleep_until(origin + offset)
            tasks.append(asyncio.create_task(one(prompt, origin + offset)))
        await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def client(endpoint: Endpoint, plan: LoadPlan, clock: Callable[[float], float]):
    """The load's HTTP session, and `in_slot(prompt, scheduled_s, **send_options)`: the request sent once one of
    the plan's concurrency slots is free, its record returned."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=plan.max_concurrency or 0, force_close=False)
    limit = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else contextlib.nullcontext()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:

        async def in_slot(prompt: Prompted, scheduled_s: float, **options) -> RequestRecord:
            # The wait for a slot is the client's queue, not lateness: it is recorded apart from the schedule lag.
            waiting_since = time.perf_counter()
            async with limit:
                waited_s = time.perf_counter() - waiting_since if plan.max_concurrency else None
                return await send(session, endpoint, prompt, scheduled_s, plan.timeout_s, clock,
                                  slot_wait_s=waited_s, **options)

        yield session, in_slot

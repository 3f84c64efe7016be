"""Drives a workload against an endpoint: warm-up, then each request sent at its planned time."""

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.loadgen.arrivals import arrival_offsets_s
from tuibench.loadgen.client import Endpoint, Prompted, send

# epoll sleeps in whole milliseconds: sleep to this much before the planned time, then yield until it.
_SPIN_S = 0.0015
_START_LEAD_S = 0.01  # the first request is planned this far ahead, so it is not already late


class LoadPlan(msgspec.Struct, frozen=True, kw_only=True):
    rate_rps: float = float("inf")
    burstiness: float = 1.0
    max_concurrency: int | None = None
    warmup_requests: int = 0
    timeout_s: float = 600.0
    seed: int = 0


async def sleep_until(deadline: float) -> None:
    """Returns at `deadline` (perf_counter) give or take a few microseconds, not epoll's millisecond."""
    remaining = deadline - time.perf_counter()
    if remaining > _SPIN_S:
        await asyncio.sleep(remaining - _SPIN_S)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)


async def drive(endpoint: Endpoint, prompts: Sequence[Prompted], plan: LoadPlan,
                on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                on_measuring: Callable[[], None] = lambda: None) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=plan.max_concurrency or 0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        for prompt in prompts[: plan.warmup_requests]:
            await send(session, endpoint, prompt, time.perf_counter(), plan.timeout_s, clock)
        on_measuring()
        offsets = arrival_offsets_s(len(prompts), plan.rate_rps, plan.burstiness, plan.seed)
        origin = time.perf_counter() + _START_LEAD_S
        # Waiting for a slot happens before send() stamps its start, so a full house shows as schedule lag.
        limit = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else contextlib.nullcontext()

        async def one(prompt: Prompted, scheduled_s: float) -> None:
            async with limit:
                on_record(await send(session, endpoint, prompt, scheduled_s, plan.timeout_s, clock))

        tasks = []
        for prompt, offset in zip(prompts, offsets, strict=True):
            await sleep_until(origin + offset)
            tasks.append(asyncio.create_task(one(prompt, origin + offset)))
        await asyncio.gather(*tasks)

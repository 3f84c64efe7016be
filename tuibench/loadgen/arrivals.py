"""When each request is sent: Poisson arrivals (gamma for burstiness), all at once, or a trace's own times; and
sending on that schedule."""

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tuibench.core.timing import Clock

Item = TypeVar("Item")


def arrival_offsets_s(count: int, rate_rps: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Planned send times, seconds from the start, for `count` requests at `rate_rps` on average.

    Gaps are gamma-distributed with shape `burstiness` and mean 1/rate (scale 1/(rate x burstiness)), drawn in order
    by Python's `random.Random(seed).gammavariate`; the first request is at 0. Shape 1 is a Poisson process, below
    1 burstier, above 1 more regular (vLLM's convention). An infinite rate sends everything at 0.
    """
    if count < 0:
        raise ValueError("count must be non-negative")
    if math.isinf(rate_rps):
        return [0.0] * count
    if rate_rps <= 0 or burstiness <= 0:
        raise ValueError("rate and burstiness must be positive")
    rng = random.Random(seed)
    scale = 1.0 / (rate_rps * burstiness)
    offsets, now = [], 0.0
    for _ in range(count):
        offsets.append(now)
        now += rng.gammavariate(burstiness, scale)
    return offsets


def schedule_s(count: int, rate_rps: float, burstiness: float = 1.0, seed: int = 0,
               trace_s: Sequence[float] | None = None) -> list[float]:
    """The run's schedule, seconds from its start: a trace's send times where it has them (one per request, already
    at the trace's speed), else arrivals drawn at `rate_rps` (arrival_offsets_s)."""
    if trace_s is None:
        return arrival_offsets_s(count, rate_rps, burstiness, seed)
    if len(trace_s) != count:
        raise ValueError(f"the trace plans {len(trace_s)} requests, not {count}")
    return list(trace_s)


async def send_on_schedule(items: Sequence[Item], offsets_s: Sequence[float], origin_s: float, clock: Clock,
                           send_one: Callable[[Item, float], Awaitable[None]]) -> None:
    """Starts `send_one(item, planned_s)` for each item at its planned time, origin_s + its offset on `clock`, and
    returns once all are done. Each is a task of its own, so a slow answer delays no later send; a send that starts
    late (the loop was busy at its time) keeps its planned time, and its record shows the lag."""
    tasks = []
    for item, offset_s in zip(items, offsets_s, strict=True):
        planned_s = origin_s + offset_s
        await clock.sleep_until(planned_s)
        tasks.append(asyncio.create_task(send_one(item, planned_s)))
    await asyncio.gather(*tasks)

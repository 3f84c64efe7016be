"""Waiting until a moment on the monotonic clock, to within microseconds rather than epoll's millisecond."""

import asyncio
import time

# epoll sleeps in whole milliseconds: sleep to this much before the deadline, then yield until it.
SPIN_S = 0.0015


async def sleep_until(deadline: float) -> None:
    """Returns at `deadline` (perf_counter) give or take a few microseconds."""
    remaining = deadline - time.perf_counter()
    if remaining > SPIN_S:
        await asyncio.sleep(remaining - SPIN_S)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)

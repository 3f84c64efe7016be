"""The load's clock: what time it is, and waiting until a moment. One interface, two clocks.

`PERF_COUNTER` is the real one: perf_counter (CLOCK_MONOTONIC on Linux, one clock for every process on the
machine), waited on to within microseconds rather than epoll's millisecond. `VirtualClock` is for tests: time
stands still while any task can run and, once every task waits, jumps exactly to the earliest deadline, so a test
scripts when things happen and pins the timings the code derives with ==.
"""

import asyncio
import heapq
import itertools
import selectors
import time
from collections.abc import Coroutine
from typing import Any, Protocol

# epoll sleeps in whole milliseconds: sleep to this much before the deadline, then yield until it.
SPIN_S = 0.0015


class Clock(Protocol):
    def now_s(self) -> float:
        """Seconds on this clock, from an arbitrary origin: differences are durations."""

    async def sleep_until(self, deadline_s: float) -> None:
        """Returns at `deadline_s` on this clock; at once, without yielding, when it has passed."""


async def sleep_until(deadline_s: float) -> None:
    """Returns at `deadline_s` (perf_counter) give or take a few microseconds."""
    remaining_s = deadline_s - time.perf_counter()
    if remaining_s > SPIN_S:
        await asyncio.sleep(remaining_s - SPIN_S)
    while time.perf_counter() < deadline_s:
        await asyncio.sleep(0)


class PerfCounterClock:
    """The real clock. Its methods are the plain functions, not wrappers around them: the client reads `now_s`
    once per streamed chunk, and this costs that read nothing over calling perf_counter itself."""

    now_s = staticmethod(time.perf_counter)
    sleep_until = staticmethod(sleep_until)


PERF_COUNTER = PerfCounterClock()


class VirtualClock:
    """Time for tests. It moves only (a) when every task of the loop waits: then to the earliest deadline any of
    them sleeps until, exactly, or (b) by `advance(s)`: time spent holding the loop without yielding (CPU work), so
    that sleepers whose deadlines it passes wake late, as they would. Run the code under test with
    `clock.run(coroutine)`, whose event loop tells the clock when it is idle.

    Only sleeps through the clock are virtual: `asyncio.sleep(x)` with x > 0 stays real time (and, while a virtual
    sleeper waits, comes after it whatever x is), and work in a thread takes no virtual time (the loop looks idle
    while it runs), so code under test waits through its clock.
    """

    def __init__(self, start_s: float = 0.0):
        self.t_s = start_s
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []  # a heap: (deadline, order of arrival, waker)
        self._arrivals = itertools.count()

    def now_s(self) -> float:
        return self.t_s

    async def sleep_until(self, deadline_s: float) -> None:
        if deadline_s <= self.t_s:
            return  # as the real clock does: a deadline already passed costs no yield
        waker = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline_s, next(self._arrivals), waker))
        await waker

    async def sleep(self, duration_s: float) -> None:
        await self.sleep_until(self.t_s + duration_s)

    def advance(self, duration_s: float) -> None:
        """Spends `duration_s` without yielding: the loop is busy for that long."""
        self.t_s += duration_s

    def run(self, main: Coroutine) -> Any:
        """Runs `main` to its end on an event loop in this clock's time."""
        with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(_IdleSelector(self))) as runner:
            return runner.run(main)

    def _wake_next(self) -> bool:
        """At an idle moment: moves to the earliest deadline (never back: one `advance` passed may be later) and
        wakes every sleeper due by then, earliest first, ties in the order they slept. False: none waits."""
        while self._sleepers and self._sleepers[0][2].done():  # a cancelled sleeper
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        self.t_s = max(self.t_s, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.t_s:
            waker = heapq.heappop(self._sleepers)[2]
            if not waker.done():
                waker.set_result(None)
        return True


class _IdleSelector(selectors.DefaultSelector):
    """The event loop asks its selector to wait (timeout other than 0) only when no callback is ready: that is
    the moment every task waits, when virtual time jumps instead of the loop blocking."""

    def __init__(self, clock: VirtualClock):
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        if timeout != 0 and self._clock._wake_next():
            timeout = 0  # the woken tasks are ready now: only poll what real I/O there is
        return super().select(timeout)

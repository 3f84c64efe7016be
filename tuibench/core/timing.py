"""The load's clock: what time it is, and waiting until a moment. One interface, two clocks.

`PERF_COUNTER` is the real one: perf_counter (CLOCK_MONOTONIC on Linux, one clock for every process on the machine),
waited on to within tens of microseconds rather than epoll's millisecond, without spinning: by the event loop's own
timerfd on Linux, elsewhere by a waker thread. `VirtualClock` is for tests: time stands still while any task can run
and, once every task waits, jumps exactly to the earliest deadline, so a test scripts when things happen and pins
the timings the code derives with ==.
"""

import asyncio
import functools
import heapq
import itertools
import os
import selectors
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import Any, NamedTuple, Protocol


class Clock(Protocol):
    def now_s(self) -> float:
        """Seconds on this clock, from an arbitrary origin: differences are durations."""

    async def sleep_until(self, deadline_s: float) -> None:
        """Returns at `deadline_s` on this clock; at once, without yielding, when it has passed."""


class _Waker:
    """Wakes sleepers of any event loop at their deadlines from one thread of its own. The event loop's own timers
    wait in epoll, whose timeout is in whole milliseconds (a sleeper woke up to 1 ms late); spinning through the
    last stretch instead cost a core once streams were many (the mock server at 10 streams kept 1.5 of 2 busy). This
    thread waits on a lock with a timeout (sem_clockwait: microseconds) and hands each due sleeper to its loop,
    whose epoll the hand-over wakes at once; nothing spins."""

    def __init__(self):
        self._due: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline_s: float, loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
        with self._changed:
            heapq.heappush(self._due, (deadline_s, next(self._order), loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tuibench-waker", daemon=True)
                self._thread.start()
            if self._due[0][3] is future:  # a new earliest deadline: the thread waits for an earlier one now
                self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                if not self._due:
                    self._changed.wait()
                    continue
                remaining_s = self._due[0][0] - time.perf_counter()
                if remaining_s > 0:
                    self._changed.wait(remaining_s)
                    continue
                _, _, loop, future = heapq.heappop(self._due)
                try:
                    loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # its loop has closed: nobody waits for it
                    pass


def _wake(future: asyncio.Future) -> None:
    if not future.done():  # not cancelled meanwhile
        future.set_result(None)


_WAKER = _Waker()


def _new_waker() -> None:
    global _WAKER
    _WAKER = _Waker()  # a forked child (a client worker) has none of its parent's threads: its own, on first use


os.register_at_fork(after_in_child=_new_waker)


class _LoopTimer:
    """An event loop's own precise alarm (Linux): one timerfd on CLOCK_MONOTONIC, perf_counter's clock, armed for the
    earliest deadline and watched by the loop's epoll like any socket. A deadline wakes the loop within the kernel's
    timer slack (50 us), with no thread: a wake costs an epoll return and a re-arm (a read when none is left to
    arm), where the waker thread's hand-over cost a condition wait, a self-pipe write and the GIL between two
    threads (0.1-0.3 ms a request at 200 req/s, benchmarks/loadgen_capacity.py)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, api: "_TimerFd"):
        self._api = api
        self._fd = api.libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._fd < 0:
            raise OSError("timerfd_create failed")
        self._due: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._armed_s = float("inf")
        # struct itimerspec as four longs (interval, then value: seconds and nanoseconds), made once and filled in
        # place: a third cheaper a wake than building the ctypes structures each time.
        self._spec = api.itimerspec()
        loop.add_reader(self._fd, self._fired)
        weakref.finalize(loop, os.close, self._fd)  # the loop gone, its alarm's descriptor with it

    def add(self, deadline_s: float, future: asyncio.Future) -> None:
        heapq.heappush(self._due, (deadline_s, next(self._order), future))
        if deadline_s < self._armed_s:
            self._arm(deadline_s)

    def _arm(self, deadline_s: float) -> None:
        self._armed_s = deadline_s
        whole = int(deadline_s)
        # An absolute time on CLOCK_MONOTONIC (a zero one would disarm it: perf_counter's never is, it counts uptime).
        spec = self._spec
        spec[2], spec[3] = whole, int((deadline_s - whole) * 1e9)
        self._api.settime(self._fd, _TFD_TIMER_ABSTIME, spec, None)

    def _fired(self) -> None:
        now = time.perf_counter()
        while self._due and (self._due[0][0] <= now or self._due[0][2].done()):
            _wake(heapq.heappop(self._due)[2])
        self._armed_s = float("inf")
        if self._due:
            self._arm(self._due[0][0])  # which clears the expiry too (timerfd_settime zeroes its count)
            return
        try:
            os.read(self._fd, 8)  # cleared, or epoll would report it again and again
        except BlockingIOError:  # nothing had expired: a stale wake
            pass


# timerfd's constants (linux/timerfd.h): CLOCK_MONOTONIC is the clock perf_counter reads on Linux.
_CLOCK_MONOTONIC, _TFD_NONBLOCK, _TFD_CLOEXEC, _TFD_TIMER_ABSTIME = 1, 0o4000, 0o2000000, 1
_LOOP_TIMERS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopTimer | None]" = weakref.WeakKeyDictionary()


class _TimerFd(NamedTuple):
    libc: Any
    settime: Any  # timerfd_settime
    itimerspec: Any  # a ctypes array type that lays out as struct itimerspec


@functools.cache
def _timerfd() -> _TimerFd | None:
    """libc's timerfd calls through ctypes, made once; None off Linux."""
    if os.uname().sysname != "Linux":
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.timerfd_settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    # struct itimerspec is two struct timespec (time_t and long: both C long on Linux), four longs in a row.
    return _TimerFd(libc, libc.timerfd_settime, ctypes.c_long * 4)


def _loop_timer(loop: asyncio.AbstractEventLoop) -> "_LoopTimer | None":
    """This loop's timerfd alarm; None where there is none to make (not Linux, no libc timerfd, a loop that cannot
    watch a file descriptor): the waker thread then does it."""
    if loop in _LOOP_TIMERS:
        return _LOOP_TIMERS[loop]
    timer = None
    try:
        if (api := _timerfd()) is not None:
            timer = _LoopTimer(loop, api)
    except (OSError, NotImplementedError, AttributeError):
        timer = None
    _LOOP_TIMERS[loop] = timer
    return timer


async def sleep_until(deadline_s: float) -> None:
    """Returns at `deadline_s` (perf_counter) give or take some tens of microseconds, without spinning; at once,
    without yielding, when it has passed."""
    if deadline_s <= time.perf_counter():
        return
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    if (timer := _loop_timer(loop)) is not None:
        timer.add(deadline_s, future)
        await future
        return
    _WAKER.add(deadline_s, loop, future)
    # The loop's own timer too: a loop busy with callbacks runs it on its next turn, while the waker may wait for
    # the GIL (up to the 5 ms switch interval) to hand its sleeper over; whichever comes first wakes it.
    timer_handle = loop.call_at(loop.time() + (deadline_s - time.perf_counter()), _wake, future)
    try:
        await future
    finally:
        timer_handle.cancel()


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

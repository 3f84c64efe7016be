"""The parent side of a run: spawns the child, relays its events, and survives it.

Whatever happens to the child (an exception, a kill, an OOM) or to us (Ctrl-C), the event stream
ends with exactly one RunFinished or RunFailed, so what was measured before it is kept.
"""

import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Callable, Sequence

from tuibench.core import events as ev
from tuibench.core.spec import RunSpec
from tuibench.core.workload import RequestSpec
from tuibench.runner.child import STOPPED_EXIT

POLL_S = 0.1
TERMINATE_GRACE_S = 5.0


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode == STOPPED_EXIT:  # SIGTERM, which the child turns into an orderly exit
        return "stopped by SIGTERM"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


# Called between reads with the run's clock; returns events the parent itself observed (a server's log).
Tick = Callable[[Callable[[], float]], Sequence[ev.Event]]


def no_tick(clock: Callable[[], float]) -> Sequence[ev.Event]:
    return ()


class Cancelled(Exception):
    """Raised inside the relay loop when the caller asks the run to stop (the app's cancel key)."""


def run_in_child(spec: RunSpec, requests: Sequence[RequestSpec], on_event: Callable[[ev.Event], None],
                 tick: Tick = no_tick, cancel: Callable[[], bool] = lambda: False,
                 output_path: str | None = None, origin: float | None = None) -> ev.Event:
    """Runs `spec` in a spawned child, calling `on_event` for each event; returns the terminal event.

    `tick(clock)` is called between reads (at least every POLL_S) for events the parent itself observes,
    such as a managed server's log lines; `clock()` is the run's clock. When `cancel()` turns true the
    child is stopped as on Ctrl-C: what it measured is kept, and the run ends `interrupted`. With
    `output_path`, the child's stdout and stderr go to that file instead of our terminal. `origin` is the
    perf_counter reading at which the run's clock reads 0 (default: now).
    """
    from tuibench.runner.child import child_main

    origin = time.perf_counter() if origin is None else origin
    context = mp.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=child_main, args=(spec.to_json(), list(requests), sender, origin, output_path),
                              name="tuibench-run", daemon=True)
    process.start()
    sender.close()  # so the pipe reports EOF once the child is gone
    last_t_s = 0.0
    terminal: ev.Event | None = None

    def relay(event: ev.Event) -> None:
        nonlocal last_t_s, terminal
        last_t_s = max(last_t_s, event.t_s)
        if isinstance(event, ev.TERMINAL):
            if terminal is not None:
                return
            terminal = event
        on_event(event)

    def drain() -> None:
        try:
            while receiver.poll():
                relay(ev.decode(receiver.recv_bytes()))
        except (EOFError, OSError):
            pass

    try:
        def clock() -> float:
            return time.perf_counter() - origin

        while terminal is None:
            if cancel():
                raise Cancelled
            for event in tick(clock):
                relay(event)
            try:
                if receiver.poll(POLL_S):
                    relay(ev.decode(receiver.recv_bytes()))
            except (EOFError, OSError):
                break
    except (KeyboardInterrupt, Cancelled) as stop:
        stop_child(process)  # another Ctrl-C meanwhile waits for this (cli's handler)
        drain()
        how = "cancelled in the app" if isinstance(stop, Cancelled) else "interrupted by the user (Ctrl-C)"
        relay(ev.RunFailed(t_s=last_t_s, kind="interrupted", error=how))
    finally:
        process.join(TERMINATE_GRACE_S)
        if process.is_alive():
            stop_child(process)
        receiver.close()
    if terminal is None:
        relay(ev.RunFailed(t_s=last_t_s, kind="crashed", error=f"the run's child process died: {describe_exit(process.exitcode)}"))
    return terminal


def stop_child(process: mp.process.BaseProcess) -> None:
    """SIGTERM, a grace period, then SIGKILL. The child exits on SIGTERM the orderly way (see child_main), so that
    multiprocessing's finalizers unlink the semaphores it made: SIGKILL is for a child that does not within the grace
    period, and what it leaves is what the resource tracker it shares with us then warns about at our exit."""
    if process.is_alive():
        process.terminate()
        process.join(TERMINATE_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()

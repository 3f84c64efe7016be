"""The run service as a process of its own, for the app: `python -m tuibench.runner.app_server`.

It reads requests (core/remote.py) on stdin and answers on stdout, one JSON object a line. A plan runs on the
main thread through the same run_plan as the CLI's, its events written out as they are reduced; a thread reads
stdin meanwhile, so a cancel stops the plan as Ctrl-C stops the CLI's, and the end of stdin (the app quit or
died) cancels it too: its children and servers are stopped, what they measured is stored, and nothing is left
running behind an app that is gone.

Whatever an engine or a library prints goes to stderr (the app gives it a log file): stdout is the protocol's.
"""

import os
import queue
import signal
import sys
import threading

from tuibench.core import remote
from tuibench.core.errors import UserError


class _Channel:
    """stdout kept for the protocol: file descriptor 1 then points at stderr, so a stray print reaches the log."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()  # run_plan's observer writes from the main thread; answers too

    def say(self, message) -> None:
        with self._lock:
            self._out.write(remote.encode(message))
            self._out.flush()


def _read_asks(asks: "queue.Queue[remote.Ask | None]", cancel: threading.Event) -> None:
    """stdin's requests into `asks`; a cancel (or the end of stdin) also sets `cancel` at once, for the plan that
    is running while the main thread is busy with it."""
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        ask = remote.decode_ask(line)
        if isinstance(ask, remote.CancelPlan):
            cancel.set()
        else:
            asks.put(ask)
    cancel.set()
    asks.put(None)


def _libraries() -> remote.Libraries:
    from tuibench.runner.plans import library_choices

    return remote.Libraries(rows=[remote.LibraryRow(name, ok, reason) for name, ok, reason in library_choices()])


def _build(ask: remote.BuildPlan) -> remote.Built | remote.Refused:
    from tuibench.runner.plans import build_plan

    try:
        return remote.Built(plan=build_plan(ask.request))
    except UserError as exc:
        return remote.Refused(error=str(exc))


def _run(ask: remote.RunPlan, channel: _Channel, cancel: threading.Event) -> remote.RunDone:
    from pathlib import Path

    from tuibench.core.paths import data_dir
    from tuibench.core.store import ResultsStore
    from tuibench.runner.service import run_plan

    cancel.clear()
    try:
        with ResultsStore.open(Path(ask.db)) as store:
            run_plan(ask.plan, store, observer=lambda event, state: channel.say(event), cancel=cancel.is_set,
                     output_dir=data_dir() / "logs", port=ask.plan.request.port)
    except UserError as exc:
        return remote.RunDone(error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the app shows what broke the plan; the service stays up
        return remote.RunDone(error=f"{type(exc).__name__}: {exc}")
    return remote.RunDone()


def main() -> None:
    # The app owns Ctrl-C (a key in its terminal): a SIGINT to the process group is not ours to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tuibench.runner.child import FRONT_END_PID_ENV

    os.environ[FRONT_END_PID_ENV] = str(os.getppid())  # the app's CPU is the run's harness, not another process's
    channel = _Channel()
    asks: queue.Queue[remote.Ask | None] = queue.Queue()
    cancel = threading.Event()
    threading.Thread(target=_read_asks, args=(asks, cancel), name="tuibench-asks", daemon=True).start()
    while (ask := asks.get()) is not None:
        if isinstance(ask, remote.ListLibraries):
            channel.say(_libraries())
        elif isinstance(ask, remote.BuildPlan):
            channel.say(_build(ask))
        elif isinstance(ask, remote.RunPlan):
            channel.say(_run(ask, channel, cancel))


if __name__ == "__main__":
    main()

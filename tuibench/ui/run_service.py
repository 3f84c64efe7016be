"""The app's handle on the run service, a process of its own (runner/app_server.py): the app never imports an engine.

Started on first use and kept for the app's life. A thread reads what the service says: answers go to the one
request waiting for them, a plan's events to the handler of the plan that runs. Requests are one at a time.
"""

import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from tuibench.core import remote
from tuibench.core.errors import UserError

ANSWER_TIMEOUT_S = 120.0  # building a plan converts a model the first time (half a minute on a CPU)
STOP_GRACE_S = 15.0  # a plan cancelled by the end of stdin stops its child and server, then stores what it had


class ServiceGone(Exception):
    """The service process ended while something was asked of it."""


class RunService:
    def __init__(self, log_path: Path | None = None):
        self._log_path = log_path
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()
        self._on_event: Callable[[object], None] | None = None
        self._asking = threading.Lock()  # one request at a time
        self._writing = threading.Lock()  # a cancel is written while the run request waits for its end
        self._starting = threading.Lock()

    def _start(self) -> subprocess.Popen:
        with self._starting:
            if self._process is None or self._process.poll() is not None:
                if self._log_path:
                    self._log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
                self._process = subprocess.Popen([sys.executable, "-m", "tuibench.runner.app_server"],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
                threading.Thread(target=self._read, args=(self._process,), name="tuibench-service", daemon=True).start()
            return self._process

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            said = remote.decode_said(line)
            if isinstance(said, remote.Libraries | remote.Built | remote.Refused | remote.RunDone):
                self._answers.put(said)
            elif self._on_event is not None:
                self._on_event(said)
        self._answers.put(None)  # gone: whoever waits is told

    def _ask(self, ask: remote.Ask, timeout_s: float | None = ANSWER_TIMEOUT_S):
        with self._asking:
            process = self._start()
            if not self._write(process, ask):
                raise ServiceGone("the run service ended; its log says why")
            try:
                answer = self._answers.get(timeout=timeout_s)
            except queue.Empty:
                raise ServiceGone(f"the run service did not answer within {timeout_s:g} s") from None
            if answer is None:
                raise ServiceGone("the run service ended; its log says why")
            return answer

    def libraries(self) -> list[remote.LibraryRow]:
        return self._ask(remote.ListLibraries()).rows

    def build(self, request):
        """The plan of `request`, checked by the run service; UserError with its one line when it is refused."""
        answer = self._ask(remote.BuildPlan(request=request))
        if isinstance(answer, remote.Refused):
            raise UserError(answer.error)
        return answer.plan

    def run(self, plan, db_path: Path, on_event: Callable[[object], None]) -> None:
        """Runs `plan`, calling `on_event` from the reading thread with each event as it comes; returns at its end.
        UserError when the plan could not run at all."""
        self._on_event = on_event
        try:
            done = self._ask(remote.RunPlan(plan=plan, db=str(db_path)), timeout_s=None)
        finally:
            self._on_event = None
        if done.error:
            raise UserError(done.error)

    def cancel(self) -> None:
        """Stops the running plan as Ctrl-C stops the CLI's (written beside a waiting request, not after it)."""
        process = self._process
        if process is not None and process.poll() is None:
            self._write(process, remote.CancelPlan())

    def _write(self, process: subprocess.Popen, ask: remote.Ask) -> bool:
        with self._writing:
            try:
                process.stdin.write(remote.encode(ask))
                process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):  # ValueError: stdin closed already
                return False
        return True

    def close(self) -> None:
        """Ends the service: the end of its stdin cancels a running plan, which it stops and stores first."""
        process = self._process
        if process is None:
            return
        with self._writing:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

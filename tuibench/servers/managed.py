"""A server process tuibench starts, watches and always stops.

It runs in its own process group (so its workers go with it), bound to 127.0.0.1 on a free port, its
output in a log file that is tailed into the run's events. Stopping is SIGTERM to the group, then
SIGKILL; and should tuibench itself die, the kernel kills the server (PR_SET_PDEATHSIG, Linux).
"""

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import msgspec

from tuibench.core import events as ev
from tuibench.core.errors import UserError

STOP_GRACE_S = 10.0


class ServerCommand(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # for messages: "vllm", "transformers serve"
    argv: list[str]
    port: int
    env: dict[str, str] = {}
    health_path: str = "/health"
    metrics_path: str = "/metrics"  # its Prometheus metrics (telemetry/server_metrics.py: each library's route)
    startup_timeout_s: float = 600.0
    # Files it reads at start (a config the engine takes only as a file): absolute path -> text, written at launch.
    files: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ServerFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# For a server tuibench launches, whose --port may be left out (a free one is found then).
PORT_IN_USE = "port {port} on {host} is already in use: pick another with --port, or leave it out"


def check_port_free(port: int, host: str = "127.0.0.1", message: str = PORT_IN_USE) -> None:
    """Refuses, as one line (UserError), a port that cannot be bound on `host` now: before a server is started on it,
    whose own failure would come later and buried in its log. `message` is formatted with host, port and reason
    (the system's words: "Address already in use", "Cannot assign requested address")."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(message.format(host=host, port=port, reason=exc.strerror or exc)) from None


def _die_with_parent() -> None:
    """In the server's process, before exec: the kernel sends it SIGKILL when its parent dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ManagedServer:
    def __init__(self, command: ServerCommand, log_path: Path):
        self.command = command
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_offset = 0
        self._partial_line = b""
        self.announced_exit = False
        # perf_counter at its launch, when its log was first seen to have output, and when it first answered.
        self.launched_s: float | None = None
        self.first_output_s: float | None = None
        self.healthy_s: float | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for path, text in self.command.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        with open(self.log_path, "wb") as log:
            self.launched_s = time.perf_counter()
            self.process = subprocess.Popen(
                self.command.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.command.env}, start_new_session=True, preexec_fn=_die_with_parent,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, on_wait: Callable[[], None] = lambda: None) -> None:
        """Returns once GET health_path answers 200; ServerFailed if the server exits or takes too long."""
        url = self.command.base_url + self.command.health_path
        deadline = time.monotonic() + self.command.startup_timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerFailed(f"{self.command.name} exited while starting ({self._exit_text()}): "
                                   f"{self.last_log_line() or 'no output'} (log: {self.log_path})")
            try:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    if response.status == 200:
                        self.healthy_s = time.perf_counter()
                        if self.first_output_s is None and self.log_path.exists() and self.log_path.stat().st_size:
                            self.first_output_s = self.healthy_s  # it said something, but after the last poll
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            on_wait()
            time.sleep(0.25)
        raise ServerFailed(f"{self.command.name} did not answer {url} within {self.command.startup_timeout_s:g} s "
                           f"(log: {self.log_path})")

    def start_up_s(self) -> tuple[float, float] | None:
        """(launch to first output, first output to healthy) in seconds, once it has answered; a server silent until
        then counts it all as loading."""
        if self.launched_s is None or self.healthy_s is None:
            return None
        first = self.first_output_s if self.first_output_s is not None else self.launched_s
        return first - self.launched_s, self.healthy_s - first

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait_s)
                # The leader is gone; its workers may not be: one more SIGKILL for the group.
                os.killpg(self.process.pid, signal.SIGKILL)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break

    def __enter__(self) -> "ManagedServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the log, tailed into the run's events ----------------------------------------------------------

    def new_log_lines(self) -> list[str]:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                data = log.read(1 << 20)
        except FileNotFoundError:
            return []
        if data and self.first_output_s is None:
            self.first_output_s = time.perf_counter()
        self._log_offset += len(data)
        *lines, self._partial_line = (self._partial_line + data).split(b"\n")
        return [line.decode(errors="replace").rstrip() for line in lines if line.strip()]

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_bytes().decode(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return lines[-1][:300] if lines else ""

    def _exit_text(self) -> str:
        code = self.process.returncode if self.process else None
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def tick(self, clock: Callable[[], float]) -> list[ev.Event]:
        """Events for the run: new log lines, and a warning once if the server has exited."""
        events: list[ev.Event] = [ev.Log(t_s=clock(), message=f"[{self.command.name}] {line}", level="debug")
                                  for line in self.new_log_lines()]
        if not self.alive() and not self.announced_exit:
            self.announced_exit = True
            events.append(ev.Log(t_s=clock(), level="warning",
                                 message=f"{self.command.name} exited mid-run ({self._exit_text()}); "
                                         f"requests from now on fail (log: {self.log_path})"))
        return events

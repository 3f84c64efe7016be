"""Which processes are the run's own, so that the CPU and GPUs other processes used can be told apart.

The run's own: tuibench's parent process (the CLI or the app) and everything it started (the child, a managed
server and the workers it forks), plus any process given (a server the user started, found by its port).
"""

import time
from collections.abc import Iterable, Sequence

REFRESH_S = 2.0  # servers fork workers as they start: the tree is listed again this often, not at every sample


class ProcessTree:
    def __init__(self, roots: Sequence[int]):
        import psutil

        self._psutil = psutil
        self._roots = [p for pid in roots if (p := self._process(pid)) is not None]
        self._members: dict[int, object] = {}
        self._cpu_s: dict[int, float] = {}  # each member's CPU time at the last reading
        self._listed_at = float("-inf")
        self._first: set[int] | None = None  # the members at the first listing; any later one was born since

    def _process(self, pid: int):
        try:
            return self._psutil.Process(pid)
        except self._psutil.Error:
            return None

    def _list(self) -> None:
        members = {}
        for root in self._roots:
            try:
                for process in (root, *root.children(recursive=True)):
                    members[process.pid] = process
            except self._psutil.Error:
                continue
        # A member of the first listing starts from its CPU time then: what it used before is older news. One that
        # joins later was born since (a client worker, a server's worker), so all its CPU is the run's, though it is
        # listed up to REFRESH_S after its start.
        for pid, process in members.items():
            if pid not in self._cpu_s and (cpu_s := self._cpu_of(process)) is not None:
                self._cpu_s[pid] = cpu_s if self._first is None else 0.0
        if self._first is None:
            self._first = set(members)
        self._members = members
        self._listed_at = time.monotonic()

    def _cpu_of(self, process) -> float | None:
        try:
            times = process.cpu_times()
        except self._psutil.Error:
            return None
        return times.user + times.system

    def pids(self) -> set[int]:
        if time.monotonic() - self._listed_at >= REFRESH_S:
            self._list()
        return set(self._members)

    def cpu_s_since_last(self) -> float:
        """CPU seconds the tree used since the previous call (a process gone since counts no more)."""
        self.pids()
        used_s = 0.0
        for pid, process in self._members.items():
            now_s = self._cpu_of(process)
            if now_s is None:
                continue
            used_s += max(0.0, now_s - self._cpu_s.get(pid, now_s))
            self._cpu_s[pid] = now_s
        return used_s


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port, where this user may see it (None otherwise)."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    return next((c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                 and c.pid), None)


def others_among(listed: Iterable[int], ours: set[int], exists=None) -> int | None:
    """How many of the processes a GPU lists are not ours; None when the list cannot be read in this PID namespace
    (in a container NVML lists host PIDs: ours are then missing from a list that is not empty)."""
    listed = set(listed)
    if listed and not listed & ours:
        return None
    if exists is None:
        import psutil

        exists = psutil.pid_exists
    return sum(1 for pid in listed - ours if exists(pid))

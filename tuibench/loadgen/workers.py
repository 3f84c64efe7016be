"""One arrival schedule sent by several client processes, when one process cannot send the load.

The schedule is decided here, once, so the arrival process is the one asked for: request k goes to worker
k mod N with its planned offset. Each worker (`python -m tuibench.loadgen.workers N`) takes its share, imports
and opens a connection to the server, says it is ready; when all are, the run names the start (a perf_counter
time: the workers run on this machine and share its monotonic clock, so times cross processes unchanged) and
each sends its requests at start + offset with the same client as a single-process run, streaming its records
back as they finish. The records merge into one run. A worker that dies has its unreturned requests counted as
failed, naming it.
"""

import asyncio
import os
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.core.timing import PERF_COUNTER, Clock
from tuibench.loadgen.client import Endpoint, Prompted, warm_up
from tuibench.loadgen.driver import freeze_heap
from tuibench.loadgen.http import Session

_START_LEAD_S = 0.05  # the schedule starts this far after every worker said it is ready
RECORDS_WINDOW_S = 0.02  # a worker's records go back together: those done within this of the first


class RecordBatches:
    """A worker's records handed on in lists, those done within RECORDS_WINDOW_S of the first together. A Ray actor
    sends each as a Ray object, about 0.5 ms of its CPU: one per record cost it more than the request (0.075 ms a
    request once batched, benchmarks/loadgen_scaling.py); a local worker's frames go the same way, one write for
    many. Records are the run's tally, not its timing: each carries its own times."""

    def __init__(self, hand_on: Callable[[bytes], None]):
        self._hand_on = hand_on
        self._held: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        if not self._held:
            asyncio.get_running_loop().call_later(RECORDS_WINDOW_S, self.flush)
        self._held.append(record)

    def flush(self) -> None:
        if self._held:
            self._hand_on(msgspec.msgpack.encode(self._held))
            self._held = []


class WorkerShare(msgspec.Struct, frozen=True, kw_only=True):
    worker: int
    endpoint: Endpoint
    prompts: list[Prompted]
    offsets_s: list[float]  # after the common start, one per prompt
    timeout_s: float


def shares(prompts: Sequence[Prompted], offsets_s: Sequence[float], workers: int, endpoint: Endpoint,
           timeout_s: float) -> list[WorkerShare]:
    """Request k to worker k mod `workers`: each worker's share of a Poisson schedule is itself spread evenly."""
    return [WorkerShare(worker=w, endpoint=endpoint, prompts=list(prompts[w::workers]),
                        offsets_s=list(offsets_s[w::workers]), timeout_s=timeout_s)
            for w in range(workers)]


def _write_frame(stream, kind: str, payload: bytes = b"") -> None:
    frame = msgspec.msgpack.encode((kind, payload))
    stream.write(struct.pack(">I", len(frame)) + frame)
    stream.flush()


def _read_frame(stream) -> tuple[str, bytes] | None:
    """The next (kind, payload), or None at the end of the stream."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    return msgspec.msgpack.decode(stream.read(struct.unpack(">I", header)[0]), type=tuple[str, bytes])


async def send_share(session, share: WorkerShare, origin_s: float, on_record: Callable[[RequestRecord], None],
                     time_source: Clock = PERF_COUNTER) -> None:
    """Sends each request of the share at origin_s + its offset (this process's perf_counter: the origin crosses
    processes, so a worker's time source is the real one; a test may give another), as one client does; each
    record, stamped on this process's clock, reaches `on_record` as it finishes."""
    from tuibench.loadgen.arrivals import send_on_schedule
    from tuibench.loadgen.client import send

    async def one(prompt: Prompted, at_s: float) -> None:
        on_record(await send(session, share.endpoint, prompt, at_s, share.timeout_s, lambda t: t,
                             now=time_source.now_s))

    await send_on_schedule(share.prompts, share.offsets_s, origin_s, time_source, one)


def worker_main() -> None:
    """In the worker process: take the share from stdin, get ready (imports, a connection to the server), say so,
    take the start, send each request at its time, write the records to stdout as they finish (RecordBatches)."""
    # The frames get stdout to themselves: anything a library prints goes to stderr instead.
    out, inbox = os.fdopen(os.dup(1), "wb"), sys.stdin.buffer
    os.dup2(2, 1)
    frame = _read_frame(inbox)
    if frame is None:
        return
    share = msgspec.msgpack.decode(frame[1], type=WorkerShare)

    async def go() -> None:
        async with Session() as session:
            await warm_up(session, share.endpoint)
            freeze_heap()
            _write_frame(out, "ready")
            start = await asyncio.to_thread(_read_frame, inbox)
            if start is None:
                return
            origin = msgspec.msgpack.decode(start[1], type=float)
            batches = RecordBatches(lambda records: _write_frame(out, "records", records))
            await send_share(session, share, origin, batches.add)
            batches.flush()

    asyncio.run(go())
    _write_frame(out, "done")


class Pool(Protocol):
    """Where the workers run. Each one's messages reach `next()` as (kind, worker, payload): "ready" once it has
    its share and a connection, then "records" (a list, as requests finish), "done" when it sent them all, and
    "closed" last (a "closed" without "done": it died)."""

    def give(self, worker: int, share: WorkerShare) -> None: ...

    def start(self, worker: int, origin_s: float) -> None:
        """Send at origin_s (our perf_counter) + each offset."""

    def next(self) -> tuple[str, int, bytes]: ...

    def offset_ms(self, worker: int) -> float | None:
        """Its clock minus ours, when it has a clock of its own (None: it shares ours)."""

    def why_gone(self, worker: int) -> str: ...

    def close(self) -> None: ...


class LocalPool:
    """Worker processes on this machine (plain subprocesses: the run's child is a daemon, which may not fork workers
    of its own through multiprocessing), a thread per worker reading its frames into one queue. They share this
    machine's monotonic clock, so times cross unchanged."""

    def __init__(self, workers: int):
        self.messages: queue.Queue = queue.Queue()
        # The worker's number is on its command line only so that `ps` tells them apart.
        self.processes = [subprocess.Popen([sys.executable, "-m", "tuibench.loadgen.workers", str(worker)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE) for worker in range(workers)]
        for worker, process in enumerate(self.processes):
            threading.Thread(target=self._read, args=(worker, process), daemon=True,
                             name=f"tuibench-client-{worker}").start()

    def _read(self, worker: int, process: subprocess.Popen) -> None:
        while (frame := _read_frame(process.stdout)) is not None:
            self.messages.put((frame[0], worker, frame[1]))
        self.messages.put(("closed", worker, b""))

    def give(self, worker: int, share: WorkerShare) -> None:
        self._tell(worker, "share", msgspec.msgpack.encode(share))

    def start(self, worker: int, origin_s: float) -> None:
        self._tell(worker, "start", msgspec.msgpack.encode(origin_s), last=True)

    def next(self) -> tuple[str, int, bytes]:
        return self.messages.get()

    def offset_ms(self, worker: int) -> float | None:
        return None

    def _tell(self, worker: int, kind: str, payload: bytes, last: bool = False) -> None:
        stdin = self.processes[worker].stdin
        try:
            _write_frame(stdin, kind, payload)
            if last:
                stdin.close()
        except (BrokenPipeError, OSError):
            pass  # it died: its closed stream says so

    def why_gone(self, worker: int) -> str:
        try:
            return f"exit code {self.processes[worker].wait(timeout=5)}"
        except subprocess.TimeoutExpired:
            return "exit code None"

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=5)


def drive_split(endpoint: Endpoint, prompts: Sequence[Prompted], offsets_s: Sequence[float], workers: int,
                timeout_s: float, on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                on_measuring: Callable[[], None] = lambda: None, pool: Pool | None = None,
                time_source: Clock = PERF_COUNTER) -> None:
    """Sends `prompts` at `offsets_s` after a common start from `workers` processes (local ones, or `pool`'s); each
    record reaches `on_record` as it finishes, on the run's clock (`clock` maps readings of `time_source`, the
    clock the workers share: perf_counter for real ones), with its worker id and that worker's clock offset."""
    pool = pool if pool is not None else LocalPool(workers)
    try:
        for share in shares(prompts, offsets_s, workers, endpoint, timeout_s):
            pool.give(share.worker, share)
        answered: set[int] = set()
        closed: set[int] = set()
        while len(answered) < workers:  # ready, or gone before it was
            kind, worker, _ = pool.next()
            answered.add(worker)
            if kind == "closed":
                closed.add(worker)
        origin = time_source.now_s() + _START_LEAD_S
        for worker in set(range(workers)) - closed:
            pool.start(worker, origin)
        on_measuring()
        planned = [origin + offset for offset in offsets_s]
        _collect(pool, workers, prompts, planned, closed, on_record, clock)
    finally:
        pool.close()


def _collect(pool: Pool, workers: int, prompts, planned, closed: set[int], on_record, clock) -> None:
    """Records as they come, until every worker's stream has closed; a worker that closed without saying it was
    done died, and its unreturned requests fail."""
    pending = {w: {p.index: (p, at) for p, at in zip(prompts[w::workers], planned[w::workers], strict=True)}
               for w in range(workers)}
    done: set[int] = set()
    for worker in closed:
        _fail(pending[worker], worker, pool.why_gone(worker), on_record, clock)
    while len(closed) < workers:
        kind, worker, payload = pool.next()
        if kind == "records":
            offset_ms = pool.offset_ms(worker)
            shift_s = (offset_ms or 0.0) / 1e3  # their clock to ours
            for record in msgspec.msgpack.decode(payload, type=list[RequestRecord]):
                pending[worker].pop(record.index, None)
                on_record(msgspec.structs.replace(record, start_s=clock(record.start_s - shift_s), worker=worker,
                                                  scheduled_s=clock(record.scheduled_s - shift_s),
                                                  clock_offset_ms=offset_ms))
        elif kind == "done":
            done.add(worker)
        elif kind == "closed":
            closed.add(worker)
            if worker not in done:
                _fail(pending[worker], worker, pool.why_gone(worker), on_record, clock)


def _fail(unreturned: dict, worker: int, why: str, on_record, clock) -> None:
    for prompt, at_s in unreturned.values():
        on_record(RequestRecord(index=prompt.index, input_tokens=prompt.input_tokens, output_tokens=0,
                                target_output_tokens=prompt.output_tokens, start_s=clock(at_s),
                                scheduled_s=clock(at_s), worker=worker, error=f"client worker {worker} died ({why})"))
    unreturned.clear()


if __name__ == "__main__":
    worker_main()

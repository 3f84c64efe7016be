"""One arrival schedule sent by several client processes, when one process cannot send the load.

The schedule is decided here, once, so the arrival process is the one asked for: request k goes to worker
k mod N with its planned send time. Each worker (a spawned process) sends its share at those times with the
same client as a single-process run and streams its records back as they finish; the records merge into one
run. The workers run on this machine, whose monotonic clock (perf_counter) they all share, so planned times
cross processes unchanged and each record's clock offset is 0. A worker that dies has its unreturned requests
counted as failed, naming it.
"""

import asyncio
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Sequence

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.loadgen.client import Endpoint, Prompted

_START_LEAD_S = 0.05  # the schedule starts this far after every worker said it is ready
_POLL_S = 0.2


class WorkerShare(msgspec.Struct, frozen=True, kw_only=True):
    worker: int
    endpoint: Endpoint
    prompts: list[Prompted]
    scheduled_s: list[float]  # perf_counter times, one per prompt
    timeout_s: float


def shares(prompts: Sequence[Prompted], scheduled_s: Sequence[float], workers: int, endpoint: Endpoint,
           timeout_s: float) -> list[WorkerShare]:
    """Request k to worker k mod `workers`: each worker's share of a Poisson schedule is itself spread evenly."""
    return [WorkerShare(worker=w, endpoint=endpoint, prompts=list(prompts[w::workers]),
                        scheduled_s=list(scheduled_s[w::workers]), timeout_s=timeout_s)
            for w in range(workers)]


def _worker_main(worker: int, inbox, outbox) -> None:
    """In the worker process: say ready, take the share, send each request at its time, return each record."""
    from tuibench.core.timing import sleep_until
    from tuibench.loadgen.client import send

    outbox.put(("ready", worker, None))
    share = msgspec.msgpack.decode(inbox.recv_bytes(), type=WorkerShare)

    async def go() -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            async def one(prompt: Prompted, at_s: float) -> None:
                record = await send(session, share.endpoint, prompt, at_s, share.timeout_s, lambda t: t)
                outbox.put(("record", worker, msgspec.msgpack.encode(record)))

            tasks = []
            for prompt, at_s in zip(share.prompts, share.scheduled_s, strict=True):
                await sleep_until(at_s)
                tasks.append(asyncio.create_task(one(prompt, at_s)))
            await asyncio.gather(*tasks)

    asyncio.run(go())
    outbox.put(("done", worker, None))


class _Pool:
    """The worker processes, their shared outbox and who has died."""

    def __init__(self, workers: int):
        context = mp.get_context("spawn")
        self.outbox = context.Queue()
        self.pipes, self.processes = [], []
        self.dead: set[int] = set()
        for worker in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker_main, args=(worker, theirs, self.outbox), daemon=True,
                                      name=f"tuibench-client-{worker}")
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def next(self) -> tuple[str, int, bytes | None]:
        """The next message; ("died", worker, None) once for a worker that exited without a word."""
        while True:
            try:
                return self.outbox.get(timeout=_POLL_S)
            except queue.Empty:
                for worker, process in enumerate(self.processes):
                    if process.exitcode not in (None, 0) and worker not in self.dead:
                        self.dead.add(worker)
                        return "died", worker, None

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)


def drive_split(endpoint: Endpoint, prompts: Sequence[Prompted], offsets_s: Sequence[float], workers: int,
                timeout_s: float, on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                on_measuring: Callable[[], None] = lambda: None) -> None:
    """Sends `prompts` at `offsets_s` after a common start from `workers` processes; each record reaches
    `on_record` as it finishes, on the run's clock (`clock` maps perf_counter), with its worker id."""
    pool = _Pool(workers)
    try:
        answered: set[int] = set()
        while len(answered) < workers:  # ready, or dead before it was
            _, worker, _ = pool.next()
            answered.add(worker)
        origin = time.perf_counter() + _START_LEAD_S
        planned = [origin + offset for offset in offsets_s]
        for share, pipe in zip(shares(prompts, planned, workers, endpoint, timeout_s), pool.pipes,
                               strict=True):
            if share.worker not in pool.dead:
                pipe.send_bytes(msgspec.msgpack.encode(share))
        on_measuring()
        _collect(pool, prompts, planned, on_record, clock)
    finally:
        pool.close()


def _collect(pool: _Pool, prompts, planned, on_record, clock) -> None:
    """Records as they come, until every worker is done or dead; a dead worker's unreturned requests fail."""
    workers = len(pool.processes)
    pending = {w: {p.index: (p, at) for p, at in zip(prompts[w::workers], planned[w::workers], strict=True)}
               for w in range(workers)}
    finished = set(pool.dead)
    for worker in pool.dead:  # died before it could start
        _fail(pending.pop(worker), worker, pool.processes[worker].exitcode, on_record, clock)
    while len(finished) < workers:
        kind, worker, payload = pool.next()
        if kind == "record":
            record = msgspec.msgpack.decode(payload, type=RequestRecord)
            pending[worker].pop(record.index, None)
            on_record(msgspec.structs.replace(record, start_s=clock(record.start_s), worker=worker,
                                              scheduled_s=clock(record.scheduled_s)))
        elif kind == "died" and worker not in finished:
            _fail(pending.pop(worker), worker, pool.processes[worker].exitcode, on_record, clock)
            finished.add(worker)
        elif kind == "done":
            finished.add(worker)


def _fail(unreturned: dict, worker: int, exit_code: int | None, on_record, clock) -> None:
    for prompt, at_s in unreturned.values():
        on_record(RequestRecord(index=prompt.index, input_tokens=prompt.input_tokens, output_tokens=0,
                                target_output_tokens=prompt.output_tokens, start_s=clock(at_s),
                                scheduled_s=clock(at_s), worker=worker,
                                error=f"client worker {worker} died (exit code {exit_code})"))

"""What runs on the cluster's nodes, as Ray actors: plain classes here, made remote by the session, so that this
module imports without Ray. Each reads the clock of its own node (time.perf_counter); the run maps it onto its own
through the offset measured before the run."""

import asyncio
import os
import threading
import time

import msgspec

from tuibench.core.events import TelemetrySample


class NodeAgent:
    """One per node: its clock, and its GPUs sampled through NVML, or its CPU and memory where it has none."""

    def __init__(self) -> None:
        self._samples: list[TelemetrySample] = []
        self._lock = threading.Lock()
        self._sampler = None

    def clock(self) -> float:
        return time.perf_counter()

    def start(self, interval_s: float) -> None:
        from tuibench.telemetry.sampler import CpuSource, TelemetrySampler, gpu_sources

        # Ray hides the node's GPUs from an actor that reserved none (CUDA_VISIBLE_DEVICES=""): the agent samples
        # them all, whoever computes on them.
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        # Only the node's own figures: no process of this run to single out here, and no RSS but the agent's own.
        sources = gpu_sources() or [CpuSource(process=False)]
        self._sampler = TelemetrySampler(self._keep, time.perf_counter, interval_s, sources=sources).start()

    def _keep(self, sample: TelemetrySample) -> None:
        with self._lock:
            self._samples.append(sample)

    def drain(self) -> bytes:
        """The samples taken since the last drain, stamped on this node's clock."""
        with self._lock:
            samples, self._samples = self._samples, []
        return msgspec.msgpack.encode(samples)

    def stop(self) -> bytes:
        """Stops sampling after one last sample, and hands over what is left."""
        if self._sampler is not None:
            self._sampler.stop()
        return self.drain()


class ClientAgent:
    """A client worker (an async actor): takes its share of the schedule, warms a connection to the server, then
    streams a record per request, stamped on its node's clock."""

    def __init__(self) -> None:
        self._share = None
        self._session = None

    def clock(self) -> float:
        return time.perf_counter()

    async def prepare(self, share: bytes) -> None:
        from tuibench.loadgen.client import warm_up
        from tuibench.loadgen.driver import freeze_heap
        from tuibench.loadgen.http import Session
        from tuibench.loadgen.workers import WorkerShare

        self._share = msgspec.msgpack.decode(share, type=WorkerShare)
        self._session = Session()
        await warm_up(self._session, self._share.endpoint)
        freeze_heap()  # Ray's own objects too: a full collection would hold this actor's loop

    async def run(self, origin_s: float):
        """A generator of msgpack lists of records as requests finish (loadgen/workers.RecordBatches: each item a
        generator yields is a Ray object, about 0.5 ms of this process's CPU)."""
        from tuibench.loadgen.workers import RecordBatches, send_share

        finished: asyncio.Queue = asyncio.Queue()
        end = object()
        batches = RecordBatches(finished.put_nowait)
        sending = asyncio.create_task(send_share(self._session, self._share, origin_s, batches.add))

        def ended(_) -> None:
            batches.flush()
            finished.put_nowait(end)

        sending.add_done_callback(ended)
        try:
            while (records := await finished.get()) is not end:
                yield records
            sending.result()  # a failure of the sending itself ends the stream with it
        finally:
            await self._session.close()

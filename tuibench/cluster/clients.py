"""Client workers as Ray actors spread over the cluster (`--client-workers N --ray-address …`): the Pool that
`drive_split` sends one arrival schedule through. Each actor's clock is read against ours before the run; its
start time is handed over on its own clock, and its records are moved back onto ours."""

import queue
import threading

import msgspec

from tuibench.cluster.clock import actor_offset
from tuibench.loadgen.workers import WorkerShare

_CALL_TIMEOUT_S = 60.0


class RayPool:
    def __init__(self, workers: int):
        import ray

        from tuibench.cluster.agents import ClientAgent

        # SPREAD puts the workers on different nodes where there are several. No CPU is reserved, so that a
        # cluster busy with the engine still takes them; a worker mostly waits on its sockets.
        make = ray.remote(ClientAgent).options(num_cpus=0, scheduling_strategy="SPREAD")
        self.agents = [make.remote() for _ in range(workers)]
        self.offsets = [actor_offset(agent, _CALL_TIMEOUT_S) for agent in self.agents]
        self.messages: queue.Queue = queue.Queue()
        self._gone: dict[int, str] = {}

    def give(self, worker: int, share: WorkerShare) -> None:
        self._in_thread(worker, self._prepare, msgspec.msgpack.encode(share))

    def start(self, worker: int, origin_s: float) -> None:
        self._in_thread(worker, self._stream, self.offsets[worker].offset_s + origin_s)

    def _in_thread(self, worker: int, target, argument) -> None:
        threading.Thread(target=target, args=(worker, argument), daemon=True, name=f"tuibench-ray-client-{worker}").start()

    def _prepare(self, worker: int, share: bytes) -> None:
        import ray

        try:
            ray.get(self.agents[worker].prepare.remote(share), timeout=_CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any way the actor fails, it is gone
            self._gone[worker] = _reason(exc)
            self.messages.put(("closed", worker, b""))
            return
        self.messages.put(("ready", worker, b""))

    def _stream(self, worker: int, origin_s: float) -> None:
        import ray

        try:
            for ref in self.agents[worker].run.remote(origin_s):
                self.messages.put(("records", worker, ray.get(ref)))
            self.messages.put(("done", worker, b""))
        except Exception as exc:  # noqa: BLE001 - the actor died (or its node did): its requests left fail
            self._gone[worker] = _reason(exc)
        self.messages.put(("closed", worker, b""))

    def next(self) -> tuple[str, int, bytes]:
        return self.messages.get()

    def offset_ms(self, worker: int) -> float | None:
        return self.offsets[worker].offset_s * 1e3

    def why_gone(self, worker: int) -> str:
        return self._gone.get(worker, "its Ray actor ended")

    def close(self) -> None:
        import ray

        for agent in self.agents:
            ray.kill(agent)


def _reason(exc: Exception) -> str:
    """The first line of what Ray says, which names the actor and why it died."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"Ray actor: {type(exc).__name__}: {lines[0] if lines else ''}"

"""The run's hold on a Ray cluster, in its child process: connected, its nodes listed, an agent on every node whose
clock is read against ours, their telemetry streamed into the run's events, and client workers placed on it."""

import os
import threading
from collections.abc import Callable

import msgspec

from tuibench.cluster.clock import ClockOffset, actor_offset
from tuibench.core.events import Event, TelemetrySample

_POLL_S = 0.5  # how often the agents' samples are fetched: the Live screen redraws at about this rate
_CALL_TIMEOUT_S = 30.0


class Node(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    address: str
    hostname: str
    cpus: float
    gpus: float
    label: str  # how sources and tables name it: its address, made unique where nodes share one (test clusters)


def list_nodes() -> list[Node]:
    """The cluster's live nodes, in address order."""
    import ray

    alive = sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: (n["NodeManagerAddress"], n["NodeID"]))
    addresses = [n["NodeManagerAddress"] for n in alive]
    return [Node(node_id=n["NodeID"], address=n["NodeManagerAddress"], hostname=n.get("NodeManagerHostname", ""),
                 cpus=n["Resources"].get("CPU", 0.0), gpus=n["Resources"].get("GPU", 0.0),
                 label=n["NodeManagerAddress"] if addresses.count(n["NodeManagerAddress"]) == 1
                 else f"{n['NodeManagerAddress']}#{n['NodeID'][:6]}")
            for n in alive]


class ClusterSession:
    def __init__(self, address: str):
        if address.rpartition(":")[0] in ("127.0.0.1", "localhost", "::1", "[::1]"):
            # Ray otherwise rewrites a loopback address to this node's outside IP, where a cluster started on
            # 127.0.0.1 does not listen, and retries for minutes. Read once, when Ray is imported.
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from tuibench.cluster.agents import NodeAgent

        self.address = address
        ray.init(address=address, namespace="tuibench", logging_level="ERROR", log_to_driver=False)
        # vLLM, in this process or a server we start, attaches to the same cluster through this.
        os.environ["RAY_ADDRESS"] = address
        self.nodes = list_nodes()
        # No CPU reserved: an agent mostly sleeps, and a reservation could starve the engine's own actors.
        self._agents = [ray.remote(NodeAgent).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False)).remote()
            for node in self.nodes]
        self.offsets = [actor_offset(agent, _CALL_TIMEOUT_S) for agent in self._agents]
        self._telemetry: _Telemetry | None = None

    @property
    def gpus(self) -> int:
        return int(sum(node.gpus for node in self.nodes))

    def describe(self) -> dict[str, object]:
        """For the run's environment record: each node, its CPUs and GPUs, and its clock against this process's."""
        return {"address": self.address, "nodes": [
            {**msgspec.to_builtins(node), "clock_offset_ms": offset.offset_s * 1e3,
             "clock_uncertainty_ms": offset.uncertainty_s * 1e3}
            for node, offset in zip(self.nodes, self.offsets, strict=True)]}

    def start_telemetry(self, emit: Callable[[Event], None], clock_s: Callable[[float], float],
                        interval_s: float) -> None:
        """Every node's agent samples at `interval_s`; the samples reach `emit` on the run's clock (`clock_s` maps
        our perf_counter), their source named by node ("gpu0@10.0.0.2")."""
        import ray

        ray.get([agent.start.remote(interval_s) for agent in self._agents], timeout=_CALL_TIMEOUT_S)
        self._telemetry = _Telemetry(self._agents, self.nodes, self.offsets, emit, clock_s)

    def stop_telemetry(self) -> None:
        """The agents' last samples are emitted before this returns: call it before the run's terminal event."""
        if self._telemetry is not None:
            self._telemetry.stop()
            self._telemetry = None

    def client_pool(self, workers: int):
        from tuibench.cluster.clients import RayPool

        return RayPool(workers)

    def close(self) -> None:
        import ray

        self.stop_telemetry()
        for agent in self._agents:
            ray.kill(agent)
        ray.shutdown()


class _Telemetry:
    def __init__(self, agents, nodes: list[Node], offsets: list[ClockOffset], emit, clock_s):
        self._agents, self._nodes, self._offsets = agents, nodes, offsets
        self._emit, self._clock_s = emit, clock_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tuibench-cluster-telemetry", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(_POLL_S):
            if not self._fetch("drain"):
                return

    def _fetch(self, method: str) -> bool:
        import ray

        try:
            batches = ray.get([getattr(agent, method).remote() for agent in self._agents], timeout=_CALL_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a node lost mid-run: its telemetry stops, the run goes on
            return True
        try:
            for node, offset, batch in zip(self._nodes, self._offsets, batches, strict=True):
                for sample in msgspec.msgpack.decode(batch, type=list[TelemetrySample]):
                    self._emit(msgspec.structs.replace(sample, t_s=self._clock_s(offset.to_local(sample.t_s)),
                                                       source=f"{sample.source}@{node.label}"))
        except Exception:  # noqa: BLE001 - the run's pipe is gone: nobody is listening any more
            return False
        return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(_CALL_TIMEOUT_S)
        self._fetch("stop")

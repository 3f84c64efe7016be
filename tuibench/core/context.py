"""What a scenario and an engine see of the run they serve: its inputs, its clock and where its events go.

A Protocol, so that the layers under the runner (scenarios, backends, loadgen) can name the context they are handed
without importing the runner, which makes the one implementation (runner/run_context.py: RunContext) in the child.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from tuibench.core import events as ev
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import RunSpec
from tuibench.core.workload import RequestSpec


class Context(Protocol):
    spec: RunSpec
    requests: Sequence[RequestSpec]
    # The resolved model (a models.resolve.ModelRef: name, path, gguf_path, ...). Typed loosely because `models` sits
    # above core; the scenarios read name and path, the engines hand it to models.convert.
    model: Any
    cluster: Any  # the run's Ray cluster (a cluster.ray_session.ClusterSession) with --ray-address, else None
    server_metrics_url: str | None  # serving: the server's Prometheus /metrics, when it has one

    def clock_s(self, perf_counter_s: float | None = None) -> float:
        """Seconds on the run's clock for a perf_counter reading (now, by default)."""

    def emit(self, event: ev.Event) -> None: ...

    def phase(self, name: ev.PhaseName, detail: str = "") -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def progress(self, phase: str, done: int, total: int) -> None: ...

    def request_done(self, record: RequestRecord) -> None:
        """Sends one request's record; offline, refuses one whose counted prompt length is not the planned one."""

    def batch_done(self, record: BatchRecord) -> None: ...

    def module_timings(self, profile: ModuleProfile) -> None: ...

"""The one interface every library sits behind, and what a backend gets to run with."""

import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

import msgspec

from tuibench.core import events as ev
from tuibench.core.errors import UserError
from tuibench.core.modules import ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import RunSpec
from tuibench.core.workload import RequestSpec
from tuibench.models.resolve import ModelRef
from tuibench.servers.managed import ServerCommand


class Availability(msgspec.Struct, frozen=True):
    ok: bool
    reason: str = ""  # why not, and what to do, when not ok

    @classmethod
    def of_modules(cls, *modules: str, hint: str = "run `make install`") -> "Availability":
        """Available when every module can be found (found, not imported: this stays cheap)."""
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        return cls(False, f"{', '.join(missing)} not installed: {hint}") if missing else cls(True)


DTYPES = ("float32", "bfloat16", "float16")


def dtype_name(requested: str, on_gpu: bool) -> str:
    """The dtype every backend runs at: `auto` is bfloat16 on a GPU, float32 on a CPU.

    Measured on a 2-core x86 CPU: float32 decodes 2.1x faster than bfloat16 (no bf16 matmul units).
    """
    if requested == "auto":
        return "bfloat16" if on_gpu else "float32"
    if requested not in DTYPES:
        raise UserError(f"--dtype {requested}: choose auto, {', '.join(DTYPES)}")
    return requested


class RunContext:
    """Handed to a backend in the child: the run's inputs, its clock, and the event sink."""

    def __init__(self, spec: RunSpec, requests: Sequence[RequestSpec], model: ModelRef, emit: Callable[[ev.Event], None],
                 clock_origin: float | None = None):
        self.spec = spec
        self.requests = requests
        self.model = model
        self._emit = emit
        # perf_counter is CLOCK_MONOTONIC on Linux, one clock for every process: the parent hands its origin
        # over, so what it stamps (a server's log lines) lines up with what we stamp.
        self._origin = time.perf_counter() if clock_origin is None else clock_origin
        self.cluster = None  # the run's Ray cluster (a ClusterSession), with --ray-address
        self.server_metrics_url: str | None = None  # serving: the server's Prometheus /metrics, when it has one

    def clock_s(self, perf_counter_s: float | None = None) -> float:
        """Seconds on the run's clock for a perf_counter reading (now, by default)."""
        return (time.perf_counter() if perf_counter_s is None else perf_counter_s) - self._origin

    def emit(self, event: ev.Event) -> None:
        self._emit(event)

    def phase(self, name: ev.PhaseName, detail: str = "") -> None:
        self._emit(ev.Phase(t_s=self.clock_s(), name=name, detail=detail))

    def log(self, message: str, level: str = "info") -> None:
        self._emit(ev.Log(t_s=self.clock_s(), level=level, message=message))

    def progress(self, phase: str, done: int, total: int) -> None:
        self._emit(ev.Progress(t_s=self.clock_s(), phase=phase, done=done, total=total))

    def request_done(self, record: RequestRecord) -> None:
        # Offline, tuibench hands the library its prompts: a library that counts other lengths than planned means
        # tuibench built the workload wrong, and no number of it may stand. (Serving drift is the server's: shown.)
        counted = record.counted_input_tokens
        if self.spec.scenario == "offline" and counted is not None and counted != record.input_tokens:
            raise RuntimeError(f"request {record.index}: {self.spec.library} was handed {counted} prompt tokens, "
                               f"{record.input_tokens} planned")
        self._emit(ev.RequestDone(t_s=self.clock_s(), record=record))

    def batch_done(self, record: BatchRecord) -> None:
        self._emit(ev.BatchDone(t_s=self.clock_s(), record=record))

    def module_timings(self, profile: ModuleProfile) -> None:
        self._emit(ev.ModuleTimings(t_s=self.clock_s(), profile=profile))


class Backend(ABC):
    name: ClassVar[str]
    scenarios: ClassVar[frozenset[str]]  # of "offline", "serving", "profile" (per-module timing)
    # The scenarios in which it can build a model from its config with random weights (no weights read).
    random_weight_scenarios: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Cheap: must not import the library itself (find_spec, a device check at most)."""

    def run(self, ctx: RunContext) -> None:
        """Offline: runs the workload in the child process, reporting through `ctx`. Raises on failure."""
        raise NotImplementedError(f"{self.name} has no offline mode")

    def profile(self, ctx: RunContext) -> None:
        """Module timing: a prefill and a decode profile per input length, sent with `ctx.module_timings`."""
        raise UserError(f"{self.name} has no per-module timing: profile transformers or vllm")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec: RunSpec) -> "ServerCommand | None":
        """Serving: the server to launch on 127.0.0.1:port (None: the user gives --endpoint)."""
        return None

    @classmethod
    def on_cluster(cls, spec: RunSpec) -> str:
        """With --ray-address: where the library computes, in words, for the run's log."""
        return f"{cls.name} runs on this node; the cluster's nodes are sampled and can send the load"

    # Serving: the route that empties its server's prefix cache (POST), so that a step reusing the server starts
    # cold as the first did; None: it has none, and a reused server is restarted instead (when it caches).
    reset_cache_path: ClassVar[str | None] = None
    # Serving: how this library's server takes prompts and holds outputs to length (ServingParams fields).
    serving_overrides: ClassVar[dict[str, object]] = {}

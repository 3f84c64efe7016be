"""The one interface every library sits behind: what it is, and the engine primitives the scenarios drive.

A backend says what it is (name, scenarios, availability, its server's command). In the run's child it does one
thing at a time when a scenario (tuibench/scenarios/) asks: read the model's tokenizer and config, load its engine
for a workload, generate one batch, load for module timing (profiling/passes.py: one pass of steps at a time). It
holds no scenario loop: warm-ups, the order of batches, records and every event are the scenario's, the same for
every library.
"""

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import msgspec

from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.prompts import Prompt
from tuibench.core.spec import RunSpec
from tuibench.profiling.passes import StepPasses
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


# Offline, how an engine takes the workload (the offline scenario batches and warms it up accordingly): "static"
# batches of --batch-size, each as long as its longest row; "continuous", every request handed over at once (the
# engine batches them itself); "sequential", one request after another.
Batching = Literal["static", "continuous", "sequential"]


class Timed(msgspec.Struct, frozen=True, kw_only=True):
    """One request of a generated batch, as its engine timed it, in milliseconds from the batch's start."""

    index: int  # the prompt's
    output_tokens: int  # generated, as the engine counted them
    counted_input_tokens: int | None = None  # the prompt as the engine counted it; None: it does not say
    ttft_ms: float | None = None  # None: the engine gives no first-token time
    e2el_ms: float | None = None
    itl_ms: list[float] = []  # gaps between consecutive output tokens; empty: the engine does not time each one
    token_ids: list[int] | None = None  # the generated ids, where the engine hands them back (the fake's known tokens)


class Split(msgspec.Struct, frozen=True, kw_only=True):
    """A static batch's time to its first token (all rows' prefill) and its decode steps after it."""

    prefill_ms: float
    decode_ms: float
    decode_steps: int


class Generated(msgspec.Struct, frozen=True, kw_only=True):
    start_s: float  # perf_counter when the batch was handed to the engine
    requests: list[Timed]  # one per prompt of the batch, in its order
    split: Split | None = None  # static batches whose steps the engine times


def timed_from_stamps(index: int, start_s: float, stamps: Sequence[float], **counts: Any) -> Timed:
    """A request whose every token the engine stamped (perf_counter): TTFT to the first, E2EL to the last, ITL
    between them."""
    return Timed(index=index, ttft_ms=(stamps[0] - start_s) * 1000.0, e2el_ms=(stamps[-1] - start_s) * 1000.0,
                 itl_ms=[(b - a) * 1000.0 for a, b in zip(stamps, stamps[1:], strict=False)], **counts)


class Backend(ABC):
    name: ClassVar[str]
    scenarios: ClassVar[frozenset[str]]  # of "offline", "serving", "profile" (per-module timing)
    # The scenarios in which it can build a model from its config with random weights (no weights read).
    random_weight_scenarios: ClassVar[frozenset[str]] = frozenset()
    # Shown where users pick a library (the app's Setup, `tuibench check`); False for the fake engine of the tests.
    listed: ClassVar[bool] = True
    batching: ClassVar[Batching] = "static"
    _tokenizer: Any = None  # read once per run

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Cheap: must not import the library itself (find_spec, a device check at most)."""

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
    # Serving: its server keeps a prefix cache across requests unless the spec turns it off; without a reset route,
    # a reused server is then restarted between steps.
    caches_prefixes: ClassVar[bool] = False
    # Serving: how this library's server takes prompts and holds outputs to length (ServingParams fields).
    serving_overrides: ClassVar[dict[str, object]] = {}

    # The engine primitives, in the child. Every library here reads models as Hugging Face folders: by default the
    # tokenizer and config are the converted folder's, read with transformers.

    def tokenizer(self, ctx: Context):
        """The tokenizer prompts are made with (the model's own, unless the engine says otherwise)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from tuibench.models.convert import ensure_converted

            self._tokenizer = AutoTokenizer.from_pretrained(ensure_converted(ctx.model, ctx.log))
        return self._tokenizer

    def model_config(self, ctx: Context) -> dict:
        """The model's config, as transformers reads it (the context length checks read it)."""
        from transformers import AutoConfig

        from tuibench.models.convert import ensure_converted

        return AutoConfig.from_pretrained(ensure_converted(ctx.model, ctx.log)).to_dict()

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        """Offline: loads the engine, sized for `prompts`; a line for the run's log. Raises on failure."""
        raise NotImplementedError(f"{self.name} has no offline mode")

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        """Offline: one batch (as `batching` groups them), each row held to its target length (or EOS with
        `honor_eos`), at most `max_output_tokens` (a warm-up)."""
        raise NotImplementedError(f"{self.name} has no offline mode")

    def profiler(self, ctx: Context) -> StepPasses:
        """Module timing: the engine loaded for passes of the spec's profile batch and decode steps."""
        raise UserError(f"{self.name} has no per-module timing: profile transformers or vllm")

    def close(self) -> None:
        """Releases what load or profiler holds (after the last batch or pass, and on failure)."""

"""What to run: the RunSpec and its parts. Frozen, typed, JSON round-trippable."""

from typing import Literal

import msgspec

from tuibench.core.module_profile import TimerMode
from tuibench.core.records import RequestRecord

DatasetKind = Literal["builtin", "random", "jsonl", "sharegpt", "shared-prefix", "conversations", "trace"]
TraceFormat = Literal["mooncake", "azure", "burstgpt"]


class Slo(msgspec.Struct, frozen=True, kw_only=True):
    """A serving run's service-level objectives, for its goodput: a request counts when it meets every one set."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.ttft_ms, self.tpot_ms, self.e2el_ms))

    def met_by(self, record: RequestRecord) -> bool:
        checks = ((self.ttft_ms, record.ttft_ms), (self.tpot_ms, record.tpot_ms), (self.e2el_ms, record.e2el_ms))
        return record.ok and all(value is not None and value <= limit for limit, value in checks if limit is not None)


class DatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    kind: DatasetKind
    # Builtin dataset name, or a file path for jsonl/sharegpt; "random" for random.
    source: str
    # Random dataset only: lengths drawn uniformly from [len*(1-ratio), len*(1+ratio)].
    input_len: int = 128
    output_len: int = 128
    range_ratio: float = 0.0
    # Shared-prefix only: `prefixes` system prompts of `prefix_len` tokens, each request one of them followed by
    # input_len tokens of its own, as many requests to one deployment share a system prompt.
    prefixes: int = 4
    prefix_len: int = 256
    # Conversations only: each of `turns` turns is a user message of input_len tokens and a reply of output_len; a
    # turn's prompt is the conversation so far, so it is sent only once the reply to the turn before has come.
    turns: int = 4
    # A timestamped trace (core/traces.py): its format, and how many times faster its time runs (2: every gap
    # halved, twice its rate). Its requests go out on its own schedule, which is the load: the speed is part of it.
    trace_format: TraceFormat | None = None
    trace_speed: float = 1.0

    @property
    def label(self) -> str:
        if self.kind == "conversations":
            return f"conversations({self.turns} turns × {self.input_len}/{self.output_len})"
        if self.kind == "shared-prefix":
            return f"shared-prefix({self.prefixes}×{self.prefix_len}+{self.input_len}/{self.output_len})"
        if self.kind == "random":
            return f"random({self.input_len}/{self.output_len}±{self.range_ratio:g})"
        if self.kind == "trace":
            return f"{self.source} ({self.trace_format} trace ×{self.trace_speed:g})"
        return self.source


class OfflineParams(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 8
    warmup_batches: int = 1
    # Off by default: outputs are held to their target length, as the paper's workloads require.
    honor_eos: bool = False


class ServingParams(msgspec.Struct, frozen=True, kw_only=True):
    request_rate: float | None = None  # requests/s on average; None: all at once (inf)
    burstiness: float = 1.0  # gamma shape of the gaps: 1 is Poisson
    max_concurrency: int | None = None
    warmup_requests: int = 1
    trim: int = 0  # the paper's first/last N requests left out of the metrics
    slo: Slo = Slo()  # goodput objectives
    timeout_s: float = 600.0
    api: Literal["completions", "chat"] = "completions"
    # Where to send requests: filled in by tuibench for a server it manages, or given with --endpoint.
    endpoint: str | None = None
    endpoint_wait_s: float = 0.0  # a user's endpoint not answering yet: wait this long for it (0: fail at once)
    served_model: str | None = None  # the name the server knows the model by
    managed: bool = False  # tuibench launched the server at `endpoint` (rather than the user)
    api_key_env: str | None = None  # the key is read from this variable in the child, never stored
    # Prompts as token ids (True) or as text fitted to the server's tokenizer (False); None: ids where the server
    # takes them, found with one request before the run.
    prompt_ids: bool | None = None
    length_policy: Literal["vllm", "transformers", "none"] = "vllm"
    # Client processes the arrival schedule is split over (one schedule, decided by the run): for loads one
    # process cannot send on time.
    client_workers: int = 1
    # The server's Prometheus metrics; None: the endpoint's /metrics, if it answers with any tuibench keeps.
    server_metrics: str | None = None
    # Conversations: the pause between a reply and the user's next turn.
    think_time_s: float = 0.0


class ProfileParams(msgspec.Struct, frozen=True, kw_only=True):
    """Per-module timing, as the paper does it: per input length, one prefill and a few decode steps."""

    lengths: tuple[int, ...] = (32, 128, 512, 1024, 2048)
    batch_size: int = 8
    decode_steps: int = 4
    repeats: int = 1  # measured passes per length, after one warm-up pass
    attn: Literal["sdpa", "eager"] = "sdpa"  # transformers only: the attention implementation to load
    timer: TimerMode = "events"  # a stamp per module call, or torch.profiler ranges read back from the trace


class Parallelism(msgspec.Struct, frozen=True, kw_only=True):
    """How vLLM spreads one model over GPUs: tensor × pipeline parallel within a replica, data parallel replicas."""

    tensor: int = 1
    pipeline: int = 1
    data: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline * self.data

    @property
    def label(self) -> str:
        """'TP 2 · PP 1 · DP 2', or '' for one GPU."""
        if self.gpus == 1:
            return ""
        return " · ".join(f"{name} {n}" for name, n in (("TP", self.tensor), ("PP", self.pipeline), ("DP", self.data)))


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    model: str = "smollm2-135m"
    library: str = "transformers"
    dataset: DatasetSpec
    scenario: Literal["offline", "serving", "profile"] = "offline"
    offline: OfflineParams = OfflineParams()
    serving: ServingParams = ServingParams()
    profile: ProfileParams = ProfileParams()
    num_requests: int | None = None  # None: the whole dataset
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    threads: int = 1  # intra-op threads in the child process
    telemetry_hz: float = 4.0  # device samples per second in the child; 0: none
    # The model built from its config with weights drawn at random: its timings are real, its outputs are noise.
    random_weights: bool = False
    parallel: Parallelism = Parallelism()
    # vLLM's automatic prefix caching, on or off; None: the library's default (on in vLLM).
    prefix_caching: bool | None = None
    # vLLM's n-gram speculative decoding: tokens proposed per step from the prompt's own n-grams (0: off).
    speculative_tokens: int = 0
    # The Ray cluster the run happens on (host:port of its head): vLLM's Ray executor, an agent per node for
    # telemetry, client workers as actors. None: this machine alone, and Ray is not imported.
    ray_address: str | None = None

    @property
    def model_label(self) -> str:
        """The model as tables and titles name it: random weights are never left unsaid."""
        return f"{self.model} (random weights)" if self.random_weights else self.model

    @property
    def engine_settings(self) -> list[str]:
        """The library's own switches this run set, in words: what tells two columns of one library apart."""
        settings = []
        if self.prefix_caching is not None:
            settings.append(f"prefix cache {'on' if self.prefix_caching else 'off'}")
        if self.speculative_tokens:
            settings.append(f"n-gram speculation of {self.speculative_tokens}")
        return settings

    @property
    def rate(self) -> float | None:
        """Serving: the offered requests/s (None: all at once). None in the other scenarios."""
        return self.serving.request_rate if self.scenario == "serving" else None

    @property
    def workload(self) -> tuple[str, str, float | None]:
        """What runs share to be compared side by side: the dataset, the scenario and, serving, the offered rate."""
        return self.dataset.label, self.scenario, self.rate

    @property
    def repeat_key(self) -> bytes:
        """What the repeats of one step share: the spec, less where its managed server listened (a new port and
        process each round)."""
        serving = self.serving
        if serving.managed:
            serving = msgspec.structs.replace(serving, endpoint=None, served_model=None)
        return msgspec.json.encode(msgspec.structs.replace(self, serving=serving))

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> "RunSpec":
        return msgspec.json.decode(data, type=cls)


def gpus_used(spec: RunSpec, environment: dict[str, object]) -> int:
    """GPUs a run computed on: its parallel layout's, when the machine it ran on has GPUs and it did not ask for the
    CPU; 0 for a CPU run."""
    return spec.parallel.gpus if environment.get("gpus") and spec.device != "cpu" else 0


def spec_differences(a: RunSpec, b: RunSpec) -> list[str]:
    """Where two specs differ, field by dotted field (`offline.batch_size 4 ≠ 8`): what a benchmark says when it
    refuses a ratio of two different pieces of work."""

    def flat(value, prefix: str = "") -> dict[str, object]:
        if not isinstance(value, dict):
            return {prefix: value}
        return {k: v for key, inner in value.items() for k, v in flat(inner, f"{prefix}{key}.").items()} or \
            {prefix: {}}

    left, right = flat(msgspec.to_builtins(a)), flat(msgspec.to_builtins(b))
    return [f"{key.rstrip('.')} {left.get(key)!r} ≠ {right.get(key)!r}"
            for key in sorted(left.keys() | right.keys()) if left.get(key) != right.get(key)]

"""Plans: the comparison as the unit of work.

A `PlanRequest` is what a user asks for, from CLI flags, a TOML file or the app's Setup: models ×
libraries × datasets × scenarios × serving rates, and the parameters every step shares. The run
service (`runner.plans.build_plan`) turns it into a `Plan` of steps, each a full RunSpec, in the order
they run; a step that cannot run here carries the reason it is skipped. While a plan runs, its own
events (`PlanStarted`, `StepStarted`, `StepEnded`, `PlanEnded`) frame the events of each step's run.
"""

from typing import Annotated, Literal

import msgspec

from tuibench.core.capacity import Capacity, CapacitySearch, Probe
from tuibench.core.catalogue import REQUEST_RATE
from tuibench.core.module_profile import TimerMode
from tuibench.core.options import Opt, OptionError, OptionField, options_of, parse_rates, rates_from_table, \
    struct_from_table
from tuibench.core.spec import RunSpec, Slo

# capacity: per library, the highest serving rate that meets every objective of [plan.capacity] (core/capacity.py)
Scenario = Literal["offline", "serving", "profile", "capacity"]
SCENARIOS: tuple[Scenario, ...] = ("offline", "serving", "profile", "capacity")

# Where each group of options matters: a command or a form offers an option only for the scenarios it runs.
_COARSE = frozenset({"offline", "serving", "capacity"})
_SERVED = frozenset({"serving", "capacity"})
_SERVING = frozenset({"serving"})
_OFFLINE = frozenset({"offline"})
_PROFILE = frozenset({"profile"})

_Positive = Annotated[int, msgspec.Meta(ge=1)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]
_Names = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]


def _rates_text(rates) -> str:
    """Rates as typed: 'inf' for everything at once (held as None)."""
    return ",".join("inf" if rate is None else f"{rate:g}" for rate in rates)


def _slo_text(slo: "Slo | dict") -> str:
    """The goodput objectives as typed: 'ttft=200,tpot=50'."""
    limits = msgspec.structs.asdict(slo) if isinstance(slo, Slo) else slo
    return ",".join(f"{name.removesuffix('_ms')}={limit:g}" for name, limit in limits.items() if limit is not None)


def check_endpoint(url: str) -> None:
    """An endpoint is an http(s) URL with a host: 'notaurl' or '127.0.0.1:8000' is one line saying what to type."""
    from urllib.parse import urlsplit

    if "://" not in url:
        raise ValueError(f"{url!r} has no scheme: give http://{url}" if url else "give a URL, e.g. http://127.0.0.1:8000")
    found = urlsplit(url)
    if found.scheme not in ("http", "https") or not found.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000")
    try:
        found.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number") from None


def _slo_table(text: str) -> dict[str, float]:
    """'ttft=200,tpot=50,e2el=2000' (ms): the goodput objectives as the plan table's [plan.slo]."""
    objectives = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in ("ttft", "tpot", "e2el"):
            raise ValueError(f"unknown objective {name!r}: use ttft, tpot and e2el, e.g. ttft=200,tpot=50")
        try:
            objectives[f"{name}_ms"] = float(value)
        except ValueError:
            raise ValueError(f"{name} needs milliseconds, e.g. {name}=200") from None
    return objectives


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The user's choice, and the option schema of every plan: each field is one option, declared here once. The
    CLI's flags, the app's Setup and plan files' [plan] keys (the field names) all come from these declarations."""

    models: Annotated[_Names, Opt(
        "comma list: embedded alias (default smollm2-135m), an architecture with random weights (llama-2-7b, "
        "llama-2-13b, vicuna-7b-16k, llama-3-8b, mistral-7b, qwen2-7b, tiny-llama), a local HF folder, or an HF id "
        "in the local cache", "plan", flags=("--models", "--model"))] = ("smollm2-135m",)
    libraries: Annotated[_Names, Opt(
        "comma list of transformers, vllm, llamacpp, mii, or endpoint with --endpoint", "plan",
        flags=("--libraries", "--library"))] = ("transformers",)
    scenarios: Annotated[tuple[Scenario, ...], msgspec.Meta(min_length=1), Opt(
        "the scenarios to run, comma separated", "plan",
        flags=("--scenarios", "--scenario"))] = ("offline",)
    # Builtin names, "random", or .jsonl / ShareGPT .json paths.
    datasets: Annotated[_Names, Opt(
        "comma list of short2short, short2long, long2short, short-16k, random, shared-prefix, conversations, "
        ".jsonl/.json files", "workload", _COARSE, flags=("--datasets", "--dataset"))] = ("short2short",)
    # Serving req/s; None: all at once.
    rates: Annotated[tuple[float | None, ...], msgspec.Meta(min_length=1), Opt(
        "requests/s, Poisson arrivals; a run per rate on one server, e.g. 1,2,4,inf (default inf: all at once)",
        "serving", _SERVING, unit="req/s", flags=("--rates", "--request-rate"), parse=parse_rates, show=_rates_text, metavar="RATES",
        placeholder="inf")] = (None,)
    label: Annotated[str, Opt("the plan's name in lists and titles", "plan")] = ""
    baseline: Annotated[str | None, Opt("the library the others are compared with (default: the first)",
                                        "plan")] = None
    # Shared by every step.
    num_requests: Annotated[_Positive | None, Opt("sample this many requests (default: the whole dataset)",
                                                  "workload", _COARSE, placeholder="all")] = None
    input_len: Annotated[_Positive, Opt(
        "random dataset: input tokens; shared-prefix: a request's own; conversations: a user message's", "workload",
        _COARSE, unit="tokens")] = 128
    output_len: Annotated[_Positive, Opt("random dataset: output tokens; conversations: a reply's", "workload",
                                         _COARSE, unit="tokens")] = 128
    range_ratio: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0), Opt(
        "random dataset: lengths uniform in len*(1±ratio)", "workload", _COARSE)] = 0.0
    # The shared-prefix dataset: system prompts, and their length.
    prefixes: Annotated[_Positive, Opt(
        "shared-prefix dataset: system prompts shared by the requests; each request one of them, then --input-len "
        "tokens of its own", "workload", _COARSE)] = 4
    prefix_len: Annotated[_Positive, Opt("shared-prefix dataset: tokens of each system prompt", "workload", _COARSE,
                                         unit="tokens")] = 256
    turns: Annotated[_Positive, Opt(
        "conversations dataset: turns per conversation; each turn's prompt is the conversation so far, sent once the "
        "last reply came", "workload", _SERVED)] = 4
    trace_speed: Annotated[float, msgspec.Meta(gt=0.0), Opt(
        "a trace dataset (Mooncake .jsonl, Azure or BurstGPT .csv): replay its time this many times faster; its own "
        "timestamps set the load, not --rates", "workload", _SERVED)] = 1.0
    # vLLM's prefix caching: a step per value ("on", "off"); empty: the library's default.
    prefix_caching: Annotated[tuple[Literal["on", "off"], ...], Opt(
        "vLLM's prefix cache: on, off, or on,off (a step each); default: vLLM's own (on)", "engine", _COARSE,
        placeholder="vLLM's own")] = ()
    speculative_tokens: Annotated[_NonNegative, Opt(
        "vLLM: n-gram speculative decoding, this many tokens proposed per step from the request's own n-grams "
        "(0: off)", "engine", unit="tokens")] = 0
    batch_size: Annotated[_Positive, Opt("static batch size (offline), and the profile's batch", "workload",
                                         _OFFLINE | _PROFILE, flags=("--batch-size", "--batch"))] = 8
    warmup_batches: Annotated[_NonNegative, Opt("batches run before the measured ones, not counted", "workload",
                                                _OFFLINE)] = 1
    honor_eos: Annotated[bool, Opt("stop a request at EOS instead of holding it to its length", "workload",
                                   _OFFLINE)] = False
    seed: Annotated[int, Opt("seed of the sampled requests, prompts and arrivals", "engine")] = 0
    device: Annotated[str, Opt("auto, cpu, cuda, cuda:N", "engine")] = "auto"
    dtype: Annotated[Literal["auto", "float32", "bfloat16", "float16"], Opt(
        "auto: bfloat16 on a GPU, float32 on a CPU", "engine")] = "auto"
    threads: Annotated[_Positive | None, Opt("threads for the engine process (default: cores - 1)", "engine",
                                             placeholder="cores - 1")] = None
    telemetry_hz: Annotated[float, msgspec.Meta(ge=0.0, le=100.0), Opt(
        "device samples per second (NVML, else CPU); 0 turns them off", "engine", unit="Hz")] = 4.0
    random_weights: Annotated[bool, Opt(
        "build the model from its config.json with random weights (no weights read): timings only, outputs are "
        "noise (an architecture alias always is)", "engine")] = False
    # vLLM over several GPUs: tensor and pipeline parallel within a replica, data parallel replicas.
    tensor_parallel_size: Annotated[_Positive, Opt("vLLM: GPUs one layer is split over", "engine")] = 1
    pipeline_parallel_size: Annotated[_Positive, Opt("vLLM: GPUs the layers are split over", "engine")] = 1
    data_parallel_size: Annotated[_Positive, Opt("vLLM: replicas of the model, each on its own GPUs", "engine")] = 1
    # Rounds of the whole plan: repeats of each step, interleaved (A B A B, not A A B B) so that a machine that
    # drifts over time drifts for every library alike.
    repeat: Annotated[_Positive, Opt(
        "run the whole plan N times over, round by round, and give each figure with its 95 % confidence interval",
        "plan")] = 1
    # Serving.
    burstiness: Annotated[float, msgspec.Meta(gt=0.0), Opt(
        "gamma shape of the arrival gaps: 1 Poisson, <1 burstier", "serving", _SERVED)] = 1.0
    max_concurrency: Annotated[_Positive | None, Opt("requests in flight at most (default: no limit)", "serving",
                                                     _SERVED, placeholder="no limit")] = None
    warmup_requests: Annotated[_NonNegative, Opt("requests sent before the measured ones, not counted", "serving",
                                                 _SERVED)] = 1
    trim: Annotated[_NonNegative, Opt("leave the first and last N requests out of the metrics", "serving",
                                      _SERVED)] = 0
    slo: Annotated[Slo, Opt("goodput objectives in ms, e.g. ttft=200,tpot=50,e2el=2000", "serving", _SERVING,
                            parse=_slo_table, show=_slo_text, placeholder="ttft=200,tpot=50")] = Slo()
    api: Annotated[Literal["completions", "chat"], Opt("the OpenAI route requests are sent to", "serving",
                                                       _SERVED)] = "completions"
    endpoint: Annotated[str | None, Opt(
        "benchmark a server someone else runs, e.g. http://127.0.0.1:8000 (without /v1)", "serving", _SERVED,
        metavar="URL", placeholder="http://host:port", check=check_endpoint)] = None
    # The endpoint may still be starting.
    wait_for_endpoint_s: Annotated[float, msgspec.Meta(ge=0.0), Opt(
        "the endpoint may still be starting: wait up to this long for it to answer (0: fail at once)", "serving",
        _SERVED, unit="s", flags=("--wait-for-endpoint",), metavar="SECONDS")] = 0.0
    served_model_name: Annotated[str | None, Opt(
        "the model name the endpoint expects (default: the model path)", "serving", _SERVED,
        placeholder="the model path")] = None
    api_key_env: Annotated[str | None, Opt("read the API key from this environment variable (never stored)",
                                           "serving", _SERVED)] = None
    # None: the library's own.
    length_policy: Annotated[Literal["vllm", "transformers", "none"] | None, Opt(
        "how outputs are held to length: ignore_eos+min_tokens (vllm), generation_config, or not at all (default: "
        "the library's own)", "serving", _SERVED, placeholder="the library's")] = None
    # None: the library's own; a user's server is asked.
    prompts: Annotated[Literal["ids", "text"] | None, Opt(
        "send prompts as token ids, or as text fitted to the server's tokenizer (default: ids where the server "
        "takes them)", "serving", _SERVED, placeholder="ids if taken")] = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0), Opt("seconds before a request counts as failed", "serving",
                                                          _SERVED, unit="s", flags=("--timeout",))] = 600.0
    client_workers: Annotated[_Positive, Opt(
        "client processes one arrival schedule is split over, for loads one process cannot send on time", "serving",
        _SERVED)] = 1
    # Conversations: from a reply to the next turn.
    think_time_s: Annotated[float, msgspec.Meta(ge=0.0), Opt(
        "conversations dataset: seconds from a reply to the user's next turn", "serving", _SERVED, unit="s",
        flags=("--think-time",))] = 0.0
    server_metrics: Annotated[str | None, Opt(
        "the server's Prometheus metrics URL (default: the endpoint's /metrics, read when it has vLLM's; none is "
        "N/A)", "serving", _SERVED, metavar="URL", placeholder="the endpoint's")] = None
    ray_address: Annotated[str | None, Opt(
        "run on a Ray cluster: its head's host:port, or auto (the one this node is in). vLLM runs on Ray's "
        "executor, every node's GPUs are sampled, and --client-workers are actors spread over the nodes (needs "
        "tuibench[ray])", "engine", metavar="HOST:PORT", placeholder="host:port, auto")] = None
    port: Annotated[Annotated[int, msgspec.Meta(ge=1, le=65535)] | None, Opt(
        "port for a server tuibench launches (default: a free one)", "serving", _SERVED,
        placeholder="a free one")] = None
    capacity: CapacitySearch = CapacitySearch()  # the capacity scenario's objectives and search ([plan.capacity])
    # Profile.
    lengths: Annotated[tuple[_Positive, ...], msgspec.Meta(min_length=1), Opt(
        "input lengths profiled", "profile", _PROFILE, unit="tokens")] = (32, 128, 512, 1024, 2048)
    decode_steps: Annotated[_Positive, Opt("decode steps timed after each prefill", "profile", _PROFILE)] = 4
    repeats: Annotated[_Positive, Opt("measured passes per length, after a warm-up", "profile", _PROFILE)] = 1
    attn: Annotated[Literal["sdpa", "eager"], Opt("transformers: attention implementation", "profile",
                                                  _PROFILE)] = "sdpa"
    timer: Annotated[TimerMode, Opt(
        "how modules are timed: a stamp per call (CUDA events on a GPU), or torch.profiler ranges with device time "
        "read from the trace", "profile", _PROFILE)] = "events"
    # Parts of a plan that is not one cross product (the paper's: offline on four datasets, serving on three):
    # each part is a table of fields that override the ones above, and the plan runs every part's steps in turn.
    parts: Annotated[tuple[dict[str, object], ...], Opt(
        "parts of a plan that is not one cross product", "plan",
        no_flag="a plan file's [[plan.part]] tables: several cross products do not fit on one command line",
        no_setup="a plan file's [[plan.part]] tables: pick the plan file in Setup")] = ()

    def part_requests(self) -> list["PlanRequest"]:
        """The plan as cross products: itself, or each part over it (ValueError naming the part when one is off)."""
        if not self.parts:
            return [self]
        base = {k: v for k, v in msgspec.structs.asdict(self).items() if k != "parts"}
        requests = []
        for number, part in enumerate(self.parts, start=1):
            try:
                requests.append(request_from_table({**base, **part}, where=f"plan.part[{number}]"))
            except OptionError as exc:
                raise ValueError(str(exc)) from None
        return requests


def plan_options() -> tuple[OptionField, ...]:
    """Every option of a plan, in declaration order (built once: the CLI and Setup both walk it)."""
    global _PLAN_OPTIONS
    if _PLAN_OPTIONS is None:
        _PLAN_OPTIONS = options_of(PlanRequest)
    return _PLAN_OPTIONS


_PLAN_OPTIONS: tuple[OptionField, ...] | None = None
_LISTS = ("models", "libraries", "datasets", "scenarios", "lengths", "rates", "prefix_caching")


def request_from_table(table: dict, where: str = "plan") -> PlanRequest:
    """A [plan] table as read by tomllib (or saved by the app, or built from flags): TOML's `inf` (and the string
    "inf") is a rate of None, all at once; a single value stands for a list of one; its [[plan.part]] tables are
    its parts; an endpoint with no library named is library `endpoint`. OptionError in the table's terms
    (`where`.key) when a key or value is off."""
    table = dict(table)
    if "part" in table:
        table["parts"] = table.pop("part")
    if "rates" in table:
        table["rates"] = rates_from_table(table["rates"] if isinstance(table["rates"], list | tuple)
                                          else [table["rates"]])
    for name in _LISTS:
        if isinstance(table.get(name), str | int | float):
            table[name] = [table[name]]  # a single value where a list is expected
    if table.get("endpoint") and "libraries" not in table:
        table["libraries"] = ["endpoint"]  # a user's server is reported as what it is, not as the default library
    return struct_from_table(table, PlanRequest, plan_options(), where)


def rate_label(rate: float | None) -> str:
    return _rates_text((rate,))


def load_label(spec: RunSpec) -> str:
    """A serving run's offered load in words ('4 req/s', 'all at once', 'the trace's times ×2'); '' otherwise."""
    if spec.scenario != "serving":
        return ""
    if spec.dataset.kind == "trace":
        return f"the trace's times ×{spec.dataset.trace_speed:g}"
    rate = spec.serving.request_rate
    return f"{rate:g} {REQUEST_RATE.unit}" if rate else "all at once"


class PlanStep(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # 1-based, in the order the steps run
    spec: RunSpec
    skip: str | None = None  # why this step cannot run here; None: it runs
    repeat: int = 1  # the round of the plan it belongs to (--repeat N)
    # A capacity step: its spec is the serving run each probe makes at its own rate and length.
    search: CapacitySearch | None = None

    @property
    def label(self) -> str:
        return step_label(self.spec, self.search) + (f" · repeat {self.repeat}" if self.repeat > 1 else "")

    @property
    def no_capacity_yet(self) -> Capacity:
        """A capacity step's outcome before its first probe: what is searched for, nothing found."""
        spec = self.spec
        return Capacity(library=spec.library, model=spec.model, dataset=spec.dataset.label, slo=self.search.slo)


def step_label(spec: RunSpec, search: CapacitySearch | None = None) -> str:
    """'vllm · short2short · serving @ 2 req/s': what a step is, in one line."""
    where = "" if spec.scenario == "profile" else f" · {spec.dataset.label}"
    if search is not None:
        return f"{spec.library}{where} · capacity under {', '.join(o.label for o in search.objectives)}"
    load = f" @ {load_label(spec)}" if spec.scenario == "serving" else ""
    return f"{spec.library}{where} · {spec.scenario}{load}"


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    request: PlanRequest
    steps: tuple[PlanStep, ...]
    notes: tuple[str, ...] = ()  # what building the plan changed of the request, said once before it runs

    @property
    def runnable(self) -> list[PlanStep]:
        return [step for step in self.steps if step.skip is None]


# -- events of a plan, around the events of its runs ------------------------------------------------

StepStatus = Literal["pending", "skipped", "running", "finished", "partial", "failed", "interrupted", "not run"]
PlanStatus = Literal["running", "finished", "partial", "failed", "interrupted"]


class _PlanEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class PlanStarted(_PlanEvent, tag="plan_started"):
    plan_id: int | None
    plan: Plan


class StepStarted(_PlanEvent, tag="step_started"):
    index: int
    run_id: int | None


class ProbeStarted(_PlanEvent, tag="probe_started"):
    """A capacity step's probe after its first begins: the step's run is this probe's from here on."""

    index: int


class StepProbed(_PlanEvent, tag="step_probed"):
    """A capacity step's probe ended (its run is the step's run until the next probe starts)."""

    index: int
    probe: Probe


class StepEnded(_PlanEvent, tag="step_ended"):
    index: int
    status: StepStatus
    run_id: int | None = None
    reason: str | None = None  # why it was skipped, failed or not run
    capacity: Capacity | None = None  # a capacity step's outcome


class PlanEnded(_PlanEvent, tag="plan_ended"):
    status: PlanStatus


PlanEvent = PlanStarted | StepStarted | ProbeStarted | StepProbed | StepEnded | PlanEnded


def plan_status(step_statuses: list[str]) -> PlanStatus:
    """A plan's outcome from its steps': skipped steps count for nothing, any failure makes it partial."""
    ran = [s for s in step_statuses if s not in ("skipped", "not run")]
    if "interrupted" in ran:
        return "interrupted"
    if all(s == "failed" for s in ran):  # nothing ran, or nothing that ran measured anything
        return "failed"
    return "finished" if all(s == "finished" for s in ran) else "partial"

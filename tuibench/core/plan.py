"""Plans: the comparison as the unit of work.

A `PlanRequest` is what a user asks for, from CLI flags, a TOML file or the app's Setup: models ×
libraries × datasets × scenarios × serving rates, and the parameters every step shares. The run
service (`runner.plans.build_plan`) turns it into a `Plan` of steps, each a full RunSpec, in the order
they run; a step that cannot run here carries the reason it is skipped. While a plan runs, its own
events (`PlanStarted`, `StepStarted`, `StepEnded`, `PlanEnded`) frame the events of each step's run.
"""

import math
from typing import Annotated, Literal

import msgspec

from tuibench.core.capacity import Capacity, CapacitySearch, Probe
from tuibench.core.modules import TimerMode
from tuibench.core.spec import RunSpec, Slo

# capacity: per library, the highest serving rate that meets every objective of [plan.capacity] (core/capacity.py)
Scenario = Literal["offline", "serving", "profile", "capacity"]
SCENARIOS: tuple[Scenario, ...] = ("offline", "serving", "profile", "capacity")

_Positive = Annotated[int, msgspec.Meta(ge=1)]
_Names = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The user's choice. Field names are the keys of a plan file's [plan] table."""

    label: str = ""
    models: _Names = ("smollm2-135m",)
    libraries: _Names = ("transformers",)
    datasets: _Names = ("short2short",)  # builtin names, "random", or .jsonl / ShareGPT .json paths
    scenarios: Annotated[tuple[Scenario, ...], msgspec.Meta(min_length=1)] = ("offline",)
    rates: Annotated[tuple[float | None, ...], msgspec.Meta(min_length=1)] = (None,)  # serving req/s; None: all at once
    baseline: str | None = None  # the library the others are compared with (default: the first)
    # Shared by every step.
    num_requests: _Positive | None = None  # None: the whole dataset
    input_len: _Positive = 128  # the random dataset
    output_len: _Positive = 128
    range_ratio: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.0
    prefixes: _Positive = 4  # the shared-prefix dataset: system prompts, and their length
    prefix_len: _Positive = 256
    turns: _Positive = 4  # the conversations dataset: turns per conversation
    # vLLM's prefix caching: a step per value ("on", "off"); empty: the library's default.
    prefix_caching: tuple[Literal["on", "off"], ...] = ()
    speculative_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0  # vLLM's n-gram speculator; 0: off
    batch_size: _Positive = 8  # offline static batches, and the profile's batch
    warmup_batches: Annotated[int, msgspec.Meta(ge=0)] = 1
    honor_eos: bool = False
    seed: int = 0
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: _Positive | None = None  # None: cores - 1
    telemetry_hz: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 4.0
    random_weights: bool = False  # every model built from its config (an architecture alias always is)
    # vLLM over several GPUs: tensor and pipeline parallel within a replica, data parallel replicas.
    tensor_parallel_size: _Positive = 1
    pipeline_parallel_size: _Positive = 1
    data_parallel_size: _Positive = 1
    # Rounds of the whole plan: repeats of each step, interleaved (A B A B, not A A B B) so that a machine that
    # drifts over time drifts for every library alike.
    repeat: _Positive = 1
    # Serving.
    burstiness: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    max_concurrency: _Positive | None = None
    warmup_requests: Annotated[int, msgspec.Meta(ge=0)] = 1
    trim: Annotated[int, msgspec.Meta(ge=0)] = 0
    slo: Slo = Slo()
    api: Literal["completions", "chat"] = "completions"
    endpoint: str | None = None
    wait_for_endpoint_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0  # the endpoint may still be starting
    served_model_name: str | None = None
    api_key_env: str | None = None
    length_policy: Literal["vllm", "transformers", "none"] | None = None  # None: the library's own
    prompts: Literal["ids", "text"] | None = None  # None: the library's own; a user's server is asked
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] = 600.0
    client_workers: _Positive = 1  # processes sending one arrival schedule
    think_time_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0  # conversations: from a reply to the next turn
    server_metrics: str | None = None  # the server's Prometheus /metrics URL (default: the endpoint's)
    ray_address: str | None = None  # a Ray cluster's head (host:port), or auto: the one this node is in
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    capacity: CapacitySearch = CapacitySearch()  # the capacity scenario's objectives and search
    # Profile.
    lengths: Annotated[tuple[_Positive, ...], msgspec.Meta(min_length=1)] = (32, 128, 512, 1024, 2048)
    decode_steps: _Positive = 4
    repeats: _Positive = 1
    attn: Literal["sdpa", "eager"] = "sdpa"
    timer: TimerMode = "events"
    # Parts of a plan that is not one cross product (the paper's: offline on four datasets, serving on three):
    # each part is a table of fields that override the ones above, and the plan runs every part's steps in turn.
    parts: tuple[dict[str, object], ...] = ()

    def part_requests(self) -> list["PlanRequest"]:
        """The plan as cross products: itself, or each part over it (ValueError naming the part when one is off)."""
        if not self.parts:
            return [self]
        base = {k: v for k, v in msgspec.structs.asdict(self).items() if k != "parts"}
        requests = []
        for number, part in enumerate(self.parts, start=1):
            try:
                requests.append(request_from_table({**base, **part}))
            except msgspec.ValidationError as exc:
                raise ValueError(f"part {number}: {exc}") from None
        return requests


def request_from_table(table: dict) -> PlanRequest:
    """A [plan] table as read by tomllib: TOML's `inf` (and the string "inf") is a rate of None, all at once; its
    [[plan.part]] tables are its parts."""
    table = dict(table)
    if "part" in table:
        table["parts"] = table.pop("part")
    if "rates" in table and isinstance(table["rates"], list):
        table["rates"] = [None if (isinstance(r, float) and math.isinf(r)) or r == "inf" else r for r in table["rates"]]
    for name in ("models", "libraries", "datasets", "scenarios", "lengths"):
        if isinstance(table.get(name), str | int):
            table[name] = [table[name]]  # a single value where a list is expected
    return msgspec.convert(table, PlanRequest)


def rate_label(rate: float | None) -> str:
    return "inf" if rate is None else f"{rate:g}"


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
    rate = f" @ {rate_label(spec.serving.request_rate)} req/s" if spec.scenario == "serving" else ""
    return f"{spec.library}{where} · {spec.scenario}{rate}"


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    request: PlanRequest
    steps: tuple[PlanStep, ...]

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


PlanEvent = PlanStarted | StepStarted | StepProbed | StepEnded | PlanEnded


def plan_status(step_statuses: list[str]) -> PlanStatus:
    """A plan's outcome from its steps': skipped steps count for nothing, any failure makes it partial."""
    ran = [s for s in step_statuses if s not in ("skipped", "not run")]
    if "interrupted" in ran:
        return "interrupted"
    if all(s == "failed" for s in ran):  # nothing ran, or nothing that ran measured anything
        return "failed"
    return "finished" if all(s == "finished" for s in ran) else "partial"

"""From a user's choice to a plan of runs: the one place a RunSpec is built, for the CLI, plan files and the app.

Everything is checked here, in the parent, before any child or server starts: a bad choice is one
UserError. A library that cannot run a step here (not installed, no GPU, no such scenario) is not an
error: its steps are kept in the plan, marked skipped with the reason, unless nothing at all can run.
"""

import re
from pathlib import Path

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.plan import Plan, PlanRequest, PlanStep, rate_label
from tuibench.core.spec import DatasetSpec, OfflineParams, Parallelism, ProfileParams, RunSpec, ServingParams


def build_plan(request: PlanRequest) -> Plan:
    if len(request.rates) > 1 and "serving" not in request.scenarios and not request.parts:
        raise UserError("--rates sweeps the serving scenario: add --scenario serving")
    notes: list[str] = []
    if request.endpoint:
        request, notes = _endpoint_as_sent(request)
    if request.ray_address:
        from tuibench.cluster.address import resolve_ray_address

        # Checked once, before anything starts; the steps record the cluster's own address, not `auto`.
        request = msgspec.structs.replace(request, ray_address=resolve_ray_address(request.ray_address))
    try:
        parts = request.part_requests()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    steps: list[PlanStep] = []
    for part in parts:
        first = len(steps)
        steps += [msgspec.structs.replace(step, index=first + step.index) for step in _steps(part)]
    steps = [msgspec.structs.replace(step, index=round_ * len(steps) + step.index, repeat=round_ + 1)
             for round_ in range(request.repeat) for step in steps]
    if not any(step.skip is None for step in steps):
        reasons = dict.fromkeys(f"library '{step.spec.library}' {step.skip}" for step in steps)
        raise UserError("; ".join(reasons))
    if request.port is not None and not request.endpoint and \
            any(s.skip is None and s.spec.scenario == "serving" for s in steps):
        from tuibench.servers.managed import check_port_free

        check_port_free(request.port)
    if request.endpoint and request.wait_for_endpoint_s == 0:  # one that may still be starting: each run waits
        _probe(request)
    return Plan(label=request.label or default_label(request), request=request, steps=tuple(steps),
                notes=tuple(notes))


def _endpoint_as_sent(request: PlanRequest) -> tuple[PlanRequest, list[str]]:
    """The request with its endpoint as tuibench sends to it: a /v1 given is taken off (the routes add it), and
    said."""
    endpoint = request.endpoint.rstrip("/")
    notes = []
    if endpoint.endswith("/v1"):
        endpoint = endpoint.removesuffix("/v1")
        notes.append(f"--endpoint {request.endpoint}: tuibench adds /v1 to its routes, so it sends to {endpoint}")
    return msgspec.structs.replace(request, endpoint=endpoint), notes


def _probe(request: PlanRequest) -> None:
    """The user's server looked at once, before anything starts or is stored: one line if it is not there, not an
    OpenAI server, or serving another model."""
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.server_pool import probe_endpoint

    model = request.served_model_name or resolve_model(request.models[0], request.random_weights).path
    probe_endpoint(request.endpoint, model, request.api_key_env)


def _steps(request: PlanRequest) -> list[PlanStep]:
    """The steps of one cross product, numbered from 1."""
    from tuibench.backends import backend_class, cannot_run
    from tuibench.core.workload import SYNTHETIC, dataset_from_arg, load_requests
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.environment import default_threads

    _check(request)
    random = {model: resolve_model(model, request.random_weights).random_weights for model in request.models}
    datasets: list[DatasetSpec] = []
    too_long: dict[tuple[str, str], str] = {}  # (model, dataset label): why its offline steps cannot run
    if set(request.scenarios) & {"offline", "serving", "capacity"}:
        for name in request.datasets:
            dataset = dataset_from_arg(name, input_len=request.input_len, output_len=request.output_len,
                                       range_ratio=request.range_ratio, prefixes=request.prefixes,
                                       prefix_len=request.prefix_len, turns=request.turns,
                                       trace_speed=request.trace_speed)
            if dataset.kind == "trace":
                _check_trace(request, dataset)
            # A bad file or count fails now, not mid-plan. Capacity probes alone size themselves (--probe-seconds).
            probed = request.scenarios == ("capacity",) and request.num_requests is None
            requests = load_requests(dataset, 16 if probed and dataset.kind in SYNTHETIC else request.num_requests,
                                     request.seed)
            if "offline" in request.scenarios:
                for model in request.models:
                    if why := _context_too_short(requests, dataset.label, model, random[model]):
                        too_long[model, dataset.label] = why
            datasets.append(dataset)
    threads = request.threads or default_threads()
    steps: list[PlanStep] = []
    for model in request.models:
        for library in request.libraries:
            backend = backend_class(library)  # an unknown name is a UserError
            for scenario in request.scenarios:
                # A capacity step is a serving run made again at each probed rate: its spec is the first probe's.
                search = request.capacity if scenario == "capacity" else None
                runs_as = "serving" if search else scenario
                skip = cannot_run(backend, runs_as, random[model])
                part = msgspec.structs.replace(request, rates=(search.start_rate,)) if search else request
                for spec in _specs(part, model, library, runs_as, datasets, threads, backend.serving_overrides,
                                   random[model]):
                    why = skip or (too_long.get((model, spec.dataset.label)) if runs_as == "offline" else None)
                    steps.append(PlanStep(index=len(steps) + 1, spec=spec, skip=why, search=search))
    return steps


def _check_trace(request: PlanRequest, dataset: DatasetSpec) -> None:
    if "capacity" in request.scenarios:
        raise UserError(f"{dataset.source}: a trace's timestamps set its load, and the capacity search sets rates of "
                        "its own: use --scenario serving and --trace-speed to scale the trace")
    if request.rates != (None,) and "serving" in request.scenarios:
        raise UserError(f"{dataset.source}: a trace's timestamps set its load: drop --rates, and scale the trace "
                        "with --trace-speed")


def _check(request: PlanRequest) -> None:
    serving = bool({"serving", "capacity"} & set(request.scenarios))
    if "capacity" in request.scenarios:
        if not request.capacity.slo:
            raise UserError("the capacity scenario needs its objectives: --slo ttft_p99=500,tpot_p99=50 with "
                            "`tuibench capacity`, or slo = \"ttft_p99=500\" in the plan file's [plan.capacity]")
        try:
            request.capacity.check()
        except ValueError as exc:
            raise UserError(f"capacity: {exc}") from None
    if request.endpoint and not serving:
        raise UserError("--endpoint is for the serving scenario: add --scenario serving (or capacity)")
    if request.endpoint and len(request.libraries) > 1:
        raise UserError("--endpoint names one server: give one library with it (endpoint, or vllm to send token ids), "
                        "or leave it out and tuibench launches each library's server")
    if "endpoint" in request.libraries and serving and not request.endpoint:
        raise UserError("library 'endpoint' benchmarks a running server: give its URL with --endpoint")
    if "conversations" in request.datasets:
        if "offline" in request.scenarios:
            raise UserError("--dataset conversations is for serving: each turn's prompt holds the reply to the turn "
                            "before, which only a server answering it gives; use --scenario serving")
        if request.client_workers > 1:
            raise UserError("the conversations dataset with --client-workers: a conversation's turns must come from "
                            "one client; use one worker")
    if request.client_workers > 1 and request.max_concurrency:
        raise UserError("--max-concurrency with --client-workers: a limit shared across client processes is not "
                        "built; use one worker, or no concurrency limit")
    if any(rate is not None and rate <= 0 for rate in request.rates):
        raise UserError("a request rate must be positive (inf: all at once)")
    if request.baseline is not None and request.baseline not in request.libraries:
        raise UserError(f"--baseline {request.baseline}: pick one of the plan's libraries ({', '.join(request.libraries)})")
    for name, values in (("libraries", request.libraries), ("models", request.models), ("datasets", request.datasets)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise UserError(f"{name}: {', '.join(repeated)} given twice")
    _check_device(request)
    _check_parallel(request)


def _context_too_short(requests, label: str, model: str, random_weights: bool) -> str | None:
    """Why `model` cannot hold one of `requests` (to follow "library 'NAME' "), from its config, before any weights
    load; None when it can. In a plan that step is skipped with this reason and the others run; a plan with nothing
    else is this one line. Requests whose length is known only once tokenized are checked in the run."""
    from tuibench.models.resolve import context_limit, resolve_model

    known = [(i, r.input_tokens + (r.output_tokens or 0)) for i, r in enumerate(requests) if r.input_tokens]
    if not known:
        return None
    index, needed = max(known, key=lambda found: found[1])
    ref = resolve_model(model, random_weights)
    limit = context_limit(ref)
    if limit and needed > limit:
        return (f"cannot run {label}: request {index} needs {needed} tokens of context but {ref.name} has {limit}; pick a "
                "dataset with shorter requests or a model with a longer context")
    return None


def _check_device(request: PlanRequest) -> None:
    """A device that is no device, or a GPU this machine does not have, is one line before any run starts (not a
    failed run per step). On a Ray cluster the cluster's GPUs count, and the run's child checks them."""
    device = request.device
    if device in ("auto", "cpu"):
        return
    found = re.fullmatch(r"cuda(?::(\d+))?", device)
    if found is None:
        raise UserError(f"--device {device}: not a device tuibench runs on; use auto, cpu, cuda or cuda:N")
    if request.ray_address:
        return
    from tuibench.telemetry.devices import detect_gpus

    gpus = detect_gpus()
    if not gpus:
        raise UserError(f"--device {device}: no CUDA GPU is visible here; use --device cpu (or auto)")
    if found.group(1) is not None and int(found.group(1)) >= len(gpus):
        raise UserError(f"--device {device}: this machine has {len(gpus)} GPU(s), cuda:0 to cuda:{len(gpus) - 1}")


def _check_parallel(request: PlanRequest) -> None:
    """A layout over more GPUs than the machine has is one line before anything starts. On a Ray cluster the
    cluster's GPUs count, and the run's child checks them once it is connected."""
    layout = _parallelism(request)
    if layout.gpus == 1:
        return
    if "vllm" not in request.libraries:
        raise UserError(f"{layout.label} spreads vLLM over GPUs: add --library vllm, or leave the parallel sizes at 1")
    if "profile" in request.scenarios:
        raise UserError(f"{layout.label}: module timing reads one process's modules, so profile runs on one GPU: "
                        "leave the parallel sizes at 1 for --scenario profile")
    if layout.data > 1 and "offline" in request.scenarios:
        raise UserError(f"--data-parallel-size {layout.data}: vLLM's replicas run behind its server, so data parallel "
                        "is for --scenario serving (offline, use --tensor-parallel-size)")
    if request.ray_address:
        return
    from tuibench.telemetry.devices import detect_gpus

    gpus = [] if request.device == "cpu" else detect_gpus()
    if len(gpus) < layout.gpus:
        have = f"{len(gpus)} ({', '.join(dict.fromkeys(g.name for g in gpus))})" if gpus else "none"
        raise UserError(f"{layout.label} needs {layout.gpus} GPUs (tensor × pipeline × data) and this machine has "
                        f"{have}: lower the parallel sizes")


def _parallelism(request: PlanRequest) -> Parallelism:
    return Parallelism(tensor=request.tensor_parallel_size, pipeline=request.pipeline_parallel_size,
                       data=request.data_parallel_size)


def _specs(request: PlanRequest, model: str, library: str, scenario: str, datasets: list[DatasetSpec], threads: int,
           serving_overrides: dict, random_weights: bool) -> list[RunSpec]:
    """The specs of one (model, library, scenario): per dataset, and per rate when serving; one profile. The
    parallel layout is vLLM's: the other libraries run on one GPU, and tables say so per GPU."""
    common = dict(model=model, library=library, scenario=scenario, seed=request.seed, device=request.device,
                  dtype=request.dtype, threads=threads, telemetry_hz=request.telemetry_hz, random_weights=random_weights,
                  parallel=_parallelism(request) if library == "vllm" else Parallelism(),
                  ray_address=request.ray_address,
                  speculative_tokens=request.speculative_tokens if library == "vllm" else 0)
    if scenario == "profile":
        lengths = tuple(request.lengths)
        return [RunSpec(**common, profile=ProfileParams(lengths=lengths, batch_size=request.batch_size,
                                                        decode_steps=request.decode_steps, repeats=request.repeats,
                                                        attn=request.attn, timer=request.timer),
                        # The workload of a profile: every length once, as a batch of random prompts.
                        dataset=DatasetSpec(kind="random", source="random", input_len=max(lengths),
                                            output_len=request.decode_steps))]
    offline = OfflineParams(batch_size=request.batch_size, warmup_batches=request.warmup_batches,
                            honor_eos=request.honor_eos)
    # vLLM with its prefix cache on and off, where asked: the other libraries have no switch for it.
    caching = [value == "on" for value in request.prefix_caching] if library == "vllm" and request.prefix_caching \
        else [None]
    if scenario == "offline":
        return [RunSpec(**common, dataset=dataset, offline=offline, num_requests=request.num_requests,
                        prefix_caching=cached) for cached in caching for dataset in datasets]
    serving = ServingParams(
        burstiness=request.burstiness, max_concurrency=request.max_concurrency, warmup_requests=request.warmup_requests,
        trim=request.trim, slo=request.slo, timeout_s=request.timeout_s, api=request.api, endpoint=request.endpoint,
        client_workers=request.client_workers, server_metrics=request.server_metrics,
        think_time_s=request.think_time_s, endpoint_wait_s=request.wait_for_endpoint_s,
        served_model=request.served_model_name, api_key_env=request.api_key_env,
        **({"length_policy": request.length_policy} if request.length_policy else {}),
    )
    # How this library's server takes prompts and holds outputs to length wins over the defaults, and the user's
    # choice of prompt form over both.
    serving = msgspec.structs.replace(serving, **serving_overrides)
    if request.prompts:
        serving = msgspec.structs.replace(serving, prompt_ids=request.prompts == "ids")
    return [RunSpec(**common, dataset=dataset, offline=offline, num_requests=request.num_requests,
                    serving=msgspec.structs.replace(serving, request_rate=rate), prefix_caching=cached)
            for cached in caching for dataset in datasets for rate in request.rates]


def library_choices() -> list[tuple[str, bool, str]]:
    """(name, available here, why not) for every library, as a form lists them (the app's Setup)."""
    from tuibench.backends import backend_class, backend_names

    return [(name, (found := backend.availability()).ok, found.reason) for name in backend_names()
            if getattr(backend := backend_class(name), "listed", True)]


def default_label(request: PlanRequest) -> str:
    if request.parts:
        return " + ".join(default_label(part) for part in request.part_requests())
    scenarios = ", ".join(request.scenarios)
    datasets = "" if request.scenarios == ("profile",) else f" · {', '.join(Path(d).name for d in request.datasets)}"
    rates = f" @ {', '.join(map(rate_label, request.rates))} req/s" if "serving" in request.scenarios else ""
    slo = f" under {request.capacity.slo}" if "capacity" in request.scenarios else ""
    return f"{', '.join(request.libraries)}{datasets} · {scenarios}{rates}{slo}"


def plan_of_spec(spec: RunSpec) -> Plan:
    """A plan of exactly this spec, built elsewhere (a benchmark, a test): one step, checked as any."""
    from tuibench.backends import require_backend

    require_backend(spec.library, spec.scenario, spec.random_weights)
    request = PlanRequest(models=(spec.model,), libraries=(spec.library,), datasets=(spec.dataset.source,),
                          scenarios=(spec.scenario,), rates=(spec.serving.request_rate,), random_weights=spec.random_weights)
    return Plan(label=default_label(request), request=request, steps=(PlanStep(index=1, spec=spec),))

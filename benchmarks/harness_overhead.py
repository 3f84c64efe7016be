"""How much throughput does tuibench's transformers path cost against a bare `model.generate` loop?

Same model, same batches, same token ids, greedy, output held to length; threads pinned. Two figures:

1. batch path: tuibench's StaticBatchEngine (step clock, per-row stops, per-request records) vs bare
   `model.generate`, interleaved batch by batch in this one process (ABBA order, so drift cancels).
2. whole pipeline: `tuibench run` as a user gets it (spawned child, events over a pipe, reducer,
   SQLite) vs bare passes in this process, alternated (B R B R B R B).

    python benchmarks/harness_overhead.py [--requests 32] [--rounds 3] [--threads 1]

Prints tokens/s of each arm and the ratio tuibench / bare (target >= 0.98), once both arms are seen to have done the
same work: every request's (prompt tokens, output tokens), else no ratio and exit 2.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def refusal(ran: dict[str, list[tuple[int, int]]]) -> str | None:
    """None when every arm ran the same requests: each one's (prompt tokens, output tokens), in any order; else the
    arms and what they ran, and no ratio is printed."""
    (first, expected), *others = ((name, sorted(counts)) for name, counts in ran.items())
    differing = [f"{name} {len(counts)} requests {sorted(set(counts))[:3]}" for name, counts in others
                 if counts != expected]
    return None if not differing else (f"the arms ran different specs, no ratio: {first} {len(expected)} requests "
                                       f"{sorted(set(expected))[:3]}; " + "; ".join(differing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="short2short")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pipeline-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Before torch is imported: OpenMP reads this once.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model
    from tuibench.core.prompts import materialize
    from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec
    from tuibench.core.workload import dataset_from_arg, load_requests
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.plans import plan_of_spec
    from tuibench.runner.service import run_plan

    torch.set_num_threads(args.threads)
    path = ensure_converted(resolve_model("smollm2-135m"), print)
    tokenizer, model = load_model(path, "cpu", "auto")
    dataset: DatasetSpec = dataset_from_arg(args.dataset)
    requests = load_requests(dataset, args.requests, args.seed)
    prompts = materialize(requests, tokenizer, args.seed)
    batches = [prompts[i:i + args.batch_size] for i in range(0, len(prompts), args.batch_size)]
    engine = StaticBatchEngine(model, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)

    def bare(batch) -> float:
        width = max(len(p.ids) for p in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(batch):
            ids[row, width - len(p.ids):] = torch.tensor(p.ids)
            mask[row, width - len(p.ids):] = 1
        steps = max(p.output_tokens for p in batch)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
        elapsed = time.perf_counter() - start
        # Every row runs to the batch's longest: at least each request's own output (useful_tokens counts only that).
        generated = out.shape[1] - width
        ran["bare generate"] += [(len(p.ids), p.output_tokens) for p in batch if generated >= p.output_tokens]
        return elapsed

    def ours(batch) -> float:
        start = time.perf_counter()
        result = engine.generate(batch)
        elapsed = time.perf_counter() - start
        ran["tuibench batch path"] += list(zip(result.prompt_tokens, result.output_tokens, strict=True))
        return elapsed

    ran: dict[str, list[tuple[int, int]]] = {"requests": [], "tuibench batch path": [], "bare generate": []}

    useful_tokens = sum(p.output_tokens for p in prompts)
    ours(batches[0]), bare(batches[0])  # warm-up, not counted
    for counts in ran.values():
        counts.clear()
    # Each batch runs through both arms back to back (order alternating), so each pair sees the same
    # machine state; the median of pair ratios shrugs off the drift a shared machine has.
    pair_ratios, t_ours, t_bare = [], [0.0] * args.rounds, [0.0] * args.rounds
    for round_ in range(args.rounds):
        for i, batch in enumerate(batches):
            if (i + round_) % 2 == 0:
                a, b = ours(batch), bare(batch)
            else:
                b, a = bare(batch), ours(batch)
            t_ours[round_] += a
            t_bare[round_] += b
            pair_ratios.append(b / a)
        ran["requests"] += [(len(p.ids), p.output_tokens) for p in prompts]
        print(f"round {round_ + 1}: tuibench {useful_tokens / t_ours[round_]:.1f} tok/s, "
              f"bare {useful_tokens / t_bare[round_]:.1f} tok/s", flush=True)
    ours_rate, bare_rate = useful_tokens * args.rounds / sum(t_ours), useful_tokens * args.rounds / sum(t_bare)
    quartiles = statistics.quantiles(pair_ratios, n=4)
    if (refused := refusal(ran)) is not None:
        sys.exit(refused)

    # The whole pipeline, as `tuibench run` does it, alternated with bare passes over the same batches
    # (B R B R ... B): each run is compared with the mean of the bare passes on either side of it.
    spec = RunSpec(dataset=dataset, offline=OfflineParams(batch_size=args.batch_size), num_requests=args.requests,
                   seed=args.seed, threads=args.threads)
    bare_passes = [useful_tokens / sum(bare(b) for b in batches)]
    pipeline_rates, pipeline_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        from tuibench.core.store import ResultsStore

        with ResultsStore.open(Path(tmp) / "r.db") as store:
            for _ in range(args.pipeline_runs):
                state = run_plan(plan_of_spec(spec), store).run
                if state.status != "finished":
                    sys.exit(f"the pipeline run did not finish: {state.error}")
                stored = store.get_run(state.run_id).requests
                same = refusal({"bare passes": [(len(p.ids), p.output_tokens) for p in prompts],
                                "tuibench run": [(r.input_tokens, r.output_tokens) for r in stored]})
                if same is not None:
                    sys.exit(same)
                pipeline_rates.append(state.metrics().output_throughput_tok_s)
                bare_passes.append(useful_tokens / sum(bare(b) for b in batches))
                pipeline_ratios.append(pipeline_rates[-1] / statistics.mean(bare_passes[-2:]))
                print(f"pipeline run: {pipeline_rates[-1]:.1f} tok/s, bare around it "
                      f"{bare_passes[-2]:.1f} / {bare_passes[-1]:.1f} tok/s", flush=True)

    print()
    print(f"workload: {args.dataset}, {len(prompts)} requests, batch {args.batch_size}, {useful_tokens} output tokens, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"batch path  : tuibench {ours_rate:8.1f} tok/s | bare generate {bare_rate:8.1f} tok/s | ratio "
          f"{statistics.median(pair_ratios):.4f} (median of {len(pair_ratios)} paired batches, IQR "
          f"{quartiles[0]:.4f}..{quartiles[2]:.4f})")
    print(f"whole run   : tuibench {statistics.median(pipeline_rates):8.1f} tok/s | bare generate "
          f"{statistics.median(bare_passes):8.1f} tok/s | ratio {statistics.median(pipeline_ratios):.4f} "
          f"(median of {len(pipeline_ratios)} runs, each against the bare passes beside it; "
          f"range {min(pipeline_ratios):.4f}..{max(pipeline_ratios):.4f})")


if __name__ == "__main__":
    main()

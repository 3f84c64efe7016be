"""How much throughput does tuibench's transformers path cost against a bare `model.generate` loop?

Same model, same batches, same token ids, greedy, output held to length; threads pinned. Two figures:

1. batch path: tuibench's StaticBatchEngine (step clock, per-row stops, per-request records) vs bare
   `model.generate`, interleaved batch by batch in this one process (ABBA order, so drift cancels).
2. whole pipeline: `tuibench run` as a user gets it (spawned child, events over a pipe, reducer,
   SQLite) vs the bare loop timed right before and after it in this process.

    python benchmarks/harness_overhead.py [--requests 32] [--rounds 3] [--threads 1]

Prints tokens/s of each arm and the ratio tuibench / bare (target >= 0.98).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="short2short")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Before torch is imported: OpenMP reads this once.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model
    from tuibench.backends.prompts import materialize
    from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec
    from tuibench.core.workload import dataset_from_arg, load_requests
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.recorder import execute

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
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
        return time.perf_counter() - start

    def ours(batch) -> float:
        start = time.perf_counter()
        engine.generate(batch)
        return time.perf_counter() - start

    useful_tokens = sum(p.output_tokens for p in prompts)
    ours(batches[0]), bare(batches[0])  # warm-up, not counted
    ratios, ours_rates, bare_rates = [], [], []
    for round_ in range(args.rounds):
        t_ours = t_bare = 0.0
        for i, batch in enumerate(batches):
            first, second = (ours, bare) if (i + round_) % 2 == 0 else (bare, ours)
            a, b = first(batch), second(batch)
            t_ours += a if first is ours else b
            t_bare += b if first is ours else a
        ours_rates.append(useful_tokens / t_ours)
        bare_rates.append(useful_tokens / t_bare)
        ratios.append(t_bare / t_ours)
        print(f"round {round_ + 1}: tuibench {ours_rates[-1]:.1f} tok/s, bare {bare_rates[-1]:.1f} tok/s, "
              f"ratio {ratios[-1]:.4f}", flush=True)

    # The whole pipeline, as `tuibench run` does it, bracketed by bare passes over the same batches.
    bare_before = useful_tokens / sum(bare(b) for b in batches)
    spec = RunSpec(dataset=dataset, offline=OfflineParams(batch_size=args.batch_size), num_requests=args.requests,
                   seed=args.seed, threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        from tuibench.core.store import ResultsStore

        with ResultsStore.open(Path(tmp) / "r.db") as store:
            state = execute(spec, requests, store=store).state
    bare_after = useful_tokens / sum(bare(b) for b in batches)
    pipeline = state.metrics().output_throughput_tok_s
    bare_pipeline = (bare_before + bare_after) / 2

    print()
    print(f"workload: {args.dataset}, {len(prompts)} requests, batch {args.batch_size}, {useful_tokens} output tokens, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"batch path  : tuibench {statistics.median(ours_rates):8.1f} tok/s | bare generate "
          f"{statistics.median(bare_rates):8.1f} tok/s | ratio {statistics.median(ratios):.4f} (median of {args.rounds})")
    print(f"whole run   : tuibench {pipeline:8.1f} tok/s | bare generate {bare_pipeline:8.1f} tok/s "
          f"(before {bare_before:.1f}, after {bare_after:.1f}) | ratio {pipeline / bare_pipeline:.4f}")
    if state.status != "finished":
        sys.exit(f"the pipeline run did not finish: {state.error}")


if __name__ == "__main__":
    main()

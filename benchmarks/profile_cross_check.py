"""tuibench's module timer against torch.profiler, leaf by leaf: the same prefill and decode steps of SmolLM2
timed by our timer and by torch.profiler's Python tracer (no hook of ours), in alternating passes.

    .venv/bin/python benchmarks/profile_cross_check.py [--library transformers|vllm] [--length 128] [--batch 8]
        [--decode-steps 4] [--rounds 4] [--json out.json]

Prints, per phase, each leaf summed over the decoder layers: ms per step by the timer and by the profiler, and
the difference; then how many single leaves (one layer's) are within 10 % or 0.05 ms, and the totals (the figure
tests/integration/test_profile_cross_check.py once bounded at 35 % + 0.05 ms a leaf); then the call-by-call check:
every call paired by its place and path, and how many paired calls differ by more than 50 % + 0.05 ms. vLLM runs
its in-process engine (whole engine steps); its LM head runs outside the model's forward and is left out.
"""

import argparse
import os
from pathlib import Path

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--decode-steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write both sides' calls here (a CrossCheck)")
    args = parser.parse_args()

    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    path = ensure_converted(resolve_model("smollm2-135m"), print)
    result = (_vllm if args.library == "vllm" else _transformers)(path, args)

    import msgspec

    from tuibench.profiling.cross_check import by_leaf

    for phase, checks in result.leaves().items():
        print(f"\n{args.library} {phase}, batch {args.batch}, length {args.length}: ms per step")
        print(f"{'leaf':44} {'timer':>9} {'profiler':>9} {'diff':>8} {'diff %':>7}")
        for check in by_leaf(checks):
            pct = 100 * check.difference_ms / check.profiler_ms if check.profiler_ms else float("nan")
            print(f"{check.path.split('.', 1)[-1][-44:]:44} {check.timer_ms:9.3f} {check.profiler_ms:9.3f} "
                  f"{check.difference_ms:+8.3f} {pct:+6.1f}%")
        within = sum(c.within(0.10, 0.05) for c in checks)
        timer_ms, profiler_ms = sum(c.timer_ms for c in checks), sum(c.profiler_ms for c in checks)
        print(f"single leaves within 10 % or 0.05 ms: {within} of {len(checks)}; all leaves: timer {timer_ms:.2f}, "
              f"profiler {profiler_ms:.2f} ms ({100 * (timer_ms / profiler_ms - 1):+.1f} %)")
    report = result.compare(SHARE, FLOOR_MS)
    print(f"\ncall by call (median of {args.rounds} rounds a side): {len(report.checks)} calls paired by place and "
          f"path, {len(report.misnamed)} misnamed, {len(report.unpaired)} unpaired; {len(report.off)} off by more than "
          f"{SHARE:.0%} + {FLOOR_MS} ms")
    for problem in report.unpaired[:5]:
        print(f"  unpaired: {problem}")
    for check in (report.misnamed + report.off)[:10]:
        print(f"  step {check.step} call {check.index}: timer {check.timer_path} {check.timer_ms:.3f} ms, profiler "
              f"{check.profiler_path} {check.profiler_ms:.3f} ms")
    if args.json:
        args.json.write_bytes(msgspec.json.encode(result))


SHARE, FLOOR_MS = 0.5, 0.05  # the per-call tolerance the tests use (test_profile_cross_check.py)


def _transformers(path, args):
    import torch

    from tuibench.backends.hf_transformers import load_model
    from tuibench.profiling.cross_check import cross_check

    torch.set_num_threads(1)
    _, model = load_model(path, "cpu", "float32", "sdpa")
    ids = torch.randint(1000, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    return cross_check(model, ids, args.decode_steps, args.rounds)


def _vllm(path, args):
    from tuibench.backends.vllm_backend import cpu_environment

    os.environ.update(cpu_environment(threads=1), VLLM_ENABLE_V1_MULTIPROCESSING="0")  # before vLLM is imported
    from transformers import AutoTokenizer

    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.backends.vllm_backend import profiling_engine
    from tuibench.profiling.cross_check import cross_check_vllm

    llm = profiling_engine(path, "float32", 0, [args.length], args.batch, args.decode_steps)
    return cross_check_vllm(llm, batch=args.batch, length=args.length, decode_steps=args.decode_steps,
                            rounds=args.rounds, token_ids=plain_vocab_ids(AutoTokenizer.from_pretrained(path)))


if __name__ == "__main__":
    main()

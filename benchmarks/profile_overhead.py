"""What the module timer costs: the same prefill + decode steps with and without hooks, as a ratio.

SmolLM2 on this CPU, 1 thread, float32. Each round runs the bare pass and the hooked pass back to
back with a second bare pass as a control, in a rotating order, so drift on a noisy host falls on
all three. Prints the median hooked/bare time ratio for prefill and for decode (target: at most
1.05) beside the bare/bare control (the noise floor), and the cost per timed call that the decode
difference implies.

    .venv/bin/python benchmarks/profile_overhead.py [--length 128] [--batch 8] [--decode-steps 8] [--rounds 6]
"""

import argparse
import os
import statistics
import sys

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")

# glibc raises its mmap threshold as large buffers are freed, so where a pass's activations land (and how
# well its matmuls align) depends on what ran before: measured here, that alone moves an 8x128 prefill by
# 8 %, and made hooked passes look faster than bare ones. Serving every buffer from the heap takes it away.
# glibc reads these once, at start-up: hence the re-exec.
HEAP_ONLY = {"MALLOC_MMAP_THRESHOLD_": str(2**28), "MALLOC_TRIM_THRESHOLD_": str(2**28)}
if any(os.environ.get(k) != v for k, v in HEAP_ONLY.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | HEAP_ONLY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--decode-steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = parser.parse_args()

    import torch

    from tuibench.backends.hf_transformers import load_model
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model
    from tuibench.profiling.hf_profile import instrument, run_steps

    torch.set_num_threads(1)
    _, model = load_model(ensure_converted(resolve_model("smollm2-135m"), print), "cpu", "float32", args.attn)
    ids = torch.randint(100, 40000, (args.batch, args.length), generator=torch.Generator().manual_seed(0))

    def bare() -> list[float]:
        return run_steps(model, ids, args.decode_steps)

    calls_per_step = {}

    def hooked() -> list[float]:
        timer, patched = instrument(model)
        try:
            walls = run_steps(model, ids, args.decode_steps, timer)
        finally:
            patched.restore()
            timer.detach()
        for step in timer.steps:
            calls_per_step[step.tag] = sum(step.calls.values())
        return walls

    bare(), hooked()  # warm-up of both paths
    # Each round: the hooked pass between two bare ones, in a rotating order. The two bare passes give the
    # control ratio: what this host's noise alone does to a ratio of two identical runs.
    ratios: dict[str, list[float]] = {"prefill": [], "decode": [], "control prefill": [], "control decode": []}
    per_call_us = []
    best: dict[str, float] = {}
    for round_ in range(args.rounds):
        order = [("bare", bare), ("hooked", hooked), ("bare again", bare)]
        order = order[round_ % 3:] + order[:round_ % 3]
        walls = {name: run() for name, run in order}
        b, h, c = walls["bare"], walls["hooked"], walls["bare again"]

        def decode_mean(w: list[float]) -> float:
            return sum(w[1:]) / len(w[1:])

        best["bare prefill"] = min(best.get("bare prefill", 1e9), b[0], c[0])
        best["hooked prefill"] = min(best.get("hooked prefill", 1e9), h[0])
        best["bare decode"] = min(best.get("bare decode", 1e9), *b[1:], *c[1:])
        best["hooked decode"] = min(best.get("hooked decode", 1e9), *h[1:])
        ratios["prefill"].append(h[0] / b[0])
        ratios["decode"].append(decode_mean(h) / decode_mean(b))
        ratios["control prefill"].append(c[0] / b[0])
        ratios["control decode"].append(decode_mean(c) / decode_mean(b))
        per_call_us.append((decode_mean(h) - decode_mean(b)) / calls_per_step["decode"] * 1e6)
        print(f"round {round_ + 1}: prefill {b[0] * 1e3:7.1f} / {h[0] * 1e3:7.1f} / {c[0] * 1e3:7.1f} ms, "
              f"decode step {decode_mean(b) * 1e3:6.1f} / {decode_mean(h) * 1e3:6.1f} / {decode_mean(c) * 1e3:6.1f} ms"
              "  (bare / hooked / bare again)")

    def summary(values: list[float]) -> str:
        q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        return f"{statistics.median(values):.3f} (IQR {q[0]:.3f}–{q[2]:.3f})"

    print(f"\nSmolLM2-135M fp32, 1 thread, batch {args.batch}, input {args.length}, attention {args.attn}; "
          f"{calls_per_step['decode']} timed calls per decode step")
    print(f"hooked / bare, prefill:  {summary(ratios['prefill'])}   control (bare / bare): {summary(ratios['control prefill'])}")
    print(f"hooked / bare, decode:   {summary(ratios['decode'])}   control (bare / bare): {summary(ratios['control decode'])}")
    print(f"best of all rounds, hooked / bare: prefill {best['hooked prefill'] / best['bare prefill']:.3f}, "
          f"decode step {best['hooked decode'] / best['bare decode']:.3f}")
    # The noise-free estimate: what one timed call costs (a hooked Identity module against a bare one), times
    # the calls of a decode step, against the fastest bare decode step.
    call_us = _timed_call_cost_us()
    predicted = 1.0 + call_us * calls_per_step["decode"] / (best["bare decode"] * 1e6)
    print(f"one timed module call costs {call_us:.2f} µs more than a bare one: predicted decode ratio {predicted:.3f}")
    print("target: hooked / bare ≤ 1.05")
    print(f"implied cost per timed call: {statistics.median(per_call_us):.1f} µs")


def _timed_call_cost_us(calls: int = 50_000) -> float:
    import time

    import torch

    from tuibench.profiling.timer import ModuleTimer

    module, x = torch.nn.Identity(), torch.ones(1)

    def per_call() -> float:
        for _ in range(1000):
            module(x)
        start = time.perf_counter()
        for _ in range(calls):
            module(x)
        return (time.perf_counter() - start) / calls

    bare = min(per_call() for _ in range(3))
    timer = ModuleTimer()
    timer.attach(module, prefix="m")
    timer.begin_step("decode")
    hooked = min(per_call() for _ in range(3))
    timer.detach()
    return (hooked - bare) * 1e6


if __name__ == "__main__":
    main()

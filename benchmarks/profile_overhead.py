"""What the module timer costs: the same prefill + decode steps with and without it, as a ratio.

SmolLM2 on this CPU, 1 thread, float32. Three sequences run in lockstep, each with its own KV cache:
a bare one, a timed one (the timer attached for its forwards only, as `tuibench profile` times them)
and a second bare one as a control. Every step (the prefill, then each decode step) runs once per
sequence, back to back, in an order that rotates from step to step, so drift on a noisy host falls
on all three within a second and each step gives one paired ratio. Prints the median timed/bare
ratio for prefill and for decode (target: decode at most 1.02) beside the bare/bare control (the
noise floor), the timed calls per step, and the cost per timed call that the decode difference
implies, against the one a micro-benchmark gives for a timed module call on its own.

    .venv/bin/python benchmarks/profile_overhead.py [--length 128] [--batch 8] [--decode-steps 16] [--rounds 10]
        [--timer events|trace] [--library transformers|fake]

2.5-3 minutes at the defaults on a busy 2-core VM (the prefills take half of it). `--timer trace` gives what the
trace timer costs (the bounds tests/integration/test_profiling.py once held it to); `--library fake` runs the same
logic on the fake engine's scripted passes (TUIBENCH_FAKE_PREFILL_MS / TUIBENCH_FAKE_DECODE_MS), whose every ratio
is 1 by construction: the test of this script. Before it prints a ratio, it checks that every side ran the same
spec (library, model, dtype, attention, batch, input length, decode steps), and refuses otherwise.
"""

import argparse
import os
import statistics
import sys
from typing import NamedTuple

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")

# glibc raises its mmap threshold as large buffers are freed, so where a pass's activations land (and how
# well its matmuls align) depends on what ran before: measured here, that alone moves an 8x128 prefill by
# 8 %, and made hooked passes look faster than bare ones. Serving every buffer from the heap takes it away.
# glibc reads these once, at start-up: hence the re-exec (at the end: importing this script runs nothing).
HEAP_ONLY = {"MALLOC_MMAP_THRESHOLD_": str(2**28), "MALLOC_TRIM_THRESHOLD_": str(2**28)}

NAMES = ("bare", "timed", "bare again")


class Spec(NamedTuple):
    """What one side ran, read from what it ran (its inputs' shape, its steps), not from the arguments."""

    library: str
    model: str
    dtype: str
    attn: str
    batch: int
    length: int
    decode_steps: int


def refusal(ran: dict[str, Spec]) -> str | None:
    """None when every side ran the same spec; else the sides and the fields that differ."""
    first = ran[NAMES[0]]
    differing = [f"{name}: " + ", ".join(f"{field} {getattr(spec, field)} (not {getattr(first, field)})"
                                         for field in Spec._fields if getattr(spec, field) != getattr(first, field))
                 for name, spec in ran.items() if spec != first]
    return None if not differing else "the sides ran different specs, no ratio: " + "; ".join(differing)


def ratios_of(walls: list[dict[str, list[float]]]) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Per round's walls (each side's, per step: the prefill then each decode step): the paired ratios, timed / bare
    and bare again / bare (the control), and per decode step the timed one's extra seconds and the bare one's."""
    ratios: dict[str, list[float]] = {"prefill": [], "decode": [], "control prefill": [], "control decode": []}
    extra_s, bare_decode_s = [], []
    for w in walls:
        b, h, c = w["bare"], w["timed"], w["bare again"]
        ratios["prefill"].append(h[0] / b[0])
        ratios["control prefill"].append(c[0] / b[0])
        for step in range(1, len(b)):
            ratios["decode"].append(h[step] / b[step])
            ratios["control decode"].append(c[step] / b[step])
            extra_s.append(h[step] - (b[step] + c[step]) / 2)
            bare_decode_s.append(b[step])
    return ratios, extra_s, bare_decode_s


def summary(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{statistics.median(values):.3f} (IQR {q[0]:.3f}–{q[2]:.3f}, n={len(values)})"


def report(args, ran: dict[str, Spec], walls: list[dict[str, list[float]]], calls_per_step: dict[str, int]) -> int:
    """Prints the table; 2 (and no ratio) when the sides ran different specs."""
    if (refused := refusal(ran)) is not None:
        print(refused)
        return 2
    spec = ran["timed"]
    ratios, extra_s, bare_decode_s = ratios_of(walls)
    calls = calls_per_step["decode"]
    print(f"\n{spec.library} {spec.model} {spec.dtype}, 1 thread, batch {spec.batch}, input {spec.length}, "
          f"{spec.decode_steps} decode steps, attention {spec.attn}, timer {args.timer}; "
          f"timed calls per step: prefill {calls_per_step['prefill']}, decode {calls}")
    for phase in ("prefill", "decode"):
        print(f"timed / bare, {phase + ':':8s} {summary(ratios[phase])}   "
              f"control (bare / bare): {summary(ratios['control ' + phase])}")
    print("target: decode timed / bare ≤ 1.02 (beside its control)")
    per_call_us = [extra / calls * 1e6 for extra in extra_s]
    q = statistics.quantiles(per_call_us, n=4) if len(per_call_us) > 1 else per_call_us * 3
    print(f"implied cost per timed call (decode, timed minus the mean of both bare steps): "
          f"{statistics.median(per_call_us):.2f} µs (IQR {q[0]:.2f}–{q[2]:.2f})")
    if spec.library != "fake":
        # The noise-free estimate: what one timed call costs (a timed Identity module against a bare one), times the
        # calls of a decode step, against the median bare decode step. A lower bound: it runs with hot caches, while
        # in a decode step every matmul streams MBs of weights through them, and the same Python work costs 2-5x
        # more (a 16 MB read between calls: 3.0 -> 6.2-9.1 µs for forward hooks, 0.3-0.7 -> 0.2-2.0 µs for the
        # forward wrapper).
        call_us = _timed_call_cost_us()
        predicted = 1.0 + call_us * calls / (statistics.median(bare_decode_s) * 1e6)
        print(f"one timed module call alone costs {call_us:.2f} µs more than a bare one (micro-benchmark): "
              f"predicted decode ratio {predicted:.3f}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--decode-steps", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--timer", default="events", choices=["events", "trace"])
    parser.add_argument("--library", default="transformers", choices=["transformers", "fake"])
    args = parser.parse_args()
    if args.library == "fake":
        sys.exit(_fake(args))

    import time

    import torch
    from transformers import DynamicCache

    from tuibench.backends.hf_transformers import load_model
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model
    from tuibench.profiling.hf_profile import instrument

    torch.set_num_threads(1)
    _, model = load_model(ensure_converted(resolve_model("smollm2-135m"), print), "cpu", "float32", args.attn)
    ids = torch.randint(100, 40000, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    calls_per_step: dict[str, int] = {}

    def forward(tokens, cache) -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        logits = model(input_ids=tokens, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        wall = time.perf_counter() - start
        return logits[:, -1:].argmax(-1), wall  # greedy, as a benchmark's decode would

    def timed_forward(tokens, cache, tag: str) -> tuple[torch.Tensor, float]:
        # What hf_profile.run_steps does around a forward of `tuibench profile`, for this one forward: the timer
        # attached, the attention core, RoPE and the cache's KV write wrapped; attaching and reading it untimed.
        timer, patched = instrument(model, args.timer)
        cache.update = timer.wrap("kv_write", cache.update)
        try:
            with timer.recording():  # trace mode: the profiler runs around it, and its trace is read after
                timer.begin_step(tag)
                out = forward(tokens, cache)
        finally:
            del cache.update
            patched.restore()
            timer.detach()
        calls_per_step[tag] = sum(timer.steps[0].calls.values())
        return out

    def run_round(round_: int, decode_steps: int) -> dict[str, list[float]]:
        """One prefill and `decode_steps` decode steps of each sequence, in lockstep: the walls of each."""
        caches = {name: DynamicCache(config=model.config) for name in NAMES}
        tokens = dict.fromkeys(NAMES, ids)
        walls: dict[str, list[float]] = {name: [] for name in NAMES}
        with torch.inference_mode():
            for step in range(1 + decode_steps):
                shift = (round_ + step) % 3
                for name in NAMES[shift:] + NAMES[:shift]:
                    if name == "timed":
                        tag = "prefill" if step == 0 else "decode"
                        tokens[name], wall = timed_forward(tokens[name], caches[name], tag)
                    else:
                        tokens[name], wall = forward(tokens[name], caches[name])
                    walls[name].append(wall)
                    if step == 0:
                        batches[name], lengths[name] = tokens[name].shape[0], caches[name].get_seq_length()
        ran.update({name: Spec("transformers", "smollm2-135m", str(model.dtype).removeprefix("torch."),
                               model.config._attn_implementation, batches[name], lengths[name], len(walls[name]) - 1)
                    for name in NAMES})
        return walls

    ran: dict[str, Spec] = {}
    batches: dict[str, int] = {}
    lengths: dict[str, int] = {}
    run_round(0, 2)  # warm-up of both paths
    rounds = []
    for round_ in range(args.rounds):
        w = run_round(round_, args.decode_steps)
        rounds.append(w)
        b, h, c = w["bare"], w["timed"], w["bare again"]
        print(f"round {round_ + 1}: prefill {b[0] * 1e3:7.1f} / {h[0] * 1e3:7.1f} / {c[0] * 1e3:7.1f} ms, "
              f"decode step (median) {statistics.median(b[1:]) * 1e3:6.1f} / {statistics.median(h[1:]) * 1e3:6.1f} / "
              f"{statistics.median(c[1:]) * 1e3:6.1f} ms  (bare / timed / bare again)", flush=True)
    sys.exit(report(args, ran, rounds, calls_per_step))


def _fake(args) -> int:
    """The same rounds on the fake engine's passes (profiling/fake_passes.py): each side a whole pass (a prefill and
    the decode steps, scripted), in an order that rotates from round to round; walls are the script's."""
    import json
    from pathlib import Path

    from tuibench.backends.fake import Script
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model
    from tuibench.profiling.fake_passes import FakePasses

    script = Script.from_environment()
    config = json.loads((Path(ensure_converted(resolve_model("smollm2-135m"), print)) / "config.json").read_text())
    passes = {name: FakePasses(config, prefill_ms=script.prefill_ms, decode_ms=script.decode_ms, batch=args.batch,
                               decode_steps=args.decode_steps, dtype="float32") for name in NAMES}
    ran: dict[str, Spec] = {}
    calls_per_step: dict[str, int] = {}
    rounds = []
    for round_ in range(args.rounds):
        walls: dict[str, list[float]] = {}
        shift = round_ % 3
        for name in NAMES[shift:] + NAMES[:shift]:
            side = passes[name]
            if name == "timed":
                steps, wall = side.timed(args.length, args.timer)
                calls_per_step.update({step.tag: sum(step.calls.values()) for step in steps})
            else:
                wall = side.bare(args.length)
            walls[name] = [ns / 1e9 for _, ns in wall]
            ran[name] = Spec("fake", "smollm2-135m", side.dtype, side.attn, side.batch, args.length, len(wall) - 1)
        rounds.append(walls)
        print(f"round {round_ + 1}: " + " / ".join(f"{sum(walls[n]) * 1e3:.1f}" for n in NAMES)
              + " ms a pass (bare / timed / bare again)", flush=True)
    return report(args, ran, rounds, calls_per_step)


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

    bare = min(per_call() for _ in range(5))
    timer = ModuleTimer()
    timer.attach(module, prefix="m")
    timed = 1.0
    for _ in range(5):
        timer.begin_step("decode")  # each a step of its own: the log is read and emptied between them
        timed = min(timed, per_call())
    timer.end_step()
    timer.detach()
    return (timed - bare) * 1e6


if __name__ == "__main__":
    if any(os.environ.get(k) != v for k, v in HEAP_ONLY.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | HEAP_ONLY)
    main()

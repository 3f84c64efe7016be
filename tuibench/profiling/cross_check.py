"""A second, independent measurement of the module tree: the same steps under torch.profiler, no hook of ours.

torch.profiler's Python tracer records every nn.Module call as an event ("nn.Module: Linear_3") with its own
clock, and every Python function call too (the attention core, RoPE, the cache's update, which tuibench wraps).
Events nest as calls do. This takes a profiled pass of a transformers model, finds each forward step (an event of
the model's own class), and names the module events in it by tuibench's own paths: within one step every module
is called once, in the order the timer saw them enter, so the k-th module event of a step is the k-th module path
the timer recorded (the class of each is checked, so a mismatch fails loudly rather than pairing the wrong
modules). Wrapped functions are found below their module by their function's name.

The tracer costs time of its own and reports it inside its events: a module call it records grows by some µs
(its frames, and each Python call and op recorded within it), so on small modules (a decode step's norms) its
times run above the timer's. `benchmarks/profile_cross_check.py` prints the difference per leaf.

Timer and profiler passes alternate (A B A B), so drift on a noisy host falls on both.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence

import msgspec

from tuibench.profiling.timer import StepTimes
from tuibench.profiling.tree import FUNCTIONS

_MODULE = "nn.Module: "


class LeafCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One leaf, per step of one phase: tuibench's time against torch.profiler's."""

    path: str
    timer_ms: float
    profiler_ms: float
    leaves: int = 1  # summed into this row (by_leaf: one per decoder layer)

    @property
    def difference_ms(self) -> float:
        return self.timer_ms - self.profiler_ms

    def within(self, share: float, floor_ms: float) -> bool:
        """Within `share` of the profiler's time, or `floor_ms`, whichever is larger."""
        return abs(self.difference_ms) <= max(share * self.profiler_ms, floor_ms)


def _function_name(event_name: str) -> str:
    """'transformers/models/llama/modeling_llama.py(123): apply_rotary_pos_emb' -> 'apply_rotary_pos_emb'."""
    return event_name.rsplit(": ", 1)[-1]


def step_events(roots, model_class: str) -> list:
    """The forward steps of a profiled pass: each event of the model's own class, in time order."""
    found = []

    def visit(node) -> None:
        if node.name.startswith(_MODULE) and node.name[len(_MODULE):].rsplit("_", 1)[0] == model_class:
            found.append(node)
            return
        for child in node.children:
            visit(child)

    for root in roots:
        visit(root)
    return sorted(found, key=lambda node: node.start_time_ns)


def step_times(step, module_paths: Sequence[str], classes: Mapping[str, str],
               functions: Mapping[str, str]) -> dict[str, float]:
    """ns per tuibench path in one profiled step. `module_paths`: the modules in the order they are called;
    `classes`: path -> class name; `functions`: a function's own name -> the name tuibench wraps it under."""
    modules, calls = [], []  # module events in call order; (owner index, function event) below each

    def visit(node, owner: int | None) -> None:
        if node.name.startswith(_MODULE):
            modules.append(node)
            owner = len(modules) - 1
        elif owner is not None and (name := functions.get(_function_name(node.name))) is not None:
            calls.append((owner, name, node))
            return  # the outermost call only: a cache's update calls its layers' update
        for child in node.children:
            visit(child, owner)

    visit(step, None)
    if len(modules) != len(module_paths):
        raise ValueError(f"the profiler saw {len(modules)} module calls in a step, the timer {len(module_paths)}")
    times: dict[str, float] = defaultdict(float)
    for path, event in zip(module_paths, modules, strict=True):
        seen = event.name[len(_MODULE):].rsplit("_", 1)[0]
        if seen != classes[path]:
            raise ValueError(f"the profiler's module {seen} is not {path} ({classes[path]}): calls out of order")
        times[path] += event.duration_time_ns
    for owner, name, event in calls:
        times[f"{module_paths[owner]}.{name}"] += event.duration_time_ns
    return dict(times)


class _Tally:
    """Per phase and path, the ns of each step: the timer's and the profiler's, gathered over alternating passes."""

    def __init__(self):
        self.timer_ns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.profiler_ns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def timed(self, steps: Sequence[StepTimes]) -> None:
        for step in steps:
            for path, ns in step.ns.items():
                self.timer_ns[step.tag][path].append(ns)

    def profiled(self, phase: str, times: Mapping[str, float]) -> None:
        for path, ns in times.items():
            self.profiler_ns[phase][path].append(ns)

    def checks(self, leaves: Sequence[str]) -> dict[str, list[LeafCheck]]:
        return {phase: [LeafCheck(path=p, timer_ms=_mean(self.timer_ns[phase][p]) / 1e6,
                                  profiler_ms=_mean(self.profiler_ns[phase][p]) / 1e6)
                        for p in leaves if self.timer_ns[phase][p] and self.profiler_ns[phase][p]]
                for phase in ("prefill", "decode")}


def _leaves(step: StepTimes, under: str | None = None) -> list[str]:
    """The paths no other path was called from; with `under`, only those called (at any depth) inside it."""
    parents = set(step.parents.values())
    return [p for p in step.order if p not in parents and (under is None or _inside(step, p, under))]


def _inside(step: StepTimes, path: str, root: str) -> bool:
    """Whether `path` is `root` or was called (at any depth) inside it."""
    while path is not None:
        if path == root:
            return True
        path = step.parents.get(path)
    return False


def cross_check(model, input_ids, decode_steps: int, rounds: int) -> dict[str, list[LeafCheck]]:
    """Per phase, every leaf the timer names (modules without timed children, wrapped functions) with its ms per
    step from the timer and from torch.profiler, over `rounds` alternating passes of each. transformers."""
    from torch.profiler import ProfilerActivity, profile

    from tuibench.profiling.hf_profile import instrument, run_steps

    run_steps(model, input_ids, decode_steps)  # warm-up
    classes = _classes(model)
    tally = _Tally()
    attn = model.config._attn_implementation
    functions = {"apply_rotary_pos_emb": "rope", "update": "kv_write",
                 "eager_attention_forward" if attn == "eager" else _attention_function(attn): "attn_core"}
    for _ in range(rounds):
        timer, patched = instrument(model)
        try:
            run_steps(model, input_ids, decode_steps, timer)
        finally:
            patched.restore()
            timer.detach()
        tally.timed(timer.steps)
        first = timer.steps[0]
        module_paths = [p for p in first.order if p.rsplit(".", 1)[-1] not in FUNCTIONS]
        with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
            run_steps(model, input_ids, decode_steps)
        roots = prof.profiler.kineto_results.experimental_event_tree()
        for index, step in enumerate(step_events(roots, type(model).__name__)):
            tally.profiled("prefill" if index == 0 else "decode", step_times(step, module_paths, classes, functions))
        del prof
    return tally.checks(_leaves(first))


def cross_check_vllm(llm, *, batch: int, length: int, decode_steps: int, rounds: int, token_ids: Sequence[int],
                     seed: int = 0) -> dict[str, list[LeafCheck]]:
    """The same for vLLM's in-process engine, whole engine steps (scheduler, sampling) around each forward.

    The profiler's step is the model's forward; the logits processor (the LM head) runs after it, called by the
    runner, so it is left out of both sides. vLLM wraps no function: every leaf is a module.
    """
    import random

    from torch.profiler import ProfilerActivity, profile
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from tuibench.profiling.timer import ModuleTimer
    from tuibench.profiling.vllm_profile import runner_model, watch_steps

    model = runner_model(llm)
    root = type(model).__name__
    rng = random.Random(seed)
    sampling = SamplingParams(max_tokens=1 + decode_steps, ignore_eos=True, temperature=0.0)

    def generate() -> None:
        llm.generate([TokensPrompt(prompt_token_ids=rng.choices(token_ids, k=length)) for _ in range(batch)],
                     sampling, use_tqdm=False)

    generate()  # warm-up
    classes = _classes(model, prefix=root)
    tally = _Tally()
    for _ in range(rounds):
        timer = ModuleTimer()
        handle = watch_steps(model, batch, timer.begin_step)
        timer.attach(model, prefix=root)
        try:
            with timer.recording():
                generate()
        finally:
            handle.remove()
            timer.detach()
        tally.timed(timer.steps)
        first = timer.steps[0]
        module_paths = [p for p in first.order if _inside(first, p, root)]
        with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
            generate()
        roots = prof.profiler.kineto_results.experimental_event_tree()
        for index, step in enumerate(step_events(roots, type(model).__name__)):
            tally.profiled("prefill" if index == 0 else "decode", step_times(step, module_paths, classes, {}))
        del prof
    return tally.checks(_leaves(first, under=root))


def _classes(model, prefix: str | None = None) -> dict[str, str]:
    """Every name a module has (a shared one under each parent) -> its class name."""
    prefix = prefix or type(model).__name__
    return {".".join(p for p in (prefix, name) if p): type(module).__name__
            for name, module in model.named_modules(remove_duplicate=False)}


def by_leaf(checks: Sequence[LeafCheck]) -> list[LeafCheck]:
    """The same leaf of every decoder layer summed ("layers.*.mlp.up_proj"): steadier than one layer's, and the
    rows a reader compares with the tree's "layers ×L" node."""
    import re

    summed: dict[str, tuple[float, float, int]] = {}
    for check in checks:
        key = re.sub(r"\.layers\.\d+\.", ".layers.*.", check.path)
        timer_ms, profiler_ms, leaves = summed.get(key, (0.0, 0.0, 0))
        summed[key] = (timer_ms + check.timer_ms, profiler_ms + check.profiler_ms, leaves + check.leaves)
    return [LeafCheck(path=key, timer_ms=t, profiler_ms=p, leaves=n) for key, (t, p, n) in summed.items()]


def _attention_function(implementation: str) -> str:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS[implementation].__name__


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)

"""A second, independent measurement of the module tree: the same steps under torch.profiler, no hook of ours.

torch.profiler's Python tracer records every nn.Module call as an event ("nn.Module: Linear_3") with its own
clock and the module object's identity (`self_ptr`, its `id()`), and every Python function call too (the attention
core, RoPE, the cache's update, which tuibench wraps). Events nest as calls do.

The check is call by call. Both sides give each forward step as its calls in the order they were entered: the
timer from its own log (every timed call, kept before the timer folds it into per-path sums), the profiler from
its events, each module event named by tuibench's path **of the object it called** (found by identity, never by
time or by class), each wrapped function by its name under the module it ran in. The k-th call of a step on one
side is paired with the k-th on the other, and must carry the same path: two same-shape siblings whose labels were
swapped (`gate_proj` timed as `up_proj`) are a pairing fault, whatever their times. Each paired call's time (the
median over the rounds, per side) is then compared on its own, not summed with other calls or layers, so a call
the timer reads as zero is off by 100 % of itself wherever it stands.

The tracer costs time of its own and reports it inside its events: a module call it records grows by some µs
(its frames, and each Python call and op recorded within it), so on small calls (a decode step's norms) its
times run above the timer's. `benchmarks/profile_cross_check.py` prints the difference per leaf and per call.

Timer and profiler passes alternate (A B A B), so drift on a noisy host falls on both.
"""

import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import msgspec

from tuibench.profiling.steps import Relative

_MODULE = "nn.Module: "


class Call(msgspec.Struct, frozen=True, array_like=True):
    """One timed call: its path and its time."""

    path: str
    ns: int


Step = list[Call]  # one forward step's calls inside the model's forward, in the order they were entered
Pass = list[Step]  # a prefill step, then each decode step


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


class CallCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The k-th call of a step on both sides: the paths each gave it and its time (median over the rounds)."""

    step: int  # 0: the prefill, then each decode step
    index: int  # its place among the step's calls, in the order they were entered
    timer_path: str
    profiler_path: str
    timer_ms: float
    profiler_ms: float

    @property
    def paired(self) -> bool:
        return self.timer_path == self.profiler_path

    def within(self, share: float, floor_ms: float) -> bool:
        """Within `share` of the profiler's time plus `floor_ms`."""
        return abs(self.timer_ms - self.profiler_ms) <= share * self.profiler_ms + floor_ms


class CallReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the check found. `unpaired`: steps or calls one side has and the other lacks, or a side whose rounds
    disagree on a call's path; `misnamed`: the k-th calls of a step with different paths; `off`: paired calls whose
    times differ by more than the tolerance."""

    checks: list[CallCheck]
    unpaired: list[str]
    misnamed: list[CallCheck]
    off: list[CallCheck]

    @property
    def ok(self) -> bool:
        return not (self.unpaired or self.misnamed or self.off)


class CrossCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Every pass of each side: `timer[r]` and `profiler[r]` are round r's, in the order they ran (alternating)."""

    timer: list[Pass]
    profiler: list[Pass]

    def compare(self, share: float, floor_ms: float) -> CallReport:
        """Pairs the calls of each step by their place and path, and compares each paired call's time (the median
        of its rounds on each side): off when it differs by more than `share` of the profiler's time plus
        `floor_ms` (the tracer's cost per call)."""
        unpaired: list[str] = []
        timer, profiler = _medians(self.timer, "timer", unpaired), _medians(self.profiler, "profiler", unpaired)
        if len(timer) != len(profiler):
            unpaired.append(f"the timer ran {len(timer)} steps a pass, the profiler saw {len(profiler)}")
        checks: list[CallCheck] = []
        for step, (ours, theirs) in enumerate(zip(timer, profiler)):
            if len(ours) != len(theirs):
                unpaired.append(f"step {step}: the timer timed {len(ours)} calls, the profiler saw {len(theirs)}")
            checks += [CallCheck(step=step, index=i, timer_path=a[0], profiler_path=b[0], timer_ms=a[1] / 1e6,
                                 profiler_ms=b[1] / 1e6) for i, (a, b) in enumerate(zip(ours, theirs))]
        return CallReport(checks=checks, unpaired=unpaired, misnamed=[c for c in checks if not c.paired],
                          off=[c for c in checks if c.paired and not c.within(share, floor_ms)])

    def leaves(self) -> dict[str, list[LeafCheck]]:
        """Per phase, each leaf (a path no other path is called from) with its ms per step on each side: the mean
        over the rounds and the phase's steps of its calls' summed time."""
        def per_step(passes: list[Pass]) -> dict[str, dict[str, float]]:
            sums: dict[str, dict[str, list[int]]] = {"prefill": defaultdict(list), "decode": defaultdict(list)}
            for one in passes:
                for number, step in enumerate(one):
                    phase = "prefill" if number == 0 else "decode"
                    summed: dict[str, int] = defaultdict(int)
                    for call in step:
                        summed[call.path] += call.ns
                    for path, ns in summed.items():
                        sums[phase][path].append(ns)
            return {phase: {p: statistics.fmean(v) / 1e6 for p, v in paths.items()} for phase, paths in sums.items()}

        timer, profiler = per_step(self.timer), per_step(self.profiler)
        paths = list(dict.fromkeys(c.path for c in self.timer[0][0]))
        leaves = [p for p in paths if not any(q.startswith(p + ".") for q in paths)]
        return {phase: [LeafCheck(path=p, timer_ms=timer[phase][p], profiler_ms=profiler[phase][p])
                        for p in leaves if p in timer[phase] and p in profiler[phase]]
                for phase in ("prefill", "decode")}


def _medians(passes: list[Pass], side: str, unpaired: list[str]) -> list[list[tuple[str, float]]]:
    """Per step, each call's path (the first round's) and its median time over the rounds; a round naming a call
    otherwise, or holding another number of steps or calls, is reported."""
    first = passes[0]
    steps = []
    for number, step in enumerate(first):
        calls = []
        for index, call in enumerate(step):
            times = []
            for round_, other in enumerate(passes):
                if number >= len(other) or index >= len(other[number]):
                    continue
                if other[number][index].path != call.path:
                    unpaired.append(f"{side} round {round_}, step {number}, call {index}: "
                                    f"{other[number][index].path}, not {call.path}")
                times.append(other[number][index].ns)
            calls.append((call.path, statistics.median(times)))
        steps.append(calls)
    for round_, other in enumerate(passes[1:], 1):
        if [len(s) for s in other] != [len(s) for s in first]:
            unpaired.append(f"{side} round {round_}: {[len(s) for s in other]} calls a step, not "
                            f"{[len(s) for s in first]}")
    return steps


# -- the timer's side ----------------------------------------------------------------------------------------------

def calls_of_log(log: list, root: str) -> Step:
    """A timer's flat log (on entry a key then a stamp; on return a stamp: profiling/steps.py) as its calls inside
    `root`'s call, in the order they were entered, each with its own time. Keys as fold_log reads them."""
    calls: list[list] = []  # [path, start, end or None, the outermost call's path], in entry order
    stack: list[int] = []  # indices into calls of the open ones
    items = iter(log)
    for item in items:
        if type(item) is str or type(item) is Relative:
            parent = calls[stack[-1]][0] if stack else None
            path = item if type(item) is str else (f"{parent}.{item.name}" if parent else item.name)
            outermost = calls[stack[0]][0] if stack else path
            stack.append(len(calls))
            calls.append([path, next(items), None, outermost])
        elif stack:
            calls[stack.pop()][2] = item
    # Calls still open when the step ended are not counted (as fold_log); nor calls outside `root`'s.
    return [Call(path, end - start) for path, start, end, outermost in calls if end is not None and outermost == root]


def keep_calls(timer, root: str) -> list[Step]:
    """Makes an events-mode CPU timer keep every step's calls (inside `root`) before it folds them into sums; the
    list it returns fills as steps end."""
    steps: list[Step] = []
    end_step = timer.end_step

    def keeping() -> None:
        if timer._tag is not None:
            steps.append(calls_of_log(list(timer._log), root))
        end_step()

    timer.end_step = keeping
    return steps


# -- the profiler's side -------------------------------------------------------------------------------------------

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


def profiled_calls(step, names: Mapping[int, str], shared: set[int], functions: Mapping[str, str]) -> Step:
    """One profiled step's calls in the order they were entered. A module event is named by the object it called:
    `names[id(module)]` (a module several parents share, by its own name under the call it ran in, as the timer
    names it); a wrapped function by its name under the module it ran in (the outermost call only: a cache's update
    calls its layers' update). `functions`: a function's own name -> the name tuibench wraps it under."""
    out: Step = []

    def visit(node, owner: str | None) -> None:
        path = None
        if node.name.startswith(_MODULE):
            module = node.extra_fields.module
            pointer = module.self_ptr if module is not None else None
            if pointer not in names:
                path = f"{owner}.?{node.name[len(_MODULE):]}"  # an object the timer does not know: never pairs
            elif pointer in shared:
                path = f"{owner}.{names[pointer].rsplit('.', 1)[-1]}"
            else:
                path = names[pointer]
        elif owner is not None and (name := functions.get(_function_name(node.name))) is not None:
            out.append(Call(f"{owner}.{name}", node.duration_time_ns))
            return
        if path is not None:
            out.append(Call(path, node.duration_time_ns))
            owner = path
        for child in sorted(node.children, key=lambda n: n.start_time_ns):
            visit(child, owner)

    visit(step, None)
    return out


def module_names(model, prefix: str) -> tuple[dict[int, str], set[int]]:
    """Each module object's path (its first name under `prefix`, as the timer names it) and the objects several
    parents share."""
    seen: dict[int, list[str]] = defaultdict(list)
    for name, module in model.named_modules(remove_duplicate=False):
        seen[id(module)].append(".".join(p for p in (prefix, name) if p))
    return {pointer: paths[0] for pointer, paths in seen.items()}, {p for p, paths in seen.items() if len(paths) > 1}


def _profiled_pass(run: Callable[[], object], model_class: str, names, shared, functions) -> Pass:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        run()
    roots = prof.profiler.kineto_results.experimental_event_tree()
    found = [profiled_calls(step, names, shared, functions) for step in step_events(roots, model_class)]
    del prof
    return found


# -- the two engines -----------------------------------------------------------------------------------------------

def cross_check(model, input_ids, decode_steps: int, rounds: int) -> CrossCheck:
    """Every call the timer times inside the forward (modules, wrapped functions), per step, from the timer and from
    torch.profiler, over `rounds` alternating passes of each. transformers."""
    from tuibench.profiling.hf_profile import instrument, run_steps

    run_steps(model, input_ids, decode_steps)  # warm-up
    root = type(model).__name__
    names, shared = module_names(model, root)
    attn = model.config._attn_implementation
    functions = {"apply_rotary_pos_emb": "rope", "update": "kv_write",
                 "eager_attention_forward" if attn == "eager" else _attention_function(attn): "attn_core"}
    timed, profiled = [], []
    for _ in range(rounds):
        timer, patched = instrument(model)
        steps = keep_calls(timer, root)
        try:
            run_steps(model, input_ids, decode_steps, timer)
        finally:
            patched.restore()
            timer.detach()
        timed.append(steps)
        profiled.append(_profiled_pass(lambda: run_steps(model, input_ids, decode_steps), root, names, shared,
                                       functions))
    return CrossCheck(timer=timed, profiler=profiled)


def cross_check_vllm(llm, *, batch: int, length: int, decode_steps: int, rounds: int, token_ids: Sequence[int],
                     seed: int = 0) -> CrossCheck:
    """The same for vLLM's in-process engine, whole engine steps (scheduler, sampling) around each forward.

    The profiler's step is the model's forward; the logits processor (the LM head) runs after it, called by the
    runner, so it is left out of both sides. vLLM wraps no function: every call is a module's.
    """
    import random

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
    names, shared = module_names(model, root)
    timed, profiled = [], []
    for _ in range(rounds):
        timer = ModuleTimer()
        steps = keep_calls(timer, root)
        handle = watch_steps(model, batch, timer.begin_step)
        timer.attach(model, prefix=root)
        try:
            with timer.recording():
                generate()
        finally:
            handle.remove()
            timer.detach()
        timed.append(steps)  # the model's forward only: the logits processor is a call of its own, after it
        profiled.append(_profiled_pass(generate, root, names, shared, {}))
    return CrossCheck(timer=timed, profiler=profiled)


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

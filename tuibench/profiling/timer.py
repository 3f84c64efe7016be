"""Times every module call of a forward pass and chosen functions inside it (wrappers).

On CPU each call is stamped with perf_counter_ns on entry and exit. On CUDA each is a pair of CUDA
events recorded on the stream: no synchronisation per module, one at the end of the step, when the
pairs are read. Calls nest (a module's entry comes before its children's), so a stack gives each
timed function the module it ran in, and its path: "model.layers.3.self_attn" + ".attn_core".

A step is one forward pass. Its totals are per path: summed time and call count.

The hot path does the least it can: it runs around every module call, ~500 per decode step of a
30-layer model. A call appends its key (a path, or a name under its caller, both made at install
time) and a stamp to a flat log; its return appends a stamp. Nesting, paths and sums are worked out
from the log when the step ends. Per timed call that is one Python frame, five C calls (two clock
reads, three appends) and 33 bytecodes more than a bare call; forward hooks with the bookkeeping
done per call cost 8.4 frames, 8.3 C calls and 234 bytecodes (counted over a SmolLM2 decode step).

In trace mode (`--timer trace`) the same wrappers open and close a torch.profiler range instead (a C++ call each
way, no clock read, no synchronisation), the steps run under the profiler, and the ranges' times are read back
from its trace (profiling/trace.py): on CUDA the device time of the kernels each range launched, attributed by
the trace's launch correlation, so no module waits for the GPU.

A module is timed by wrapping its `forward` (an instance attribute, removed on detach), not with
forward hooks: a module with any hook leaves `Module._call_impl`'s fast path for one that costs
more than the timing itself (a closure, a set and two hook loops per call: 1.5-1.7 µs of the old
3.2-4.0 µs per timed call, micro-benchmarked on a 2-core VM). A module whose class has its own
`__call__` keeps hooks, which fire exactly when they did: that `__call__` may reach `forward`
without going through `Module.__call__` (vLLM's compile decorator calls `self.forward` directly),
unless it is known to hand every call to `Module.__call__` (transformers' decoder layers).
"""

import contextlib
import functools
import os
import tempfile
import time

import msgspec

from tuibench.core.module_profile import TimerMode
from tuibench.profiling.steps import STEP_RANGE, Relative, StepTimes, elapsed_ns, fold_log, range_name
from tuibench.profiling.trace import read_trace, steps_from_trace

# Classes' own `__call__`s that hand every call to `Module.__call__`, hence to `forward`: transformers' decoder layers
# (they only change the arguments, under gradient checkpointing in training).
_PASSES_CALLS_ON = {("transformers.modeling_layers", "GradientCheckpointingLayer.__call__")}


class ModuleTimer:
    """Times modules per step. `mode` "events": a stamp per call (perf_counter_ns, or a CUDA event pair).
    "trace": a torch.profiler range per call, no stamp and no synchronisation; `recording()` runs the profiler and
    reads each range's time back from its trace (a module's CPU time, or on CUDA the device time of the kernels it
    launched)."""

    def __init__(self, cuda: bool = False, mode: TimerMode = "events"):
        self._cuda = cuda
        self.mode = mode
        self._walls: list[int] = []  # trace mode: each ended step's wall, in order
        self._step_range = None
        self._root: str | None = None  # the attached model's path: trace mode reads no one else's ranges
        if mode == "trace":
            import torch

            self._enter = torch.ops.profiler._record_function_enter_new
            self._exit = torch.ops.profiler._record_function_exit._RecordFunction
            self._synchronize = torch.cuda.synchronize
        if cuda:
            import torch

            event = functools.partial(torch.cuda.Event, enable_timing=True)

            def stamp():
                recorded = event()
                recorded.record()
                return recorded

            self._stamp = stamp
            self._synchronize = torch.cuda.synchronize
        else:
            self._stamp = time.perf_counter_ns
        # The step under way, in call order: on entry a key (str: a path; Relative: a name under the caller)
        # then a stamp; on return a stamp. Keys are never stamps, so the log reads back unambiguously.
        # Cleared, never replaced: the hooks hold its append.
        self._log: list = []
        self._append = self._log.append
        self._handles: list = []
        self._restore: list = []
        self.steps: list[StepTimes] = []
        self._tag: str | None = None
        self._began_ns = 0

    # -- what gets timed -----------------------------------------------------------------------

    def attach(self, root, prefix: str) -> None:
        """Times the root and every submodule, named as in `named_modules` under `prefix`.

        A module shared by several parents (vLLM has one rotary embedding for all layers) is named
        where it is called from, like a wrapped function, so each layer keeps its own share.
        """
        from torch.nn import Module

        self._root = prefix
        seen: dict[int, list[str]] = {}
        for name, module in root.named_modules(remove_duplicate=False):
            seen.setdefault(id(module), []).append(name)
        for name, module in root.named_modules():
            path = ".".join(p for p in (prefix, name) if p)
            key = Relative(path.rsplit(".", 1)[-1]) if len(seen[id(module)]) > 1 else path
            call = type(module).__call__
            where = (getattr(call, "__module__", None), getattr(call, "__qualname__", None))
            if call is Module.__call__ or where in _PASSES_CALLS_ON:
                self._wrap_forward(module, key)
            else:
                self._hook(module, key)

    def wrap(self, name: str, fn):
        """`fn`, timed under `<the module it is called from>.<name>`."""
        return self._timed(Relative(name), fn)

    def patch(self, owner, attribute: str, name: str) -> None:
        """Replaces `owner.attribute` by its timed wrapper until `detach`."""
        original = getattr(owner, attribute)
        had_own = attribute in vars(owner) if hasattr(owner, "__dict__") else True
        setattr(owner, attribute, self.wrap(name, original))
        self._restore.append((owner, attribute, original, had_own))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for owner, attribute, original, had_own in reversed(self._restore):
            if had_own:
                setattr(owner, attribute, original)
            else:
                delattr(owner, attribute)  # it was the class's method; drop the instance override
        self._restore.clear()

    def _wrap_forward(self, module, key) -> None:
        had_own = "forward" in vars(module)
        original = module.forward
        module.forward = self._timed(key, original)
        self._restore.append((module, "forward", original, had_own))

    def _hook(self, module, key) -> None:
        if self.mode == "trace":
            return self._hook_range(module, key)
        append, stamp = self._append, self._stamp

        def enter(module, args) -> None:
            append(key)
            append(stamp())

        def leave(module, args, output) -> None:
            append(stamp())

        self._handles.append(module.register_forward_pre_hook(enter))
        self._handles.append(module.register_forward_hook(leave))

    def _hook_range(self, module, key) -> None:
        enter, leave_range, name, open_ranges = self._enter, self._exit, range_name(key), []

        def enter_hook(module, args) -> None:
            open_ranges.append(enter(name, None))

        def leave_hook(module, args, output) -> None:
            leave_range(open_ranges.pop())

        self._handles.append(module.register_forward_pre_hook(enter_hook))
        self._handles.append(module.register_forward_hook(leave_hook))

    # -- the hot path: keep it lean, it runs around every module call ---------------------------

    def _timed(self, key, fn):
        if self.mode == "trace":
            return self._ranged(key, fn)
        append, stamp = self._append, self._stamp

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            append(key)
            append(stamp())
            try:
                return fn(*args, **kwargs)
            finally:
                append(stamp())

        return timed

    def _ranged(self, key, fn):
        enter, leave, name = self._enter, self._exit, range_name(key)

        @functools.wraps(fn)
        def ranged(*args, **kwargs):
            handle = enter(name, None)
            try:
                return fn(*args, **kwargs)
            finally:
                leave(handle)

        return ranged

    # -- steps -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self):
        """Where the timed steps run. Events mode: ends the last step on leaving. Trace mode: runs torch.profiler
        around them and, on leaving, reads the steps' module times back from its trace."""
        if self.mode != "trace":
            try:
                yield self
            finally:
                self.end_step()
            return
        import torch.profiler
        from torch.profiler import ProfilerActivity

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self._cuda else [])
        self._walls.clear()
        with torch.profiler.profile(activities=activities) as profiler:
            try:
                yield self
            finally:
                self.end_step()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "trace.json")
            profiler.export_chrome_trace(path)
            steps = steps_from_trace(read_trace(path), cuda=self._cuda, root=self._root)
        if len(steps) != len(self._walls):
            raise RuntimeError(f"the trace holds {len(steps)} steps, the timer ran {len(self._walls)}")
        self.steps += [msgspec.structs.replace(step, wall_ns=wall) for step, wall in zip(steps, self._walls)]

    def begin_step(self, tag: str) -> None:
        """Closes the step under way (if any) and starts one. vLLM calls this from the model's pre-hook."""
        self.end_step()
        self._log.clear()  # whatever ran outside a step (a warm-up) is not counted
        self._tag = tag
        if self.mode == "trace":
            self._step_range = self._enter(STEP_RANGE + tag, None)
        self._began_ns = time.perf_counter_ns()

    def end_step(self) -> None:
        if self._tag is None:
            return
        if self.mode == "trace":
            if self._cuda:
                self._synchronize()  # the wall holds the step's kernels; the modules' times come from the trace
            self._walls.append(time.perf_counter_ns() - self._began_ns)
            self._exit(self._step_range)
            self._tag = self._step_range = None
            return
        if self._cuda:
            self._synchronize()  # the step's kernels are done: its wall holds them, its events can be read
            elapsed = _elapsed_cuda
        else:
            elapsed = elapsed_ns
        wall_ns = time.perf_counter_ns() - self._began_ns
        self.steps.append(fold_log(self._tag, self._log, elapsed, wall_ns))
        self._tag = None
        self._log.clear()


def _elapsed_cuda(start, end) -> int:
    return int(start.elapsed_time(end) * 1e6)

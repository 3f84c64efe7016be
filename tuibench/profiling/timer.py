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

A module is timed by wrapping its `forward` (an instance attribute, removed on detach), not with
forward hooks: a module with any hook leaves `Module._call_impl`'s fast path for one that costs
more than the timing itself (a closure, a set and two hook loops per call: 1.5-1.7 µs of the old
3.2-4.0 µs per timed call, micro-benchmarked on a 2-core VM). A module whose class has its own
`__call__` keeps hooks, which fire exactly when they did: that `__call__` may reach `forward`
without going through `Module.__call__` (vLLM's compile decorator calls `self.forward` directly),
unless it is known to hand every call to `Module.__call__` (transformers' decoder layers).
"""

import functools
import time
from collections import defaultdict

import msgspec


class StepTimes(msgspec.Struct, frozen=True):
    tag: str  # "prefill" or "decode"
    ns: dict[str, int]  # path -> summed time in the step
    calls: dict[str, int]
    order: list[str]  # paths in the order first entered: the model's execution order
    parents: dict[str, str | None]  # the path each was called from (None: outermost)
    total_ns: int  # summed time of the outermost calls


# Classes' own `__call__`s that hand every call to `Module.__call__`, hence to `forward`: transformers' decoder layers
# (they only change the arguments, under gradient checkpointing in training).
_PASSES_CALLS_ON = {("transformers.modeling_layers", "GradientCheckpointingLayer.__call__")}


class _Relative:
    """The key of a call named where it is called from: `<the innermost open call's path>.<name>`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class ModuleTimer:
    def __init__(self, cuda: bool = False):
        self._cuda = cuda
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
        # The step under way, in call order: on entry a key (str: a path; _Relative: a name under the caller)
        # then a stamp; on return a stamp. Keys are never stamps, so the log reads back unambiguously.
        # Cleared, never replaced: the hooks hold its append.
        self._log: list = []
        self._append = self._log.append
        self._handles: list = []
        self._restore: list = []
        self.steps: list[StepTimes] = []
        self._tag: str | None = None

    # -- what gets timed -----------------------------------------------------------------------

    def attach(self, root, prefix: str) -> None:
        """Times the root and every submodule, named as in `named_modules` under `prefix`.

        A module shared by several parents (vLLM has one rotary embedding for all layers) is named
        where it is called from, like a wrapped function, so each layer keeps its own share.
        """
        from torch.nn import Module

        seen: dict[int, list[str]] = {}
        for name, module in root.named_modules(remove_duplicate=False):
            seen.setdefault(id(module), []).append(name)
        for name, module in root.named_modules():
            path = ".".join(p for p in (prefix, name) if p)
            key = _Relative(path.rsplit(".", 1)[-1]) if len(seen[id(module)]) > 1 else path
            call = type(module).__call__
            where = (getattr(call, "__module__", None), getattr(call, "__qualname__", None))
            if call is Module.__call__ or where in _PASSES_CALLS_ON:
                self._wrap_forward(module, key)
            else:
                self._hook(module, key)

    def wrap(self, name: str, fn):
        """`fn`, timed under `<the module it is called from>.<name>`."""
        return self._timed(_Relative(name), fn)

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
        append, stamp = self._append, self._stamp

        def enter(module, args) -> None:
            append(key)
            append(stamp())

        def leave(module, args, output) -> None:
            append(stamp())

        self._handles.append(module.register_forward_pre_hook(enter))
        self._handles.append(module.register_forward_hook(leave))

    # -- the hot path: keep it lean, it runs around every module call ---------------------------

    def _timed(self, key, fn):
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

    # -- steps -----------------------------------------------------------------------------------

    def begin_step(self, tag: str) -> None:
        """Closes the step under way (if any) and starts one. vLLM calls this from the model's pre-hook."""
        self.end_step()
        self._log.clear()  # whatever ran outside a step (a warm-up) is not counted
        self._tag = tag

    def discard(self) -> None:
        """Forgets every step so far, and the one under way (a warm-up's)."""
        self._tag = None
        self._log.clear()
        self.steps.clear()

    def end_step(self) -> None:
        if self._tag is None:
            return
        if self._cuda:
            self._synchronize()
            elapsed = _elapsed_cuda
        else:
            elapsed = _elapsed_ns
        ns: defaultdict[str, int] = defaultdict(int)
        calls: defaultdict[str, int] = defaultdict(int)
        order: dict[str, str | None] = {}  # path -> the path it was first called from
        stack: list[tuple[str, object]] = []
        total_ns = 0
        items = iter(self._log)
        for item in items:
            if type(item) is str or type(item) is _Relative:  # a call: its key, then its start
                parent = stack[-1][0] if stack else None
                if type(item) is str:
                    path = item
                else:
                    path = f"{parent}.{item.name}" if parent else item.name
                order.setdefault(path, parent)
                stack.append((path, next(items)))
            elif stack:  # the innermost open call returned (one opened before the step began is not counted)
                path, start = stack.pop()
                took = elapsed(start, item)
                ns[path] += took
                calls[path] += 1
                if not stack:
                    total_ns += took
        # Calls still open (the step was closed from inside one) are not counted.
        self.steps.append(StepTimes(tag=self._tag, ns=dict(ns), calls=dict(calls), order=list(order),
                                    parents=order, total_ns=total_ns))
        self._tag = None
        self._log.clear()


def _elapsed_ns(start: int, end: int) -> int:
    return end - start


def _elapsed_cuda(start, end) -> int:
    return int(start.elapsed_time(end) * 1e6)

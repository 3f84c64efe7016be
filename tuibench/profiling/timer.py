"""Times every module call of a forward pass (forward hooks) and chosen functions inside it (wrappers).

On CPU each call is stamped with perf_counter_ns on entry and exit. On CUDA each is a pair of CUDA
events recorded on the stream: no synchronisation per module, one at the end of the step, when the
pairs are read. Calls nest (a module's pre-hook runs before its children's), so a stack gives each
timed function the module it ran in, and its path: "model.layers.3.self_attn" + ".attn_core".

A step is one forward pass. Its totals are per path: summed time and call count.
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


class ModuleTimer:
    def __init__(self, cuda: bool = False):
        self._cuda = cuda
        if cuda:
            import torch

            self._event = functools.partial(torch.cuda.Event, enable_timing=True)
            self._synchronize = torch.cuda.synchronize
        self._handles: list = []
        self._restore: list = []
        self.steps: list[StepTimes] = []
        self._tag: str | None = None
        self._reset()

    # -- what gets timed -----------------------------------------------------------------------

    def attach(self, root, prefix: str) -> None:
        """Hooks the root and every submodule, named as in `named_modules` under `prefix`.

        A module shared by several parents (vLLM has one rotary embedding for all layers) is named
        where it is called from, like a wrapped function, so each layer keeps its own share.
        """
        seen: dict[int, list[str]] = {}
        for name, module in root.named_modules(remove_duplicate=False):
            seen.setdefault(id(module), []).append(name)
        for name, module in root.named_modules():
            path = ".".join(p for p in (prefix, name) if p)
            if len(seen[id(module)]) > 1:
                pre = functools.partial(self._pre_hook_shared, path.rsplit(".", 1)[-1])
            else:
                pre = functools.partial(self._pre_hook, path)
            self._handles.append(module.register_forward_pre_hook(pre))
            self._handles.append(module.register_forward_hook(self._post_hook))

    def wrap(self, name: str, fn):
        """`fn`, timed under `<the module it is called from>.<name>`."""
        enter, leave = self._enter_function, self._leave

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                leave()

        return timed

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

    # -- steps -----------------------------------------------------------------------------------

    def begin_step(self, tag: str) -> None:
        """Closes the step under way (if any) and starts one. vLLM calls this from the model's pre-hook."""
        self.end_step()
        self._reset()  # whatever ran outside a step (a warm-up) is not counted
        self._tag = tag

    def discard(self) -> None:
        """Forgets every step so far, and the one under way (a warm-up's)."""
        self._tag = None
        self._reset()
        self.steps.clear()

    def end_step(self) -> None:
        if self._tag is None:
            return
        if self._cuda:
            self._synchronize()
            for path, start, end, outermost in self._pending:
                self._add(path, int(start.elapsed_time(end) * 1e6), outermost)
        self.steps.append(StepTimes(tag=self._tag, ns=dict(self._ns), calls=dict(self._calls),
                                    order=list(self._order), parents=dict(self._order), total_ns=self._total_ns))
        self._tag = None
        self._reset()

    def _reset(self) -> None:
        self._stack: list[tuple[str, object]] = []
        self._pending: list = []
        self._ns: defaultdict[str, int] = defaultdict(int)
        self._calls: defaultdict[str, int] = defaultdict(int)
        self._order: dict[str, str | None] = {}  # path -> the path it was first called from
        self._total_ns = 0

    # -- the hot path: keep it lean, it runs twice per module call -----------------------------

    def _stamp(self):
        if self._cuda:
            event = self._event()
            event.record()
            return event
        return time.perf_counter_ns()

    def _pre_hook(self, path: str, module, args) -> None:
        stack = self._stack
        self._order.setdefault(path, stack[-1][0] if stack else None)
        stack.append((path, self._stamp()))

    def _pre_hook_shared(self, name: str, module, args) -> None:
        self._enter_function(name)

    def _post_hook(self, module, args, output) -> None:
        self._leave()

    def _enter_function(self, name: str) -> None:
        stack = self._stack
        parent = stack[-1][0] if stack else None
        path = f"{parent}.{name}" if parent else name
        self._order.setdefault(path, parent)
        stack.append((path, self._stamp()))

    def _leave(self) -> None:
        end = self._stamp()
        path, start = self._stack.pop()
        self._calls[path] += 1
        if self._cuda:
            self._pending.append((path, start, end, not self._stack))
        else:
            self._add(path, end - start, not self._stack)

    def _add(self, path: str, ns: int, outermost: bool) -> None:
        self._ns[path] += ns
        if outermost:
            self._total_ns += ns

"""What the module timer costs per call, counted rather than timed: Python frames and C calls per timed module call,
the same at the 50th step as at the first; torch's hook-free fast path kept; nothing held once a step is read."""

import sys
import tracemalloc
from collections import Counter

import torch

from tuibench.profiling import timer as timer_module
from tuibench.profiling.timer import ModuleTimer


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.act, self.down = torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(_Block(), _Block(), torch.nn.Identity())  # 3 + 2 x 4 = 11 modules


def _events(model, x) -> Counter:
    """Python calls and C calls made by one forward, as sys.setprofile sees them."""
    counts: Counter = Counter()

    def profile(frame, event, arg):
        counts[event] += 1

    sys.setprofile(profile)
    try:
        model(x)
    finally:
        sys.setprofile(None)
    return counts


def test_a_timed_module_call_adds_one_python_call_and_no_more_at_the_50th_step():
    model, x = _model(), torch.ones(2, 4)
    modules = len(list(model.modules()))
    with torch.inference_mode():
        model(x)
        bare = _events(model, x)
        timer = ModuleTimer()
        timer.attach(model, prefix="net")
        # Torch's Module._call_impl skips its hook machinery (a closure, a set and two hook loops a call, more than the
        # timing itself) only for modules without hooks: the timer must leave them that way.
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        timer.begin_step("decode")
        first = _events(model, x)
        for _ in range(48):
            timer.begin_step("decode")
            model(x)
        timer.begin_step("decode")
        fiftieth = _events(model, x)
        timer.end_step()
        timer.detach()
    assert first == fiftieth  # no work that grows with the steps already timed
    # One wrapper frame per module call; in C, two clock reads and three appends to the step's log.
    assert first["call"] - bare["call"] == modules, (bare, first)
    assert first["c_call"] - bare["c_call"] <= 5 * modules, (bare, first)
    assert len(timer.steps) == 50 and all(sum(s.calls.values()) == modules for s in timer.steps)
    assert not any("forward" in vars(m) for m in model.modules())  # the wrappers are gone


def test_the_timer_holds_nothing_per_call_once_a_step_is_read():
    model, x = _model(), torch.ones(2, 4)
    timer = ModuleTimer()
    timer.attach(model, prefix="net")
    only_timer = [tracemalloc.Filter(True, timer_module.__file__)]

    def held_bytes() -> int:
        return sum(s.size for s in tracemalloc.take_snapshot().filter_traces(only_timer).statistics("filename"))

    def run(steps: int) -> None:
        for _ in range(steps):
            timer.begin_step("decode")
            model(x)
        timer.end_step()
        timer.steps.clear()  # the steps are the timer's output: what is left besides them must not grow

    with torch.inference_mode():
        run(3)
        tracemalloc.start()
        try:
            run(20)  # enough for CPython's free lists (dicts' among them) to be full: what they keep stays put
            before = held_bytes()
            timer.begin_step("decode")
            for _ in range(100):  # 1,100 calls in one step: the log holds a key and two stamps per call, no more
                model(x)
            during = held_bytes() - before
            run(50)
            after = held_bytes()
        finally:
            tracemalloc.stop()
    timer.detach()
    print(f"held during a step: {during / 1100:.0f} B per call; after 50 more steps: {after - before:+d} B")
    assert during <= 1100 * 150, during
    assert after - before <= 1024, (before, after)


class _CallsForwardItself(torch.nn.Module):
    """Reaches forward without Module.__call__, as vLLM's compile decorator does: hooks there never fired."""

    def __init__(self):
        super().__init__()
        self.inner = torch.nn.ReLU()

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return self.inner(x)


def test_a_class_with_its_own_call_keeps_hooks_so_the_same_calls_are_timed():
    model = torch.nn.Sequential(_CallsForwardItself())
    timer = ModuleTimer()
    timer.attach(model, prefix="net")
    assert model[0]._forward_pre_hooks and "forward" not in vars(model[0])
    timer.begin_step("prefill")
    model(torch.ones(2))
    timer.end_step()
    timer.detach()
    step = timer.steps[0]
    assert step.order == ["net", "net.0.inner"] and step.parents["net.0.inner"] == "net"
    assert not model[0]._forward_pre_hooks and not model[0]._forward_hooks


def test_a_forward_that_raises_leaves_the_next_step_whole():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    timer = ModuleTimer()
    timer.attach(model, prefix="net")
    timer.begin_step("prefill")
    try:
        model(torch.ones(2, 3))  # wrong width: the Linear raises
    except RuntimeError:
        pass
    timer.begin_step("decode")
    model(torch.ones(2, 4))
    timer.end_step()
    timer.detach()
    decode = timer.steps[1]  # the step that raised is whatever it is: its forward never finished
    assert decode.calls == {"net": 1, "net.0": 1, "net.1": 1} and decode.parents["net.1"] == "net"
    assert decode.total_ns == decode.ns["net"] >= decode.ns["net.0"] + decode.ns["net.1"]

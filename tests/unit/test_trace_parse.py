"""The trace timer's parser: profiler ranges back into per-path step times. On CPU from a real torch.profiler trace
of a tiny model; on CUDA from a hand-made trace (tests/data/cuda_trace.json) whose answer is worked out below."""

import json
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from tuibench.profiling.steps import STEP_RANGE as STEP
from tuibench.profiling.trace import read_trace, steps_from_trace, unmatched_device_events

FIXTURES = Path(__file__).resolve().parents[1] / "data"

_enter = torch.ops.profiler._record_function_enter_new
_exit = torch.ops.profiler._record_function_exit._RecordFunction


def _ranged(name: str, fn):
    """`fn` inside a profiler range named `name`, as the trace timer emits them."""

    def ranged(*args, **kwargs):
        handle = _enter(name, None)
        try:
            return fn(*args, **kwargs)
        finally:
            _exit(handle)

    return ranged


class _Act(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fn = torch.nn.functional.gelu

    def forward(self, x):
        return self.fn(self.fn(x))  # the function twice: two calls of one path


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.act, self.down = torch.nn.Linear(16, 64), _Act(), torch.nn.Linear(64, 16)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


def _spans(trace: dict, name: str) -> list[int]:
    """Durations (ns) of the CPU ranges named `name`, in the order they start."""
    events = sorted((e for e in trace["traceEvents"] if e.get("cat") == "user_annotation" and e["name"] == name),
                    key=lambda e: e["ts"])
    return [round(e["dur"] * 1000) for e in events]


def test_cpu_trace_of_a_real_profile(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = _Net().eval()
    for name, module in net.named_modules():
        module.forward = _ranged(".".join(p for p in ("Net", name) if p), module.forward)
    net.act.fn = _ranged("@gelu", net.act.fn)
    x = torch.randn(8, 16)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        net(x)  # a warm-up: its ranges lie outside every step
        _ranged("Net.stray", torch.relu)(x)
        for tag in ("prefill", "decode"):
            _ranged(STEP + tag, net)(x)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = read_trace(path)

    steps = steps_from_trace(trace, cuda=False)

    assert [s.tag for s in steps] == ["prefill", "decode"]
    order = ["Net", "Net.up", "Net.act", "Net.act.gelu", "Net.down"]
    parents = {"Net": None, "Net.up": "Net", "Net.act": "Net", "Net.act.gelu": "Net.act", "Net.down": "Net"}
    step_ns = _spans(trace, STEP + "prefill") + _spans(trace, STEP + "decode")
    for i, (step, whole) in enumerate(zip(steps, step_ns, strict=True)):
        assert step.order == order  # "Net.stray" and the warm-up are not counted
        assert step.parents == parents
        assert step.calls == {"Net": 1, "Net.up": 1, "Net.act": 1, "Net.act.gelu": 2, "Net.down": 1}
        assert all(0 < ns <= whole for ns in step.ns.values()), (step.ns, whole)
        assert step.ns["Net"] >= step.ns["Net.up"] + step.ns["Net.act"] + step.ns["Net.down"]
        assert step.ns["Net.act"] >= step.ns["Net.act.gelu"]
        assert step.total_ns == step.ns["Net"]
        # On CPU a path's time is its ranges' own spans, to the ns: the warm-up's "Net" (the first) is skipped.
        assert step.ns["Net"] == _spans(trace, "Net")[1 + i]
        assert step.ns["Net.act.gelu"] == sum(_spans(trace, "@gelu")[2 + 2 * i: 4 + 2 * i])


def test_cuda_trace_times_the_work_each_range_launched():
    trace = json.loads((FIXTURES / "cuda_trace.json").read_text())

    steps = steps_from_trace(trace, cuda=True)

    # The step (CPU 1000-1100 µs) holds M.model (1005-1095), which holds q_proj (1010-1030) and @attn_core (1040-1070).
    # Each range is charged the device time of the work launched (by CPU ts) inside it, whenever that work ran:
    #   q_proj:     kernels launched at 1012 and 1020: 30 + 12 µs                     = 42,000 ns
    #   attn_core:  a kernel launched at 1045 (25 µs) and a memcpy at 1055 (3.5 µs)   = 28,500 ns
    #   M.model:    its children's 42 + 28.5, and a driver-launched kernel at 1080 (7.25 µs) = 77,750 ns
    # Not charged to any range: the warm-up kernel (launched at 910, before the step, though it runs on the device
    # during q_proj), the 100 µs kernel launched at 1097 (in the step, outside M.model), and a 1000 µs kernel whose
    # launch is not in the trace. Attribution by device time would instead give q_proj's first kernel (device
    # 1045-1075) to attn_core and the warm-up kernel to q_proj. The gpu_user_annotation copies (one of them named
    # like a prefill step) and the flow events are ignored.
    assert len(steps) == 1
    (step,) = steps
    q_proj, attn_core = "M.model.layers.0.self_attn.q_proj", "M.model.attn_core"
    assert step.tag == "decode"
    assert step.ns == {"M.model": 77_750, q_proj: 42_000, attn_core: 28_500}
    assert step.calls == {"M.model": 1, q_proj: 1, attn_core: 1}
    assert step.order == ["M.model", q_proj, attn_core]
    assert step.parents == {"M.model": None, q_proj: "M.model", attn_core: "M.model"}
    assert step.total_ns == 77_750
    assert unmatched_device_events(trace) == 1

    # The same trace on the CPU clock: each range's own span.
    (cpu,) = steps_from_trace(trace, cuda=False)
    assert cpu.ns == {"M.model": 90_000, q_proj: 20_000, attn_core: 30_000}


def _range(name, ts, dur, tid=1):
    return {"ph": "X", "cat": "user_annotation", "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": {}}


def test_other_threads_and_foreign_ranges():
    trace = {"traceEvents": [
        _range(STEP + "prefill", 0.0, 100.0),
        _range("Engine.forward", 1.0, 98.0),  # someone else's range around the model
        _range("M", 2.0, 90.0),
        _range("M.a", 2.0, 40.0),  # starts with its parent: the longer encloses it
        _range("M.a", 42.0, 10.0),  # ends where the next starts: siblings, not nested
        _range("M.b", 52.0, 30.0),
        _range("@f", 60.0, 5.0),
        _range("M.c", 10.0, 20.0, tid=2),  # another thread, during the step
        _range("M", 150.0, 10.0),  # after the step
        _range(STEP + "decode", 200.0, 50.0),
        _range("M", 210.0, 5.5),
    ]}

    prefill, decode = steps_from_trace(trace, cuda=False, root="M")

    assert prefill.ns == {"M": 90_000, "M.a": 50_000, "M.b": 30_000, "M.b.f": 5_000}
    assert prefill.calls == {"M": 1, "M.a": 2, "M.b": 1, "M.b.f": 1}
    assert prefill.parents == {"M": None, "M.a": "M", "M.b": "M", "M.b.f": "M.b"}
    assert decode.ns == {"M": 5_500}
    # Without a root the foreign range counts as a module, and the model's parent.
    (unfiltered, _) = steps_from_trace(trace, cuda=False)
    assert unfiltered.parents["M"] == "Engine.forward"
    assert unfiltered.total_ns == 98_000


@pytest.mark.parametrize("cuda", [False, True])
def test_no_steps(cuda):
    trace = json.loads((FIXTURES / "cuda_trace.json").read_text())
    trace["traceEvents"] = [e for e in trace["traceEvents"] if not e.get("name", "").startswith(STEP)]
    assert steps_from_trace(trace, cuda=cuda) == []
    assert steps_from_trace({"traceEvents": []}, cuda=cuda) == []

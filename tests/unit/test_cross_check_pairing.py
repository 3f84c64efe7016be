"""The cross-check's pairing and comparison (profiling/cross_check.py) on scripted calls: exact, no torch."""

from types import SimpleNamespace

from tuibench.profiling.cross_check import Call, CrossCheck, calls_of_log, profiled_calls
from tuibench.profiling.steps import Relative


def test_the_timers_log_reads_back_as_its_calls_in_entry_order_inside_the_root_only():
    log = ["m", 0, "m.a", 1, Relative("rope"), 2, 5, 8, "m.b", 8, 12, 20,  # the model's forward
           "m.head", 20, 26,  # a call of its own after it (vLLM's logits processor)
           "m", 30, "m.a", 31]  # still open when the step ended
    assert calls_of_log(log, "m") == [Call("m", 20), Call("m.a", 7), Call("m.a.rope", 3), Call("m.b", 4)]


def _event(name, ns, start, children=(), pointer=None):
    module = SimpleNamespace(self_ptr=pointer) if pointer is not None else None
    return SimpleNamespace(name=name, duration_time_ns=ns, start_time_ns=start, children=list(children),
                           extra_fields=SimpleNamespace(module=module))


def test_profiler_events_are_named_by_the_object_they_called_not_by_their_class_or_order():
    # Two Linears of one class: named by identity (2 -> up, 1 -> gate), listed by start time whatever the tree's order.
    step = _event("nn.Module: M_0", 100, 0, pointer=9, children=[
        _event("nn.Module: Linear_1", 30, 50, pointer=2),
        _event("nn.Module: Linear_0", 40, 5, pointer=1, children=[
            _event("a/modeling.py(3): apply_rotary_pos_emb", 7, 6, children=[_event("x.py(1): helper", 1, 7)])]),
        _event("nn.Module: ReLU_0", 3, 90, pointer=5)])  # shared: named under the call it ran in
    names = {9: "M", 1: "M.gate", 2: "M.up", 5: "M.block.act"}
    assert profiled_calls(step, names, {5}, {"apply_rotary_pos_emb": "rope"}) == [
        Call("M", 100), Call("M.gate", 40), Call("M.gate.rope", 7), Call("M.up", 30), Call("M.act", 3)]


def test_each_call_is_compared_on_its_own_median_and_a_zero_or_a_swap_is_reported():
    # Three rounds a side; times in ns. Medians: timer a 1_000_000 (the 9 ms round is one preempted pass), b 400_000.
    timer = [[[Call("a", 1_000_000), Call("b", 400_000)]], [[Call("a", 9_000_000), Call("b", 400_000)]],
             [[Call("a", 1_000_000), Call("b", 400_000)]]]
    profiler = [[[Call("a", 1_100_000), Call("b", 420_000)]]] * 3
    report = CrossCheck(timer=timer, profiler=profiler).compare(0.5, 0.05)
    assert report.ok and [(c.timer_ms, c.profiler_ms) for c in report.checks] == [(1.0, 1.1), (0.4, 0.42)]
    zeroed = CrossCheck(timer=[[[Call("a", 1_000_000), Call("b", 0)]]] * 3, profiler=profiler).compare(0.5, 0.05)
    assert [c.timer_path for c in zeroed.off] == ["b"]  # 0.42 ms off, the bound 0.5 * 0.42 + 0.05 = 0.26 ms
    swapped = CrossCheck(timer=[[[Call("b", 1_000_000), Call("a", 400_000)]]] * 3, profiler=profiler)
    report = swapped.compare(0.5, 0.05)
    assert [(c.timer_path, c.profiler_path) for c in report.misnamed] == [("b", "a"), ("a", "b")]
    assert report.off == []  # a misnamed pair is not compared by time


def test_calls_one_side_lacks_or_a_round_naming_a_call_otherwise_are_unpaired():
    profiler = [[[Call("a", 1), Call("b", 1)]]] * 2
    short = CrossCheck(timer=[[[Call("a", 1)]]] * 2, profiler=profiler).compare(0.5, 0.05)
    assert short.unpaired == ["step 0: the timer timed 1 calls, the profiler saw 2"]
    drifting = CrossCheck(timer=[[[Call("a", 1), Call("b", 1)]], [[Call("b", 1), Call("a", 1)]]], profiler=profiler)
    assert drifting.compare(0.5, 0.05).unpaired == ["timer round 1, step 0, call 0: b, not a",
                                                     "timer round 1, step 0, call 1: a, not b"]


def test_leaves_are_per_phase_means_of_each_paths_summed_calls():
    timer = [[[Call("m", 10_000_000), Call("m.x", 2_000_000), Call("m.x", 2_000_000)],
              [Call("m", 4_000_000), Call("m.x", 1_000_000)]]]
    leaves = CrossCheck(timer=timer, profiler=timer).leaves()
    assert [(c.path, c.timer_ms, c.profiler_ms) for c in leaves["prefill"]] == [("m.x", 4.0, 4.0)]
    assert [(c.path, c.timer_ms) for c in leaves["decode"]] == [("m.x", 1.0)]

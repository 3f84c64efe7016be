"""Reads per-module times back from a torch profiler trace: the `--timer trace` mode.

Why: the stamping timer (timer.py) reads a clock, or records a CUDA event, around every module call. The trace mode
leaves timing to the profiler instead: every timed call is a profiler range (record_function), the step runs under
torch.profiler, and the exported Chrome trace holds the ranges and, on CUDA, every kernel, copy and memset with the
CPU call that launched it. The same model can then be read both ways, and the trace opened in Perfetto.

How: the ranges are named by a convention (steps.py), `tuibench.step:<tag>` around a step, a module's (absolute)
path for a module, `@<name>` for a function named under its caller. The ranges inside a step's range, on its thread, are put
back into the flat log ModuleTimer keeps (on entry a key and a start stamp, on return an end stamp: nesting is
containment) and `fold_log` (steps.py) sums it into the same StepTimes the other timers give.

The stamps: on CPU a range's own start and end, in ns. On CUDA a virtual clock, "device ns of the work launched so
far": each device event is matched to its launch (a runtime or driver call on the CPU thread) by correlation id,
and the clock at CPU time t sums the device durations of the work launched before t. A range's time is then the
device time of the work it launched, children's included, with no synchronisation, and work still queued when the
range returns (the usual case) is charged to the range that launched it, not to whichever ran when it executed.
"""

import bisect
import gzip
import itertools
import json
from collections.abc import Mapping

from tuibench.profiling.steps import RELATIVE, STEP_RANGE, Relative, StepTimes, elapsed_ns, fold_log

_LAUNCHES = {"cuda_runtime", "cuda_driver"}  # CPU-side CUDA calls; device work names its launch's correlation id
_DEVICE_WORK = {"kernel", "gpu_memcpy", "gpu_memset"}


def read_trace(path) -> dict:
    """A Chrome trace as `export_chrome_trace` wrote it (gzipped if the name ends in .gz)."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rt") as f:
        return json.load(f)


def steps_from_trace(trace: Mapping, cuda: bool, *, root: str | None = None) -> list[StepTimes]:
    """The steps in a trace, in the order their ranges start, each with its ranges' summed times.

    A range outside every step range (a warm-up), or on another thread than its step's, is left out. With `root`
    (the model's path prefix) so are ranges neither under it nor `@`-named: other code's record_function ranges
    (torch.compile's, an engine's), which would otherwise count as modules and become their parents.
    """
    events = [e for e in trace.get("traceEvents", ()) if e.get("ph") == "X"]
    steps: list[tuple[int, int, str, tuple]] = []  # (start, end, tag, thread)
    others: list[tuple[int, int, str, tuple]] = []  # (start, end, name, thread)
    for e in events:
        if e.get("cat") != "user_annotation":  # gpu_user_annotation: the device's copy of a range
            continue
        name = e["name"]
        start = _ns(e["ts"])
        span = (start, start + _ns(e["dur"]), name, (e.get("pid"), e.get("tid")))
        if name.startswith(STEP_RANGE):
            steps.append((*span[:2], name[len(STEP_RANGE):], span[3]))
        elif root is None or name.startswith(RELATIVE) or name == root or name.startswith(root + "."):
            others.append(span)
    steps.sort(key=lambda s: s[0])

    # Each range to the step whose range contains it: on one thread steps do not overlap, so the last step to start
    # at or before the range is the only candidate.
    by_thread: dict[tuple, list[int]] = {}
    for i, (_, _, _, thread) in enumerate(steps):
        by_thread.setdefault(thread, []).append(i)
    starts = {thread: [steps[i][0] for i in indices] for thread, indices in by_thread.items()}
    members: list[list[tuple[int, int, str]]] = [[] for _ in steps]
    for start, end, name, thread in others:
        k = bisect.bisect_right(starts.get(thread, ()), start) - 1
        if k >= 0:
            i = by_thread[thread][k]
            if end <= steps[i][1]:
                members[i].append((start, end, name))

    clock = _device_clock(events) if cuda else None
    return [_fold(tag, ranges, clock) for (_, _, tag, _), ranges in zip(steps, members)]


def unmatched_device_events(trace: Mapping) -> int:
    """Device events (kernels, copies, memsets) whose launch is not in the trace: `steps_from_trace` counts none."""
    events = [e for e in trace.get("traceEvents", ()) if e.get("ph") == "X"]
    return _device_work(events)[1]


def _fold(tag: str, ranges: list[tuple[int, int, str]], clock) -> StepTimes:
    """One step's ranges, as the flat log ModuleTimer would have kept, folded into its sums."""
    stamp = clock or (lambda t: t)
    log: list = []
    ends: list[int] = []  # the open ranges' ends, innermost last
    # By start; at equal starts the longer first: an enclosing range enters before the one it contains.
    for start, end, name in sorted(ranges, key=lambda r: (r[0], -r[1])):
        while ends and ends[-1] <= start:
            log.append(stamp(ends.pop()))
        log.append(Relative(name[len(RELATIVE):]) if name.startswith(RELATIVE) else name)
        log.append(stamp(start))
        ends.append(end)
    while ends:
        log.append(stamp(ends.pop()))
    return fold_log(tag, log, elapsed_ns)


def _device_clock(events: list[Mapping]):
    """CPU time (ns) -> summed device ns of the work launched before it."""
    work = sorted(_device_work(events)[0])
    launched_at = [t for t, _ in work]
    launched_ns = list(itertools.accumulate((ns for _, ns in work), initial=0))
    return lambda t: launched_ns[bisect.bisect_left(launched_at, t)]


def _device_work(events: list[Mapping]) -> tuple[list[tuple[int, int]], int]:
    """(launch CPU time ns, device ns) per device event whose launch is in the trace; how many others there are."""
    launches: dict[int, int] = {}  # correlation id -> the launch's CPU start
    for e in events:
        if e.get("cat") in _LAUNCHES and "correlation" in e.get("args", {}):
            launches.setdefault(e["args"]["correlation"], _ns(e["ts"]))
    work, unmatched = [], 0
    for e in events:
        if e.get("cat") in _DEVICE_WORK:
            launch = launches.get(e.get("args", {}).get("correlation"))
            if launch is None:
                unmatched += 1
            else:
                work.append((launch, _ns(e["dur"])))
    return work, unmatched


def _ns(us: float) -> int:
    """A trace time (µs, with ns in the decimals) in whole ns."""
    return round(us * 1000)

"""A timed step as both timers give it, and the flat log they fold into it.

Below timer.py and trace.py, which both import it: the stamping timer keeps the log as the calls run, the trace
mode rebuilds the same log from the profiler's ranges, and `fold_log` sums either into StepTimes. The names of the
trace mode's ranges are here too, since the timer writes them and the trace reader parses them.
"""

from collections import defaultdict

import msgspec

STEP_RANGE = "tuibench.step:"  # a step's range in trace mode: "tuibench.step:decode"
RELATIVE = "@"  # a function's range: "@rope" times as "<the enclosing range's path>.rope"


class StepTimes(msgspec.Struct, frozen=True):
    tag: str  # "prefill" or "decode"
    ns: dict[str, int]  # path -> summed time in the step
    calls: dict[str, int]
    order: list[str]  # paths in the order first entered: the model's execution order
    parents: dict[str, str | None]  # the path each was called from (None: outermost)
    total_ns: int  # summed time of the outermost calls
    # The step's wall clock, from its start to the next step's (or its explicit end): the forward and what runs
    # around it (sampling, the scheduler, Python between calls). 0: not measured.
    wall_ns: int = 0


class Relative:
    """The key of a call named where it is called from: `<the innermost open call's path>.<name>`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def range_name(key: str | Relative) -> str:
    """A call's range in trace mode: its path, or "@name" for a name under its caller."""
    return key if type(key) is str else f"{RELATIVE}{key.name}"


def fold_log(tag: str, log: list, elapsed, wall_ns: int = 0) -> StepTimes:
    """One step's flat log (on entry a key then a stamp; on return a stamp) into its per-path sums.

    A key is a path (str) or a name under the innermost open call (Relative); `elapsed(start, end)` turns two
    stamps into nanoseconds. A return with no open call (one opened before the step began) and calls still open
    at the end (the step was closed from inside one) are not counted.
    """
    ns: defaultdict[str, int] = defaultdict(int)
    calls: defaultdict[str, int] = defaultdict(int)
    order: dict[str, str | None] = {}  # path -> the path it was first called from
    stack: list[tuple[str, object]] = []
    total_ns = 0
    items = iter(log)
    for item in items:
        if type(item) is str or type(item) is Relative:  # a call: its key, then its start
            parent = stack[-1][0] if stack else None
            if type(item) is str:
                path = item
            else:
                path = f"{parent}.{item.name}" if parent else item.name
            order.setdefault(path, parent)
            stack.append((path, next(items)))
        elif stack:  # the innermost open call returned
            path, start = stack.pop()
            took = elapsed(start, item)
            ns[path] += took
            calls[path] += 1
            if not stack:
                total_ns += took
    return StepTimes(tag=tag, ns=dict(ns), calls=dict(calls), order=list(order), parents=order, total_ns=total_ns,
                     wall_ns=wall_ns)


def elapsed_ns(start: int, end: int) -> int:
    """Two integer stamps in ns (perf_counter_ns, or the trace's) into the ns between them."""
    return end - start

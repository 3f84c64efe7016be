"""A serving run's steady state: the window between its warm-up and its drain, found by MSER-5.

A run starts on an idle server (no queue: short waits) and ends with one emptying (the last requests meet less
contention), so its whole-run figures mix three regimes. MSER-5 (White, 1997; the truncation rule AIPerf and
simulation practice use) finds where the transient ends: the series in batch means of 5, truncated at the d that
minimises the standard error of what is left, `sum((Z_j - mean)^2) / (m - d)^2` over the m - d batches kept,
searched over the first half only (a minimum past it means no steady state was reached). The warm-up is that
truncation from the front of the series; the drain the same rule from its back, on what the warm-up left.

The series is TTFT in send order: the wait for the first token is where queueing shows first, and it does not grow
with a request's output length as E2EL does.
"""

from collections.abc import Sequence

import msgspec

MSER_BATCH = 5
MIN_BATCHES = 10  # fewer batch means than this (50 requests) cannot tell a transient from noise


class Window(msgspec.Struct, frozen=True):
    warmup: int  # requests sent before it
    drain: int  # requests sent after it


def mser_truncation(values: Sequence[float], batch: int = MSER_BATCH) -> int:
    """How many leading values MSER-`batch` leaves out: a multiple of `batch`, at most half the batches. A trailing
    partial batch takes part in no mean."""
    import numpy as np

    m = len(values) // batch
    if m < 2:
        return 0
    means = np.asarray(values[:m * batch], dtype=np.float64).reshape(m, batch).mean(axis=1)
    # For every d at once: the kept batches' sum and sum of squares, from the back.
    tail_sum = np.cumsum(means[::-1])[::-1]
    tail_squares = np.cumsum((means ** 2)[::-1])[::-1]
    kept = np.arange(m, 0, -1, dtype=np.float64)  # m - d
    squared_deviations = tail_squares - tail_sum ** 2 / kept
    score = squared_deviations / kept ** 2
    return int(np.argmin(score[:m // 2 + 1])) * batch


def steady_window(ttft_ms_by_send: Sequence[float]) -> Window | None:
    """The warm-up and drain of a series in send order; None where it is under MIN_BATCHES batches long."""
    if len(ttft_ms_by_send) < MIN_BATCHES * MSER_BATCH:
        return None
    warmup = mser_truncation(ttft_ms_by_send)
    rest = ttft_ms_by_send[warmup:]
    drain = mser_truncation(rest[::-1]) if len(rest) >= MIN_BATCHES * MSER_BATCH else 0
    return Window(warmup=warmup, drain=drain)

"""The steady window (core/steady.py): MSER-5 finds a warm-up ramp and a drain around a noisy plateau, leaves a
plateau alone, and the run's steady figures are those of the requests inside the window. Seeded series: exact."""

import random

import msgspec
import pytest

from tuibench.core.aggregate import compute_metrics
from tuibench.core.metrics import describe
from tuibench.core.records import RequestRecord
from tuibench.core.steady import mser_truncation, steady_window

RAMP = [10 + 90 * i / 30 for i in range(30)]  # TTFT climbing to the plateau over 30 requests
DRAIN = [100 - 80 * i / 20 for i in range(20)]  # and falling over the last 20


def plateau(seed: int, n: int = 200) -> list[float]:
    rng = random.Random(seed)
    return [100 + rng.gauss(0, 10) for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_the_ramp_and_the_drain_are_cut_and_a_plateau_is_kept(seed):
    window = steady_window(RAMP + plateau(seed) + DRAIN)
    # The ramp's last batch (85-97 ms) is within the plateau's noise, so 25 or 30 of its 30; likewise the drain.
    assert 25 <= window.warmup <= 30 and 15 <= window.drain <= 25
    alone = steady_window(plateau(seed))
    assert alone.warmup + alone.drain <= 40  # noise alone: at least 80 % kept


def test_mser_cuts_in_whole_batches_at_most_half_and_too_short_a_run_has_no_window():
    assert mser_truncation([1000.0] * 5 + [1.0] * 50) == 5
    # A series still climbing at its end: the minimum would be past the middle, the search stops at half.
    assert mser_truncation([float(i) for i in range(100)]) <= 50
    assert steady_window(plateau(0, 49)) is None and steady_window(plateau(0, 50)) is not None


def _records(ttfts: list[float], rate_rps: float = 10.0) -> list[RequestRecord]:
    """Sent every 1/rate s, in order; each E2EL its TTFT plus 15 tokens 10 ms apart."""
    return [RequestRecord(index=i, input_tokens=8, output_tokens=16, target_output_tokens=16, start_s=i / rate_rps,
                          scheduled_s=i / rate_rps, ttft_ms=ttft, e2el_ms=ttft + 150.0, itl_ms=[10.0] * 15)
            for i, ttft in enumerate(ttfts)]


def test_the_steady_figures_are_the_windows_requests_and_a_burst_has_none():
    ttfts = RAMP + plateau(1) + DRAIN
    records = _records(ttfts)
    random.Random(9).shuffle(records)  # they end in any order: the window is in send order
    steady = compute_metrics(records).steady
    window = steady_window(ttfts)
    kept = ttfts[window.warmup:len(ttfts) - window.drain]
    assert (steady.warmup, steady.drain, steady.requests) == (window.warmup, window.drain, len(kept))
    assert steady.ttft_ms == describe(kept) and steady.e2el_ms == describe([t + 150.0 for t in kept])
    assert steady.tpot_ms.mean == pytest.approx(10.0)
    assert steady.start_s == pytest.approx(window.warmup / 10.0)
    last = len(ttfts) - window.drain - 1
    assert steady.last_start_s == pytest.approx(last / 10.0)  # the drain's requests were sent after it
    assert steady.end_s == pytest.approx(last / 10.0 + (ttfts[last] + 150.0) / 1000.0)
    assert steady.output_throughput_tok_s == pytest.approx(16 * len(kept) / (steady.end_s - steady.start_s))
    burst = [msgspec.structs.replace(r, scheduled_s=0.0) for r in records]  # all at once: a burst has no steady state
    assert compute_metrics(burst).steady is None


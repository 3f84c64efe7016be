"""Repeats and noise: Student's t interval of a mean, Welch's test between repeats, the stated assumption for
single runs."""

import pytest

from tuibench.core.stats import ASSUMED_NOISE_PCT, difference, estimate


def test_a_mean_of_repeats_has_the_student_t_interval():
    found = estimate([10.0, 12.0, 14.0])
    # s = 2, t(0.975, 2) = 4.303: half width 4.303 * 2 / sqrt(3) = 4.969
    assert found.n == 3 and found.mean == 12.0
    assert found.low == pytest.approx(12.0 - 4.969, abs=1e-3) and found.high == pytest.approx(12.0 + 4.969, abs=1e-3)
    assert found.half_width_pct == pytest.approx(41.4, abs=0.1)
    single = estimate([5.0])
    assert (single.n, single.low, single.high, single.half_width_pct) == (1, None, None, None)
    assert estimate([]) is None


def test_repeats_differ_when_welch_says_so_and_the_effect_is_not_negligible():
    assert difference([100, 101, 99], [120, 119, 121]).verdict == "higher"
    assert difference([100, 101, 99], [80, 81, 79]).verdict == "lower"
    noisy = difference([100, 110, 90], [104, 96, 108])
    assert noisy.verdict == "within noise" and "Welch" in noisy.method
    # Significant, but 0.5 %: not a difference anyone should act on.
    assert difference([100.0, 100.01, 99.99], [100.5, 100.51, 100.49]).verdict == "within noise"
    assert difference([3, 3], [3, 3]).verdict == "within noise"  # no spread at all, no difference


def test_single_runs_are_judged_against_the_assumed_noise_and_say_so():
    close = difference([100.0], [100.0 + ASSUMED_NOISE_PCT - 1])
    assert close.verdict == "within noise" and "assumed" in close.method
    # Two runs of 5 % variation each, at 95 %, on a log scale: a factor within exp(±1.96·√2·ln 1.05).
    assert ASSUMED_NOISE_PCT == pytest.approx(14.48, abs=0.01)
    far = difference([100.0], [80.0])
    assert far.verdict == "lower" and far.pct == pytest.approx(-20.0) and far.ratio == pytest.approx(0.8)
    assert difference([], [1.0]) is None and difference([0.0], [1.0]) is None


def test_a_figures_own_interval_within_its_run_widens_the_noise_of_single_runs():
    """A p99 of few requests is far less sure than the run-to-run noise: its interval within its run (a factor of
    1.5 either way, a log SE of ln 1.5 / 1.96 = 0.207) makes a 30 % difference within noise; without an interval,
    or with a tight one (±1 %), 30 % is beyond the ±14.5 % of the assumed run-to-run noise."""
    wide_a, wide_b = (100 / 1.5, 100 * 1.5), (130 / 1.5, 130 * 1.5)
    assert difference([100.0], [130.0], wide_a, wide_b).verdict == "within noise"
    assert "own 95 % interval" in difference([100.0], [130.0], wide_a, wide_b).method
    assert difference([100.0], [130.0]).verdict == "higher"
    assert difference([100.0], [130.0], (99.0, 101.0), (128.7, 131.3)).verdict == "higher"
    # The bound it states: 1.96 × sqrt(2 × 0.207² + 2 × ln(1.05)²) = 0.589, a factor of e^0.589: +80.2 %.
    assert "±80.2 % is noise" in difference([100.0], [130.0], wide_a, wide_b).method


def test_a_percentile_its_run_cannot_bound_is_never_called_between_single_runs():
    """A p99 of 64 requests: no order statistic bounds it (the ranks run past the sample), so a 40 % difference in
    it is not told; the p50 of the same runs is bounded and a 40 % difference in it is."""
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.catalogue import BY_KEY
    from tuibench.core.records import RequestRecord
    from tuibench.core.side_by_side import single_interval
    from tuibench.core.store import RunRow
    from tuibench.core.spec import DatasetSpec, RunSpec

    def run(scale: float) -> RunRow:
        records = [RequestRecord(index=i, input_tokens=1, output_tokens=2, target_output_tokens=2, start_s=i,
                                 ttft_ms=scale * (50 + i % 16), e2el_ms=100.0) for i in range(64)]
        return RunRow(id=1, created_at="", updated_at="", status="finished", library="x", model="m", dataset="d",
                      scenario="serving", spec=RunSpec(dataset=DatasetSpec(kind="random", source="random")),
                      environment={}, metrics=compute_metrics(records), error=None)

    a, b = run(1.0), run(1.4)
    p99, p50 = BY_KEY["ttft_p99_ms"], BY_KEY["ttft_p50_ms"]
    told = difference([p99.read(a.metrics)], [p99.read(b.metrics)], single_interval([a], p99), single_interval([b], p99))
    assert told.verdict == "within noise" and "too few requests to bound this percentile" in told.method
    assert difference([p50.read(a.metrics)], [p50.read(b.metrics)], single_interval([a], p50),
                      single_interval([b], p50)).verdict == "higher"


def test_the_order_statistic_interval_covers_a_known_quantile_95_times_in_100():
    """2,000 seeded samples of 200 exponential values: the interval of p50 holds the true median ln 2 in 96.1 % of
    them (95 % asked; the ranks are rounded outward); one of 1,000 values holds the true p99 ln 100 in 98.1 %.
    Seeded: the counts are exact, so any change to the ranks shows."""
    import math
    import random

    from tuibench.core.metrics import quantile_interval

    def coverage(n: int, q: float) -> float:
        rng, true = random.Random(1), -math.log(1 - q / 100)
        bounds = [quantile_interval(sorted(rng.expovariate(1) for _ in range(n)), q) for _ in range(2000)]
        return sum(low <= true <= high for low, high in bounds) / len(bounds)

    assert coverage(200, 50) == pytest.approx(0.961, abs=0.0005)
    assert coverage(1000, 99) == pytest.approx(0.981, abs=0.0005)
    assert quantile_interval(sorted(range(200)), 99) == (194, 199)  # the upper rank past the sample: its largest
    assert quantile_interval(sorted(range(64)), 99) is None  # p99 of 64: past the sample itself
    assert quantile_interval([20.0, 20.0, 20.0, 20.0], 50) == (20.0, 20.0)

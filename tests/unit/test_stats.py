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
    assert ASSUMED_NOISE_PCT == pytest.approx(13.9, abs=0.05)  # two runs of 5 % variation each, at 95 %
    far = difference([100.0], [80.0])
    assert far.verdict == "lower" and far.pct == pytest.approx(-20.0) and far.ratio == pytest.approx(0.8)
    assert difference([], [1.0]) is None and difference([0.0], [1.0]) is None

"""How sure a figure is: the mean of repeated runs with its 95 % confidence interval, and whether two sets of runs
differ by more than their noise.

Repeats: Student's t interval on the repeats' values (each repeat is one run, after its own warm-up), and
Welch's t-test between two sets. Single runs have no noise of their own to measure: they are compared against
an assumed run-to-run noise, and say so.
"""

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

CONFIDENCE = 0.95
Z_95 = 1.959964  # the normal quantile of a two-sided 95 % interval
# Run-to-run noise assumed for single runs, as a coefficient of variation: six runs of one spec (SmolLM2,
# transformers, batch 1, 16 requests, one pinned thread) on this project's 2-core machines spread with CV 4.9 %.
# Two single runs then differ by a factor within exp(±1.96·√2·ln 1.05) (±14.5 %) 95 times in 100. `--repeat N`
# measures it instead.
ASSUMED_CV_PCT = 5.0
RUN_LOG_SD = math.log1p(ASSUMED_CV_PCT / 100.0)  # one run's figure about its true value, on a log scale
ASSUMED_NOISE_PCT = 100.0 * math.expm1(Z_95 * math.sqrt(2.0) * RUN_LOG_SD)
# A difference a test finds but smaller than this is not worth calling: 1 % of throughput is no one's decision.
MIN_EFFECT_PCT = 1.0

Verdict = Literal["within noise", "higher", "lower"]


class Estimate(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    mean: float
    low: float | None  # the 95 % confidence interval; None for a single value
    high: float | None

    @property
    def half_width_pct(self) -> float | None:
        if self.low is None or self.high is None or not self.mean:
            return None
        return 100.0 * (self.high - self.low) / 2 / abs(self.mean)


def estimate(values: Sequence[float]) -> Estimate | None:
    """The mean and Student's t 95 % interval of `values` (None when there are none)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    n, mean = len(values), math.fsum(values) / len(values)
    if n < 2:
        return Estimate(n=1, mean=mean, low=None, high=None)
    from scipy import stats

    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    return Estimate(n=n, mean=mean, low=mean - half, high=mean + half)


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    ratio: float  # b / a, of the means
    verdict: Verdict  # b against a: higher, lower, or not told apart from the noise
    method: str  # how it was judged, in words: the assumption for single runs

    @property
    def pct(self) -> float:
        return 100.0 * (self.ratio - 1.0)


Interval = tuple[float, float]


def log_se(interval: Interval | None) -> float:
    """A 95 % interval of a positive figure as the standard error of its logarithm: 0 where it has none, infinite
    where it is unbounded (a quantile its run's sample cannot bound) or reaches 0."""
    if interval is None:
        return 0.0
    if interval[0] <= 0 or math.isinf(interval[1]):
        return math.inf
    return (math.log(interval[1]) - math.log(interval[0])) / (2 * Z_95)


def difference(a: Sequence[float], b: Sequence[float], a_interval: Interval | None = None,
               b_interval: Interval | None = None) -> Difference | None:
    """`b` against `a`, each a run's value or its repeats' values; None when either has none (or a's mean is 0).

    Single runs: the log ratio against the run-to-run noise assumed (ASSUMED_CV_PCT for each run) and, where a
    figure has one, its own sampling interval within its run (a p99 of 200 requests is far less sure than one of
    20,000). Repeats: Welch's t-test on the runs' values, which holds both."""
    a = [v for v in a if v is not None and math.isfinite(v)]
    b = [v for v in b if v is not None and math.isfinite(v)]
    if not a or not b:
        return None
    mean_a, mean_b = math.fsum(a) / len(a), math.fsum(b) / len(b)
    if mean_a == 0:
        return None
    ratio = mean_b / mean_a
    pct = 100.0 * (ratio - 1.0)
    if len(a) < 2 or len(b) < 2:
        within = math.hypot(log_se(a_interval) if len(a) == 1 else 0.0, log_se(b_interval) if len(b) == 1 else 0.0)
        noise = math.hypot(within, math.sqrt(2.0) * RUN_LOG_SD)
        # A ratio of 0 (a count against none) is beyond any proportional noise.
        beyond = (ratio <= 0 or abs(math.log(ratio)) > Z_95 * noise) and abs(pct) >= MIN_EFFECT_PCT
        runs = f"single run{'s' if len(a) == len(b) == 1 else ''}"
        if math.isinf(within):
            method = f"{runs}: too few requests to bound this percentile within a run, so no difference in it is told"
        else:
            bound_pct = 100.0 * math.expm1(Z_95 * noise)
            sampled = ", and each figure's own 95 % interval within its run" if within else ""
            method = (f"{runs}: {ASSUMED_CV_PCT:g} % run-to-run variation assumed{sampled}, so ±{bound_pct:.1f} % "
                      "is noise")
    else:
        from scipy import stats

        if len(set(a)) == 1 and len(set(b)) == 1:  # no spread at all (counts): any difference is real
            p_value = 0.0 if mean_a != mean_b else 1.0
        else:
            p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        beyond = p_value < 1.0 - CONFIDENCE and abs(pct) >= MIN_EFFECT_PCT
        method = f"Welch's t-test on {len(a)} and {len(b)} repeats, p = {p_value:.3f}"
    verdict: Verdict = "within noise" if not beyond else "higher" if ratio > 1 else "lower"
    return Difference(ratio=ratio, verdict=verdict, method=method)

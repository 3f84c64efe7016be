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
# Run-to-run noise assumed for single runs, as a coefficient of variation: six runs of one spec (SmolLM2,
# transformers, batch 1, 16 requests, one pinned thread) on this project's 2-core machines spread with CV 4.9 %.
# Two single runs then differ by less than 1.96·√2·CV (±13.9 %) 95 times in 100. `--repeat N` measures it instead.
ASSUMED_CV_PCT = 5.0
ASSUMED_NOISE_PCT = 1.96 * math.sqrt(2.0) * ASSUMED_CV_PCT
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


def difference(a: Sequence[float], b: Sequence[float]) -> Difference | None:
    """`b` against `a`, each a run's value or its repeats' values; None when either has none (or a's mean is 0)."""
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
        beyond = abs(pct) > ASSUMED_NOISE_PCT
        method = (f"single run{'s' if len(a) == len(b) == 1 else ''}: {ASSUMED_CV_PCT:g} % run-to-run variation "
                  f"assumed, so ±{ASSUMED_NOISE_PCT:.1f} % is noise")
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

"""The server's own view of a serving run, from the samples of its Prometheus /metrics (pure: no parsing here).

Two kinds of sample are stored with the run: `server` at the telemetry rate (requests running and waiting,
KV-cache use, and the prefix-cache and preemption counters), and `server_hist` twice, when measuring starts and
after the last request, holding the cumulative buckets of the server's TTFT, TPOT, ITL and E2E histograms.
What the run added to each histogram is the difference of the two, and its quantiles are estimated as
Prometheus's histogram_quantile does.
"""

import math
from collections.abc import Sequence

import msgspec

from tuibench.core.events import TelemetrySample

SERVER = "server"
SERVER_HISTOGRAMS = "server_hist"
HISTOGRAMS = ("ttft", "tpot", "itl", "e2el")


def bucket_key(histogram: str, le: float) -> str:
    """How one cumulative bucket is named in a `server_hist` sample: 'ttft_le_0.05', 'ttft_le_inf'."""
    return f"{histogram}_le_{'inf' if math.isinf(le) else repr(float(le))}"


def _buckets(values: dict[str, float | None], histogram: str) -> list[tuple[float, float]]:
    prefix = f"{histogram}_le_"
    return sorted((float(key[len(prefix):]), value or 0.0) for key, value in values.items() if key.startswith(prefix))


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """The q-quantile of a histogram of cumulative (upper bound, count) buckets, +Inf last, as (estimate, low, high):
    the bucket it falls in is [low, high], and the estimate is linear within it (from 0 for the first), its low
    bound if it falls in +Inf. None when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound, lower_bound, bound
            if count == lower_count:
                return bound, lower_bound, bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count), lower_bound, bound
        lower_bound, lower_count = bound, count
    return lower_bound, lower_bound, math.inf


class ServerView(msgspec.Struct, frozen=True, kw_only=True):
    """What the server saw of the measured requests (None where it does not say). Its quantiles come from histogram
    buckets, as coarse as the server made them: each comes with the bucket it lies in."""

    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    tpot_p50_ms: float | None = None
    tpot_p99_ms: float | None = None
    itl_p50_ms: float | None = None
    e2el_p50_ms: float | None = None
    e2el_p99_ms: float | None = None
    requests: int | None = None  # counted in its E2E histogram over the run
    max_running_requests: float | None = None
    max_waiting_requests: float | None = None
    max_kv_cache_used_pct: float | None = None
    prefix_cache_hit_pct: float | None = None  # prompt tokens found in its prefix cache, of those looked up
    preemptions: int | None = None
    spec_acceptance_pct: float | None = None  # speculative decoding: proposed tokens the model accepted
    buckets_ms: dict[str, tuple[float, float]] = {}  # "ttft_p50": the bucket that quantile lies in (high may be inf)


def server_view(telemetry: Sequence[TelemetrySample]) -> ServerView | None:
    """None for a run without server samples (a server without /metrics: not applicable)."""
    gauges = [s.values for s in telemetry if s.source == SERVER]
    snapshots = [s.values for s in telemetry if s.source == SERVER_HISTOGRAMS]
    if not gauges and len(snapshots) < 2:
        return None
    fields: dict[str, object] = {}
    ranges: dict[str, tuple[float, float]] = {}
    if len(snapshots) >= 2:
        first, last = snapshots[0], snapshots[-1]
        for histogram in HISTOGRAMS:
            before = dict(_buckets(first, histogram))
            run = [(bound, count - before.get(bound, 0.0)) for bound, count in _buckets(last, histogram)]
            for q in (50, 99):
                if (name := f"{histogram}_p{q}_ms") in ServerView.__struct_fields__:
                    found = histogram_quantile(q / 100, run)
                    if found is not None:
                        fields[name] = found[0] * 1e3
                        ranges[f"{histogram}_p{q}"] = (found[1] * 1e3, found[2] * 1e3)
            if histogram == "e2el" and run:
                fields["requests"] = round(run[-1][1])

    def peak(key: str) -> float | None:
        return max((v for g in gauges if (v := g.get(key)) is not None), default=None)

    def grew(key: str) -> float | None:
        seen = [v for g in gauges if (v := g.get(key)) is not None]
        return seen[-1] - seen[0] if seen else None

    queries, hits, preempted = grew("prefix_cache_queries_tokens"), grew("prefix_cache_hits_tokens"), grew("preemptions")
    drafted, accepted = grew("spec_draft_tokens"), grew("spec_accepted_tokens")
    return ServerView(
        **fields, buckets_ms=ranges, max_running_requests=peak("running_requests"), max_waiting_requests=peak("waiting_requests"),
        max_kv_cache_used_pct=peak("kv_cache_used_pct"),
        prefix_cache_hit_pct=100.0 * hits / queries if queries and hits is not None else None,
        preemptions=None if preempted is None else round(preempted),
        spec_acceptance_pct=100.0 * accepted / drafted if drafted and accepted is not None else None)

"""What Live draws of a run over time, in bounded memory: each finished request as a point (when it ended, its
output tokens, its TTFT and TPOT), at most MAX_POINTS of them.

A chart is a terminal's width across: a few thousand points say all it can show. When full, each pair of
neighbours (in end order) becomes one: the later end, both requests' tokens (so running throughput stays exact at
every point kept) and the later request's latencies (an even sample of them).
"""

import math

import msgspec

from tuibench.core.metrics import request_end_s
from tuibench.core.records import RequestRecord

MAX_POINTS = 2048


class Point(msgspec.Struct, frozen=True, array_like=True):
    end_s: float
    output_tokens: int
    ttft_ms: float | None
    tpot_ms: float | None


class Timeline:
    def __init__(self, max_points: int = MAX_POINTS):
        self._max = max_points
        self._points: list[Point] = []
        self.origin_s = math.inf  # the first request handed over, failed or not: the charts' zero

    def add(self, record: RequestRecord) -> None:
        self.origin_s = min(self.origin_s, record.start_s)
        if not record.ok:
            return
        self._points.append(Point(request_end_s(record), record.output_tokens, record.ttft_ms, record.tpot_ms))
        if len(self._points) >= self._max:
            points = sorted(self._points, key=lambda p: p.end_s)
            self._points = [Point(b.end_s, a.output_tokens + b.output_tokens, b.ttft_ms, b.tpot_ms)
                            for a, b in zip(points[::2], points[1::2], strict=False)] + points[len(points) // 2 * 2:]

    def throughput(self) -> tuple[list[float], list[float]]:
        """Running output tokens/s at each point, in seconds since the run's first request (so runs of different
        libraries line up on one axis)."""
        xs, ys, tokens = [], [], 0
        for point in sorted(self._points, key=lambda p: p.end_s):
            tokens += point.output_tokens
            if point.end_s > self.origin_s:
                xs.append(point.end_s - self.origin_s)
                ys.append(tokens / (point.end_s - self.origin_s))
        return xs, ys

    def latency(self, field: str) -> tuple[list[float], list[float]]:
        """A latency ("ttft_ms", "tpot_ms") at each point, in seconds since the run's first request."""
        points = sorted((p.end_s - self.origin_s, value) for p in self._points
                        if (value := getattr(p, field)) is not None)
        return [x for x, _ in points], [y for _, y in points]

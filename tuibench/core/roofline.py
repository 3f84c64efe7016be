"""The roofline: a device's peak FLOP/s and memory bandwidth, and what they say about one module.

A module of intensity I (FLOPs per byte) can run at most at min(peak, I x bandwidth). Below the
ridge point peak / bandwidth it is memory-bound, above it compute-bound. Its roofline time is the
longer of its compute time at peak and its traffic time at full bandwidth; the measured time set
against that is the share of the roofline it reached.
"""

from typing import Literal

import msgspec

Bound = Literal["compute", "memory"]


class Cost(msgspec.Struct, frozen=True):
    flops: float = 0.0
    bytes_read: float = 0.0
    bytes_written: float = 0.0

    @property
    def bytes_moved(self) -> float:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved; None for an op that moves nothing."""
        return self.flops / self.bytes_moved if self.bytes_moved else None

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.bytes_read + other.bytes_read,
                    self.bytes_written + other.bytes_written)

    def __mul__(self, times: float) -> "Cost":
        return Cost(self.flops * times, self.bytes_read * times, self.bytes_written * times)



class Roofline(msgspec.Struct, frozen=True, kw_only=True):
    device: str  # what the figures are for, in words
    dtype: str
    peak_flops_s: float
    bandwidth_bytes_s: float
    source: str = ""

    @property
    def ridge(self) -> float:
        return ridge_point(self.peak_flops_s, self.bandwidth_bytes_s)

    def bound(self, cost: Cost) -> Bound | None:
        intensity = cost.intensity
        if intensity is None:
            return None
        return "compute" if intensity >= self.ridge else "memory"

    def time_s(self, cost: Cost) -> float:
        return max(cost.flops / self.peak_flops_s, cost.bytes_moved / self.bandwidth_bytes_s)

    def judge(self, cost: Cost, measured_s: float | None) -> "Verdict":
        """The theory of one module against this device, and, with a measured time, what it achieved."""
        roofline_s = self.time_s(cost)
        if not measured_s or measured_s <= 0:
            return Verdict(bound=self.bound(cost), roofline_s=roofline_s)
        return Verdict(
            bound=self.bound(cost),
            roofline_s=roofline_s,
            achieved_flops_s=cost.flops / measured_s,
            achieved_bytes_s=cost.bytes_moved / measured_s,
            roofline_pct=100.0 * roofline_s / measured_s,
        )


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    bound: Bound | None
    roofline_s: float
    achieved_flops_s: float | None = None
    achieved_bytes_s: float | None = None
    roofline_pct: float | None = None


def ridge_point(peak_flops_s: float, bandwidth_bytes_s: float) -> float:
    """FLOPs per byte where a kernel stops being memory-bound."""
    if peak_flops_s <= 0 or bandwidth_bytes_s <= 0:
        raise ValueError("peak FLOP/s and bandwidth must be positive")
    return peak_flops_s / bandwidth_bytes_s

"""When each request is sent: Poisson arrivals (gamma for burstiness), or all at once."""

import math
import random


def arrival_offsets_s(count: int, rate_rps: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Planned send times, seconds from the start, for `count` requests at `rate_rps` on average.

    Gaps are gamma-distributed with shape `burstiness` and mean 1/rate: shape 1 is a Poisson process,
    below 1 burstier, above 1 more regular (vLLM's convention). An infinite rate sends everything at 0.
    """
    if count < 0:
        raise ValueError("count must be non-negative")
    if math.isinf(rate_rps):
        return [0.0] * count
    if rate_rps <= 0 or burstiness <= 0:
        raise ValueError("rate and burstiness must be positive")
    rng = random.Random(seed)
    scale = 1.0 / (rate_rps * burstiness)
    offsets, now = [], 0.0
    for _ in range(count):
        offsets.append(now)
        now += rng.gammavariate(burstiness, scale)
    return offsets

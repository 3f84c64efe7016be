"""Clock offsets between this process and a process on another node, as NTP's client estimates them.

Each round trip reads our clock at send (t0) and receipt (t1) and theirs in between (remote). Assuming the two
legs take equally long, theirs read remote when ours read (t0 + t1) / 2; the error is at most half the round
trip, so the round with the shortest trip is kept.
"""

from collections.abc import Callable, Sequence

import msgspec

ROUNDS = 7


class ClockOffset(msgspec.Struct, frozen=True):
    offset_s: float  # their clock minus ours: ours = theirs - offset_s
    uncertainty_s: float  # half the shortest round trip: the offset is within ± this

    def to_local(self, remote_s: float) -> float:
        return remote_s - self.offset_s


def estimate_offset(rounds: Sequence[tuple[float, float, float]]) -> ClockOffset:
    """From (t0, remote, t1) readings, ours before and after theirs."""
    if not rounds:
        raise ValueError("no round trips to estimate a clock offset from")
    t0, remote, t1 = min(rounds, key=lambda r: r[2] - r[0])
    return ClockOffset(offset_s=remote - (t0 + t1) / 2, uncertainty_s=(t1 - t0) / 2)


def actor_offset(actor, timeout_s: float) -> ClockOffset:
    """A Ray actor's clock (its `clock()` method: perf_counter on its node) against this process's perf_counter."""
    import time

    import ray

    return measure_offset(lambda: ray.get(actor.clock.remote(), timeout=timeout_s), time.perf_counter)


def measure_offset(read_remote: Callable[[], float], local: Callable[[], float], rounds: int = ROUNDS) -> ClockOffset:
    """`read_remote()` asks the other process for its clock and waits for the answer."""
    readings = []
    for _ in range(rounds):
        t0 = local()
        remote = read_remote()
        readings.append((t0, remote, local()))
    return estimate_offset(readings)

"""The seeded arrival schedule pinned exactly, and the scheduler that sends on it (on a virtual clock).

The schedule is computed here again from its documented definition (loadgen/arrivals.py): gaps drawn in order from
`random.Random(seed)`, gamma with shape = burstiness and scale = 1 / (rate x burstiness), the first request at 0,
each offset the running sum of the gaps before it. Same generator, same seed, same float operations in the same
order: the offsets are equal, not close. A changed seed handling, distribution, parameterisation or summation
(which would silently change every run's schedule) fails these tests; so does a changed generator, by the literal
values.
"""

import math
import random

import pytest

from tuibench.core.timing import VirtualClock
from tuibench.loadgen.arrivals import arrival_offsets_s, send_on_schedule


def running_sum(gaps_s):
    offsets, now = [], 0.0
    for gap in gaps_s:
        offsets.append(now)
        now += gap
    return offsets


def test_a_poisson_schedule_is_the_running_sum_of_seeded_exponential_gaps():
    # Shape 1: exponential gaps of mean 1/rate, by inverse transform of the generator's uniforms, -ln(1 - u) / rate
    # (what gammavariate does at shape 1), written without gammavariate.
    count, rate_rps, seed = 200, 8.0, 1
    uniforms = random.Random(seed)
    gaps_s = [-math.log(1.0 - uniforms.random()) * (1.0 / (rate_rps * 1.0)) for _ in range(count)]
    assert arrival_offsets_s(count, rate_rps, seed=seed) == running_sum(gaps_s)


@pytest.mark.parametrize("burstiness", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("rate_rps, seed", [(8.0, 1), (2.0, 42), (0.25, 7)])
def test_a_gamma_schedule_is_the_running_sum_of_seeded_gamma_gaps(rate_rps, seed, burstiness):
    count, draws = 200, random.Random(seed)
    gaps_s = [draws.gammavariate(burstiness, 1.0 / (rate_rps * burstiness)) for _ in range(count)]
    assert arrival_offsets_s(count, rate_rps, burstiness, seed) == running_sum(gaps_s)


def test_the_first_offsets_for_a_seed_are_these_literally():
    # Pinned from this version: a change of generator or of its use changes them (and every run's schedule).
    assert arrival_offsets_s(4, 8.0, seed=1) == [0.0, 0.01803638301368865, 0.2530559161912668, 0.4334270318595997]
    assert arrival_offsets_s(4, 8.0, seed=0) == [0.0, 0.23257588888315292, 0.40990453300462315, 0.47811867619732223]
    assert arrival_offsets_s(4, 8.0, burstiness=0.5, seed=7) == [
        0.0, 0.03674859729635947, 0.18523057215823485, 0.2858629042033872]
    assert arrival_offsets_s(4, 2.0, burstiness=4.0, seed=42) == [
        0.0, 0.6208784380006009, 0.9675107872608553, 1.7048477813505474]


def test_a_shorter_schedule_is_the_start_of_a_longer_one_and_all_at_once_is_zeros():
    assert arrival_offsets_s(5, 8.0, seed=1) == arrival_offsets_s(50, 8.0, seed=1)[:5]
    assert arrival_offsets_s(3, float("inf")) == [0.0, 0.0, 0.0]
    assert arrival_offsets_s(0, 8.0) == []
    with pytest.raises(ValueError):
        arrival_offsets_s(3, 0.0)
    with pytest.raises(ValueError):
        arrival_offsets_s(3, 1.0, burstiness=0.0)


def test_each_item_is_started_at_its_planned_time_and_a_held_loop_makes_the_next_late():
    # Offsets 0, 0.25, 0.25, 1: item "b" holds the loop for 0.5 s when it starts, so "c" (planned at 0.25, the same
    # moment) starts at 0.75, 0.5 s late, with its planned time kept; "d" is on time again at 1.
    clock, started = VirtualClock(10.0), []

    async def send_one(item: str, planned_s: float) -> None:
        started.append((item, planned_s, clock.now_s()))
        if item == "b":
            clock.advance(0.5)

    clock.run(send_on_schedule("abcd", [0.0, 0.25, 0.25, 1.0], 10.0, clock, send_one))
    assert started == [("a", 10.0, 10.0), ("b", 10.25, 10.25), ("c", 10.25, 10.75), ("d", 11.0, 11.0)]

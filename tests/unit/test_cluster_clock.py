"""Clock offsets between nodes, estimated as NTP's client does: the round trip with the shortest time wins."""

import pytest

from tuibench.cluster.clock import estimate_offset, measure_offset


def test_the_shortest_round_trip_gives_the_offset_and_its_bound():
    # Theirs runs 1000 s ahead of ours. Round 2 is quick and symmetric; round 1 is slow on its way back.
    rounds = [(10.0, 1010.001, 10.050), (20.0, 1020.0005, 20.001), (30.0, 1030.2, 30.5)]
    offset = estimate_offset(rounds)
    assert offset.offset_s == pytest.approx(1000.0, abs=1e-9)
    assert offset.uncertainty_s == pytest.approx(0.0005)
    assert offset.to_local(1020.0005) == pytest.approx(20.0005)


def test_a_scripted_remote_clock_is_recovered_within_half_the_round_trip():
    now = [0.0]

    def local() -> float:
        now[0] += 0.001  # each reading of ours takes 1 ms
        return now[0]

    def remote() -> float:
        now[0] += 0.002  # the call out, 2 ms; theirs is 42.5 s ahead; the call back, 2 ms
        reading = now[0] + 42.5
        now[0] += 0.002
        return reading

    offset = measure_offset(remote, local, rounds=3)
    assert abs(offset.offset_s - 42.5) <= offset.uncertainty_s
    assert offset.uncertainty_s == pytest.approx(0.0025)


def test_no_rounds_is_an_error():
    with pytest.raises(ValueError):
        estimate_offset([])

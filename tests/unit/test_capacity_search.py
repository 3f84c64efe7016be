"""The capacity search, against scripted libraries whose true capacity is known: it brackets it to the asked
precision, with doubling, halving and bisection, and the objectives parse with one clear error each."""

import pytest

from tuibench.core.capacity import Bracket, parse_objectives, search


def _run_search(capacity_rps: float, start: float = 1.0, precision: float = 0.1, floor: float = 0.05,
                ceiling: float = 1000.0) -> tuple[Bracket, list[float]]:
    probes = []
    probe = search(start, precision, floor, ceiling)
    rate = next(probe)
    try:
        while True:
            probes.append(rate)
            rate = probe.send(rate <= capacity_rps)
    except StopIteration as done:
        return done.value, probes


@pytest.mark.parametrize("capacity", [0.3, 1.0, 2.7, 11.0, 400.0])
def test_the_bracket_holds_the_capacity_within_the_precision(capacity):
    bracket, probes = _run_search(capacity)
    assert bracket.met_rps <= capacity < bracket.missed_rps
    assert (bracket.missed_rps - bracket.met_rps) / bracket.met_rps <= 0.1
    assert len(probes) == len(set(probes)) and len(probes) <= 14  # no rate twice, a handful of runs


def test_doubling_then_bisection_probe_in_that_order():
    _, probes = _run_search(5.0)
    assert probes[:4] == [1.0, 2.0, 4.0, 8.0]  # doubling until 8 misses
    assert probes[4] == 6.0  # then halfway between 4 and 8


def test_nothing_met_down_to_the_floor_and_everything_met_up_to_the_ceiling():
    assert _run_search(0.01, floor=0.1)[0] == Bracket(met_rps=None, missed_rps=0.125)
    assert _run_search(1e9, ceiling=64.0)[0] == Bracket(met_rps=64.0, missed_rps=None)


def test_objectives_parse_and_say_what_is_off():
    (ttft, tpot) = parse_objectives("ttft_p99=500, tpot_p50=50")
    assert (ttft.latency, ttft.quantile, ttft.limit_ms) == ("ttft", "p99", 500.0)
    assert tpot.label == "tpot_p50≤50 ms"
    for text, says in (("ttft=500", "unknown objective 'ttft'"), ("ttft_p99=fast", "needs milliseconds"),
                       ("e2el_p90=0", "must be positive"), ("", "at least one objective")):
        with pytest.raises(ValueError, match=says):
            parse_objectives(text)


def test_the_verdict_is_one_line_over_the_libraries():
    from tuibench.core.capacity import Capacity, verdict

    slo = "ttft_p99=500,tpot_p99=50"
    line = verdict([Capacity(library="vllm", slo=slo, bracket=Bracket(met_rps=2.125, missed_rps=2.25)),
                    Capacity(library="transformers", slo=slo, bracket=Bracket(met_rps=0.625, missed_rps=0.75)),
                    Capacity(library="llamacpp", slo=slo, bracket=Bracket(met_rps=None, missed_rps=0.0625)),
                    Capacity(library="mii", slo=slo, skipped="needs a CUDA GPU")])
    assert line == ("vllm sustains 2.12 req/s under the SLO (ttft_p99≤500 ms, tpot_p99≤50 ms), transformers 0.625 req/s, "
                    "llamacpp meets it at no rate tried (down to 0.0625 req/s), mii was not measured (needs a CUDA GPU)")


def test_the_plan_file_capacity_table_is_checked_before_anything_runs():
    from tuibench.core.capacity import CapacitySearch

    CapacitySearch(slo="ttft_p99=500").check()
    for search, says in ((CapacitySearch(slo="ttft_p99=500", start_rate=0.01), "must lie within"),
                         (CapacitySearch(slo="ttfb_p99=500"), "unknown objective")):
        with pytest.raises(ValueError, match=says):
            search.check()
    # A rate's sign is its type's to check, as a plan file's table is read.
    from tuibench.core.options import OptionError
    from tuibench.core.plan import request_from_table

    with pytest.raises(OptionError, match="plan.capacity.precision: must be more than 0, got 0"):
        request_from_table({"capacity": {"slo": "ttft_p99=500", "precision": 0}})

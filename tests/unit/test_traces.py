"""Timestamped traces as datasets: Mooncake JSONL, Azure and BurstGPT CSV (synthetic files of each in tests/data).
Each is read in time order with its send times from its first request, scaled by --trace-speed; a row that produced
no output (a failed request in the log) is left out; Mooncake's block ids become shared prompt prefixes."""

from pathlib import Path

import pytest

from test_shared_prefix import WordTokenizer
from tuibench.core.capacity import CapacitySearch
from tuibench.core.errors import UserError
from tuibench.core.plan import PlanRequest, load_label, step_label
from tuibench.core.prompts import materialize
from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams
from tuibench.core.traces import MOONCAKE_BLOCK_TOKENS
from tuibench.core.workload import dataset_from_arg, load_requests
from tuibench.loadgen.arrivals import schedule_s
from tuibench.runner.plans import build_plan

DATA = Path(__file__).parent.parent / "data"
RANDOM = DatasetSpec(kind="random", source="random")

# (file, format, send times in s from the first, (input, output) lengths): the rows with output, in time order.
EXPECTED = [
    ("mooncake_trace.jsonl", "mooncake", [0, 0.054, 0.054, 0.21, 0.602, 0.96, 1.203],
     [(600, 8), (1100, 6), (300, 8), (700, 4), (1024, 8), (90, 5), (1536, 8)]),
    ("azure_trace.csv", "azure", [0, 0.050011, 0.2394100, 0.7245334, 1.41941],
     [(374, 8), (396, 6), (879, 8), (1048, 4), (520, 8)]),
    ("burstgpt_trace.csv", "burstgpt", [0, 0.25, 0.5, 1.4, 2.05], [(472, 8), (230, 6), (610, 8), (97, 4), (850, 8)]),
]


@pytest.mark.parametrize("name, kind, times_s, lengths", EXPECTED)
def test_each_format_reads_in_time_order_from_its_first_request_without_failed_rows(name, kind, times_s, lengths):
    spec = dataset_from_arg(str(DATA / name))
    assert (spec.kind, spec.trace_format, spec.trace_speed) == ("trace", kind, 1.0)
    assert spec.label == f"{DATA / name} ({kind} trace ×1)"
    requests = load_requests(spec, None, seed=3)
    assert [(r.input_tokens, r.output_tokens) for r in requests] == lengths
    assert [r.arrival_s for r in requests] == pytest.approx(times_s, abs=1e-9)


@pytest.mark.parametrize("name, kind, times_s, lengths", EXPECTED)
def test_the_speed_divides_every_gap_and_a_count_takes_the_first_requests_not_a_sample(name, kind, times_s, lengths):
    requests = load_requests(dataset_from_arg(str(DATA / name), trace_speed=4.0), 3, seed=3)
    assert [r.arrival_s for r in requests] == pytest.approx([t / 4 for t in times_s[:3]], abs=1e-9)
    assert [(r.input_tokens, r.output_tokens) for r in requests] == lengths[:3]
    # The schedule the load generator sends on is the trace's, one time per request.
    assert schedule_s(3, float("inf"), trace_s=[r.arrival_s for r in requests]) == [r.arrival_s for r in requests]
    with pytest.raises(UserError, match=f"has {len(lengths)} requests; --num-requests 99 asks for more"):
        load_requests(dataset_from_arg(str(DATA / name)), 99, seed=3)


def test_mooncake_blocks_are_shared_prefixes_of_exactly_the_planned_length():
    requests = load_requests(dataset_from_arg(str(DATA / "mooncake_trace.jsonl")), None, seed=3)
    prompts = materialize(requests, WordTokenizer(), seed=3)
    assert [len(p.ids) for p in prompts] == [r.input_tokens for r in requests]
    by_blocks = {r.hash_ids: p.ids for r, p in zip(requests, prompts, strict=True)}
    block = MOONCAKE_BLOCK_TOKENS
    # [0, 1] (600 tokens) is the head of [0, 1, 2] (1100) and of the later [0, 1, 2] (1536): one prefix cache entry.
    assert by_blocks[(0, 1)] == by_blocks[(0, 1, 2)][:600] == prompts[-1].ids[:600]
    assert by_blocks[(0, 4)][:block] == by_blocks[(0, 1)][:block]  # block 0 shared...
    assert by_blocks[(0, 4)][block:] != by_blocks[(0, 1, 2)][block:700]  # ...block 4 is not block 1
    assert by_blocks[(3, 7)][:300] == by_blocks[(3,)]  # a request of block 3 alone is the head of [3, 7]
    assert by_blocks[(0, 1)][:block] != by_blocks[(3,)][:300] + by_blocks[(3, 7)][300:block]


@pytest.mark.parametrize("text, error", [
    ('{"timestamp": 0, "input_length": 10, "output_length": 2}\n{"timestamp": "x", "input_length": 10, '
     '"output_length": 2}\n', r"trace.jsonl:2: a Mooncake trace line is an object like"),
    ('{"timestamp": 0, "input_length": 10, "output_length": 0}\n', "no request of this mooncake trace produced output"),
])
def test_a_bad_mooncake_line_is_named(tmp_path, text, error):
    path = tmp_path / "trace.jsonl"
    path.write_text(text)
    with pytest.raises(UserError, match=error):
        load_requests(dataset_from_arg(str(path)), None, seed=0)


def test_a_bad_csv_row_is_named_and_a_csv_that_is_no_trace_says_which_ones_are(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,10,2\nyesterday,10,2\n")
    with pytest.raises(UserError, match=r"azure.csv:3: an Azure trace row is like 2023-11-16 18:15:46.6805900,4808,10"):
        load_requests(dataset_from_arg(str(path)), None, seed=0)
    other = tmp_path / "lengths.csv"
    other.write_text("input,output\n10,2\n")
    with pytest.raises(UserError, match="not a trace tuibench reads: a CSV dataset is an Azure"):
        dataset_from_arg(str(other))


def test_a_plan_refuses_rates_or_a_capacity_search_on_a_trace():
    trace = str(DATA / "burstgpt_trace.csv")
    with pytest.raises(UserError, match="a trace's timestamps set its load: drop --rates, and scale the trace"):
        build_plan(PlanRequest(libraries=("fake",), datasets=(trace,), scenarios=("serving",), rates=(2.0,)))
    with pytest.raises(UserError, match="the capacity search sets rates of its own"):
        build_plan(PlanRequest(libraries=("fake",), datasets=(trace,), scenarios=("capacity",),
                               capacity=CapacitySearch(slo="ttft_p99=500")))
    plan = build_plan(PlanRequest(libraries=("fake",), datasets=(trace,), scenarios=("serving", "offline"),
                              trace_speed=2.0))
    assert [s.spec.dataset.trace_speed for s in plan.steps] == [2.0, 2.0]


def test_a_serving_steps_load_is_said_as_its_rate_its_burst_or_its_traces_times():
    trace = dataset_from_arg(str(DATA / "azure_trace.csv"), trace_speed=0.5)
    steps = [RunSpec(dataset=trace, scenario="serving"), RunSpec(dataset=trace, scenario="offline"),
             RunSpec(dataset=RANDOM, scenario="serving", serving=ServingParams(request_rate=2.5)),
             RunSpec(dataset=RANDOM, scenario="serving")]
    assert [load_label(spec) for spec in steps] == ["the trace's times ×0.5", "", "2.5 req/s", "all at once"]
    assert step_label(steps[0]).endswith("(azure trace ×0.5) · serving @ the trace's times ×0.5")

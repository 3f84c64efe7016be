"""A benchmark that prints a ratio first checks both sides ran the same spec (tests/README.md): peer_agreement's,
harness_overhead's and tui_overhead's checks on scripted records and specs (profile_overhead's is tested through the
script, on the fake engine: tests/integration/test_profiling.py)."""

import importlib.util
from types import SimpleNamespace

from helpers import REPO


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only: main() runs under __main__
    return module


def _records(*counts):
    return [[SimpleNamespace(input_tokens=i, output_tokens=o) for i, o in counts]]


def test_peer_agreement_compares_only_clients_that_ran_the_same_requests():
    refusal = _benchmark("peer_agreement").refusal
    assert refusal({"tuibench": _records((128, 64), (128, 64)), "vLLM": _records((128, 64), (128, 64))}) is None
    # One response cut a token short on vLLM's side: the two no longer ran the same workload.
    assert refusal({"tuibench": _records((128, 64), (128, 64)), "vLLM": _records((128, 64), (128, 63))}) == (
        "the clients ran different specs, no ratio: tuibench 2 requests, vLLM 2; token counts (in, out) "
        "tuibench [(128, 64)], vLLM [(128, 63), (128, 64)]")


def test_harness_overhead_compares_only_arms_that_ran_the_same_requests():
    refusal = _benchmark("harness_overhead").refusal
    ran = [(12, 8), (30, 8), (12, 16)]
    assert refusal({"requests": ran, "tuibench batch path": ran[::-1], "bare generate": ran}) is None
    # A row stopped one token early on tuibench's side: its tokens/s is no longer of the same work.
    assert refusal({"requests": ran, "tuibench batch path": [(12, 8), (30, 7), (12, 16)], "bare generate": ran}) == (
        "the arms ran different specs, no ratio: requests 3 requests [(12, 8), (12, 16), (30, 8)]; "
        "tuibench batch path 3 requests [(12, 8), (12, 16), (30, 7)]")


def test_tui_overhead_refuses_an_app_run_of_another_spec_and_names_the_fields():
    """The app once ran short2short (a setup key it no longer read) against random 64/64 headless: 0.69 for 0.96."""
    from tuibench.core.spec import OfflineParams, RunSpec
    from tuibench.core.workload import dataset_from_arg

    refusal = _benchmark("tui_overhead").refusal
    headless = RunSpec(dataset=dataset_from_arg("random", input_len=64, output_len=64),
                       offline=OfflineParams(batch_size=4), num_requests=16)
    assert refusal(headless, RunSpec.from_json(headless.to_json())) is None
    app = RunSpec(dataset=dataset_from_arg("short2short"), offline=OfflineParams(batch_size=4), num_requests=16)
    refused = refusal(headless, app)
    assert refused.startswith("the sides ran different specs, no ratio: headless ≠ app in ")
    assert "dataset.source 'random' ≠ 'short2short'" in refused and "batch_size" not in refused


def test_the_bad_input_trial_counts_only_exit_2_with_one_line_of_tuibench_as_clean():
    clean = _benchmark("bad_inputs").clean
    assert clean(2, "tuibench: unknown library 'nope': choose one of transformers\n")
    assert not clean(1, "tuibench: run 1 failed: ValueError\n")  # a failed run, not a refused input
    assert not clean(2, "usage: tuibench run [-h]\ntuibench run: error: bad\n")  # two lines
    assert not clean(2, "Traceback (most recent call last):\n")
    assert not clean(0, "")

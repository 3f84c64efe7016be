"""A benchmark that prints a ratio first checks both sides ran the same spec (tests/README.md): peer_agreement's
check on scripted records (profile_overhead's is tested through the script, on the fake engine:
tests/integration/test_profiling.py)."""

import importlib.util
from types import SimpleNamespace

from helpers import REPO


def _peer_agreement():
    spec = importlib.util.spec_from_file_location("peer_agreement", REPO / "benchmarks" / "peer_agreement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only: main() runs under __main__
    return module


def _records(*counts):
    return [[SimpleNamespace(input_tokens=i, output_tokens=o) for i, o in counts]]


def test_peer_agreement_compares_only_clients_that_ran_the_same_requests():
    refusal = _peer_agreement().refusal
    assert refusal({"tuibench": _records((128, 64), (128, 64)), "vLLM": _records((128, 64), (128, 64))}) is None
    # One response cut a token short on vLLM's side: the two no longer ran the same workload.
    assert refusal({"tuibench": _records((128, 64), (128, 64)), "vLLM": _records((128, 64), (128, 63))}) == (
        "the clients ran different specs, no ratio: tuibench 2 requests, vLLM 2; token counts (in, out) "
        "tuibench [(128, 64)], vLLM [(128, 63), (128, 64)]")

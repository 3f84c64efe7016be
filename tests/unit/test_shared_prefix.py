"""The shared-prefix dataset: each request one of N system prompts of P tokens, then tokens of its own, with
exactly the planned length; requests of a group share their first P ids, other groups and warm-ups do not."""

import pytest

from tuibench.core.prompts import materialize
from tuibench.core.errors import UserError
from tuibench.core.workload import RequestSpec, dataset_from_arg, load_requests


class WordTokenizer:
    """A stand-in with a 1000-word vocabulary and 2 special tokens: materialize only needs its ids."""

    all_special_ids = [0, 1]
    added_tokens_decoder: dict = {}

    def __len__(self) -> int:
        return 1000


def test_requests_share_their_groups_prefix_and_nothing_else():
    spec = dataset_from_arg("shared-prefix", input_len=8, output_len=4, prefixes=3, prefix_len=32)
    assert spec.label == "shared-prefix(3×32+8/4)"
    requests = load_requests(spec, 30, seed=5)
    assert {r.prefix for r in requests} == {0, 1, 2}
    assert all(r.input_tokens == 40 and r.prefix_tokens == 32 and r.output_tokens == 4 for r in requests)
    prompts = materialize(requests, WordTokenizer(), seed=5)
    assert all(len(p.ids) == 40 and not {0, 1} & set(p.ids) for p in prompts)
    heads = {}
    for request, prompt in zip(requests, prompts, strict=True):
        heads.setdefault(request.prefix, set()).add(tuple(prompt.ids[:32]))
    assert all(len(found) == 1 for found in heads.values())  # one system prompt per group
    assert len({next(iter(found)) for found in heads.values()}) == 3  # and a different one per group
    assert len({tuple(p.ids[32:]) for p in prompts}) == 30  # each request's own tokens are its own
    # Shapes without a group (the warm-ups) are random all through: never a measured request's prefix.
    warm = materialize([RequestSpec(input_tokens=40, output_tokens=4)], WordTokenizer(), seed=5 + 1_000_003)
    assert tuple(warm[0].ids[:32]) not in {next(iter(found)) for found in heads.values()}


def test_shared_prefix_needs_a_count_and_positive_sizes():
    with pytest.raises(UserError, match="needs --num-requests"):
        load_requests(dataset_from_arg("shared-prefix"), None, seed=0)
    with pytest.raises(UserError, match="at least 1"):
        dataset_from_arg("shared-prefix", prefixes=0)

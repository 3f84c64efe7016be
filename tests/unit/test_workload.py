"""Workloads: builtin datasets, sampling, random lengths, user JSONL / ShareGPT files, prompt synthesis."""

import json
import re

import pytest

from tuibench.core.errors import UserError
from tuibench.core.spec import DatasetSpec
from tuibench.core.workload import (
    RequestSpec,
    builtin_datasets,
    dataset_from_arg,
    load_requests,
    synthesize_prompt_ids,
)

SHORT2SHORT = DatasetSpec(kind="builtin", source="short2short")


def _random(input_len, output_len, ratio):
    return DatasetSpec(kind="random", source="random", input_len=input_len, output_len=output_len, range_ratio=ratio)


# -- builtin datasets ------------------------------------------------------------------------------


def test_builtin_dataset_names_sorted():
    assert list(builtin_datasets()) == ["long2short", "short-16k", "short2long", "short2short"]


def test_only_long2short_is_reconstructed():
    assert {name: d.reconstructed for name, d in builtin_datasets().items()} == {
        "long2short": True, "short-16k": False, "short2long": False, "short2short": False,
    }
    assert builtin_datasets()["short2short"].lengths == "short2short.csv"


def test_short2short_contents():
    requests = load_requests(SHORT2SHORT, None, seed=0)
    assert len(requests) == 1000
    assert max(r.output_tokens for r in requests) == 49
    assert all(r.input_tokens >= 1 and r.output_tokens >= 1 for r in requests)
    assert all(r.prompt is None and r.reference_output is None for r in requests)
    # the CSV's first data row is "20,31"; None means the whole dataset, in file order
    assert requests[0] == RequestSpec(input_tokens=20, output_tokens=31)


@pytest.mark.parametrize(("name", "size"), [("long2short", 1000), ("short2long", 1000), ("short-16k", 80)])
def test_other_builtin_sizes(name, size):
    assert len(load_requests(DatasetSpec(kind="builtin", source=name), None, seed=0)) == size


def test_short_16k_outputs_are_16000():
    requests = load_requests(DatasetSpec(kind="builtin", source="short-16k"), None, seed=0)
    assert {r.output_tokens for r in requests} == {16000}


# -- sampling --------------------------------------------------------------------------------------


def test_sampling_same_seed_same_result():
    a = load_requests(SHORT2SHORT, 20, seed=11)
    b = load_requests(SHORT2SHORT, 20, seed=11)
    assert len(a) == 20
    assert a == b


def test_sampling_different_seed_different_result():
    assert load_requests(SHORT2SHORT, 20, seed=1) != load_requests(SHORT2SHORT, 20, seed=2)


def test_sampling_draws_distinct_rows_from_the_dataset():
    everything = load_requests(SHORT2SHORT, None, seed=0)
    # sample all 1000 without replacement: a permutation of the dataset
    sampled = load_requests(SHORT2SHORT, 1000, seed=5)
    key = lambda r: (r.input_tokens, r.output_tokens)  # noqa: E731
    assert sorted(sampled, key=key) == sorted(everything, key=key)


def test_sampling_more_than_dataset_raises():
    with pytest.raises(UserError, match="has 1000 requests; --num-requests 1001"):
        load_requests(SHORT2SHORT, 1001, seed=0)


@pytest.mark.parametrize("n", [0, -3])
def test_sampling_non_positive_raises(n):
    with pytest.raises(UserError, match="at least 1"):
        load_requests(SHORT2SHORT, n, seed=0)


# -- random dataset --------------------------------------------------------------------------------


def test_random_fixed_lengths_when_ratio_zero():
    requests = load_requests(_random(128, 64, 0.0), 50, seed=0)
    assert len(requests) == 50
    assert {(r.input_tokens, r.output_tokens) for r in requests} == {(128, 64)}


def test_random_respects_range_ratio_bounds():
    # input 100 * (1 ± 0.5) -> [50, 150]; output 10 * (1 ± 0.5) -> [5, 15]
    requests = load_requests(_random(100, 10, 0.5), 2000, seed=3)
    inputs = [r.input_tokens for r in requests]
    outputs = [r.output_tokens for r in requests]
    assert min(inputs) == 50 and max(inputs) == 150  # 2000 draws of 101 values hit both ends
    assert min(outputs) == 5 and max(outputs) == 15
    assert len(set(inputs)) > 50  # actually spread out, not a constant


def test_random_lengths_never_below_one():
    # [1 * (1 - 0.9), 1 * 1.9] = [0.1, 1.9] holds one whole number, 1; 0 is excluded anyway
    requests = load_requests(_random(1, 1, 0.9), 200, seed=0)
    assert {r.input_tokens for r in requests} == {1}
    assert {r.output_tokens for r in requests} == {1}
    # [5 * 0.5, 5 * 1.5] = [2.5, 7.5] holds 3..7: the ends are not rounded outwards
    requests = load_requests(_random(5, 5, 0.5), 400, seed=0)
    assert {r.input_tokens for r in requests} == {3, 4, 5, 6, 7}


def test_random_reproducible_by_seed():
    spec = _random(100, 100, 0.3)
    assert load_requests(spec, 30, seed=4) == load_requests(spec, 30, seed=4)
    assert load_requests(spec, 30, seed=4) != load_requests(spec, 30, seed=5)


def test_random_needs_num_requests():
    with pytest.raises(UserError, match="--num-requests"):
        load_requests(_random(10, 10, 0.0), None, seed=0)


def test_random_non_positive_num_requests_raises():
    with pytest.raises(UserError, match="at least 1"):
        load_requests(_random(10, 10, 0.0), 0, seed=0)


# -- dataset_from_arg ------------------------------------------------------------------------------


def test_dataset_from_arg_builtin():
    assert dataset_from_arg("short2long") == DatasetSpec(kind="builtin", source="short2long")


def test_dataset_from_arg_random():
    spec = dataset_from_arg("random", input_len=32, output_len=16, range_ratio=0.5)
    assert spec == DatasetSpec(kind="random", source="random", input_len=32, output_len=16, range_ratio=0.5)
    assert spec.label == "random(32/16±0.5)"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"range_ratio": 1.0}, "range-ratio"),
        ({"range_ratio": -0.1}, "range-ratio"),
        ({"input_len": 0}, "at least 1"),
        ({"output_len": 0}, "at least 1"),
    ],
)
def test_dataset_from_arg_random_bad_params(kwargs, match):
    with pytest.raises(UserError, match=match):
        dataset_from_arg("random", **kwargs)


def test_dataset_from_arg_unknown_lists_choices():
    with pytest.raises(UserError) as info:
        dataset_from_arg("sharegpt-v3")
    message = str(info.value)
    assert "unknown dataset 'sharegpt-v3'" in message
    for choice in ("long2short", "short-16k", "short2long", "short2short", "random"):
        assert choice in message


def test_dataset_from_arg_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        dataset_from_arg(str(tmp_path / "nope.jsonl"))


def test_dataset_from_arg_files(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "hi", "output_tokens": 3}\n')
    share = tmp_path / "s.json"
    share.write_text("[]")
    assert dataset_from_arg(str(jsonl)) == DatasetSpec(kind="jsonl", source=str(jsonl.resolve()))
    assert dataset_from_arg(str(share)) == DatasetSpec(kind="sharegpt", source=str(share.resolve()))


# -- JSONL -----------------------------------------------------------------------------------------


def _jsonl(tmp_path, text, name="prompts.jsonl"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return DatasetSpec(kind="jsonl", source=str(path)), str(path)


def test_jsonl_valid(tmp_path):
    spec, _ = _jsonl(tmp_path, '{"prompt": "Hello", "output_tokens": 16}\n\n{"prompt": "Café ☕", "output_tokens": 1, '
                               '"extra": true}\n')
    assert load_requests(spec, None, seed=0) == [
        RequestSpec(prompt="Hello", output_tokens=16),
        RequestSpec(prompt="Café ☕", output_tokens=1),
    ]


def test_jsonl_sampling(tmp_path):
    spec, _ = _jsonl(tmp_path, "".join(f'{{"prompt": "p{i}", "output_tokens": {i + 1}}}\n' for i in range(5)))
    sample = load_requests(spec, 2, seed=0)
    assert len(sample) == 2
    assert sample == load_requests(spec, 2, seed=0)
    with pytest.raises(UserError, match="has 5 requests"):
        load_requests(spec, 6, seed=0)


def test_jsonl_malformed_line_names_file_and_line(tmp_path):
    spec, path = _jsonl(tmp_path, '{"prompt": "ok", "output_tokens": 2}\n{"prompt": "oops", \n')
    with pytest.raises(UserError, match=re.escape(f"{path}:2: not valid JSON")):
        load_requests(spec, None, seed=0)


@pytest.mark.parametrize(
    "row",
    ['{"output_tokens": 5}', '{"prompt": "", "output_tokens": 5}', '{"prompt": 42, "output_tokens": 5}',
     '["hello", 5]', '"just a string"'],
)
def test_jsonl_missing_prompt(tmp_path, row):
    spec, path = _jsonl(tmp_path, row + "\n")
    with pytest.raises(UserError, match=re.escape(f'{path}:1: each line needs a non-empty string "prompt"')):
        load_requests(spec, None, seed=0)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0", "0"), ("-4", "-4"), ('"12"', "'12'"), ("2.5", "2.5"), ("true", "True"), ("null", "None"), (None, "None")],
)
def test_jsonl_output_tokens_not_positive_int(tmp_path, value, shown):
    row = {"prompt": "hi"} if value is None else None
    text = json.dumps(row) if row else f'{{"prompt": "hi", "output_tokens": {value}}}'
    spec, path = _jsonl(tmp_path, '{"prompt": "fine", "output_tokens": 3}\n' + text + "\n")
    with pytest.raises(UserError, match=re.escape(f'{path}:2: "output_tokens" must be a positive integer, got {shown}')):
        load_requests(spec, None, seed=0)


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_jsonl_empty_file(tmp_path, text):
    spec, path = _jsonl(tmp_path, text)
    with pytest.raises(UserError, match=re.escape(f"{path}: no requests in the file")):
        load_requests(spec, None, seed=0)


def test_jsonl_not_utf8_is_user_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "caf\xe9", "output_tokens": 3}\n')  # Latin-1 e-acute
    with pytest.raises(UserError, match=re.escape(str(path))):
        load_requests(DatasetSpec(kind="jsonl", source=str(path)), None, seed=0)


# -- ShareGPT --------------------------------------------------------------------------------------


def _sharegpt(tmp_path, data, name="share.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return DatasetSpec(kind="sharegpt", source=str(path)), str(path)


def test_sharegpt_valid_skips_unusable(tmp_path):
    spec, _ = _sharegpt(tmp_path, [
        {"id": "a", "conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello!"},
                                      {"from": "human", "value": "third turn ignored"}]},
        {"id": "b", "conversations": [{"from": "human", "value": "only one turn"}]},
        {"id": "c"},
        "not a dict",
        {"id": "d", "conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "x"}]},
        {"id": "e", "conversations": ["not", "dicts"]},
        {"id": "f", "conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]},
        # No human turn: an assistant's turn is no user's prompt (it was taken as one before).
        {"id": "g", "conversations": [{"from": "gpt", "value": "I start"}, {"from": "gpt", "value": "and go on"}]},
        {"id": "h", "conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "Q3"},
                                      {"from": "gpt", "value": "A3"}]},
    ])
    assert load_requests(spec, None, seed=0) == [
        RequestSpec(prompt="Hi there", reference_output="Hello!", output_tokens=None, input_tokens=None),
        RequestSpec(prompt="Q2", reference_output="A2"),
        RequestSpec(prompt="Q3", reference_output="A3"),  # the first human turn, after the system prompt
    ]


def test_sharegpt_not_a_list(tmp_path):
    spec, path = _sharegpt(tmp_path, {"conversations": [{"value": "a"}, {"value": "b"}]})
    with pytest.raises(UserError, match=re.escape(f"{path}: a ShareGPT file is a JSON list of conversations")):
        load_requests(spec, None, seed=0)


@pytest.mark.parametrize("data", [[], [{"conversations": [{"value": "lonely"}]}], [1, 2, 3],
                                  [{"conversations": [{"from": "gpt", "value": "a"}, {"from": "gpt", "value": "b"}]}]])
def test_sharegpt_no_usable_conversation(tmp_path, data):
    spec, path = _sharegpt(tmp_path, data)
    with pytest.raises(UserError, match=re.escape(f"{path}: no conversation with a human turn and an answer")):
        load_requests(spec, None, seed=0)


def test_sharegpt_invalid_json(tmp_path):
    spec, path = _sharegpt(tmp_path, '[{"conversations": [}\n')
    with pytest.raises(UserError, match=re.escape(f"{path}: not valid JSON")):
        load_requests(spec, None, seed=0)


def test_sharegpt_not_utf8_is_user_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"conversations": [{"value": "caf\xe9"}, {"value": "ok"}]}]')
    with pytest.raises(UserError, match=re.escape(str(path))):
        load_requests(DatasetSpec(kind="sharegpt", source=str(path)), None, seed=0)


# -- synthesize_prompt_ids -------------------------------------------------------------------------


def test_synthesize_exact_lengths_and_vocab():
    vocab = [5, 9, 11]
    prompts = synthesize_prompt_ids([3, 0, 7, 64], vocab, seed=0)
    assert [len(p) for p in prompts] == [3, 0, 7, 64]
    assert {token for p in prompts for token in p} <= set(vocab)
    assert len({token for token in prompts[3]}) > 1  # 64 draws from 3 ids: not one id repeated


def test_synthesize_reproducible_by_seed():
    vocab = list(range(1000, 1100))
    a = synthesize_prompt_ids([50, 20], vocab, seed=42)
    assert a == synthesize_prompt_ids([50, 20], vocab, seed=42)
    assert a != synthesize_prompt_ids([50, 20], vocab, seed=43)  # 100^-70 chance of a collision


def test_conversations_are_turns_whose_prompts_hold_every_turn_before():
    from tuibench.core.workload import dataset_from_arg, load_requests

    spec = dataset_from_arg("conversations", input_len=10, output_len=5, turns=3)
    assert spec.label == "conversations(3 turns × 10/5)"
    requests = load_requests(spec, 7, seed=0)  # two whole conversations and the first turn of a third
    assert [(r.conversation, r.turn, r.input_tokens, r.prefix_tokens, r.output_tokens) for r in requests] == [
        (0, 0, 10, 0, 5), (0, 1, 25, 15, 5), (0, 2, 40, 30, 5),
        (1, 0, 10, 0, 5), (1, 1, 25, 15, 5), (1, 2, 40, 30, 5), (2, 0, 10, 0, 5)]
    with pytest.raises(UserError, match="needs --num-requests"):
        load_requests(spec, None, 0)

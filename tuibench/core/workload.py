"""Workloads: the paper's length-profile datasets, random lengths, and the user's own prompts.

Loading and validating happen here, in the parent, so a bad file fails before a child is spawned.
Turning lengths into token ids needs the model's vocabulary and happens in the child
(`synthesize_prompt_ids` is the pure part of that).
"""

import csv
import json
import math
import random
import tomllib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.spec import DatasetSpec
from tuibench.core.traces import MOONCAKE_BLOCK_TOKENS, read_trace, sniff


class RequestSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One request to make. Lengths-only for the paper's datasets; text for user data.

    `output_tokens` is None only for ShareGPT, where it is the length of the reference answer
    in the model's tokenizer, counted in the child.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt: str | None = None
    reference_output: str | None = None
    # Shared-prefix: which of the dataset's system prompts begins this one, and its length (within input_tokens).
    prefix: int | None = None
    # The tokens of input_tokens that come before this request's own: a shared system prompt, or a conversation's
    # turns so far (as planned: its user messages and its replies of their planned lengths).
    prefix_tokens: int = 0
    # Conversations: the one this request is a turn of, and which turn (from 0).
    conversation: int | None = None
    turn: int = 0
    # A trace: when it is sent, seconds after the trace's first request at its speed, and its prompt's blocks
    # (Mooncake's hash_ids: requests that share a block id share those tokens of their prompts).
    arrival_s: float | None = None
    hash_ids: tuple[int, ...] = ()


SYNTHETIC = ("random", "shared-prefix", "conversations")  # datasets of lengths drawn here, sized by --num-requests


class BuiltinDataset(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    lengths: str
    source: str
    reconstructed: bool = False


@cache
def scenario_files() -> dict[str, dict]:
    """Every TOML file shipped in scenarios/ (inside the package), parsed: its name without .toml -> its tables.
    A [dataset] table is one of the paper's datasets, a [plan] table a ready-made plan."""
    return {entry.name.removesuffix(".toml"): tomllib.loads(entry.read_text())
            for entry in sorted(resources.files("tuibench.data").iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


@cache
def builtin_datasets() -> dict[str, BuiltinDataset]:
    """The datasets shipped in scenarios/*.toml, by name."""
    found = {}
    for table in scenario_files().values():
        if "dataset" in table:
            dataset = msgspec.convert(table["dataset"], BuiltinDataset)
            found[dataset.name] = dataset
    return dict(sorted(found.items()))


def dataset_from_arg(arg: str, *, input_len: int = 128, output_len: int = 128, range_ratio: float = 0.0,
                     prefixes: int = 4, prefix_len: int = 256, turns: int = 4, trace_speed: float = 1.0) -> DatasetSpec:
    """Interprets `--dataset`: a builtin name, `random`, `shared-prefix`, `conversations`, a .jsonl / ShareGPT
    .json file, or a timestamped trace (a Mooncake .jsonl, an Azure or BurstGPT .csv)."""
    if arg == "conversations":
        if min(input_len, output_len, turns) < 1:
            raise UserError("conversations need --turns, --input-len and --output-len of at least 1")
        return DatasetSpec(kind="conversations", source="conversations", input_len=input_len, output_len=output_len,
                           turns=turns)
    if arg == "shared-prefix":
        if min(input_len, output_len, prefixes, prefix_len) < 1:
            raise UserError("shared-prefix needs --prefixes, --prefix-len, --input-len and --output-len of at least 1")
        return DatasetSpec(kind="shared-prefix", source="shared-prefix", input_len=input_len, output_len=output_len,
                           prefixes=prefixes, prefix_len=prefix_len)
    if arg == "random":
        if input_len < 1 or output_len < 1:
            raise UserError("--input-len and --output-len must be at least 1")
        if not 0.0 <= range_ratio < 1.0:
            raise UserError(f"--range-ratio must be in [0, 1), got {range_ratio}")
        return DatasetSpec(
            kind="random", source="random", input_len=input_len, output_len=output_len, range_ratio=range_ratio
        )
    if arg in builtin_datasets():
        return DatasetSpec(kind="builtin", source=arg)
    path = Path(arg).expanduser()
    if path.suffix in (".jsonl", ".csv") and path.is_file():
        source = str(path.resolve())
        if trace_format := sniff(source, _read_text(source, first_line=True).strip()):
            if trace_speed <= 0:
                raise UserError(f"--trace-speed must be positive, got {trace_speed:g}")
            return DatasetSpec(kind="trace", source=source, trace_format=trace_format, trace_speed=trace_speed)
        if path.suffix == ".csv":
            raise UserError(f"{arg}: not a trace tuibench reads: a CSV dataset is an Azure LLM inference trace "
                            "(TIMESTAMP,ContextTokens,GeneratedTokens) or BurstGPT's (Timestamp,...,Request tokens,"
                            "Response tokens,...)")
        return DatasetSpec(kind="jsonl", source=source)
    if path.suffix == ".json" and path.is_file():
        return DatasetSpec(kind="sharegpt", source=str(path.resolve()))
    choices = ", ".join([*builtin_datasets(), *SYNTHETIC])
    if path.suffix in (".jsonl", ".json", ".csv"):
        raise UserError(f"dataset file {arg} does not exist: give the path to an existing .jsonl, ShareGPT .json or "
                        "trace .csv file")
    raise UserError(f"unknown dataset '{arg}': choose one of {choices}, or give a .jsonl, ShareGPT .json or trace "
                    ".csv file")


def load_requests(spec: DatasetSpec, num_requests: int | None, seed: int) -> list[RequestSpec]:
    """All requests of a dataset, or `num_requests` of them sampled reproducibly with `seed`."""
    rng = random.Random(seed)
    if num_requests is not None and num_requests < 1:
        raise UserError(f"--num-requests must be at least 1, got {num_requests}")
    if spec.kind in SYNTHETIC:
        if num_requests is None:
            raise UserError(f"the {spec.kind} dataset needs --num-requests N")
        if spec.kind == "conversations":
            return _conversations(spec, num_requests)
        if spec.kind == "shared-prefix":
            # Each request one of the system prompts, drawn at random (so groups interleave, as users do).
            return [RequestSpec(input_tokens=spec.prefix_len + spec.input_len, output_tokens=spec.output_len,
                                prefix=rng.randrange(spec.prefixes), prefix_tokens=spec.prefix_len)
                    for _ in range(num_requests)]
        return [_random_request(spec, rng) for _ in range(num_requests)]
    # A copy: the builtin tables are cached and must not be changed through what we return.
    requests = _load_trace(spec) if spec.kind == "trace" else \
        list({"builtin": _load_builtin, "jsonl": _load_jsonl, "sharegpt": _load_sharegpt}[spec.kind](spec.source))
    if num_requests is None:
        return requests
    if num_requests > len(requests):
        raise UserError(f"{spec.label} has {len(requests)} requests; --num-requests {num_requests} asks for more")
    if spec.kind == "trace":  # its first N, not a sample: its schedule is what is replayed, and a sample thins it
        return requests[:num_requests]
    return [requests[i] for i in rng.sample(range(len(requests)), num_requests)]


def _conversations(spec: DatasetSpec, num_requests: int) -> list[RequestSpec]:
    """`num_requests` turns, conversation by conversation (the last may have fewer turns): turn t's prompt is the
    t turns before it, each a user message and its reply, then a user message of its own."""
    per_turn = spec.input_len + spec.output_len
    return [RequestSpec(input_tokens=turn * per_turn + spec.input_len, output_tokens=spec.output_len,
                        prefix_tokens=turn * per_turn, conversation=i // spec.turns, turn=turn)
            for i in range(num_requests) for turn in (i % spec.turns,)]


def _random_request(spec: DatasetSpec, rng: random.Random) -> RequestSpec:
    def draw(length: int) -> int:
        # The whole numbers inside [len*(1-r), len*(1+r)], never outside it (and never below 1).
        low = max(1, math.ceil(length * (1 - spec.range_ratio)))
        high = max(low, math.floor(length * (1 + spec.range_ratio)))
        return rng.randint(low, high)

    return RequestSpec(input_tokens=draw(spec.input_len), output_tokens=draw(spec.output_len))


@cache
def _load_builtin(name: str) -> list[RequestSpec]:
    text = resources.files("tuibench.data").joinpath(builtin_datasets()[name].lengths).read_text()
    return [
        RequestSpec(input_tokens=int(row["input_tokens"]), output_tokens=int(row["output_tokens"]))
        for row in csv.DictReader(text.splitlines())
    ]


def _load_jsonl(path: str) -> list[RequestSpec]:
    requests = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.msg}); each line must be an object like "
                            '{"prompt": "...", "output_tokens": 128}') from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"]:
            raise UserError(f'{where}: each line needs a non-empty string "prompt"')
        output_tokens = row.get("output_tokens")
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 1:
            raise UserError(f'{where}: "output_tokens" must be a positive integer, got {output_tokens!r}')
        requests.append(RequestSpec(prompt=row["prompt"], output_tokens=output_tokens))
    if not requests:
        raise UserError(f"{path}: no requests in the file")
    return requests


def _load_sharegpt(path: str) -> list[RequestSpec]:
    """ShareGPT: a list of {"conversations": [{"from": "human"|..., "value": ...}, ...]}.

    Like vLLM's benchmark, each conversation gives one request: its first human turn is the prompt, and the length
    in tokens of the answer after it is the output target. A conversation without a human turn (a system prompt
    and a model's turns alone) gives none: its first turn is no user's prompt.
    """
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); expected a ShareGPT file") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: a ShareGPT file is a JSON list of conversations")
    requests = []
    for item in data:
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list):
            continue
        turns = [t for t in turns if isinstance(t, dict) and isinstance(t.get("value"), str) and t["value"]]
        asked = next((i for i, t in enumerate(turns) if t.get("from") in _HUMAN), None)
        if asked is not None and asked + 1 < len(turns) and turns[asked + 1].get("from") not in _HUMAN:
            requests.append(RequestSpec(prompt=turns[asked]["value"], reference_output=turns[asked + 1]["value"]))
    if not requests:
        raise UserError(f'{path}: no conversation with a human turn and an answer after it ({{"conversations": '
                        f'[{{"from": "human", "value": ...}}, {{"from": "gpt", "value": ...}}]}})')
    return requests


def _load_trace(spec: DatasetSpec) -> list[RequestSpec]:
    rows = read_trace(spec.source, _read_text(spec.source), spec.trace_format)
    start_s = rows[0].at_s
    # A prompt's blocks come first (prefix_tokens of them: the last block may be cut short), its own tokens after.
    return [RequestSpec(input_tokens=max(1, row.input_tokens), output_tokens=row.output_tokens,
                        arrival_s=(row.at_s - start_s) / spec.trace_speed, hash_ids=row.hash_ids,
                        prefix_tokens=min(max(1, row.input_tokens), len(row.hash_ids) * MOONCAKE_BLOCK_TOKENS))
            for row in rows]


_HUMAN = ("human", "user")  # ShareGPT's name for the user's turns, and the OpenAI-style one


def _read_text(path: str, first_line: bool = False) -> str:
    """The file's text; `first_line`: its first non-blank line only, the rest unread (what tells a trace's format,
    and a production trace runs to gigabytes)."""
    try:
        with open(path, encoding="utf-8") as file:
            return next((line for line in file if line.strip()), "") if first_line else file.read()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def synthesize_prompt_ids(input_tokens: Sequence[int], vocab_ids: Sequence[int], seed: int) -> list[list[int]]:
    """Token-id prompts of exactly the given lengths, drawn reproducibly from `vocab_ids`."""
    rng = random.Random(seed)
    return [rng.choices(vocab_ids, k=n) for n in input_tokens]

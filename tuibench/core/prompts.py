"""Turns a workload's requests into token-id prompts with the model's tokenizer (in the child).

Pure: the tokenizer is any object with the Hugging Face tokenizer's ids (`all_special_ids`, `len`, `encode`), so the
scenarios, the engines and the load generator all reach it from below them.
"""

from collections.abc import Sequence

import msgspec

from tuibench.core.traces import MOONCAKE_BLOCK_TOKENS
from tuibench.core.workload import RequestSpec, synthesize_prompt_ids


class Prompt(msgspec.Struct, frozen=True):
    index: int
    ids: list[int]
    output_tokens: int


def plain_vocab_ids(tokenizer) -> list[int]:
    """Every token id except special and added ones, so a random prompt never holds a control token."""
    excluded = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    return [i for i in range(len(tokenizer)) if i not in excluded]


PREFIX_SEED = 7_000_003  # the shared system prompts are drawn with the run's seed plus this


def _trace_blocks(requests: Sequence[RequestSpec], vocab: Sequence[int], seed: int) -> dict[int, list[int]]:
    """The tokens of each block id a trace names (Mooncake's hash_ids): one id, the same tokens in every prompt."""
    names = sorted({h for r in requests for h in r.hash_ids})
    return dict(zip(names, synthesize_prompt_ids([MOONCAKE_BLOCK_TOKENS] * len(names), vocab, seed + PREFIX_SEED),
                    strict=True))


def materialize(requests: Sequence[RequestSpec], tokenizer, seed: int) -> list[Prompt]:
    lengths_only = [i for i, r in enumerate(requests) if r.prompt is None]
    synthesized = {}
    if lengths_only:
        vocab = plain_vocab_ids(tokenizer)
        # A request with a shared prefix: that system prompt's ids, then its own.
        own = [requests[i].input_tokens - requests[i].prefix_tokens for i in lengths_only]
        ids = synthesize_prompt_ids(own, vocab, seed)
        groups = sorted({r.prefix for r in requests if r.prefix is not None})
        if groups:
            length = max(r.prefix_tokens for r in requests if r.prefix is not None)
            shared = dict(zip(groups, synthesize_prompt_ids([length] * len(groups), vocab, seed + PREFIX_SEED),
                              strict=True))
            ids = [shared[requests[i].prefix][:requests[i].prefix_tokens] + tail if requests[i].prefix is not None
                   else tail for i, tail in zip(lengths_only, ids, strict=True)]
        if any(requests[i].hash_ids for i in lengths_only):
            blocks = _trace_blocks(requests, vocab, seed)
            ids = [[t for h in requests[i].hash_ids for t in blocks[h]][:requests[i].prefix_tokens] + tail
                   for i, tail in zip(lengths_only, ids, strict=True)]
        synthesized = dict(zip(lengths_only, ids, strict=True))
    prompts = []
    for i, request in enumerate(requests):
        ids = synthesized[i] if request.prompt is None else tokenizer.encode(request.prompt)
        output_tokens = request.output_tokens
        if output_tokens is None:  # ShareGPT: the reference answer's length in this tokenizer
            output_tokens = max(1, len(tokenizer.encode(request.reference_output or "", add_special_tokens=False)))
        prompts.append(Prompt(i, ids, output_tokens))
    return prompts

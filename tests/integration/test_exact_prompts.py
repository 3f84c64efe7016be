"""Text prompts fitted to a tokenizer, with the real SmolLM2 tokenizer: random token ids decoded to text do not
re-tokenize to their own length (128 planned came to 134 on vLLM), fitted text does, whatever the counter adds."""

import asyncio

import pytest

from tuibench.core.prompts import plain_vocab_ids
from tuibench.core.workload import synthesize_prompt_ids
from tuibench.loadgen.exact import fit_text, local_count


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def _fit_all(tokenizer, prompts, count):
    async def fit():
        return [await fit_text(ids, len(ids), tokenizer, count) for ids in prompts]

    return asyncio.run(fit())


def test_decoded_random_ids_drift_and_fitted_text_does_not(tokenizer):
    prompts = synthesize_prompt_ids([128] * 20, plain_vocab_ids(tokenizer), seed=0)
    unfitted = [len(tokenizer(tokenizer.decode(ids))["input_ids"]) for ids in prompts]
    assert sum(n != 128 for n in unfitted) >= 10  # the drift is real, and large: it is why fitting exists
    fitted = _fit_all(tokenizer, prompts, local_count(tokenizer))
    assert [counted for _, counted in fitted] == [128] * 20
    assert all(len(tokenizer(text)["input_ids"]) == 128 for text, _ in fitted)


def test_a_counter_that_adds_its_own_tokens_is_fitted_to_as_well(tokenizer):
    """A server that puts a BOS before the text (or counts otherwise) is met where it counts."""
    count = local_count(tokenizer)

    async def with_bos(text: str) -> int:
        return await count(text) + 1

    prompts = synthesize_prompt_ids([32, 64, 200], plain_vocab_ids(tokenizer), seed=1)
    assert [counted for _, counted in _fit_all(tokenizer, prompts, with_bos)] == [32, 64, 200]

"""A stand-in for TensorRT-LLM's offline interface (tests/stand_ins/README.md): `LLM` and `SamplingParams` as
tuibench calls them, greedy "tokens" that are the prompt's last id repeated."""

from types import SimpleNamespace


class SamplingParams:
    def __init__(self, max_tokens: int, ignore_eos: bool = False, temperature: float = 1.0):
        self.max_tokens, self.ignore_eos, self.temperature = max_tokens, ignore_eos, temperature


class LLM:
    def __init__(self, model: str, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1, **options):
        self.model, self.options = model, options
        self.parallel = (tensor_parallel_size, pipeline_parallel_size)
        self.running = True

    def generate(self, prompts: list[list[int]], params: list[SamplingParams], use_tqdm: bool = True) -> list:
        assert self.running, "generate after shutdown"
        return [SimpleNamespace(prompt_token_ids=ids, outputs=[SimpleNamespace(token_ids=[ids[-1]] * p.max_tokens)])
                for ids, p in zip(prompts, params, strict=True)]

    def shutdown(self) -> None:
        self.running = False

"""llama.cpp through llama-cpp-python: offline on the model's GGUF directly, serving through its
OpenAI-compatible server (`python -m llama_cpp.server`), managed on 127.0.0.1.

llama-cpp-python's `Llama` holds one sequence, so offline requests run one after another; every token
is stamped as it comes out of `Llama.generate`, which gives real TTFT, ITL and E2EL per request. The
GGUF is what the embedded model ships (Q4_1): llama.cpp computes on those quantised weights, the other
libraries on their dequantised copy.
"""

import sys
import time
from collections.abc import Sequence

from tuibench.backends.engine import Availability, Backend, Generated, timed_from_stamps
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.prompts import Prompt
from tuibench.servers.managed import ServerCommand

HINT = "pip install 'llama-cpp-python[server]' (it builds from source: about 3.5 minutes on 2 cores)"


def gguf_of(ref) -> str:
    if not ref.gguf_path:
        raise UserError(f"llama.cpp runs GGUF files and {ref.name} has none: use --model smollm2-135m, whose GGUF ships "
                        "with it")
    return ref.gguf_path


def context_needed(lengths: list[int]) -> int:
    """A context that holds the longest request, rounded up to a multiple of 256."""
    return max(512, -(-max(lengths) // 256) * 256)


def load_llama(gguf: str, n_ctx: int, threads: int, seed: int):
    from llama_cpp import Llama

    return Llama(model_path=gguf, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512, seed=seed,
                 verbose=False)


def greedy_tokens(llm, prompt_ids: list[int], count: int, on_token=None) -> list[int]:
    """`count` greedy tokens after `prompt_ids`, EOS or not (the length is held, as for every library)."""
    out = []
    for token in llm.generate(prompt_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(token)
        if on_token is not None:
            on_token()
        if len(out) >= count:
            break
    return out


def evaluated_prompt_tokens(llm, generated: int) -> int:
    """The prompt tokens llama.cpp holds in its context after `generated` tokens came out (the last one is
    sampled, not yet evaluated): what it was handed, as it counts it."""
    return llm.n_tokens - max(0, generated - 1)


class LlamaCppBackend(Backend):
    name = "llamacpp"
    scenarios = frozenset({"offline", "serving"})
    batching = "sequential"  # a Llama holds one sequence
    # Its server takes text prompts only, and holds lengths with min_tokens (it ignores ignore_eos).
    serving_overrides = {"prompt_ids": False, "length_policy": "vllm"}

    @classmethod
    def availability(cls) -> Availability:
        return Availability.of_modules("llama_cpp", hint=HINT)

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        from tuibench.models.resolve import resolve_model

        gguf = gguf_of(resolve_model(spec.model))
        return ServerCommand(
            name="llama.cpp server",
            argv=[sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
                  "--n_threads", str(spec.threads), "--n_threads_batch", str(spec.threads), "--n_ctx", "4096",
                  "--model_alias", model_path,
                  # By default a new request interrupts the one being generated: under load that cuts outputs short.
                  "--interrupt_requests", "False"],
            port=port,
            env={"OMP_NUM_THREADS": str(spec.threads)},
            health_path="/v1/models",
        )

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        # The prompts are the converted model's tokenizer's (the scenario's): it has the GGUF's vocabulary, so they
        # are the same ids everywhere.
        spec = ctx.spec
        gguf = gguf_of(ctx.model)
        self._llm = load_llama(gguf, context_needed([len(p.ids) + p.output_tokens for p in prompts]), spec.threads,
                               spec.seed)
        return f"llama.cpp loaded {gguf} ({spec.threads} thread(s)); one sequence at a time, batch size unused"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        (prompt,) = prompts  # one at a time (batching is sequential); EOS never ends it (greedy_tokens holds lengths)
        count = min(prompt.output_tokens, max_output_tokens or prompt.output_tokens)
        stamps: list[float] = []
        start = time.perf_counter()
        tokens = greedy_tokens(self._llm, prompt.ids, count, lambda: stamps.append(time.perf_counter()))
        return Generated(start_s=start, requests=[timed_from_stamps(
            prompt.index, start, stamps, output_tokens=len(tokens),
            counted_input_tokens=evaluated_prompt_tokens(self._llm, len(tokens)))])

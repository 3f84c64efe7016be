"""llama.cpp through llama-cpp-python: offline on the model's GGUF directly, serving through its
OpenAI-compatible server (`python -m llama_cpp.server`), managed on 127.0.0.1.

llama-cpp-python's `Llama` holds one sequence, so offline requests run one after another; every token
is stamped as it comes out of `Llama.generate`, which gives real TTFT, ITL and E2EL per request. The
GGUF is what the embedded model ships (Q4_1): llama.cpp computes on those quantised weights, the other
libraries on their dequantised copy.
"""

import sys
import time

from tuibench.backends.base import Availability, Backend, RunContext
from tuibench.core.errors import UserError
from tuibench.core.records import RequestRecord
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

    def run(self, ctx: RunContext) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from tuibench.backends.hf_transformers import WARMUP_OUTPUT_TOKENS, check_context
        from tuibench.backends.prompts import materialize
        from tuibench.models.convert import ensure_converted

        spec = ctx.spec
        gguf = gguf_of(ctx.model)
        ctx.phase("loading", ctx.model.name)
        # The HF tokenizer of the converted model has the GGUF's vocabulary: prompts are the same ids everywhere.
        path = ensure_converted(ctx.model, ctx.log)
        tokenizer = AutoTokenizer.from_pretrained(path)
        prompts = materialize(ctx.requests, tokenizer, spec.seed)
        check_context(prompts, AutoConfig.from_pretrained(path), ctx.model.name)
        llm = load_llama(gguf, context_needed([len(p.ids) + p.output_tokens for p in prompts]), spec.threads, spec.seed)
        ctx.log(f"llama.cpp loaded {gguf} ({spec.threads} thread(s)); one sequence at a time, batch size unused")

        ctx.phase("warmup", "1 request, not counted")
        greedy_tokens(llm, prompts[0].ids, min(prompts[0].output_tokens, WARMUP_OUTPUT_TOKENS))
        ctx.phase("measuring", "one request at a time")
        for done, prompt in enumerate(prompts, start=1):
            stamps: list[float] = []
            start = time.perf_counter()
            tokens = greedy_tokens(llm, prompt.ids, prompt.output_tokens, lambda: stamps.append(time.perf_counter()))
            ctx.request_done(RequestRecord(
                index=prompt.index, input_tokens=len(prompt.ids), output_tokens=len(tokens),
                counted_input_tokens=evaluated_prompt_tokens(llm, len(tokens)),
                target_output_tokens=prompt.output_tokens, start_s=ctx.clock_s(start),
                ttft_ms=(stamps[0] - start) * 1000.0, e2el_ms=(stamps[-1] - start) * 1000.0,
                itl_ms=[(b - a) * 1000.0 for a, b in zip(stamps, stamps[1:], strict=False)],
            ))
            ctx.progress("measuring", done, len(prompts))


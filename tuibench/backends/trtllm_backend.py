"""TensorRT-LLM: serving through `trtllm-serve` (its PyTorch backend), offline through `tensorrt_llm.LLM`. On a CUDA
GPU only: listed everywhere else as unavailable, with that reason.

It pins a torch of its own (tensorrt-llm 1.2.1: torch 2.9 to 2.10), so `make install TRTLLM=1` puts it in
`.venv-trtllm` and its server starts from there (backends/own_env.py). What trtllm-serve takes only as a file (dtype,
the KV-cache reuse switch, speculative decoding, its Prometheus metrics) goes in an options file written at launch.
"""

import json
import time
from collections.abc import Sequence

from tuibench.backends.engine import Availability, Backend, Generated, Timed, dtype_name
from tuibench.backends.own_env import gpu_server_availability, launcher, require_in_process
from tuibench.core.context import Context
from tuibench.core.paths import data_dir
from tuibench.core.prompts import Prompt
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.server_metrics import LIBRARIES

SERVE_VARIABLE = "TUIBENCH_TRTLLM_SERVE"  # a trtllm-serve program, where it lives elsewhere


def serve_program() -> str | None:
    return launcher("trtllm", SERVE_VARIABLE, "trtllm-serve", "tensorrt_llm")


def llm_options(spec) -> dict[str, object]:
    """LLM(...) keyword arguments beyond the model and the parallel sizes: also the server's options file."""
    options: dict[str, object] = {"dtype": dtype_name(spec.dtype, on_gpu=True)}
    if spec.random_weights:
        options["load_format"] = "dummy"
    if spec.prefix_caching is not None:  # its KV-cache block reuse is its prefix cache
        options["kv_cache_config"] = {"enable_block_reuse": spec.prefix_caching}
    if spec.speculative_tokens:
        options["speculative_config"] = {"decoding_type": "NGram", "max_draft_len": spec.speculative_tokens,
                                         "max_matching_ngram_size": 4}
    return options


class TrtllmBackend(Backend):
    name = "trtllm"
    scenarios = frozenset({"offline", "serving"})
    random_weight_scenarios = frozenset({"offline", "serving"})  # load_format="dummy"
    batching = "continuous"
    # Its OpenAI routes take token ids, ignore_eos and min_tokens.
    serving_overrides = {"prompt_ids": True, "length_policy": "vllm"}
    # Its KV-cache block reuse is on by default, and no route empties it: a reused server is restarted instead.
    caches_prefixes = True

    @classmethod
    def availability(cls) -> Availability:
        return gpu_server_availability("TensorRT-LLM", "tensorrt_llm", serve_program() is not None, "TRTLLM=1",
                                       SERVE_VARIABLE, "its trtllm-serve")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        options_file = data_dir() / "servers" / f"trtllm-{port}.yaml"
        argv = [serve_program() or "trtllm-serve", model_path, "--host", "127.0.0.1", "--port", str(port),
                "--backend", "pytorch", "--tp_size", str(spec.parallel.tensor),
                "--pp_size", str(spec.parallel.pipeline), "--extra_llm_api_options", str(options_file)]
        # Its Prometheus route exists only with per-request perf metrics on. JSON is YAML, which it reads.
        options = {**llm_options(spec), "return_perf_metrics": True}
        return ServerCommand(name="trtllm-serve", argv=argv, port=port, env={"HF_HUB_OFFLINE": "1"},
                             metrics_path=LIBRARIES["trtllm"].path, files={str(options_file): json.dumps(options)})

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        from tuibench.models.convert import ensure_converted

        require_in_process("tensorrt_llm", "TensorRT-LLM", "trtllm")
        path = ensure_converted(ctx.model, ctx.log)
        from tensorrt_llm import LLM

        spec = ctx.spec
        self._llm = LLM(model=str(path), tensor_parallel_size=spec.parallel.tensor,
                        pipeline_parallel_size=spec.parallel.pipeline, **llm_options(spec))
        return f"TensorRT-LLM engine ready: {spec.model_label}, {llm_options(spec)['dtype']}"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        from tensorrt_llm import SamplingParams

        params = [SamplingParams(max_tokens=min(p.output_tokens, max_output_tokens or p.output_tokens),
                                 ignore_eos=not honor_eos, temperature=0.0) for p in prompts]
        start = time.perf_counter()
        outputs = self._llm.generate([p.ids for p in prompts], params, use_tqdm=False)
        end = time.perf_counter()
        # Offline, the engine answers the batch whole: its latency is the batch's, with no first-token time.
        return Generated(start_s=start, requests=[Timed(
            index=prompt.index, counted_input_tokens=len(output.prompt_token_ids),
            output_tokens=len(output.outputs[0].token_ids), e2el_ms=(end - start) * 1000.0)
            for prompt, output in zip(prompts, outputs, strict=True)])

    def close(self) -> None:
        if getattr(self, "_llm", None) is not None:
            self._llm.shutdown()
            self._llm = None

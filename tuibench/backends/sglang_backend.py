"""SGLang: serving through its OpenAI-compatible server (`python -m sglang.launch_server`, metrics on), offline
through `sglang.Engine`. On a CUDA GPU only: listed everywhere else as unavailable, with that reason.

It pins a torch of its own (sglang 0.5.23: torch 2.14.1, beside tuibench's 2.13.0), so `make install SGLANG=1`
puts it in `.venv-sglang` and its server starts from there (backends/own_env.py); an offline run needs it importable
in tuibench's own environment.
"""

import time
from collections.abc import Sequence

from tuibench.backends.engine import Availability, Backend, Generated, Timed, dtype_name
from tuibench.backends.own_env import gpu_server_availability, launcher, require_in_process
from tuibench.core.context import Context
from tuibench.core.prompts import Prompt
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.server_metrics import LIBRARIES

PYTHON_VARIABLE = "TUIBENCH_SGLANG_PYTHON"  # a python that has sglang, where it lives elsewhere


def server_python() -> str | None:
    return launcher("sglang", PYTHON_VARIABLE, "python", "sglang")


def engine_arguments(spec) -> dict[str, object]:
    """What the server and `sglang.Engine` take from the spec beyond the model: keys are Engine's keyword arguments,
    the server's flags the same names with dashes (its ServerArgs is both)."""
    options: dict[str, object] = {"dtype": dtype_name(spec.dtype, on_gpu=True), "random_seed": spec.seed}
    if spec.random_weights:
        options["load_format"] = "dummy"  # weights drawn, no file read
    if spec.parallel.tensor > 1:
        options["tp_size"] = spec.parallel.tensor
    if spec.parallel.pipeline > 1:
        options["pp_size"] = spec.parallel.pipeline
    if spec.parallel.data > 1:
        options["dp_size"] = spec.parallel.data
    if spec.prefix_caching is False:  # its radix cache is on by default
        options["disable_radix_cache"] = True
    if spec.speculative_tokens:
        # Proposals from n-grams of the request's own tokens, as vLLM's: no draft model to load.
        options["speculative_algorithm"] = "NGRAM"
        options["speculative_num_draft_tokens"] = spec.speculative_tokens
    return options


class SglangBackend(Backend):
    name = "sglang"
    scenarios = frozenset({"offline", "serving"})
    random_weight_scenarios = frozenset({"offline", "serving"})  # load_format="dummy"
    batching = "continuous"  # Engine.generate takes every request at once and schedules them itself
    # Its OpenAI routes take token ids, ignore_eos, min_tokens and continuous usage stats as vLLM's do.
    serving_overrides = {"prompt_ids": True, "length_policy": "vllm"}
    reset_cache_path = "/flush_cache"  # empties its radix cache (POST), between steps that share the server

    @classmethod
    def availability(cls) -> Availability:
        return gpu_server_availability("SGLang", "sglang", server_python() is not None, "SGLANG=1", PYTHON_VARIABLE,
                                       "a python that has it")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        argv = [server_python() or "python", "-m", "sglang.launch_server", "--model-path", model_path,
                "--host", "127.0.0.1", "--port", str(port), "--enable-metrics"]
        for name, value in engine_arguments(spec).items():
            flag = "--" + name.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
        return ServerCommand(name="sglang", argv=argv, port=port, env={"HF_HUB_OFFLINE": "1"},
                             metrics_path=LIBRARIES["sglang"].path)

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        from tuibench.models.convert import ensure_converted

        require_in_process("sglang", "SGLang", "sglang")
        path = ensure_converted(ctx.model, ctx.log)
        import sglang

        self._engine = sglang.Engine(model_path=str(path), log_level="error", **engine_arguments(ctx.spec))
        return f"SGLang engine ready: {ctx.spec.model_label}, {engine_arguments(ctx.spec)['dtype']}"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        params = [{"max_new_tokens": min(p.output_tokens, max_output_tokens or p.output_tokens),
                   "ignore_eos": not honor_eos, "temperature": 0.0} for p in prompts]
        start = time.perf_counter()
        outputs = self._engine.generate(input_ids=[p.ids for p in prompts], sampling_params=params)
        end = time.perf_counter()
        # Offline, the engine answers the batch whole: its latency is the batch's, with no first-token time.
        return Generated(start_s=start, requests=[Timed(
            index=prompt.index, counted_input_tokens=output["meta_info"].get("prompt_tokens"),
            output_tokens=int(output["meta_info"]["completion_tokens"]), e2el_ms=(end - start) * 1000.0)
            for prompt, output in zip(prompts, outputs, strict=True)])

    def close(self) -> None:
        if getattr(self, "_engine", None) is not None:
            self._engine.shutdown()
            self._engine = None

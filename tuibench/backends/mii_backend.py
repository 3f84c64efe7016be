"""DeepSpeed-MII: offline through `mii.pipeline` (static chunks, as the paper ran it), serving through MII's
OpenAI-compatible server. MII's FastGen kernels need a CUDA GPU of compute capability 8.0 or newer;
everywhere else it is listed as unavailable with that reason.
"""

import sys
import time
from collections.abc import Sequence

from tuibench.backends.engine import Availability, Backend, Generated, Timed
from tuibench.core.context import Context
from tuibench.core.prompts import Prompt
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.devices import detect_gpus

MIN_COMPUTE_CAPABILITY = (8, 0)
MII_HINT = "pip install 'tuibench[mii]' on a machine with a CUDA GPU of compute capability ≥ 8.0"


def capable_gpus() -> tuple[list[str], list[str]]:
    """(names of GPUs MII can run on, names of the others), by NVML compute capability."""
    able, other = [], []
    for gpu in detect_gpus():
        try:
            capability = tuple(int(part) for part in (gpu.compute_capability or "0.0").split("."))
        except ValueError:
            capability = (0, 0)
        (able if capability >= MIN_COMPUTE_CAPABILITY else other).append(f"{gpu.name} ({gpu.compute_capability})")
    return able, other


def mii_availability(modules: Availability, able: list[str], other: list[str]) -> Availability:
    if not able:
        found = f"found only {', '.join(other)}" if other else "no CUDA GPU here"
        return Availability(False, f"DeepSpeed-MII needs a CUDA GPU of compute capability ≥ 8.0; {found}")
    return modules


def fitted_texts(prompts, tokenizer) -> list[str]:
    """Each prompt as text the tokenizer counts at its planned length (MII tokenizes what it is given)."""
    import asyncio

    from tuibench.loadgen.exact import fit_text, local_count

    async def fit_all() -> list[str]:
        return [(await fit_text(p.ids, len(p.ids), tokenizer, local_count(tokenizer)))[0] for p in prompts]

    return asyncio.run(fit_all())


class MiiBackend(Backend):
    name = "mii"
    scenarios = frozenset({"offline", "serving"})
    # MII's server takes text and maps min_tokens to min_new_tokens (it has no ignore_eos switch).
    serving_overrides = {"prompt_ids": False, "length_policy": "vllm"}

    @classmethod
    def availability(cls) -> Availability:
        return mii_availability(Availability.of_modules("mii", hint=MII_HINT), *capable_gpus())

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        return ServerCommand(
            name="mii",
            argv=[sys.executable, "-m", "mii.entrypoints.openai_api_server", "--model", model_path,
                  "--deployment-name", f"tuibench-{port}", "--host", "127.0.0.1", "--port", str(port)],
            port=port,
            env={"HF_HUB_OFFLINE": "1"},
        )

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:  # pragma: no cover - needs a CUDA GPU ≥ 8.0
        from tuibench.models.convert import ensure_converted

        path = ensure_converted(ctx.model, ctx.log)
        import mii

        # MII takes text: fitted so that it tokenizes to the planned ids' count.
        self._texts = dict(zip((p.index for p in prompts), fitted_texts(prompts, self.tokenizer(ctx)), strict=True))
        self._pipe = mii.pipeline(str(path))
        return f"MII pipeline ready: {ctx.spec.model_label}"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:  # pragma: no cover - needs a CUDA GPU ≥ 8.0
        longest = max(min(p.output_tokens, max_output_tokens or p.output_tokens) for p in prompts)
        start = time.perf_counter()
        responses = self._pipe([self._texts[p.index] for p in prompts], max_new_tokens=longest, min_new_tokens=longest,
                               do_sample=False, ignore_eos=not honor_eos)
        end = time.perf_counter()
        # The pipeline answers a whole chunk at once: no first-token time, the chunk's time as latency.
        return Generated(start_s=start, requests=[Timed(
            index=prompt.index, counted_input_tokens=getattr(response, "prompt_length", None),
            output_tokens=int(getattr(response, "generated_length", prompt.output_tokens)),
            e2el_ms=(end - start) * 1000.0) for prompt, response in zip(prompts, responses, strict=True)])

    def close(self) -> None:
        if getattr(self, "_pipe", None) is not None:  # pragma: no cover - needs a CUDA GPU ≥ 8.0
            self._pipe.destroy()
            self._pipe = None

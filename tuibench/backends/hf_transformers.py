"""HF transformers, offline: static batches through `generate`, left padding, greedy.

Per step timing comes from a stopping criterion that `generate` calls once after every new token:
it stamps the time and tells each row when it has reached its own target length, so one static
batch yields per-request TTFT, ITL and E2EL, and the batch's prefill/decode split.
"""

import sys
import time
from collections.abc import Sequence

import msgspec

from tuibench.backends.base import Availability, Backend, RunContext, dtype_name
from tuibench.backends.prompts import Prompt, materialize, plain_vocab_ids
from tuibench.core.errors import UserError
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.servers.managed import ServerCommand
from tuibench.telemetry.devices import cuda_visible

WARMUP_OUTPUT_TOKENS = 32  # a warm-up batch exercises prefill and decode; its full length adds nothing


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


def batch_records(ctx_clock, batch: int, prompts: Sequence[Prompt], result: BatchResult) -> tuple[list[RequestRecord], BatchRecord]:
    """Per-request records and the batch record of one timed batch, on the run's clock."""
    steps, start = result.step_s, result.start_s
    ttft_ms = (steps[0] - start) * 1000.0
    records = []
    for prompt, count, counted in zip(prompts, result.output_tokens, result.prompt_tokens, strict=True):
        records.append(RequestRecord(
            index=prompt.index,
            input_tokens=len(prompt.ids),
            counted_input_tokens=counted,
            output_tokens=count,
            target_output_tokens=prompt.output_tokens,
            start_s=ctx_clock(start),
            ttft_ms=ttft_ms,
            e2el_ms=(steps[count - 1] - start) * 1000.0,
            itl_ms=[(steps[k] - steps[k - 1]) * 1000.0 for k in range(1, count)],
            batch=batch,
        ))
    batch_record = BatchRecord(
        batch=batch, size=len(prompts), start_s=ctx_clock(start), prefill_ms=ttft_ms,
        decode_ms=(steps[-1] - steps[0]) * 1000.0, decode_steps=len(steps) - 1,
    )
    return records, batch_record


def load_model(path, device: str, dtype: str, attn: str | None = None, random_weights: bool = False):
    """Tokenizer and eval-mode model from a local HF folder, on the requested device and dtype. With random weights
    the model is built from its config directly on the device (no weights read, none copied over)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    torch_device = pick_device(torch, device)
    torch_dtype = pick_dtype(torch, dtype, torch_device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if random_weights:
        with torch.device(torch_device):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch_dtype,
                                                     attn_implementation=attn)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn)
    return tokenizer, model.to(torch_device).eval()


def context_limit(config) -> int | None:
    """The model's longest context from its config (a config.json dict or a transformers config), RoPE scaling
    included."""
    from tuibench.models.architectures import context_tokens

    return context_tokens(config if isinstance(config, dict) else config.to_dict())


def check_context(prompts: Sequence[Prompt], config, model_name: str) -> None:
    limit = context_limit(config)
    longest = max(prompts, key=lambda p: len(p.ids) + p.output_tokens)
    needed = len(longest.ids) + longest.output_tokens
    if limit and needed > limit:
        raise UserError(
            f"request {longest.index} needs {needed} tokens of context but {model_name} has {limit}: "
            "pick a dataset with shorter requests or a model with a longer context"
        )


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

    def run(self, ctx: RunContext) -> None:
        from tuibench.models.convert import ensure_converted

        spec, params = ctx.spec, ctx.spec.offline
        ctx.phase("loading", ctx.model.name)
        path = ensure_converted(ctx.model, ctx.log)
        tokenizer, model = load_model(path, spec.device, spec.dtype, random_weights=spec.random_weights)
        import torch

        ctx.log(f"loaded {spec.model_label} on {model.device} as {model.dtype}, {torch.get_num_threads()} thread(s)")
        prompts = materialize(ctx.requests, tokenizer, spec.seed)
        check_context(prompts, model.config, ctx.model.name)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        engine = StaticBatchEngine(model, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        batches = [prompts[i:i + params.batch_size] for i in range(0, len(prompts), params.batch_size)]

        ctx.phase("warmup", f"{min(params.warmup_batches, len(batches))} batch(es), not counted")
        for batch in batches[: params.warmup_batches]:
            engine.generate(batch, max_output_tokens=WARMUP_OUTPUT_TOKENS)

        ctx.phase("measuring")
        done = 0
        for number, batch in enumerate(batches):
            result = engine.generate(batch, honor_eos=params.honor_eos)
            records, batch_record = batch_records(ctx.clock_s, number, batch, result)
            for record in records:
                ctx.request_done(record)
            ctx.batch_done(batch_record)
            done += len(batch)
            ctx.progress("measuring", done, len(prompts))

    def profile(self, ctx: RunContext) -> None:
        from tuibench.models.convert import ensure_converted
        from tuibench.profiling.cpu_roofline import roofline_for
        from tuibench.profiling.hf_profile import profile_model

        spec, params = ctx.spec, ctx.spec.profile
        ctx.phase("loading", ctx.model.name)
        tokenizer, model = load_model(ensure_converted(ctx.model, ctx.log), spec.device, spec.dtype, params.attn,
                                      random_weights=spec.random_weights)
        check_profile_lengths(params, model.config, ctx.model.name)
        import torch

        cuda = model.device.type == "cuda"
        dtype = str(model.dtype).removeprefix("torch.")
        roofline = roofline_for(torch.cuda.get_device_name(model.device) if cuda else None, dtype, spec.threads,
                                in_process=True)
        ctx.log(f"profiling {ctx.model.name} on {model.device} as {dtype}, attention {params.attn}; "
                f"roofline: {roofline.device if roofline else 'none (device not in the table)'}")
        ctx.phase("measuring", f"lengths {', '.join(map(str, params.lengths))}, batch {params.batch_size}")
        profile_model(model, lengths=params.lengths, batch=params.batch_size, decode_steps=params.decode_steps,
                      repeats=params.repeats, token_ids=plain_vocab_ids(tokenizer), seed=spec.seed, roofline=roofline,
                      timer_mode=params.timer,
                      emit=ctx.module_timings, progress=lambda done, total: ctx.progress("measuring", done, total))


def check_profile_lengths(params, config, model_name: str) -> None:
    max_positions = context_limit(config)
    needed = max(params.lengths) + params.decode_steps
    if max_positions and needed > max_positions:
        raise UserError(f"--lengths up to {max(params.lengths)} plus {params.decode_steps} decode steps need {needed} "
                        f"positions but {model_name} has {max_positions}: use shorter lengths")

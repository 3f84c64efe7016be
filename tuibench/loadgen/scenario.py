"""The serving scenario, in the run's child process: prompts from the dataset, sent to an endpoint."""

import asyncio
import os

from tuibench.backends.base import RunContext
from tuibench.backends.prompts import materialize
from tuibench.core.errors import UserError
from tuibench.loadgen.client import Endpoint, Prompted
from tuibench.loadgen.driver import LoadPlan, drive


def run_serving(ctx: RunContext) -> None:
    from transformers import AutoTokenizer

    from tuibench.models.convert import ensure_converted

    spec, params = ctx.spec, ctx.spec.serving
    if not params.endpoint:
        raise UserError("the serving scenario needs an endpoint: --endpoint URL, or a library tuibench can launch")
    api_key = None
    if params.api_key_env:
        api_key = os.environ.get(params.api_key_env)
        if not api_key:
            raise UserError(f"--api-key-env {params.api_key_env}: that environment variable is not set")
    ctx.phase("loading", f"tokenizer of {ctx.model.name}")
    tokenizer = AutoTokenizer.from_pretrained(ensure_converted(ctx.model, ctx.log))
    prompts = [
        Prompted(p.index, p.ids if params.prompt_ids else tokenizer.decode(p.ids), len(p.ids), p.output_tokens)
        for p in materialize(ctx.requests, tokenizer, spec.seed)
    ]
    endpoint = Endpoint(base_url=params.endpoint, model=params.served_model or ctx.model.path, api=params.api,
                        length_policy=params.length_policy, api_key=api_key)
    plan = LoadPlan(rate_rps=params.request_rate or float("inf"), burstiness=params.burstiness,
                    max_concurrency=params.max_concurrency, warmup_requests=params.warmup_requests,
                    timeout_s=params.timeout_s, seed=spec.seed)
    ctx.phase("warmup", f"{min(params.warmup_requests, len(prompts))} request(s), not counted")
    asyncio.run(drive(endpoint, prompts, plan, ctx.request_done, ctx.clock_s, on_measuring=lambda: ctx.phase("measuring")))

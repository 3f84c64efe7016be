"""The offline scenario: every request of the workload through the engine, batched as the engine takes them.

Prompts are made with the engine's tokenizer and checked against the model's context; the engine loads for them;
then a warm-up that is not counted, and the measured batches, each request's record, the batch's record where the
engine times its steps, and the progress after each batch.
"""

from collections.abc import Callable, Sequence

import msgspec

from tuibench.backends.engine import Backend, Batching, Generated
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.prompts import Prompt, materialize
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import OfflineParams

WARMUP_OUTPUT_TOKENS = 32  # a warm-up batch exercises prefill and decode; its full length adds nothing


def run(engine: Backend, ctx: Context) -> None:
    spec, params = ctx.spec, ctx.spec.offline
    ctx.phase("loading", ctx.model.name)
    prompts = materialize(ctx.requests, engine.tokenizer(ctx), spec.seed)
    check_context(prompts, engine.model_config(ctx), ctx.model.name)
    try:
        if line := engine.load(ctx, prompts):
            ctx.log(line)
        plan = plan_batches(engine.batching, prompts, params)
        ctx.phase("warmup", plan.warmup_detail)
        for batch in plan.warmups:
            # Held short and never stopped at EOS: what warms the engine is a prefill and some decode steps.
            engine.generate(batch, max_output_tokens=WARMUP_OUTPUT_TOKENS)
        ctx.phase("measuring", plan.measuring_detail)
        done = 0
        for number, batch in enumerate(plan.batches):
            generated = engine.generate(batch, honor_eos=params.honor_eos)
            records, batch_record = records_of(number if engine.batching == "static" else None, batch, generated,
                                               ctx.clock_s)
            for record in records:
                ctx.request_done(record)
            if batch_record is not None:
                ctx.batch_done(batch_record)
            done += len(batch)
            ctx.progress("measuring", done, len(prompts))
    finally:
        engine.close()


class Batches(msgspec.Struct, frozen=True, kw_only=True):
    """The calls of an offline run: the measured batches and the warm-up ones, each with its phase's detail."""

    batches: list[list[Prompt]]
    measuring_detail: str
    warmups: list[list[Prompt]]
    warmup_detail: str


def plan_batches(batching: Batching, prompts: Sequence[Prompt], params: OfflineParams) -> Batches:
    """Static batches warm up on the first --warmup-batches of them; an engine that takes every request at once, on
    one call of a batch's worth of them; one that takes them one by one, on the first request."""
    if batching == "continuous":
        warm = list(prompts[: params.batch_size])
        return Batches(batches=[list(prompts)], measuring_detail="all requests at once", warmups=[warm],
                       warmup_detail=f"{len(warm)} request(s), not counted")
    if batching == "sequential":
        return Batches(batches=[[p] for p in prompts], measuring_detail="one request at a time",
                       warmups=[list(prompts[:1])], warmup_detail="1 request, not counted")
    size = params.batch_size
    batches = [list(prompts[i:i + size]) for i in range(0, len(prompts), size)]
    warm = batches[: params.warmup_batches]
    return Batches(batches=batches, measuring_detail=f"static batches of {size}", warmups=warm,
                   warmup_detail=f"{len(warm)} batch(es), not counted")


def records_of(number: int | None, prompts: Sequence[Prompt], generated: Generated,
               clock: Callable[[float], float]) -> tuple[list[RequestRecord], BatchRecord | None]:
    """Each request's record of one generated batch (`number`: the static batch it ran in), and the batch's record
    where the engine timed its steps, on the run's clock."""
    by_index = {p.index: p for p in prompts}
    start_s = clock(generated.start_s)
    records = []
    for timed in generated.requests:
        prompt = by_index[timed.index]
        records.append(RequestRecord(
            index=prompt.index, input_tokens=len(prompt.ids), counted_input_tokens=timed.counted_input_tokens,
            output_tokens=timed.output_tokens, target_output_tokens=prompt.output_tokens, start_s=start_s,
            ttft_ms=timed.ttft_ms, e2el_ms=timed.e2el_ms, itl_ms=timed.itl_ms, batch=number,
        ))
    split = generated.split
    if split is None or number is None:
        return records, None
    return records, BatchRecord(batch=number, size=len(prompts), start_s=start_s, prefill_ms=split.prefill_ms,
                                decode_ms=split.decode_ms, decode_steps=split.decode_steps)


def context_limit(config: dict) -> int | None:
    """The model's longest context from its config, RoPE scaling included."""
    from tuibench.models.architectures import context_tokens

    return context_tokens(config)


def check_context(prompts: Sequence[Prompt], config: dict, model_name: str) -> None:
    limit = context_limit(config)
    longest = max(prompts, key=lambda p: len(p.ids) + p.output_tokens)
    needed = len(longest.ids) + longest.output_tokens
    if limit and needed > limit:
        raise UserError(
            f"request {longest.index} needs {needed} tokens of context but {model_name} has {limit}: "
            "pick a dataset with shorter requests or a model with a longer context"
        )

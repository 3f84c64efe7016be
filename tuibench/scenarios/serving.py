"""The serving scenario, in the run's child process: prompts from the dataset, sent to an endpoint.

The engine is the library whose server answers (launched by the run service, or the user's); here it only gives the
tokenizer prompts are made with. Sending is the load generator's (tuibench/loadgen/).
"""

import asyncio
import os

import msgspec

from tuibench.backends.engine import Backend
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.events import FirstRequest
from tuibench.core.plan import rate_label
from tuibench.core.prompts import materialize
from tuibench.core.timing import PERF_COUNTER
from tuibench.core.workload import RequestSpec
from tuibench.loadgen.client import Endpoint, auth_headers
from tuibench.loadgen.conversations import drive_conversations
from tuibench.loadgen.exact import prepare
from tuibench.loadgen.driver import LoadPlan, drive, freeze_heap

PREPARE_TIMEOUT_S = 60.0
WARMUP_SEED = 1_000_003  # warm-up token ids are drawn with the run's seed plus this: never the measured ones
# What the load generator reads and waits on. ctx.clock_s, the run's clock, maps perf_counter readings (the parent's
# origin crosses into this child on it): the load's time source must be that same clock.
TIME_SOURCE = PERF_COUNTER


def run(engine: Backend, ctx: Context) -> None:
    spec, params = ctx.spec, ctx.spec.serving
    if not params.endpoint:
        raise UserError("the serving scenario needs an endpoint: --endpoint URL, or a library tuibench can launch")
    api_key = None
    if params.api_key_env:
        api_key = os.environ.get(params.api_key_env)
        if not api_key:
            raise UserError(f"--api-key-env {params.api_key_env}: that environment variable is not set")
    ctx.phase("loading", f"tokenizer of {ctx.model.name}")
    tokenizer = engine.tokenizer(ctx)

    measured = materialize(ctx.requests, tokenizer, spec.seed)
    # Warm-ups of the same shapes as the first requests but other tokens: sending measured prompts would make
    # the first measured request a prefix-cache hit on a server with one (vLLM's default).
    shapes = [RequestSpec(input_tokens=len(p.ids), output_tokens=p.output_tokens)
              for p in measured[: params.warmup_requests]]
    warmups = materialize(shapes, tokenizer, spec.seed + WARMUP_SEED)
    endpoint = Endpoint(base_url=params.endpoint, model=params.served_model or ctx.model.path, api=params.api,
                        length_policy=params.length_policy, api_key=api_key)
    plan = LoadPlan(rate_rps=params.request_rate or float("inf"), burstiness=params.burstiness,
                    max_concurrency=params.max_concurrency, timeout_s=params.timeout_s, seed=spec.seed,
                    trace_s=trace_schedule_s(ctx.requests, measured))

    async def prepare_and_drive() -> None:
        import aiohttp

        ctx.phase("loading", "prompts of the planned lengths")
        # Asking the server how to send prompts is no measured request: --timeout (which may be meant to fail slow
        # requests) does not bound it, a minute does.
        asking_s = max(params.timeout_s, PREPARE_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=asking_s)) as session:
                prepared, warm = await prepare(session, endpoint, [(p.index, p.ids, p.output_tokens) for p in measured],
                                               [(p.index, p.ids, p.output_tokens) for p in warmups], tokenizer,
                                               params.prompt_ids, auth_headers(endpoint))
        except TimeoutError:
            raise RuntimeError(f"{endpoint.base_url} did not answer within {asking_s:g} s when asked how it takes "
                               "prompts (token ids or text), before any request was measured") from None
        unfitted = f"; {prepared.unfitted} could not be fitted exactly" if prepared.unfitted else ""
        ctx.log(f"prompts sent as {prepared.mode}{unfitted}")
        ctx.phase("warmup", f"{len(warm)} request(s) of the same shapes, not counted")
        # The tokenizer and the prompts are hundreds of thousands of objects that live as long as the run.
        freeze_heap()

        async def server_histograms() -> None:
            await asyncio.to_thread(_server_histograms, ctx)

        answered = []

        def on_warmup(record) -> None:
            if not answered:  # the run's first request: after a cold start, the server's last part of it
                answered.append(record)
                ctx.emit(FirstRequest(t_s=ctx.clock_s(), ttft_ms=record.ttft_ms))

        if any(r.conversation is not None for r in ctx.requests):
            await drive(endpoint, [], plan, ctx.request_done, ctx.clock_s, warmups=warm, on_warmup=on_warmup,
                        time_source=TIME_SOURCE)
            await server_histograms()
            # Each turn as planned in full (the conversation so far and its own message), its own message the prompt.
            turns = [msgspec.structs.replace(p, input_tokens=ctx.requests[p.index].input_tokens,
                                             conversation=ctx.requests[p.index].conversation,
                                             turn=ctx.requests[p.index].turn) for p in prepared.prompts]
            ctx.log(f"{len({t.conversation for t in turns})} conversations start at {rate_label(params.request_rate)}/s;"
                    " each turn is sent once the reply before it came" +
                    (f", {params.think_time_s:g} s later" if params.think_time_s else ""))
            ctx.phase("measuring")
            await drive_conversations(endpoint, turns, plan, ctx.request_done, ctx.clock_s,
                                      lambda text: tokenizer.encode(text, add_special_tokens=False),
                                      params.think_time_s, time_source=TIME_SOURCE)
            await server_histograms()
            return
        if params.client_workers == 1:
            await drive(endpoint, prepared.prompts, plan, ctx.request_done, ctx.clock_s,
                        on_measuring=lambda: ctx.phase("measuring"), warmups=warm, before_measuring=server_histograms,
                        on_warmup=on_warmup, time_source=TIME_SOURCE)
            await server_histograms()
            return
        from tuibench.loadgen.workers import drive_split

        await drive(endpoint, [], plan, ctx.request_done, ctx.clock_s, warmups=warm, on_warmup=on_warmup,
                    time_source=TIME_SOURCE)  # from here
        await server_histograms()
        offsets = plan.offsets_s(len(prepared.prompts))
        pool = None
        where = "client processes"
        if ctx.cluster is not None:
            pool = await asyncio.to_thread(ctx.cluster.client_pool, params.client_workers)
            where = f"Ray actors on the cluster ({len(ctx.cluster.nodes)} node(s))"
        ctx.log(f"{params.client_workers} {where} send the schedule: request k from worker k mod "
                f"{params.client_workers}")
        await asyncio.to_thread(drive_split, endpoint, prepared.prompts, offsets, params.client_workers,
                                params.timeout_s, ctx.request_done, ctx.clock_s,
                                on_measuring=lambda: ctx.phase("measuring"), pool=pool, time_source=TIME_SOURCE)
        await server_histograms()

    asyncio.run(prepare_and_drive())


def trace_schedule_s(requests, prompts) -> tuple[float, ...] | None:
    """A trace's send times of `prompts`, in their order; None for a workload without one."""
    times = [requests[p.index].arrival_s for p in prompts]
    return None if None in times else tuple(times)


def _server_histograms(ctx: Context) -> None:
    """The server's latency histograms as they stand (before the measured requests, and after them): the
    difference is what the run added. Nothing for a server without them."""
    from tuibench.core.events import TelemetrySample
    from tuibench.core.server_view import SERVER_HISTOGRAMS
    from tuibench.telemetry.server_metrics import histogram_snapshot

    if ctx.server_metrics_url and (buckets := histogram_snapshot(ctx.server_metrics_url)):
        ctx.emit(TelemetrySample(t_s=ctx.clock_s(), source=SERVER_HISTOGRAMS, values=buckets))

"""A known-answer OpenAI-compatible server: every request streams its tokens on a schedule set in advance.

    tuibench mock-server --ttft-ms T --itl-ms I [--jitter-ms J] [--tokens-per-chunk K] [--max-concurrency N] [--port P]
                         [--metrics vllm|sglang|trtllm]

The first token leaves T ms after the request got a slot, then one every I ms (each gap uniform within ±J),
each request held to its length (max_tokens or max_completion_tokens; min_tokens where larger), streamed a token a
chunk or, with --tokens-per-chunk K, the first token alone and then K a chunk, each when its last is due; then a usage
chunk when asked (`stream_options.include_usage`; with `continuous_usage_stats`, the running usage in every chunk
too, as vLLM sends it) and `[DONE]`. Chunks follow OpenAI's schema whole (id, object, created, model, and each
choice's index, text or delta, logprobs and finish_reason). Beyond the concurrency limit a request waits
for a slot, and its TTFT counts the wait, as on a real server. Every send is scheduled on absolute deadlines
from the slot, so the gaps do not drift.

With --metrics it also exports Prometheus metrics in that library's names (servers/mock_metrics.py).

It is the ground truth of tuibench's client (the tests hold the measured TTFT, TPOT and ITL to the set values),
and a tool for checking any client, network path or proxy.
"""

import asyncio
import contextlib
import json
import random
import time
from typing import Annotated, Literal

import msgspec

from tuibench.core.options import Opt
from tuibench.core.timing import sleep_until


_Ms = Annotated[float, msgspec.Meta(ge=0.0)]


class MockConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The server's schedule: its flags are generated from these declarations."""

    ttft_ms: Annotated[_Ms, Opt("time to the first token", "mock", unit="ms")] = 50.0
    itl_ms: Annotated[_Ms, Opt("gap between tokens", "mock", unit="ms")] = 10.0
    jitter_ms: Annotated[_Ms, Opt("each gap uniform within ±this", "mock", unit="ms")] = 0.0
    max_concurrency: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, Opt(
        "requests served at once; the rest wait (default: no limit)", "mock")] = None
    tokens_per_chunk: Annotated[Annotated[int, msgspec.Meta(ge=1)], Opt(
        "tokens in each streamed chunk after the first, sent when its last token is due: 1 is a chunk per token; K "
        "is a server with a stream interval, or speculative decoding accepting K tokens a step", "mock")] = 1
    model: Annotated[str, Opt("the model name it serves", "mock")] = "mock"
    metrics: Annotated[Literal["none", "vllm", "sglang", "trtllm"], Opt(
        "export Prometheus metrics in this library's names, at its route: requests running and waiting, KV-cache "
        "use, prompt tokens, TTFT and E2EL histograms", "mock")] = "none"
    seed: Annotated[int, Opt("seed of the jitter", "mock")] = 0


def prompt_tokens(prompt) -> int:
    """Token ids are counted as they are; text by its whitespace-separated words (there is no tokenizer here)."""
    if isinstance(prompt, list):
        return len(prompt)
    return len(str(prompt).split())


def _sse(data: dict) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class MockServer:
    def __init__(self, config: MockConfig):
        self.config = config
        self._rng = random.Random(config.seed)
        self._slots = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None
        self.requests = 0
        self.running = self.waiting = 0  # requests holding a slot, and waiting for one
        self.metrics = None
        if config.metrics != "none":
            from tuibench.servers.mock_metrics import MockMetrics

            self.metrics = MockMetrics(config.metrics, config.max_concurrency, lambda: self.running,
                                       lambda: self.waiting)

    def app(self):
        from aiohttp import web

        app = web.Application()
        app.add_routes([web.post("/v1/completions", self.completions), web.post("/v1/chat/completions", self.chat),
                        web.get("/v1/models", self.models), web.get("/health", self.health)])
        if self.metrics is not None:
            app.add_routes([web.get(self.metrics.names.path, self.prometheus)])
        return app

    async def prometheus(self, request):
        from aiohttp import web

        return web.Response(body=self.metrics.text(), content_type="text/plain")

    async def health(self, request):
        from aiohttp import web

        return web.Response(text="ok")

    async def models(self, request):
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": self.config.model, "object": "model"}]})

    async def completions(self, request):
        return await self._serve(request, chat=False)

    async def chat(self, request):
        return await self._serve(request, chat=True)

    def _schedule(self, tokens: int, slot_s: float) -> list[float]:
        """The perf_counter deadline of each token: the first after TTFT, then the gaps, jittered."""
        config = self.config
        deadlines, at = [], slot_s + config.ttft_ms / 1000.0
        for _ in range(tokens):
            deadlines.append(at)
            jitter = self._rng.uniform(-config.jitter_ms, config.jitter_ms) if config.jitter_ms else 0.0
            at += max(0.0, config.itl_ms + jitter) / 1000.0
        return deadlines

    async def _serve(self, request, chat: bool):
        from aiohttp import web

        arrived = time.perf_counter()
        body = await request.json()
        if body.get("model") != self.config.model:
            return web.json_response({"error": {"message": f"The model `{body.get('model')}` does not exist."}},
                                     status=404)
        limit = body.get("max_completion_tokens" if chat else "max_tokens") or body.get("max_tokens") or 16
        tokens = max(int(limit), int(body.get("min_tokens") or 0))
        prompt = body.get("messages", [{}])[-1].get("content", "") if chat else body.get("prompt", "")
        usage = _usage(prompt_tokens(prompt), tokens)
        self.requests += 1
        # OpenAI's schema whole (peers' clients check it: AIPerf drops chunks without id and object).
        ident = {"id": f"cmpl-mock-{self.requests}", "created": int(time.time()), "model": self.config.model}
        async with self._slot():
            return await self._answer(request, body, chat, arrived, tokens, usage, ident)

    @contextlib.asynccontextmanager
    async def _slot(self):
        """A concurrency slot held (there is always one without a limit): counted as waiting, then as running."""
        self.waiting += 1
        try:
            if self._slots:
                await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            if self._slots:
                self._slots.release()

    async def _answer(self, request, body: dict, chat: bool, arrived: float, tokens: int, usage: dict, ident: dict):
        from aiohttp import web

        # The clock starts when the request holds a slot: at once without a limit, after its wait with one.
        deadlines = self._schedule(tokens, time.perf_counter() if self._slots else arrived)
        if self.metrics is not None:
            self.metrics.prompt(usage["prompt_tokens"])
        if not body.get("stream"):
            await sleep_until(deadlines[-1] if deadlines else arrived)
            text = "tok " * tokens
            choice = {"index": 0, "finish_reason": "length",
                      **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}
            return web.json_response({**ident, "object": "chat.completion" if chat else "text_completion",
                                      "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        options = body.get("stream_options") or {}
        running = options.get("include_usage") and options.get("continuous_usage_stats")
        head = {**ident, "object": "chat.completion.chunk" if chat else "text_completion"}
        sent = 0
        for last, count in _chunks(tokens, self.config.tokens_per_chunk):
            await sleep_until(deadlines[last])
            if chat and not sent:
                # The role alone (an empty content would read as a token to some clients), and with the first
                # token, as vLLM's server sends it: sent at once, vLLM's bench client, which times any chunk with
                # choices, read it as the first token (a TTFT of 1 ms).
                opening = {"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}
                await response.write(_sse({**head, "choices": [opening]}))
            finish = "length" if last == tokens - 1 else None
            text = "tok " * count
            choice = {"index": 0, **({"delta": {"content": text}} if chat else {"text": text}),
                      "logprobs": None, "finish_reason": finish}
            sent += count
            # vLLM's continuous usage stats: the running count in every chunk, so a client knows its size.
            extra = {"usage": _usage(usage["prompt_tokens"], sent)} if running else {}
            await response.write(_sse({**head, "choices": [choice], **extra}))
            if self.metrics is not None and last == 0:
                self.metrics.observe("ttft", time.perf_counter() - arrived)
        if self.metrics is not None:
            self.metrics.observe("e2el", time.perf_counter() - arrived)
        if options.get("include_usage"):
            await response.write(_sse({**head, "choices": [], "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunks(tokens: int, per_chunk: int) -> list[tuple[int, int]]:
    """(index of its last token, tokens in it) of each streamed chunk: the first token alone, as a server sends it
    once its prefill is done, then `per_chunk` tokens at a time (the last chunk what is left)."""
    chunks = [(0, 1)] if tokens else []
    for first in range(1, tokens, per_chunk):
        last = min(first + per_chunk, tokens) - 1
        chunks.append((last, last - first + 1))
    return chunks


def serve(config: MockConfig, host: str, port: int, on_ready=lambda url: None) -> None:
    """Serves until interrupted (Ctrl-C, SIGTERM)."""
    from aiohttp import web

    async def main() -> None:
        runner = web.AppRunner(MockServer(config).app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        on_ready(f"http://{host}:{port}")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())

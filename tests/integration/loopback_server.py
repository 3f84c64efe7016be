"""A small OpenAI-compatible streaming server on 127.0.0.1, run in a thread, for testing the client.

Each behaviour is chosen by the request's prompt, so one server serves every case.
"""

import asyncio
import json
import threading

from aiohttp import web


def _chunk(text: str, usage: dict | None = None) -> bytes:
    data = {"choices": [{"index": 0, "text": text}] if text else [], **({"usage": usage} if usage else {})}
    return f"data: {json.dumps(data)}\n\n".encode()


SEEN: list[tuple[str, int]] = []  # (path, client port) of every request: which connection each came on


def _seen(request: web.Request) -> None:
    SEEN.append((request.path, request.transport.get_extra_info("peername")[1]))


async def completions(request: web.Request) -> web.StreamResponse:
    _seen(request)
    body = await request.json()
    mode, tokens = body["prompt"], body["max_tokens"]
    if request.headers.get("Authorization") not in (None, "Bearer sesame"):
        return web.Response(status=401, text="bad key")
    if mode == "http500":
        return web.Response(status=500, text="internal error: boom")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if mode == "malformed":
        await response.write(b"data: {not json\n\n")
        return response
    if mode == "slow":
        await response.write(_chunk("x"))
        await asyncio.sleep(5)
    for i in range(tokens):
        await response.write(b": keep-alive comment\n\n" if i == 0 else b"")
        await response.write(_chunk(f"t{i}"))
        await asyncio.sleep(0.002)
    if mode != "no-usage":
        await response.write(_chunk("", usage={"prompt_tokens": 7, "completion_tokens": tokens}))
    if mode != "no-done":
        await response.write(b"data: [DONE]\n\n")
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Chat streaming: a role-only first delta, then content deltas, usage, [DONE]."""
    body = await request.json()
    assert body["messages"][0]["role"] == "user"
    tokens = body["max_completion_tokens"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    deltas = [{"role": "assistant"}] + [{"content": f"w{i} "} for i in range(tokens)]
    for delta in deltas:
        await response.write(f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode())
        await asyncio.sleep(0.002)
    usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": tokens}}
    await response.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
    return response


async def models(request: web.Request) -> web.Response:
    """An OpenAI-style model list naming no model: any served-model name is taken (tuibench looks here first)."""
    _seen(request)
    return web.json_response({"object": "list", "data": []})


class LoopbackServer:
    def __init__(self):
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/completions", completions)
        app.router.add_post("/v1/chat/completions", chat_completions)
        app.router.add_get("/v1/models", models)
        self._runner = web.AppRunner(app, handler_cancellation=True)  # a client that gave up ends its handler
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

"""One streamed request to an OpenAI-compatible server, timed chunk by chunk on the client.

Every failure is counted and named, never raised: refused connection, timeout, HTTP status,
malformed stream, disconnect.
"""

import asyncio
import time
from typing import Literal

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.loadgen.http import ConnectFailed, HttpError
from tuibench.loadgen.sse import DONE, MalformedStream, choice_carries_token, choice_text, first_choice, parse_line

Api = Literal["completions", "chat"]
# How a server is asked to hold an output to its target length (none: max_tokens only, EOS may end it early).
LengthPolicy = Literal["vllm", "transformers", "none"]


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str  # e.g. http://127.0.0.1:8000
    model: str  # the model name the server serves
    api: Api = "completions"
    length_policy: LengthPolicy = "vllm"
    api_key: str | None = None  # read from the environment by the caller; never stored

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + ("/v1/completions" if self.api == "completions" else "/v1/chat/completions")


class Prompted(msgspec.Struct, frozen=True):
    """A request to send: its prompt and lengths."""

    index: int
    prompt: list[int] | str  # token ids where the server takes them, else text
    input_tokens: int  # as planned
    output_tokens: int
    counted_input_tokens: int | None = None  # the server's count of a text prompt, from its tokenize route
    # A turn of a conversation (loadgen/conversations.py): which, and which turn. On the chat API its prompt is the
    # conversation's messages so far, the last one the user's; `prompt` is then that last message alone.
    conversation: int | None = None
    turn: int | None = None
    messages: list[dict[str, str]] | None = None


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}


_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.Encoder().encode  # a tenth of json.dumps's time


async def warm_up(session, endpoint: Endpoint) -> None:
    """One round trip before the clock starts (a GET of /v1/models), which leaves its connection in the session's
    pool: a measured request then finds a warm one, as it does in a single-process run after the warm-ups."""
    try:
        async with session.get(endpoint.base_url.rstrip("/") + "/v1/models", headers=auth_headers(endpoint)) as response:
            await response.read()
    except HttpError:
        pass  # the measured requests will say what is wrong with the server


def request_body(endpoint: Endpoint, request: Prompted, token_ids: bool = False) -> dict:
    """The request's JSON; `token_ids`: ask a vLLM server for the ids it generates (a conversation's next turn
    then holds exactly those)."""
    body: dict = {"model": endpoint.model, "stream": True, "temperature": 0.0,
                  "stream_options": {"include_usage": True}}
    if token_ids and endpoint.length_policy == "vllm":  # vLLM's extension, as ignore_eos is; others get the text
        body["return_token_ids"] = True
    if endpoint.length_policy == "vllm":
        # vLLM's (and SGLang's) running usage in every chunk: the tokens each chunk carried, so ITL can be counted
        # per token too (core/itl.py). Servers without it ignore it (llama.cpp); OpenAI's own API is "none".
        body["stream_options"]["continuous_usage_stats"] = True
    if endpoint.api == "completions":
        body["prompt"] = request.prompt
        body["max_tokens"] = request.output_tokens
    else:
        body["messages"] = request.messages or [{"role": "user", "content": request.prompt}]
        body["max_completion_tokens"] = request.output_tokens
    if endpoint.length_policy == "vllm":
        body["ignore_eos"] = True
        body["min_tokens"] = request.output_tokens
    elif endpoint.length_policy == "transformers":
        # transformers serve rejects unknown fields; it takes a generation config as a JSON string.
        body["generation_config"] = msgspec.json.encode(
            {"max_new_tokens": request.output_tokens, "min_new_tokens": request.output_tokens, "do_sample": False}
        ).decode()
    return body


def _record(request: Prompted, scheduled_s: float, start: float, end: float, chunks: list[float], sizes: list[int],
            output_tokens: int | None, prompt_tokens: int | None, error: str | None, clock,
            slot_wait_s: float | None) -> RequestRecord:
    if error is None and not chunks:
        error = "empty response: the stream ended without any text"
    ok = error is None
    produced = output_tokens if output_tokens is not None else len(chunks)
    return RequestRecord(
        index=request.index,
        input_tokens=request.input_tokens,
        counted_input_tokens=prompt_tokens if prompt_tokens is not None else request.counted_input_tokens,
        output_tokens=produced if ok else 0,
        target_output_tokens=request.output_tokens,
        scheduled_s=clock(scheduled_s),
        start_s=clock(start),
        client_queue_ms=None if slot_wait_s is None else slot_wait_s * 1000.0,
        ttft_ms=(chunks[0] - start) * 1000.0 if ok else None,
        # E2EL ends at the last token, as in vLLM's client: not at the usage chunk or [DONE] after it. So
        # E2EL - TTFT is exactly the sum of the ITLs.
        e2el_ms=(chunks[-1] - start) * 1000.0 if ok else None,
        itl_ms=[(b - a) * 1000.0 for a, b in zip(chunks, chunks[1:])] if ok else [],
        # Kept where some chunk carried several tokens and the sizes add up to the count (else unknown, or one each).
        chunk_tokens=sizes if ok and any(size > 1 for size in sizes) and sum(sizes) == produced else [],
        error=error,
        failed_after_ms=None if ok else (end - start) * 1000.0,
        conversation=request.conversation,
        turn=request.turn,
    )


async def send(session, endpoint: Endpoint, request: Prompted, scheduled_s: float, timeout_s: float,
               clock, now=time.perf_counter, slot_wait_s: float | None = None,
               reply: list[str] | None = None, reply_ids: list[int] | None = None) -> RequestRecord:
    """Sends `request`, planned for `scheduled_s`, and returns its record.

    `now()` is the time source (perf_counter: a test scripts it); `clock` maps its readings to the run's clock.
    `slot_wait_s` is how long the request waited for a concurrency slot before this call (client queue time;
    None without a limit). `reply`, when given, gets the text of the answer, piece by piece, and `reply_ids` the
    ids a vLLM server says it generated (a conversation's next turn holds the answer).
    """
    headers = auth_headers(endpoint) | _JSON
    stream = _Stream(reply, reply_ids)
    error = None
    start = now()
    try:
        async with asyncio.timeout(timeout_s):
            body = request_body(endpoint, request, token_ids=reply_ids is not None)
            async with session.post(endpoint.url, data=_encode(body), headers=headers) as response:
                if response.status != 200:
                    text = (await response.text())[:300].replace("\n", " ")
                    error = f"HTTP {response.status}: {text}"
                else:
                    # Whole reads, split here (a line iterator costs a round of buffer machinery per line, and SSE
                    # has two a chunk). Every line of one read came at that read's time.
                    pending, done = b"", False
                    async for block in response.content.iter_any():
                        arrived = now()
                        *lines, pending = (pending + block).split(b"\n")
                        for line in lines:
                            if line and line != b"\r" and stream.take(line, arrived):  # SSE's blank lines: half
                                done = True
                                break
                        if done:
                            break
                    else:
                        if pending.strip():
                            stream.take(pending, now())
    except TimeoutError:
        error = f"timeout after {timeout_s:g} s"
    except MalformedStream as exc:
        error = f"malformed stream: {exc}"
    except ConnectFailed as exc:
        error = f"connection failed: {exc}"
    except HttpError as exc:  # disconnected, or reset by a server killed while it read the request (seen under load)
        error = str(exc)
    usage_output = stream.usage_output
    if usage_output is None and stream.finished == "length":
        # No usage from this server (llama.cpp's), and chunks may carry several tokens each (it holds text back
        # at partial UTF-8 or stop strings): stopped by max_tokens means exactly that many tokens came out.
        usage_output = request.output_tokens
    return _record(request, scheduled_s, start, now(), stream.chunks, stream.sizes, usage_output, stream.usage_prompt,
                   error, clock, slot_wait_s)


class _Stream:
    """What a streamed reply said, line by line: when each token chunk came, the tokens it carried (as the server
    said, else 1), the usage and the finish reason; and, where asked, the reply's text and token ids."""

    __slots__ = ("chunks", "sizes", "usage_output", "usage_prompt", "finished", "reply", "reply_ids")

    def __init__(self, reply: list[str] | None, reply_ids: list[int] | None):
        self.chunks: list[float] = []
        self.sizes: list[int] = []
        self.usage_output: int | None = None
        self.usage_prompt: int | None = None
        self.finished: str | None = None
        self.reply, self.reply_ids = reply, reply_ids

    def take(self, line: bytes, arrived: float) -> bool:
        """One line, come at `arrived`; True at the stream's end ([DONE])."""
        chunk = parse_line(line)
        if chunk is DONE:
            return True
        if chunk is None:
            return False
        choice = first_choice(chunk)  # read once: this runs for every chunk of every request
        carried = choice is not None and choice_carries_token(choice)
        ids = ()
        if carried:
            self.chunks.append(arrived)
            ids = choice.token_ids or ()
            self.sizes.append(len(ids) or 1)
            if self.reply is not None:
                self.reply.append(choice_text(choice))
            if self.reply_ids is not None:
                self.reply_ids.extend(ids)
        if (usage := chunk.usage) is not None:
            completion = usage.completion_tokens
            if carried and not ids and completion is not None:  # a running count, in every chunk
                self.sizes[-1] = max(completion - (self.usage_output or 0), 1)
            if completion is not None:
                self.usage_output = completion
            if usage.prompt_tokens is not None:
                self.usage_prompt = usage.prompt_tokens
        if choice is not None and choice.finish_reason:
            self.finished = choice.finish_reason
        return False

"""Server-sent events as OpenAI-compatible servers stream them: `data: {json}` lines, `data: [DONE]` at the end.

A chunk is decoded straight into the few fields the client reads (msgspec Structs: every other field is skipped
in C, no dict is built for it): a 16-token reply parsed in 13 µs where dicts took 18.7.
"""

from typing import Any

import msgspec

DONE = object()


class MalformedStream(Exception):
    """The server sent something that is not an SSE data line of JSON."""


class Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None


class Choice(msgspec.Struct):
    text: str | None = None  # a completion's; a chat's is in its delta
    delta: Delta | None = None
    finish_reason: str | None = None
    token_ids: list[int] | None = None  # vLLM's return_token_ids


class Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Chunk(msgspec.Struct):
    choices: list[Choice] | None = None
    usage: Usage | None = None
    error: Any = None


_decoder = msgspec.json.Decoder(Chunk, strict=False)  # lax: a count sent as 5.0 or "5" is still 5


def parse_line(line: bytes) -> Chunk | object | None:
    """One line of the stream: a decoded chunk, DONE, or None for blanks, comments and other fields."""
    line = line.strip()
    if not line or line.startswith(b":"):
        return None
    if not line.startswith(b"data:"):
        # event:, id:, retry: are legal SSE fields that carry no payload for us.
        if line.split(b":", 1)[0] in (b"event", b"id", b"retry"):
            return None
        raise MalformedStream(f"not an SSE line: {line[:80]!r}")
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return DONE
    try:
        chunk = _decoder.decode(payload)
    except msgspec.ValidationError as exc:  # JSON, of another shape than a completion chunk's
        what = f"a completion chunk ({exc})" if payload.startswith(b"{") else "a JSON object"
        raise MalformedStream(f"SSE data is not {what}: {payload[:80]!r}") from None
    except msgspec.DecodeError:
        raise MalformedStream(f"SSE data is not JSON: {payload[:80]!r}") from None
    if chunk.error is not None and not chunk.choices:
        error = chunk.error
        raise MalformedStream(f"server error in stream: {error.get('message', error) if isinstance(error, dict) else error}")
    return chunk


def first_choice(chunk: Chunk) -> Choice | None:
    """A chunk's first choice (the one a single-completion stream has); None for usage-only chunks."""
    return chunk.choices[0] if chunk.choices else None


def choice_text(choice: Choice) -> str:
    """The text a completion or chat-completion choice adds (empty for a role-only opening)."""
    if choice.text is not None:
        return choice.text
    delta = choice.delta
    return "" if delta is None else (delta.content or "") + (delta.reasoning_content or "")


def choice_carries_token(choice: Choice) -> bool:
    """Whether a choice stands for a generated token: one with text, or with an empty text or content field and no
    finish reason (a token whose text the server holds back, as at a partial UTF-8 character; vLLM's client times
    those too). A chat's role-only opening and a bare finish marker are not tokens."""
    if choice_text(choice):
        return True
    if choice.finish_reason is not None:
        return False
    if choice.text is not None:
        return True  # an empty text
    return choice.delta is not None and choice.delta.content is not None

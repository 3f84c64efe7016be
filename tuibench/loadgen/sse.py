"""Server-sent events as OpenAI-compatible servers stream them: `data: {json}` lines, `data: [DONE]` at the end."""

import msgspec

DONE = object()


class MalformedStream(Exception):
    """The server sent something that is not an SSE data line of JSON."""


_decoder = msgspec.json.Decoder()


def parse_line(line: bytes) -> dict | object | None:
    """One line of the stream: a decoded JSON payload, DONE, or None for blanks, comments and other fields."""
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
        data = _decoder.decode(payload)
    except msgspec.DecodeError:
        raise MalformedStream(f"SSE data is not JSON: {payload[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedStream(f"SSE data is not a JSON object: {payload[:80]!r}")
    if "error" in data and not data.get("choices"):
        error = data["error"]
        raise MalformedStream(f"server error in stream: {error.get('message', error) if isinstance(error, dict) else error}")
    return data


def first_choice(data: dict) -> dict | None:
    """A chunk's first choice (the one a single-completion stream has); None for usage-only chunks."""
    choices = data.get("choices")
    return choices[0] if choices else None


def choice_text(choice: dict) -> str:
    """The text a completion or chat-completion choice adds (empty for a role-only opening)."""
    if "text" in choice:
        return choice.get("text") or ""
    delta = choice.get("delta") or {}
    return (delta.get("content") or "") + (delta.get("reasoning_content") or "")


def choice_carries_token(choice: dict) -> bool:
    """Whether a choice stands for a generated token: one with text, or with an empty text or content field and no
    finish reason (a token whose text the server holds back, as at a partial UTF-8 character; vLLM's client times
    those too). A chat's role-only opening and a bare finish marker are not tokens."""
    if choice_text(choice):
        return True
    if choice.get("finish_reason") is not None:
        return False
    if "text" in choice:
        return choice["text"] is not None
    delta = choice.get("delta") or {}
    return delta.get("content") is not None

"""The streaming client's timing pinned down: a scripted clock and scripted chunks, no network.

Each line of the scripted stream arrives at a set time; the client reads the time from the clock it is given.
The identities are vLLM's: E2EL ends at the last token, so E2EL - TTFT is the sum of the ITLs, and TPOT is
(E2EL - TTFT) / (tokens - 1). The scripted times are sums of powers of two (10.125 s, 1/64 s): their differences,
in ms too, are exact in binary floating point, so the timings are asserted with ==, not within a tolerance.
"""

import asyncio
import json

import msgspec
import pytest

from tuibench.loadgen.client import Endpoint, Prompted, send
from tuibench.loadgen.http import Disconnected, MalformedResponse


class ScriptedClock:
    def __init__(self):
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s



class _Reads:
    """A response body read by read, as the client's `content.iter_any()` gives it (loadgen/http.py)."""

    def __init__(self, reads):
        self._reads = reads

    def iter_any(self):
        return self._reads()

class _Response:
    def __init__(self, lines, clock, status=200):
        self.status, self._lines, self._clock = status, lines, clock

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    async def text(self):
        return "nope"

    @property
    def content(self):
        """Each scripted line as one read of the response (iter_any), at its time."""
        async def lines():
            for at_s, line in self._lines:
                self._clock.t_s = at_s  # the line arrives now
                if isinstance(line, Exception):
                    raise line
                yield line
        return _Reads(lines)


class ScriptedSession:
    """Answers one POST with `lines`, each (arrival time, bytes); records what was sent."""

    def __init__(self, lines, clock):
        self.lines, self.clock, self.sent = lines, clock, []  # a line may be an exception: raised when it arrives

    def post(self, url, data=None, headers=None):
        self.sent.append(msgspec.json.decode(data))  # the body as the server reads it
        return _Response(self.lines, self.clock)


def _data(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n"


def _token(text: str = "t", finish=None) -> bytes:
    return _data({"choices": [{"index": 0, "text": text, "finish_reason": finish}]})


def _run(lines, tokens: int = 4):
    clock = ScriptedClock()
    clock.t_s = 10.0  # the request is handed over at 10 s
    session = ScriptedSession(lines, clock)
    record = asyncio.run(send(session, Endpoint(base_url="http://x", model="m"), Prompted(0, [1, 2, 3], 3, tokens),
                              scheduled_s=10.0 - 1 / 1024, timeout_s=60, clock=lambda t: t - 9.0, now=clock))
    return record, session


def test_ttft_itl_and_e2el_come_from_the_token_chunks_and_e2el_ends_at_the_last_token():
    lines = [(10.0625, b": keep-alive\n"), (10.125, _token()), (10.1328125, b"\n"), (10.15625, _token()),
             (10.171875, _token()), (10.21875, _token(finish="length")),
             (10.5, _data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})),
             (10.875, b"data: [DONE]\n")]
    record, session = _run(lines)
    assert record.ok and record.output_tokens == 4 and record.input_tokens == 3
    assert record.ttft_ms == 125.0
    assert record.itl_ms == [31.25, 15.625, 46.875]
    assert record.e2el_ms == 218.75  # the last token, not the usage chunk (500) or [DONE] (875)
    assert record.e2el_ms - record.ttft_ms == sum(record.itl_ms)
    assert record.tpot_ms == 31.25  # (218.75 - 125) / 3
    assert record.start_s == 1.0 and record.scheduled_s == 1.0 - 1 / 1024  # the run's clock
    assert record.client_queue_ms is None  # no concurrency limit: no slot to wait for
    assert session.sent[0]["prompt"] == [1, 2, 3] and session.sent[0]["min_tokens"] == 4


def test_lines_of_one_read_came_together_and_a_line_cut_between_reads_is_joined():
    """Two tokens in one read (a server that wrote them at once, or a client that read late) came at that read's
    time: a gap of 0, not the microseconds it took to parse the first. A token line cut across two reads is one
    token, at the time its end came."""
    second, third = _token(), _token(finish="length")
    lines = [(10.125, _token() + second), (10.25, third[:9]), (10.375, third[9:] + b"data: [DONE]\n")]
    record, _ = _run(lines, tokens=3)
    assert record.ok and record.output_tokens == 3
    assert record.ttft_ms == 125.0 and record.itl_ms == [0.0, 250.0]


def test_role_only_usage_only_and_bare_finish_chunks_are_not_tokens():
    role_only = _data({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    content = _data({"choices": [{"index": 0, "delta": {"content": "w"}}]})
    bare_finish = _data({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    lines = [(10.0078125, role_only), (10.03125, content), (10.0546875, content), (10.0625, bare_finish),
             (10.0703125, _data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})),
             (10.078125, b"data: [DONE]\n")]
    record, _ = _run(lines, tokens=2)
    assert record.ttft_ms == 31.25 and record.itl_ms == [23.4375]
    assert record.e2el_ms == 54.6875 and record.output_tokens == 2


def test_a_token_whose_text_the_server_holds_back_is_still_a_token():
    # vLLM streams a token that ends mid UTF-8 character with empty text; its time is that token's time, as in
    # vLLM's own client. Without it the gap would be merged into the next one (seen: 2992 of 3024 ITL samples).
    lines = [(10.125, _token("a")), (10.1875, _token("")), (10.25, _token("é")), (10.3125, _token("b", "length")),
             (10.375, _token("", "length")), (10.4375, b"data: [DONE]\n")]
    record, _ = _run(lines, tokens=4)
    assert record.itl_ms == [62.5, 62.5, 62.5]
    assert record.e2el_ms == 312.5  # the bare finish marker after the last token is not one


@pytest.mark.parametrize("tokens", [1, 2, 7])
def test_the_identities_hold_for_any_number_of_tokens(tokens):
    times = [10.0 + 0.125 + i / 64 + (i % 3) / 1024 for i in range(tokens)]  # uneven gaps, each exact
    record, _ = _run([(t, _token()) for t in times] + [(times[-1] + 1.0, b"data: [DONE]\n")], tokens=tokens)
    assert record.e2el_ms - record.ttft_ms == sum(record.itl_ms) and len(record.itl_ms) == tokens - 1
    assert record.tpot_ms == (None if tokens == 1 else sum(record.itl_ms) / (tokens - 1))


def test_the_wait_for_a_slot_is_recorded_apart():
    clock = ScriptedClock()
    session = ScriptedSession([(0.01, _token()), (0.02, b"data: [DONE]\n")], clock)
    record = asyncio.run(send(session, Endpoint(base_url="http://x", model="m"), Prompted(0, "hi", 1, 1),
                              scheduled_s=0.0, timeout_s=60, clock=lambda t: t, now=clock, slot_wait_s=0.25))
    assert record.client_queue_ms == 250.0


@pytest.mark.parametrize("failure, named", [
    (Disconnected("connection lost: Connection reset by peer"), "connection lost: Connection reset by peer"),
    (Disconnected("server disconnected mid-stream"), "server disconnected mid-stream"),
    (MalformedResponse("malformed HTTP response: bad chunk"), "malformed HTTP response: bad chunk"),
])
def test_a_request_cut_by_the_server_is_failed_with_what_happened_not_a_class_name(failure, named):
    """A server killed mid-run resets some connections while it reads their requests (seen on a loaded machine): the
    record says so in words."""
    record, _ = _run([(10.125, _token()), (10.25, failure)])
    assert record.error == named and not record.ok
    assert record.failed_after_ms == 250.0 and record.e2el_ms is None  # sent at 10 s, cut at 10.25 s


def _sized(text: str, running: int | None = None, ids: list[int] | None = None, finish=None) -> bytes:
    choice = {"index": 0, "text": text, "finish_reason": finish, **({"token_ids": ids} if ids else {})}
    usage = {"usage": {"prompt_tokens": 3, "completion_tokens": running}} if running is not None else {}
    return _data({"choices": [choice], **usage})


def test_the_tokens_each_chunk_carried_come_from_the_running_usage_or_the_token_ids():
    def usage_end(tokens: int):
        return 10.5, _data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": tokens}})

    running = [(10.125, _sized("a", 1)), (10.25, _sized("bcde", 5)), (10.375, _sized("f", 6)),
               (10.4375, _sized("gh", 8, finish="length")), usage_end(8), (10.75, b"data: [DONE]\n")]
    record, session = _run(running, tokens=8)
    assert record.chunk_tokens == [1, 4, 1, 2] and record.output_tokens == 8
    assert record.itl_ms == [125.0, 125.0, 62.5]
    assert session.sent[0]["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    ids = [(10.125, _sized("a", ids=[1])), (10.25, _sized("bcd", ids=[2, 3, 4], finish="length")), usage_end(4)]
    assert _run(ids, tokens=4)[0].chunk_tokens == [1, 3]
    # A server that says neither (llama.cpp holding text back): which chunk carried the extra tokens is unknown.
    unsaid = [(10.125, _token("a")), (10.25, _token("bcd", "length")), usage_end(8)]
    record, _ = _run(unsaid, tokens=8)
    assert record.chunk_tokens == [] and record.output_tokens == 8 and len(record.itl_ms) == 1

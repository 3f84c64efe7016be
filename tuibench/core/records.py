"""Per-request and per-batch measurements, as the child reports them.

Times are seconds on the run's clock: the child's perf_counter, zeroed when the run starts.
"""

import msgspec


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # position in the workload
    input_tokens: int  # as planned: the workload's prompt length
    # The prompt length as the library or server counted it (usage.prompt_tokens; a library's own prompt ids);
    # None where it did not say. Any difference from input_tokens is drift, stored and shown, never silent.
    counted_input_tokens: int | None = None
    output_tokens: int  # tokens actually generated, as the library or server counted them
    target_output_tokens: int  # as planned
    start_s: float  # when the request was handed to the library
    scheduled_s: float | None = None  # serving: when it was planned to be sent
    # Serving with a concurrency limit: how long it waited for a slot (vLLM's client queue time). What is left of
    # start_s - scheduled_s is the client's own lateness, the schedule lag.
    client_queue_ms: float | None = None
    ttft_ms: float | None = None
    e2el_ms: float | None = None
    # The stream as it came: itl_ms[i] is the gap before chunk i + 1 (chunk 0 arrived at ttft_ms), and
    # chunk_tokens[i] the tokens chunk i carried, as the server said (its token ids, or its running usage count).
    # chunk_tokens empty: one token a chunk (an engine timing every token, or a server streaming them one by one),
    # or not said (core/itl.py). Every ITL convention is computed from these two (core/itl.py).
    itl_ms: list[float] = []
    chunk_tokens: list[int] = []
    batch: int | None = None  # offline static batch it ran in
    error: str | None = None
    # A failed request that was sent: from its send to its failure (the timeout, a refusal, a stream cut short).
    failed_after_ms: float | None = None
    # Serving with --client-workers: the client process that sent it (None: the run's own). Workers on this machine
    # share its monotonic clock; a Ray actor's clock is read against ours before the run, and its times are
    # moved onto the run's clock by this offset (theirs minus ours), kept with the record.
    worker: int | None = None
    clock_offset_ms: float | None = None
    # The conversations dataset: the conversation this request is a turn of, and which turn (from 0). Its
    # scheduled_s is when the turn was ready: the reply to the turn before had come (plus any think time).
    conversation: int | None = None
    turn: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft_intended_ms(self) -> float | None:
        """TTFT as the user waited: from when the request was meant to be sent (coordinated omission: a client that
        fell behind its schedule, or held the request for a slot, hides that wait from ttft_ms)."""
        return _from_intended(self, self.ttft_ms)

    @property
    def e2el_intended_ms(self) -> float | None:
        return _from_intended(self, self.e2el_ms)

    @property
    def tpot_ms(self) -> float | None:
        """(E2EL - TTFT) / (output_len - 1), vLLM's definition; undefined for a single token."""
        if self.error or self.ttft_ms is None or self.e2el_ms is None or self.output_tokens < 2:
            return None
        return (self.e2el_ms - self.ttft_ms) / (self.output_tokens - 1)


def _from_intended(record: RequestRecord, ms: float | None) -> float | None:
    if ms is None or record.scheduled_s is None:
        return None
    return ms + (record.start_s - record.scheduled_s) * 1000.0


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One offline static batch: its prefill (to the first token) and decode time."""

    batch: int
    size: int
    start_s: float
    prefill_ms: float
    decode_ms: float
    decode_steps: int

"""The typed events a run streams from its child process, and their JSONL form.

Every event carries `t_s`, seconds on the run's clock (the child's perf_counter, zeroed at start),
so events, requests and telemetry samples line up on one time axis.
"""

from collections.abc import Iterator
from typing import IO, Literal

import msgspec

from tuibench.core.module_profile import ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import RunSpec


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    t_s: float


class RunStarted(_Event, tag="run_started"):
    spec: RunSpec
    num_requests: int
    pid: int  # the child's, so a supervisor (or a test) can find it
    environment: dict[str, object] = {}


PhaseName = Literal["loading", "warmup", "measuring"]


class Phase(_Event, tag="phase"):
    name: PhaseName
    detail: str = ""


class Progress(_Event, tag="progress"):
    phase: str
    done: int
    total: int


class RequestDone(_Event, tag="request_done"):
    record: RequestRecord


class BatchDone(_Event, tag="batch_done"):
    record: BatchRecord


class TelemetrySample(_Event, tag="telemetry"):
    source: str  # "gpu0", "cpu", ...
    values: dict[str, float | None]


class ModuleTimings(_Event, tag="module_timings"):
    profile: ModuleProfile


class Log(_Event, tag="log"):
    message: str
    level: Literal["debug", "info", "warning", "error"] = "info"


class RunFinished(_Event, tag="run_finished"):
    pass


class ServerStarted(_Event, tag="server_started"):
    """A managed server launched for this run came up: from its launch to its first output (the interpreter up and
    importing), and from there to answering its health check (the model loaded). Both to within the 0.25 s poll."""

    server: str
    process_start_s: float
    load_s: float


class FirstRequest(_Event, tag="first_request"):
    """Serving: the first request of the run (the first warm-up), as the server answered it; after a cold start,
    the last part of it (lazy loading, first compilation)."""

    ttft_ms: float | None


FailureKind = Literal["error", "input", "interrupted", "crashed"]


class RunFailed(_Event, tag="run_failed"):
    kind: FailureKind
    error: str


Event = (
    RunStarted | Phase | Progress | RequestDone | BatchDone | TelemetrySample | ModuleTimings | Log | ServerStarted
    | FirstRequest | RunFinished | RunFailed
)
TERMINAL = (RunFinished, RunFailed)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> Event:
    return _decoder.decode(data)


def write_jsonl(stream: IO[bytes], event: Event) -> None:
    stream.write(_encoder.encode(event) + b"\n")


def read_jsonl(stream: IO[bytes]) -> Iterator[Event]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"line {number}: not a tuibench event ({exc})") from None

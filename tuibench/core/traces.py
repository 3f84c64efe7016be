"""Timestamped request traces: when each request came and how long it was, as production logs publish them.

Three formats, told apart by their first line:

- **Mooncake** JSONL (Kimi's trace): `timestamp` in ms, `input_length`, `output_length`, and `hash_ids`, the prompt's
  blocks of MOONCAKE_BLOCK_TOKENS tokens: two requests that share a block id share that block of their prompts, so
  a prefix cache sees what the trace recorded.
- **Azure** LLM inference trace CSV (2023 and 2024): `TIMESTAMP` a date and time, `ContextTokens`,
  `GeneratedTokens`.
- **BurstGPT** CSV: `Timestamp` in s, `Request tokens`, `Response tokens` (a failed request logs 0 of them).

A trace becomes the workload's requests, each with `arrival_s` (seconds after the trace's first request) and its
lengths; the load generator sends them on that schedule (loadgen/arrivals.py). A row with no output tokens is a
request that failed in the log: it is left out, as no length can be held to zero.
"""

import csv
import json
from collections.abc import Iterator
from datetime import datetime

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.spec import TraceFormat

MOONCAKE_BLOCK_TOKENS = 512  # tokens a Mooncake hash id stands for (the trace's own block size)

_CSV_COLUMNS: dict[TraceFormat, tuple[str, str, str]] = {  # time, input length, output length
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
}
_CSV_EXAMPLES: dict[TraceFormat, str] = {  # a row of each, as its publisher's files have them
    "azure": "an Azure trace row is like 2023-11-16 18:15:46.6805900,4808,10",
    "burstgpt": "a BurstGPT trace row is like 5,ChatGPT,472,18,490,Conversation log",
}
_MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")


def sniff(path: str, first_line: str) -> TraceFormat | None:
    """The trace format a file's first line says it is, or None for a file that is no trace."""
    if path.endswith(".jsonl"):
        try:
            row = json.loads(first_line)
        except json.JSONDecodeError:
            return None
        return "mooncake" if isinstance(row, dict) and all(k in row for k in _MOONCAKE_KEYS) else None
    header = next(csv.reader([first_line]), [])
    return next((name for name, columns in _CSV_COLUMNS.items() if set(columns) <= set(header)), None)


class TraceRow(msgspec.Struct, frozen=True):
    """One request of a trace, as read: its time in seconds on the trace's own clock, its lengths, its blocks."""

    at_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()


def read_trace(path: str, text: str, kind: TraceFormat) -> list[TraceRow]:
    """Every request of the trace that produced output, in time order. UserError naming the line of a bad row."""
    rows = [row for row in (_mooncake(path, text) if kind == "mooncake" else _csv(path, text, kind))
            if row.output_tokens > 0]
    if not rows:
        raise UserError(f"{path}: no request of this {kind} trace produced output tokens")
    return sorted(rows, key=lambda row: row.at_s)


def _mooncake(path: str, text: str) -> Iterator[TraceRow]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            hash_ids = tuple(int(h) for h in row.get("hash_ids", ()))
            yield TraceRow(float(row["timestamp"]) / 1000.0, _length(row["input_length"]),
                           _length(row["output_length"]), hash_ids)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{path}:{number}: a Mooncake trace line is an object like {{\"timestamp\": 27482, "
                            '"input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}') from None


def _csv(path: str, text: str, kind: TraceFormat) -> Iterator[TraceRow]:
    time_column, input_column, output_column = _CSV_COLUMNS[kind]
    origin: list[datetime] = []  # Azure: the first row's whole second, so a time keeps its microseconds
    for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            at = row[time_column]
            at_s = _azure_time_s(at, origin) if kind == "azure" else float(at)
            yield TraceRow(at_s, _length(row[input_column]), _length(row[output_column]))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}:{number}: {_CSV_EXAMPLES[kind]} (columns {', '.join(_CSV_COLUMNS[kind])})") \
                from None


def _length(value) -> int:
    """A token count: a whole number, not negative (JSON may write it 52.0)."""
    number = float(value)
    if number < 0 or number != int(number):
        raise ValueError(value)
    return int(number)


def _azure_time_s(text: str, origin: list[datetime]) -> float:
    """Seconds after `origin` (set by the first row) of Azure's `2023-11-16 18:15:46.6805900`. Its 7 fraction digits
    are more than datetime reads, and seconds since the epoch as a float keep only tenths of a microsecond: the
    whole seconds are a difference of datetimes, the fraction added apart."""
    whole, _, fraction = text.strip().partition(".")
    at = datetime.fromisoformat(whole)
    if not origin:
        origin.append(at)
    return (at - origin[0]).total_seconds() + (float(f"0.{fraction}") if fraction else 0.0)

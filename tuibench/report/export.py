"""A stored run as a file: JSON (the run, its requests and batches, as stored) or CSV (one row per request).

Both carry every stored field of a request: the CSV's columns are RequestRecord's fields in declaration order,
so a field added to the record is exported without an edit here; TPOT, derived from them, follows E2EL's.
"""

import csv
import io

import msgspec

from tuibench.core.records import RequestRecord

LIST_SEPARATOR = ";"  # a list in one CSV cell (the inter-token gaps): commas are the CSV's own


def csv_columns() -> list[str]:
    fields = list(RequestRecord.__struct_fields__)
    return [*fields[: fields.index("e2el_ms") + 1], "tpot_ms", *fields[fields.index("e2el_ms") + 1:]]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(f"{v!r}" for v in value)
    return str(value)


def export_bytes(stored, fmt: str) -> bytes:
    """`stored` (a StoredRun) as `fmt`, json or csv."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(stored)) + b"\n"
    text = io.StringIO()
    writer = csv.writer(text)
    columns = csv_columns()
    writer.writerow(columns)
    for record in stored.requests:
        writer.writerow([_cell(getattr(record, column)) for column in columns])
    return text.getvalue().encode()

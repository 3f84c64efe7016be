"""Exports through the CLI from a real SQLite store: every stored field of a request, the same in JSON and CSV; an
output file whose folder does not exist is one line, not a traceback."""

import csv
import io
import json

import pytest

from helpers import tuibench
from tuibench.core.records import RequestRecord
from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams
from tuibench.core.store import ResultsStore
from tuibench.report.export import LIST_SEPARATOR

# Every field set, none at its default: a field the export dropped shows as missing or empty.
RECORD = RequestRecord(index=0, input_tokens=16, counted_input_tokens=17, output_tokens=4, target_output_tokens=5,
                       start_s=1.5, scheduled_s=1.25, client_queue_ms=3.0, ttft_ms=40.0, e2el_ms=70.0,
                       itl_ms=[10.0, 10.0, 10.0], batch=2, error=None, worker=1, clock_offset_ms=0.25, conversation=3,
                       turn=1)


@pytest.fixture
def stored_db(tmp_path):
    db = tmp_path / "results.db"
    spec = RunSpec(library="endpoint", scenario="serving", dataset=DatasetSpec(kind="random", source="random"),
                   serving=ServingParams(request_rate=2.0))
    with ResultsStore.open(db) as store:
        run = store.begin_run(spec)
        store.add_records(run, requests=[RECORD])
        store.finish_run(run, "finished", None)
    return db


def test_json_and_csv_carry_every_stored_field_of_a_request_alike(cli_env, stored_db):
    as_json = tuibench("runs", "export", "1", "--format", "json", "--db", str(stored_db), env=cli_env)
    as_csv = tuibench("runs", "export", "1", "--format", "csv", "--db", str(stored_db), env=cli_env)
    assert as_json.returncode == 0 and as_csv.returncode == 0, as_json.stderr + as_csv.stderr
    (stored,) = json.loads(as_json.stdout)["requests"]
    (row,) = csv.DictReader(io.StringIO(as_csv.stdout))
    assert set(RequestRecord.__struct_fields__) <= set(row) and set(stored) == set(RequestRecord.__struct_fields__)
    for field in RequestRecord.__struct_fields__:
        value = stored[field]
        shown = "" if value is None else LIST_SEPARATOR.join(map(repr, value)) if isinstance(value, list) else str(value)
        assert row[field] == shown, field
    assert stored["worker"] == 1 and stored["clock_offset_ms"] == 0.25 and stored["conversation"] == 3
    assert float(row["tpot_ms"]) == RECORD.tpot_ms  # derived, beside what it is derived from


@pytest.mark.parametrize("args", [("runs", "export", "1", "--output", "{missing}/x.csv", "--format", "csv"),
                                  ("compare", "show", "1", "--csv", "{missing}/x.csv"),
                                  ("compare", "show", "1", "--json", "{missing}/x.json"),
                                  ("compare", "show", "1", "--markdown", "{missing}/x.md")])
def test_an_output_file_in_a_folder_that_does_not_exist_is_one_line(cli_env, stored_db, tmp_path, args):
    missing = tmp_path / "nodir"
    result = tuibench(*(a.format(missing=missing) for a in args), "--db", str(stored_db), env=cli_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [f"tuibench: cannot write {missing}/{args[4].split('/')[-1]}: "
                                                  f"folder {missing} does not exist"]

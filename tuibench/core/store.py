"""The results store: one SQLite file of runs, per-request records, batches and telemetry.

A run is written as it happens (row at start, records as they arrive, metrics at the end), so a
crash of the parent loses nothing already measured. A file that is not a tuibench database, or was
written by a newer tuibench, is refused with a clear error and never written to.
"""

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.events import TelemetrySample
from tuibench.core.metrics import RunMetrics
from tuibench.core.modules import ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import RunSpec

SCHEMA_VERSION = 3

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    library TEXT NOT NULL,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    scenario TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    environment_json TEXT NOT NULL DEFAULT '{}',
    metrics_json TEXT,
    error TEXT
);
CREATE TABLE requests (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    target_output_tokens INTEGER NOT NULL,
    start_s REAL NOT NULL,
    ttft_ms REAL,
    tpot_ms REAL,
    e2el_ms REAL,
    itl_ms_json TEXT NOT NULL,
    batch INTEGER,
    error TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE batches (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    batch INTEGER NOT NULL,
    size INTEGER NOT NULL,
    start_s REAL NOT NULL,
    prefill_ms REAL NOT NULL,
    decode_ms REAL NOT NULL,
    decode_steps INTEGER NOT NULL,
    PRIMARY KEY (run_id, batch)
);
CREATE TABLE telemetry (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    source TEXT NOT NULL,
    values_json TEXT NOT NULL
);
CREATE INDEX telemetry_run ON telemetry (run_id, t_s);
"""

# MIGRATIONS[v] takes a database from schema v to v + 1. A new database is made at v1 and migrated
# like any old one, so every migration runs on every new file.
MIGRATIONS: dict[int, str] = {
    1: "ALTER TABLE requests ADD COLUMN scheduled_s REAL;",  # serving: planned send time
    2: """
CREATE TABLE module_profiles (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    input_len INTEGER NOT NULL,
    phase TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    PRIMARY KEY (run_id, input_len, phase)
);""",  # per-module timing trees (tuibench profile)
}


class RunRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    created_at: str
    updated_at: str
    status: str
    library: str
    model: str
    dataset: str
    scenario: str
    spec: RunSpec
    environment: dict[str, object]
    metrics: RunMetrics | None
    error: str | None


class StoredRun(msgspec.Struct, frozen=True, kw_only=True):
    run: RunRow
    requests: list[RequestRecord]
    batches: list[BatchRecord]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ResultsStore:
    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True) -> "ResultsStore":
        """Opens (and, with `create`, makes) the store at `path`; UserError if it is not usable."""
        path = Path(path).expanduser()
        if not path.exists():
            if not create:
                raise UserError(f"no results database at {path}: run a benchmark first, or pass --db PATH")
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30.0)
        store = cls(connection, path)
        try:
            store._prepare()
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise UserError(
                f"{path} is not a readable tuibench results database ({exc}): move it aside or pass --db another file"
            ) from None
        except UserError:
            connection.close()
            raise
        return store

    def _prepare(self) -> None:
        self._db.execute("PRAGMA foreign_keys = ON")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            with self._db:
                self._db.executescript(_SCHEMA_V1)
                self._db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
            self._db.execute("PRAGMA journal_mode = WAL")
            tables = {"meta", "runs"}
        if "meta" not in tables or "runs" not in tables:
            raise UserError(f"{self.path} is an SQLite file but not a tuibench results database: pass --db another file")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise UserError(f"{self.path} has no valid tuibench schema version: move it aside or pass --db another file")
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise UserError(
                f"{self.path} was written by a newer tuibench (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade tuibench or pass --db another file"
            )
        while version < SCHEMA_VERSION:
            with self._db:
                self._db.executescript(MIGRATIONS[version])
                version += 1
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing a run as it happens ---------------------------------------------------------------

    def begin_run(self, spec: RunSpec) -> int:
        now = _now()
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (created_at, updated_at, status, library, model, dataset, scenario, spec_json)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (now, now, spec.library, spec.model, spec.dataset.label, spec.scenario, spec.to_json().decode()),
            )
        return int(cursor.lastrowid)

    def set_environment(self, run_id: int, environment: dict[str, object]) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET environment_json = ?, updated_at = ? WHERE id = ?",
                (msgspec.json.encode(environment).decode(), _now(), run_id),
            )

    def add_records(
        self,
        run_id: int,
        requests: Sequence[RequestRecord] = (),
        batches: Sequence[BatchRecord] = (),
        telemetry: Sequence[TelemetrySample] = (),
    ) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO requests (run_id, idx, input_tokens, output_tokens, target_output_tokens,"
                " start_s, ttft_ms, tpot_ms, e2el_ms, itl_ms_json, batch, error, scheduled_s)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (run_id, r.index, r.input_tokens, r.output_tokens, r.target_output_tokens, r.start_s, r.ttft_ms,
                     r.tpot_ms, r.e2el_ms, msgspec.json.encode(r.itl_ms).decode(), r.batch, r.error, r.scheduled_s)
                    for r in requests
                ),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((run_id, b.batch, b.size, b.start_s, b.prefill_ms, b.decode_ms, b.decode_steps) for b in batches),
            )
            self._db.executemany(
                "INSERT INTO telemetry VALUES (?, ?, ?, ?)",
                ((run_id, s.t_s, s.source, msgspec.json.encode(s.values).decode()) for s in telemetry),
            )

    def add_module_profile(self, run_id: int, profile: ModuleProfile) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO module_profiles VALUES (?, ?, ?, ?)",
                (run_id, profile.input_len, profile.phase, msgspec.json.encode(profile).decode()),
            )

    def finish_run(self, run_id: int, status: str, metrics: RunMetrics | None, error: str | None = None) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET status = ?, metrics_json = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, msgspec.json.encode(metrics).decode() if metrics else None, error, _now(), run_id),
            )

    def delete_run(self, run_id: int) -> bool:
        with self._db:
            return self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- reading -----------------------------------------------------------------------------------

    _RUN_COLUMNS = "id, created_at, updated_at, status, library, model, dataset, scenario, spec_json, environment_json, metrics_json, error"

    @staticmethod
    def _run_row(row: tuple) -> RunRow:
        (id_, created, updated, status, library, model, dataset, scenario, spec, environment, metrics, error) = row
        return RunRow(
            id=id_, created_at=created, updated_at=updated, status=status, library=library, model=model,
            dataset=dataset, scenario=scenario, spec=RunSpec.from_json(spec),
            environment=msgspec.json.decode(environment),
            metrics=msgspec.json.decode(metrics, type=RunMetrics) if metrics else None, error=error,
        )

    def list_runs(self, limit: int | None = None) -> list[RunRow]:
        rows = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (-1 if limit is None else limit,)
        )
        return [self._run_row(row) for row in rows]

    def get_run(self, run_id: int) -> StoredRun:
        row = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"no run {run_id} in {self.path}: `tuibench runs` lists the stored runs")
        requests = [
            RequestRecord(index=idx, input_tokens=i, output_tokens=o, target_output_tokens=t, start_s=s, ttft_ms=ttft,
                          e2el_ms=e2el, itl_ms=msgspec.json.decode(itl), batch=batch, error=error, scheduled_s=planned)
            for idx, i, o, t, s, ttft, e2el, itl, batch, error, planned in self._db.execute(
                "SELECT idx, input_tokens, output_tokens, target_output_tokens, start_s, ttft_ms, e2el_ms, itl_ms_json,"
                " batch, error, scheduled_s FROM requests WHERE run_id = ? ORDER BY idx", (run_id,))
        ]
        batches = [
            BatchRecord(batch=b, size=n, start_s=s, prefill_ms=p, decode_ms=d, decode_steps=k)
            for b, n, s, p, d, k in self._db.execute(
                "SELECT batch, size, start_s, prefill_ms, decode_ms, decode_steps FROM batches WHERE run_id = ?"
                " ORDER BY batch", (run_id,))
        ]
        return StoredRun(run=self._run_row(row), requests=requests, batches=batches)

    def module_profiles(self, run_id: int) -> list[ModuleProfile]:
        return [
            msgspec.json.decode(data, type=ModuleProfile)
            for (data,) in self._db.execute(
                "SELECT profile_json FROM module_profiles WHERE run_id = ? ORDER BY input_len, phase DESC", (run_id,))
        ]

    def telemetry(self, run_id: int) -> list[TelemetrySample]:
        return [
            TelemetrySample(t_s=t, source=source, values=msgspec.json.decode(values))
            for t, source, values in self._db.execute(
                "SELECT t_s, source, values_json FROM telemetry WHERE run_id = ? ORDER BY t_s", (run_id,))
        ]

"""The results store: one SQLite file of runs, per-request records, batches and telemetry.

A run is written as it happens (row at start, records as they arrive, metrics at the end), so a
crash of the parent loses nothing already measured. A file that is not a tuibench database, or was
written by a newer tuibench, is refused with a clear error and never written to.
"""

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from tuibench.core.capacity import Capacity
from tuibench.core.errors import UserError
from tuibench.core.events import TelemetrySample
from tuibench.core.metrics import RunMetrics
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.plan import Plan, PlanRequest, StepStatus
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.schema import MIGRATIONS, SCHEMA_V1, SCHEMA_VERSION, migrate_script
from tuibench.core.spec import RunSpec
from tuibench.core.validity import RunWarning

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
    plan_id: int | None = None  # the plan the run was a step of
    warnings: list[RunWarning] = []  # what may make its numbers untrustworthy (core/validity.py)


class PlanRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    created_at: str
    updated_at: str
    label: str
    status: str
    request: PlanRequest | None  # None: a rate sweep of an older tuibench, made a plan by the migration
    steps: int
    runs: int


class StepRow(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    status: StepStatus
    spec: RunSpec
    run_id: int | None  # None: skipped, not run, a capacity step (its runs are its probes'), or deleted since
    reason: str | None
    capacity: Capacity | None = None  # a capacity step's probes, each with its run, and its bracket


class StoredPlan(msgspec.Struct, frozen=True, kw_only=True):
    plan: PlanRow
    steps: list[StepRow]
    runs: list[RunRow]  # each step's run, in step order (a capacity step's are its probes', in its StepRow)


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
        if path.is_dir():
            raise UserError(f"--db {path} is a folder: give a file, e.g. {path / 'results.db'}")
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
        if self._version() == SCHEMA_VERSION:
            return
        # Creating or migrating: one process at a time. Two runs started at once on a new file would otherwise both
        # create the tables, or both add a column; the second waits for the first's write lock, then finds the work
        # done. (executescript would commit the lock away: statements go one by one.)
        created = False
        self._db.isolation_level = None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            version = self._version()
            if version is None:
                migrate_script(self._db, SCHEMA_V1)
                self._db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
                version, created = 1, True
            while version < SCHEMA_VERSION:
                migrate_script(self._db, MIGRATIONS[version])
                version += 1
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._db.isolation_level = ""  # back to sqlite3's implicit transactions, which `with self._db` uses
        if created:
            self._use_wal()

    def _use_wal(self, deadline_s: float = 30.0) -> None:
        """Switches a new file to write-ahead logging. The switch takes the file whole, and SQLite answers 'database
        is locked' at once, not after its busy timeout, while another process reads it (runs started at once on a
        new file, checking its schema): retried until they are done."""
        import time

        give_up = time.monotonic() + deadline_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
                time.sleep(0.01)

    def _version(self) -> int | None:
        """The file's schema version; None for a file with no tables yet; UserError for anything not ours, or newer."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None
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
        return version

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
                (now, now, spec.library, spec.model_label, spec.dataset.label, spec.scenario, spec.to_json().decode()),
            )
        return int(cursor.lastrowid)

    def record_start(self, run_id: int, spec: RunSpec, environment: dict[str, object]) -> None:
        """What the child reports it runs: the spec as launched (a managed server's endpoint filled in), and where."""
        with self._db:
            self._db.execute(
                "UPDATE runs SET spec_json = ?, environment_json = ?, updated_at = ? WHERE id = ?",
                (spec.to_json().decode(), msgspec.json.encode(environment).decode(), _now(), run_id),
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
                " start_s, ttft_ms, tpot_ms, e2el_ms, itl_ms_json, batch, error, scheduled_s, client_queue_ms,"
                " counted_input_tokens, worker, clock_offset_ms, conversation, turn, chunk_tokens_json, failed_after_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (run_id, r.index, r.input_tokens, r.output_tokens, r.target_output_tokens, r.start_s, r.ttft_ms,
                     r.tpot_ms, r.e2el_ms, msgspec.json.encode(r.itl_ms).decode(), r.batch, r.error, r.scheduled_s,
                     r.client_queue_ms, r.counted_input_tokens, r.worker, r.clock_offset_ms, r.conversation, r.turn,
                     msgspec.json.encode(r.chunk_tokens).decode() if r.chunk_tokens else None, r.failed_after_ms)
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

    def finish_run(self, run_id: int, status: str, metrics: RunMetrics | None, error: str | None = None,
                   warnings: Sequence[RunWarning] = ()) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET status = ?, metrics_json = ?, error = ?, warnings_json = ?, updated_at = ? WHERE id = ?",
                (status, msgspec.json.encode(metrics).decode() if metrics else None, error,
                 msgspec.json.encode(list(warnings)).decode(), _now(), run_id),
            )

    # -- plans -------------------------------------------------------------------------------------

    def begin_plan(self, plan: Plan) -> int:
        now = _now()
        with self._db:
            plan_id = int(self._db.execute(
                "INSERT INTO plans (created_at, updated_at, label, status, request_json) VALUES (?, ?, ?, 'running', ?)",
                (now, now, plan.label, msgspec.json.encode(plan.request).decode()),
            ).lastrowid)
            self._db.executemany(
                "INSERT INTO plan_steps (plan_id, step, status, reason, spec_json, capacity_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                ((plan_id, step.index, "skipped" if step.skip else "pending", step.skip, step.spec.to_json().decode(),
                  msgspec.json.encode(step.no_capacity_yet).decode() if step.search else None)
                 for step in plan.steps),
            )
        return plan_id

    def set_step(self, plan_id: int, step: int, status: StepStatus, run_id: int | None = None,
                 reason: str | None = None, capacity: Capacity | None = None) -> None:
        """A step's status; its run (`run_id`) once it has one; a capacity step's outcome so far (`capacity`), whose
        probes' runs are the step's runs, not its one run."""
        with self._db:
            self._db.execute(
                "UPDATE plan_steps SET status = ?, run_id = COALESCE(?, run_id), reason = ?,"
                " capacity_json = COALESCE(?, capacity_json) WHERE plan_id = ? AND step = ?",
                (status, run_id, reason, msgspec.json.encode(capacity).decode() if capacity else None, plan_id, step),
            )
            self._db.execute("UPDATE plans SET updated_at = ? WHERE id = ?", (_now(), plan_id))
        if run_id is not None:
            self.add_step_run(plan_id, step, run_id)

    def add_step_run(self, plan_id: int, step: int, run_id: int) -> None:
        """`run_id` is one of the runs `step` made: its run, or one of a capacity step's probes."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO step_runs (run_id, plan_id, step) VALUES (?, ?, ?)",
                             (run_id, plan_id, step))

    def finish_plan(self, plan_id: int, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE plans SET status = ?, updated_at = ? WHERE id = ?", (status, _now(), plan_id))

    _PLAN_COLUMNS = ("id, created_at, updated_at, label, status, request_json,"
                     " (SELECT COUNT(*) FROM plan_steps WHERE plan_id = plans.id),"
                     " (SELECT COUNT(*) FROM step_runs WHERE plan_id = plans.id)")

    @staticmethod
    def _plan_row(row: tuple) -> PlanRow:
        id_, created, updated, label, status, request, steps, runs = row
        return PlanRow(id=id_, created_at=created, updated_at=updated, label=label, status=status, steps=steps, runs=runs,
                       request=msgspec.json.decode(request, type=PlanRequest) if request else None)

    def list_plans(self, limit: int | None = None) -> list[PlanRow]:
        rows = self._db.execute(f"SELECT {self._PLAN_COLUMNS} FROM plans ORDER BY id DESC LIMIT ?",
                                (-1 if limit is None else limit,))
        return [self._plan_row(row) for row in rows]

    def get_plan(self, plan_id: int) -> StoredPlan:
        row = self._db.execute(f"SELECT {self._PLAN_COLUMNS} FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise UserError(f"no plan {plan_id} in {self.path}: `tuibench compare list` lists the stored plans")
        steps = [
            StepRow(step=step, status=status, run_id=run_id, reason=reason, spec=RunSpec.from_json(spec),
                    capacity=msgspec.json.decode(capacity, type=Capacity) if capacity else None)
            for step, status, run_id, reason, spec, capacity in self._db.execute(
                "SELECT step, status, run_id, reason, spec_json, capacity_json FROM plan_steps WHERE plan_id = ?"
                " ORDER BY step", (plan_id,))
        ]
        runs = [self._run_row(row) for row in self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs JOIN plan_steps ON plan_steps.run_id = runs.id"
            " WHERE plan_steps.plan_id = ? ORDER BY plan_steps.step", (plan_id,))]
        return StoredPlan(plan=self._plan_row(row), steps=steps, runs=runs)

    def capacities(self) -> dict[int, list[Capacity]]:
        """Every plan's capacity steps that probed, by plan id, in step order."""
        found: dict[int, list[Capacity]] = {}
        for plan_id, capacity in self._db.execute("SELECT plan_id, capacity_json FROM plan_steps"
                                                  " WHERE capacity_json IS NOT NULL ORDER BY plan_id, step"):
            outcome = msgspec.json.decode(capacity, type=Capacity)
            if outcome.probes:
                found.setdefault(plan_id, []).append(outcome)
        return found

    def delete_run(self, run_id: int) -> bool:
        with self._db:
            return self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- reading -----------------------------------------------------------------------------------

    _RUN_COLUMNS = ("runs.id, created_at, updated_at, runs.status, library, model, dataset, scenario, runs.spec_json,"
                    " environment_json, metrics_json, error, warnings_json,"
                    " (SELECT plan_id FROM step_runs WHERE step_runs.run_id = runs.id)")

    @staticmethod
    def _run_row(row: tuple) -> RunRow:
        (id_, created, updated, status, library, model, dataset, scenario, spec, environment, metrics, error, warnings,
         plan) = row
        return RunRow(
            id=id_, created_at=created, updated_at=updated, status=status, library=library, model=model,
            dataset=dataset, scenario=scenario, spec=RunSpec.from_json(spec),
            environment=msgspec.json.decode(environment),
            metrics=msgspec.json.decode(metrics, type=RunMetrics) if metrics else None, error=error, plan_id=plan,
            warnings=msgspec.json.decode(warnings, type=list[RunWarning]),
        )

    def list_runs(self, limit: int | None = None) -> list[RunRow]:
        rows = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY runs.id DESC LIMIT ?", (-1 if limit is None else limit,)
        )
        return [self._run_row(row) for row in rows]

    def get_run(self, run_id: int) -> StoredRun:
        """A run with every request: for an export or a report. The app and `runs show` read its parts instead."""
        return StoredRun(run=self.run_row(run_id), requests=list(self.requests(run_id)), batches=self.batches(run_id))

    def run_row(self, run_id: int) -> RunRow:
        row = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE runs.id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"no run {run_id} in {self.path}: `tuibench runs` lists the stored runs")
        return self._run_row(row)

    def request_count(self, run_id: int) -> int:
        return self._db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ?", (run_id,)).fetchone()[0]

    def requests(self, run_id: int) -> Iterator[RequestRecord]:
        """A run's requests in workload order, one at a time: a run of 100,000 is never all in memory here."""
        rows = self._db.execute(
            "SELECT idx, input_tokens, output_tokens, target_output_tokens, start_s, ttft_ms, e2el_ms, itl_ms_json,"
            " batch, error, scheduled_s, client_queue_ms, counted_input_tokens, worker, clock_offset_ms,"
            " conversation, turn, chunk_tokens_json, failed_after_ms FROM requests WHERE run_id = ? ORDER BY idx",
            (run_id,))
        for (idx, i, o, t, s, ttft, e2el, itl, batch, error, planned, queued, counted, worker, offset, conversation,
             turn, chunks, failed_after) in rows:
            yield RequestRecord(index=idx, input_tokens=i, output_tokens=o, target_output_tokens=t, start_s=s,
                                ttft_ms=ttft, e2el_ms=e2el, itl_ms=msgspec.json.decode(itl), batch=batch, error=error,
                                scheduled_s=planned, client_queue_ms=queued, counted_input_tokens=counted,
                                worker=worker, clock_offset_ms=offset, conversation=conversation, turn=turn,
                                chunk_tokens=msgspec.json.decode(chunks) if chunks else [],
                                failed_after_ms=failed_after)

    def batches(self, run_id: int) -> list[BatchRecord]:
        return [
            BatchRecord(batch=b, size=n, start_s=s, prefill_ms=p, decode_ms=d, decode_steps=k)
            for b, n, s, p, d, k in self._db.execute(
                "SELECT batch, size, start_s, prefill_ms, decode_ms, decode_steps FROM batches WHERE run_id = ?"
                " ORDER BY batch", (run_id,))
        ]

    def module_profiles(self, run_id: int) -> list[ModuleProfile]:
        return [
            msgspec.json.decode(data, type=ModuleProfile)
            for (data,) in self._db.execute(
                "SELECT profile_json FROM module_profiles WHERE run_id = ? ORDER BY input_len, phase DESC", (run_id,))
        ]

    def telemetry(self, run_id: int) -> Iterator[TelemetrySample]:
        """A run's samples in time order, one at a time (a day-long run holds a few hundred thousand)."""
        for t, source, values in self._db.execute(
                "SELECT t_s, source, values_json FROM telemetry WHERE run_id = ? ORDER BY t_s", (run_id,)):
            yield TelemetrySample(t_s=t, source=source, values=msgspec.json.decode(values))

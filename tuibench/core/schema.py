"""The results store's SQLite schema: version 1 as first written, and the migration to each later version.

A new database is made at v1 and migrated like any old one, so every migration runs on every new file.
"""

import sqlite3

SCHEMA_VERSION = 11

SCHEMA_V1 = """
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
    3: """
CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL,
    request_json TEXT
);
CREATE TABLE plan_steps (
    plan_id INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    status TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    reason TEXT,
    spec_json TEXT NOT NULL,
    PRIMARY KEY (plan_id, step)
);
CREATE INDEX plan_steps_run ON plan_steps (run_id);
INSERT INTO plans (created_at, updated_at, label, status, request_json)
    SELECT MIN(created_at), MAX(updated_at), json_extract(spec_json, '$.serving.sweep'),
           CASE WHEN SUM(status != 'finished') > 0 THEN 'partial' ELSE 'finished' END, NULL
    FROM runs WHERE json_extract(spec_json, '$.serving.sweep') IS NOT NULL
    GROUP BY json_extract(spec_json, '$.serving.sweep') ORDER BY MIN(id);
INSERT INTO plan_steps (plan_id, step, status, run_id, spec_json)
    SELECT plans.id, ROW_NUMBER() OVER (PARTITION BY plans.id ORDER BY runs.id), runs.status, runs.id, runs.spec_json
    FROM runs JOIN plans ON plans.request_json IS NULL AND plans.label = json_extract(runs.spec_json, '$.serving.sweep');
""",  # plans: the comparison as the unit of work; the rate sweeps of schema 3 become plans
    4: "ALTER TABLE requests ADD COLUMN client_queue_ms REAL;",  # serving: the wait for a concurrency slot
    5: """
ALTER TABLE requests ADD COLUMN counted_input_tokens INTEGER;
ALTER TABLE runs ADD COLUMN warnings_json TEXT NOT NULL DEFAULT '[]';
""",  # the prompt length as the library or server counted it; what may make a run's numbers untrustworthy
    6: "ALTER TABLE requests ADD COLUMN worker INTEGER;",  # serving with --client-workers: the process that sent it
    7: "ALTER TABLE requests ADD COLUMN clock_offset_ms REAL;",  # a worker on another node: its clock against ours
    8: """
CREATE TABLE step_runs (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    plan_id INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    step INTEGER NOT NULL
);
INSERT INTO step_runs (run_id, plan_id, step) SELECT run_id, plan_id, step FROM plan_steps WHERE run_id IS NOT NULL;
ALTER TABLE plan_steps ADD COLUMN capacity_json TEXT;
ALTER TABLE requests ADD COLUMN conversation INTEGER;
ALTER TABLE requests ADD COLUMN turn INTEGER;
""",  # every run a step made (a capacity step makes one per probe), a capacity step's outcome; conversations' turns
    9: "ALTER TABLE requests ADD COLUMN chunk_tokens_json TEXT;",  # tokens each streamed chunk carried (NULL: 1 each)
    10: "ALTER TABLE requests ADD COLUMN failed_after_ms REAL;",  # a failed request: its send to its failure
}


def migrate_script(db: sqlite3.Connection, script: str) -> None:
    """`script`'s statements one by one, inside the caller's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        db.execute(statement)

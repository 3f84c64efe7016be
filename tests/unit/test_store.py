"""ResultsStore on a real SQLite file: round trips, listing, deleting, and refusing files it must not touch."""

import json
import random
import sqlite3

import msgspec
import pytest

from tuibench.core.errors import UserError
from tuibench.core.events import TelemetrySample
from tuibench.core.aggregate import compute_metrics
from tuibench.core.plan import Plan, PlanRequest, PlanStep
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec
from tuibench.core.schema import SCHEMA_VERSION
from tuibench.core.store import ResultsStore

SPEC = RunSpec(
    model="smollm2-135m",
    library="transformers",
    dataset=DatasetSpec(kind="builtin", source="short2short"),
    offline=OfflineParams(batch_size=2, warmup_batches=0, honor_eos=True),
    num_requests=3,
    seed=9,
    device="cpu",
    dtype="float32",
    threads=3,
)
ENVIRONMENT = {"python": "3.11.7", "torch": "2.5.0", "gpus": [{"name": "H100", "mem_gib": 80}], "threads": 3}

# start_s decreases with index, so an ordering by anything but idx would show
REQUESTS = [
    RequestRecord(index=0, input_tokens=20, output_tokens=5, target_output_tokens=5, start_s=0.0625, ttft_ms=12.5,
                  e2el_ms=50.0, itl_ms=[0.1, 12.345678901234567, 25.0], chunk_tokens=[1, 2, 1, 1], batch=0),
    RequestRecord(index=1, input_tokens=32, output_tokens=1, target_output_tokens=1, start_s=0.03125, ttft_ms=12.5,
                  e2el_ms=12.5, itl_ms=[], batch=0, scheduled_s=0.0, client_queue_ms=31.25),
    RequestRecord(index=2, input_tokens=43, output_tokens=0, target_output_tokens=3, start_s=0.0, batch=1,
                  error="RuntimeError: boom", failed_after_ms=7.25),
]
BATCHES = [
    BatchRecord(batch=0, size=2, start_s=0.0, prefill_ms=12.5, decode_ms=37.5, decode_steps=3),
    BatchRecord(batch=1, size=1, start_s=0.0625, prefill_ms=1.0, decode_ms=0.0, decode_steps=0),
]
TELEMETRY = [
    TelemetrySample(t_s=0.5, source="gpu0", values={"util_pct": 88.0, "power_w": None}),
    TelemetrySample(t_s=0.25, source="cpu", values={"util_pct": 12.5}),
]


def _spec(model):
    return RunSpec(model=model, dataset=DatasetSpec(kind="random", source="random", input_len=8, output_len=4))


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "nested" / "results.db"


@pytest.fixture
def store(db_path):
    with ResultsStore.open(db_path) as s:
        yield s


def _write_full_run(store):
    run_id = store.begin_run(SPEC)
    store.record_start(run_id, SPEC, ENVIRONMENT)
    # out of order and in two calls: get_run must return them by index
    store.add_records(run_id, requests=[REQUESTS[2]], batches=[BATCHES[1]], telemetry=TELEMETRY[:1])
    store.add_records(run_id, requests=REQUESTS[:2], batches=BATCHES[:1], telemetry=TELEMETRY[1:])
    metrics = compute_metrics(REQUESTS, BATCHES)
    store.finish_run(run_id, "finished", metrics)
    return run_id, metrics


def test_open_creates_parent_folder_and_schema(db_path):
    assert not db_path.parent.exists()
    ResultsStore.open(db_path).close()
    assert db_path.is_file()
    c = sqlite3.connect(db_path)
    tables = {row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    c.close()
    assert {"meta", "runs", "requests", "batches", "telemetry"} <= tables
    assert version == (str(SCHEMA_VERSION),)


def test_full_run_round_trip(store):
    run_id, metrics = _write_full_run(store)
    stored = store.get_run(run_id)
    run = stored.run
    assert run.id == run_id == 1
    assert run.spec == SPEC
    assert run.environment == ENVIRONMENT
    assert run.metrics == metrics
    assert run.metrics.completed == 2 and run.metrics.failed == 1  # a real metrics object, not all-None
    assert run.status == "finished"
    assert run.error is None
    assert (run.library, run.model, run.dataset, run.scenario) == ("transformers", "smollm2-135m", "short2short",
                                                                    "offline")
    assert stored.requests == REQUESTS  # includes exact itl_ms floats and the failed record's error
    assert stored.requests[0].itl_ms == [0.1, 12.345678901234567, 25.0]
    assert stored.requests[0].chunk_tokens == [1, 2, 1, 1] and stored.requests[1].chunk_tokens == []
    assert stored.batches == BATCHES
    # ordered by t_s: cpu (0.25) before gpu0 (0.5)
    assert list(store.telemetry(run_id)) == [TELEMETRY[1], TELEMETRY[0]]


def test_round_trip_survives_reopen(db_path):
    with ResultsStore.open(db_path) as s:
        run_id, metrics = _write_full_run(s)
    with ResultsStore.open(db_path, create=False) as s:
        stored = s.get_run(run_id)
        assert stored.run.spec == SPEC
        assert stored.run.metrics == metrics
        assert stored.requests == REQUESTS
        assert stored.batches == BATCHES
        assert len(list(s.telemetry(run_id))) == 2


def test_run_in_progress_and_failed_run(store):
    run_id = store.begin_run(SPEC)
    running = store.get_run(run_id).run
    assert running.status == "running"
    assert running.metrics is None
    assert running.environment == {}
    assert store.get_run(run_id).requests == []
    store.finish_run(run_id, "failed", None, error="child exited with signal 9")
    failed = store.get_run(run_id).run
    assert failed.status == "failed"
    assert failed.error == "child exited with signal 9"
    assert failed.metrics is None


def test_add_records_replaces_same_index(store):
    run_id = store.begin_run(SPEC)
    store.add_records(run_id, requests=[REQUESTS[0]])
    updated = RequestRecord(index=0, input_tokens=20, output_tokens=2, target_output_tokens=4, start_s=1.0,
                            ttft_ms=5.0, e2el_ms=6.0, itl_ms=[1.0], batch=0)
    store.add_records(run_id, requests=[updated])
    assert store.get_run(run_id).requests == [updated]


def test_list_runs_newest_first(store):
    ids = [store.begin_run(_spec(f"model-{i}")) for i in range(3)]
    assert ids == [1, 2, 3]
    runs = store.list_runs()
    assert [r.id for r in runs] == [3, 2, 1]
    assert [r.model for r in runs] == ["model-2", "model-1", "model-0"]
    assert runs[0].dataset == "random(8/4±0)"
    assert [r.id for r in store.list_runs(limit=2)] == [3, 2]


def test_delete_run_cascades(store, db_path):
    keep, _ = _write_full_run(store)
    gone, _ = _write_full_run(store)
    assert store.delete_run(gone) is True
    assert [r.id for r in store.list_runs()] == [keep]
    with pytest.raises(UserError, match=f"no run {gone}"):
        store.get_run(gone)
    assert list(store.telemetry(gone)) == []
    c = sqlite3.connect(db_path)
    try:
        for table in ("requests", "batches", "telemetry"):
            counts = dict(c.execute(f"SELECT run_id, COUNT(*) FROM {table} GROUP BY run_id"))
            assert gone not in counts, table  # ON DELETE CASCADE with foreign_keys on
            assert counts[keep] >= 2, table
    finally:
        c.close()
    assert store.get_run(keep).requests == REQUESTS
    assert store.delete_run(gone) is False  # already gone
    assert store.delete_run(999) is False


def test_get_missing_run_raises(store):
    with pytest.raises(UserError, match="no run 42 in .*results.db"):
        store.get_run(42)


def test_telemetry_round_trip_per_run(store):
    a = store.begin_run(SPEC)
    b = store.begin_run(SPEC)
    store.add_records(a, telemetry=TELEMETRY)
    store.add_records(b, telemetry=[TelemetrySample(t_s=9.0, source="gpu1", values={"mem_gib": 3.5})])
    assert list(store.telemetry(a)) == [TELEMETRY[1], TELEMETRY[0]]
    assert list(store.telemetry(b)) == [TelemetrySample(t_s=9.0, source="gpu1", values={"mem_gib": 3.5})]


# -- refusing what is not ours ---------------------------------------------------------------------


def test_open_missing_without_create_raises(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(UserError, match="no results database at"):
        ResultsStore.open(path, create=False)
    assert not path.exists()


def assert_refused_untouched(path, match: str) -> None:
    """Opening `path` is refused with a UserError matching `match`, and the file keeps every byte."""
    before = path.read_bytes()
    with pytest.raises(UserError, match=match):
        ResultsStore.open(path)
    assert path.read_bytes() == before


def test_random_bytes_refused_and_untouched(tmp_path):
    path = tmp_path / "junk.db"
    data = random.Random(0).randbytes(8192)
    path.write_bytes(data)
    assert_refused_untouched(path, "not a readable tuibench results database")


def test_other_sqlite_database_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO notes (body) VALUES ('keep me')")
    c.close()
    assert_refused_untouched(path, "an SQLite file but not a tuibench results database")
    with sqlite3.connect(path) as c:
        assert [row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    c.close()


def _set_meta(path, sql, params=()):
    c = sqlite3.connect(path)
    with c:
        c.execute(sql, params)
    c.close()


def test_newer_schema_refused_and_untouched(tmp_path):
    path = tmp_path / "future.db"
    with ResultsStore.open(path) as s:
        s.begin_run(SPEC)
    _set_meta(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert_refused_untouched(path, r"newer tuibench \(schema 99")


@pytest.mark.parametrize("damage", [
    "DELETE FROM meta",  # no schema_version row at all
    "UPDATE meta SET value = 'one' WHERE key = 'schema_version'",  # not a number
])
def test_missing_or_garbled_schema_version_is_user_error_and_left_alone(tmp_path, damage):
    path = tmp_path / "damaged.db"
    ResultsStore.open(path).close()
    _set_meta(path, damage)
    assert_refused_untouched(path, "no valid tuibench schema version")


def test_a_v1_database_is_migrated_and_keeps_its_runs(tmp_path):
    from tuibench.core.schema import SCHEMA_V1

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA_V1)
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        connection.execute(
            "INSERT INTO runs (created_at, updated_at, status, library, model, dataset, scenario, spec_json)"
            " VALUES ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'finished', 'transformers',"
            " 'smollm2-135m', 'short2short', 'offline', ?)", (SPEC.to_json().decode(),))
        connection.execute("INSERT INTO requests VALUES (1, 0, 5, 3, 3, 0.0, 1.0, 2.0, 5.0, '[2.0, 2.0]', 0, NULL)")
    with ResultsStore.open(path) as store:
        stored = store.get_run(1)
    assert stored.run.spec == SPEC
    assert stored.requests[0].itl_ms == [2.0, 2.0] and stored.requests[0].scheduled_s is None
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)


def test_module_profiles_round_trip_and_cascade(store):
    from tuibench.core.module_profile import ModuleNode, ModuleProfile
    from tuibench.core.roofline import Cost, Roofline

    run = store.begin_run(SPEC)
    root = ModuleNode(name="M", path="M", kind="step", time_ms=12.5, children=(
        ModuleNode(name="q_proj", path="M.q_proj", kind="module", time_ms=10.0, calls=30.0, theory=("q_proj",),
                   cost=Cost(flops=1e9, bytes_read=2e8, bytes_written=1e7)),))
    profiles = [
        ModuleProfile(library="vllm", phase=phase, batch=8, input_len=length, context=float(length), steps=1,
                      dtype="float32", attn="vllm", root=root,
                      roofline=Roofline(device="cpu", dtype="float32", peak_flops_s=8e10, bandwidth_bytes_s=2.5e10))
        for length in (512, 32) for phase in ("decode", "prefill")
    ]
    for profile in profiles:
        store.add_module_profile(run, profile)
    read = store.module_profiles(run)
    assert [(p.input_len, p.phase) for p in read] == [(32, "prefill"), (32, "decode"), (512, "prefill"), (512, "decode")]
    assert read[0] == profiles[3]
    store.delete_run(run)
    assert store.module_profiles(run) == []


def _plan(*specs, skip_last=False):
    steps = tuple(PlanStep(index=i + 1, spec=spec, skip="is not available here: no GPU" if skip_last and
                           i == len(specs) - 1 else None) for i, spec in enumerate(specs))
    return Plan(label="a plan", request=PlanRequest(libraries=("transformers", "vllm")), steps=steps)


def test_a_plan_keeps_its_steps_runs_and_skips_in_order(store):
    vllm = msgspec.structs.replace(SPEC, library="vllm")
    plan_id = store.begin_plan(_plan(SPEC, vllm, msgspec.structs.replace(SPEC, library="mii"), skip_last=True))
    first, second = store.begin_run(SPEC), store.begin_run(vllm)
    store.set_step(plan_id, 2, "running", second)  # out of step order
    store.set_step(plan_id, 1, "running", first)
    store.set_step(plan_id, 1, "finished")
    store.set_step(plan_id, 2, "failed", reason="the server died")
    store.finish_plan(plan_id, "partial")
    stored = store.get_plan(plan_id)
    assert stored.plan.label == "a plan" and stored.plan.status == "partial"
    assert (stored.plan.steps, stored.plan.runs) == (3, 2)
    assert stored.plan.request.libraries == ("transformers", "vllm")
    assert [(s.step, s.status, s.run_id, s.reason) for s in stored.steps] == [
        (1, "finished", first, None), (2, "failed", second, "the server died"),
        (3, "skipped", None, "is not available here: no GPU")]
    assert [r.id for r in stored.runs] == [first, second] and {r.plan_id for r in stored.runs} == {plan_id}
    assert store.get_run(first).run.plan_id == plan_id and store.list_plans()[0].id == plan_id
    store.delete_run(first)  # the step stays, its run gone
    assert store.get_plan(plan_id).steps[0].run_id is None
    with pytest.raises(UserError, match="no plan 9"):
        store.get_plan(9)


def test_a_capacity_step_keeps_every_probe_run_and_its_outcome(store):
    from tuibench.core.capacity import Bracket, CapacitySearch, Probe

    search = CapacitySearch(slo="ttft_p99=500")
    plan = Plan(label="capacity", request=PlanRequest(scenarios=("capacity",), capacity=search),
                steps=(PlanStep(index=1, spec=SPEC, search=search),))
    plan_id = store.begin_plan(plan)
    assert store.get_plan(plan_id).steps[0].capacity.slo == "ttft_p99=500"  # a capacity step before any probe
    probes = []
    for rate in (1.0, 2.0):
        run_id = store.begin_run(SPEC)
        store.set_step(plan_id, 1, "running")
        store.add_step_run(plan_id, 1, run_id)
        probes.append(Probe(rate_rps=rate, run_id=run_id, status="finished", met=rate == 1.0, missed=[]))
    outcome = msgspec.structs.replace(plan.steps[0].no_capacity_yet, probes=probes,
                                      bracket=Bracket(met_rps=1.0, missed_rps=2.0))
    store.set_step(plan_id, 1, "finished", capacity=outcome)
    stored = store.get_plan(plan_id)
    (step,) = stored.steps
    assert step.capacity == outcome and step.run_id is None and stored.runs == []  # its runs are its probes'
    assert stored.plan.runs == 2 and {r.plan_id for r in store.list_runs()} == {plan_id}
    store.delete_run(probes[0].run_id)  # a deleted probe run leaves the outcome, and the count follows
    assert store.get_plan(plan_id).plan.runs == 1


def test_record_start_keeps_the_spec_the_child_ran(store):
    run_id = store.begin_run(SPEC)
    launched = msgspec.structs.replace(SPEC, serving=msgspec.structs.replace(SPEC.serving, endpoint="http://127.0.0.1:9"))
    store.record_start(run_id, launched, ENVIRONMENT)
    assert store.get_run(run_id).run.spec.serving.endpoint == "http://127.0.0.1:9"


def test_the_rate_sweeps_of_a_v3_database_become_plans(tmp_path):
    """Schema 3 grouped a --rates sweep by a label in each spec; schema 4 makes each sweep a plan."""
    from tuibench.core.schema import MIGRATIONS, SCHEMA_V1

    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA_V1)
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        for version in (1, 2):
            connection.executescript(MIGRATIONS[version])
        connection.execute("UPDATE meta SET value = '3'")
        for status, sweep in (("finished", "sweep-a"), ("partial", "sweep-a"), ("finished", None),
                              ("finished", "sweep-b")):
            spec = json.loads(SPEC.to_json())
            spec["serving"]["sweep"] = sweep
            connection.execute(
                "INSERT INTO runs (created_at, updated_at, status, library, model, dataset, scenario, spec_json)"
                " VALUES ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', ?, 'vllm', 'smollm2-135m',"
                " 'short2short', 'serving', ?)", (status, json.dumps(spec)))
    with ResultsStore.open(path) as store:
        plans = {p.label: p for p in store.list_plans()}
        assert set(plans) == {"sweep-a", "sweep-b"}
        assert (plans["sweep-a"].status, plans["sweep-a"].runs, plans["sweep-a"].request) == ("partial", 2, None)
        assert [s.run_id for s in store.get_plan(plans["sweep-a"].id).steps] == [1, 2]
        assert [r.plan_id for r in store.list_runs()] == [plans["sweep-b"].id, None, plans["sweep-a"].id,
                                                          plans["sweep-a"].id]
        assert store.get_run(1).run.spec == SPEC  # the old label is read past


def test_runs_started_at_once_on_a_new_file_all_get_the_schema(tmp_path):
    """Eight processes opening one database that does not exist yet, at the same instant: each waits for the one
    creating the schema, then finds it done (before, most failed on 'table meta already exists' or a column added
    twice; then about one trial in 13 on a loaded machine on 'database is locked' from the creator's switch to
    write-ahead logging while another read the schema). Three files, one after the other."""
    import subprocess
    import sys
    import time

    code = ("import sys, time; from tuibench.core.store import ResultsStore; "
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); ResultsStore.open(sys.argv[1]).close(); "
            "print('ok')")
    for trial in range(3):
        db = tmp_path / f"new{trial}.db"
        start = time.time() + 1.5  # every process imported and waiting before the first opens the file
        processes = [subprocess.Popen([sys.executable, "-c", code, str(db), str(start)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(8)]
        outcomes = [process.communicate(timeout=60) for process in processes]
        assert [out.strip() for out, _ in outcomes] == ["ok"] * 8, [err for _, err in outcomes if err]
        with ResultsStore.open(db, create=False) as store:
            assert store.list_runs() == []
        with sqlite3.connect(db) as connection:
            version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            assert int(version) == SCHEMA_VERSION
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_folder_given_as_the_database_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match="is a folder: give a file"):
        ResultsStore.open(tmp_path)

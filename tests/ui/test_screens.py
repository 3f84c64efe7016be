"""Every screen through Pilot: keys change what it shows. The store is real (a temp SQLite file)."""

import asyncio
import json

import pytest
from textual.widgets import DataTable, Input, SelectionList, Static

from tuibench.ui.app import TuibenchApp
from tuibench.ui.screens.setup import dataset_names
from tuibench.ui.settings import load_settings


def drive(app: TuibenchApp, script, size=(100, 32)):
    """Runs `script(pilot)` against the app under Pilot (no terminal needed)."""
    async def main():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())


async def settle(pilot, *keys: str):
    """Presses `keys`, then waits until the store reads they started (in threads) have been shown."""
    if keys:
        await pilot.press(*keys)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def test_setup_ticks_libraries_shows_the_dataset_histogram_and_refuses_bad_input(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        assert app.current_mode == "setup"
        assert "short2short: 1000 requests" in text_of(app, "#dataset-summary")
        datasets = app.screen.query_one("#datasets", SelectionList)
        datasets.focus()
        datasets.highlighted = dataset_names().index("short2long")  # the histogram follows the cursor
        await pilot.pause()
        assert "short2long: 1000 requests" in text_of(app, "#dataset-summary")
        libraries = app.screen.query_one("#libraries", SelectionList)
        options = {libraries.get_option_at_index(i).value: libraries.get_option_at_index(i)
                   for i in range(libraries.option_count)}
        assert "transformers" in options and options["mii"].disabled and "CUDA" in text_of(app, "#libraries-notes")
        # The profile scenario ticked with lengths that are not numbers: one line on the screen, no run started.
        app.screen.query_one("#scenarios", SelectionList).select("profile")
        app.screen.query_one("#lengths", Input).value = "32,abc"
        await pilot.press("r")
        await pilot.pause()
        assert "lengths: expected a whole number, got 'abc'" in text_of(app, "#setup-error")
        libraries.deselect_all()
        app.screen.query_one("#lengths", Input).value = "32"
        app.screen.query_one("#repeat", Input).value = "3"
        await pilot.press("r")
        await pilot.pause()
        assert "tick at least one library" in text_of(app, "#setup-error")
        assert app.session is None and app.current_mode == "setup"
        assert app.settings.setup["repeat"] == 3  # read from the form, kept with the rest of the choice

    drive(app, script)


def test_setups_repeat_makes_rounds_of_its_plan_or_of_a_picked_plan_file():
    from tuibench.runner.plans import build_plan
    from tuibench.ui.settings import Settings

    plan = build_plan(Settings(setup={"repeat": 3, "num_requests": 2}).request())
    assert [step.repeat for step in plan.steps] == [1, 2, 3]
    assert Settings(plan="quick", setup={"repeat": 2}).request().repeat == 2
    assert Settings(plan="quick").request().repeat == 1


def test_history_groups_runs_by_plan_filters_deletes_on_second_press_and_exports(sample_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "5")
        table = app.screen.query_one("#runs", DataTable)
        assert [r[0] for r in rows(table)] == ["8", "7", "plan 1", "├ 1", "├ 2", "├ 3", "├ 4", "├ 5", "└ 6"]
        assert "demo: transformers vs vllm" in rows(table)[2][-1]
        app.screen.query_one("#history-filter", Input).value = "vllm"
        await pilot.pause()
        assert [r[0] for r in rows(table)] == ["plan 1", "├ 4", "├ 5", "└ 6"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 9
        await settle(pilot, "e")  # the cursor is on run 8, the profile
        exported = json.loads((tmp_path / "tuibench-run-8.json").read_text())
        assert exported["run"]["run"]["id"] == 8 and len(exported["module_profiles"]) == 4
        table.move_cursor(row=2)
        await settle(pilot, "e")  # the plan: its comparison
        plan = json.loads((tmp_path / "tuibench-plan-1.json").read_text())
        assert [s["status"] for s in plan["steps"]] == ["finished"] * 6 + ["skipped"]
        table.move_cursor(row=0)
        await settle(pilot, "d")
        assert table.row_count == 9  # asked, not done
        await settle(pilot, "d")
        assert [r[0] for r in rows(table)][:3] == ["7", "plan 1", "├ 1"]

    drive(app, script)


def test_history_opens_a_stored_run_on_live_and_a_plan_on_compare(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "5")
        table = app.screen.query_one("#runs", DataTable)
        table.move_cursor(row=3)  # run 1, transformers offline
        await settle(pilot, "enter")
        assert app.current_mode == "live"
        assert "run 1" in text_of(app, "#run-title") and "finished" in text_of(app, "#run-title")
        percentiles = rows(app.screen.query_one("#percentiles", DataTable))
        assert percentiles[0][0] == "TTFT" and percentiles[0][-1] == "8"
        await settle(pilot, "5")
        app.screen.query_one("#runs", DataTable).move_cursor(row=2)  # plan 1
        await settle(pilot, "enter")
        assert app.current_mode == "compare" and app.screen.picked == [1, 2, 3, 4, 5, 6]

    drive(app, script)


def test_modules_toggles_phase_sorts_expands_layers_and_cycles_lengths(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "3")
        table = app.screen.query_one("#module-table", DataTable)
        assert "prefill" in text_of(app, "#modules-title") and "input 32" in text_of(app, "#modules-title")
        tree = rows(table)
        assert tree[0][0] == "LlamaForCausalLM" and tree[0][2] == "100.0"
        await settle(pilot, "p")
        assert "decode" in text_of(app, "#modules-title")
        await settle(pilot, "l")
        assert "context ≈128" in text_of(app, "#modules-title")
        await settle(pilot, "s")  # leaves by time, longest first
        times = [float(r[1].replace(",", "")) for r in rows(table)]
        assert times == sorted(times, reverse=True) and len(times) == 5
        await settle(pilot, "s", "s", "x")  # back to the tree, then every layer too
        names = [r[0].strip() for r in rows(table)]
        assert "layer 0" in names and "layer 1" in names
        bounds = {r[0].strip(): r[6] for r in rows(table)}
        assert bounds["act_fn"] == "mem" and bounds["gate_proj"] == "comp"

    drive(app, script)


def test_compare_shows_the_newest_plan_side_by_side_and_steps_workloads_and_baselines(sample_db, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "4")
        runs = app.screen.query_one("#compare-runs", DataTable)
        assert [r[1] for r in rows(runs)] == ["7", "6", "5", "4", "3", "2", "1"]  # profiles are on Modules
        assert app.screen.picked == [1, 2, 3, 4, 5, 6]  # the newest plan of several runs
        metrics = app.screen.query_one("#compare-metrics", DataTable)
        assert [str(c.label) for c in metrics.columns.values()] == ["metric", "transformers (base)", "vllm"]
        assert "short2short · offline" in text_of(app, "#compare-title")
        throughput = next(r for r in rows(metrics) if r[0] == "output tok/s")
        assert "★" in throughput[2] and "×)" in throughput[2] and "★" not in throughput[1]  # vLLM is quicker
        await settle(pilot, "g", "g")
        assert "serving @ 4 req/s" in text_of(app, "#compare-title")
        await settle(pilot, "b")
        assert [str(c.label) for c in metrics.columns.values()][1:] == ["transformers", "vllm (base)"]
        await settle(pilot, "f")
        figures = sorted(p.name for p in (tmp_path / "tuibench-figures" / "plan-1").iterdir())
        assert {"offline.png", "serving-short2short.png", "serving-short2short.svg", "datasets.png"} <= set(figures)
        await settle(pilot, "c")
        assert app.screen.picked == [] and metrics.row_count == 0
        runs.move_cursor(row=0)  # run 7, alone
        await settle(pilot, "space")
        runs.move_cursor(row=1)
        await settle(pilot, "a")  # run 6's whole plan
        assert app.screen.picked == [1, 2, 3, 4, 5, 6, 7]

    drive(app, script)


def test_help_lists_every_screens_keys_and_closes(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        text = str(app.screen.query_one("#help-text", Static).render())
        for line in ("Cancel run", "Log/steps", "Prefill/decode", "Pick plan", "Baseline", "Figures", "Delete",
                     "Theme"):
            assert line in text
        lines = text.splitlines()
        for key, what in (("[", "Older run"), ("]", "Newer run"), ("escape", "Leave field")):  # `[` was eaten as markup
            assert any(line.split()[:1] == [key] and what in line for line in lines), (key, what)
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "setup" and not app.screen.query("#help-text")

    drive(app, script)


def test_theme_toggles_and_is_remembered(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        assert app.theme == "tuibench-dark"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "tuibench-light"

    drive(app, script)
    assert load_settings().theme == "tuibench-light"
    again = TuibenchApp(db_path=sample_db)

    async def check(pilot):
        assert again.theme == "tuibench-light"

    drive(again, check)


def test_replay_drives_the_live_screen_to_the_recorded_end(sample_db, tmp_path):
    from tuibench.core import events as ev
    from tuibench.core.store import ResultsStore
    from tuibench.ui.session import stored_run_events

    with ResultsStore.open(sample_db) as store:
        events = list(stored_run_events(store, 1))
    app = TuibenchApp(db_path=sample_db, replay=events, replay_speed=50.0)

    async def script(pilot):
        assert app.current_mode == "live"
        await played_to_the_end(pilot, app)
        assert app.state.status == "finished" and app.state.requests_done == 8
        assert app.plan_state.status == "finished"
        assert "finished" in text_of(app, "#run-title")
        assert rows(app.screen.query_one("#percentiles", DataTable))[0][-1] == "8"
        assert isinstance(events[-1], ev.RunFinished)

    drive(app, script)


async def played_to_the_end(pilot, app) -> None:
    for _ in range(100):
        await pilot.pause(0.05)
        if app.state.ended:
            break
    await pilot.pause(0.5)


def replay_with_fake_gpus(sample_db, gpus: int, nodes: tuple[str, ...] = ("",)) -> TuibenchApp:
    """The app replaying stored run 1 with telemetry of `gpus` fake GPUs on each of `nodes` ("": this machine; else
    a Ray node's label) added before its end: gpu k at 6·k % utilisation, k GiB used and 100 + k W (no GPU is here)."""
    from tuibench.core import events as ev
    from tuibench.core.store import ResultsStore
    from tuibench.ui.session import stored_run_events

    with ResultsStore.open(sample_db) as store:
        events = list(stored_run_events(store, 1))
    end = events[-1]
    samples = [ev.TelemetrySample(t_s=end.t_s - 0.5 + tick * 0.1, source=f"gpu{k}@{node}" if node else f"gpu{k}",
                                  values={"util_pct": 6.0 * k, "mem_used_mib": 1024.0 * k, "power_w": 100.0 + k})
               for tick in range(3) for node in nodes for k in range(gpus)]
    return TuibenchApp(db_path=sample_db, replay=[*events[:-1], *samples, end], replay_speed=50.0)


@pytest.mark.parametrize("gpus, rows_shown, first_row", [(8, 8, "gpu0"), (16, 8, "gpu0–1")])
def test_live_shows_every_gpu_of_a_fake_multi_gpu_run_a_row_each_up_to_8(sample_db, gpus, rows_shown, first_row):
    app = replay_with_fake_gpus(sample_db, gpus)

    async def script(pilot):
        await played_to_the_end(pilot, app)
        lines = text_of(app, "#gpus").splitlines()
        assert len(lines) == rows_shown
        assert lines[0].split()[0] == first_row
        last = lines[-1]
        if gpus == 8:  # gpu7: 42 %, 7 GiB, 107 W
            assert "42 %" in last and "7.0 GiB" in last and "107 W" in last
        else:  # gpu14–15: the mean of 84 % and 90 %, the sum of 14 and 15 GiB and of 114 and 115 W
            assert last.startswith("gpu14–15") and "87 %" in last and "29.0 GiB" in last and "229 W" in last

    drive(app, script)


def test_live_names_each_gpu_of_a_fake_two_node_ray_cluster_by_its_node(sample_db):
    app = replay_with_fake_gpus(sample_db, 4, nodes=("10.0.0.1", "10.0.0.2"))

    async def script(pilot):
        await played_to_the_end(pilot, app)
        lines = text_of(app, "#gpus").splitlines()
        assert [line.split()[0] for line in lines] == [f"10.0.0.{n}/gpu{k}" for n in (1, 2) for k in range(4)]
        assert "18 %" in lines[-1] and "3.0 GiB" in lines[-1] and "103 W" in lines[-1]
        assert max(map(len, lines)) <= 80 - 4  # a row keeps its width: the node names take the sparkline's room

    drive(app, script)


def test_live_shows_no_gpu_rows_for_a_run_on_one_or_no_gpu(sample_db):
    app = replay_with_fake_gpus(sample_db, 1)

    async def script(pilot):
        await played_to_the_end(pilot, app)
        assert not app.screen.query_one("#gpus").display

    drive(app, script)


def test_live_shows_the_servers_queue_and_kv_cache_beside_the_device_when_it_exports_them(sample_db):
    from tuibench.core import events as ev
    from tuibench.core.store import ResultsStore
    from tuibench.ui.session import stored_run_events

    with ResultsStore.open(sample_db) as store:
        events = list(stored_run_events(store, 1))
    end = events[-1]
    from tuibench.core.server_view import bucket_key

    server = [ev.TelemetrySample(t_s=end.t_s - 0.5 + tick * 0.1, source="server",
                                 values={"waiting_requests": 2.0 * tick, "kv_cache_used_pct": 10.0 * tick})
              for tick in range(4)]
    # Its TTFT histogram before and after the measured requests: 8 of them, 4 under 0.1 s and 4 under 0.25 s.
    histograms = [ev.TelemetrySample(t_s=end.t_s - 0.6 + 0.5 * k, source="server_hist", values={
        bucket_key("ttft", 0.1): 4.0 * k, bucket_key("ttft", 0.25): 8.0 * k, bucket_key("ttft", float("inf")): 8.0 * k,
        bucket_key("e2el", 1.0): 8.0 * k, bucket_key("e2el", float("inf")): 8.0 * k}) for k in (0, 1)]
    app = TuibenchApp(db_path=sample_db, replay=[*events[:-1], *server, *histograms, end], replay_speed=50.0)

    async def script(pilot):
        await played_to_the_end(pilot, app)
        shown = [w for w in app.screen.query(".server") if w.display]
        assert [w.query_one("Label").render().plain for w in shown] == ["waiting: 6", "KV cache: 30 %"]
        assert all(w.display for w in app.screen.query(".device"))  # beside the device's, not instead
        # The server's own quantiles beside the client's: p50 at the top of the first bucket, p99 in the second.
        by_label = {row[0]: row for row in rows(app.screen.query_one("#percentiles", DataTable))}
        assert by_label["TTFT srv"] == ["TTFT srv", "100.0", "N/A", "247.0", "8"] and "TPOT srv" not in by_label

    drive(app, script)


def test_live_has_no_server_sparklines_for_a_server_without_metrics(sample_db):
    app = replay_with_fake_gpus(sample_db, 1)

    async def script(pilot):
        await played_to_the_end(pilot, app)
        assert not any(w.display for w in app.screen.query(".server"))

    drive(app, script)


def add_capacity_plan(db) -> tuple[int, str]:
    """Plan 2: a capacity search under ttft_p99≤300 ms on short2short, transformers and vLLM probing 1, 2 and 4
    req/s (fixed records, stored through the real store): transformers holds up to 2, vLLM up to 4 (its ceiling
    here). Returns the plan id and the verdict the app should show."""
    import random

    import msgspec

    from conftest import _records
    from tuibench.core.capacity import Bracket, CapacitySearch, judge, verdict
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.plan import Plan, PlanRequest, PlanStep
    from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams
    from tuibench.core.store import ResultsStore

    search = CapacitySearch(slo="ttft_p99=300", start_rate=1.0, max_rate=4.0)
    spec = RunSpec(scenario="serving", dataset=DatasetSpec(kind="builtin", source="short2short"), num_requests=12,
                   serving=ServingParams(request_rate=1.0))
    steps = tuple(PlanStep(index=i, spec=msgspec.structs.replace(spec, library=library), search=search)
                  for i, library in ((1, "transformers"), (2, "vllm")))
    rng = random.Random(3)
    outcomes = []
    with ResultsStore.open(db) as store:
        plan_id = store.begin_plan(Plan(label="capacity", request=PlanRequest(scenarios=("capacity",), capacity=search,
                                                                              libraries=("transformers", "vllm")),
                                        steps=steps))
        for step, scales in zip(steps, ((1.0, 1.2, 3.0), (0.5, 0.6, 0.8)), strict=True):
            probes = []
            for rate, scale in zip((1.0, 2.0, 4.0), scales, strict=True):
                probe_spec = msgspec.structs.replace(step.spec, serving=ServingParams(request_rate=rate))
                run = store.begin_run(probe_spec)
                records = _records(12, rng, scale)
                metrics = compute_metrics(records, [])
                store.add_records(run, requests=records)
                store.finish_run(run, "finished", metrics)
                store.add_step_run(plan_id, step.index, run)
                probes.append(judge(rate, run, "finished", metrics, None, search.objectives))
            met = [p.rate_rps for p in probes if p.met]
            missed = [p.rate_rps for p in probes if not p.met]
            outcome = msgspec.structs.replace(step.no_capacity_yet, probes=probes, bracket=Bracket(
                met_rps=max(met), missed_rps=min(missed) if missed else None))
            store.set_step(plan_id, step.index, "finished", capacity=outcome)
            outcomes.append(outcome)
        store.finish_plan(plan_id, "finished")
    assert [o.capacity_rps for o in outcomes] == [2.0, 4.0]  # the records above are made so
    return plan_id, verdict(outcomes)


def test_compare_draws_a_capacity_searchs_probes_under_its_slo_line_with_the_verdict(sample_db):
    plan_id, line = add_capacity_plan(sample_db)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "4")
        assert sorted(app.screen.picked) == list(range(9, 15))  # the newest plan: every probe's run
        title = text_of(app, "#compare-title")
        assert "serving @ 1 req/s" in title and line in title.replace("\n", " ")
        assert line == "vllm sustains at least 4 req/s under the SLO (ttft_p99≤300 ms), transformers 2 req/s"
        from tuibench.ui.screens.compare import capacity_lines

        lines = capacity_lines(app.screen.capacities[plan_id])
        assert [name for name, _, _ in lines] == ["transformers", "vllm", "SLO ttft_p99≤300 ms"]
        assert lines[0][1] == [1.0, 2.0, 4.0] and lines[2][2] == [300.0, 300.0]

    drive(app, script, size=(130, 36))


def test_live_lists_a_capacity_steps_probes_as_they_end(sample_db):
    from tuibench.core.capacity import CapacitySearch, Probe
    from tuibench.core.plan import Plan, PlanRequest, PlanStarted, PlanStep, StepProbed, StepStarted
    from tuibench.core.reducer import PlanState
    from tuibench.core.spec import DatasetSpec, RunSpec

    search = CapacitySearch(slo="ttft_p99=300")
    step = PlanStep(index=1, spec=RunSpec(library="vllm", scenario="serving",
                                          dataset=DatasetSpec(kind="builtin", source="short2short")), search=search)
    state = PlanState()
    for event in (PlanStarted(plan_id=5, plan=Plan(label="capacity", request=PlanRequest(), steps=(step,))),
                  StepStarted(index=1, run_id=11),
                  StepProbed(index=1, probe=Probe(rate_rps=1.0, run_id=11, status="finished", met=True, missed=[],
                                                  measured_ms={"ttft_p99≤300 ms": 120.0})),
                  StepStarted(index=1, run_id=12),
                  StepProbed(index=1, probe=Probe(rate_rps=2.0, run_id=12, status="finished", met=False,
                                                  missed=["ttft p99 450.0 ms > 300"],
                                                  measured_ms={"ttft_p99≤300 ms": 450.0}))):
        state.apply(event)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        app.plan_state = state
        await settle(pilot, "2")
        app.screen.maybe_redraw()
        await settle(pilot)
        from rich.text import Text

        shown = [[Text.from_markup(cell).plain for cell in row] for row in rows(app.screen.query_one("#steps", DataTable))]
        assert shown == [["vllm capacity", "running", ""], ["  @1 req/s", "met", "120 ms"],
                         ["  @2 req/s", "missed", "450 ms"]]

    drive(app, script)


def test_escape_leaves_a_field_so_the_screen_keys_act_again(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        field = app.screen.query_one("#rates", Input)
        field.focus()
        await settle(pilot, "5")
        assert field.value == "5" and app.current_mode == "setup"  # typed into the field, as a field should
        await settle(pilot, "escape", "5")
        assert app.current_mode == "history" and field.value == "5"

    drive(app, script)


def test_q_while_a_run_goes_asks_once_more(sample_db, tmp_path):
    from tuibench.core.store import ResultsStore
    from tuibench.ui.session import stored_run_events

    with ResultsStore.open(sample_db) as store:
        events = list(stored_run_events(store, 1))
    app = TuibenchApp(db_path=sample_db, replay=events, replay_speed=0.05)  # a replay that is still going

    async def script(pilot):
        await settle(pilot)
        assert app.running
        await settle(pilot, "q")
        assert app.is_running and any("q again" in str(n.message) for n in app._notifications)
        assert app.return_code is None  # still running
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0  # the second q quit

    drive(app, script)


def test_a_runs_last_events_after_the_app_closed_are_taken_without_a_traceback(sample_db):
    """A run that ends as the user quits: its session's last events reach an app whose screens are gone (seen in
    CI: ScreenStackError out of the test's app)."""
    from tuibench.core import events as ev
    from tuibench.core.plan import PlanEnded
    from tuibench.ui.app import StateMoved

    app = TuibenchApp(db_path=sample_db)
    drive(app, settle)
    for event in (ev.RunFinished(t_s=1.0), PlanEnded(status="finished")):
        app.on_state_moved(StateMoved(event, app.generation))  # raised ScreenStackError before


def test_setup_at_80x24_keeps_start_and_its_error_in_sight_and_ticks_read_without_colour(sample_db):
    from textual.widgets import Button

    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        screen = app.screen
        for selector in ("#start", "#setup-error"):
            region = screen.query_one(selector).region
            assert region.bottom <= 24 - 1 and region.height > 0, (selector, region)  # above the footer
        ticks = screen.query_one("#libraries", SelectionList)
        line = "".join(segment.text for segment in ticks.render_line(0))
        assert "✓" in line.split("transformers")[0] and "X" not in line  # picked: a tick, not a coloured X
        assert "✓" not in "".join(segment.text for segment in ticks.render_line(1))  # vllm: not picked
        assert "needs a CUDA GPU" in text_of(app, "#libraries-notes")  # MII's reason in full
        assert isinstance(screen.query_one("#start"), Button)

    drive(app, script, size=(80, 24))


def test_live_names_the_step_whose_server_is_starting_not_the_run_before(sample_db):
    from tuibench.core import events as ev
    from tuibench.core.plan import Plan, PlanRequest, PlanStarted, PlanStep, StepStarted
    from tuibench.core.reducer import PlanState
    from tuibench.core.spec import DatasetSpec, RunSpec

    step = PlanStep(index=1, spec=RunSpec(library="vllm", scenario="serving",
                                          dataset=DatasetSpec(kind="builtin", source="short2short")))
    state = PlanState()
    for event in (PlanStarted(plan_id=3, plan=Plan(label="p", request=PlanRequest(), steps=(step,))),
                  StepStarted(index=1, run_id=12), ev.Phase(t_s=0.1, name="loading", detail="starting the vllm server")):
        state.apply(event)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await settle(pilot, "2")
        app.plan_state = state
        app.state_version += 1
        app.screen.maybe_redraw()
        await settle(pilot)
        title = text_of(app, "#run-title")
        assert title.startswith("run 12 · pending · loading · vllm") and "short2short" in title

    drive(app, script)


def test_a_count_keeps_to_five_characters():
    from tuibench.ui.screens.live import count_text

    assert [count_text(n) for n in (7, 9_999, 14_948, 123_456, 2_500_000)] == ["7", "9,999", "14.9k", "123k", "2.5M"]


@pytest.fixture
def explained_db(tmp_path):
    """Plan 1: transformers and vLLM, each an offline run (batch 8, input 128, 16 tokens out, 50 ms a token) and a
    profile (prefill and decode at length 128, vLLM's decode quicker in attention) through the real store."""
    import msgspec

    from conftest import sample_profile
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.plan import Plan, PlanRequest, PlanStep
    from tuibench.core.records import RequestRecord
    from tuibench.core.spec import DatasetSpec, ProfileParams, RunSpec
    from tuibench.core.store import ResultsStore

    path = tmp_path / "data" / "tuibench" / "results.db"
    dataset = DatasetSpec(kind="random", source="random", input_len=128, output_len=16)
    request = PlanRequest(label="explained", libraries=("transformers", "vllm"), scenarios=("offline", "profile"))
    specs = [RunSpec(library=library, scenario=scenario, dataset=dataset, num_requests=8,
                     profile=ProfileParams(lengths=(128,)))
             for library in ("transformers", "vllm") for scenario in ("offline", "profile")]
    plan = Plan(label=request.label, request=request, steps=tuple(PlanStep(index=i + 1, spec=s)
                                                                  for i, s in enumerate(specs)))
    with ResultsStore.open(path) as store:
        plan_id = store.begin_plan(plan)
        for index, spec in enumerate(specs, start=1):
            run = store.begin_run(spec)
            if spec.scenario == "offline":
                tpot = 50.0 if spec.library == "transformers" else 30.0
                records = [RequestRecord(index=i, input_tokens=128, output_tokens=16, target_output_tokens=16,
                                         start_s=0.0, ttft_ms=900.0, e2el_ms=900.0 + 15 * tpot, batch=0)
                           for i in range(8)]
                store.add_records(run, requests=records)
                store.finish_run(run, "finished", compute_metrics(records, []))
            else:
                for phase in ("prefill", "decode"):
                    profile = sample_profile(phase, 128, 1.0)
                    if spec.library == "vllm":
                        profile = msgspec.structs.replace(profile, library="vllm", step_wall_ms=profile.step_wall_ms - 12)
                    store.add_module_profile(run, profile)
                store.finish_run(run, "finished", compute_metrics([], []))
            store.set_step(plan_id, index, "finished", run)
        store.finish_plan(plan_id, "finished")
    return path


def rendered(app, selector: str, width: int = 78) -> str:
    """What a Static holding a Rich renderable (a Group, a Table) shows, as plain text."""
    import io

    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


def test_compare_explains_the_plan_coarse_to_fine_as_a_waterfall(explained_db, tmp_path):
    app = TuibenchApp(db_path=explained_db)

    async def script(pilot):
        await settle(pilot, "4")
        assert app.screen.picked == [1, 3]  # the plan's coarse runs: its profiles are on Modules
        await settle(pilot, "e")
        assert not app.screen.query_one("#compare-bottom").display
        text = rendered(app, "#compare-explain")
        assert "vllm · run 4 against transformers · run 2" in text and "prefill" in text
        assert "outside the forward" in text and "-12.00" in text  # the only category that moved
        # Each library's time per token against its decode step (the sample's decode forward: 40 ms).
        assert "transformers: TPOT 50.00 ms = forward 40.00 + outside +10.00 (20 %)" in text
        assert "vllm: TPOT 30.00 ms = forward 40.00 + outside -10.00" in text
        await settle(pilot, "g")
        assert "decode" in rendered(app, "#compare-explain")
        app.save_screenshot(str(tmp_path / "explain.svg"))
        await settle(pilot, "e")
        assert app.screen.query_one("#compare-bottom").display

    drive(app, script, size=(80, 24))

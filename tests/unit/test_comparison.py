"""Runs side by side: groups per workload, the best of each row, ratios to the baseline, the knee of a sweep;
and what the CLI and the files make of it (tables, CSV, Markdown, the paper's figures)."""

import csv
import io

import pytest
from rich.console import Console

from tuibench.core.catalogue import METRICS
from tuibench.core.side_by_side import compare, knee
from tuibench.core.aggregate import compute_metrics
from tuibench.core.records import RequestRecord
from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams
from tuibench.core.store import RunRow
from tuibench.report.comparison import (
    document_of, group_table, knee_text, steps_table, sweep_table, to_csv, to_markdown,
)

SHORT = DatasetSpec(kind="builtin", source="short2short")


def _records(count: int, ttft_ms: float, tpot_ms: float, out: int = 10, gap_s: float = 0.5,
             scheduled: bool = False, queue_ms: float = 0.0) -> list[RequestRecord]:
    """`count` requests `gap_s` apart; each waits `queue_ms` longer than the one before (a saturated server)."""
    return [RequestRecord(index=i, input_tokens=20, output_tokens=out, target_output_tokens=out, start_s=gap_s * i,
                          scheduled_s=gap_s * i if scheduled else None, ttft_ms=ttft_ms + queue_ms * i,
                          e2el_ms=ttft_ms + queue_ms * i + tpot_ms * (out - 1), itl_ms=[tpot_ms] * (out - 1))
            for i in range(count)]


def _run(run_id: int, library: str, scenario: str = "offline", rate: float | None = None, ttft_ms: float = 100.0,
         tpot_ms: float = 50.0, model: str = "smollm2-135m", status: str = "finished", failed: int = 0,
         plan_id: int | None = 1, queue_ms: float = 0.0) -> RunRow:
    # Offline requests start together; served ones arrive at the offered rate (half a second apart if none).
    gap_s = 0.0 if scenario == "offline" else 1.0 / rate if rate else 0.5
    records = _records(8, ttft_ms, tpot_ms, gap_s=gap_s, scheduled=scenario == "serving" and rate is not None,
                       queue_ms=queue_ms) + [RequestRecord(index=8 + i, input_tokens=20, output_tokens=0,
                                                             target_output_tokens=10, start_s=9.0, error="boom")
                                               for i in range(failed)]
    spec = RunSpec(model=model, library=library, scenario=scenario, dataset=SHORT,
                   serving=ServingParams(request_rate=rate))
    return RunRow(id=run_id, created_at="", updated_at="", status=status, library=library, model=model,
                  dataset="short2short", scenario=scenario, spec=spec, environment={},
                  metrics=compute_metrics(records), error=None, plan_id=plan_id)


def _row(group, key):
    return next(r for r in group.rows if r.key == key)


def test_each_workload_is_a_group_with_the_libraries_as_columns_best_marked_and_ratios_to_the_baseline():
    runs = [_run(1, "transformers", tpot_ms=100.0), _run(2, "vllm", tpot_ms=50.0), _run(3, "llamacpp", tpot_ms=80.0),
            _run(4, "transformers", "serving", 2.0), _run(5, "vllm", "serving", 2.0)]
    comparison = compare(runs)
    assert comparison.baseline == "transformers"
    offline, serving = comparison.groups
    assert (offline.scenario, offline.rate, serving.scenario, serving.rate) == ("offline", None, "serving", 2.0)
    assert [c.label for c in offline.columns] == ["transformers", "vllm", "llamacpp"] and offline.baseline == 0
    throughput = _row(offline, "output_throughput_tok_s")
    assert throughput.best == 1 and throughput.higher_is_better  # vLLM: the shortest decode
    assert throughput.cells[0].ratio == pytest.approx(1.0)
    assert throughput.cells[1].ratio == pytest.approx(throughput.cells[1].value / throughput.cells[0].value)
    assert throughput.cells[1].ratio > 1.5
    tpot = _row(offline, "tpot_p50_ms")
    assert tpot.best == 1 and not tpot.higher_is_better and tpot.cells[1].ratio == pytest.approx(0.5)
    assert _row(offline, "ttft_p50_ms").best is None  # all equal: nothing to mark
    assert {r.key for r in offline.rows} <= {m.key for m in METRICS}
    assert serving.title == "short2short · serving @ 2 req/s"


def test_another_baseline_and_failed_requests():
    runs = [_run(1, "transformers"), _run(2, "vllm", failed=2, status="partial")]
    (group,) = compare(runs, baseline="vllm").groups
    assert group.baseline == 1
    failed = _row(group, "failed")
    assert [c.value for c in failed.cells] == [0, 2] and failed.best == 0
    assert group.columns[1].status == "partial"


def test_columns_say_the_model_when_runs_span_models_and_the_run_when_a_library_repeats():
    spans = compare([_run(1, "vllm", model="a"), _run(2, "vllm", model="b")]).groups[0]
    assert [c.label for c in spans.columns] == ["vllm · a", "vllm · b"]
    apart = compare([_run(1, "vllm", plan_id=1), _run(7, "vllm", plan_id=2)]).groups[0]
    assert [c.label for c in apart.columns] == ["vllm #1", "vllm #7"]  # two plans: a before and an after, say


def test_the_repeats_of_a_step_are_one_column_with_a_confidence_interval_and_a_noise_verdict():
    runs = [_run(1, "transformers", tpot_ms=100.0), _run(2, "vllm", tpot_ms=50.0), _run(3, "llamacpp", tpot_ms=99.0),
            _run(4, "transformers", tpot_ms=102.0), _run(5, "vllm", tpot_ms=51.0), _run(6, "llamacpp", tpot_ms=101.0),
            _run(7, "transformers", tpot_ms=98.0), _run(8, "vllm", tpot_ms=49.0), _run(9, "llamacpp", tpot_ms=103.0)]
    (group,) = compare(runs).groups
    assert [c.label for c in group.columns] == ["transformers ×3", "vllm ×3", "llamacpp ×3"]
    assert [c.run_ids for c in group.columns] == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]
    tpot = _row(group, "tpot_p50_ms")
    base, vllm, llamacpp = tpot.cells
    assert base.n == 3 and base.value == pytest.approx(100.0) and base.low < 100.0 < base.high
    assert base.verdict is None  # the baseline is not judged against itself
    assert vllm.verdict == "lower" and vllm.ratio == pytest.approx(0.5)
    assert llamacpp.verdict == "within noise" and llamacpp.ratio == pytest.approx(1.01)
    assert tpot.best == 1  # vLLM's lead is real
    close = compare([r for r in runs if r.library != "vllm"]).groups[0]
    assert _row(close, "tpot_p50_ms").best is None  # 1 % apart, within the repeats' noise: no ★


def test_a_sweep_knees_where_requests_come_back_slower_than_they_were_sent():
    runs = [_run(1, "transformers", "serving", 1.0), _run(2, "transformers", "serving", 2.0, queue_ms=50),
            _run(3, "transformers", "serving", 4.0, queue_ms=600), _run(4, "transformers", "serving", None),
            _run(5, "vllm", "serving", 1.0), _run(6, "vllm", "serving", 4.0, queue_ms=10)]
    hf, vllm = compare(runs).sweeps
    assert [p.rate for p in hf.points] == [1.0, 2.0, 4.0, None]  # all at once last
    assert hf.points[2].offered_rps == pytest.approx(4.0) and hf.points[2].completion_rps < 0.9 * 4.0
    assert hf.points[1].completion_rps >= 0.9 * hf.points[1].offered_rps  # a little queue, kept up with
    assert hf.saturated and hf.knee_rate == 4.0 and knee(hf.points).run_id == 3
    assert hf.capacity_rps == max(p.request_throughput_rps for p in hf.points)
    assert not vllm.saturated and vllm.knee_rate is None
    assert "saturates by 4 req/s (sent at 4.00, came back at" in knee_text(hf)
    assert "keeps up with every rate up to 4 req/s" in knee_text(vllm)
    at_once = compare([_run(1, "vllm", "serving", 1.0), _run(2, "vllm", "serving", None)]).sweeps[0]
    assert at_once.saturated and at_once.knee_rate is None and "all at once, it serves" in knee_text(at_once)


def _render(table) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_the_tables_and_files_mark_the_best_and_carry_every_value():
    runs = [_run(1, "transformers", tpot_ms=100.0), _run(2, "vllm", tpot_ms=50.0),
            _run(3, "transformers", "serving", 1.0), _run(4, "vllm", "serving", 1.0)]
    document = document_of(runs, {})
    offline = document.comparison.groups[0]
    text = _render(group_table(offline))
    line = next(line for line in text.splitlines() if line.startswith("output tok/s"))
    assert "★" in line and "transformers (base)" in text and "×)" in line
    assert "short2short" in _render(sweep_table(document.comparison.sweeps))
    rows = list(csv.DictReader(io.StringIO(to_csv(document))))
    values = [r for r in rows if r["metric"] == "output_throughput_tok_s" and r["scenario"] == "offline"]
    assert {r["library"]: r["best"] for r in values} == {"transformers": "0", "vllm": "1"}
    assert float(values[1]["ratio_to_baseline"]) == pytest.approx(offline.rows[0].cells[1].ratio)
    markdown = to_markdown(document)
    assert "## short2short · offline" in markdown and "| output tok/s |" in markdown and "★**" in markdown
    assert {r.run_id: r.metrics["output_throughput_tok_s"] for r in document.results}[2] == \
        offline.rows[0].cells[1].value


def test_the_steps_table_shows_why_a_step_did_not_run(tmp_path):
    from tuibench.core.plan import Plan, PlanRequest, PlanStep
    from tuibench.core.store import ResultsStore
    from tuibench.report.comparison import load_document

    spec = RunSpec(library="mii", dataset=SHORT)
    with ResultsStore.open(tmp_path / "r.db") as store:
        plan_id = store.begin_plan(Plan(label="p", request=PlanRequest(libraries=("mii",)),
                                        steps=(PlanStep(index=1, spec=spec, skip="is not available here: no GPU"),)))
        document, profiles = load_document(store, plan_id)
        assert profiles == []
    text = _render(steps_table(document))
    assert "skipped" in text and "is not available here: no GPU" in text and "plan 1: p" in text


def test_figures_are_written_as_png_and_svg(tmp_path):
    from tuibench.report.figures import write_figures

    runs = [_run(1, "transformers"), _run(2, "vllm", tpot_ms=30.0),
            *(_run(3 + i, library, "serving", rate, ttft_ms=100 * (1 + i))
              for i, (library, rate) in enumerate([("transformers", 1.0), ("transformers", 4.0), ("vllm", 1.0),
                                                   ("vllm", None)]))]
    document = document_of(runs, {})
    assert document.datasets == [SHORT]
    files = write_figures(document, tmp_path)
    names = sorted(p.name for p in files)
    assert names == sorted(f"{stem}.{ext}" for stem in ("serving-short2short", "offline", "datasets")
                           for ext in ("png", "svg"))
    for path in files:
        head = path.read_bytes()[:200]
        assert head.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in path.read_bytes()[:2000]


def test_serving_panels_start_at_zero_so_a_small_gap_looks_small():
    """46.2 against 47.2 tok/s, a 2 % gap, filled the throughput panel from edge to edge."""
    from tuibench.core.side_by_side import Sweep, SweepPoint
    from tuibench.report.figures import _serving

    def sweep(library: str, tok_s: float) -> Sweep:
        points = [SweepPoint(rate=rate, run_id=1, request_throughput_rps=rate, output_throughput_tok_s=tok_s + rate,
                             ttft_p50_ms=50.0, ttft_p99_ms=60.0, tpot_p50_ms=10.0 + rate, tpot_p99_ms=12.0,
                             e2el_p50_ms=100.0, schedule_lag_p99_ms=0.0, offered_rps=rate, completion_rps=rate,
                             failed=0) for rate in (0.1, 0.2)]
        return Sweep(dataset="d", label=library, library=library, points=points, capacity_rps=0.2, saturated=False,
                     knee_rate=None)

    figure = _serving([sweep("a", 46.2), sweep("b", 47.0)], "d", {})
    throughput, _, tpot = figure.axes[:3]
    assert throughput.get_ylim()[0] == 0 and throughput.get_ylim()[1] >= 47.2
    assert tpot.get_yscale() == "linear" and tpot.get_ylim()[0] == 0

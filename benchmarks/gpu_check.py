"""The Python half of benchmarks/gpu_check.sh: the app on a real run, and the check's figures.

    python benchmarks/gpu_check.py app OUT --db DB --model MODEL --dtype DTYPE --requests N
        runs one offline step in the app (Pilot, a real child process) and saves the Live screen as OUT/live.svg
    python benchmarks/gpu_check.py summary OUT --db DB
        reads the offline run (1) and the profiles (2: events, 3: trace) from DB and writes OUT/summary.json: decode
        tok/s against the bandwidth bound, module shares, the two timers side by side, power and energy per token;
        and each managed server's serving run side by side
"""

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

APP_SIZE = (120, 40)


async def shoot_live(out: Path, db: Path, model: str, dtype: str, requests: int) -> None:
    from tuibench.core.plan import PlanRequest
    from tuibench.runner.plans import build_plan
    from tuibench.ui.app import TuibenchApp

    plan = build_plan(PlanRequest(models=(model,), dtype=dtype, datasets=("short2short",), num_requests=requests,
                                  label="gpu check: the app on a real run"))
    app = TuibenchApp(db_path=db)
    async with app.run_test(size=APP_SIZE) as pilot:
        app.start_plan(plan)
        for _ in range(6000):  # 10 minutes at most
            await pilot.pause(0.1)
            if app.plan_state.ended:
                break
        await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        app.save_screenshot(str(out / "live.svg"))
        if app.state.status != "finished":
            sys.exit(f"the app's run ended {app.state.status}: {app.state.error}")
    print(f"{out / 'live.svg'}: the Live screen of run {app.state.run_id}, {len(app.state.telemetry)} telemetry samples")


def _decode(stored) -> tuple[float, float]:
    """Tokens per second in the decode steps of the offline batches (prefill left out), and the mean context."""
    batches = stored.batches
    tokens = sum(b.size * b.decode_steps for b in batches)
    seconds = sum(b.decode_ms for b in batches) / 1000.0
    done = [r for r in stored.requests if r.ok]
    context = statistics.fmean(r.input_tokens + r.output_tokens / 2 for r in done)
    return tokens / seconds, context


def summary(out: Path, db: Path) -> dict:
    from tuibench.analysis.theory import ModelShape, Workload, breakdown
    from tuibench.core.store import ResultsStore
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    with ResultsStore.open(db, create=False) as store:
        offline = store.get_run(1)
        profiles = store.module_profiles(2)
        traced = store.module_profiles(3)
        telemetry = list(store.telemetry(1))
    spec, metrics = offline.run.spec, offline.run.metrics
    config = json.loads((ensure_converted(resolve_model(spec.model, spec.random_weights), print) / "config.json")
                        .read_text())
    shape = ModelShape.from_config(config)
    decode_tok_s, context = _decode(offline)
    batch = spec.offline.batch_size
    dtype = profiles[0].dtype
    roofline = profiles[0].roofline
    step = breakdown(shape, Workload.decode(batch, context, dtype)).whole_model
    # The bandwidth bound: a decode step cannot be faster than moving its bytes (the weights, the KV cache) once.
    bound_tok_s = batch * roofline.bandwidth_bytes_s / step.bytes_moved if roofline else None
    power = [v for s in telemetry if s.source.startswith("gpu") and (v := s.values.get("power_w")) is not None]
    shares = {}
    for profile in profiles:
        per_module: dict[str, float] = {}
        for node in profile.root.walk():
            if node.is_leaf:
                per_module[node.name] = per_module.get(node.name, 0.0) + node.time_ms
        top = sorted(per_module.items(), key=lambda item: -item[1])[:8]
        shares[f"{profile.phase} {profile.input_len}"] = {
            "step_ms": round(profile.step_ms, 3), "coverage": round(profile.coverage, 3),
            "shares_pct": {name: round(100.0 * ms / profile.step_ms, 1) for name, ms in top}}
    timers = {f"{p.phase} {p.input_len}": {} for p in profiles}
    for profile in (*profiles, *traced):
        books = profile.books
        timers[f"{profile.phase} {profile.input_len}"][profile.timer] = {
            "step_ms": round(profile.step_ms, 3), "on_off": profile.timer_on_off,
            "wall_ms": round(books.wall_ms, 3) if books else None,
            "outside_forward_ms": round(books.outside_ms, 3) if books else None,
            "leaves_share": round(books.leaves_share, 3) if books else None}
    figures = {
        "model": spec.model_label, "dtype": dtype, "device": roofline.device if roofline else None,
        "environment": {k: offline.run.environment.get(k) for k in ("gpus", "versions", "cpu", "cpus")},
        "offline": {"requests": metrics.completed, "output_tok_s": metrics.output_throughput_tok_s,
                    "decode_tok_s": round(decode_tok_s, 1), "batch": batch, "mean_context_tokens": round(context, 1),
                    "decode_bandwidth_bound_tok_s": round(bound_tok_s, 1) if bound_tok_s else None,
                    "decode_pct_of_bound": round(100.0 * decode_tok_s / bound_tok_s, 1) if bound_tok_s else None,
                    "mean_power_w": round(statistics.fmean(power), 1) if power else None,
                    "energy_per_output_token_j": metrics.energy_per_output_token_j,
                    "warnings": [w.message for w in offline.run.warnings]},
        "profile": shares,
        "timers": timers,  # per phase and length: CUDA events against the trace, with what each cost
    }
    figures["serving"] = serving(db)
    (out / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def serving(db: Path) -> dict:
    """Each serving run's library and figures, cold start included: the managed servers side by side."""
    from tuibench.core.store import ResultsStore

    with ResultsStore.open(db, create=False) as store:
        rows = [row for row in store.list_runs() if row.scenario == "serving"]
    found = {}
    for row in sorted(rows, key=lambda row: row.id):
        metrics = row.metrics
        found[row.library] = {"status": row.status, "error": row.error} if metrics is None else {
            "status": row.status, "output_tok_s": metrics.output_throughput_tok_s,
            "ttft_p50_ms": metrics.ttft_ms.p50 if metrics.ttft_ms else None,
            "ttft_p99_ms": metrics.ttft_ms.p99 if metrics.ttft_ms else None,
            "tpot_p50_ms": metrics.tpot_ms.p50 if metrics.tpot_ms else None,
            "cold_start_s": round(metrics.cold_start.total_s, 1) if metrics.cold_start else None}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["app", "summary"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--requests", type=int, default=16)
    args = parser.parse_args()
    if args.what == "app":
        asyncio.run(shoot_live(args.out, args.db, args.model, args.dtype, args.requests))
    else:
        print(json.dumps(summary(args.out, args.db), indent=2))


if __name__ == "__main__":
    main()

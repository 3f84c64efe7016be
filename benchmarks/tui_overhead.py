"""What watching a run in the app costs: throughput against the same run headless, the app's CPU use
idle and while streaming, and the time to its first frame. The app runs in a real terminal (tmux).

    .venv/bin/python benchmarks/tui_overhead.py [--pairs 3] [--requests 16] [--input-len 64] [--output-len 64]

Targets: throughput app / headless ≥ 0.97; app CPU ≤ 10 % of a core idle and while streaming; first
frame ≤ 0.7 s. Headless and app runs alternate, so drift on a noisy host falls on both.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

import psutil

if typing.TYPE_CHECKING:
    from tuibench.core.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def wait_for(session: str, pattern: str, timeout_s: float, poll_s: float = 0.02) -> float:
    """Seconds until `pattern` is on the screen."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if re.search(pattern, tmux("capture-pane", "-p", "-t", session)):
            return time.perf_counter() - start
        time.sleep(poll_s)
    raise RuntimeError(f"{pattern!r} did not appear within {timeout_s} s")


def cpu_pct(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    return 100.0 * ((after.user - before.user) + (after.system - before.system)) / seconds


def throughput(db: Path) -> tuple[float, "RunSpec"]:
    """The stored run's output tokens/s, and the spec it ran."""
    import msgspec

    from tuibench.core.spec import RunSpec

    out = subprocess.run([sys.executable, "-m", "tuibench", "runs", "--db", str(db), "export", "1", "--format", "json"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    run = json.loads(out)["run"]
    return run["metrics"]["output_throughput_tok_s"], msgspec.convert(run["spec"], RunSpec)


def refusal(headless_spec: "RunSpec", app_spec: "RunSpec") -> str | None:
    """None when the app ran what the headless run did; else the fields that differ (an app setting it no longer
    read once made the app run short2short against random 64/64, and this printed 0.69 for 0.96)."""
    from tuibench.core.spec import spec_differences

    differing = spec_differences(headless_spec, app_spec)
    return None if not differing else "the sides ran different specs, no ratio: headless ≠ app in " + \
        "; ".join(differing)


def headless(args, home: Path) -> tuple[float, "RunSpec"]:
    db = home / "headless.db"
    db.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "tuibench", "run", "--dataset", "random", "--input-len", str(args.input_len),
                    "--output-len", str(args.output_len), "--num-requests", str(args.requests), "--batch-size",
                    str(args.batch), "--db", str(db)], check=True, capture_output=True, cwd=REPO, env=_env(home))
    return throughput(db)


def _env(home: Path) -> dict[str, str]:
    return os.environ | {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                         "TERM": "xterm-256color"}


def start_app(home: Path, db: Path, session: str) -> psutil.Process:
    command = " ".join([sys.executable, "-m", "tuibench", "app", "--db", str(db)])
    env_prefix = " ".join(f"{k}={v}" for k, v in _env(home).items() if k.startswith(("XDG_", "TERM")))
    new_session = ("new-session", "-d", "-s", session, "-x", "120", "-y", "36", f"env {env_prefix} {command}")
    try:
        tmux(*new_session)
    except subprocess.CalledProcessError:  # the last pair's tmux server may still be exiting: once more
        time.sleep(1.0)
        tmux(*new_session)
    return psutil.Process(int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").strip()))


def in_app(args, home: Path, session: str,
           measure_cpu: bool) -> tuple[tuple[float, "RunSpec"], float, dict[str, float]]:
    """One run started from the app: ((its throughput, its spec), time to first frame, app CPU % idle/streaming)."""
    db = home / "app.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    app = start_app(home, db, session)
    try:
        wait_for(session, r"r Run", 30)  # the Setup screen's footer: the first frame is up
        first_frame_s = time.perf_counter() - start  # from launching the command, as a user waits
        cpu = {}
        if measure_cpu:
            cpu["idle"] = cpu_pct(app, 5.0)
        tmux("send-keys", "-t", session, "r")
        wait_for(session, r"measuring", 120, poll_s=0.25)
        if measure_cpu:
            cpu["streaming"] = cpu_pct(app, 5.0)
        wait_for(session, r"finished", 600, poll_s=0.5)
        return throughput(db), first_frame_s, cpu
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        config = home / "config" / "tuibench"
        config.mkdir(parents=True)
        setup = {"datasets": ["random"], "input_len": args.input_len, "output_len": args.output_len,
                 "num_requests": args.requests, "batch_size": args.batch}
        (config / "app.json").write_text(json.dumps({"setup": setup}))
        ratios, frames, cpus = [], [], []
        for pair in range(args.pairs):
            session = f"tuibench-overhead-{os.getpid()}-{pair}"
            if pair % 2 == 0:
                base, base_spec = headless(args, home)
                (app_tok_s, app_spec), frame_s, cpu = in_app(args, home, session, measure_cpu=True)
            else:
                (app_tok_s, app_spec), frame_s, cpu = in_app(args, home, session, measure_cpu=True)
                base, base_spec = headless(args, home)
            if (refused := refusal(base_spec, app_spec)) is not None:
                sys.exit(refused)
            ratios.append(app_tok_s / base)
            frames.append(frame_s)
            cpus.append(cpu)
            print(f"pair {pair + 1}: headless {base:.1f} tok/s, in the app {app_tok_s:.1f} tok/s "
                  f"(ratio {app_tok_s / base:.3f}); first frame {frame_s:.2f} s; app CPU idle "
                  f"{cpu['idle']:.1f} %, streaming {cpu['streaming']:.1f} % of a core")

    print(f"\n{args.requests} random requests {args.input_len}/{args.output_len}, batch {args.batch}, transformers, "
          f"1 engine thread")
    print(f"throughput app / headless: median {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}–{max(ratios):.3f})   target ≥ 0.97")
    print(f"app CPU, % of one core: idle median {statistics.median(c['idle'] for c in cpus):.1f}, "
          f"streaming median {statistics.median(c['streaming'] for c in cpus):.1f}   target ≤ 10")
    print(f"time to first frame: median {statistics.median(frames):.2f} s (max {max(frames):.2f})   target ≤ 0.7")


if __name__ == "__main__":
    main()

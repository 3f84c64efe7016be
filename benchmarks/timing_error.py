"""tuibench's timing error against a schedule known in advance, at rising concurrency.

`tuibench mock-server` (its own process) streams every token on absolute deadlines: token k of a request is due
k × ITL after its first. `tuibench run --endpoint` (the real path: CLI, child, client, store) drives it at the
Poisson rate that keeps N streams in flight on average (N over a request's duration; 3N requests, at least 30),
for each N; from each exported request, token k's measured arrival after the first minus k × ITL is the timing
error of that token: the client's and the server's lateness together, on one machine (so an upper bound on the
client's own). Prints, per level, the streams actually in flight (their mean), the p50 / p99 / max of |error|
over every token, the output rate, the p99 of each send's lateness against its schedule, and the highest level
with p99 |error| ≤ 1 ms (the target). It stops rising once p99 passes 10 ms.

    python benchmarks/timing_error.py [--levels 1,10,50,100,250,500,1000,2000] [--itl-ms 10] [--tokens 32]

Both ends share this machine's cores: past some load the mock server's own event loop is late, and that shows
here as error too. (Streams started at once would emit their tokens at the same instants, and both ends would
serialise them: a spread of a few ms that is the burst's, not the clock's; arrivals at a rate spread them.)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import mock_launch  # benchmarks/mock_launch.py, beside this script

TARGET_P99_MS = 1.0
STOP_P99_MS = 10.0  # past this, higher levels only say the same louder
TTFT_MS = 20.0  # the mock's


def token_errors_ms(request: dict, itl_ms: float) -> list[float]:
    """|arrival of token k after the first - k × ITL| for every token after the first, of one exported request
    (one token a chunk: the mock's default)."""
    arrived_ms, errors = 0.0, []
    for k, gap in enumerate(request["itl_ms"], start=1):
        arrived_ms += gap
        errors.append(abs(arrived_ms - k * itl_ms))
    return errors


def start_mock(itl_ms: float, env: dict) -> tuple[subprocess.Popen, str]:
    return mock_launch.start_mock("--ttft-ms", f"{TTFT_MS:g}", "--itl-ms", f"{itl_ms:g}", env=env)


def measure(url: str, streams: int, tokens: int, request_s: float, env: dict, out: Path, *extra: str) -> list[dict]:
    rate = streams / request_s  # Little's law: `streams` in flight on average
    result = subprocess.run([sys.executable, "-m", "tuibench", "run", "--scenario", "serving", "--endpoint", url,
                             "--served-model-name", "mock", "--dataset", "random", "--input-len", "8",
                             "--output-len", str(tokens), "--num-requests", str(max(3 * streams, 30)),
                             "--request-rate", f"{rate:.3f}", "--json", str(out), *extra],
                            env=env, capture_output=True, text=True, timeout=900)
    if result.returncode not in (0, 1) or not out.exists():  # 1: some requests failed, still measured
        raise SystemExit(f"tuibench run failed at {streams} streams: {result.stderr.strip()[-400:]}")
    return json.loads(out.read_text())["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,10,50,100,250,500,1000,2000")
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--telemetry-hz", default="4", help="the run's sampling rate (0: none), as `tuibench run`")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    from tuibench.core.metrics import describe

    scratch = Path(tempfile.mkdtemp(prefix="tuibench-timing-"))
    env = {**os.environ, "XDG_DATA_HOME": str(scratch / "data")}
    server, url = start_mock(args.itl_ms, env)
    rows, held = [], None
    try:
        request_s = (TTFT_MS + (args.tokens - 1) * args.itl_ms) / 1000
        for streams in levels:
            requests = measure(url, streams, args.tokens, request_s, env, scratch / f"run-{streams}.json",
                               "--telemetry-hz", args.telemetry_hz)
            done = [r for r in requests if r["error"] is None]
            if any(r["output_tokens"] != args.tokens for r in done):
                raise SystemExit(f"{streams} streams: outputs not held to {args.tokens} tokens, no figure")
            errors = describe(e for r in done for e in token_errors_ms(r, args.itl_ms))  # the runs' percentiles
            span_s = max(r["start_s"] + r["e2el_ms"] / 1000 for r in done) - min(r["start_s"] for r in done)
            in_flight = sum(r["e2el_ms"] for r in done) / 1000 / span_s
            lag = describe((r["start_s"] - r["scheduled_s"]) * 1000 for r in requests)  # each send's lateness
            rows.append((streams, in_flight, len(done), len(requests) - len(done), errors.p50, errors.p99,
                         errors.max, len(done) * args.tokens / span_s, lag.p99))
            if errors.p99 <= TARGET_P99_MS and len(done) == len(requests):
                held = streams
            if errors.p99 > STOP_P99_MS:
                break
    finally:
        server.terminate()
        server.wait(10)
    print(f"mock server: one token every {args.itl_ms:g} ms, {args.tokens} tokens a request; |token arrival after "
          "the first - k × ITL|, every token")
    print(f"{'streams':>8} {'in flight':>9} {'requests':>8} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'tok/s':>9} {'send lag p99 ms':>16}")
    for streams, in_flight, ok, failed, p50, p99, worst, rate, lag_p99 in rows:
        print(f"{streams:>8} {in_flight:>9.1f} {ok:>8} {failed:>6} {p50:>8.3f} {p99:>8.3f} {worst:>8.2f} "
              f"{rate:>9,.0f} {lag_p99:>16.3f}")
    print(f"highest level with p99 error <= {TARGET_P99_MS:g} ms: {held if held is not None else 'none'} streams")


if __name__ == "__main__":
    main()

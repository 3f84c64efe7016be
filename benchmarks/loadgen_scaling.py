"""Does splitting one arrival schedule over client processes (--client-workers) raise the rate sent on time?

The instant streaming server of loadgen_capacity.py (its own process) is driven at rising request rates by 1 and
then 2 worker processes (tuibench.loadgen.workers, as `--client-workers` runs them). For each rate: p99 schedule
lag over all requests and the worst worker's p99. Prints the highest rate held with p99 lag < 1 ms for each
worker count, and their ratio.

    python benchmarks/loadgen_scaling.py [--seconds 3] [--chunks 16] [--workers 1,2]

On the 2-core CI machine the server, the workers and this process share the two cores: a second worker can only
help as far as a core is idle, so the ratio there is bounded by the server's own CPU, not the client's.
"""

import argparse
import multiprocessing as mp
import time

from loadgen_capacity import serve


def measure(url: str, rate: float, seconds: float, chunks: int, workers: int) -> tuple[float, float, int]:
    """(p99 lag ms over all requests, the worst worker's p99 lag ms, failed requests) at `rate`."""
    from tuibench.core.metrics import describe, lag_by_worker, schedule_lag_ms
    from tuibench.loadgen.arrivals import arrival_offsets_s
    from tuibench.loadgen.client import Endpoint, Prompted
    from tuibench.loadgen.workers import drive_split

    count = max(100, int(rate * seconds))
    prompts = [Prompted(i, "hi", 4, chunks) for i in range(count)]
    records = []
    drive_split(Endpoint(base_url=url, model="m", length_policy="none"), prompts,
                arrival_offsets_s(count, rate, 1.0, seed=1), workers, 60.0, records.append, lambda t: t)
    lag = describe(lag for r in records if (lag := schedule_lag_ms(r)) is not None)
    worst = max(stat.p99 for stat in lag_by_worker(records).values())
    return lag.p99, worst, sum(not r.ok for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate's run")
    parser.add_argument("--chunks", type=int, default=16, help="streamed chunks per response")
    parser.add_argument("--rates", default="100,200,400,800,1200,1600")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    args = parser.parse_args()

    ports = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=serve, args=(ports, args.chunks), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    print(f"instant server: {args.chunks} chunks per response; {args.seconds:g} s per rate; one seeded Poisson "
          "schedule split over the workers")
    held: dict[int, float] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        print(f"\n{workers} worker process(es):")
        print(f"{'rate (req/s)':>12} {'failed':>7} {'p99 lag (ms)':>13} {'worst worker p99 (ms)':>22}")
        for rate in (float(r) for r in args.rates.split(",")):
            started = time.perf_counter()
            p99, worst, failed = measure(url, rate, args.seconds, args.chunks, workers)
            print(f"{rate:>12g} {failed:>7} {p99:>13.3f} {worst:>22.3f}   ({time.perf_counter() - started:.1f} s)",
                  flush=True)
            if p99 < 1.0 and not failed:
                held[workers] = max(held.get(workers, 0.0), rate)
    server.terminate()
    print()
    for workers, rate in held.items():
        print(f"{workers} worker(s): sustains {rate:g} req/s with p99 schedule lag < 1 ms")
    if len(held) == 2:
        (one, first), (two, second) = sorted(held.items())
        print(f"ratio {two} / {one} worker(s): {second / first:.2f}")


if __name__ == "__main__":
    main()

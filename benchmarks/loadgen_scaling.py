"""Does splitting one arrival schedule over client processes (--client-workers) raise the rate sent on time?

The instant streaming server of loadgen_capacity.py (its own process) is driven at rising request rates by 1 and
then 2 workers: local processes (tuibench.loadgen.workers, as `--client-workers` runs them), then Ray actors on a
local Ray cluster of one node on 127.0.0.1 that this script starts and stops (as `--ray-address` runs them). For
each rate: p99 schedule lag over all requests and the worst worker's p99. Prints the highest rate held with p99
lag < 1 ms for each worker count, and their ratio.

    python benchmarks/loadgen_scaling.py [--seconds 3] [--chunks 16] [--workers 1,2] [--pools local,ray]

With Ray, it first prints what one client actor costs, to size a cluster by: the time to create it and read its
clock, its memory (RSS, and USS: what it alone holds), its CPU while idle, and its CPU split into a fixed part and
a part per request, read off two rates, beside a local worker process's.

On the 2-core CI machine the server, the workers and this process share the two cores: a second worker can only
help as far as a core is idle, so the ratio there is bounded by the server's own CPU, not the client's.
"""

import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time

from loadgen_capacity import serve


def worker_processes(pool: str) -> list:
    """The running client workers: Ray's actor processes (named after the actor class), or this script's children
    that run tuibench.loadgen.workers."""
    import psutil

    if pool == "ray":
        return [p for p in psutil.process_iter(["name", "cmdline"]) if "ClientAgent" in (p.info["name"] or "")
                or any("ClientAgent" in part for part in p.info["cmdline"] or [])]
    return [p for p in psutil.Process().children(recursive=True)
            if any("tuibench.loadgen.workers" in part for part in p.cmdline())]


def cpu_s(process) -> float:
    """The CPU seconds a process has spent; 0 once it is gone (what it spent is no longer readable)."""
    import psutil

    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def actor_cost(url: str, chunks: int, rate: float, seconds: float) -> None:
    """One Ray client actor's fixed cost, and its CPU per request beside a local worker process's."""
    from tuibench.cluster.clients import RayPool

    started = time.perf_counter()
    pool = RayPool(1)
    create_s = time.perf_counter() - started
    actors = worker_processes("ray")
    memory = [p.memory_full_info() for p in actors]
    idle_before = sum(map(cpu_s, actors))
    time.sleep(5.0)
    idle_cpu_pct = (sum(map(cpu_s, actors)) - idle_before) / 5.0 * 100
    pool.close()
    print(f"one Ray client actor: {create_s:.2f} s to create it and read its clock; RSS "
          f"{sum(m.rss for m in memory) / 2**20:.0f} MiB, USS {sum(m.uss for m in memory) / 2**20:.0f} MiB; "
          f"{idle_cpu_pct:.2f} % of a core while idle ({len(actors)} process)")
    for pool_name in ("local", "ray"):
        # The whole life of one worker at two rates: CPU = fixed + per request x requests, both read off the two.
        (low, low_s), (high, high_s) = (worker_cpu(url, chunks, pool_name, r, seconds) for r in (rate, 4 * rate))
        per_request_s = (high_s - low_s) / (high - low)
        fixed_s = low_s - per_request_s * low
        print(f"  {pool_name:<6} worker: {per_request_s * 1000:.3f} ms CPU per request, {fixed_s:.2f} s fixed (start, "
              f"imports, warm-up, connections; from {low} and {high} requests at {rate:g} and {4 * rate:g} req/s)")


def worker_cpu(url: str, chunks: int, pool_name: str, rate: float, seconds: float) -> tuple[int, float]:
    """(requests, CPU seconds) of one worker's whole life, sending `rate` for `seconds`: read from outside, while
    it lives (a Ray actor's process, a local worker's), the last reading of each process kept."""
    import threading

    spent: dict[int, float] = {}

    def watch(stop: threading.Event) -> None:
        while not stop.wait(0.05):
            for process in worker_processes(pool_name):
                spent[process.pid] = max(spent.get(process.pid, 0.0), cpu_s(process))

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,), daemon=True)
    watcher.start()
    measure(url, rate, seconds, chunks, 1, pool_name)
    stop.set()
    watcher.join()
    return max(100, int(rate * seconds)), sum(spent.values())


def measure(url: str, rate: float, seconds: float, chunks: int, workers: int, pool: str) -> tuple[float, float, int]:
    """(p99 lag ms over all requests, the worst worker's p99 lag ms, failed requests) at `rate`."""
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.metrics import describe, schedule_lag_ms
    from tuibench.loadgen.arrivals import arrival_offsets_s
    from tuibench.loadgen.client import Endpoint, Prompted
    from tuibench.loadgen.workers import drive_split

    count = max(100, int(rate * seconds))
    prompts = [Prompted(i, "hi", 4, chunks) for i in range(count)]
    records = []
    ray_pool = None
    if pool == "ray":
        from tuibench.cluster.clients import RayPool

        ray_pool = RayPool(workers)
    drive_split(Endpoint(base_url=url, model="m", length_policy="none"), prompts,
                arrival_offsets_s(count, rate, 1.0, seed=1), workers, 60.0, records.append, lambda t: t, pool=ray_pool)
    lag = describe(lag for r in records if (lag := schedule_lag_ms(r)) is not None)
    worst = max(w.lag_ms.p99 for w in compute_metrics(records).workers)
    return lag.p99, worst, sum(not r.ok for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate's run")
    parser.add_argument("--chunks", type=int, default=16, help="streamed chunks per response")
    parser.add_argument("--rates", default="100,200,400,800,1200,1600")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--pools", default="local,ray", help="local processes, Ray actors, or both")
    args = parser.parse_args()

    ports = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=serve, args=(ports, args.chunks), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    print(f"instant server: {args.chunks} chunks per response; {args.seconds:g} s per rate; one seeded Poisson "
          "schedule split over the workers")
    held: dict[tuple[str, int], float] = {}
    pools = args.pools.split(",")
    try:
        if "ray" in pools:
            start_ray()
            actor_cost(url, args.chunks, rate=400.0, seconds=args.seconds)
        for pool in pools:
            for workers in (int(w) for w in args.workers.split(",")):
                print(f"\n{workers} worker(s), {'Ray actors' if pool == 'ray' else 'local processes'}:")
                print(f"{'rate (req/s)':>12} {'failed':>7} {'p99 lag (ms)':>13} {'worst worker p99 (ms)':>22}")
                held[pool, workers] = 0.0
                for rate in (float(r) for r in args.rates.split(",")):
                    started = time.perf_counter()
                    p99, worst, failed = measure(url, rate, args.seconds, args.chunks, workers, pool)
                    print(f"{rate:>12g} {failed:>7} {p99:>13.3f} {worst:>22.3f}   "
                          f"({time.perf_counter() - started:.1f} s)", flush=True)
                    if p99 < 1.0 and not failed:
                        held[pool, workers] = max(held[pool, workers], rate)
    finally:
        server.terminate()
        if "ray" in pools:
            stop_ray()
    print()
    for (pool, workers), rate in held.items():
        print(f"{pool}, {workers} worker(s): " + (f"sustains {rate:g} req/s with p99 schedule lag < 1 ms" if rate else
                                                  "no rate probed held p99 schedule lag under 1 ms"))
    for pool in pools:
        counts = sorted(w for p, w in held if p == pool)
        if len(counts) == 2 and held[pool, counts[0]]:
            print(f"{pool}: ratio {counts[1]} / {counts[0]} worker(s): "
                  f"{held[pool, counts[1]] / held[pool, counts[0]]:.2f}")


_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def start_ray() -> None:
    """A local Ray cluster on loopback, and this process its driver."""
    os.environ.update(_RAY_ENV)  # before Ray is imported: it reads them once
    import ray

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1",
                    "--port", str(port), "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True)
    ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR", log_to_driver=False)


def stop_ray() -> None:
    import ray

    ray.shutdown()
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True)


if __name__ == "__main__":
    main()

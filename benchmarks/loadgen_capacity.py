"""How fast can tuibench's load generator send requests on time?

Against a minimal streaming server on 127.0.0.1 that answers at once (its own process, part of this
benchmark), the client is driven at rising request rates. For each: p99 schedule lag (actual minus
planned send time) and client CPU time per request. Prints the highest rate sustained with
p99 lag < 1 ms. vLLM's own `bench serve` client (its dispatcher and request function, driven on the same schedule) is
measured the same way where vLLM is installed, and the ratio printed.

    python benchmarks/loadgen_capacity.py [--seconds 2] [--chunks 16] [--rates 200,400,800,1600,3000] [--repeats 3]
"""

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import statistics
import time

CHUNK = "data: " + json.dumps({"choices": [{"index": 0, "text": "x"}]}) + "\n\n"


def serve(port_queue, chunks: int) -> None:
    from aiohttp import web

    body = (CHUNK * chunks + "data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": chunks}})
            + "\n\ndata: [DONE]\n\n").encode()

    async def completions(request):
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        return response

    async def main():
        app = web.Application()
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def measure(url: str, rate: float, seconds: float, chunks: int) -> tuple[float, float, int, int]:
    from tuibench.core.metrics import describe
    from tuibench.loadgen.client import Endpoint, Prompted
    from tuibench.loadgen.driver import LoadPlan, drive, freeze_heap

    count = max(100, int(rate * seconds))
    prompts = [Prompted(i, "hi", 4, chunks) for i in range(count)]
    records = []
    freeze_heap()  # as a run does before its clock starts; the same for vLLM's client below
    cpu_before = time.process_time()
    asyncio.run(drive(Endpoint(base_url=url, model="m", length_policy="none"), prompts,
                      LoadPlan(rate_rps=rate, seed=1), records.append, lambda t: t,
                      warmups=[Prompted(count + i, "hi", 4, chunks) for i in range(10)]))
    cpu_s = time.process_time() - cpu_before
    lag = describe((r.start_s - r.scheduled_s) * 1000.0 for r in records)
    failed = sum(not r.ok for r in records)
    return lag.p99, cpu_s / count * 1000.0, count, failed


def measure_vllm(url: str, rate: float, seconds: float, chunks: int) -> tuple[float, float, int, int]:
    """The same schedule through vLLM's bench-serve dispatcher (`get_request`, self-timed) and request function.

    Its request function stamps `start_time` with perf_counter as it begins, as ours stamps `start_s`, so the
    lag is measured the same way: actual start minus planned time.
    """
    import aiohttp
    from vllm.benchmarks.lib.endpoint_request_func import RequestFuncInput, async_request_openai_completions
    from vllm.benchmarks.serve import get_request

    from tuibench.core.metrics import describe
    from tuibench.loadgen.arrivals import arrival_offsets_s
    from tuibench.loadgen.driver import freeze_heap

    count = max(100, int(rate * seconds))
    offsets = arrival_offsets_s(count, rate, 1.0, seed=1)  # the schedule our driver uses with seed 1

    class Timed:  # self-timed mode reads only .timestamp, the planned offset in seconds
        def __init__(self, timestamp: float):
            self.timestamp = timestamp

    async def go():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=600)) as session:
            request = RequestFuncInput(prompt="hi", api_url=url + "/v1/completions", prompt_len=4, output_len=chunks,
                                       model="m")
            for _ in range(10):  # warm-up, as ours
                await async_request_openai_completions(request, session)
            tasks = []
            origin = time.perf_counter()  # get_request takes its start time as it begins: microseconds from here
            async for _, _ in get_request([Timed(o) for o in offsets], float("inf"), self_timed=True):
                tasks.append(asyncio.create_task(async_request_openai_completions(request, session)))
            return origin, await asyncio.gather(*tasks)

    freeze_heap()  # vLLM's import is a heap whose full collection would stall this client 350 ms mid-run
    cpu_before = time.process_time()
    origin, outputs = asyncio.run(go())
    cpu_s = time.process_time() - cpu_before
    lag = describe((out.start_time - (origin + offset)) * 1000.0 for out, offset in zip(outputs, offsets))
    return lag.p99, cpu_s / count * 1000.0, count, sum(not out.success for out in outputs)


def ladder(clients: dict, url: str, args) -> dict[str, dict[float, tuple[float, float, int]]]:
    """name -> rate -> (p99 lag ms, CPU ms per request, failed requests): each rate sent --repeats times by each
    client in turn (A B A B: a machine that drifts drifts for both), the medians kept; printed as it goes."""
    rows: dict[str, dict[float, tuple[float, float, int]]] = {name: {} for name in clients}
    print(f"{'client':<9}{'rate (req/s)':>13} {'requests':>9} {'failed':>7} {'p99 lag (ms)':>13} "
          f"{'CPU/request (ms)':>17}")
    for rate in (float(r) for r in args.rates.split(",")):
        runs: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in clients}
        for _ in range(args.repeats):
            for name, measure_one in clients.items():
                runs[name].append(measure_one(url, rate, args.seconds, args.chunks))
        for name, found in runs.items():
            p99 = statistics.median(r[0] for r in found)
            cpu_ms = statistics.median(r[1] for r in found)
            failed = sum(r[3] for r in found)
            print(f"{name:<9}{rate:>13g} {found[0][2]:>9} {failed:>7} {p99:>13.3f} {cpu_ms:>17.3f}", flush=True)
            rows[name][rate] = (p99, cpu_ms, failed)
    return rows


def sustained(rows: dict[float, tuple[float, float, int]]) -> str:
    """The highest rate held with p99 lag < 1 ms and no failure, in words."""
    held = [rate for rate, (p99, _, failed) in rows.items() if p99 < 1.0 and not failed]
    if not held:
        return "no rate held p99 schedule lag under 1 ms"
    return f"sustains {max(held):g} req/s with p99 schedule lag < 1 ms, {rows[max(held)][1]:.3f} ms CPU per request"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate's run")
    parser.add_argument("--chunks", type=int, default=16, help="streamed chunks per response")
    parser.add_argument("--rates", default="200,400,800,1600,3000")
    parser.add_argument("--repeats", type=int, default=3, help="turns of each client at each rate (medians)")
    args = parser.parse_args()

    ports = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=serve, args=(ports, args.chunks), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        # One core each, so the server's work does not land on the client's schedule.
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(server.pid, {cores[0]})
        os.sched_setaffinity(0, {cores[1]})

    print(f"instant server: {args.chunks} chunks per response; {args.seconds:g} s per rate and client, the median of "
          f"{args.repeats} turns; the same seeded Poisson schedule for both clients")
    clients = {"tuibench": measure}
    if importlib.util.find_spec("vllm") is not None:
        clients["vLLM"] = measure_vllm  # its bench-serve dispatcher (get_request) and request function
    rows = ladder(clients, url, args)
    server.terminate()

    print()
    print(f"tuibench: {sustained(rows['tuibench'])}")
    if "vLLM" not in rows:
        print("vLLM bench serve: vLLM is not installed here, so no comparison")
        return
    ours, theirs = rows["tuibench"], rows["vLLM"]
    print(f"vLLM bench serve: {sustained(theirs)}")
    print("ratio tuibench / vLLM at each rate:  " + "  ".join(
        f"{rate:g}: lag {ours[rate][0] / theirs[rate][0]:.2f}x, CPU {ours[rate][1] / theirs[rate][1]:.2f}x" for rate in ours))


if __name__ == "__main__":
    main()

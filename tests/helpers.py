"""What the tests share besides fixtures: the repository, a prompt, and running `tuibench` as a user does.

A module of its own, not conftest.py: tests/ui has a conftest.py too, and `from conftest import …` would
then find whichever of the two was imported first.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def first_conversion_file() -> Path:
    """Where what the first-use model conversion printed is kept, when this session made it (a fresh machine, as
    CI's): the model fixture (conftest.py) writes it, the test of that output reads it. One file for every xdist
    worker of a run."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    return Path(tempfile.gettempdir()) / f"tuibench-tests-{run}.conversion"


FRANCE_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def cli_env_for(folder: Path) -> dict:
    """Environment for a `tuibench` subprocess: its own data dir under `folder` (so the default DB is fresh),
    the user's model cache, unbuffered output and the terminal's own width."""
    env = {**os.environ, "XDG_DATA_HOME": str(folder / "data"), "PYTHONUNBUFFERED": "1"}
    env.pop("COLUMNS", None)
    return env


def tuibench(*args: str, env: dict, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuibench", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO, **kwargs)


def start_tuibench(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuibench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def wait_for_events(path: Path, kind: str, count: int = 1, timeout: float = 180) -> list[dict]:
    """Reads the JSONL event log until `count` events of `kind` are in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if sum(e["type"] == kind for e in events) >= count:
                return events
        time.sleep(0.05)
    raise AssertionError(f"no {count} {kind} event(s) in {path} after {timeout} s")


class MockServer:
    """`tuibench mock-server` on a free port of 127.0.0.1, up when constructed."""

    def __init__(self, *args: str):
        from tuibench.servers.managed import free_port

        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "tuibench", "mock-server", "--port", str(self.port),
                                         *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, "the mock server did not start"
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def serve_and_kill_a_client_worker(args: list[str], env: dict, out: Path, find_worker, sent_s: float,
                                   timeout_s: float) -> list[dict]:
    """A serving run of 20 requests at 10 req/s against a slow known-answer server (a request lasts about 2 s), one
    of whose client workers `find_worker(cli)` finds is killed after `sent_s`, when some requests were sent and some
    are still to come. Asserts the run ended partial with every request accounted for; returns its requests."""
    slow = MockServer("--ttft-ms", "20", "--itl-ms", "100")
    try:
        cli = start_tuibench(*args, "--endpoint", slow.url, "--output-len", "20", "--num-requests", "20",
                             "--request-rate", "10", "--json", str(out), env=env)
        worker = find_worker(cli)
        time.sleep(sent_s)
        worker.kill()
        _, stderr = cli.communicate(timeout=timeout_s)
    finally:
        slow.stop()
    assert cli.returncode == 1, stderr  # partial: what was measured is kept
    requests = json.loads(out.read_text())["requests"]
    assert sorted(r["index"] for r in requests) == list(range(20))
    return requests


# Ray on loopback only: it would otherwise bind every interface and name the node by the machine's outside address.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class RayCluster:
    """A real local Ray cluster of one node on 127.0.0.1 (`ray start --head`), stopped with `ray stop`, which must
    leave no Ray process behind."""

    def __init__(self, cpus: int = 2):
        from tuibench.servers.managed import free_port

        self.port = free_port()
        self.env = {**os.environ, **RAY_ENV}
        subprocess.run(self._ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                                 "--num-cpus", str(cpus), "--include-dashboard=false", "--disable-usage-stats"),
                       env=self.env, check=True, capture_output=True, timeout=120)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def _ray(*args: str) -> list[str]:
        return [sys.executable, "-m", "ray.scripts.scripts", *args]

    def stop(self) -> list[str]:
        """Stops the cluster; returns the Ray processes still there afterwards (none, if it went well)."""
        import psutil

        subprocess.run(self._ray("stop", "--force"), env=self.env, capture_output=True, timeout=120)
        left = []
        for process in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(process.info["cmdline"] or [])
            if process.info["name"] in ("raylet", "gcs_server") or "ray::" in line or "ray/_private" in line:
                left.append(f"{process.pid} {line[:120]}")
        return left

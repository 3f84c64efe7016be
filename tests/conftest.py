import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRANCE_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["PYTHONUNBUFFERED"] = "1"
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


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2, converted once into the user cache (about half a minute the first time)."""
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    return ensure_converted(resolve_model("smollm2-135m"), print)

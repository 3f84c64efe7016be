"""llama.cpp for real on the SmolLM2 GGUF: offline through llama-cpp-python, served through its server; and
`tuibench check` across the libraries installed here."""

import importlib.util
import json

import pytest

from helpers import tuibench

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed (make install builds it)"),
]
SMALL = ["--library", "llamacpp", "--dataset", "random", "--input-len", "24", "--output-len", "12"]


def test_llamacpp_offline_holds_lengths_and_times_every_token(cli_env, tmp_path, model_path):
    out = tmp_path / "run.json"
    result = tuibench("run", *SMALL, "--num-requests", "3", "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    for request in document["requests"]:
        assert request["output_tokens"] == request["target_output_tokens"] == 12
        assert request["counted_input_tokens"] == request["input_tokens"]  # what llama.cpp evaluated
        assert len(request["itl_ms"]) == 11 and 0 < request["ttft_ms"] < request["e2el_ms"]
    assert "llama-cpp-python" in document["run"]["environment"]["versions"]


def test_llamacpp_served_under_overlapping_load_holds_every_length(cli_env, tmp_path, model_path):
    # At 8 req/s requests overlap on its one slot; by default a new request would cut the running one short.
    out = tmp_path / "run.json"
    result = tuibench("run", "--scenario", "serving", *SMALL, "--num-requests", "6", "--request-rate", "8",
                      "--json", str(out), env=cli_env, timeout=300)
    assert result.returncode == 0, result.stderr
    requests = json.loads(out.read_text())["requests"]
    assert len(requests) == 6 and all(r["error"] is None for r in requests)
    assert [r["output_tokens"] for r in requests] == [12] * 6
    # Its server takes text only: the text is fitted to its own tokenizer (/extras/tokenize/count), exactly.
    assert "text fitted to the llama.cpp server's tokenizer" in result.stdout
    assert [r["counted_input_tokens"] for r in requests] == [r["input_tokens"] for r in requests]


def test_check_compares_the_libraries_token_by_token(cli_env, tmp_path, model_path):
    libraries = ["transformers", "llamacpp"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
    out = tmp_path / "check.json"
    result = tuibench("check", "--libraries", ",".join(libraries), "--tokens", "8", "--json", str(out), env=cli_env,
                      timeout=600)
    assert result.returncode == 0, result.stderr
    assert "greedy agreement" in result.stdout
    document = json.loads(out.read_text())
    assert sorted(r["library"] for r in document["results"]) == sorted(libraries)
    assert len(document["pairs"]) == len(libraries) * (len(libraries) - 1) // 2
    for library in document["results"]:
        assert library["error"] is None and len(library["ids"]) == 4
        assert all(len(ids) == 8 for ids in library["ids"])
        assert library["texts"][0].startswith("The capital of France is Paris")  # every engine answers it right

"""Each bad input gives one clear line on stderr and exit code 2, before any engine starts."""

import sqlite3
import subprocess
import sys

import pytest

from helpers import tuibench


def _one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_model(cli_env):
    _one_line_error(tuibench("run", "--model", "no-such-model", env=cli_env), "unknown model 'no-such-model'", "smollm2-135m")


def test_hf_id_not_in_local_cache_is_not_downloaded(cli_env, tmp_path):
    cli_env["HF_HOME"] = str(tmp_path / "hf")
    _one_line_error(tuibench("run", "--model", "org/absent", env=cli_env), "not in the local Hugging Face cache", "never downloads",
                    "`hf download org/absent`")  # the hub's CLI as installed: huggingface-cli is gone


def test_unknown_library(cli_env):
    _one_line_error(tuibench("run", "--library", "nope", env=cli_env), "unknown library 'nope'", "transformers")


@pytest.mark.parametrize("library, engine", [("sglang", "SGLang"), ("trtllm", "TensorRT-LLM")])
def test_a_gpu_only_library_on_a_machine_without_one_says_so(cli_env, library, engine):
    from tuibench.telemetry.devices import cuda_visible

    if cuda_visible():
        pytest.skip("this machine has a CUDA GPU")
    _one_line_error(tuibench("run", "--library", library, "--scenario", "serving", env=cli_env),
                    f"library '{library}' is not available here: {engine} runs on a CUDA GPU, and this machine has none")


def test_unknown_dataset(cli_env):
    _one_line_error(tuibench("run", "--dataset", "long2long", env=cli_env), "unknown dataset 'long2long'", "short2short")


def test_too_many_requests(cli_env):
    _one_line_error(tuibench("run", "--dataset", "short-16k", "--num-requests", "81", env=cli_env), "has 80 requests")


@pytest.mark.parametrize("content, fragment", [
    ('{"prompt": "hi", "output_tokens": 4}\n{"prompt": "broken\n', "prompts.jsonl:2: not valid JSON"),
    ('{"prompt": "hi", "output_tokens": 0}\n', '"output_tokens" must be a positive integer'),
    ('{"text": "hi", "output_tokens": 3}\n', 'needs a non-empty string "prompt"'),
])
def test_malformed_jsonl(cli_env, tmp_path, content, fragment):
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    _one_line_error(tuibench("run", "--dataset", str(path), env=cli_env), fragment)


def test_corrupt_database_is_refused_and_left_alone(cli_env, tmp_path):
    db = tmp_path / "results.db"
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    _one_line_error(tuibench("run", "--num-requests", "1", "--db", str(db), env=cli_env), "not a readable tuibench results database")
    _one_line_error(tuibench("runs", "--db", str(db), env=cli_env), "not a readable tuibench results database")
    assert db.read_bytes() == before


def test_newer_database_is_refused(cli_env, tmp_path):
    from tuibench.core.store import ResultsStore

    db = tmp_path / "results.db"
    ResultsStore.open(db).close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    _one_line_error(tuibench("runs", "--db", str(db), env=cli_env), "newer tuibench (schema 99")


@pytest.mark.parametrize("args, fragment", [
    (["--num-requests", "0"], "at least 1"),
    (["--num-requests", "ten"], "expected a whole number, got 'ten'"),
    (["--warmup-batches", "-1"], "at least 0"),
    (["--dtype", "int3"], "invalid choice: 'int3'"),
    (["--port", "70000", "--scenario", "serving"], "must be 1 to 65535, got 70000"),
    (["--device", "tpu9"], "not a device tuibench runs on"),
    (["--dataset", "conversations", "--num-requests", "4"], "conversations is for serving"),
])
def test_bad_argument_value(cli_env, args, fragment):
    _one_line_error(tuibench("run", *args, env=cli_env), args[0], fragment)


def test_runs_without_database(cli_env, tmp_path):
    _one_line_error(tuibench("runs", "--db", str(tmp_path / "none.db"), env=cli_env), "no results database")


def test_a_folder_as_the_database_is_one_line_and_db_goes_after_a_runs_command_too(cli_env, tmp_path):
    _one_line_error(tuibench("run", "--db", str(tmp_path), env=cli_env), "is a folder: give a file")
    _one_line_error(tuibench("runs", "show", "1", "--db", str(tmp_path / "none.db"), env=cli_env),
                    "no results database")  # the option was taken after `show`, not refused


def test_help_is_fast_and_lists_commands(cli_env):
    result = tuibench("--help", env=cli_env)
    assert result.returncode == 0 and "run" in result.stdout and "runs" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["profile", "--lengths", "32,0"], "at least 1"),
    (["profile", "--lengths", ","], "--lengths: give at least one value"),
    (["profile", "--library", "endpoint"], "does not support the profile scenario"),
    (["profile", "--attn", "flash"], "invalid choice: 'flash'"),
    (["analyze", "--device", "tpu-v5"], "not a known device"),
    (["analyze", "--device", "t4", "--dtype", "bfloat16"], "has no bfloat16 figure"),
    (["analyze", "--model", "no-such-model"], "unknown model 'no-such-model'"),
])
def test_bad_profile_and_analyze_input(cli_env, args, fragment):
    _one_line_error(tuibench(*args, env=cli_env), fragment)


def test_profile_lengths_past_the_models_context_fail_in_one_line(cli_env, tmp_path, model_path):
    result = tuibench("profile", "--lengths", "9000", "--db", str(tmp_path / "r.db"), env=cli_env)
    assert result.returncode == 2, result.stderr
    assert "need 9004 positions but smollm2-135m has 8192" in result.stderr
    assert "Traceback" not in result.stderr


def test_analyze_shows_theory_for_a_listed_gpu(cli_env, model_path):
    result = tuibench("analyze", "--device", "a100-80gb", "--batch", "8", "--seq", "1024", env=cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ridge point 153.0 FLOP/B" in out and "prefill: batch 8, input 1024" in out
    assert "decode: batch 8, context 1024" in out and "decode intensity (FLOP/B) against batch" in out
    assert "O(bsh²)" in out  # the paper's forms beside the exact ones


def test_app_replay_of_a_missing_or_foreign_file(cli_env, tmp_path):
    _one_line_error(tuibench("app", "--replay", str(tmp_path / "none.jsonl"), env=cli_env), "cannot read")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": 1}\n')
    _one_line_error(tuibench("app", "--replay", str(foreign), env=cli_env), "line 1: not a tuibench event")
    _one_line_error(tuibench("app", "--speed", "0", env=cli_env), "--speed must be positive")
    _one_line_error(tuibench("run", "--telemetry-hz", "500", env=cli_env), "--telemetry-hz: must be 0 to 100, got 500")


def test_no_command_without_a_terminal_prints_help(cli_env):
    result = tuibench(env=cli_env)
    assert result.returncode == 0 and "analyze" in result.stdout and "app" in result.stdout


def test_the_app_into_a_file_or_a_pipe_is_refused_in_one_line(cli_env, tmp_path):
    """It drew the TUI into the file and never returned."""
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        result = subprocess.run([sys.executable, "-m", "tuibench", "app"], stdout=stdout, stderr=subprocess.PIPE,
                                text=True, env=cli_env, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "standard output is a file or a pipe" in result.stderr
    assert out.read_text() == ""
    _one_line_error(tuibench("app", env=cli_env), "the app draws on a terminal")


def test_a_check_of_one_library_says_it_needs_two_not_that_the_others_are_missing(cli_env):
    """It said vLLM and llama.cpp were not installed, when both are: the list named one library."""
    result = tuibench("check", "--libraries", "transformers", env=cli_env)
    _one_line_error(result, "compares two libraries or more, and --libraries names 1")
    assert "not installed" not in result.stderr

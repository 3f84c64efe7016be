"""--model as a local folder and as an id in the local HF cache; user prompt files through the real tokenizer."""

import json

import pytest

from helpers import FRANCE_PROMPT, tuibench

pytestmark = pytest.mark.slow


def _requests_of(out_json):
    return json.loads(out_json.read_text())["requests"]


def test_local_folder_and_hf_cache_id(cli_env, tmp_path, model_path):
    # A real HF hub-cache layout: refs/main names a snapshot whose files link to the converted model.
    snapshot = tmp_path / "hf" / "hub" / "models--local--smol" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for file in model_path.iterdir():
        (snapshot / file.name).symlink_to(file)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    cli_env["HF_HOME"] = str(tmp_path / "hf")

    for model in (str(model_path), "local/smol"):
        out = tmp_path / f"{model.replace('/', '_')}.json"
        result = tuibench("run", "--model", model, "--dataset", "random", "--input-len", "4", "--output-len", "3",
                          "--num-requests", "2", "--warmup-batches", "0", "--json", str(out), env=cli_env)
        assert result.returncode == 0, result.stderr
        assert [r["output_tokens"] for r in _requests_of(out)] == [3, 3]


def test_jsonl_prompts_with_and_without_honor_eos(cli_env, tmp_path, model_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": FRANCE_PROMPT, "output_tokens": 30}) + "\n")
    for flags, expected in (([], 30), (["--honor-eos"], 8)):  # "The capital of France is Paris." + <|im_end|>
        out = tmp_path / "out.json"
        result = tuibench("run", "--dataset", str(prompts), "--warmup-batches", "0", "--json", str(out), *flags, env=cli_env)
        assert result.returncode == 0, result.stderr
        (request,) = _requests_of(out)
        assert request["output_tokens"] == expected
        assert request["target_output_tokens"] == 30


def test_sharegpt_output_target_is_the_reference_answer_length(cli_env, tmp_path, model_path):
    from transformers import AutoTokenizer

    answers = ["Paris is the capital of France.", "One, two, three, four, five, six, seven, eight."]
    conversations = [
        {"conversations": [{"from": "human", "value": f"question {i}"}, {"from": "gpt", "value": answer}]}
        for i, answer in enumerate(answers)
    ] + [{"conversations": [{"from": "human", "value": "no answer"}]}]  # skipped: one turn
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(conversations))
    out = tmp_path / "out.json"
    result = tuibench("run", "--dataset", str(path), "--warmup-batches", "0", "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    expected = [len(tokenizer.encode(a, add_special_tokens=False)) for a in answers]
    assert [r["output_tokens"] for r in _requests_of(out)] == expected
    assert [r["input_tokens"] for r in _requests_of(out)] == [len(tokenizer.encode(f"question {i}")) for i in range(2)]


def test_the_first_use_conversion_says_one_line_and_draws_no_progress_bar(model_path):
    """The embedded GGUF converted on a fresh machine (CI's: this session's model fixture did it): one line on
    stderr, and no carriage-return bar (the GGUF reader's tqdm drew one into every log and pipe)."""
    from helpers import first_conversion_file

    if not (said := first_conversion_file()).is_file():
        pytest.skip("the model was converted before this session: nothing to watch (a fresh machine, as CI, runs it)")
    stderr = said.read_text()
    assert (model_path / "config.json").is_file() and "\r" not in stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        f"converting smollm2-135m from its GGUF into {model_path} (once; about half a minute)"]

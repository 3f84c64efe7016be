"""`--endpoint` through the CLI against a real server on 127.0.0.1; the API key is used and never stored."""

import json

from helpers import tuibench
from loopback_server import LoopbackServer


def test_endpoint_run_sends_the_key_from_the_environment_and_never_stores_it(cli_env, tmp_path, model_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": "ok", "output_tokens": n}) + "\n" for n in (3, 5)))
    out, events = tmp_path / "run.json", tmp_path / "events.jsonl"
    cli_env["TUIBENCH_TEST_KEY"] = "sesame"
    with LoopbackServer() as server:
        args = ["run", "--scenario", "serving", "--endpoint", server.url, "--dataset", str(prompts), "--length-policy",
                "none", "--api-key-env", "TUIBENCH_TEST_KEY", "--warmup-requests", "0"]
        result = tuibench(*args, "--json", str(out), "--events", str(events), env=cli_env)
        assert result.returncode == 0, result.stderr
        document = json.loads(out.read_text())
        assert document["run"]["library"] == "endpoint"
        assert [r["output_tokens"] for r in document["requests"]] == [3, 5]
        assert document["run"]["spec"]["serving"]["api_key_env"] == "TUIBENCH_TEST_KEY"
        for text in (out.read_text(), events.read_text(), tuibench("runs", "export", "1", env=cli_env).stdout):
            assert "sesame" not in text

        cli_env["TUIBENCH_TEST_KEY"] = "wrong"
        wrong = tuibench(*args, env=cli_env)
        assert wrong.returncode == 1 and "HTTP 401: bad key" in wrong.stderr  # partial: every request refused
        del cli_env["TUIBENCH_TEST_KEY"]
        missing = tuibench(*args, env=cli_env)
        assert missing.returncode == 2 and "TUIBENCH_TEST_KEY: that environment variable is not set" in missing.stderr

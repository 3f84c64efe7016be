"""A user's endpoint is looked at before anything starts or is stored: a mistake is one line and exit 2, with no
run left behind; the /v1 form is taken and said; every command that takes --endpoint labels its runs `endpoint`."""

import http.server
import sqlite3
import threading

import pytest

from helpers import MockServer, tuibench

pytestmark = pytest.mark.slow
SERVING = ("--scenario", "serving", "--dataset", "random", "--input-len", "8", "--output-len", "4",
           "--num-requests", "2")


def _one_line_refusal(result, *fragments) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _stored_runs(cli_env) -> int:
    """Runs in the CLI's default store: none at all when it was never made."""
    from pathlib import Path

    db = Path(cli_env["XDG_DATA_HOME"]) / "tuibench" / "results.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.fixture(scope="module")
def plain_web_server():
    """`python -m http.server`'s handler on 127.0.0.1: it answers, but GET /v1/models is a 404 page."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def mock():
    server = MockServer("--ttft-ms", "1", "--itl-ms", "1")
    yield server
    server.stop()


@pytest.mark.parametrize("endpoint, fragments", [
    ("notaurl", ("--endpoint", "'notaurl' has no scheme: give http://notaurl")),
    ("127.0.0.1:8000", ("'127.0.0.1:8000' has no scheme: give http://127.0.0.1:8000",)),
    ("ftp://127.0.0.1:8000", ("not an http(s) URL",)),
])
def test_a_malformed_endpoint_is_one_line_in_the_parent(cli_env, endpoint, fragments):
    _one_line_refusal(tuibench("run", *SERVING, "--endpoint", endpoint, env=cli_env), *fragments)
    assert _stored_runs(cli_env) == 0


def test_a_server_that_is_not_openai_is_refused_before_anything_is_stored(cli_env, plain_web_server, model_path):
    line = _one_line_refusal(tuibench("run", *SERVING, "--endpoint", plain_web_server, env=cli_env),
                             "is not an OpenAI-compatible server: GET /v1/models answered HTTP 404")
    assert len(line) < 300 and "<html" not in line.lower()
    assert _stored_runs(cli_env) == 0


def test_nothing_listening_and_a_wrong_model_name_store_nothing(cli_env, mock, model_path):
    from tuibench.servers.managed import free_port

    _one_line_refusal(tuibench("run", *SERVING, "--endpoint", f"http://127.0.0.1:{free_port()}", env=cli_env),
                      "nothing answers at")
    _one_line_refusal(tuibench("run", *SERVING, "--endpoint", mock.url, env=cli_env),
                      "serves 'mock', not", "--served-model-name mock")
    assert _stored_runs(cli_env) == 0


def test_the_v1_form_is_taken_and_said(cli_env, mock, model_path):
    result = tuibench("run", *SERVING, "--endpoint", mock.url + "/v1/", "--served-model-name", "mock", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"tuibench adds /v1 to its routes, so it sends to {mock.url}" in result.stdout
    assert "requests done" in result.stdout and _stored_runs(cli_env) == 1


@pytest.mark.parametrize("command", [("run", "--scenario", "serving"), ("compare", "--scenarios", "serving"),
                                     ("capacity", "--slo", "ttft_p99=500")])
def test_every_command_with_an_endpoint_labels_its_runs_as_the_endpoint(command, mock, model_path):
    """The plan each command builds, read without running it: its steps are library `endpoint` (capacity used to
    label a user's server as the default library, transformers)."""
    from tuibench.cli import build_parser
    from tuibench.cli.flags import request_from_args
    from tuibench.runner.plans import build_plan

    args = build_parser().parse_args([*command, "--endpoint", mock.url, "--served-model-name", "mock"])
    offered = getattr(args, "scenarios_offered", ("offline", "serving", "profile", "capacity"))
    plan = build_plan(request_from_args(args, offered if command[0] != "capacity" else ("capacity",)))
    assert {step.spec.library for step in plan.steps} == {"endpoint"}


def test_a_context_too_long_is_one_line_from_the_config_and_stores_nothing(cli_env, model_path):
    """The model's context is in its config: refused in the parent before any run begins (the child found it after
    10 s of loading weights, and a failed run was stored)."""
    _one_line_refusal(tuibench("run", "--dataset", "short-16k", "--num-requests", "1", env=cli_env),
                      "needs 16030 tokens of context but smollm2-135m has 8192")
    assert _stored_runs(cli_env) == 0

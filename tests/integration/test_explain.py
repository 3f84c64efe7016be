"""Coarse to fine through the CLI on the real SmolLM2: a plan of offline and profile steps meets each coarse run
with its decode profile on its own, prints it, and exports every row; `runs explain` takes two runs."""

import json

import pytest

from helpers import tuibench

pytestmark = pytest.mark.slow


def test_a_plan_of_offline_and_profile_steps_explains_its_time_per_token(cli_env, tmp_path):
    db, out = tmp_path / "results.db", tmp_path / "plan.json"
    result = tuibench("compare", "--libraries", "transformers", "--scenarios", "offline,profile", "--dataset",
                      "random", "--input-len", "16", "--output-len", "4", "--num-requests", "2", "--batch-size", "2",
                      "--lengths", "16", "--decode-steps", "2", "--db", str(db), "--json", str(out), env=cli_env,
                      timeout=900)
    assert result.returncode == 0, result.stderr
    assert "coarse to fine" in result.stdout and "outside it" in result.stdout
    explanation = json.loads(out.read_text())["explanation"]
    [row] = explanation["coarse_fine"]
    # A batch of 2 at context 16 + 4 / 2 = 18 met with the profile's decode step at batch 2, context 16 + 3 / 2.
    assert (row["library"], row["scenario"], row["batch"], row["context"]) == ("transformers", "offline", 2, 18.0)
    assert row["profile_context"] == 17.5 and row["forward_ms"] > 0 and row["tpot_ms"] > 0
    # The books: what a token costs outside the forward is the TPOT less the forward (one subtraction: float rounding
    # only). How large it is on real hardware is no test (docs/fine-grained.md gives the measured figures).
    assert row["overhead_ms"] == pytest.approx(row["tpot_ms"] - row["forward_ms"], abs=1e-9)

    shown = tuibench("runs", "--db", str(db), "explain", str(row["profile_run_id"]), str(row["run_id"]), env=cli_env)
    assert shown.returncode == 0 and "coarse to fine" in shown.stdout, shown.stderr
    refused = tuibench("runs", "--db", str(db), "explain", str(row["run_id"]), str(row["run_id"]), env=cli_env)
    assert refused.returncode != 0 and "both coarse runs" in refused.stderr
    unknown = tuibench("compare", "show", "1", "--explain", "transformers,vllm", "--db", str(db), env=cli_env)
    assert unknown.returncode != 0 and "this plan ran no vllm" in unknown.stderr

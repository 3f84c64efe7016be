"""Repeats for real on SmolLM2: `run --repeat 3` gives every figure with its 95 % interval, and `runs diff` tells
a difference beyond the noise (batch 1 against batch 8) from one within it (two repeats of one spec)."""

import json
import re
import statistics

import pytest

from helpers import cli_env_for, tuibench

pytestmark = pytest.mark.slow

RUN = ["run", "--dataset", "random", "--input-len", "16", "--output-len", "8", "--num-requests", "8",
       "--threads", "1", "--repeat", "3"]


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    """Runs 1-3: batch 1, three times; runs 4-6: batch 1 again, at once after them (a shared host drifts: two
    blocks a minute apart came 15 % apart); runs 7-9: batch 8, three times."""
    tmp = tmp_path_factory.mktemp("repeats")
    env = cli_env_for(tmp)
    db = tmp / "results.db"
    one = tuibench(*RUN, "--batch-size", "1", "--db", str(db), "--json", str(tmp / "one.json"), env=env, timeout=600)
    assert one.returncode == 0, one.stderr
    again = tuibench(*RUN, "--batch-size", "1", "--db", str(db), env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    eight = tuibench(*RUN, "--batch-size", "8", "--db", str(db), env=env, timeout=600)
    assert eight.returncode == 0, eight.stderr
    return db, env, one.stdout, json.loads((tmp / "one.json").read_text())


def test_run_repeat_shows_the_mean_and_its_interval_over_the_stored_repeats(repeated):
    _, _, stdout, documents = repeated
    assert len(documents) == 3 and {d["run"]["plan_id"] for d in documents} == {1}
    throughputs = [d["run"]["metrics"]["output_throughput_tok_s"] for d in documents]
    row = next(line for line in stdout.splitlines() if "output tok/s" in line and "±" in line)
    mean, half = (float(v.replace(",", "")) for v in re.search(r"([\d,.]+) ±([\d,.]+)", row).groups())
    assert mean == pytest.approx(statistics.mean(throughputs), abs=0.06)
    assert 0 < half < mean
    assert "transformers ×3" in stdout and "95 % CI" in stdout
    # Nothing pooled unseen: each repeat's own figure is printed beside the mean.
    repeats_row = next(line for line in stdout.splitlines() if "output tok/s" in line and "," in line.split("output tok/s")[1])
    assert all(f"{v:.1f}" in repeats_row for v in throughputs)


def test_runs_diff_tells_a_real_difference_from_noise(repeated):
    db, env, _, _ = repeated
    # One spec, two plans of three repeats each: the same within the noise the repeats measure. (Single runs on
    # this 2-core box spread too much for one pair to say anything: the unit tests pin that path.)
    same = tuibench("runs", "--db", str(db), "diff", "1", "4", env=env)
    assert same.returncode == 0, same.stderr
    assert "Welch's t-test on 3 and 3 repeats" in same.stdout
    # Within noise, or (the host drifted between the blocks: the test is right to find it) by a few percent.
    change = re.search(r"(faster|slower) by ([\d.]+) %", same.stdout.splitlines()[-1])
    assert "within noise" in same.stdout.splitlines()[-1] or float(change.group(2)) < 20, same.stdout
    batched = tuibench("runs", "--db", str(db), "diff", "1", "7", env=env)
    assert batched.returncode == 0, batched.stderr
    last = batched.stdout.splitlines()[-1]
    assert "run 7 ×3" in last and "run 1 ×3" in last and "Welch's t-test on 3 and 3 repeats" in batched.stdout
    faster = re.search(r"faster by ([\d.]+) %", last)
    assert faster and float(faster.group(1)) > 50, last  # batch 8 against 1: several times the tokens per second

"""Fixtures every test directory shares. Helpers that tests import live in helpers.py."""

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_env_for, first_conversion_file


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    return cli_env_for(tmp_path)


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2, converted once into the user cache (about half a minute the first time), the way the
    CLI and the app convert it: in an interpreter of its own. The worker that converts it keeps what it printed
    for the test of that output (first_conversion_file), which may run on the other."""
    from tuibench.models.resolve import resolve_model

    said = first_conversion_file()
    # One worker at a time, so that the second finds the folder and the output both there.
    with open(said.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ref = resolve_model("smollm2-135m")
        if ref.needs_conversion:
            code = ("from tuibench.models.convert import convert_in_subprocess; from tuibench.models.resolve import "
                    "resolve_model; convert_in_subprocess(resolve_model('smollm2-135m'))")
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr
            said.write_text(result.stderr)
    return Path(ref.path)

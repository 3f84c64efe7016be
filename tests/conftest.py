"""Fixtures every test directory shares. Helpers that tests import live in helpers.py."""

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIRST_CONVERSION, cli_env_for


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    return cli_env_for(tmp_path)


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2, converted once into the user cache (about half a minute the first time), the way the
    CLI and the app convert it: in an interpreter of its own, its output kept for the test of that output."""
    from tuibench.models.resolve import resolve_model

    ref = resolve_model("smollm2-135m")
    if ref.needs_conversion:
        code = ("from tuibench.models.convert import convert_in_subprocess; from tuibench.models.resolve import "
                "resolve_model; convert_in_subprocess(resolve_model('smollm2-135m'))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        FIRST_CONVERSION.update(stderr=result.stderr, path=ref.path)
    return Path(ref.path)

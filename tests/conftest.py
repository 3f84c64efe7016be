"""Fixtures every test directory shares. Helpers that tests import live in helpers.py."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import FIRST_CONVERSION_ENV, cli_env_for


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    return cli_env_for(tmp_path)


def pytest_sessionstart(session):
    """The embedded SmolLM2 converted into the user cache before any test (about half a minute the first time),
    the way the CLI and the app convert it: in an interpreter of its own. By the one process that runs the tests,
    or by xdist's controller before it starts its workers, which inherit the variable naming what the conversion
    printed (two workers converting at once would queue on the conversion's lock, and only one would see it)."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller has converted it
        return
    from tuibench.models.resolve import resolve_model

    if resolve_model("smollm2-135m").needs_conversion:
        code = ("from tuibench.models.convert import convert_in_subprocess; from tuibench.models.resolve import "
                "resolve_model; convert_in_subprocess(resolve_model('smollm2-135m'))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise pytest.UsageError(f"the embedded model could not be converted:\n{result.stderr}")
        said = Path(tempfile.mkdtemp(prefix="tuibench-tests-")) / "conversion.stderr"
        said.write_text(result.stderr)
        os.environ[FIRST_CONVERSION_ENV] = str(said)


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2 as a HF folder (converted at the session's start)."""
    from tuibench.models.resolve import resolve_model

    ref = resolve_model("smollm2-135m")
    assert not ref.needs_conversion, "the session's start converts it (pytest_sessionstart)"
    return Path(ref.path)

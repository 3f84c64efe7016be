"""Fixtures every test directory shares. Helpers that tests import live in helpers.py."""

import os

import pytest


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLUMNS", None)
    return env


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2, converted once into the user cache (about half a minute the first time)."""
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    return ensure_converted(resolve_model("smollm2-135m"), print)

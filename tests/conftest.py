"""Fixtures every test directory shares. Helpers that tests import live in helpers.py."""

import pytest

from helpers import cli_env_for


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a `tuibench` subprocess: its own data dir (so the default DB is fresh), the user's model cache."""
    return cli_env_for(tmp_path)


@pytest.fixture(scope="session")
def model_path():
    """The embedded SmolLM2, converted once into the user cache (about half a minute the first time)."""
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    return ensure_converted(resolve_model("smollm2-135m"), print)

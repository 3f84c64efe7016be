"""Where tuibench keeps its files (XDG base directories)."""

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "tuibench"


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "tuibench"


def default_db_path() -> Path:
    return data_dir() / "results.db"

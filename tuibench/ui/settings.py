"""What the app remembers between sessions: the last setup and the theme ($XDG_CONFIG_HOME/tuibench/app.json)."""

import os
from pathlib import Path

import msgspec


class SetupChoice(msgspec.Struct, kw_only=True):
    model: str = "smollm2-135m"
    library: str = "transformers"
    dataset: str = "short2short"
    scenario: str = "offline"
    num_requests: int = 16
    batch_size: int = 8
    request_rate: float | None = None  # serving: None sends everything at once
    lengths: str = "32,128"  # profile
    input_len: int = 128  # random dataset
    output_len: int = 64


class Settings(msgspec.Struct, kw_only=True):
    theme: str = "tuibench-dark"
    setup: SetupChoice = msgspec.field(default_factory=SetupChoice)


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "tuibench" / "app.json"


def load_settings() -> Settings:
    """The saved settings, or the defaults if there are none or they cannot be read (never an error)."""
    try:
        return msgspec.json.decode(settings_path().read_bytes(), type=Settings)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return Settings()


def save_settings(settings: Settings) -> None:
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(settings)))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not stop the app; the choice is simply not remembered

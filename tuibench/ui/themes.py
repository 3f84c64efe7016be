"""The app's themes, read from themes/*.toml (shipped as package data): drop a file there to add one."""

import tomllib
from importlib import resources

from textual.theme import Theme

DEFAULT_THEME = "tuibench-dark"


def load_themes() -> list[Theme]:
    themes = []
    for entry in sorted(resources.files("tuibench.themes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text())
            variables = data.pop("variables", {})
            themes.append(Theme(**data, variables=variables))
    return themes

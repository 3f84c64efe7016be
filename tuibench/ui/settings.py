"""What the app remembers between sessions: the last setup and the theme ($XDG_CONFIG_HOME/tuibench/app.json).

The setup is a plan table, as a plan file's [plan] holds it (only what differs from the plan's defaults), so the
option schema is its only declaration: a key it does not know is one line naming the nearest one, never a
choice dropped in silence.
"""

import os
from pathlib import Path
from typing import Any

import msgspec

from tuibench.core.errors import UserError

# What Setup shows the first time, before anything is remembered: a plan quick enough to watch on a CPU. Values
# of options declared in the schema, not a second declaration of them.
FIRST_SETUP: dict[str, Any] = {"num_requests": 16, "output_len": 64, "lengths": [32, 128]}


class Settings(msgspec.Struct, kw_only=True):
    theme: str = "tuibench-dark"
    plan: str = ""  # a shipped plan picked in Setup; empty: the setup table is the plan
    setup: dict[str, Any] = msgspec.field(default_factory=lambda: dict(FIRST_SETUP))

    def request(self):
        """The PlanRequest Setup asks for (the picked plan file's, its rounds and cluster from the form); UserError
        naming the option when a value is off."""
        from tuibench.core.options import OptionError
        from tuibench.core.plan import request_from_table
        from tuibench.core.planfiles import load_plan_table

        table = self.setup
        if self.plan:
            table = {**load_plan_table(self.plan), **{k: v for k, v in self.setup.items() if k in PLAN_FILE_KEYS}}
        else:
            for name, one in (("libraries", "library"), ("datasets", "dataset"), ("scenarios", "scenario")):
                if name in table and not table[name]:
                    raise UserError(f"tick at least one {one} (space ticks the highlighted one)")
        try:
            return request_from_table(table, where="setup")
        except OptionError as exc:
            raise UserError(str(exc).removeprefix("setup.")) from None


# With a plan file picked, what Setup still sets over it: how many rounds, and where they run.
PLAN_FILE_KEYS = ("repeat", "ray_address")


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "tuibench" / "app.json"


def load_settings() -> Settings:
    """The saved settings, or the defaults if there are none. A file that is not JSON is left for the defaults
    (the next save replaces it); one whose setup names an option that does not exist is a UserError, so that the
    app never runs another plan than the one asked for."""
    from tuibench.core.options import OptionError, check_keys
    from tuibench.core.plan import plan_options

    path = settings_path()
    try:
        settings = msgspec.json.decode(path.read_bytes(), type=Settings)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return Settings()
    if "plan" in settings.setup:  # the form of tuibench before the option schema: its fields, read once
        settings = _from_previous(settings)
    try:
        check_keys(settings.setup, plan_options(), "setup")
    except OptionError as exc:
        raise UserError(f"{path}: {exc}: fix the key or delete the file") from None
    return settings


def _from_previous(settings: Settings) -> Settings:
    """Settings saved by the tuibench before the option schema (its Setup had fields of its own: `model`, `rates`
    and `lengths` as text, `slo`) as a plan table."""
    from tuibench.core.options import parse_rates

    old = dict(settings.setup)
    table: dict[str, Any] = {}
    for key in ("libraries", "datasets", "scenarios", "num_requests", "batch_size", "input_len", "output_len",
                "repeat", "max_concurrency", "ray_address"):
        if old.get(key) not in (None, ""):
            table[key] = old[key]
    if old.get("model"):
        table["models"] = [old["model"]]
    try:
        if old.get("rates"):
            table["rates"] = parse_rates(old["rates"])
        if old.get("lengths"):
            table["lengths"] = [int(part) for part in str(old["lengths"]).split(",") if part.strip()]
    except ValueError:
        pass  # what the old form held badly is not carried over: the defaults stand
    if old.get("slo"):
        table["capacity"] = {"slo": old["slo"]}
    return Settings(theme=settings.theme, plan=str(old.get("plan") or ""), setup=table)


def save_settings(settings: Settings) -> None:
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(settings)))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not stop the app; the choice is simply not remembered

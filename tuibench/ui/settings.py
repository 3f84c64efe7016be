"""What the app remembers between sessions: the last setup and the theme ($XDG_CONFIG_HOME/tuibench/app.json)."""

import os
from pathlib import Path

import msgspec

from tuibench.core.errors import UserError


class SetupChoice(msgspec.Struct, kw_only=True):
    """The Setup screen's form. `plan` names a shipped plan file; empty, the choices below make the plan."""

    plan: str = ""
    model: str = "smollm2-135m"
    libraries: list[str] = msgspec.field(default_factory=lambda: ["transformers"])
    datasets: list[str] = msgspec.field(default_factory=lambda: ["short2short"])
    scenarios: list[str] = msgspec.field(default_factory=lambda: ["offline"])
    num_requests: int = 16
    batch_size: int = 8
    rates: str = ""  # serving: req/s, comma separated; empty sends everything at once
    lengths: str = "32,128"  # profile
    input_len: int = 128  # random dataset
    output_len: int = 64
    repeat: int = 1  # rounds of the whole plan (--repeat N)
    ray_address: str = ""  # a Ray cluster to run on (--ray-address): host:port, or auto; empty: this machine
    slo: str = ""  # the capacity scenario's objectives, e.g. ttft_p99=1000,tpot_p99=200
    max_concurrency: int | None = None  # serving: requests in flight at most

    def request(self):
        """The PlanRequest this form asks for (the plan file's, when one is picked); UserError when it is off."""
        import msgspec

        from tuibench.core.plan import request_from_table
        from tuibench.runner.plans import load_plan_file

        if self.plan:
            request = load_plan_file(self.plan)
            if self.repeat > 1:
                request = msgspec.structs.replace(request, repeat=self.repeat)
            return msgspec.structs.replace(request, ray_address=self.ray_address) if self.ray_address else request
        for name, picked in (("library", self.libraries), ("dataset", self.datasets), ("scenario", self.scenarios)):
            if not picked:
                raise UserError(f"tick at least one {name} (space ticks the highlighted one)")
        table = {"models": [self.model], "libraries": self.libraries, "datasets": self.datasets,
                 "scenarios": self.scenarios, "num_requests": self.num_requests, "batch_size": self.batch_size,
                 "rates": _numbers(self.rates, "rates", float) or [None], "lengths": _numbers(self.lengths, "lengths", int),
                 "input_len": self.input_len, "output_len": self.output_len, "repeat": self.repeat,
                 "ray_address": self.ray_address or None}
        if "capacity" in self.scenarios:
            table["capacity"] = {"slo": self.slo}
        if self.max_concurrency:
            table["max_concurrency"] = self.max_concurrency
        try:
            return request_from_table(table)
        except msgspec.ValidationError as exc:
            field = str(exc).rpartition("`$.")[2].split("`")[0].split("[")[0] or "setup"
            raise UserError(f"{field.replace('_', ' ')}: {str(exc).split(' - at ')[0]}") from None


def _numbers(text: str, name: str, kind) -> list:
    values = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part.lower() in ("inf", "infinity") and kind is float:
            values.append(None)
            continue
        try:
            values.append(kind(part))
        except ValueError:
            raise UserError(f"{name} {text!r}: give numbers separated by commas, e.g. "
                            f"{'1,2,inf' if kind is float else '32,128,512'}") from None
    return values


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

"""Plan files: the ready-made plans shipped in scenarios/ and a user's TOML files, read into a checked [plan] table.

Pure reading (no engine): the CLI and the app's Setup both open plan files through here.
"""

import tomllib
from pathlib import Path

from tuibench.core.errors import UserError
from tuibench.core.options import OptionError
from tuibench.core.plan import PlanRequest, request_from_table


def shipped_plans() -> dict[str, str]:
    """The ready-made plans in scenarios/ (shipped inside the package): name -> their label."""
    from tuibench.core.workload import scenario_files

    return {name: table["plan"].get("label", name) for name, table in scenario_files().items() if "plan" in table}


def load_plan_table(name_or_path: str) -> dict:
    """A plan file's [plan] table, checked: a path, or the name of a shipped plan (`quick`, `paper`). Flags are laid
    over the table as typed (cli), so it is returned as read; UserError naming the file and key when one is off."""
    from tuibench.core.workload import scenario_files

    path = Path(name_or_path).expanduser()
    name = name_or_path.removesuffix(".toml")
    if path.is_file():
        where = str(path)
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{where}: not valid TOML ({exc})") from None
    elif name in shipped_plans():
        where, table = f"{name}.toml", scenario_files()[name]
    else:
        raise UserError(f"no plan file {name_or_path}: give a path to a .toml file with a [plan] table, "
                        f"or one of the shipped plans: {', '.join(shipped_plans())}")
    if "plan" not in table:
        raise UserError(f"{where}: no [plan] table; a plan file holds [plan] with libraries, datasets, scenarios, …")
    try:
        request_from_table(table["plan"])
    except OptionError as exc:
        raise UserError(f"{where}: {exc}") from None
    return table["plan"]


def load_plan_file(name_or_path: str) -> PlanRequest:
    """A plan file's request (see load_plan_table)."""
    return request_from_table(load_plan_table(name_or_path))

"""A plan's flags, generated from the option schema (PlanRequest's declarations): a command offers each option
that applies to one of its scenarios, in the option's group, with its flags, help, default and checks.

Every flag defaults to "not given" (argparse.SUPPRESS): the plan's own default applies, and a plan file's value
is overridden only by what was typed.
"""

import argparse
from typing import Any

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.options import GROUPS, OptionError, OptionField, options_of, parse_text
from tuibench.core.plan import SCENARIOS, plan_options, request_from_table

def add_plan_options(parser: argparse.ArgumentParser, scenarios: tuple[str, ...],
                     more_flags: dict[str, tuple[str, ...]] | None = None) -> None:
    """The flags of every option that applies to `scenarios` (a command's). `more_flags`: a command's own extra
    names for an option (capacity's --slo for capacity.slo)."""
    groups = {name: parser.add_argument_group(title) for name, title in GROUPS.items()}  # in the schema's order
    for field in plan_options():
        if field.opt.no_flag or not field.applies_to(set(scenarios)):
            continue
        if field.key == "scenarios" and len(scenarios) == 1:
            continue  # the command is its scenario
        group = groups[field.opt.group]
        flags = field.flags + (more_flags or {}).get(field.key, ())
        common = {"dest": field.key, "default": argparse.SUPPRESS, "help": _help(field)}
        if field.is_flag_switch:
            group.add_argument(*flags, action="store_true", **common)
        else:
            group.add_argument(*flags, type=_reader(field, scenarios), metavar=_metavar(field, scenarios), **common)


def _reader(field: OptionField, scenarios: tuple[str, ...]):
    """argparse's type= for one option: the schema's parser, its message as argparse's one line."""
    def read(text: str) -> Any:
        try:
            value = parse_text(field, text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if field.key == "scenarios" and (off := [s for s in value if s not in scenarios]):
            raise argparse.ArgumentTypeError(f"unknown scenario {off[0]!r} here: choose from {', '.join(scenarios)}")
        return value

    read.__name__ = field.key  # argparse names the type in some messages
    return read


def _metavar(field: OptionField, scenarios: tuple[str, ...]) -> str:
    if field.opt.metavar:
        return field.opt.metavar
    choices = [c for c in field.choices if field.key != "scenarios" or c in scenarios]
    if choices:
        return ("{" + ",".join(choices) + "}") if not field.is_list else ",".join(choices)
    if field.is_list:
        return "A,B,…"
    if field.base is int:
        return "N"
    if field.base is float:
        return _UNIT_METAVARS.get(field.opt.unit, "X")
    return "TEXT"


_UNIT_METAVARS = {"s": "SECONDS", "ms": "MS", "req/s": "REQ/S", "Hz": "HZ"}


def _help(field: OptionField) -> str:
    text = field.opt.help
    default = field.default
    shown = field.text_of(default) if default is not None else ""
    if shown and "default" not in text and not field.is_flag_switch:
        text += f" (default {shown}{' ' + field.opt.unit if field.opt.unit else ''})"
    return text.replace("%", "%%")  # argparse formats help with %


def request_from_args(args: argparse.Namespace, scenarios: tuple[str, ...], base: dict | None = None):
    """The plan the flags ask for: a plan file's [plan] table (`base`), then every option that was typed, key by
    key (a sub-table such as [plan.capacity] merged, not replaced). A command of one scenario runs that one."""
    table: dict[str, Any] = dict(base or {})
    given = vars(args)
    for field in plan_options():
        if field.key in given:
            field.set_in(table, given[field.key])
    if len(scenarios) == 1 and scenarios[0] in SCENARIOS:
        table["scenarios"] = [scenarios[0]]
    try:
        return request_from_table(table)
    except OptionError as exc:
        raise UserError(str(exc)) from None


def add_struct_options(parser: argparse.ArgumentParser, struct: type[msgspec.Struct]) -> None:
    """Flags for every option of a small Struct of its own (the mock server's schedule), its defaults shown."""
    for field in options_of(struct):
        common = {"dest": field.key, "help": _help(field)}
        if field.is_flag_switch:
            parser.add_argument(*field.flags, action="store_true", **common)
        else:
            parser.add_argument(*field.flags, type=_reader(field, ()), metavar=_metavar(field, ()),
                                default=field.default, **common)


def struct_from_args(args: argparse.Namespace, struct: type[msgspec.Struct]):
    return struct(**{field.key: getattr(args, field.key) for field in options_of(struct)})

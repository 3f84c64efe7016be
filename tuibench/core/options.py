"""The option schema: every option a user can set is a field of a msgspec Struct, declared once with `Opt`.

A field's type (with its msgspec constraints) and default are the Struct's; `Opt`, in the same `Annotated`,
adds what a person needs: help, unit, group, the scenarios it applies to, its flags. The CLI's flags
(cli/flags.py), the app's Setup form (ui/widgets/option_form.py), plan files and saved settings all read
`options_of(Struct)`, and all turn text into a value with `parse_text`: one parser, one set of messages.

Why our own generator over msgspec's field info rather than a CLI library (cyclopts, typer): the Struct already
validates plan files and settings, so the same types and constraints check flags and form fields; a CLI library
would bring a second validation path with its own messages, and would still leave the Setup form to generate.
argparse stays underneath: `tuibench --help` answers without importing anything heavy.
"""

import difflib
import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

ALL_SCENARIOS = frozenset({"offline", "serving", "profile", "capacity"})
# The groups options are declared in, in the order `--help` and the Setup form show them, with their titles.
GROUPS = {"plan": "plan", "workload": "workload", "serving": "serving", "profile": "profile (module timing)",
          "capacity": "capacity search", "engine": "engine", "mock": "schedule"}


@dataclass(frozen=True)
class Opt:
    """What a person needs to know of one field, beside its type and default."""

    help: str
    group: str  # the help section and the Setup section: plan, workload, engine, serving, profile, capacity
    scenarios: frozenset[str] = ALL_SCENARIOS  # where it matters: commands and forms offer it only there
    unit: str = ""  # "ms", "s", "req/s", "tokens": shown beside the value
    flags: tuple[str, ...] = ()  # the CLI flags, first the main one; empty: --field-name
    metavar: str | None = None
    # Text to value where the generic reading does not fit (an SLO's "ttft=200"): text -> a plan-table value; and
    # back, for a form showing the value.
    parse: Callable[[str], Any] | None = None
    show: Callable[[Any], str] | None = None
    # What the type cannot say of a value, however it came (a flag, a plan file, the form): ValueError when off.
    check: Callable[[Any], None] | None = None
    # Why there is no flag, or no Setup field: an option without one must say why (a test holds to it).
    no_flag: str | None = None
    no_setup: str | None = None
    placeholder: str = ""  # the Setup field's hint when empty


class OptionError(ValueError):
    """A value that does not fit its option, in one line that names the option in the reader's terms."""


@dataclass(frozen=True)
class OptionField:
    """One option as the front ends see it: where it sits in the table, its type, default and `Opt`."""

    path: tuple[str, ...]  # ("capacity", "slo"): a key of the plan table, nested for a sub-table
    annotation: Any  # the field's full type, constraints included: what a value is converted to
    default: Any
    opt: Opt

    @property
    def key(self) -> str:
        """'capacity.slo': the name in messages and saved settings."""
        return ".".join(self.path)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.opt.flags or ("--" + self.path[-1].replace("_", "-"),)

    @property
    def flag(self) -> str:
        return self.flags[0]

    @property
    def base(self) -> Any:
        """The type with None, Annotated and constraints taken off: int, float, str, bool, a Literal, a tuple."""
        return _strip(self.annotation)

    @property
    def optional(self) -> bool:
        return _allows_none(self.annotation)

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.base) is tuple

    @property
    def element(self) -> Any:
        """A list's element type (stripped), or the type itself."""
        return _strip(typing.get_args(self.base)[0]) if self.is_list else self.base

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed values of a Literal (or a list of Literals); () when free."""
        element = self.element
        return tuple(typing.get_args(element)) if typing.get_origin(element) is Literal else ()

    @property
    def is_flag_switch(self) -> bool:
        return self.base is bool

    def value_in(self, table: dict) -> Any:
        """This option's value in a (nested) plan table, or msgspec.UNSET."""
        level: Any = table
        for key in self.path:
            if not isinstance(level, dict) or key not in level:
                return msgspec.UNSET
            level = level[key]
        return level

    def set_in(self, table: dict, value: Any) -> None:
        """Sets this option in a plan table as a plan file holds it (a sub-table for a nested option)."""
        *parents, name = self.path
        for parent in parents:
            table = table.setdefault(parent, {})
        table[name] = msgspec.to_builtins(value)

    def applies_to(self, scenarios: frozenset[str] | set[str]) -> bool:
        return bool(self.opt.scenarios & set(scenarios))

    def text_of(self, value: Any) -> str:
        """A value as a person types it: the inverse of parse_text for what a form shows."""
        if value is None:
            return ""
        if self.opt.show is not None:
            return self.opt.show(value)
        if isinstance(value, tuple | list):
            return ",".join(self.text_of(v) for v in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


def options_of(struct: type[msgspec.Struct], prefix: tuple[str, ...] = ()) -> tuple[OptionField, ...]:
    """Every option of `struct`, in declaration order; a field whose type is a Struct of options (a sub-table such
    as [plan.capacity]) gives its own fields, unless it carries an `Opt` of its own (then it is one option)."""
    found = []
    hints = typing.get_type_hints(struct, include_extras=True)
    defaults = dict(zip(struct.__struct_fields__, _defaults(struct), strict=True))
    for name in struct.__struct_fields__:
        annotation = hints[name]
        opt = _opt_of(annotation)
        inner = _strip(annotation)
        if opt is None and isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            found += options_of(inner, (*prefix, name))
            continue
        if opt is None:
            raise TypeError(f"{struct.__name__}.{name} has no Opt: every option is declared with its help")
        found.append(OptionField((*prefix, name), annotation, defaults[name], opt))
    return tuple(found)


def _defaults(struct: type[msgspec.Struct]) -> list[Any]:
    info = msgspec.inspect.type_info(struct)
    return [None if f.default is msgspec.NODEFAULT else f.default for f in info.fields]


def _opt_of(annotation: Any) -> Opt | None:
    for arg in _annotated_layers(annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, Opt):
                return meta
    return None


def _annotated_layers(annotation: Any) -> Iterator[Any]:
    """The annotation, and each member of a union (Opt may sit on `Annotated[int, ...] | None`'s int side)."""
    yield annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        yield from typing.get_args(annotation)


def _strip(annotation: Any) -> Any:
    """Annotated layers and None taken off: the plain type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _allows_none(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return _allows_none(typing.get_args(annotation)[0])
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(annotation)


# -- text to value --------------------------------------------------------------------------------------------------


def parse_text(field: OptionField, text: str) -> Any:
    """A value typed by a person (a flag's argument, a form field) as the option's value; OptionError when off.

    Lists are comma separated; a field that allows None takes the empty text as None. The value is converted by
    msgspec with the field's own type, so the constraints checked are the plan file's."""
    text = text.strip()
    if field.opt.parse is not None:
        try:
            raw = field.opt.parse(text)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    elif text == "" and field.optional:
        return None
    elif field.is_list:
        raw = [part.strip() for part in text.split(",") if part.strip()]
        if not raw:
            raise OptionError("give at least one value")
        for part in raw:
            _check_scalar(field, field.element, part)
    else:
        raw = text
        _check_scalar(field, field.base, text)
    return convert(field, raw)


def convert(field: OptionField, raw: Any) -> Any:
    """A plan-table value (as TOML or JSON gives it, or text) as the field's typed value; OptionError when off."""
    try:
        value = msgspec.convert(raw, field.annotation, strict=False)
    except msgspec.ValidationError as exc:
        for text in raw if isinstance(raw, list | tuple) else [raw]:
            if isinstance(text, str):  # a choice or a number given as text: say which, as a typed flag would
                _check_scalar(field, field.element, text)
        raise OptionError(_constraint_message(field, raw) or _plain(str(exc))) from None
    if field.opt.check is not None and value is not None:
        try:
            field.opt.check(value)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    return value


def _check_scalar(field: OptionField, kind: Any, text: str) -> None:
    """The first thing wrong with one typed value, in words: not a number, not a choice."""
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if text not in allowed:
            raise OptionError(f"invalid choice: {text!r} (choose from {', '.join(map(str, allowed))})")
    elif kind is int:
        try:
            int(text)
        except ValueError:
            raise OptionError(f"expected a whole number, got {text!r}") from None
    elif kind is float:
        try:
            float(text)
        except ValueError:
            raise OptionError(f"expected a number, got {text!r}") from None
    elif kind is bool and text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise OptionError(f"expected true or false, got {text!r}")


def _constraint_message(field: OptionField, raw: Any) -> str | None:
    """'must be at least 1, got 0': a number outside the field's bounds, said as a person would."""
    info = msgspec.inspect.type_info(field.annotation)
    values = raw if isinstance(raw, list | tuple) else [raw]
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        for bounds in _number_types(info):
            low = bounds.ge if bounds.ge is not None else bounds.gt
            high = bounds.le if bounds.le is not None else bounds.lt
            if (bounds.ge is not None and number < bounds.ge) or (bounds.gt is not None and number <= bounds.gt) or \
                    (bounds.le is not None and number > bounds.le) or (bounds.lt is not None and number >= bounds.lt):
                shown = value if isinstance(value, str) else f"{number:g}"
                if bounds.ge is not None and bounds.le is not None:
                    return f"must be {low:g} to {high:g}, got {shown}"
                words = [f"at least {low:g}" if bounds.ge is not None else f"more than {low:g}"] if low is not None \
                    else []
                if high is not None:
                    words.append(f"at most {high:g}" if bounds.le is not None else f"less than {high:g}")
                return f"must be {' and '.join(words)}, got {shown}"
    return None


def _number_types(info: Any) -> Iterator[Any]:
    if isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        yield info
    for member in getattr(info, "types", ()):  # a union's members
        yield from _number_types(member)
    if isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
        yield from _number_types(info.item_type)


def _plain(message: str) -> str:
    """msgspec's 'Expected `int` >= 1 - at `$.x`' without the markup and the path (the caller names the option)."""
    return message.split(" - at `")[0].replace("`", "").replace("Expected", "expected")


def parse_rates(text: str) -> list[float | None]:
    """'1,2,inf': requests per second; inf (or infinity) is everything at once, held as None from here on."""
    rates = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part.lower() in ("inf", "infinity"):
            rates.append(None)
            continue
        try:
            rates.append(float(part))
        except ValueError:
            raise ValueError(f"expected requests per second or inf, got {part!r}") from None
    if not rates:
        raise ValueError("give at least one rate, e.g. 1,2,inf")
    return rates


def rates_from_table(rates: list | tuple) -> list:
    """TOML's `inf` (and the string "inf") in a rates list is everything at once: None."""
    return [None if (isinstance(r, float) and math.isinf(r)) or (isinstance(r, str) and r.lower() == "inf") else r
            for r in rates]


# -- tables: plan files and saved settings --------------------------------------------------------------------------


def check_keys(table: dict, fields: tuple[OptionField, ...], where: str) -> None:
    """Every key of `table` is an option (sub-tables checked key by key); OptionError naming the first that is not,
    with the nearest valid key."""
    known: dict[tuple[str, ...], set[str]] = {}
    for field in fields:
        for depth in range(len(field.path)):
            known.setdefault(field.path[:depth], set()).add(field.path[depth])
    _check_level(table, (), known, where)


def _check_level(table: dict, prefix: tuple[str, ...], known: dict[tuple[str, ...], set[str]], where: str) -> None:
    names = known.get(prefix, set())
    for key, value in table.items():
        if key not in names:
            near = difflib.get_close_matches(str(key), sorted(names), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise OptionError(f"{'.'.join((where, *prefix, str(key)))}: unknown key{hint}")
        if isinstance(value, dict) and (*prefix, key) in known:
            _check_level(value, (*prefix, key), known, where)


def struct_from_table(table: dict, struct: type, fields: tuple[OptionField, ...], where: str) -> Any:
    """A table (a plan file's [plan], saved settings) as `struct`: unknown keys and values that do not fit are one
    OptionError in the table's terms ('plan.num_requests: must be at least 1, got 0'), each value checked by the
    same conversion as a typed flag."""
    check_keys(table, fields, where)
    for field in fields:
        if (value := field.value_in(table)) is not msgspec.UNSET:
            try:
                convert(field, value)
            except OptionError as exc:
                raise OptionError(f"{where}.{field.key}: {exc}") from None
    try:
        return msgspec.convert(table, struct)
    except msgspec.ValidationError as exc:  # what no single field says: a sub-table of the wrong shape
        message = str(exc)
        path = message.rpartition("`$.")[2].split("`")[0] if "`$." in message else ""
        raise OptionError(f"{where}.{path}: {_plain(message)}" if path else f"{where}: {_plain(message)}") from None

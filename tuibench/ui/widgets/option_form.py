"""A form generated from the option schema: a field per option, grouped as the CLI's help groups them.

The widget follows the option's type: a tick list for a list of choices, a select for one choice (off/on for a
switch, in words), a one-line input for the rest. What is typed is read by the schema's own parser (core/options.py), so
the form and the flags accept the same text and refuse it with the same words.
"""

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.lazy import Lazy
from textual.widgets import Collapsible, Input, Label, Select, Static
from textual.widgets.selection_list import Selection

from tuibench.core.options import GROUPS, OptionError, OptionField, parse_text
from tuibench.ui.widgets.ticks import TickList

# A choice a tick list offers: (value, label, can be picked here).
Choice = tuple[str, str, bool]
ChoicesOf = Callable[[OptionField], list[Choice] | None]
OPEN_GROUPS = ("plan", "workload")  # open at first; the others open when a ticked scenario needs them
OPENED_BY = {"serving": {"serving", "capacity"}, "profile": {"profile"}, "capacity": {"capacity"}}


def widget_id(field: OptionField) -> str:
    return field.key.replace("_", "-").replace(".", "-")


def name_of(field: OptionField) -> str:
    return field.path[-1].removesuffix("_s").replace("_", " ")


def label_of(field: OptionField) -> str:
    return f"{name_of(field)} ({field.opt.unit})" if field.opt.unit else name_of(field)


def _value_at(table: dict, field: OptionField) -> Any:
    value = field.value_in(table)
    return field.default if value is msgspec.UNSET else value


class OptionForm(Vertical):
    """The form of `fields`, filled from `table` (a plan table); `choices_of(field)` gives the tick list of an
    option whose values are known only at run time (models, libraries, datasets)."""

    def __init__(self, fields: Iterable[OptionField], table: dict, choices_of: ChoicesOf,
                 notes: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fields = tuple(fields)
        self._table = table
        self._choices_of = choices_of
        self._notes = notes or {}  # under an option's field, by key: why a library cannot be ticked here

    def compose(self) -> ComposeResult:
        for group, title in GROUPS.items():
            members = [f for f in self.fields if f.opt.group == group]
            if not members:
                continue
            group_box = Collapsible(title=title, collapsed=group not in OPEN_GROUPS, id=f"group-{group}")
            # A closed group is mounted just after the first frame: styling its widgets held the app's first frame
            # back by a third (read() takes the table's values for any not mounted yet).
            with group_box if group in OPEN_GROUPS else Lazy(group_box):
                for field in members:
                    yield from self._field(field)

    def _field(self, field: OptionField) -> Iterable[Widget]:
        value = _value_at(self._table, field)
        wid = widget_id(field)
        choices = self._choices_of(field)
        if choices is None and field.is_list and field.choices:
            choices = [(c, c, True) for c in field.choices]
        if choices is not None:
            picked = set(value or ())
            yield Label(label_of(field))
            yield TickList(*(Selection(text if ok else f"{text} (not here)", name, ok and name in picked, disabled=not ok)
                             for name, text, ok in choices), id=wid)
            if field.key in self._notes:  # shown once it says something
                note = Static(self._notes[field.key], id=f"{wid}-notes", classes="notes")
                note.display = bool(self._notes[field.key])
                yield note
            return
        with Horizontal(classes="option"):
            yield Label(label_of(field))
            if field.is_flag_switch:  # off/on in words: a checkbox's mark tells them apart by colour alone
                yield Select([("off", False), ("on", True)], value=bool(value), allow_blank=False, id=wid,
                             compact=True)
            elif field.choices:
                yield Select([(c, c) for c in field.choices], value=value if value is not None else Select.NULL,
                             allow_blank=field.optional, prompt=field.opt.placeholder or "default", id=wid,
                             compact=True)
            else:
                yield Input(field.text_of(value), placeholder=field.opt.placeholder, id=wid,
                            compact=True)

    def field(self, key: str) -> OptionField:
        return next(f for f in self.fields if f.key == key)

    def set_choices(self, key: str, choices: list[Choice], note: str = "") -> None:
        """A tick list's choices once they are known (the libraries, from the run service); the picks are kept."""
        ticks = self.query_one(f"#{widget_id(self.field(key))}", TickList)
        picked = set(ticks.selected) or set(_value_at(self._table, self.field(key)) or ())
        ticks.clear_options()
        ticks.add_options([Selection(text if ok else f"{text} (not here)", name, ok and name in picked,
                                     disabled=not ok) for name, text, ok in choices])
        notes = self.query(f"#{widget_id(self.field(key))}-notes")
        if notes:
            notes.first(Static).update(note)
            notes.first(Static).display = bool(note)

    def read(self) -> dict[str, Any]:
        """The plan table the form holds: each option whose value differs from its default, as a plan file would
        give it. OptionError naming the field ('lengths: expected a whole number, got 'abc'') when one is off."""
        table: dict[str, Any] = {}
        for field in self.fields:
            found = self.query(f"#{widget_id(field)}")
            if not found:  # its group is not mounted yet (a moment after the first frame): as the table gave it
                if (value := field.value_in(self._table)) is not msgspec.UNSET:
                    field.set_in(table, value)
                continue
            widget = found.first()
            if isinstance(widget, TickList):
                value: Any = tuple(widget.selected)
            elif isinstance(widget, Select):
                value = None if widget.value is Select.NULL else widget.value
            else:
                text = widget.value.strip()
                if not text and not field.optional:
                    continue  # left empty: the option's default
                try:
                    value = parse_text(field, text)
                except OptionError as exc:
                    raise OptionError(f"{name_of(field)}: {exc}") from None
            if msgspec.to_builtins(value) != msgspec.to_builtins(field.default):
                field.set_in(table, value)
        return table

    def open_groups(self, scenarios: set[str]) -> None:
        """Opens the groups a ticked scenario needs (serving's for capacity too); never closes one."""
        for group, needed_by in OPENED_BY.items():
            if scenarios & needed_by and self.query(f"#group-{group}"):  # (mounted: a closed one is, soon)
                self.query_one(f"#group-{group}", Collapsible).collapsed = False

    def help_of(self, widget: Widget | None) -> str:
        """The help of the option `widget` edits, or ''."""
        wid = getattr(widget, "id", None)
        return next((f"{label_of(f)}: {f.opt.help}" for f in self.fields if widget_id(f) == wid), "")

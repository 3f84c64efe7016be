"""What the app and the run service say to each other across their process boundary: one JSON object a line.

The app never imports an engine, so it reaches the run service (runner/app_server.py) as a process of its own:
it asks for the libraries this machine has, for a plan to be built (checked) from a request, and for a plan to
be run; the service answers, and while a plan runs it streams the plan's and its runs' events, the very events
the CLI's run service reduces, then says it is done. Cancel is a request too, read while a plan runs.
"""

import msgspec

from tuibench.core import events as ev
from tuibench.core.plan import Plan, PlanEvent, PlanRequest


class _Ask(msgspec.Struct, frozen=True, kw_only=True, tag_field="op"):
    pass


class ListLibraries(_Ask, tag="libraries"):
    pass


class BuildPlan(_Ask, tag="build"):
    request: PlanRequest


class RunPlan(_Ask, tag="run"):
    plan: Plan
    db: str  # the results database's path


class CancelPlan(_Ask, tag="cancel"):
    pass


Ask = ListLibraries | BuildPlan | RunPlan | CancelPlan


class LibraryRow(msgspec.Struct, frozen=True):
    name: str
    available: bool
    reason: str = ""  # why not, when not available


class _Answer(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Libraries(_Answer, tag="libraries"):
    rows: list[LibraryRow]


class Built(_Answer, tag="built"):
    plan: Plan


class Refused(_Answer, tag="refused"):
    """A request the service could not build or run: the one line a user needs."""

    error: str


class RunDone(_Answer, tag="run_done"):
    """The plan asked for has ended; `error` is what broke it outside any step (the store could not open, say)."""

    error: str | None = None


Answer = Libraries | Built | Refused | RunDone
# Everything the service writes: answers, and the events of a plan as it runs.
Said = Answer | PlanEvent | ev.Event

_encoder = msgspec.json.Encoder()
_asks = msgspec.json.Decoder(Ask)
_said = msgspec.json.Decoder(Said)


def encode(message: "Ask | Said") -> bytes:
    return _encoder.encode(message) + b"\n"


def decode_ask(line: bytes) -> Ask:
    return _asks.decode(line)


def decode_said(line: bytes) -> "Said":
    return _said.decode(line)

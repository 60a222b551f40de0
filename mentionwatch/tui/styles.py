"""How the screens mark what matters: a flag, an answer running late, a draft too long, an
outbox action that failed.

With NO_COLOR set Textual draws in greys, and a colour such as red becomes a dark grey on a
dark background: nearly invisible, and no longer saying "urgent". So there is a second set of
marks without colour, told apart by bold, underline and reverse instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment


@dataclass(frozen=True, slots=True)
class Palette:
    """Rich styles by meaning."""

    flags: Mapping[str, str]
    late: str  # waiting more than 30 minutes
    overdue: str  # waiting more than an hour: past the complaint response target
    over_limit: str  # a draft longer than its source allows
    edited: str  # a draft changed here and not approved yet
    snoozed: str
    states: Mapping[str, str]  # outbox action states
    error: str  # a send's error message
    demo: str  # the "sending is simulated" notice
    read_only: str  # the "read-only store" mark
    private_data: str  # "this public post shows a phone number": not to be repeated

    def flag(self, flag: str | None, default: str = "") -> str:
        return self.flags.get(flag or "", default)

    def state(self, state: str, default: str = "") -> str:
        return self.states.get(state, default)


COLOUR = Palette(
    flags={"crisis": "bold white on red", "complaint": "bold red", "question": "cyan",
           "praise": "green"},
    late="yellow", overdue="bold red", over_limit="bold red", edited="yellow",
    snoozed="yellow",
    states={"needs_approval": "bold yellow", "unknown": "bold magenta", "failed": "bold red",
            "approved": "cyan", "sending": "cyan", "sent": "green", "rejected": "dim"},
    error="red", demo="bold black on yellow", read_only="bold black on cyan",
    private_data="bold black on yellow",
)

NO_COLOUR = Palette(
    flags={"crisis": "bold reverse", "complaint": "bold underline", "question": "",
           "praise": "italic"},
    late="underline", overdue="bold underline", over_limit="bold reverse", edited="italic",
    snoozed="italic",
    states={"needs_approval": "bold reverse", "unknown": "bold underline",
            "failed": "bold reverse", "approved": "", "sending": "", "sent": "",
            "rejected": "dim"},
    error="bold", demo="bold reverse", read_only="bold reverse", private_data="bold reverse",
)


def palette(no_color: bool) -> Palette:
    """The marks for this terminal: `App.no_color` is True when NO_COLOR is set."""
    return NO_COLOUR if no_color else COLOUR


class Colourless:
    """A rich renderable drawn without its colours (bold, underline, reverse stay), for
    renderables built elsewhere with colours that NO_COLOR greys into the background."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from Segment.remove_color(console.render(self.renderable, options))

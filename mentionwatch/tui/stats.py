"""The stats view: the same figures as `mentionwatch report`, inside the TUI."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from rich.console import Group, RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mentionwatch.report_render import report_renderables
from mentionwatch.reports import build_report
from mentionwatch.store import Store
from mentionwatch.tui.styles import Colourless


class StatsScreen(Screen[None]):
    """Response times, volume, flags, sentiment, top authors and terms for the last 7 days."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,t,q", "app.pop_screen", "Back to the queue"),
    ]

    def __init__(self, store: Store, days: int = 7) -> None:
        super().__init__()
        self.store = store
        self.days = days

    def compose(self) -> ComposeResult:
        # The renderables keep user text (authors, terms) inert: they are rich Text objects.
        report = build_report(self.store, since=timedelta(days=self.days))
        figures: RenderableType = Group(*report_renderables(report))
        if self.app.no_color:  # the report's red and yellow would grey into the background
            figures = Colourless(figures)
        with VerticalScroll():
            yield Static(figures, id="stats")
        yield Footer(compact=True, show_command_palette=False)

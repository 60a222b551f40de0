"""A one-line question over the queue: snooze until when? assign to whom?"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

#: Returns a message saying what is wrong with the answer, or None when it is good.
Check = Callable[[str], str | None]


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line. Enter answers (when `check` accepts it; otherwise its message is
    shown and the prompt stays), Esc cancels with None."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 80; max-width: 100%; height: auto; border: round $accent;
                              background: $surface; padding: 0 1; }
    PromptScreen #prompt-error { color: $error; }
    PromptScreen #prompt-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, question: str, *, value: str = "", placeholder: str = "",
                 hint: str = "", check: Check | None = None) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question, style="bold"))
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static(Text(self.hint), id="prompt-hint")
            yield Static(id="prompt-error")

    def on_mount(self) -> None:
        self.query_one("#prompt-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value) if self.check else None
        if problem:
            # The message may quote what was typed: inert text, never markup.
            self.query_one("#prompt-error", Static).update(Text(problem))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)

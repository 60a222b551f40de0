"""The `?` screen: every key of the queue, read from the app's own bindings so it cannot drift
from the footer, with a line on what each one does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

#: Longer explanations by action; a key without one shows its footer description.
DETAILS = {
    "approve('reply')": "Approve the public reply as it stands in the draft (or give the "
                        "second approval a crisis reply waits for); sent once, never twice. "
                        "A reply that shows an email address, a phone, order or card number "
                        "(not the brand's own support contacts) is held: edit it out, or "
                        "press again to post it anyway.",
    "outbox": "The outbox view: second approvals, failed and unknown sends (retry, edit, "
              "mark sent / not sent).",
    "approve('private')": "Approve the private follow-up (DM or e-mail) as drafted.",
    "approve('both')": "Approve the public reply and the private follow-up; while the reply "
                       "shows private data, both are held as with a.",
    "dismiss('not relevant')": "Not relevant: off the queue (u brings it back).",
    "dismiss('spam')": "Dismiss as spam.",
    "replied_elsewhere": "Answered elsewhere (on the forum, by phone): off the queue, and "
                         "counted as answered in the reports (u brings it back).",
    "stats": "Response times, volume and flags of the last 7 days (as `mentionwatch report`).",
    "back_to_queue": "Back to the queue from a draft, the search box or the mention pane "
                     "(edits are kept).",
    "undo": "Bring back what you dismissed, resolved or marked as answered elsewhere in "
            "this session, the last first; not if someone changed it since (it says who).",
    "open_link": "Open the mention's link in the browser.",
    "edit": "Move into the public draft to edit it in place (Tab to the private one, "
            "Esc back to the queue). Edits are kept while you move around and on refresh, "
            "and q keeps them in the drafts.",
    "external_edit": "Edit the focused draft (the public one from the queue) in $EDITOR, "
                     "else $VISUAL. Quit the editor without saving to keep the draft as it "
                     "was.",
    "snooze": "Hide the mention until a time: '30m', '2h', '9:00', 'tomorrow 9:00', "
              "'fri 14:30' or an ISO time. It comes back by itself; 'now' wakes it.",
    "assign": "Give the mention to a named person (empty: nobody). Shown in the queue.",
    "resolve": "The case is closed: it leaves the queue, recorded as resolved by you "
               "(u brings it back).",
    "cycle_source": "Show one source at a time, then all.",
    "cycle_view": "open (waiting, awake) / snoozed / assigned / answered / resolved / "
                  "dismissed.",
    "toggle_mine": "Only mentions assigned to you (the operator at the top right).",
    "cycle_filter": "Show one flag at a time, then all.",
    "search": "Search text, titles and author handles (Enter; empty Enter clears). Combines with "
              "the filters.",
    "refresh": "Re-read the queue (also every 10 s), keeping the selection and any edit.",
    "help": "This screen. Tab moves between the queue (Home and End: its first and last "
            "row), the mention (arrows and PgUp/PgDn scroll it) and the drafts.",
    "leave": "Quit (ctrl+q too, even from a draft); edits not approved are kept in the "
             "drafts.",
}


#: How many of the toasts the help screen lists.
MESSAGES_KEPT = 30


@dataclass(frozen=True, slots=True)
class Said:
    """A toast as the app showed it (with its longer form, if it had one)."""

    at: datetime
    text: str

    def line(self) -> Text:
        """The time and the text, inert (a message may quote what people wrote)."""
        return Text(f"{self.at.astimezone():%H:%M:%S}  ", style="dim") + Text(self.text)


def _key_names(key: str) -> str:
    names = {"slash": "/", "question_mark": "?", "escape": "Esc"}
    return ", ".join(names.get(k, k) for k in key.split(","))


def help_table(bindings: list[BindingType], details: dict[str, str] = DETAILS) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("key", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("what it does")
    for binding in Binding.make_bindings(bindings):
        action = binding.action.split("(")[0]
        detail = details.get(binding.action) or details.get(action)
        what = binding.description or action.replace("_", " ")
        table.add_row(Text(_key_names(binding.key), style="bold"), Text(what),
                      Text(detail or ""))
    return table


class HelpScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "Back"),
    ]

    def __init__(self, bindings: list[BindingType], *, notice: str | None = None,
                 messages: list[Said] | None = None, title: str = "Keys of the triage queue",
                 details: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keys = bindings
        #: Said above the keys: why the store cannot be changed here, when it cannot.
        self.notice = notice
        #: The toasts shown so far, the newest first, in full.
        self.messages = messages or []
        self.heading = title
        self.details = DETAILS if details is None else details

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            if self.notice:
                yield Static(Text(self.notice, style="bold"), id="help-notice")
            if self.messages:
                yield Static(Text("Messages, the newest first", style="bold"))
                yield Static(Text("\n").join(m.line() for m in self.messages),
                             id="help-messages")
            yield Static(Text(self.heading, style="bold"))
            yield Static(help_table(self.keys, self.details), id="help")
        yield Footer(compact=True, show_command_palette=False)

"""The outbox view: actions that need a person. Second approvals (who waits for whom),
failed sends with the source's message (retry or edit), and `unknown` ones to check at the
source and settle (mark as sent / not sent). All user text is inert `rich.text.Text`."""

from __future__ import annotations

import webbrowser
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import aliased
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static, TextArea

from mentionwatch import outbox
from mentionwatch.config import TeamConfig
from mentionwatch.durations import format_duration
from mentionwatch.models import Draft, Mention, OutboxAction, Source, utcnow
from mentionwatch.store import Store
from mentionwatch.team import waiting_for
from mentionwatch.text import first_line, strip_terminal_escapes
from mentionwatch.tui.read_only import MARK, writes
from mentionwatch.tui.rows import RowTable
from mentionwatch.tui.styles import COLOUR, Palette

if TYPE_CHECKING:
    from mentionwatch.tui.app import TriageApp

#: Shown first: what a person has to do something about.
ATTENTION = ("needs_approval", "unknown", "failed")
ORDER = {state: i for i, state in enumerate((*ATTENTION, "approved", "sending", "sent",
                                             "rejected"))}
#: A failed send of a mention someone then closed by hand no longer needs anyone.
CLOSED_BY_HAND = ("dismissed", "replied_elsewhere", "resolved", "spam")
#: Sent and rejected actions stay in view this long, so a person sees what just happened.
RECENT = timedelta(hours=24)
DEMO_NOTICE = "DEMO: nothing leaves this machine. Mastodon sends are simulated; feeds: o, then h."


@dataclass(frozen=True, slots=True)
class OutboxItem:
    action: OutboxAction
    flag: str | None
    source: str
    author: str | None
    mention_text: str
    mention_status: str
    edited_by: str | None
    url: str | None


def _in_view() -> ColumnElement[bool]:
    """Which actions the outbox shows: waiting, unknown and on their way; failed ones unless
    a later action of the same kind replaced them or the mention was closed by hand; sent
    and rejected ones from the last day."""
    later = aliased(OutboxAction)
    superseded = exists().where(and_(later.mention_id == OutboxAction.mention_id,
                                     later.action == OutboxAction.action,
                                     later.id > OutboxAction.id))
    return or_(OutboxAction.state.in_(("needs_approval", "unknown", "approved", "sending")),
               and_(OutboxAction.state == "failed", ~superseded,
                    Mention.status.not_in(CLOSED_BY_HAND)),
               and_(OutboxAction.state.in_(("sent", "rejected")),
                    OutboxAction.updated_at >= utcnow() - RECENT))


def outbox_items(store: Store, *, limit: int = 300) -> list[OutboxItem]:
    """The actions in view (see `_in_view`), what needs a person first."""
    query = (
        select(OutboxAction, Mention.flag, Source.name, Mention.author_handle, Mention.text,
               Mention.status, Draft.edited_by, Mention.url)
        .join(Mention, Mention.id == OutboxAction.mention_id)
        .join(Source, Source.id == Mention.source_id)
        .outerjoin(Draft, Draft.mention_id == Mention.id)
        .where(_in_view())
        .order_by(OutboxAction.id.desc()).limit(limit)
    )
    with store.session(readonly=True) as session:
        items = [OutboxItem(*row) for row in session.execute(query)]
    return sorted(items, key=lambda i: (ORDER.get(i.action.state, 99), -i.action.id))


def outbox_counts(store: Store) -> Counter[str]:
    """How many actions in view wait for a person, per state (the queue's status line)."""
    query = (select(OutboxAction.state, func.count())
             .join(Mention, Mention.id == OutboxAction.mention_id)
             .where(OutboxAction.state.in_(ATTENTION), _in_view())
             .group_by(OutboxAction.state))
    with store.session(readonly=True) as session:
        return Counter({state: int(n) for state, n in session.execute(query)})


def summary_line(counts: Counter[str], *, simulated: bool, marks: Palette = COLOUR,
                 read_only: bool = False) -> Text:
    """The status line above the queue: whether the store is read-only, the demo notice,
    and what the outbox needs."""
    line = Text()
    if read_only:
        line.append(f"{MARK}: browsing only", style=marks.read_only)
        line.append("  ")
    if simulated:
        line.append(DEMO_NOTICE, style=marks.demo)
        line.append("  ")
    parts = [(counts["needs_approval"], "waiting for a second approval"),
             (counts["failed"], "failed"), (counts["unknown"], "unknown: check at the source")]
    shown = [f"{n} {what}" for n, what in parts if n]
    if shown:
        line.append("outbox: " + " · ".join(shown) + "  (w to see them)", style="bold")
    elif not simulated:
        line.append("outbox: nothing needs you", style="dim")
    return line


def action_line(action: OutboxAction, team: TeamConfig | None,
                marks: Palette = COLOUR) -> Text:
    """One action for the detail pane: state, who approved, who it waits for, the error."""
    out = Text()
    out.append(f"outbox: {action.action} {state_label(action)}",
               style=marks.state(action.state, "yellow"))
    who = action.approved_by or "?"
    if action.second_approver:
        who += f" and {action.second_approver}"
    out.append(f"  approved by {strip_terminal_escapes(who)}", style="dim")
    if action.state == "needs_approval":
        out.append(f"; waiting for {waiting_for(team, action.approved_by)}")
    if action.last_error:
        out.append(f" ({strip_terminal_escapes(action.last_error)})")
    return out


def state_label(action: OutboxAction) -> str:
    if action.state == "needs_approval":
        return "needs approval"
    if action.state == "sent" and (action.posted_id or "").startswith("simulated-"):
        return "sent (simulated)"
    return action.state


def _age(when: datetime) -> str:
    return format_duration(utcnow() - when)


class OutboxScreen(Screen[None]):
    """The outbox: act on what waits for a person; Esc goes back to the queue."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("a", "approve", "Approve"),
        Binding("r", "retry", "Retry"),
        Binding("e", "edit", "Edit"),
        Binding("s", "resolve(True)", "Mark sent"),
        Binding("n", "resolve(False)", "Not sent"),
        Binding("x", "reject", "Reject"),
        Binding("o", "open_link", "Open link", show=False),  # so ? and Esc fit 80 columns
        Binding("question_mark", "help", "Help"),
        Binding("escape,w,q", "close", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[OutboxItem] = []
        #: A public reply held back for the private data it shows: (action id, text). The
        #: same key on the same text again approves it.
        self.held_reply: tuple[int, str] | None = None

    @property
    def triage(self) -> TriageApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="outbox-summary")
        yield RowTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="outbox-detail-box"):
            yield Static(id="outbox-detail")
        yield Label(Text("text (e to edit, a to approve the edited text)"), id="outbox-label")
        yield TextArea(id="outbox-text")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#outbox-table", DataTable)
        for name in ("id", "state", "action", "mention", "flag", "source", "approved by",
                     "age", "text"):
            table.add_column(name, key=name)
        self.query_one("#outbox-text", TextArea).read_only = self.triage.store.read_only
        self.reload()
        table.focus()
        # Other people approve and senders finish meanwhile; an edit in progress is kept.
        self.set_interval(self.triage.refresh_every, self.reload)

    # ------------------------------------------------------------------ data

    def reload(self, *, next_item: bool = False) -> None:
        """Re-read the outbox, keeping the selected action and an edit in progress; or,
        after acting on one (`next_item`), selecting what is now in its row."""
        table = self.query_one("#outbox-table", DataTable)
        marks = self.triage.palette
        selected = self.selected()
        row_before = table.cursor_row or 0
        self.items = outbox_items(self.triage.store)
        table.clear()
        for item in self.items:
            a = item.action
            by = a.approved_by or ""
            if a.second_approver:
                by += f" + {a.second_approver}"
            table.add_row(Text(str(a.id)), Text(state_label(a), style=marks.state(a.state)),
                          Text(a.action), Text(f"#{a.mention_id}"), Text(item.flag or ""),
                          Text(item.source), Text(strip_terminal_escapes(by)),
                          Text(_age(a.updated_at)),
                          Text(first_line(strip_terminal_escapes(a.text), 60)),
                          key=str(a.id))
        if next_item:
            index = min(row_before, max(len(self.items) - 1, 0))
        else:
            index = next((i for i, it in enumerate(self.items)
                          if selected and it.action.id == selected.action.id), 0)
        if self.items:
            table.move_cursor(row=index)
        counts = Counter(i.action.state for i in self.items)
        head = summary_line(counts, simulated=self.triage.simulated, marks=marks,
                            read_only=self.triage.store.read_only)
        if not self.items:
            head.append("  The outbox is empty: approve a reply in the queue (a).")
        self.query_one("#outbox-summary", Static).update(head)
        same = selected is not None and self.items and \
            self.items[index].action.id == selected.action.id
        self.show(self.items[index] if self.items else None, keep_edit=bool(same))

    def selected(self) -> OutboxItem | None:
        table = self.query_one("#outbox-table", DataTable)
        if not self.items or table.cursor_row is None or table.cursor_row >= len(self.items):
            return None
        return self.items[table.cursor_row]

    def show(self, item: OutboxItem | None, *, keep_edit: bool = False) -> None:
        self.refresh_bindings()  # the keys that apply follow the shown action's state
        box = self.query_one("#outbox-detail", Static)
        editor = self.query_one("#outbox-text", TextArea)
        if item is None:
            box.update(Text("Nothing in the outbox."))
            editor.text = ""
            return
        box.update(self.describe(item))
        if not (keep_edit and editor.has_focus):
            editor.text = strip_terminal_escapes(item.action.text)

    def describe(self, item: OutboxItem) -> Text:
        """The selected action in full, and the keys that apply to its state."""
        a = item.action
        marks = self.triage.palette
        out = Text()
        out.append(f"action {a.id}: {a.action} to #{a.mention_id} ", style="bold")
        out.append(state_label(a), style=marks.state(a.state))
        out.append(f"   {item.source}, {item.flag or 'unflagged'}, mention {item.mention_status}"
                   "\n")
        out.append("they wrote: ", style="dim")
        out.append(first_line(strip_terminal_escapes(item.mention_text), 160) + "\n")
        out.append("approved by: ", style="dim")
        out.append(strip_terminal_escapes(a.approved_by or "?"))
        if a.second_approver:
            out.append(" and " + strip_terminal_escapes(a.second_approver))
        if item.edited_by:
            out.append("   draft last edited by: ", style="dim")
            out.append(strip_terminal_escapes(item.edited_by))
        out.append(f"   attempts: {a.attempts}\n", style="dim")
        if a.last_error:
            out.append("message: ", style="dim")
            out.append(strip_terminal_escapes(a.last_error) + "\n",
                       style=marks.error if a.state == "failed" else "")
        out.append(self.hint(a), style="italic")
        return out

    def hint(self, a: OutboxAction) -> str:
        team = self.triage.config.team
        if a.state == "needs_approval":
            alone = (" In the demo you are the only person, so it stays waiting: this is how "
                     "a crisis reply waits for a second pair of eyes."
                     if self.triage.simulated and team is None else "")
            return (f"Waiting for {waiting_for(team, a.approved_by)} to approve (a). It is a "
                    "crisis reply: it is not sent until then. x rejects it; e edits it (your "
                    "edit then needs its own second approval)." + alone)
        if a.state == "failed":
            return ("r sends it again as it is; e then a approves an edited text as a new "
                    "action.")
        if a.state == "unknown":
            return ("It may have been posted: check at the source (o opens the mention), "
                    "then s if our answer is there, n if it is not (then r retries it).")
        if a.state in ("approved", "sending"):
            return "On its way: the sender sends it once."
        return ""

    # ------------------------------------------------------------------ events

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            wanted = int(event.row_key.value)
            self.show(next((i for i in self.items if i.action.id == wanted), None))

    # ------------------------------------------------------------------ actions

    def _done(self, message: str) -> None:
        self.app.notify(message, markup=False)
        self.query_one("#outbox-table", DataTable).focus()
        self.triage.send_approved()
        self.reload(next_item=True)

    def _attempt(self, step: Callable[[], object]) -> bool:
        """Run one outbox step; a refusal is shown, not raised."""
        try:
            step()
        except outbox.OutboxError as exc:
            self.triage.notify_refusal(exc)
            return False
        return True

    @writes
    def action_approve(self) -> None:
        item = self.selected()
        if item is None:
            return
        a = item.action
        if a.state not in ("needs_approval", "failed"):
            self.app.notify(f"Action {a.id} is {a.state}: nothing to approve.", markup=False)
            return
        text = self.query_one("#outbox-text", TextArea).text
        confirmed = self.held_reply == (a.id, text)
        check = None if confirmed else outbox.PrivateDataCheck(
            self.triage.config.brand.own_contacts(),
            hint="Edit it out (e), or press a again to post it anyway.")
        self.held_reply = None
        try:
            result = outbox.take_approval(
                self.triage.store, a.mention_id, a.action, operator=self.triage.operator,
                text=text, team=self.triage.config.team, simulated=self.triage.simulated,
                private_data=check)
        except outbox.ShowsPrivateData as exc:  # held: the same key again approves it
            self.held_reply = (a.id, text)
            self.app.notify(str(exc), severity="warning", markup=False, timeout=15)
            return
        except outbox.OutboxError as exc:
            self.triage.notify_refusal(exc)
            return
        self._done(result.describe(a.mention_id, a.action, self.triage.operator))

    @writes
    def action_retry(self) -> None:
        item = self.selected()
        if item is not None and self._attempt(lambda: outbox.retry(
                self.triage.store, item.action.id, operator=self.triage.operator)):
            self._done(f"Action {item.action.id} will be sent again.")

    @writes
    def action_resolve(self, posted: bool) -> None:
        item = self.selected()
        if item is not None and self._attempt(lambda: outbox.resolve_unknown(
                self.triage.store, item.action.id, operator=self.triage.operator,
                posted=posted)):
            self._done(f"Action {item.action.id} marked as "
                       + ("sent." if posted else "not sent: r retries it, e edits it."))

    @writes
    def action_reject(self) -> None:
        item = self.selected()
        if item is not None and self._attempt(lambda: outbox.reject(
                self.triage.store, item.action.id, operator=self.triage.operator)):
            self._done(f"Action {item.action.id} rejected; it will not be sent.")

    @writes
    def action_edit(self) -> None:
        self.query_one("#outbox-text", TextArea).focus()

    def action_open_link(self) -> None:
        item = self.selected()
        if item is not None and item.url:
            webbrowser.open(item.url)

    def action_close(self) -> None:
        editor = self.query_one("#outbox-text", TextArea)
        if editor.has_focus:  # Esc leaves the editor first, keeping the edit
            self.query_one("#outbox-table", DataTable).focus()
            return
        self.app.pop_screen()

    def action_help(self) -> None:
        from mentionwatch.tui.help import HelpScreen

        self.app.push_screen(HelpScreen(self.BINDINGS, title="Keys of the outbox",
                                        details=OUTBOX_DETAILS,
                                        messages=list(self.triage.messages)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While the text has the keyboard its letters type letters: the footer then offers
        only the way back (Esc), as the queue's does. Otherwise it offers the keys that apply
        to the selected action's state (a sent reply has nothing to approve or retry)."""
        if action == "close":
            return True
        if isinstance(self.focused, TextArea):
            return False
        states = _STATES_FOR.get(action)
        if states is None:
            return True
        item = self.selected()
        return item is not None and item.action.state in states


#: The states of the selected action each key applies to (the outbox module refuses the
#: others); a key not named here always applies.
_STATES_FOR: dict[str, frozenset[str]] = {
    "approve": frozenset(("needs_approval", "failed")),
    "edit": frozenset(("needs_approval", "failed")),
    "retry": frozenset(("failed",)),
    "resolve": frozenset(("unknown",)),
    "reject": frozenset(("needs_approval",)),
}


#: What the outbox's keys do, for its help screen (?): by action, as help.DETAILS.
OUTBOX_DETAILS = {
    "approve": "The second approval of a waiting crisis reply, or an edited text as a new "
               "action. A public reply whose text shows an email address, a phone, order "
               "or card number (not the brand's own) is held: edit it out, or a again.",
    "retry": "Send a failed action again, as it is.",
    "edit": "Edit the action's text (Esc back); then a approves it as a new action.",
    "resolve(True)": "An unknown action that is there at the source: mark it as sent.",
    "resolve(False)": "An unknown action that is not there: mark it as not sent (then r "
                      "retries it).",
    "reject": "Reject a waiting action: it is not sent.",
    "open_link": "Open the mention at the source, to check an unknown send.",
    "help": "This screen.",
    "close": "Back to the queue.",
}

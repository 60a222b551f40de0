"""`mentionwatch tui`: the approval queue for PR staff.

The most urgent flagged mention first; its whole text, author, why it was flagged and the case
history beside it; the drafts editable in place; one key to approve, dismiss or open. User
text is always rendered as inert `rich.text.Text`: markup and escapes show literally.
"""

from __future__ import annotations

import webbrowser
from datetime import timedelta
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Input, Label, Static, TextArea

from mentionwatch import outbox
from mentionwatch.config import Config, TeamConfig
from mentionwatch.durations import format_duration
from mentionwatch.models import utcnow
from mentionwatch.store import Store
from mentionwatch.team import current_operator
from mentionwatch.text import first_line, strip_terminal_escapes
from mentionwatch.tui.outbox_view import OutboxScreen, action_line, outbox_counts, summary_line
from mentionwatch.tui.queries import Detail, QueueRow, detail, flag_counts, queue

FLAG_STYLE = {"crisis": "bold white on red", "complaint": "bold red", "question": "cyan",
              "praise": "green"}
FILTERS: tuple[str | None, ...] = (None, "crisis", "complaint", "question", "praise")


def safe(value: str | None) -> str:
    """User text for display: stored text is already clean, but a screen must never pass an
    escape sequence to the terminal, whatever reached the database."""
    return strip_terminal_escapes(value or "")


def age_text(row: QueueRow) -> Text:
    """Age, amber past 30 minutes and red past an hour: answering fast is the point."""
    age = utcnow() - row.created_at
    style = "bold red" if age > timedelta(hours=1) else (
        "yellow" if age > timedelta(minutes=30) else "")
    return Text(format_duration(age), style=style)


class TriageApp(App[None]):
    """Queue on the left, the selected mention and its drafts on the right."""

    CSS_PATH = "app.tcss"
    TITLE = "mentionwatch"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("a", "approve('reply')", "Approve reply"),
        Binding("p", "approve('private')", "Approve private"),
        Binding("b", "approve('both')", "Approve both"),
        Binding("e", "edit", "Edit draft"),
        Binding("d", "dismiss('not relevant')", "Dismiss"),
        Binding("s", "dismiss('spam')", "Spam"),
        Binding("h", "dismiss('handled elsewhere')", "Handled elsewhere", show=False),
        Binding("u", "undo", "Undo dismiss"),
        Binding("o", "open_link", "Open link"),
        Binding("f", "cycle_filter", "Filter"),
        Binding("slash", "search", "Search"),
        Binding("r", "refresh", "Refresh"),
        Binding("t", "stats", "Stats"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back_to_queue", "Back to queue", show=False),
        Binding("w", "outbox", "Outbox"),
    ]

    def __init__(self, config: Config, store: Store, *, mention_id: int | None = None,
                 refresh_every: float = 10.0, connector_for: Any = None,
                 simulated: bool = False) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.operator = current_operator(config)  # with a [team], must be one of it
        self.refresh_every = refresh_every
        self.filter_index = 0
        self.search_text: str | None = None
        self.rows: list[QueueRow] = []
        self.current: Detail | None = None
        self.focus_mention = mention_id
        self.last_dismissed: tuple[int, str] | None = None
        self.connector_for = connector_for
        #: The demo: approved replies go to a simulated sender, and the screen says so.
        self.simulated = simulated
        if simulated:
            self.connector_for = outbox.SimulatedConnector

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="outbox-bar")
        yield Static(id="counts")
        with Horizontal():
            with Vertical(id="left"):
                yield Input(placeholder="search text and authors (Enter)", id="search")
                yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
            with Vertical(id="right"):
                with VerticalScroll(id="detail-box"):
                    yield Static(id="detail")
                with Horizontal(id="drafts"):
                    with Vertical():
                        yield Label(id="public-label")
                        yield TextArea(id="public")
                    with Vertical():
                        yield Label(id="private-label")
                        yield TextArea(id="private")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        for name in ("flag", "prio", "source", "author", "age", "text"):
            table.add_column(name, key=name)
        self.query_one("#search", Input).display = False
        self.reload()
        table.focus()
        self.set_interval(self.refresh_every, self.reload)

    # ------------------------------------------------------------------ data

    def reload(self) -> None:
        """Re-read the queue, keeping the selected mention and any draft being edited."""
        table = self.query_one("#queue", DataTable)
        selected = self.selected_id()
        self.rows = queue(self.store, flag=FILTERS[self.filter_index], search=self.search_text)
        table.clear()
        for row in self.rows:
            who = Text(safe(row.author) or "?")
            if row.followers is not None:
                who.append(f" ({row.followers:,})", style="dim")
            table.add_row(Text(row.flag or "", style=FLAG_STYLE.get(row.flag or "", "")),
                          Text(f"{row.priority:.2f}"), Text(row.source), who, age_text(row),
                          Text(first_line(safe(row.title or row.text), 80)),
                          key=str(row.id))
        wanted = self.focus_mention or selected
        self.focus_mention = None
        index = next((i for i, r in enumerate(self.rows) if r.id == wanted), 0)
        if self.rows:
            table.move_cursor(row=index)
        self.update_counts()
        self.show(self.rows[index].id if self.rows else None,
                  keep_edits=wanted == selected and selected is not None)

    def update_counts(self) -> None:
        counts = flag_counts(self.store)
        line = Text()
        for flag in FILTERS[1:]:
            line.append(f" {flag} {counts.get(flag or '', 0)} ", style=FLAG_STYLE.get(flag or ""))
        line.append(f"   filter: {FILTERS[self.filter_index] or 'all'}")
        if self.search_text:
            line.append("   search: ")
            line.append(safe(self.search_text))
        line.append(f"   operator: {self.operator}", style="dim")
        self.query_one("#counts", Static).update(line)
        self.update_outbox_bar()

    def selected_id(self) -> int | None:
        table = self.query_one("#queue", DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row].id

    def show(self, mention_id: int | None, *, keep_edits: bool = False) -> None:
        box = self.query_one("#detail", Static)
        public = self.query_one("#public", TextArea)
        private = self.query_one("#private", TextArea)
        self.current = detail(self.store, mention_id) if mention_id is not None else None
        if self.current is None:
            box.update(Text("Nothing needs an answer. New mentions appear here as they "
                            "are polled."))
            public.text = private.text = ""
            return
        box.update(render_detail(self.current, self.config.team))
        editing = keep_edits and (public.has_focus or private.has_focus)
        if not editing:
            draft = self.current.draft
            public.text = safe(draft.public_text if draft else "")
            private.text = safe(draft.private_text if draft else "")
        self.update_lengths()

    def update_lengths(self) -> None:
        if self.current is None:
            return
        from mentionwatch.rules_engine import reply_limit

        limit = reply_limit(self.current.mention.source.kind)
        public = self.query_one("#public", TextArea).text
        label = Text(f"public reply  {len(public)}" + (f"/{limit}" if limit else ""))
        if limit and len(public) > limit:
            label.stylize("bold red")
        self.query_one("#public-label", Label).update(label)
        channel = self.current.draft.private_channel if self.current.draft else None
        self.query_one("#private-label", Label).update(
            Text(f"private follow-up ({channel or 'dm'})"))

    # ------------------------------------------------------------------ events

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.show(int(event.row_key.value))

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self.update_lengths()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_text = event.value.strip() or None
        event.input.display = False
        self.query_one("#queue", DataTable).focus()
        self.reload()

    # ------------------------------------------------------------------ actions

    def action_approve(self, which: str) -> None:
        if self.current is None:
            return
        mention_id = self.current.mention.id
        kinds = ("reply", "private") if which == "both" else (which,)
        edited = {"reply": self.query_one("#public", TextArea).text,
                  "private": self.query_one("#private", TextArea).text}
        approved = []
        for kind in kinds:
            try:
                result = outbox.take_approval(
                    self.store, mention_id, kind, operator=self.operator, text=edited[kind],
                    team=self.config.team, simulated=self.simulated)
                approved.append(kind)
            except outbox.OutboxError as exc:
                self.notify(str(exc), severity="error", markup=False)
                continue
            self.notify(result.describe(mention_id, kind, self.operator), markup=False,
                        severity="warning" if result.state == "needs_approval"
                        else "information")
        if approved:
            self.send_approved()
            self.reload()

    @work(thread=True, exclusive=True)
    def send_approved(self) -> None:
        from mentionwatch.pipeline import build_connector

        factory = self.connector_for or (lambda source: build_connector(source, self.config))
        for result in outbox.send_pending(self.config, self.store, connector_for=factory,
                                          simulated=self.simulated):
            message = f"#{result.mention_id} {result.action}: {result.state}"
            if self.simulated and result.state == "sent":
                message += " (simulated: nothing was posted)"
            if result.message:
                message += f" ({result.message})"
            self.call_from_thread(self.notify, message, markup=False,
                                  severity="error" if result.state != "sent" else "information")
        self.call_from_thread(self.after_send)  # answered mentions leave the queue

    def action_dismiss(self, reason: str) -> None:
        if self.current is None:
            return
        mention = self.current.mention
        outbox.mark(self.store, mention.id, "dismissed", operator=self.operator, reason=reason)
        self.last_dismissed = (mention.id, mention.status)
        self.notify(f"Dismissed #{mention.id} ({reason}). Press u to undo.", markup=False)
        self.reload()

    def action_undo(self) -> None:
        if self.last_dismissed is None:
            return
        mention_id, status = self.last_dismissed
        self.store.set_status(mention_id, status, actor=self.operator, event="undo_dismiss")
        self.last_dismissed = None
        self.focus_mention = mention_id
        self.reload()

    def action_edit(self) -> None:
        self.query_one("#public", TextArea).focus()

    def action_open_link(self) -> None:
        if self.current and self.current.mention.url:
            webbrowser.open(self.current.mention.url)

    def action_cycle_filter(self) -> None:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
        self.reload()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    def action_stats(self) -> None:
        from mentionwatch.tui.stats import StatsScreen

        self.push_screen(StatsScreen(self.store))

    def action_back_to_queue(self) -> None:
        """Leave the draft editor (edits are kept) or the search box."""
        self.query_one("#search", Input).display = False
        self.query_one("#queue", DataTable).focus()

    def action_refresh(self) -> None:
        self.reload()

    def action_help(self) -> None:
        self.notify("a approve reply (or give the second approval) · p approve private · "
                    "b both · e edit draft (Esc back) · w outbox: second approvals, failed and "
                    "unknown sends (retry, edit, mark sent / not sent) · "
                    "d dismiss · s spam · h handled elsewhere · u undo dismiss · o open link · "
                    "f filter by flag · / search · r refresh · t stats · q quit",
                    timeout=15, markup=False)

    # ------------------------------------------------------------------ outbox and identity

    def action_outbox(self) -> None:
        """Second approvals, failed and unknown sends: the outbox view."""
        self.push_screen(OutboxScreen())

    def after_send(self) -> None:
        """The sender finished a pass: refresh the queue and an open outbox view."""
        self.reload()
        if isinstance(self.screen, OutboxScreen):
            self.screen.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Queue keys act on the queue's selection: off (and out of the footer) while
        another view such as the outbox or the stats is on top."""
        on_queue = len(self.screen_stack) <= 1
        return on_queue or action == "quit" or action not in _queue_actions()

    def update_outbox_bar(self) -> None:
        self.query_one("#outbox-bar", Static).update(
            summary_line(outbox_counts(self.store), simulated=self.simulated))


def _queue_actions() -> set[str]:
    """The action names bound by the queue's own keys (without their arguments)."""
    names = set()
    for binding in TriageApp.BINDINGS:
        action = binding.action if isinstance(binding, Binding) else binding[1]
        names.add(action.partition("(")[0])
    return names


def render_detail(d: Detail, team: TeamConfig | None = None) -> Text:
    """The whole mention as inert text: body, link, author, engagement, why, history."""
    m = d.mention
    out = Text()
    out.append(f"#{m.id} ", style="bold")
    out.append(m.flag or "unflagged", style=FLAG_STYLE.get(m.flag or "", "bold"))
    out.append(f"  priority {m.priority:.2f}  {m.source.name}\n")
    if m.title:
        out.append(safe(m.title) + "\n", style="bold")
    out.append(safe(m.text) + "\n\n")
    if m.url:
        out.append("link: ", style="dim")
        out.append(safe(m.url) + "\n")
    author = m.author
    out.append("author: ", style="dim")
    out.append(safe(m.author_handle) or "?")
    if author is not None:
        if author.display_name:
            out.append(f" ({safe(author.display_name)})")
        if author.followers is not None:
            out.append(f", {author.followers:,} followers")
        if author.verified:
            out.append(", verified")
    out.append(f"\nengagement: {m.likes} likes, {m.reposts} reposts, {m.replies} replies\n",
               style="dim")
    if d.matches:
        out.append("why flagged:\n", style="bold")
        for r in d.matches:
            why = "; ".join(f"{k}: {v}" for k, v in (r.explanation or {}).items())
            out.append(f"  {r.pack}/{r.rule} ({r.flag}, severity {r.severity:.2f}) "
                       f"{safe(why)}\n")
    for action in d.actions:
        out.append_text(action_line(action, team))
        out.append("\n")
    if d.history:
        out.append("earlier from this author:\n", style="bold")
        for earlier, sent in d.history:
            out.append(f"  #{earlier.id} {earlier.flag or ''} {earlier.status}: ")
            out.append(first_line(safe(earlier.text), 70) + "\n")
            for s in sent:
                out.append("    we said: ", style="dim")
                out.append(first_line(safe(s.text), 70) + "\n")
    return out

"""`mentionwatch tui`: the approval queue for PR staff.

The most urgent flagged mention first; its whole text, author, why it was flagged and the case
history beside it; the drafts editable in place; one key to approve, dismiss or open. User
text is always rendered as inert `rich.text.Text`: markup and escapes show literally.
"""

from __future__ import annotations

import webbrowser
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, Input, Label, Static, TextArea

from mentionwatch import outbox, privacy, triage
from mentionwatch.config import Config, TeamConfig
from mentionwatch.durations import format_duration
from mentionwatch.errors import MentionwatchError
from mentionwatch.judgement import explanation_lines, reasons_text
from mentionwatch.models import utcnow
from mentionwatch.store import Store
from mentionwatch.team import current_operator
from mentionwatch.text import first_line, one_line, strip_terminal_escapes
from mentionwatch.tui import read_only
from mentionwatch.tui.help import MESSAGES_KEPT, Said
from mentionwatch.tui.outbox_view import OutboxScreen, action_line, outbox_counts, summary_line
from mentionwatch.tui.prompt import PromptScreen
from mentionwatch.tui.queries import (
    OPEN_STATUSES,
    PAGE_SIZE,
    VIEWS,
    Detail,
    QueueFilter,
    QueueKey,
    QueueRow,
    detail,
    flag_counts,
    queue,
    source_names,
)
from mentionwatch.tui.rows import RowTable
from mentionwatch.tui.styles import COLOUR, Palette, palette

T = TypeVar("T")
FILTERS: tuple[str | None, ...] = (None, "crisis", "complaint", "question", "praise")
#: From this many columns the queue and the mention are side by side; below, stacked (the
#: queue's text column needs the width).
WIDE = 160
#: How many toasts are on screen at most, on a screen under 30 rows and on a taller one.
TOASTS_SHORT, TOASTS = 2, 4
#: The share of a wide screen the queue has beside the mention (app.tcss: `.-wide #left`).
QUEUE_SHARE = 0.55
#: The queue's columns by its width, the narrowest first: (up to this width, columns).
#: Where it is short, the source (the mention's pane names it) and then the priority (the
#: order already is the priority) make way for the text, and flags and audiences are written
#: short: a split screen of 70 or 80 columns shows 35 to 45 characters of what people wrote.
COLUMNS = ((85, ("flag", "author", "age", "who", "text")),
           (100, ("flag", "prio", "author", "age", "who", "text")),
           (None, ("flag", "prio", "source", "author", "age", "who", "text")))
#: Flag names where the width is short: the counts line and a compact queue.
SHORT_FLAG = {"crisis": "crisis", "complaint": "compl", "question": "quest", "praise": "praise"}


@dataclass(frozen=True, slots=True)
class CountsWords:
    """The words of the counts line, in one of its lengths."""

    short_flags: bool
    sep: str
    flag: str
    source: str
    status: str
    mine: str
    search: str
    operator: str


#: The counts line in full, then shorter, until it fits one row (see counts_line).
COUNTS_WORDS = (
    CountsWords(False, "   ", "filter: ", "source: ", "status: ", "assigned to me", "search: ",
                "operator: "),
    CountsWords(True, "  ", "flag: ", "source: ", "status: ", "mine", "search: ", "op: "),
    CountsWords(True, " ", "flag:", "src:", "status:", "mine", "/", "op:"),
)


def safe(value: str | None) -> str:
    """User text for display: stored text is already clean, but a screen must never pass an
    escape sequence to the terminal, whatever reached the database."""
    return strip_terminal_escapes(value or "")


def age_text(row: QueueRow, now: datetime, marks: Palette = COLOUR) -> Text:
    """Age, amber past 30 minutes and red past an hour: answering fast is the point."""
    age = now - row.created_at
    style = marks.overdue if age > timedelta(hours=1) else (
        marks.late if age > timedelta(minutes=30) else "")
    return Text(format_duration(age), style=style)


@dataclass(frozen=True, slots=True)
class Undoable:
    """A mention as it was before a key took it off the queue, for `u` to put back if
    nobody changed it since."""

    mention_id: int
    status: str
    #: The status the key set, and the id of the audit event it wrote: `u` undoes only
    #: while the mention is still so and no one has done anything to it after that event.
    marked: str
    event_id: int
    #: It had no first response before ("answered elsewhere" gives it one).
    unanswered: bool = False
    #: The audit event of the undo ("undo_dismiss" also tells `rules train` to forget it).
    event: str = "undo_dismiss"
    #: Its drafts as edited here and not approved, kept while it was closed.
    edits: dict[str, str] | None = None


class MentionPane(VerticalScroll):
    """The selected mention and its drafts, in one scrolling pane."""

    def on_resize(self, _event: events.Resize) -> None:
        # A new size can change the layout (stacked or side by side): keep the draft being
        # typed in on screen.
        focused = self.screen.focused
        if focused is not None and self in focused.ancestors:
            self.call_after_refresh(self.scroll_to_widget, focused, animate=False)


class TriageApp(App[None]):
    """Queue on the left, the selected mention and its drafts on the right; on a screen
    narrower than WIDE, the queue on top and the mention with its drafts below it."""

    CSS_PATH = "app.tcss"
    TITLE = "mentionwatch"
    #: Classes the screens get by width and height (see app.tcss): below `-wide` the panes
    #: are stacked, and below `-medium` the two drafts too.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    # The footer shows the keys used on every mention, few enough to fit 70 columns with `?`
    # (the help screen lists every key, in this order); the rest have show=False.
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("a", "approve('reply')", "Approve"),
        Binding("p", "approve('private')", "Private"),
        Binding("b", "approve('both')", "Both", show=False),
        Binding("e", "edit", "Edit"),
        Binding("ctrl+o", "external_edit", "$EDITOR", show=False),
        Binding("d", "dismiss('not relevant')", "Dismiss"),
        Binding("s", "dismiss('spam')", "Spam", show=False),
        Binding("h", "replied_elsewhere", "Answered elsewhere", show=False),
        Binding("x", "resolve", "Resolve", show=False),
        Binding("z", "snooze", "Snooze", show=False),
        Binding("g", "assign", "Assign", show=False),
        Binding("u", "undo", "Undo"),
        Binding("o", "open_link", "Open", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("f", "cycle_filter", "Flag", show=False),
        Binding("c", "cycle_source", "Source", show=False),
        Binding("v", "cycle_view", "Status", show=False),
        Binding("m", "toggle_mine", "Mine", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("w", "outbox", "Outbox", show=False),
        Binding("t", "stats", "Stats", show=False),
        Binding("escape", "back_to_queue", "Back"),  # in the footer off the queue only
        Binding("question_mark", "help", "Help"),
        # Its own action name so that it can leave the footer while a draft is typed in
        # (q types a q there); ctrl+q, Textual's "quit", quits from anywhere.
        Binding("q", "leave", "Quit"),
    ]

    def __init__(self, config: Config, store: Store, *, mention_id: int | None = None,
                 refresh_every: float = 10.0, connector_for: Any = None,
                 simulated: bool = False, page_size: int = PAGE_SIZE,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__()
        #: The marks for flags, late answers and long drafts; without colour under NO_COLOR.
        self.palette = palette(self.no_color)
        self.config = config
        self.store = store
        self.operator = current_operator(config)  # with a [team], must be one of it
        self.refresh_every = refresh_every
        self.filter_index = 0
        self.search_text: str | None = None
        self.rows: list[QueueRow] = []
        self.current: Detail | None = None
        self.focus_mention = mention_id
        #: What `u` brings back, the last first.
        self.undo_stack: list[Undoable] = []
        self.connector_for = connector_for
        #: The demo: approved replies go to a simulated sender, and the screen says so.
        self.simulated = simulated
        if simulated:
            self.connector_for = outbox.SimulatedConnector
        self.page_size = page_size
        #: What "now" is for snoozes; tests move it instead of sleeping.
        self.clock = clock
        self.more = False  # the queue has rows past the loaded pages
        self.source_index = 0
        self.view_index = 0
        self.only_mine = False
        #: Drafts changed here and not yet approved, by mention id and kind, so moving
        #: around and refreshing never lose an edit in progress.
        self.edits: dict[int, dict[str, str]] = {}
        self.sources: list[str | None] = [None]
        self.shown_filter: QueueFilter | None = None
        #: The queue's flag counts as last read, and the columns it shows (COLUMNS).
        self.counts: dict[str, int] = {}
        self.columns: tuple[str, ...] = ()
        #: What the toasts said, the newest first, for the help screen (?).
        self.messages: deque[Said] = deque(maxlen=MESSAGES_KEPT)
        #: When a key was last told that the store is read-only (read_only.tell).
        self.read_only_told_at = float("-inf")
        #: The public reply held back because it shows private data (mention id, text): the
        #: same key again on the same text posts it anyway.
        self.held_reply: tuple[int, str] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="outbox-bar")
        yield Static(id="counts")
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                yield Input(placeholder="search text and authors (Enter)", id="search")
                yield RowTable(id="queue", cursor_type="row", zebra_stripes=True)
            # One scrolling pane: on a wide screen the drafts are docked at its foot while
            # the mention scrolls above them; on a small one everything scrolls in turn.
            with MentionPane(id="right"):
                yield Static(id="detail")
                with Horizontal(id="drafts"):
                    with Vertical(classes="draft"):
                        yield Label(id="public-label")
                        yield TextArea(id="public")
                    with Vertical(classes="draft"):
                        yield Label(id="private-label")
                        yield TextArea(id="private")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        self.fit_to_width()
        self.query_one("#search", Input).display = False
        for _, area in self.draft_areas():
            area.read_only = self.store.read_only  # browsing: nothing typed to lose on q
        self.sources = [None, *source_names(self.store)]
        self.reload()
        table.focus()
        self.set_interval(self.refresh_every, self.reload)
        self.screen_change_signal.subscribe(self, self.on_screen_changed)

    # ------------------------------------------------------------------ data

    def reload(self) -> None:
        """Re-read the queue, keeping the selected mention and any draft being edited."""
        if not self.on_queue_screen():
            return  # help, stats or a prompt is on top; the next refresh catches up
        self.fit_to_width()  # the terminal may have been resized meanwhile
        table = self.query_one("#queue", DataTable)
        selected = self.selected_id()
        if self.current_filter() != self.shown_filter:
            self.start_over()
        old_index = table.cursor_row if self.rows else 0
        self.rows = self.read_queue(selected)
        table.clear()
        self.add_rows(self.rows)
        wanted = self.focus_mention or selected
        self.focus_mention = None
        # A row that left (resolved, snoozed) hands the cursor to the one after it.
        index = next((i for i, r in enumerate(self.rows) if r.id == wanted),
                     min(old_index, max(len(self.rows) - 1, 0)))
        if self.rows:
            table.move_cursor(row=index)
        self.update_counts()
        self.show(self.rows[index].id if self.rows else None,
                  keep_edits=wanted == selected and selected is not None)

    def update_counts(self) -> None:
        self.counts = flag_counts(self.store, self.clock())
        self.show_counts()
        self.update_outbox_bar()

    def show_counts(self, width: int | None = None) -> None:
        self.query_one("#counts", Static).update(counts_line(
            self.counts, self.current_filter(), self.operator, width or self.size.width,
            self.palette))

    def on_resize(self, event: events.Resize) -> None:
        if self.on_queue_screen():  # else reload() fits the queue on the way back
            self.fit_to_width(event.size.width)
            self.show_counts(event.size.width)

    def fit_to_width(self, width: int | None = None) -> None:
        """The queue's columns for its width (COLUMNS): fewer and narrower ones on a small
        screen, so that the text column is in view. A change re-draws the rows."""
        width = width or self.size.width
        if width >= WIDE:
            width = int(width * QUEUE_SHARE)
        columns = next(names for most, names in COLUMNS if most is None or width < most)
        if columns == self.columns:
            return
        self.columns = columns
        table = self.query_one("#queue", DataTable)
        selected = table.cursor_row
        table.clear(columns=True)
        for name in columns:
            table.add_column(name, key=name)
        if self.rows:
            self.add_rows(self.rows)
            table.move_cursor(row=selected)

    def selected_id(self) -> int | None:
        table = self.query_one("#queue", DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row].id

    def show(self, mention_id: int | None, *, keep_edits: bool = False) -> None:
        box = self.query_one("#detail", Static)
        public = self.query_one("#public", TextArea)
        private = self.query_one("#private", TextArea)
        before = self.current.mention.id if self.current else None
        self.current = detail(self.store, mention_id) if mention_id is not None else None
        if mention_id != before:  # another mention: read it from its first line
            self.query_one("#right", VerticalScroll).scroll_home(animate=False)
        if self.current is None:
            box.update(Text(self.empty_message()))
            public.text = private.text = ""
            return
        box.update(render_detail(self.current, self.config.team, self.clock(), self.palette,
                                 own_contacts=self.config.brand.own_contacts()))
        editing = keep_edits and (public.has_focus or private.has_focus)
        if not editing:
            kept = self.edits.get(self.current.mention.id, {})
            for area, kind in ((public, "reply"), (private, "private")):
                wanted = kept.get(kind, self.drafted(kind))
                if area.text != wanted:  # re-setting the same text would move the cursor
                    area.text = wanted
        self.update_lengths()

    def update_lengths(self) -> None:
        if self.current is None:
            return
        from mentionwatch.outbox import mention_ref
        from mentionwatch.rules_engine import measure_private, measure_reply

        mention = self.current.mention
        public = self.query_one("#public", TextArea).text
        # As approval counts it: as posted (Mastodon's @author), against the source's limit.
        length, limit = measure_reply(mention.source.kind, public, mention_ref(mention),
                                      mention.source.state)
        label = Text(f"public reply  {length}" + (f"/{limit}" if limit else ""))
        if limit and length > limit:
            # Said in words as well: a colour alone is lost to NO_COLOR and to some eyes.
            label.append(f"  over by {length - limit}")
            label.stylize(self.palette.over_limit)
        if self.current.mention.id in self.edits:
            label.append("  edited, not approved yet", style=self.palette.edited)
        self.query_one("#public-label", Label).update(label)
        channel = self.current.draft.private_channel if self.current.draft else None
        private = self.query_one("#private", TextArea).text
        length, limit = measure_private(mention.source.kind, private, mention_ref(mention),
                                        mention.source.state)
        label = Text(f"private follow-up ({channel or 'dm'})")
        if limit and length > limit:
            # Only when over: a direct message's 10,000 is no news on every screen.
            label.append(f"  {length}/{limit}  over by {length - limit}")
            label.stylize(self.palette.over_limit)
        self.query_one("#private-label", Label).update(label)

    # ------------------------------------------------------------------ events

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.show(int(event.row_key.value))
        if event.cursor_row >= len(self.rows) - 1:
            self.load_more()

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        if not self.on_queue_screen():
            return
        self.remember_edits()
        self.update_lengths()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_text = event.value.strip() or None
        event.input.display = False
        self.query_one("#queue", DataTable).focus()
        self.reload()

    # ------------------------------------------------------------------ actions

    @read_only.writes
    def action_approve(self, which: str) -> None:
        if self.catch_up(approving=True) or self.current is None:
            return
        mention_id = self.current.mention.id
        kinds = ("reply", "private") if which == "both" else (which,)
        edited = {"reply": self.query_one("#public", TextArea).text,
                  "private": self.query_one("#private", TextArea).text}
        if "reply" in kinds and self.hold_private_reply(mention_id, edited["reply"], which):
            return  # `b` waits whole: its follow-up is not sent without the reply
        approved = []
        for kind in kinds:
            try:
                result = outbox.take_approval(
                    self.store, mention_id, kind, operator=self.operator, text=edited[kind],
                    team=self.config.team, simulated=self.simulated)
                approved.append(kind)
                self.edits.get(mention_id, {}).pop(kind, None)
            except outbox.CannotPost as exc:
                self.notify(f"#{exc.mention_id}: {exc.kind} sources have no posting: answer "
                            "at the source (o), then h", severity="warning", markup=False,
                            detail=cannot_post_message(exc))
                break  # the follow-up of `b` has nowhere to go either
            except outbox.OutboxError as exc:
                self.notify_refusal(exc)
                continue
            self.notify(result.describe(mention_id, kind, self.operator), markup=False,
                        severity="warning" if result.state == "needs_approval"
                        else "information")
        if not self.edits.get(mention_id):
            self.edits.pop(mention_id, None)
        if approved:
            self.send_approved()
            self.reload()

    def hold_private_reply(self, mention_id: int, text: str, which: str) -> bool:
        """Whether to hold back a public reply that shows private data (an email address, a
        phone, order or card number: what a customer posted, pasted into the reply): the
        first press says what it found, masked; the same key again on the same text posts
        it. The private follow-up is not checked: it goes to a private channel."""
        found = privacy.private_data(text, self.config.brand.own_contacts())
        if not found or self.held_reply == (mention_id, text):
            self.held_reply = None
            return False
        self.held_reply = (mention_id, text)
        key = approve_key(which)
        self.notify(f"#{mention_id} not approved yet: the public reply shows "
                    f"{privacy.describe(found)}. Edit it out, or press {key} again to post "
                    "it anyway.", severity="warning", markup=False, timeout=15)
        return True

    @work(thread=True, exclusive=True)
    def send_approved(self) -> None:
        from mentionwatch.pipeline import build_connector

        factory = self.connector_for or (lambda source: build_connector(source, self.config))
        for result in outbox.send_pending(self.config, self.store, connector_for=factory,
                                          simulated=self.simulated):
            message = f"#{result.mention_id} {result.action}: {result.state}"
            if self.simulated and result.state == "sent":
                message += " (simulated: nothing was posted)"
            detail = None
            if result.message:  # its first line; all of it under ? (and in the outbox view)
                first, _, rest = result.message.strip().partition("\n")
                detail = f"{message} ({result.message})" if rest else None
                message += f" ({first})"
            self.call_from_thread(self.notify, message, markup=False, detail=detail,
                                  severity="error" if result.state != "sent" else "information")
        self.call_from_thread(self.after_send)  # answered mentions leave the queue

    @read_only.writes
    def action_dismiss(self, reason: str) -> None:
        self.catch_up()
        if self.current is None:
            return
        mention = self.current.mention
        event_id = outbox.mark(self.store, mention.id, "dismissed", operator=self.operator,
                               reason=reason)
        self.undo_stack.append(Undoable(mention.id, mention.status, "dismissed", event_id))
        self.notify(f"Dismissed #{mention.id} ({reason}). Press u to undo.", markup=False)
        self.reload()

    @read_only.writes
    def action_replied_elsewhere(self) -> None:
        """Answered outside mentionwatch (on a forum, by phone): counted as answered in the
        reports, as `mentionwatch replied-elsewhere` does."""
        self.catch_up()
        if self.current is None:
            return
        mention = self.current.mention
        event_id = outbox.mark(self.store, mention.id, "replied_elsewhere",
                               operator=self.operator)
        self.undo_stack.append(Undoable(mention.id, mention.status, "replied_elsewhere",
                                        event_id, unanswered=mention.first_response_at is None))
        self.notify(f"#{mention.id} marked as answered elsewhere. Press u to undo.",
                    markup=False)
        self.reload()

    @read_only.writes
    def action_undo(self) -> None:
        if not self.undo_stack:
            self.notify("Nothing to undo: u brings back what you dismissed, resolved or "
                        "marked as answered elsewhere in this session.", markup=False)
            return
        undo = self.undo_stack.pop()
        mention_id = undo.mention_id
        if undo.edits:  # kept even if it cannot be reopened: q saves them in the drafts
            self.edits[mention_id] = dict(undo.edits)
        try:
            triage.undo_mark(self.store, mention_id, marked=undo.marked,
                             event_id=undo.event_id, restore=undo.status,
                             operator=self.operator, event=undo.event,
                             unanswered=undo.unanswered)
        except triage.TriageError as exc:  # someone else changed it meanwhile
            self.notify(exc.message, severity="warning", markup=False, timeout=10)
            self.reload()
            return
        self.focus_mention = mention_id
        self.notify(f"#{mention_id} is back in the queue." if undo.status in OPEN_STATUSES
                    else f"#{mention_id} is {undo.status} again.", markup=False)
        self.reload()

    @read_only.writes
    def action_edit(self) -> None:
        self.query_one("#public", TextArea).focus()

    def action_open_link(self) -> None:
        if self.current is None:
            return
        url = self.current.mention.url
        if not url:
            self.notify("This mention has no link.", markup=False)
        elif webbrowser.open(url):
            self.notify(f"Opened {url} in the browser.", markup=False)
        else:  # a server without a browser: at least show where it is
            self.notify(f"No browser to open here; the link is {url}", markup=False,
                        timeout=30)

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

    async def action_leave(self) -> None:
        """q on the queue: quit as ctrl+q does."""
        await self.action_quit()

    async def action_quit(self) -> None:
        """Quit, keeping in the drafts whatever was typed and not approved (an `edit` audit
        event each); if they cannot be written, say so and stay open."""
        self.remember_edits()
        if self.edits:
            try:
                outbox.save_draft_edits(self.store, self.edits, operator=self.operator)
            except Exception as exc:  # a locked or unreachable database: lose nothing
                self.notify(f"Could not keep your unapproved edits ({type(exc).__name__}: "
                            f"{exc}). Try q again, or approve or copy them first.",
                            severity="error", markup=False, timeout=15)
                return
            self.edits.clear()
        self.exit()

    def action_help(self) -> None:
        from mentionwatch.tui.help import HelpScreen

        self.push_screen(HelpScreen(self.BINDINGS, notice=read_only.reason(self.store)
                                    if self.store.read_only else None,
                                    messages=list(self.messages)))

    # ------------------------------------------------- paging, filters, triage keys

    def on_queue_screen(self) -> bool:
        """Whether the queue is the active screen. `query_one` looks at the active screen
        only: under the help, the stats or a prompt (or while closing) the queue is not
        there to update, and its keys must wait."""
        return (bool(self.screen_stack) and self.screen is self.screen_stack[0]
                and bool(self.screen.query("#queue")))

    def catch_up(self, *, approving: bool = False) -> bool:
        """A key can arrive before the cursor's move has reached the detail pane (a quick
        "down x"): show the mention under the cursor first, so the key acts on the row the
        person sees selected. An approval stops there (True): the drafts on screen were
        another mention's a moment ago, and nothing is sent that was not read."""
        selected = self.selected_id()
        if selected is None or (self.current is not None
                                and self.current.mention.id == selected):
            return False
        self.show(selected)
        if approving:
            self.notify(f"The selection moved to #{selected}: read its drafts, then press "
                        "the key again.", severity="warning", markup=False)
        return True

    def on_screen_changed(self, screen: object) -> None:
        """Back on the queue from the outbox, stats, help or a prompt: refreshes skipped
        meanwhile are caught up at once, not at the next tick."""
        if self.screen_stack and screen is self.screen_stack[0]:
            self.call_next(self.reload)

    def empty_message(self) -> str:
        """What an empty queue means: nothing to answer, or nothing that the search and
        filters let through (and how to see the rest)."""
        where = self.current_filter()
        narrowed = [f"search '{where.search}' (/ then Enter on an empty box clears it)"
                    if where.search else "",
                    f"flag {where.flag} (f)" if where.flag else "",
                    f"source {where.source} (c)" if where.source else "",
                    f"view {where.view} (v)" if where.view != "open" else "",
                    "only yours (m)" if where.assigned_to else ""]
        narrowed = [n for n in narrowed if n]
        if narrowed:
            return "Nothing matches " + ", ".join(narrowed) + "."
        return "Nothing needs an answer. New mentions appear here as they are polled."

    def current_filter(self) -> QueueFilter:
        return QueueFilter(flag=FILTERS[self.filter_index], source=self.sources[self.source_index],
                           view=VIEWS[self.view_index], search=self.search_text,
                           assigned_to=self.operator if self.only_mine else None)

    def start_over(self) -> None:
        """A filter or search changed what the queue shows: read one page of it, from the
        top, instead of as many rows as the old view had loaded."""
        self.shown_filter = self.current_filter()
        self.rows = []

    def read_queue(self, selected: int | None) -> list[QueueRow]:
        """As many rows as are loaded now (at least a page), and on until the selected
        mention if new arrivals pushed it further down: a refresh never loses the cursor."""
        where, now = self.current_filter(), self.clock()
        limit = max(self.page_size, len(self.rows))
        old = {r.id: r.key for r in self.rows}
        rows = queue(self.store, where=where, limit=limit, now=now)
        self.more = len(rows) == limit
        target = old.get(selected) if selected is not None else None
        while (self.more and target is not None and rows
               and queue_order(rows[-1].key) < queue_order(target)):
            page = queue(self.store, where=where, after=rows[-1].key, limit=self.page_size,
                         now=now)
            rows.extend(page)
            self.more = len(page) == self.page_size
        return rows

    def add_rows(self, rows: list[QueueRow]) -> None:
        table = self.query_one("#queue", DataTable)
        now = self.clock()
        short = "prio" not in self.columns  # the narrowest: short flags, authors, owners
        for row in rows:
            # Source and author are cut short so the text column stays on a 120-column screen.
            cells = {"flag": self.flag_cell(row, short=short),
                     "prio": Text(f"{row.priority:.2f}"),
                     "source": Text(first_line(row.source, 14)),
                     "author": self.author_cell(row, 10 if short else 16),
                     "age": age_text(row, now, self.palette),
                     "who": self.owner_cell(row, now, 8, "%a %H:%M") if short
                     else self.owner_cell(row, now, 20, "until %a %H:%M"),
                     "text": Text(first_line(safe(row.title or row.text), 80))}
            table.add_row(*(cells[name] for name in self.columns), key=str(row.id))

    def flag_cell(self, row: QueueRow, *, short: bool = False) -> Text:
        name = SHORT_FLAG.get(row.flag or "", row.flag or "") if short else row.flag or ""
        return Text(name, style=self.palette.flag(row.flag))

    @staticmethod
    def author_cell(row: QueueRow, width: int) -> Text:
        """The author cut to `width`, and their audience (in short where width is short)."""
        who = Text(first_line(one_line(row.author) or "?", width))
        if row.followers is not None:
            followers = f"{row.followers:,}" if width > 10 else short_count(row.followers)
            who.append(f" ({followers})", style="dim")
        return who

    @staticmethod
    def owner_cell(row: QueueRow, now: datetime, width: int, until: str) -> Text:
        """Who has it, and until when it sleeps."""
        owner = Text(first_line(safe(row.assigned_to), width))
        if row.snoozed_until and row.snoozed_until > now:
            owner.append(f" {row.snoozed_until.astimezone():{until}}", style="dim")
        return owner

    def load_more(self) -> None:
        """The cursor reached the last loaded row: read the next page after it."""
        if not self.more or not self.rows:
            return
        page = queue(self.store, where=self.current_filter(), after=self.rows[-1].key,
                     limit=self.page_size, now=self.clock())
        self.more = len(page) == self.page_size
        known = {r.id for r in self.rows}
        page = [r for r in page if r.id not in known]  # moved since the last read
        self.rows.extend(page)
        self.add_rows(page)

    def drafted(self, kind: str) -> str:
        draft = self.current.draft if self.current else None
        if draft is None:
            return ""
        return safe(draft.public_text if kind == "reply" else draft.private_text)

    def remember_edits(self) -> None:
        """Keep the drafts as edited here (until approved) so nothing typed is lost."""
        if self.current is None:
            return
        edited = {kind: area.text for kind, area in self.draft_areas()
                  if area.text != self.drafted(kind)}
        if edited:
            self.edits[self.current.mention.id] = edited
        else:
            self.edits.pop(self.current.mention.id, None)

    def draft_areas(self) -> tuple[tuple[str, TextArea], tuple[str, TextArea]]:
        return (("reply", self.query_one("#public", TextArea)),
                ("private", self.query_one("#private", TextArea)))

    def apply_triage(self, change: Callable[..., T], mention_id: int,
                     *args: object, **kwargs: object) -> tuple[bool, T | None]:
        """Make a triage change as the operator: (done, what it returned). A refusal (the
        mention is gone, a name not in the team) is shown, not raised, and the queue is
        re-read."""
        try:
            return True, change(self.store, mention_id, *args, operator=self.operator,
                                **kwargs)
        except triage.TriageError as exc:
            self.notify_refusal(exc)
            self.reload()
            return False, None

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True,
               detail: str | None = None) -> None:
        """A toast, kept for the help screen (?) too, where one gone by can be read again.
        `detail`: a longer form, shown there only; the toast says "(? for more)"."""
        self.messages.appendleft(Said(utcnow(), detail or message))
        if detail:
            message += " (? for more)"
        # Textual stacks toasts without limit: three had hidden most of the mention on
        # 80x24. The oldest make way. Textual has no public call for one toast, so this uses
        # its private ones, and a Textual without them just stacks toasts as before.
        most = TOASTS_SHORT if self.size.height < 30 else TOASTS
        unnotify = getattr(self, "_unnotify", None)
        if unnotify is not None:
            for old in list(getattr(self, "_notifications", ()))[:-most + 1 or None]:
                unnotify(old, refresh=False)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def notify_refusal(self, exc: MentionwatchError) -> None:
        """A refusal: its message as a toast, short enough for a small screen; its hint
        (what to do instead) under ?."""
        self.notify(exc.message, severity="error", markup=False,
                    detail=str(exc) if exc.hint else None)

    def after_triage(self, mention_id: int, message: str) -> None:
        self.notify(message, markup=False)
        self.reload()
        self.query_one("#queue", DataTable).focus()

    @read_only.writes
    def action_snooze(self) -> None:
        self.catch_up()
        if self.current is None:
            return
        mention_id = self.current.mention.id

        def check(value: str) -> str | None:
            try:
                triage.parse_snooze_until(value, now=self.clock())
            except ValueError as exc:
                return str(exc)
            return None

        def done(value: str | None) -> None:
            if value is None:
                return
            until = triage.parse_snooze_until(value, now=self.clock())
            if not self.apply_triage(triage.snooze, mention_id, until)[0]:
                return
            self.after_triage(mention_id, f"#{mention_id} is back in the queue." if until is None
                              else f"Snoozed #{mention_id} until "
                              f"{triage.describe_until(until, now=self.clock())}.")

        self.push_screen(PromptScreen(
            f"Snooze #{mention_id} until when?", placeholder="30m, 2h, tomorrow 9:00, ...",
            hint=triage.SNOOZE_HELP, check=check), done)

    @read_only.writes
    def action_assign(self) -> None:
        self.catch_up()
        if self.current is None:
            return
        mention_id = self.current.mention.id

        team = self.config.team

        def check(value: str) -> str | None:
            try:
                triage.assignee(value, team)
            except triage.TriageError as exc:
                return str(exc)
            return None

        def done(value: str | None) -> None:
            if value is None:
                return
            assigned, name = self.apply_triage(triage.assign, mention_id, value, team=team)
            if assigned:
                self.after_triage(mention_id, f"Assigned #{mention_id} to {name}." if name
                                  else f"#{mention_id} is assigned to nobody.")

        names = f" The team: {', '.join(o.name for o in team.operators)}." if team else ""
        self.push_screen(PromptScreen(
            f"Assign #{mention_id} to whom?",
            value=self.current.mention.assigned_to or self.operator, check=check,
            hint=f"A name (Enter). Empty: assigned to nobody. Esc: cancel.{names}"), done)

    @read_only.writes
    def action_resolve(self) -> None:
        self.catch_up()
        if self.current is None:
            return
        mention = self.current.mention
        self.remember_edits()
        resolved, event_id = self.apply_triage(triage.resolve, mention.id)
        if not resolved or event_id is None:
            return
        # One key closes the case, so one key (u) opens it again, edits in progress and all.
        self.undo_stack.append(Undoable(mention.id, mention.status, "resolved", event_id,
                                        event="undo_resolve",
                                        edits=self.edits.pop(mention.id, None)))
        self.after_triage(mention.id, f"Resolved #{mention.id}. Press u to undo.")

    @read_only.writes
    def action_external_edit(self) -> None:
        """The focused draft (the public one from the queue) in $EDITOR, else $VISUAL."""
        from mentionwatch.tui.editor import NO_EDITOR, edit_text, editor_command

        self.catch_up()
        if self.current is None:
            return
        kind, area = next(((k, a) for k, a in self.draft_areas() if a.has_focus),
                          self.draft_areas()[0])
        command = editor_command()
        if command is None:
            self.notify(NO_EDITOR, severity="error", markup=False, timeout=10)
            return
        mention_id = self.current.mention.id
        result = edit_text(self, area.text, command)
        self.refresh()  # the editor had the terminal: draw everything again
        if result.text is None:
            self.notify(result.message or "The draft is unchanged.", severity="warning",
                        markup=False)
            return
        if result.text == area.text:
            self.notify("No change to the draft.", markup=False)
            return
        # Focus stays where it was: a key pressed next must not land in the draft. The edit
        # is kept (self.edits) however the queue moves or refreshes.
        area.text = safe(result.text)
        self.remember_edits()
        self.update_lengths()
        triage.record_edit(self.store, mention_id, kind, operator=self.operator,
                           via="editor")

    def action_cycle_source(self) -> None:
        self.sources = [None, *source_names(self.store)]
        self.source_index = (self.source_index + 1) % len(self.sources)
        self.reload()

    def action_cycle_view(self) -> None:
        self.view_index = (self.view_index + 1) % len(VIEWS)
        self.reload()

    def action_toggle_mine(self) -> None:
        self.only_mine = not self.only_mine
        self.reload()

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
        another view such as the outbox or the stats is on top. While a draft or the search
        box has the keyboard, the letter keys type letters, so the footer shows the way
        back (Esc) instead of them."""
        if len(self.screen_stack) > 1:
            return action == "quit" or action not in _queue_actions()
        focused = self.focused
        if action == "back_to_queue":
            return not isinstance(focused, DataTable)
        if isinstance(focused, TextArea | Input):
            return action not in _typed_actions()
        return True

    def update_outbox_bar(self) -> None:
        self.query_one("#outbox-bar", Static).update(
            summary_line(outbox_counts(self.store), simulated=self.simulated,
                         marks=self.palette, read_only=self.store.read_only))


def cannot_post_message(exc: outbox.CannotPost) -> str:
    """What to do with a mention from a source that has no posting, in this screen's keys."""
    return (f"#{exc.mention_id}: {exc.kind} sources have no posting, so nothing is sent from "
            "here. Press o to open it and answer there (the draft is yours to copy), then h "
            "to mark it answered elsewhere.")


def approve_key(which: str) -> str:
    """The key of `approve(which)` ("a" for the reply, "b" for both)."""
    return next(binding.key for binding in Binding.make_bindings(TriageApp.BINDINGS)
                if binding.action == f"approve('{which}')")


@cache
def _queue_actions() -> frozenset[str]:
    """The action names bound by the queue's own keys (without their arguments)."""
    return frozenset({binding.action.partition("(")[0]
                      for binding in Binding.make_bindings(TriageApp.BINDINGS)})


@cache
def _typed_actions() -> frozenset[str]:
    """The actions of keys that type a character when a text box has the keyboard."""
    return frozenset({binding.action.partition("(")[0]
                      for binding in Binding.make_bindings(TriageApp.BINDINGS)
                      if len(binding.key) == 1 or binding.key in ("slash", "question_mark")})


def counts_line(counts: Mapping[str, int], where: QueueFilter, operator: str, width: int,
                marks: Palette = COLOUR) -> Text:
    """The line above the queue, on one row of `width`: the flag counts, what the queue
    shows (flag, source, status, mine, search) and the operator; in full words where they
    fit, else in shorter ones (COUNTS_WORDS), else cut short with an ellipsis."""
    line = Text()
    for words in COUNTS_WORDS:
        line = Text(no_wrap=True, overflow="ellipsis")
        for flag in FILTERS[1:]:
            name = SHORT_FLAG[flag or ""] if words.short_flags else flag
            line.append(f" {name} {counts.get(flag or '', 0)} ", style=marks.flag(flag))
        line.append(f"{words.sep}{words.flag}{where.flag or 'all'}")
        if where.source:
            line.append(f"{words.sep}{words.source}")
            line.append(safe(where.source))
        line.append(f"{words.sep}{words.status}{where.view}")
        if where.assigned_to:
            line.append(f"{words.sep}{words.mine}")
        if where.search:
            line.append(f"{words.sep}{words.search}")
            line.append(safe(where.search))
        line.append(f"{words.sep}{words.operator}{operator}", style="dim")
        if line.cell_len <= width:
            return line
    line.truncate(width, overflow="ellipsis")
    return line


def short_count(n: int) -> str:
    """A count in at most four characters: 950, 1.2k, 12k, 1.2M, 12M."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            # Rounded down: 9,990 followers are not "10.0k".
            return f"{n // size}.{n % size * 10 // size}{unit}" if n < 10 * size \
                else f"{n // size}{unit}"
    return str(n)


def queue_order(key: QueueKey) -> tuple[float, datetime, int]:
    """Sort key of the queue order: priority descending, then oldest first, then id."""
    return (-key.priority, key.created_at, key.id)


def render_detail(d: Detail, team: TeamConfig | None = None,
                  now: datetime | None = None, marks: Palette = COLOUR, *,
                  own_contacts: Iterable[str | None] = ()) -> Text:
    """The whole mention as inert text: body, link, author, engagement, why, history; under
    its first line, a warning when the post shows private data (`own_contacts`, the brand's
    support address and phone, are not private)."""
    m = d.mention
    out = Text()
    out.append(f"#{m.id} ", style="bold")
    out.append(m.flag or "unflagged", style=marks.flag(m.flag, "bold"))
    out.append(f"  priority {m.priority:.2f}  {m.source.name}\n")
    found = privacy.private_data(f"{m.title or ''}\n{m.text or ''}", own_contacts)
    if found:
        out.append_text(private_data_line(found, marks))
    if m.title:
        out.append(one_line(m.title) + "\n", style="bold")
    out.append(safe(m.text) + "\n\n")
    if m.url:
        out.append("link: ", style="dim")
        out.append(safe(m.url) + "\n")
    author = m.author
    out.append("author: ", style="dim")
    out.append(one_line(m.author_handle) or "?")
    if author is not None:
        if author.display_name:
            out.append(f" ({one_line(author.display_name)})")
        if author.followers is not None:
            out.append(f", {author.followers:,} followers")
        if author.verified:
            out.append(", verified")
    out.append(f"\nengagement: {m.likes} likes, {m.reposts} reposts, {m.replies} replies\n",
               style="dim")
    out.append_text(triage_line(m, now or utcnow(), marks))
    if d.matches:
        out.append("why flagged:\n", style="bold")
        for r in d.matches:
            out.append(f"  {r.pack}/{r.rule} ({r.flag}, severity {r.severity:.2f})\n"
                       f"    {safe(reasons_text(r.explanation))}\n")
    for line in explanation_lines(m.explanation, m.priority, m.flag):
        out.append(f"{safe(line)}\n", style="dim")
    for action in d.actions:
        out.append_text(action_line(action, team, marks))
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


def private_data_line(found: list[privacy.Finding], marks: Palette = COLOUR) -> Text:
    """The warning over a public post that shows private data: what it is (masked, never
    the value) and what to do about it. Said in words as well as marked: NO_COLOR keeps
    only the words and the reverse."""
    them = "it" if len({f.describe() for f in found}) == 1 else "them"
    line = Text(f"⚠ this public post shows {privacy.describe(found)}: don't repeat {them} in "
                "the reply; the private follow-up can ask them to delete the post",
                style=marks.private_data)
    line.append("\n")
    return line


def triage_line(m: Any, now: datetime, marks: Palette = COLOUR) -> Text:
    """Status, who has it and until when it sleeps."""
    line = Text(f"status: {m.status}", style="dim")
    if m.assigned_to:
        line.append("  assigned to: ", style="dim")
        line.append(safe(m.assigned_to), style="bold")
    if m.snoozed_until and m.snoozed_until > now:
        line.append(f"  snoozed until {m.snoozed_until.astimezone():%a %Y-%m-%d %H:%M}",
                    style=marks.snoozed)
    line.append("\n")
    return line

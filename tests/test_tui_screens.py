"""The triage screen at the sizes people use (a laptop split screen of 70x20 and 80x24, 120x40,
a wide 160x45), its footer, and what it looks like with NO_COLOR: the real TriageApp driven
through Textual's run_test() against a real database."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rich.style import Style
from textual.containers import VerticalScroll
from textual.errors import NoWidget
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Label, Static, TextArea
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from mentionwatch import outbox
from mentionwatch.models import OutboxAction, utcnow
from mentionwatch.pipeline import sync_sources
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from tests.test_outbox import Receiver
from tests.test_tui import seed
from tests.test_tui_triage import OPERATOR, add, box_config, make_app, record_notes


@pytest.fixture(autouse=True)
def _operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", OPERATOR)


def seeded_app(store: Store, db_url: str, receiver: Receiver) -> tuple[TriageApp, dict[str, int]]:
    """The app on the shared seed: two complaints (one long and hostile), a question."""
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    return make_app(config, store), ids


def screen_text(app: TriageApp) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


def fully_visible(app: TriageApp, widget: Widget) -> bool:
    """The whole widget is on screen: not cut by the screen's edge or scrolled out of its
    pane."""
    try:
        geometry = app.screen.find_widget(widget)
    except NoWidget:
        return False
    screen = app.screen.region
    return (geometry.region.area > 0 and screen.contains_region(geometry.region)
            and geometry.clip.contains_region(geometry.region))


async def footer_keys(app: TriageApp, pilot: Any,
                      expected: Callable[[dict[str, bool]], bool] | None = None
                      ) -> dict[str, bool]:
    """The keys the footer shows, and whether each one fits on the screen.

    The footer is rebuilt after a change of focus or screen, and on a busy machine one pause
    can come before that: this waits (up to 3 s) until `expected` holds (by default: every
    key has its place), and returns the keys as they are then, so a caller's assert fails
    when the footer never gets there."""
    expected = expected or (lambda keys: bool(keys) and all(keys.values()))
    for _ in range(60):
        keys = {key.key: fully_visible(app, key)
                for key in app.screen.query_one(Footer).query(FooterKey)}
        if expected(keys):
            break
        await pilot.pause(0.05)
    return keys


# ----------------------------------------------------------------------------- small screens


@pytest.mark.parametrize("size", [(70, 20), (80, 24)])
async def test_a_small_screen_shows_the_mention_and_reaches_both_drafts_and_approves(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        size: tuple[int, int]) -> None:
    app, ids = seeded_app(store, db_url, receiver)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        queue = app.query_one("#queue", DataTable)
        left = app.screen.find_widget(app.query_one("#left")).region
        right = app.screen.find_widget(app.query_one("#right")).region
        # Stacked, not squeezed side by side: each gets the whole width, nothing overlaps.
        assert left.width == right.width == size[0]
        assert not left.overlaps(right) and right.y >= left.bottom
        assert fully_visible(app, queue) and queue.has_focus
        # The selected mention can be read without a key press, on lines as wide as the
        # screen, under the flag and author it was selected by.
        text = screen_text(app)
        assert "Acme is down and I am furious" in text
        assert "crisis 0" in text and "compl 2" in text  # short words, not cut
        # e: the public draft, whole, with its length; Tab: the private one.
        await pilot.press("e")
        await pilot.pause()
        public = app.query_one("#public", TextArea)
        assert public.has_focus and fully_visible(app, public)
        assert fully_visible(app, app.query_one("#public-label", Label))
        assert "Sorry about urgent! Please DM us." in screen_text(app)
        await pilot.press("end", *" Sam")
        await pilot.press("tab")
        await pilot.pause()
        private = app.query_one("#private", TextArea)
        assert private.has_focus and fully_visible(app, private)
        assert "Hi, what's your email?" in screen_text(app)
        # Esc, then a: the edited reply is approved from the queue.
        await pilot.press("escape")
        await pilot.pause()
        assert queue.has_focus
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert [r["text"] for r in receiver.received] == ["Sorry about urgent! Please DM us. Sam"]
    with store.session(readonly=True) as s:
        assert s.query(OutboxAction).one().mention_id == ids["urgent"]


async def test_the_counts_line_is_one_row_and_the_queue_shows_the_text_at_each_size(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    """Below about 95 columns the counts line had taken two rows, and at 70 to 80 (and in
    the queue's 88 columns beside the mention at 160) the text column was off screen or
    cut to a few words. Resized as a person would, from wide to a split screen."""
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(160, 40)) as pilot:
        for size in ((160, 40), (100, 30), (80, 24), (70, 20)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            counts = app.query_one("#counts", Static)
            region = app.screen.find_widget(counts).region
            assert region.height == 1, size
            line = rendered_lines(app)[region.y]
            for shown in ("crisis 0", "2", "quest" if size[0] < 100 else "question 1",
                          "status", "open", OPERATOR):
                assert shown in line, (size, line)
            # A whole line of what people wrote, in the queue's own region.
            table = app.query_one("#queue", DataTable)
            box = app.screen.find_widget(table).region
            rows = "\n".join(line[box.x:box.right] for line in
                             rendered_lines(app)[box.y:box.bottom])
            assert "how do I reset my acme router?" in rows, (size, rows)
            assert "Acme is down and I am furious" in rows, (size, rows)
            assert ("prio" in rows) is (size[0] >= 85), size  # made way at 70 and 80


def test_the_counts_line_fits_its_width_and_shows_typed_text_literally() -> None:
    from mentionwatch.tui.app import counts_line
    from mentionwatch.tui.queries import QueueFilter

    counts = {"crisis": 12, "complaint": 345, "question": 6, "praise": 78}
    where = QueueFilter(flag="complaint", source="twitter-main", view="open",
                        search="[bold red]x[/] [link=http://e.example]y[/]",
                        assigned_to="dana")
    for width in (60, 70, 80, 100, 200):
        line = counts_line(counts, where, "dana", width)
        assert line.cell_len <= width and "\n" not in line.plain, (width, line.plain)
        assert line.plain.startswith(" crisis 12  compl") or width >= 200
    wide = counts_line(counts, where, "dana", 200).plain
    assert wide == (" crisis 12  complaint 345  question 6  praise 78    filter: complaint"
                    "   source: twitter-main   status: open   assigned to me   search: "
                    "[bold red]x[/] [link=http://e.example]y[/]   operator: dana")
    assert not any(span.style for span in counts_line(counts, where, "dana", 200).spans
                   if "link" in str(span.style))
    assert counts_line(counts, where, "dana", 60).plain.endswith("…")


async def test_toasts_on_a_small_screen_are_few_and_short_and_kept_under_help(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    """Three toasts had covered 17 of 24 rows (five and a blank line each). Now: no blank
    lines in them, the newest two on screen, a refusal's hint (what to do) under ?, with
    every message."""
    app, ids = seeded_app(store, db_url, receiver)
    other = Store.open(db_url)
    try:
        outbox.take_approval(other, ids["ask"], "reply", operator="alice")  # approved there
    finally:
        other.close()
    notes = record_notes(app)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("d", "d")  # dismisses the two complaints: two toasts
        await pilot.pause()
        await pilot.press("a")  # the question's reply is already approved: refused
        await pilot.pause()
        await pilot.pause()
        toasts = [app.screen.find_widget(t).region for t in app.screen.query(Toast)]
        assert len(toasts) == 2
        assert all(r.height <= 3 for r in toasts), toasts
        assert sum(r.height + 1 for r in toasts) <= 7  # of 24 rows
        text = screen_text(app)
        assert "already has a reply in state 'approved'" in notes[-1]
        assert "not sent twice. (? for more)" in text  # the last line of the newest toast
        assert f"Dismissed #{ids['urgent']}" not in text  # the oldest made way
        await pilot.press("question_mark")
        await pilot.pause()
        said = str(app.screen.query_one("#help-messages", Static).render())
    lines = said.splitlines()
    assert f"Dismissed #{ids['urgent']} (not relevant). Press u to undo." in lines[-1]
    assert f"Dismissed #{ids['hostile']} (not relevant). Press u to undo." in said
    assert "A failed action can be approved again" in said  # the hint, under ?


async def test_a_long_mention_scrolls_in_its_pane_on_a_small_screen(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        await pilot.press("down")  # the hostile one: 600 characters and more
        await pilot.pause()
        pane = app.query_one("#right", VerticalScroll)
        assert "engagement:" not in screen_text(app)  # below the fold
        await pilot.press("tab")  # into the mention's pane: the arrows scroll it
        await pilot.pause()
        assert pane.has_focus
        for _ in range(5):
            if "engagement: 0 likes" in screen_text(app):
                break
            await pilot.press("pagedown")
            await pilot.pause()
        assert pane.scroll_y > 0 and "engagement: 0 likes" in screen_text(app)
        await pilot.press("escape", "up")  # another mention starts at its first line
        await pilot.pause()
        assert app.query_one("#queue", DataTable).has_focus and pane.scroll_y == 0


async def test_a_wide_screen_keeps_the_drafts_in_view_beside_the_queue(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        await pilot.press("down")  # the long one: it scrolls above the drafts
        await pilot.pause()
        left = app.screen.find_widget(app.query_one("#left")).region
        right = app.screen.find_widget(app.query_one("#right")).region
        assert left.right <= right.x and left.y == right.y  # side by side
        for name in ("#public", "#private", "#public-label"):
            assert fully_visible(app, app.query_one(name)), name


async def test_120_columns_stack_the_panes_so_the_queue_shows_what_people_wrote(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.query_one("#queue", DataTable)
        assert fully_visible(app, table)
        text = screen_text(app)
        # The queue's text column, not four characters of it.
        assert "how do I reset my acme router?" in text
        for name in ("#public", "#private"):
            assert fully_visible(app, app.query_one(name)), name


async def test_a_draft_being_typed_in_stays_in_view_when_the_terminal_shrinks(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("e", *"Hi ")
        await pilot.resize_terminal(80, 24)  # a split screen: the layout becomes stacked
        await pilot.pause()
        await pilot.pause()
        public = app.query_one("#public", TextArea)
        assert public.has_focus and fully_visible(app, public)


# ----------------------------------------------------------------------------- the footer


@pytest.mark.parametrize("width", [70, 80, 120, 160])
async def test_the_footer_fits_and_always_offers_help(
        postbox: None, receiver: Receiver, store: Store, db_url: str, width: int) -> None:
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(width, 30)) as pilot:
        await pilot.pause()
        keys = await footer_keys(app, pilot)
        assert keys.get("question_mark") is True, keys
        assert {"a", "p", "e", "d", "u", "q"} <= set(keys)
        assert all(keys.values()), keys  # every key shown fits: none cut at the edge
        await pilot.press("tab")  # the mention's pane: Esc leads back, and still fits
        await pilot.pause()
        keys = await footer_keys(app, pilot, lambda keys: "escape" in keys and all(keys.values()))
        assert keys.get("escape") is True and keys.get("question_mark") is True, keys
        assert all(keys.values()), keys
        # Typing in a draft: letters type letters, so the footer offers no letter keys.
        await pilot.press("e")
        await pilot.pause()
        only_escape = await footer_keys(app, pilot, lambda keys: set(keys) == {"escape"})
        assert set(only_escape) == {"escape"}
        await pilot.press("q")  # types a q; does not quit
        await pilot.pause()
        assert app.is_running and app.query_one("#public", TextArea).text.startswith("q")
        await pilot.press("escape")
        await pilot.pause()
        keys = await footer_keys(app, pilot, lambda keys: "escape" not in keys)
        assert "escape" not in keys and "question_mark" in keys


@pytest.mark.parametrize("width", [80, 120])
async def test_the_outbox_footer_offers_help_and_the_way_back(
        postbox: None, receiver: Receiver, store: Store, db_url: str, width: int) -> None:
    app, ids = seeded_app(store, db_url, receiver)
    # A send that failed: the keys for it (retry, edit...) are offered too.
    failed = outbox.approve(store, ids["urgent"], "reply", operator=OPERATOR)
    with store.engine.begin() as conn:
        conn.execute(OutboxAction.__table__.update()  # type: ignore[attr-defined]
                     .where(OutboxAction.id == failed).values(state="failed"))
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        keys = await footer_keys(app, pilot, lambda keys: "escape" in keys and all(keys.values()))
        assert keys.get("question_mark") is True and keys.get("escape") is True, keys
        assert all(keys.values()), keys
        await pilot.press("e")  # editing the text: the footer offers only the way back
        await pilot.pause()
        only_escape = await footer_keys(app, pilot, lambda keys: set(keys) == {"escape"})
        assert set(only_escape) == {"escape"}
        await pilot.press("escape")
        await pilot.pause()
        assert "question_mark" in await footer_keys(app, pilot,
                                                    lambda keys: "question_mark" in keys)


# ----------------------------------------------------------------------------- NO_COLOR


def luminance(style: Style) -> tuple[float, float]:
    """(foreground, background) luminance from 0 to 1 of a rendered cell."""
    def value(color: Any) -> float:
        r, g, b = color.get_truecolor()
        return float(0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    fg, bg = value(style.color), value(style.bgcolor)
    return (bg, fg) if style.reverse else (fg, bg)


def marks(style: Style) -> tuple[bool, bool, bool, bool]:
    return (bool(style.bold), bool(style.underline), bool(style.reverse), bool(style.italic))


def rendered_lines(app: TriageApp) -> list[str]:
    """The screen's characters as the terminal gets them, one string a line."""
    update: Any = app.screen._compositor.render_update(full=True)  # a LayoutUpdate
    return ["".join(segment.text for segment in strip) for strip in update.strips]


def cell_style(app: TriageApp, widget: Widget, text: str) -> Style:
    """The style the terminal gets for the first character of `text` inside `widget`."""
    region = app.screen.find_widget(widget).region
    lines = rendered_lines(app)
    for y in range(region.y, region.bottom):
        at = lines[y].find(text, region.x, region.right)
        if at >= 0:
            return app.screen.get_style_at(at, y)
    raise AssertionError(f"{text!r} is not shown in {widget}: {lines}")


def readable(style: Style) -> bool:
    """Light on dark or dark on light: not grey on grey."""
    fg, bg = luminance(style)
    return abs(fg - bg) >= 0.4


async def test_no_color_marks_selection_flags_lateness_and_long_drafts_without_colour(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_outbox import PostboxConnector

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(PostboxConnector, "reply_limit", 20)
    config = box_config(db_url, receiver)
    sync_sources(config, store)
    now = utcnow()
    add(store, "box", [("c1", "acme is leaking data", "crisis", 0.9, now - timedelta(hours=2)),
                       ("k1", "acme down again", "complaint", 0.8, now - timedelta(minutes=45)),
                       ("k2", "acme billing is wrong", "complaint", 0.7,
                        now - timedelta(minutes=10)),
                       ("q1", "acme opening hours?", "question", 0.2, now)])
    app = make_app(config, store)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert app.no_color
        table = app.query_one("#queue", DataTable)
        selected = cell_style(app, table, "0.90")  # the crisis row, under the cursor
        other = cell_style(app, table, "0.70")  # a complaint row
        assert selected.reverse and not other.reverse and readable(selected)
        await pilot.press("down")
        await pilot.pause()
        assert cell_style(app, table, "0.80").reverse  # the cursor moved with the key
        crisis = cell_style(app, table, "crisis")
        complaint = cell_style(app, table, "complaint")
        question = cell_style(app, table, "question")
        plain = cell_style(app, table, "0.20")
        assert all(readable(s) for s in (crisis, complaint, question))
        assert len({marks(crisis), marks(complaint), marks(question), marks(plain)}) == 3
        assert marks(crisis) != marks(plain) and marks(complaint) != marks(plain)
        overdue = cell_style(app, table, "2h")
        late = cell_style(app, table, "45m")
        fresh = cell_style(app, table, "10m")
        assert len({marks(overdue), marks(late), marks(fresh)}) == 3
        assert readable(overdue) and readable(late)
        # The counts at the top: each flag readable, told apart without colour.
        counts = app.query_one("#counts", Static)
        assert readable(cell_style(app, counts, "complaint 2"))
        assert marks(cell_style(app, counts, "crisis 1")) != marks(
            cell_style(app, counts, "question 1"))
        # A draft over the source's limit says so in words, marked without colour.
        label = app.query_one("#public-label", Label)
        assert "over by" in str(label.content)
        over = cell_style(app, label, "public reply")
        assert (over.bold or over.reverse) and readable(over)
        # The mention's pane, when the arrows scroll it, is framed in heavy lines.
        detail = app.query_one("#detail", Static)
        assert detail.styles.border_top[0] == "round"
        await pilot.press("tab")
        await pilot.pause()
        assert detail.styles.border_top[0] == "heavy"
        # While a draft has the keyboard the queue's selection is still marked.
        await pilot.press("e")
        await pilot.pause()
        assert cell_style(app, table, "0.80").underline


async def test_colours_stay_when_no_color_is_not_set(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    app, _ = seeded_app(store, db_url, receiver)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        complaint = cell_style(app, app.query_one("#queue", DataTable), "complaint")
        assert complaint.color is not None and complaint.color.get_truecolor()[0] > 150


async def test_a_tall_wide_screen_shows_a_long_private_follow_up_whole(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    # At 160x45 the drafts had 10 lines each under a half-empty mention pane, and a
    # follow-up of this length had to be scrolled to be read before approving it.
    from mentionwatch.models import Draft

    app, ids = seeded_app(store, db_url, receiver)
    follow_up = ("Hi Sam, thank you for getting in touch, and sorry for the trouble. So we can "
                 "check your service, could you reply with the email address on your account "
                 "and roughly when the problem started? Your case reference is MW-1234ABCD. "
                 "You can also reach us at help@acme.example or +1 555 0100 (Mon-Fri 9-5).")
    with store.engine.begin() as conn:
        conn.execute(Draft.__table__.update()  # type: ignore[attr-defined]
                     .where(Draft.mention_id == ids["urgent"])
                     .values(private_text=follow_up))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        private = app.query_one("#private", TextArea)
        assert private.text == follow_up
        assert fully_visible(app, private)
        # Every wrapped line of it is inside the box: nothing to scroll.
        assert private.wrapped_document.height <= private.content_size.height, (
            private.wrapped_document.height, private.content_size.height)

"""Triage keys (snooze, assign, resolve, $EDITOR), filters by source and status, paging
and refreshing a large queue, and the queue's index: the real TriageApp driven through
Textual's run_test() against SQLite and PostgreSQL, with a clock the tests move."""

from __future__ import annotations

import html
import re
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect
from textual.widgets import DataTable, Input, Label, Static, TextArea

from mentionwatch import db, outbox, triage
from mentionwatch.audit import recent, record
from mentionwatch.cli import cli
from mentionwatch.connector import Batch, MentionIn
from mentionwatch.judgement import Judgement
from mentionwatch.models import Mention, OutboxAction, utcnow
from mentionwatch.pipeline import build_connector, sync_sources
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from mentionwatch.tui.prompt import PromptScreen
from mentionwatch.tui.queries import (
    QueueFilter,
    flag_counts,
    flag_counts_statement,
    queue,
    queue_statement,
)
from tests.conftest import make_config
from tests.test_outbox import Receiver
from tests.test_tui import seed

OPERATOR = "dana"


class Clock:
    """The app's idea of now, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def _operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", OPERATOR)


def box_config(db_url: str, server: Receiver, *names: str) -> Any:
    return make_config(db_url, [{"name": n, "kind": "postbox", "url": server.url}
                                for n in names or ("box",)])


def make_app(config: Any, store: Store, clock: Callable[[], datetime] = utcnow,
             page_size: int = 200) -> TriageApp:
    return TriageApp(config, store, refresh_every=3600, page_size=page_size, clock=clock,
                     connector_for=lambda source: build_connector(source, config))


def screen_text(app: TriageApp) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


def record_notes(app: TriageApp) -> list[str]:
    """What the app tells the person (its toasts), as plain strings."""
    notes: list[str] = []
    show = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        show(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notes


def events(store: Store, mention_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.event, e.actor, e.details or {}) for e in recent(store, mention_id=mention_id)]


def add(store: Store, source: str, posts: list[tuple[str, str, str, float, datetime]]
        ) -> dict[str, int]:
    """Store (external id, text, flag, priority, created) as judged mentions with drafts."""
    result = store.store_batch(source, Batch([
        MentionIn(external_id=e, text=t, created_at=c) for e, t, _, _, c in posts]),
        want_ids=True)
    ids = dict(zip([p[0] for p in posts], result.mention_ids, strict=True))
    with store.engine.begin() as conn:
        store.write_judgements(conn, [
            (ids[e], Judgement(flag=f, priority=p, sentiment=-0.3,
                               public_draft=f"Sorry {e}, please DM us.",
                               private_draft=f"Hi {e}, your e-mail?", private_channel="dm"))
            for e, _, f, p, _ in posts])
    return ids


# ----------------------------------------------------------------------------- snooze


async def test_snooze_hides_until_the_time_then_it_comes_back(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    clock = Clock()
    app = make_app(config, store, clock)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert app.rows[0].id == ids["urgent"]
        await pilot.press("z")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"soon", "enter")  # not a time: says so and stays open
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        assert "'soon' is not a time I can read" in screen_text(app)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"2h", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, PromptScreen)
        assert ids["urgent"] not in [r.id for r in app.rows]
        assert app.current is not None and app.current.mention.id == ids["hostile"]
        assert flag_counts(store, clock()).get("complaint") == 1  # counts skip snoozed
        await pilot.press("v")  # the snoozed view shows it, with its wake-up time
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"]]
        assert "until" in screen_text(app)
        await pilot.press("v", "v", "v", "v", "v")  # back to open
        await pilot.pause()
        clock.now += timedelta(hours=2, minutes=1)
        app.reload()  # what the 10 s refresh does
        await pilot.pause()
        assert app.rows[0].id == ids["urgent"]
    with store.session(readonly=True) as s:
        mention = s.get(Mention, ids["urgent"])
        assert mention is not None and mention.snoozed_until is not None
        assert abs(mention.snoozed_until - (clock.now - timedelta(minutes=1))) < timedelta(
            seconds=1)
    [(event, actor, details)] = events(store, ids["urgent"])
    assert (event, actor) == ("snooze", OPERATOR)
    assert datetime.fromisoformat(details["until"]) == mention.snoozed_until


async def test_escape_cancels_a_prompt_and_changes_nothing(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        for key in ("z", "g"):
            await pilot.press(key)
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, PromptScreen)
        assert app.rows[0].id == ids["urgent"]
    assert events(store, ids["urgent"]) == []


# ----------------------------------------------------------------------------- assign


async def test_assign_shows_in_queue_and_detail_and_filters_mine(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(200, 45)) as pilot:
        await pilot.pause()
        await pilot.press("g")  # offers the operator's own name
        await pilot.pause()
        assert app.screen.query_one(Input).value == OPERATOR
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("down", "g")
        await pilot.pause()
        app.screen.query_one(Input).value = ""
        await pilot.press(*"[b]Priya[/b]", "enter")  # markup in a name stays literal
        await pilot.pause()
        text = screen_text(app)
        assert "[b]Priya[/b]" in text and "assigned to: [b]Priya[/b]" in text
        assert [r.assigned_to for r in app.rows[:2]] == [OPERATOR, "[b]Priya[/b]"]
        await pilot.press("m")  # assigned to me
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"]]
        await pilot.press("m", "v", "v")  # everyone's, then the "assigned" view
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"], ids["hostile"]]
    assert events(store, ids["hostile"])[0][:2] == ("assign", OPERATOR)
    assert events(store, ids["hostile"])[0][2] == {"to": "[b]Priya[/b]"}


async def test_with_a_team_only_its_operators_can_be_assigned(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    from tests.test_approvals import TEAM

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}],
                         team=TEAM)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(200, 45)) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        assert "The team: sam, kim, dana, lee." in str(
            app.screen.query_one("#prompt-hint", Static).content)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"Priya", "enter")  # not in the team: says so, stays open
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        assert "'Priya' is not in the team (sam, kim, dana, lee)" in str(
            app.screen.query_one("#prompt-error", Static).content)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"KIM", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, PromptScreen)
        assert app.rows[0].assigned_to == "kim"  # as the team spells it
    with pytest.raises(triage.TriageError, match="'Priya' is not in the team"):
        triage.assign(store, ids["urgent"], "Priya", operator=OPERATOR, team=config.team)
    assert [e[2] for e in events(store, ids["urgent"])] == [{"to": "kim"}]


# ----------------------------------------------------------------------------- resolve


async def test_resolve_leaves_the_queue_and_is_audited(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert ids["urgent"] not in [r.id for r in app.rows]
        assert app.current is not None and app.current.mention.id == ids["hostile"]
        await pilot.press("v", "v", "v", "v")  # open, snoozed, assigned, answered, resolved
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"]]
    with store.session(readonly=True) as s:
        mention = s.get(Mention, ids["urgent"])
        assert mention is not None and mention.status == "resolved"
    [event] = recent(store, mention_id=ids["urgent"])
    assert (event.event, event.actor) == ("resolve", OPERATOR)
    assert abs(event.at - utcnow()) < timedelta(minutes=1)


async def test_a_stray_x_is_undone_with_u_edit_in_progress_and_all(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    notes = record_notes(app)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("e")  # an edit in progress
        public = app.query_one("#public", TextArea)
        public.move_cursor(public.document.end)
        await pilot.press(*" Sam", "escape")
        await pilot.press("x")  # meant to press something else
        await pilot.pause()
        assert ids["urgent"] not in [r.id for r in app.rows]
        assert f"Resolved #{ids['urgent']}. Press u to undo." in notes
        await pilot.press("d")  # then dismisses the next one: undo goes back in order
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["ask"]]
        await pilot.press("u")
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["hostile"], ids["ask"]]
        await pilot.press("u")
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"], ids["hostile"], ids["ask"]]
        assert app.current is not None and app.current.mention.id == ids["urgent"]
        assert public.text == "Sorry about urgent! Please DM us. Sam"
        await pilot.press("a")  # and the kept edit is what goes out
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert [r["text"] for r in receiver.received] == ["Sorry about urgent! Please DM us. Sam"]
    with store.session(readonly=True) as s:
        mention = s.get(Mention, ids["urgent"])
        assert mention is not None and mention.status == "replied"
    assert [(e, a) for e, a, _ in events(store, ids["urgent"])][-2:] == [
        ("undo_resolve", OPERATOR), ("resolve", OPERATOR)]


# ----------------------------------------------------------------------------- keys race


async def test_a_key_right_after_a_move_acts_on_the_row_under_the_cursor(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        table = app.query_one("#queue", DataTable)
        # "down" then "x" faster than the highlight message reaches the detail pane.
        table.move_cursor(row=1)
        await app.run_action("resolve")
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"], ids["ask"]]
        assert app.current is not None and app.current.mention.id == ids["ask"]
        table.move_cursor(row=0)
        await app.run_action("approve('reply')")  # drafts not yet seen: nothing approved
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["urgent"]
    with store.session(readonly=True) as s:
        assert s.get(Mention, ids["hostile"]).status == "resolved"  # type: ignore[union-attr]
        assert s.query(OutboxAction).count() == 0


# ----------------------------------------------------------------------------- help


async def test_help_lists_every_key_and_queue_keys_wait_under_it(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    from textual.binding import Binding

    from mentionwatch.tui.help import HelpScreen

    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for binding in Binding.make_bindings(TriageApp.BINDINGS):
            assert binding.description in text, binding
        assert "ctrl+o" in text and "'tomorrow 9:00'" in text
        app.reload()  # the 10 s refresh fires while the help is up: no crash, no change
        await pilot.press("a", "x", "z")  # queue keys do nothing here
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.rows[0].id == ids["urgent"]
    with store.session(readonly=True) as s:
        assert s.query(OutboxAction).count() == 0
    assert events(store, ids["urgent"]) == []


# ----------------------------------------------------------------------------- $EDITOR


def editor_script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text("import pathlib, sys\npath = pathlib.Path(sys.argv[1])\n" + body,
                      encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


async def test_editor_rewrites_the_draft_and_the_edit_is_what_is_sent(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, (
        "text = path.read_text()\n"
        "path.write_text(text.replace('Please DM us.', 'Please DM us, we are on it.'))\n")))
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        before = app.query_one("#public", TextArea).text
        await pilot.press("ctrl+o")
        await pilot.pause()
        public = app.query_one("#public", TextArea)
        assert public.text == "Sorry about urgent! Please DM us, we are on it."
        assert f"public reply  {len(public.text)}" in str(
            app.query_one("#public-label", Label).content)
        assert len(public.text) != len(before)
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert [r["text"] for r in receiver.received] == [
        "Sorry about urgent! Please DM us, we are on it."]
    assert ("edit", OPERATOR, {"action": "reply", "via": "editor"}) in events(
        store, ids["urgent"])


async def test_editor_edits_the_focused_private_draft_with_visual_as_fallback(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = box_config(db_url, receiver)
    seed(store, config)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setenv("VISUAL", editor_script(tmp_path, "path.write_text('Call us?\\n')\n"))
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        app.query_one("#private", TextArea).focus()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.query_one("#private", TextArea).text == "Call us?"
        assert app.query_one("#public", TextArea).text == "Sorry about urgent! Please DM us."


@pytest.mark.parametrize("editor, message", [
    (None, "No editor is set: export EDITOR"),
    ("{python} -c 'import sys; sys.exit(3)'", "The editor exited with status 3"),
    ("/nonexistent/bin/editor", "Could not start the editor '/nonexistent/bin/editor'"),
])
async def test_a_missing_or_failing_editor_loses_nothing(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch, editor: str | None, message: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    monkeypatch.delenv("VISUAL", raising=False)
    if editor is None:
        monkeypatch.delenv("EDITOR", raising=False)
    else:
        monkeypatch.setenv("EDITOR", editor.format(python=shlex.quote(sys.executable)))
    app = make_app(config, store)
    notes = record_notes(app)
    async with app.run_test(size=(200, 45)) as pilot:
        await pilot.pause()
        await pilot.press("e", "end", "space", "X", "escape")  # an edit in progress
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.query_one("#public", TextArea).text == "Sorry about urgent! Please DM us. X"
        assert any(message in note and "unchanged" in note for note in notes), notes
    assert events(store, ids["urgent"]) == []


# ----------------------------------------------------------------------------- filters


async def test_filters_by_source_and_status_combine_with_search(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver, "box", "desk")
    sync_sources(config, store)
    t = utcnow() - timedelta(hours=3)
    ids = add(store, "box", [("b1", "acme router down", "complaint", 0.9, t),
                             ("b2", "acme billing wrong", "complaint", 0.6, t),
                             ("b3", "acme router question", "question", 0.3, t)])
    ids |= add(store, "desk", [("d1", "acme router slow", "complaint", 0.8, t),
                               ("d2", "acme thanks", "praise", 0.1, t)])
    triage.snooze(store, ids["b2"], utcnow() + timedelta(days=1), operator="x")
    triage.assign(store, ids["d1"], "priya", operator="x")
    outbox.mark(store, ids["b3"], "dismissed", operator="x", reason="spam")
    triage.resolve(store, ids["d2"], operator="x")
    app = make_app(config, store)

    def shown() -> list[str]:
        return sorted(k for k, v in ids.items() if v in {r.id for r in app.rows})

    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert shown() == ["b1", "d1"]
        await pilot.press("c")  # source: box
        await pilot.pause()
        assert shown() == ["b1"]
        await pilot.press("c")  # source: desk
        await pilot.pause()
        assert shown() == ["d1"]
        await pilot.press("c", "v")  # all sources; snoozed
        await pilot.pause()
        assert shown() == ["b2"]
        await pilot.press("v")  # assigned
        await pilot.pause()
        assert shown() == ["d1"]
        await pilot.press("v")  # answered: none, and the screen says why it is empty
        await pilot.pause()
        assert shown() == []
        assert "Nothing matches view answered (v)." in screen_text(app)
        await pilot.press("v")  # resolved
        await pilot.pause()
        assert shown() == ["d2"]
        await pilot.press("v")  # dismissed
        await pilot.pause()
        assert shown() == ["b3"]
        await pilot.press("v", "slash", *"router", "enter")  # open + search
        await pilot.pause()
        assert shown() == ["b1", "d1"]
        await pilot.press("c", "c")  # + source desk
        await pilot.pause()
        assert shown() == ["d1"]
        assert "source: desk" in screen_text(app) and "search: router" in screen_text(app)


# ----------------------------------------------------------------------------- paging


def paging_posts(n: int, start: datetime) -> list[tuple[str, str, str, float, datetime]]:
    # Few priorities and repeated times, so ties on priority and on time both occur.
    return [(f"p{i}", f"acme problem {i}", "complaint", (0.9, 0.5, 0.2)[i % 3],
             start + timedelta(minutes=i // 2)) for i in range(n)]


def queue_order(store: Store) -> list[int]:
    with store.session(readonly=True) as s:
        rows = s.query(Mention.id, Mention.priority, Mention.created_at).filter(
            Mention.status == "new", Mention.flag == "complaint").all()
    return [r.id for r in sorted(rows, key=lambda r: (-r.priority, r.created_at, r.id))]


async def test_reaching_the_end_loads_the_next_page_in_priority_then_age_order(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    sync_sources(config, store)
    add(store, "box", paging_posts(23, utcnow() - timedelta(days=1)))
    app = make_app(config, store, page_size=5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        table = app.query_one("#queue", DataTable)
        assert table.row_count == 5 and app.more
        for _ in range(4):
            await pilot.press("down")
        await pilot.pause()
        assert table.row_count == 10  # the cursor reached the end: one more page
        for _ in range(18):
            await pilot.press("down")
        await pilot.pause()
        assert table.row_count == 23 and not app.more
        assert [r.id for r in app.rows] == queue_order(store)
        assert [int(str(k.value)) for k in table.rows] == queue_order(store)
    # The same order page by page straight from the query, with keyset paging.
    pages, after = [], None
    while page := queue(store, after=after, limit=4):
        pages.extend(r.id for r in page)
        after = page[-1].key
    assert pages == queue_order(store)


async def test_refresh_keeps_a_deep_selection_and_an_edit_in_progress(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    sync_sources(config, store)
    start = utcnow() - timedelta(days=1)
    add(store, "box", paging_posts(12, start))
    app = make_app(config, store, page_size=5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        for _ in range(7):  # row 8 of the queue, on the second page
            await pilot.press("down")
        await pilot.pause()
        selected = app.rows[7].id
        await pilot.press("e", "end", "space", *"Sam")  # editing its draft
        # Meanwhile the poller stores six more urgent mentions: the selected row moves
        # past everything loaded so far.
        other = Store.open(db_url)
        try:
            add(other, "box", [(f"n{i}", f"acme outage {i}", "complaint", 0.99, start)
                               for i in range(6)])
        finally:
            other.close()
        app.reload()  # what the 10 s refresh does
        await pilot.pause()
        table = app.query_one("#queue", DataTable)
        assert app.rows[table.cursor_row].id == selected
        assert app.current is not None and app.current.mention.id == selected
        assert app.rows[0].priority == 0.99
        public = app.query_one("#public", TextArea)
        assert public.has_focus and public.text.endswith("please DM us. Sam")
        # Leaving the draft and moving around keeps the edit until it is approved.
        await pilot.press("escape", "down", "up")
        await pilot.pause()
        assert app.current.mention.id == selected
        assert public.text.endswith("please DM us. Sam")
        assert "edited, not approved yet" in str(app.query_one("#public-label", Label).content)
        # ...all of it on screen: the line wraps in its column, not cut off by the next one.
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "approved yet" in shot, shot
        edited = public.text
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert selected not in app.edits  # approved: nothing left to keep
    assert [r["text"] for r in receiver.received] == [edited]
    with store.session(readonly=True) as s:
        assert s.query(OutboxAction).one().mention_id == selected


# ----------------------------------------------------------------------------- the index


def plan(store: Store, statement: Any) -> str:
    """The database's plan for `statement`. PostgreSQL is told to avoid sequential scans and
    sorts, which on these small tables are cheaper: the plan then shows whether the partial
    index CAN serve the query in queue order (a sort it cannot avoid still shows)."""
    with store.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect,
                                    compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}"))
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_sort = off")
        return "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def test_queue_pages_and_flag_counts_read_the_partial_queue_index(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    sync_sources(config, store)
    add(store, "box", paging_posts(30, utcnow() - timedelta(days=1)))
    now = utcnow()
    later = queue(store, limit=10)[-1].key
    statements = {
        "first": queue_statement(QueueFilter(), now=now),
        "next": queue_statement(QueueFilter(), now=now, after=later),
        "source": queue_statement(QueueFilter(source="box", flag="complaint"), now=now),
        "snoozed": queue_statement(QueueFilter(view="snoozed"), now=now),
    }
    for name, statement in statements.items():
        text = plan(store, statement)
        assert "ix_mentions_queue" in text, (name, text)
        # Already in queue order: no sort of the waiting set, a page stops after its rows.
        assert "TEMP B-TREE FOR ORDER BY" not in text and "Sort" not in text, (name, text)
    counts = plan(store, flag_counts_statement(now))
    assert "ix_mentions_queue" in counts
    if store.engine.dialect.name == "sqlite":
        assert "COVERING INDEX ix_mentions_queue" in counts  # the table is not read


def test_the_queue_index_migration_goes_up_and_down(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0001")
        assert "ix_mentions_queue" not in {i["name"] for i in inspect(engine).get_indexes(
            "mentions")}
        db.upgrade(engine, "0002_tui_indexes")
        assert "ix_mentions_queue" in {i["name"] for i in inspect(engine).get_indexes(
            "mentions")}
        from alembic import command

        command.downgrade(db._alembic_config(engine), "0001")
        assert "ix_mentions_queue" not in {i["name"] for i in inspect(engine).get_indexes(
            "mentions")}
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- parsing


NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # a Tuesday, 08:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("typed, expected", [
    ("30m", "2026-12-01 07:30"),
    ("2h", "2026-12-01 09:00"),
    ("in 1h30m", "2026-12-01 08:30"),
    ("9:00", "2026-12-01 08:00"),          # later today, Berlin time
    ("7:30", "2026-12-02 06:30"),          # already past today: tomorrow
    ("tomorrow", "2026-12-02 08:00"),      # the start of the working day
    ("Tomorrow 9:00", "2026-12-02 08:00"),
    ("tomorrow at 2pm", "2026-12-02 13:00"),
    ("fri 14:30", "2026-12-04 13:30"),
    ("tuesday", "2026-12-08 08:00"),       # today is Tuesday: next week's
    ("2026-12-02T09:00", "2026-12-02 08:00"),
    ("2026-12-02 09:00+00:00", "2026-12-02 09:00"),
    ("2026-12-02T09:00Z", "2026-12-02 09:00"),
    ("2026-12-03", "2026-12-03 08:00"),
])
def test_snooze_times_people_type(typed: str, expected: str) -> None:
    until = triage.parse_snooze_until(typed, now=NOW, tz=BERLIN)
    assert until is not None and until.tzinfo is UTC
    assert until.strftime("%Y-%m-%d %H:%M") == expected


def test_snooze_now_wakes_and_a_dst_day_keeps_the_wall_clock() -> None:
    assert triage.parse_snooze_until("now", now=NOW, tz=BERLIN) is None
    before_change = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)  # Berlin leaves DST on the 25th
    until = triage.parse_snooze_until("tomorrow 9:00", now=before_change, tz=BERLIN)
    assert until is not None and until.astimezone(BERLIN).strftime("%d %H:%M") == "25 09:00"


@pytest.mark.parametrize("typed, message", [
    ("", "Say when the mention should come back"),
    ("soon", "'soon' is not a time I can read: use a duration"),
    ("90", "'90' needs a unit ('90m', '90h') or a clock time ('90:00')"),
    ("25:00", "'25:00' is not a time I can read"),
    ("tomorrow 13pm", "is not a time I can read"),
    ("2026-11-30 10:00", "'2026-11-30 10:00' is in the past (Mon 2026-11-30 10:00)"),
    ("99999999d", "'99999999d' is too long; durations are at most 3650d"),  # not OverflowError
])
def test_snooze_times_that_are_wrong_say_what_to_type(typed: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        triage.parse_snooze_until(typed, now=NOW, tz=BERLIN)
    assert message in str(info.value)


# ----------------------------------------------------------------------------- CLI


def test_cli_snooze_assign_resolve(postbox: None, receiver: Receiver,
                                   store: Store, db_url: str, tmp_path: Path) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    path = tmp_path / "mentionwatch.toml"
    path.write_text(f'[brand]\nname = "Acme"\nterms = ["acme"]\n\n[database]\nurl = "{db_url}"\n'
                    '\n[[sources]]\nname = "box"\nkind = "rss"\nurl = "http://127.0.0.1:9/f"\n',
                    encoding="utf-8")
    mid = str(ids["urgent"])

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--config", str(path), *args])

    ok = run("snooze", mid, "tomorrow", "9:00")
    assert ok.exit_code == 0 and "Snoozed mention" in ok.output, ok.output
    bad = run("snooze", mid, "soon")
    assert bad.exit_code == 2 and "'soon' is not a time I can read" in bad.output
    assert run("assign", mid, "Priya").exit_code == 0
    assert run("assign", mid).exit_code == 2  # neither a name nor --nobody
    assert run("resolve", mid).exit_code == 0
    missing = run("resolve", "999999")
    assert missing.exit_code == 1 and "No mention with id 999999" in str(missing.exception)
    with store.session(readonly=True) as s:
        mention = s.get(Mention, ids["urgent"])
        assert mention is not None
        assert (mention.status, mention.assigned_to) == ("resolved", "Priya")
        assert mention.snoozed_until is not None and mention.snoozed_until > utcnow()
    assert [e[0] for e in events(store, ids["urgent"])] == ["resolve", "assign", "snooze"]
    assert {e[1] for e in events(store, ids["urgent"])} == {OPERATOR}


# ----------------------------------------------------------------------------- answered


async def test_answered_elsewhere_counts_as_answered_and_undo_goes_back_in_order(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    notes = record_notes(app)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("h")  # the urgent one, answered on the forum by hand
        await pilot.pause()
        await pilot.press("d")  # the hostile one, not relevant
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["ask"]]
        with store.session(readonly=True) as s:
            urgent = s.get(Mention, ids["urgent"])
            assert urgent is not None and urgent.status == "replied_elsewhere"
            assert urgent.first_response_at is not None  # the reports count it answered
        await pilot.press("v", "v", "v")  # the answered view holds it
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"]]
        await pilot.press("v", "v", "v")  # back to open
        await pilot.press("u")  # the last first: the hostile one
        await pilot.pause()
        assert {r.id for r in app.rows} == {ids["hostile"], ids["ask"]}
        await pilot.press("u")
        await pilot.pause()
        assert {r.id for r in app.rows} == {ids["urgent"], ids["hostile"], ids["ask"]}
        await pilot.press("u")
        await pilot.pause()
    assert any(n.startswith("Nothing to undo") for n in notes)
    with store.session(readonly=True) as s:
        urgent = s.get(Mention, ids["urgent"])
        assert urgent is not None and urgent.first_response_at is None  # undone as well
    assert ("replied_elsewhere", OPERATOR) in [(e, a) for e, a, _ in events(store, ids["urgent"])]


async def test_undo_leaves_what_another_operator_did_meanwhile_and_says_so(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    """Two operators on one database (or two screens on one SQLite file): `u` puts a
    mention back only if nobody changed it after the key it undoes; otherwise it says who
    did what and leaves the mention as they left it. What the machine does by itself (an
    alert e-mailed) is no such change."""
    config = box_config(db_url, receiver)
    ids = seed(store, config)
    app = make_app(config, store)
    notes = record_notes(app)
    other = Store.open(db_url)  # the other operator's screen: a store of its own
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            await pilot.press("d")  # dismisses the urgent one
            await pilot.pause()
            await pilot.press("x")  # resolves the hostile one
            await pilot.pause()
            assert [r.id for r in app.rows] == [ids["ask"]]
            # Meanwhile alice answers the urgent one anyway and dismisses the hostile one.
            outbox.take_approval(other, ids["urgent"], "reply", operator="alice")
            outbox.mark(other, ids["hostile"], "dismissed", operator="alice", reason="spam")
            await pilot.press("u")
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            assert [r.id for r in app.rows] == [ids["ask"]]  # neither came back
            await pilot.press("d")  # the control: an alert for it, then u
            await pilot.pause()
            with other.engine.begin() as conn:
                record(conn, "mentionwatch", "alert_sent", ids["ask"], trigger="test")
            await pilot.press("u")
            await pilot.pause()
            assert [r.id for r in app.rows] == [ids["ask"]]
    finally:
        other.close()
    at = {e.event: e.at.astimezone() for e in recent(store, limit=200)}
    assert notes[-4:-1] == [
        f"#{ids['hostile']} was not undone: alice dismissed it at {at['dismiss']:%H:%M}, "
        "after your change. It stays dismissed.",
        f"#{ids['urgent']} was not undone: alice approved it at {at['approve']:%H:%M}, "
        "after your change. It stays dismissed.",
        f"Dismissed #{ids['ask']} (not relevant). Press u to undo."]
    assert notes[-1] == f"#{ids['ask']} is back in the queue."
    with store.session(readonly=True) as s:
        assert {i: s.get(Mention, i).status for i in (ids["urgent"], ids["hostile"])  # type: ignore[union-attr]
                } == {ids["urgent"]: "dismissed", ids["hostile"]: "dismissed"}
    for name in ("urgent", "hostile"):
        assert not [e for e, _, _ in events(store, ids[name]) if e.startswith("undo")]


async def test_search_reads_titles_and_takes_wildcards_literally(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = box_config(db_url, receiver)
    sync_sources(config, store)
    now = utcnow()
    ids = add(store, "box", [("t1", "see the title", "complaint", 0.5, now),
                             ("p1", "100% down again", "complaint", 0.4, now),
                             ("u1", "my_router is dead", "complaint", 0.3, now),
                             ("n1", "acme opened a shop", None, 0.0, now)])
    # `mentions list --flag none`: the mentions no rule flagged.
    assert [m.id for m in store.list_mentions(flag="none")] == [ids["n1"]]
    with store.engine.begin() as conn:
        conn.execute(Mention.__table__.update().where(Mention.id == ids["t1"])  # type: ignore[attr-defined]
                     .values(title="Outage hits the east side"))
    found = lambda words: {r.id for r in queue(store, search=words)}  # noqa: E731
    assert found("outage hits") == {ids["t1"]}
    assert found("%") == {ids["p1"]} and found("_") == {ids["u1"]}
    assert found("100%") == {ids["p1"]} and found("0% d") == {ids["p1"]}
    assert {m.id for m in store.list_mentions(search="_")} == {ids["u1"]}


def test_a_reply_over_the_source_limit_is_refused_at_approval(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_outbox import PostboxConnector

    config = box_config(db_url, receiver)
    ids = seed(store, config)
    monkeypatch.setattr(PostboxConnector, "reply_limit", 20)
    with pytest.raises(outbox.OutboxError, match=r"is 31 characters as postbox counts them; the "
                                                  r"limit is 20\. Shorten it by 11"):
        outbox.take_approval(store, ids["urgent"], "reply", operator=OPERATOR,
                             text="x" * 31)
    with pytest.raises(outbox.OutboxError, match="the limit is 20"):  # the draft as it is
        outbox.take_approval(store, ids["urgent"], "reply", operator=OPERATOR)
    assert outbox.take_approval(store, ids["urgent"], "reply", operator=OPERATOR,
                                text="Sorry, DM us.").state == "approved"


async def test_open_says_what_it_did_and_shows_the_link_without_a_browser(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    config = box_config(db_url, receiver)
    sync_sources(config, store)
    result = store.store_batch("box", Batch([MentionIn(external_id="l1", text="acme down",
                                                       url="https://forum.example/t/1")]),
                               want_ids=True)
    with store.engine.begin() as conn:
        store.write_judgements(conn, [(result.mention_ids[0], Judgement(
            flag="complaint", priority=0.5, sentiment=-0.3, public_draft="Sorry!"))])
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) and False)
    app = make_app(config, store)
    notes = record_notes(app)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
    assert opened == ["https://forum.example/t/1"]
    assert "No browser to open here; the link is https://forum.example/t/1" in notes

"""The triage TUI driven through Textual's run_test() against a real database, with a real
HTTP server on 127.0.0.1 receiving what is approved."""

from __future__ import annotations

import re
from typing import Any

from textual.widgets import DataTable, TextArea

from mentionwatch.connector import Batch, MentionIn
from mentionwatch.judgement import Judgement
from mentionwatch.models import Mention, OutboxAction
from mentionwatch.pipeline import build_connector, sync_sources
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from tests.conftest import make_config
from tests.test_outbox import Receiver

HOSTILE = ("[bold red]Acme[/] sucks [link=https://evil.example]click[/link] [/] "
           "\x1b[31mred\x1b[0m " + "very long line " * 40)


def seed(store: Store, config: Any) -> dict[str, int]:
    sync_sources(config, store)
    posts = [("urgent", "Acme is down and I am furious", "complaint", 0.9),
             ("hostile", HOSTILE, "complaint", 0.5),
             ("ask", "how do I reset my acme router?", "question", 0.2),
             ("plain", "acme opened a store", None, 0.0)]
    result = store.store_batch("box", Batch([MentionIn(external_id=e, text=t)
                                             for e, t, _, _ in posts]), want_ids=True)
    ids = dict(zip([p[0] for p in posts], result.mention_ids, strict=True))
    with store.engine.begin() as conn:
        store.write_judgements(conn, [
            (ids[e], Judgement(flag=f, priority=p, sentiment=-0.5,
                               public_draft=f"Sorry about {e}! Please DM us." if f else None,
                               private_draft="Hi, what's your email?" if f else None,
                               private_channel="dm"))
            for e, _, f, p in posts])
    return ids


def make_app(config: Any, store: Store) -> TriageApp:
    return TriageApp(config, store, refresh_every=3600,
                     connector_for=lambda source: build_connector(source, config))


async def test_queue_is_sorted_and_user_text_is_inert(postbox: None, receiver: Receiver,
                                                      store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["urgent"], ids["hostile"], ids["ask"]]
        await pilot.press("down")
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["hostile"]
        screen = app.export_screenshot()
        # Markup and links show as the literal characters a customer typed; no crash on [/].
        assert "[bold&#160;red]Acme[/]" in screen or "[bold red]Acme[/]" in screen
        assert "[link=https://evil.example]click[/link]" in screen.replace("&#160;", " ")
        assert "\x1b" not in screen


async def test_home_and_end_go_to_the_first_and_last_row(postbox: None, receiver: Receiver,
                                                         store: Store, db_url: str) -> None:
    # DataTable's own Home and End scroll sideways: the cursor stayed where it was, and the
    # next key (a: approve) acted on that row rather than on the top one.
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["ask"]
        await pilot.press("home")
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["urgent"]


async def test_edit_approve_sends_once_through_the_source(postbox: None, receiver: Receiver,
                                                          store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("e")  # edit the public draft in place
        editor = app.query_one("#public", TextArea)
        assert editor.has_focus
        editor.move_cursor(editor.document.end)
        await pilot.press("space", "S", "a", "m")
        await pilot.press("escape", "a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("home")
        assert ids["urgent"] not in [r.id for r in app.rows]  # answered: off the queue
    assert [r["text"] for r in receiver.received] == ["Sorry about urgent! Please DM us. Sam"]
    with store.session(readonly=True) as s:
        [action] = s.query(OutboxAction).all()
        assert (action.state, action.mention_id) == ("sent", ids["urgent"])
        mention = s.get(Mention, ids["urgent"])
        assert mention is not None and mention.status == "replied"


async def test_quitting_keeps_unapproved_edits_in_the_drafts(postbox: None, receiver: Receiver,
                                                              store: Store, db_url: str) -> None:
    from mentionwatch.audit import recent
    from mentionwatch.models import Draft

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        editor = app.query_one("#public", TextArea)
        editor.move_cursor(editor.document.end)
        await pilot.press("space", "K", "i", "m")
        await pilot.press("escape", "down")  # move on: the edit is only in memory so far
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert receiver.received == []  # kept, not approved
    with store.session(readonly=True) as s:
        draft = s.query(Draft).filter_by(mention_id=ids["urgent"]).one()
        assert draft.public_text == "Sorry about urgent! Please DM us. Kim"
        assert draft.edited_by == app.operator
        assert s.query(OutboxAction).count() == 0
    assert [e.event for e in recent(store, mention_id=ids["urgent"])] == ["edit"]


async def test_dismiss_undo_filter_search_and_a_poller_writing(postbox: None, receiver: Receiver,
                                                               store: Store, db_url: str
                                                               ) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    ids = seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert ids["urgent"] not in [r.id for r in app.rows]
        await pilot.press("u")
        await pilot.pause()
        assert app.rows[0].id == ids["urgent"]
        await pilot.press("f", "f")  # all -> crisis -> complaint
        await pilot.pause()
        assert {r.flag for r in app.rows} == {"complaint"}
        await pilot.press("f", "f", "f")  # question, praise, back to all
        await pilot.press("down")  # select the hostile one
        await pilot.pause()
        # Meanwhile a poller (another connection) stores a new, more urgent mention.
        other = Store.open(db_url)
        try:
            [new_id] = other.store_batch("box", Batch([MentionIn(
                external_id="late", text="acme refund now")]), want_ids=True).mention_ids
            with other.engine.begin() as conn:
                other.write_judgements(conn, [(new_id, Judgement(
                    flag="complaint", priority=0.99, sentiment=-0.9, public_draft="Sorry!"))])
        finally:
            other.close()
        await pilot.press("r")
        await pilot.pause()
        assert app.rows[0].id == new_id
        assert app.current is not None and app.current.mention.id == ids["hostile"]
        await pilot.press("slash")
        await pilot.press(*"reset", "enter")
        await pilot.pause()
        assert [r.id for r in app.rows] == [ids["ask"]]
        table = app.query_one("#queue", DataTable)
        assert table.row_count == 1


async def test_stats_view_shows_the_report_figures(postbox: None, receiver: Receiver,
                                                   store: Store, db_url: str) -> None:
    from mentionwatch.tui.stats import StatsScreen

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    seed(store, config)
    app = make_app(config, store)
    async with app.run_test(size=(160, 60)) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, StatsScreen)
        screen = re.sub(r"<[^>]+>", "", app.export_screenshot()).replace("&#160;", " ")
        assert "Mentions report" in screen and "Total 4" in screen
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, StatsScreen)


def test_detail_shows_a_stored_multi_line_author_and_title_on_one_line(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    """Rows stored before ingest flattened these fields still show them on one line: a line
    break in an author's name must not print a line that reads as one of the screen's own."""
    from mentionwatch.connector import AuthorIn
    from mentionwatch.tui.app import render_detail
    from mentionwatch.tui.queries import detail

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    sync_sources(config, store)
    (mention_id,) = store.store_batch("box", Batch([MentionIn(
        external_id="x", text="acme is down", title="acme outage\nlink: http://evil.example",
        author=AuthorIn(handle="ann\nengagement: 1000000 likes",
                        display_name="Acme Security\nauthor: acme"))]),
        want_ids=True).mention_ids
    found = detail(store, mention_id)
    assert found is not None
    lines = render_detail(found).plain.splitlines()
    assert "author: ann engagement: 1000000 likes (Acme Security author: acme)" in lines
    assert "acme outage link: http://evil.example" in lines
    assert [line for line in lines if line.startswith(("link:", "engagement:"))] == [
        "engagement: 0 likes, 0 reposts, 0 replies"]

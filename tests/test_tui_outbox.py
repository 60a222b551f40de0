"""The TUI's outbox: second approvals (who waits for whom), failed sends shown with the
source's message and retried or edited, `unknown` ones settled by a person, and the demo,
whose feeds are answered at the source as for real. Textual's run_test() against a real
database; a real HTTP server on 127.0.0.1 receives what is sent."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea

from mentionwatch import outbox
from mentionwatch.audit import recent
from mentionwatch.errors import ConfigError
from mentionwatch.models import OutboxAction
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from mentionwatch.tui.outbox_view import OutboxScreen
from tests.conftest import make_config
from tests.test_approvals import TEAM, action_row, box
from tests.test_outbox import Receiver, setup_mention
from tests.test_tui import make_app

SIZE = (180, 50)


def screen_text(app: TriageApp) -> str:
    return re.sub(r"<[^>]+>", "", app.export_screenshot()).replace("&#160;", " ")


def notices(app: TriageApp) -> str:
    """The notifications shown so far (toasts are not part of export_screenshot())."""
    return "\n".join(n.message for n in app._notifications)


async def settle(app: TriageApp, pilot: Any) -> None:
    """Let the sender worker finish and the screen catch up."""
    await app.workers.wait_for_complete()
    await pilot.pause()


def set_state(store: Store, action_id: int, state: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(OutboxAction.__table__.update()  # type: ignore[attr-defined]
                     .where(OutboxAction.id == action_id).values(state=state))


async def test_crisis_reply_waits_for_a_second_approver_in_the_tui(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(db_url, box(receiver), team=TEAM)
    setup_mention(store, config, flag="crisis")
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "sam")
    app = make_app(config, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await settle(app, pilot)
        text = screen_text(app)
        assert "outbox: reply needs approval  approved by sam; waiting for dana or lee" in text
        assert "outbox: 1 waiting for a second approval" in text
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, OutboxScreen)
        assert "Waiting for dana or lee to approve (a)" in screen_text(app)
        await pilot.press("a")  # sam approved first: refused, on screen
        await settle(app, pilot)
        assert "sam approved this first" in notices(app)
        assert "waits for a second approval by dana or lee" in notices(app)
    [waiting] = outbox.actions(store)
    assert waiting.state == "needs_approval" and receiver.received == []

    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "dana")
    app = make_app(config, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("a")
        await settle(app, pilot)
        assert "Second approval of the reply" in notices(app)
    assert len(receiver.received) == 1
    row = action_row(store, waiting.id)
    assert (row.state, row.approved_by, row.second_approver) == ("sent", "sam", "dana")


async def test_failed_send_shows_the_message_and_is_retried_or_edited(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "lee")
    config = make_config(db_url, box(receiver))
    first = setup_mention(store, config)
    receiver.status = 503
    app = make_app(config, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await settle(app, pilot)
        assert "outbox: 1 failed" in screen_text(app)
        await pilot.press("w")
        await pilot.pause()
        assert "message: postbox refused (503)" in screen_text(app)
        # The footer offers the keys that apply to a failed send...
        assert "Retry" in screen_text(app) and "Mark sent" not in screen_text(app)
        receiver.status = 200
        await pilot.press("r")
        await settle(app, pilot)
        assert "sent" in screen_text(app)
        # ...and none of them for one that went: it had Approve, Retry and Reject, which
        # only answered with refusals.
        for key in ("Approve", "Retry", "Reject", "Mark sent", "Edit"):
            assert key not in screen_text(app), key
        assert "Back" in screen_text(app)
    [action] = outbox.actions(store)
    assert (action.mention_id, action.state, action.attempts) == (first, "sent", 2)
    assert len(receiver.received) == 2

    second = setup_mention(store, config, external_id="m2")
    receiver.status = 403
    outbox.approve(store, second, "reply", operator="kim")
    outbox.send_pending(config, store, connector_for=app.connector_for)
    receiver.status = 200
    app = make_app(config, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        assert "postbox refused (403)" in screen_text(app)
        await pilot.press("e")
        editor = app.screen.query_one("#outbox-text", TextArea)
        assert editor.has_focus
        editor.move_cursor(editor.document.end)
        await pilot.press("space", "T", "y")
        await pilot.press("escape", "a")
        await settle(app, pilot)
    assert receiver.received[-1]["text"] == "Sorry! Please DM us. Ty"
    assert len(receiver.received) == 4
    events = [(e.actor, e.event) for e in recent(store, mention_id=second)]
    assert ("lee", "edit") in events and ("lee", "approve") in events


async def test_unknown_outcomes_are_settled_by_a_person(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config)
    older = outbox.approve(store, mid, "reply", operator="kim", team=config.team)
    newer = outbox.approve(store, mid, "private", operator="kim", team=config.team)
    set_state(store, older, "unknown")
    set_state(store, newer, "unknown")
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "lee")
    app = make_app(config, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "2 unknown: check at the source" in screen_text(app)
        await pilot.press("w")
        await pilot.pause()
        assert "It may have been posted: check at the source" in screen_text(app)
        await pilot.press("s")  # the newest unknown: it is there
        await settle(app, pilot)
        await pilot.press("n")  # the other: it is not
        await settle(app, pilot)
        assert "not posted (checked at the source by lee)" in screen_text(app)
    assert action_row(store, newer).state == "sent"
    assert action_row(store, older).state == "failed"
    assert receiver.received == []  # settling never sends anything
    assert {(e.actor, (e.details or {}).get("outcome")) for e in recent(store, mention_id=mid)
            if e.event == "resolve_unknown"} == {("lee", "sent"), ("lee", "not sent")}


def test_tui_refuses_an_operator_outside_the_team(store: Store, db_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "mallory")
    config = make_config(db_url, [], team=TEAM)
    with pytest.raises(ConfigError, match=r"team\.operators: the operator 'mallory'"):
        TriageApp(config, store)


async def test_demo_answers_feed_mentions_as_feeds_are_answered(tmp_path: Path) -> None:
    """The demo's sources are feeds, which have no posting: approving a reply to one had
    "sent" it (simulated), which no real feed source can do. Now it says so, in this
    screen's keys, and the mention is answered at the source and marked with h."""
    from mentionwatch.cli.demo import build_demo
    from mentionwatch.models import Mention

    config, store, _report = build_demo(tmp_path / "demo.db")
    try:
        app = TriageApp(config, store, refresh_every=3600, simulated=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "DEMO: nothing leaves this machine" in screen_text(app)
            assert app.rows[0].flag == "crisis"
            first_complaint = next(i for i, r in enumerate(app.rows) if r.flag == "complaint"
                                   and r.source_kind in ("rss", "google_alerts"))
            row = app.rows[first_complaint]
            await pilot.press(*["down"] * first_complaint, "b")  # reply and follow-up
            await settle(app, pilot)
            told = notices(app)
            assert (f"#{row.id}: {row.source_kind} sources have no posting: answer at the "
                    "source (o), then h (? for more)") in told
            assert told.count("have no posting") == 1  # once for both, not per kind
            assert ("Press o to open it and answer there (the draft is yours to copy), then h "
                    "to mark it answered elsewhere.") in app.messages[0].text  # under ?
            await pilot.press("h")
            await settle(app, pilot)
        assert outbox.actions(store) == []  # nothing approved, nothing "sent"
        with store.session(readonly=True) as session:
            mention = session.get(Mention, row.id)
            assert mention is not None and mention.status == "replied_elsewhere"
        events = [e.event for e in recent(store, mention_id=row.id)]
        assert "approve" not in events and "replied_elsewhere" in events
    finally:
        store.close()


async def test_demo_shows_an_approved_reply_going_through_the_outbox(tmp_path: Path) -> None:
    """The demo's Mastodon sample can post: approving a reply to it goes through the outbox to
    the simulated sender, so a newcomer sees what approval does (the feeds cannot show it)."""
    from mentionwatch.cli.demo import build_demo

    config, store, report = build_demo(tmp_path / "demo.db")
    try:
        assert {o.name: o.stored for o in report.outcomes}["mastodon-acme"] == 3
        app = TriageApp(config, store, refresh_every=3600, simulated=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            at = next(i for i, r in enumerate(app.rows) if r.source_kind == "mastodon"
                      and r.flag == "complaint")
            row = app.rows[at]
            await pilot.press(*["down"] * at, "a")
            await settle(app, pilot)
            assert "(simulated: nothing was posted)" in notices(app)
        sent = outbox.actions(store)
        assert [(a.mention_id, a.action, a.state) for a in sent] == [(row.id, "reply", "sent")]
        assert row.author and sent[0].text.startswith(f"@{row.author} ")
        assert row.author.endswith("@social.example")  # the same author on every run
    finally:
        store.close()


def test_demo_opens_the_tui_in_a_terminal_and_quits(tmp_path: Path) -> None:
    """`mentionwatch demo` on a (pseudo) terminal opens the screen; q ends it with 0."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "160", "LINES": "45",
                "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mentionwatch", "demo"], stdin=child,
                            stdout=child, stderr=child, env=env, cwd=tmp_path,
                            start_new_session=True)
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"DEMO: nothing leaves this machine" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                seen += os.read(main, 65536)
        assert b"DEMO: nothing leaves this machine" in seen
        os.write(main, b"q")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                try:
                    os.read(main, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)

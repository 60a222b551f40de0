"""Private data in public: the triage screen warns over a post that shows a phone number or
an order number, and holds back a public reply that would repeat one until the key is pressed
again. The real TriageApp driven through Textual's run_test() against SQLite and PostgreSQL,
with a real HTTP server on 127.0.0.1 receiving what is posted."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Static, TextArea

from mentionwatch.connector import Batch, MentionIn
from mentionwatch.judgement import Judgement
from mentionwatch.models import OutboxAction
from mentionwatch.pipeline import sync_sources
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from tests.conftest import BRAND, make_config
from tests.test_outbox import Receiver
from tests.test_tui_screens import cell_style, readable
from tests.test_tui_triage import make_app, record_notes, screen_text

OPERATOR = "dana"
SHARED = "@acme order #4471 never came, call me on 07700 900123"
WARNING = ("⚠ this public post shows an order or account number (…71) and a phone number "
           "(…0123): don't repeat them in the reply; the private follow-up can ask them to "
           "delete the post")


@pytest.fixture(autouse=True)
def _operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", OPERATOR)


def config_for(db_url: str, receiver: Receiver) -> Any:
    """The test brand, with a support phone as well as its support address."""
    return make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}],
                       brand={**BRAND, "support_phone": "+44 20 7946 0000"})


def seed(store: Store, config: Any, posts: list[tuple[str, str, float, str, str]]
         ) -> dict[str, int]:
    """Store (external id, text, priority, public draft, private draft) as complaints."""
    sync_sources(config, store)
    result = store.store_batch("box", Batch([MentionIn(external_id=e, text=t)
                                             for e, t, _, _, _ in posts]), want_ids=True)
    ids = dict(zip([p[0] for p in posts], result.mention_ids, strict=True))
    with store.engine.begin() as conn:
        store.write_judgements(conn, [
            (ids[e], Judgement(flag="complaint", priority=p, sentiment=-0.5, public_draft=pub,
                               private_draft=private, private_channel="dm"))
            for e, _, p, pub, private in posts])
    return ids


def detail_text(app: TriageApp) -> str:
    content = app.query_one("#detail", Static).content
    assert not isinstance(content, str)  # rich Text, never markup to parse
    return str(content)


def actions(store: Store) -> list[tuple[int, str, str]]:
    with store.session(readonly=True) as s:
        return sorted((a.mention_id, a.action, a.text) for a in s.query(OutboxAction).all())


async def test_the_detail_warns_over_a_post_with_private_data_and_not_over_a_clean_one(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = config_for(db_url, receiver)
    ids = seed(store, config, [
        ("shared", SHARED, 0.9, "Sorry! Please DM us.", "Hi, sorry."),
        ("clean", "acme is down again, third time this week", 0.5, "Sorry!", "Hi."),
        ("support", "I emailed help@acme.example and rang +44 20 7946 0000", 0.2, "Sorry!",
         "Hi.")])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["shared"]
        lines = detail_text(app).splitlines()
        assert lines[1] == WARNING  # near the top: under the mention's id, above its text
        assert "⚠ this public post shows an order or account number (…71)" in screen_text(app)
        assert readable(cell_style(app, app.query_one("#detail", Static), "⚠ this public"))
        await pilot.press("down")
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["clean"]
        assert "this public post shows" not in detail_text(app)
        assert "this public post shows" not in screen_text(app)
        await pilot.press("down")  # the brand's own support address and phone: not private
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["support"]
        assert "this public post shows" not in detail_text(app)


async def test_the_warning_is_marked_without_colour_under_no_color(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    config = config_for(db_url, receiver)
    seed(store, config, [("shared", SHARED, 0.9, "Sorry!", "Hi.")])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert app.no_color
        detail = app.query_one("#detail", Static)
        warning = cell_style(app, detail, "⚠ this public")
        text = cell_style(app, detail, "never came")
        assert warning.reverse and warning.bold and not text.reverse
        assert readable(warning)


async def test_a_public_reply_repeating_the_customers_phone_waits_for_a_second_press(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = config_for(db_url, receiver)
    reply = "Sorry! We'll call you on 07700 900123 today."
    ids = seed(store, config, [("shared", SHARED, 0.9, reply, "Hi, sorry.")])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        notes = record_notes(app)
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert actions(store) == []  # held: nothing approved, nothing sent
        assert receiver.received == []
        assert notes == [f"#{ids['shared']} not approved yet: the public reply shows a phone "
                         "number (…0123). Edit it out, or press a again to post it anyway."]
        assert "900123" not in notes[0]
        # The text changed (still with the number): held again, and said again.
        editor = app.query_one("#public", TextArea)
        editor.text = reply + " Sam"
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert actions(store) == [] and len(notes) == 2
        await pilot.press("a")  # the same key on the same text: posted anyway
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert ids["shared"] not in [r.id for r in app.rows]  # answered: off the queue
    assert actions(store) == [(ids["shared"], "reply", reply + " Sam")]
    assert [r["text"] for r in receiver.received] == [reply + " Sam"]


async def test_b_is_held_whole_and_the_private_follow_up_is_not_checked(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = config_for(db_url, receiver)
    follow_up = "Hi, is 07700 900123 still the best number for you?"
    ids = seed(store, config, [
        ("both", SHARED, 0.9, "Sorry about order #4471, we're on it.", follow_up),
        ("dm", "acme sent me the wrong parcel", 0.5, "Sorry!", follow_up)])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        notes = record_notes(app)
        await pilot.press("b")
        await pilot.pause()
        assert actions(store) == []  # neither the reply nor the follow-up
        assert "an order or account number (…71)" in notes[0] and "press b again" in notes[0]
        await pilot.press("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [(m, k) for m, k, _ in actions(store)] == [(ids["both"], "private"),
                                                          (ids["both"], "reply")]
        await pilot.press("home")
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == ids["dm"]
        await pilot.press("p")  # a private channel: approved on the first press
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert (ids["dm"], "private", follow_up) in actions(store)


async def test_the_brands_own_contact_details_in_a_reply_are_approved_on_the_first_press(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = config_for(db_url, receiver)
    ours = "Sorry! Email help@acme.example or call 020 7946 0000 and we'll sort it."
    theirs = "Sorry! We'll write to you at jane.doe@example.com today."
    ids = seed(store, config, [("theirs", "acme lost my order, jane.doe@example.com", 0.9,
                                theirs, "Hi."),
                               ("ours", "acme lost my parcel", 0.5, ours, "Hi.")])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        notes = record_notes(app)
        await pilot.press("a")  # the customer's address: held
        await pilot.pause()
        assert actions(store) == []
        assert "an email address (j…@example.com)" in notes[0]
        await pilot.press("down", "a")  # only the brand's own: approved at once
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert actions(store) == [(ids["ours"], "reply", ours)]
    assert [r["text"] for r in receiver.received] == [ours]


async def test_hostile_text_in_a_post_with_private_data_stays_literal(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = config_for(db_url, receiver)
    hostile = ("[bold]x[/] [link=https://evil.example]click[/link] [@click=app.quit]q[/] [/] "
               "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07osc\x1b]8;;\x07 "
               "call me on 07700 900123 [b]now[/b]")
    seed(store, config, [("hostile", hostile, 0.9, "Sorry [b]x[/b]!", "Hi.")])
    app = make_app(config, store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        text = detail_text(app)
        assert ("⚠ this public post shows a phone number (…0123): don't repeat it in the "
                "reply") in text
        screen = screen_text(app)
        assert "this public post shows a phone number (…0123)" in screen
        for literal in ("[bold]x[/]", "[link=https://evil.example]click[/link]",
                        "[@click=app.quit]q[/]", "[b]now[/b]"):
            assert literal in screen, literal
        assert "\x1b" not in screen and "\x07" not in screen
        assert app.is_running  # "[@click=app.quit]" did not quit, "[/]" did not crash

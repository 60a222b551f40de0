"""A public reply that shows a customer's phone, email, order or card number is not approved
by `mentionwatch approve` (unless --allow-private-data) nor on the first `a` of the outbox
view, as in the queue (tests/test_tui_privacy.py). SQLite and PostgreSQL; replies posted to
a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea

from mentionwatch import outbox
from mentionwatch.connector import Batch, MentionIn
from mentionwatch.judgement import Judgement
from mentionwatch.pipeline import sync_sources
from mentionwatch.store import Store
from mentionwatch.tui.outbox_view import OutboxScreen
from tests.conftest import BRAND, make_config
from tests.test_approvals import TEAM
from tests.test_approvals import write_config as approvals_config
from tests.test_decisions import run_cli
from tests.test_outbox import Receiver
from tests.test_tui import make_app
from tests.test_tui_outbox import notices, settle

PHONE = "07700 900123"
OWN_PHONE = "+44 20 7946 0000"


def write_config(tmp_path: Path, db_url: str, receiver: Receiver, team: bool = False) -> Path:
    return approvals_config(
        tmp_path, db_url, f'[[sources]]\nname = "box"\nkind = "postbox"\nurl = "{receiver.url}"\n',
        team=team, brand=f'support_email = "help@acme.example"\nsupport_phone = "{OWN_PHONE}"\n')


def seed(store: Store, config: Any, drafts: dict[str, tuple[str, str]],
         flag: str = "complaint") -> dict[str, int]:
    """One mention per external id, with its (public, private) drafts."""
    sync_sources(config, store)
    result = store.store_batch("box", Batch([
        MentionIn(external_id=e, text=f"acme lost my order, call me on {PHONE}",
                  url=f"https://postbox.test/{e}") for e in drafts]), want_ids=True)
    ids = dict(zip(drafts, result.mention_ids, strict=True))
    with store.engine.begin() as conn:
        store.write_judgements(conn, [
            (ids[e], Judgement(flag=flag, priority=0.5, sentiment=-0.5, public_draft=public,
                               private_draft=private, private_channel="dm"))
            for e, (public, private) in drafts.items()])
    return ids


def approved(store: Store) -> list[tuple[int, str, str]]:
    return sorted((a.mention_id, a.action, a.text) for a in outbox.actions(store))


def test_cli_refuses_a_public_reply_with_the_customers_phone_until_told(
        postbox: None, receiver: Receiver, store: Store, db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "dana")
    path = write_config(tmp_path, db_url, receiver)
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}],
                         brand={**BRAND, "support_phone": OWN_PHONE})
    leaky = f"Sorry! We'll call you on {PHONE} today."
    ours = f"Sorry! Call us on {OWN_PHONE} and we'll sort it."
    ids = seed(store, config, {"edit": (leaky, "Hi."), "anyway": (leaky, "Hi."),
                               "ours": (ours, "Hi."),
                               "follow-up": ("Sorry!", f"Is {PHONE} still your number?")})

    def approve(key: str, *extra: str) -> tuple[int, str]:
        return run_cli(["--config", str(path), "approve", str(ids[key]), *extra],
                       monkeypatch, capsys)

    code, said = approve("edit", "--private")
    assert code == 1
    assert (f"Mention {ids['edit']} not approved: the public reply shows a phone number "
            "(…0123).") in said
    assert "run the same command with --allow-private-data to post it anyway" in said
    assert "900123" not in said  # masked, in the refusal too
    assert approved(store) == []  # nor the follow-up asked for with it
    code, said = approve("edit", "--text", "Sorry! Please DM us your number.")
    assert code == 0, said
    code, said = approve("anyway", "--allow-private-data")
    assert code == 0, said
    code, said = approve("ours")  # the brand's own support phone is no private data
    assert code == 0, said
    code, said = approve("follow-up", "--no-public", "--private")  # a private channel
    assert code == 0, said
    assert approved(store) == [
        (ids["edit"], "reply", "Sorry! Please DM us your number."),
        (ids["anyway"], "reply", leaky), (ids["ours"], "reply", ours),
        (ids["follow-up"], "private", f"Is {PHONE} still your number?")]


def test_cli_second_approver_rewriting_a_waiting_reply_is_checked_too(
        postbox: None, receiver: Receiver, store: Store, db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, db_url, receiver, team=True)
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}],
                         team=TEAM, brand={**BRAND, "support_phone": OWN_PHONE})
    ids = seed(store, config, {"crisis": ("Sorry! Please DM us.", "Hi.")}, flag="crisis")
    argv = ["--config", str(path), "approve", str(ids["crisis"])]
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "sam")
    assert run_cli(argv, monkeypatch, capsys)[0] == 0  # waits for a second approver
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "lee")
    rewrite = f"Sorry! We'll ring you on {PHONE}."
    code, said = run_cli([*argv, "--text", rewrite], monkeypatch, capsys)
    assert code == 1 and "shows a phone number (…0123)" in said
    [waiting] = outbox.actions(store)
    assert (waiting.state, waiting.text, waiting.approved_by) == (
        "needs_approval", "Sorry! Please DM us.", "sam")
    code, said = run_cli(argv, monkeypatch, capsys)  # the text sam approved: signed off
    assert code == 0, said
    assert [(a.state, a.second_approver) for a in outbox.actions(store)] == [
        ("approved", "lee")]


async def test_outbox_view_holds_a_retried_reply_with_private_data_for_a_second_press(
        postbox: None, receiver: Receiver, store: Store, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "lee")
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}],
                         brand={**BRAND, "support_phone": OWN_PHONE})
    ids = seed(store, config, {"m1": ("Sorry! Please DM us.", "Hi.")})
    receiver.status = 503
    outbox.approve(store, ids["m1"], "reply", operator="kim")
    outbox.send_pending(config, store, connector_for=make_app(config, store).connector_for)
    receiver.status = 200
    refused = list(receiver.received)  # the receiver keeps what it refused too
    leaky = f"Sorry! We'll call you on {PHONE}."
    app = make_app(config, store)
    async with app.run_test(size=(180, 50)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, OutboxScreen)
        app.screen.query_one("#outbox-text", TextArea).text = leaky
        await pilot.press("a")
        await settle(app, pilot)
        said = notices(app)
        assert (f"Mention {ids['m1']} not approved: the public reply shows a phone number "
                "(…0123).") in said and "press a again to post it anyway" in said
        assert "900123" not in said
        assert [a.state for a in outbox.actions(store)] == ["failed"]
        assert receiver.received == refused
        await pilot.press("a")  # the same text again: approved and sent
        await settle(app, pilot)
    assert [(a.state, a.text) for a in sorted(outbox.actions(store), key=lambda a: a.id)] == [
        ("failed", "Sorry! Please DM us."), ("sent", leaky)]
    assert [r["text"] for r in receiver.received[len(refused):]] == [leaky]

"""A second pair of eyes on crisis replies: [team] operators and approvers, `needs_approval`
never sent, a second different approver, retry / resolve / reject, and the CLI. A real
HTTP server on 127.0.0.1 receives what is sent; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mentionwatch import outbox
from mentionwatch.audit import recent
from mentionwatch.errors import ConfigError
from mentionwatch.models import Draft, Mention, OutboxAction
from mentionwatch.store import Store
from mentionwatch.team import current_operator
from tests.conftest import make_config
from tests.test_cli import run
from tests.test_outbox import Receiver, connector_for, setup_mention

TEAM: dict[str, Any] = {"operators": [{"name": "sam"}, {"name": "kim"},
                                      {"name": "dana", "approver": True},
                                      {"name": "lee", "approver": True}]}


def box(receiver: Receiver) -> list[dict[str, Any]]:
    return [{"name": "box", "kind": "postbox", "url": receiver.url}]


def action_row(store: Store, action_id: int) -> OutboxAction:
    with store.session(readonly=True) as s:
        row = s.get(OutboxAction, action_id)
        assert row is not None
        return row


def test_crisis_reply_by_a_non_approver_waits_until_a_second_approver(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config, flag="crisis")
    first = outbox.take_approval(store, mid, "reply", operator="sam",
                                 text="Sorry! Please DM us now.", team=config.team)
    assert (first.state, first.waiting_for) == ("needs_approval", "dana or lee")
    # The sender never sends what waits for approval.
    assert outbox.send_pending(config, store, connector_for=connector_for(config)) == []
    assert receiver.received == []
    # Not the same person twice, and not a second non-approver.
    with pytest.raises(outbox.OutboxError, match="sam approved this first"):
        outbox.take_approval(store, mid, "reply", operator="sam", team=config.team)
    with pytest.raises(outbox.OutboxError, match="kim is not an approver; dana or lee"):
        outbox.take_approval(store, mid, "reply", operator="kim", team=config.team)
    assert action_row(store, first.action_id).state == "needs_approval"
    second = outbox.take_approval(store, mid, "reply", operator="dana", team=config.team)
    assert (second.action_id, second.state, second.second) == (first.action_id, "approved",
                                                               True)
    [sent] = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert sent.state == "sent"
    assert outbox.send_pending(config, store, connector_for=connector_for(config)) == []
    assert [r["text"] for r in receiver.received] == ["Sorry! Please DM us now."]
    row = action_row(store, first.action_id)
    assert (row.approved_by, row.second_approver) == ("sam", "dana")
    with store.session(readonly=True) as s:
        draft = s.query(Draft).filter_by(mention_id=mid).one()
        assert (draft.public_text, draft.edited_by) == ("Sorry! Please DM us now.", "sam")
    trail = [(e.actor, e.event) for e in reversed(recent(store, mention_id=mid))]
    assert trail == [("sam", "edit"), ("sam", "approve"), ("dana", "second_approve"),
                     ("mentionwatch", "send_sent")]
    [first_event] = [e for e in recent(store, mention_id=mid) if e.event == "approve"]
    assert first_event.details is not None
    assert first_event.details["state"] == "needs_approval"
    assert first_event.details["waiting"] == "dana or lee"
    assert first_event.at is not None
    [send_event] = [e for e in recent(store, mention_id=mid) if e.event == "send_sent"]
    assert (send_event.details or {})["approved_by"] == "sam and dana"


def test_an_approver_signs_off_a_juniors_draft_and_rejects_or_rewrites(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config, flag="crisis")
    waiting = outbox.take_approval(store, mid, "reply", operator="sam", text="Junior text.",
                                   team=config.team)
    outbox.reject(store, waiting.action_id, operator="dana")
    assert action_row(store, waiting.action_id).state == "rejected"
    # The draft keeps sam's edit; dana, an approver, approving it is the second pair of eyes.
    signed = outbox.take_approval(store, mid, "reply", operator="dana", team=config.team)
    assert signed.state == "approved" and signed.action_id != waiting.action_id
    # A waiting private follow-up rewritten by an approver becomes the approver's, approved.
    dm = outbox.take_approval(store, mid, "private", operator="kim", team=config.team)
    assert dm.state == "needs_approval"
    rewritten = outbox.take_approval(store, mid, "private", operator="lee",
                                     text="Hi, our security team will call you today.",
                                     team=config.team)
    assert (rewritten.action_id, rewritten.state, rewritten.second) == (dm.action_id,
                                                                         "approved", False)
    assert action_row(store, dm.action_id).approved_by == "lee"
    outbox.send_pending(config, store, connector_for=connector_for(config))
    assert sorted((r["kind"], r["text"]) for r in receiver.received) == [
        ("private", "Hi, our security team will call you today."), ("reply", "Junior text.")]
    # A complaint (not a crisis) needs no approver.
    other = setup_mention(store, config, flag="complaint", external_id="m2")
    assert outbox.take_approval(store, other, "reply", operator="kim",
                                team=config.team).state == "approved"


def test_without_a_team_a_crisis_reply_needs_two_different_people(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, box(receiver))
    assert config.team is None
    mid = setup_mention(store, config, flag="crisis")
    first = outbox.take_approval(store, mid, "reply", operator="alex")
    assert (first.state, first.waiting_for) == ("needs_approval", "someone other than alex")
    with pytest.raises(outbox.OutboxError, match="second, different person"):
        outbox.approve(store, mid, "reply", operator="ALEX")
    assert outbox.take_approval(store, mid, "reply", operator="blair").state == "approved"
    outbox.send_pending(config, store, connector_for=connector_for(config))
    assert len(receiver.received) == 1
    # Blair's edit of the follow-up is the draft's last edit, but of the other text: casey
    # approving the follow-up blair wrote is two people; approving an unseen reply is not.
    other = setup_mention(store, config, flag="crisis", external_id="m2")
    assert outbox.take_approval(store, other, "private", operator="blair",
                                text="Hi, call us on 555 0100.").state == "needs_approval"
    assert outbox.take_approval(store, other, "reply", operator="casey").state == \
        "needs_approval"
    with store.session(readonly=True) as s:
        assert s.query(Draft).filter_by(mention_id=other).one().edited_by == "blair"
    assert outbox.take_approval(store, other, "private", operator="casey").second


def test_failed_send_is_retried_and_unknown_is_settled_by_a_person(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config)
    receiver.status = 503
    action_id = outbox.approve(store, mid, "reply", operator="kim", team=config.team)
    [failed] = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert failed.state == "failed"
    receiver.status = 200
    outbox.retry(store, action_id, operator="sam")
    with pytest.raises(outbox.OutboxError, match="only failed actions can be retried"):
        outbox.retry(store, action_id, operator="sam")
    [sent] = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert (sent.action_id, sent.state) == (action_id, "sent")
    assert action_row(store, action_id).attempts == 2
    # An unknown outcome: one person finds it was not posted (-> failed), retrying is open.
    other = setup_mention(store, config, external_id="m2")
    unknown_id = outbox.approve(store, other, "private", operator="kim", team=config.team)
    with store.engine.begin() as conn:
        conn.execute(OutboxAction.__table__.update()  # type: ignore[attr-defined]
                     .where(OutboxAction.id == unknown_id).values(state="unknown"))
    outbox.resolve_unknown(store, unknown_id, operator="dana", posted=False)
    assert "checked at the source by dana" in (action_row(store, unknown_id).last_error or "")
    outbox.retry(store, unknown_id, operator="dana")
    with store.engine.begin() as conn:
        conn.execute(OutboxAction.__table__.update()  # type: ignore[attr-defined]
                     .where(OutboxAction.id == unknown_id).values(state="unknown"))
    outbox.resolve_unknown(store, unknown_id, operator="lee", posted=True)
    assert action_row(store, unknown_id).state == "sent"
    with store.session(readonly=True) as s:
        mention = s.get(Mention, other)
        assert mention is not None
        assert mention.status == "replied" and mention.first_response_at is not None
    events = [(e.actor, e.event, (e.details or {}).get("outcome"))
              for e in recent(store, mention_id=other)]
    assert ("dana", "resolve_unknown", "not sent") in events
    assert ("lee", "resolve_unknown", "sent") in events
    assert ("sam", "retry") in [(e.actor, e.event) for e in recent(store, mention_id=mid)]
    assert len(receiver.received) == 2  # the failed try and the retry; nothing for `other`


def test_operator_must_be_in_the_team(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    config = make_config(db_url, [], team=TEAM)
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "zoe")
    with pytest.raises(ConfigError, match=r"team\.operators: the operator 'zoe' is not in "
                       r"the team \(sam, kim, dana, lee\)") as info:
        current_operator(config)
    assert 'name = "zoe"' in (info.value.hint or "")
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "Dana")
    assert current_operator(config) == "dana"
    assert current_operator(make_config(db_url, [])) == "Dana"  # no team: anyone


@pytest.mark.parametrize(("team", "message"), [
    ({"operators": [{"name": "sam"}]}, "approver = true"),
    ({"operators": [{"name": "dana", "approver": True}, {"name": "DANA"}]},
     "two operators are named 'DANA'"),
    ({"operators": [{"name": "dana", "approves": True}]}, "team.operators.0.approves: unknown"),
    ({"operators": []}, "team.operators"),
])
def test_bad_team_config_names_the_key(team: dict[str, Any], message: str,
                                       db_url: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        make_config(db_url, [], team=team)


def write_config(tmp_path: Path, db_url: str, sources: str, *, team: bool = True,
                 brand: str = "") -> Path:
    """A config file with TEAM (unless `team` is False); `brand`: more [brand] lines."""
    operators = "".join(f'\n[[team.operators]]\nname = "{o["name"]}"\napprover = '
                        f'{str(o.get("approver", False)).lower()}\n'
                        for o in TEAM["operators"]) if team else ""
    path = tmp_path / "mentionwatch.toml"
    path.write_text(f'[brand]\nname = "Acme"\nterms = ["acme"]\n{brand}[database]\n'
                    f'url = "{db_url}"\n{operators}{sources}', encoding="utf-8")
    return path


def test_cli_second_approval(postbox: None, receiver: Receiver, store: Store, db_url: str,
                             tmp_path: Path) -> None:
    from mentionwatch.cli import cli

    config_file = write_config(tmp_path, db_url, f'[[sources]]\nname = "box"\nkind = "postbox"'
                                                 f'\nurl = "{receiver.url}"\n')
    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config, flag="crisis")
    runner = CliRunner()

    def approve(who: str, *extra: str) -> Any:
        return runner.invoke(cli, ["--config", str(config_file), "approve", str(mid), *extra],
                             env={"MENTIONWATCH_OPERATOR": who})

    first = approve("sam", "--send")
    assert first.exit_code == 0, first.output
    assert "waits for a second approval by dana or lee" in first.output
    assert receiver.received == []
    listed = runner.invoke(cli, ["--config", str(config_file), "outbox", "list", "--state",
                                 "needs_approval"])
    assert "needs_approval" in listed.output and "sam" in listed.output
    same = approve("sam")
    assert isinstance(same.exception, outbox.OutboxError)
    second = approve("lee", "--send")
    assert second.exit_code == 0, second.output
    assert "Second approval" in second.output and "sent" in second.output
    assert len(receiver.received) == 1
    rows = json.loads(runner.invoke(cli, ["--config", str(config_file), "outbox", "list",
                                          "--json"]).output)
    assert [(r["state"], r["approved_by"], r["second_approver"]) for r in rows] == [
        ("sent", "sam", "lee")]


def test_cli_operator_not_in_team_exits_2(tmp_path: Path, db_url: str) -> None:
    write_config(tmp_path, db_url, '[[sources]]\nname = "blog"\nkind = "rss"\n'
                                   'url = "http://127.0.0.1:9/feed.xml"\n')
    done = run(["dismiss", "1", "--reason", "spam"], tmp_path,
               env={"MENTIONWATCH_OPERATOR": "zoe"})
    assert done.returncode == 2
    assert "team.operators" in done.stderr and "'zoe' is not in the team" in done.stderr


def test_the_example_configs_team_block_is_valid_when_uncommented() -> None:
    import re
    import tomllib

    from mentionwatch.config import parse_config
    from mentionwatch.resources import example_config_path

    text = example_config_path().read_text(encoding="utf-8")
    block = re.search(r"^# \[\[team\.operators\]\].*?(?=^# -{10})", text, re.S | re.M)
    assert block is not None
    live = text.replace(block.group(0), re.sub(r"^# ", "", block.group(0), flags=re.M))
    config = parse_config(tomllib.loads(live), Path("example.toml"), check_secrets=False)
    assert config.team is not None and config.team.approvers() == ["dana"]


def test_a_crisis_reply_waiting_for_approval_is_not_an_answer(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    from datetime import timedelta

    from mentionwatch.alerts.store import AlertStore
    from mentionwatch.models import utcnow

    config = make_config(db_url, box(receiver), team=TEAM)
    mid = setup_mention(store, config, flag="crisis")
    since = utcnow() - timedelta(days=30)
    outbox.approve(store, mid, "reply", operator="sam", team=config.team)
    assert [row[0] for row in AlertStore(store).unanswered(["crisis"], since, utcnow())] == [mid]
    outbox.approve(store, mid, "reply", operator="dana", team=config.team)
    assert AlertStore(store).unanswered(["crisis"], since, utcnow()) == []


def test_an_edit_is_kept_in_the_draft_and_survives_a_rescore(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    from mentionwatch.judgement import Judgement

    config = make_config(db_url, box(receiver))
    mid = setup_mention(store, config)
    outbox.approve(store, mid, "reply", operator="sam", text="Sam's own words.")
    with store.engine.begin() as conn:
        store.write_judgements(conn, [(mid, Judgement(
            flag="complaint", priority=0.6, sentiment=-0.5, public_draft="Rules' new words.",
            private_draft="New follow-up.", private_channel="dm"))])
    with store.session(readonly=True) as s:
        draft = s.query(Draft).filter_by(mention_id=mid).one()
        assert (draft.public_text, draft.edited_by) == ("Sam's own words.", "sam")


def _at_once(*calls: Any) -> list[Any]:
    """Run the calls in threads released together (each on its own database connection);
    return each one's result or the OutboxError it raised, in call order."""
    import threading

    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run_one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except outbox.OutboxError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run_one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_operators_approving_the_same_draft_at_once_post_it_once(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    # Two people at two screens press approve on the same mention at the same moment. On
    # PostgreSQL both had read "no live reply" and both inserted one: posted twice.
    config = make_config(db_url, box(receiver))
    other = Store.open(db_url)  # the second operator's process
    try:
        mids = [setup_mention(store, config, external_id=f"m{i}") for i in range(15)]
        for mid in mids:
            first, second = _at_once(
                lambda mid=mid: outbox.take_approval(store, mid, "reply", operator="dana"),
                lambda mid=mid: outbox.take_approval(other, mid, "reply", operator="sam"))
            won = [r for r in (first, second) if isinstance(r, outbox.Approval)]
            lost = [r for r in (first, second) if isinstance(r, outbox.OutboxError)]
            assert len(won) == 1 and len(lost) == 1, (mid, first, second)
            assert "already has a reply in state 'approved'" in lost[0].message
    finally:
        other.close()
    sent = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert len(sent) == len(mids)
    assert sorted(r["to"] for r in receiver.received) == sorted(f"m{i}" for i in range(15))


def test_two_failed_sends_retried_at_once_post_once(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, box(receiver))
    mids = [setup_mention(store, config, external_id=f"m{i}") for i in range(10)]
    receiver.status = 503
    failed: dict[int, list[int]] = {mid: [] for mid in mids}
    for _ in range(2):  # two failed actions per mention, both retryable
        for mid in mids:
            failed[mid].append(outbox.approve(store, mid, "reply", operator="dana"))
        assert {r.state for r in outbox.send_pending(
            config, store, connector_for=connector_for(config))} == {"failed"}
    receiver.status = 200
    receiver.received.clear()
    other = Store.open(db_url)
    try:
        for mid in mids:
            a, b = failed[mid]
            results = _at_once(lambda a=a: outbox.retry(store, a, operator="dana"),
                               lambda b=b: outbox.retry(other, b, operator="sam"))
            assert sum(isinstance(r, outbox.OutboxError) for r in results) == 1, results
    finally:
        other.close()
    outbox.send_pending(config, store, connector_for=connector_for(config))
    assert sorted(r["to"] for r in receiver.received) == sorted(f"m{i}" for i in range(10))

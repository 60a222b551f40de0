"""Judgements reach the database in the ingest transaction, and `rules rescore` redoes them
after a rule change (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.rules_engine import load_judge
from mentionwatch.store import Store
from tests.conftest import make_config

NOW = datetime.now(UTC)


def _batch() -> Batch:
    posts = {"1": "@acme down again, third outage this week",
              "2": "thanks @acme, great support today!",
              "3": "acme is fine I guess"}
    return Batch([MentionIn(external_id=k, text=v, author=AuthorIn("someone", followers=500),
                            created_at=NOW - timedelta(minutes=10)) for k, v in posts.items()])


def _flags(store: Store) -> dict[str, str | None]:
    return {m.external_id: m.flag for m in store.list_mentions()}


def test_ingest_writes_judgements_and_rescore_follows_rule_changes(
        db_url: str, store: Store, tmp_path: Path) -> None:
    config = make_config(db_url, [{"name": "feed", "kind": "rss", "url": "http://127.0.0.1:9/x"}])
    store.sync_sources([("feed", "rss", "h")])
    store.store_batch("feed", _batch(), judge=load_judge(config))
    assert _flags(store) == {"1": "complaint", "2": "praise", "3": None}
    down = next(m for m in store.list_mentions() if m.external_id == "1")
    detail = store.mention_detail(down.id)
    assert detail is not None
    _, matches, draft = detail
    assert matches and matches[0].pack == "complaints" and matches[0].explanation
    assert draft is not None and draft.public_text and draft.public_text.startswith("someone We")
    assert down.priority is not None and 0 < down.priority <= 1

    # A user pack now calls "fine I guess" a complaint; rescore picks it up for stored rows.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "lukewarm.toml").write_text(
        '[pack]\nname = "lukewarm"\n[[rules]]\nname = "meh"\nflag = "complaint"\n'
        'severity = 0.3\n[rules.when]\nany = ["fine i guess"]\n[rules.reply]\n'
        'public = "Sorry, {author}. Please send us a direct message."\n'
        'private = "Hi {first_name}, what could we do better?"\n', encoding="utf-8")
    changed = make_config(db_url, [{"name": "feed", "kind": "rss",
                                     "url": "http://127.0.0.1:9/x"}],
                          rules={"dirs": [str(mine)]})
    assert store.rescore(load_judge(changed)) == 3
    assert _flags(store) == {"1": "complaint", "2": "praise", "3": "complaint"}
    meh = next(m for m in store.list_mentions() if m.external_id == "3")
    detail = store.mention_detail(meh.id)
    assert detail is not None and [m.rule for m in detail[1]] == ["meh"]
    assert detail[2] is not None and detail[2].public_text.startswith("Sorry, someone.")

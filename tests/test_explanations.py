"""Every stored mention keeps the numbers behind its priority and complaint score, so the
triage screen and `mentions show` can say how a priority was reached (SQLite and
PostgreSQL), and a store from before that upgrades and is filled in by `rules rescore`."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import inspect, update

from mentionwatch import db
from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.judgement import (
    NOT_EXPLAINED,
    complaint_text,
    explanation_lines,
    priority_text,
    reasons_text,
)
from mentionwatch.models import Mention
from mentionwatch.pipeline import build_connector, sync_sources
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_judge, load_packs
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from tests.conftest import make_config
from tests.test_classifier import facts
from tests.test_outbox import Receiver
from tests.test_rules_fast_paths import _corpus

POSTS = {"down": ("@acme down again, third outage this week, I want a refund", 12_000, 40),
         "thanks": ("thanks @acme, great support today!", 300, 2),
         "plain": ("acme opened a store downtown", 50, 0)}


def _store_judged(store: Store, config: Any) -> dict[str, Mention]:
    sync_sources(config, store)
    # Three hours before now, not before the module was imported: in a full run this test
    # starts minutes after collection, and freshness had drifted past its tolerance.
    created = datetime.now(UTC) - timedelta(hours=3)
    batch = Batch([MentionIn(external_id=key, text=text, likes=likes,
                             author=AuthorIn(f"{key}_author", followers=followers),
                             created_at=created)
                   for key, (text, followers, likes) in POSTS.items()])
    store.store_batch("box", batch, judge=load_judge(config))
    return {m.external_id: m for m in store.list_mentions()}


def _recomputed(explanation: dict[str, Any]) -> float:
    parts, weights = explanation["components"], explanation["weights"]
    raw = sum(float(weights[k]) * float(parts[k]) for k in weights)
    return raw * (0.5 + 0.5 * float(parts["freshness"]))


def test_each_judged_mention_keeps_the_numbers_behind_its_priority(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    stored = _store_judged(store, config)
    down = stored["down"]
    assert down.flag == "complaint" and down.explanation is not None
    parts = down.explanation["components"]
    # The numbers are this mention's own: 12,000 followers, 40 likes, three hours old.
    assert abs(parts["reach"] - math.log10(1 + 12_000) / 6) < 0.001
    assert abs(parts["freshness"] - 0.5 ** (3 / 24)) < 0.002
    assert parts["engagement"] > 0 and parts["severity"] > 0
    # ... and they add up to the stored priority (each part is rounded to 3 places).
    assert abs(_recomputed(down.explanation) - down.priority) < 0.002
    line = priority_text(down.explanation, down.priority)
    assert line is not None and line.startswith("priority = (0.45×severity ")
    assert line.endswith(f"= {down.priority:.3f}") and "0.15×reach 0.68" in line
    score = complaint_text(down.explanation)
    assert score is not None and score.startswith("complaint score 0.")
    plain = stored["plain"]
    assert plain.flag is None and plain.explanation is not None
    assert down.explanation["complaint_score"] > plain.explanation["complaint_score"]
    # A plain mention has a priority too, and says so; none of it repeats the columns.
    assert priority_text(plain.explanation, plain.priority) is not None
    assert not {"flag", "sentiment", "priority", "rules"} & set(down.explanation)


def test_reasons_read_as_words() -> None:
    assert reasons_text({"terms": ["down", "never again"], "sentiment": "-0.62 <= -0.3"}) \
        == "terms: down, never again; sentiment: -0.62 <= -0.3"
    assert reasons_text(None) == ""
    assert priority_text(None, 0.4) is None and complaint_text(None) is None
    # Spam and ignored posts have a priority of 0 and no formula to show.
    assert priority_text({"components": {"severity": 0.0}, "weights": {"severity": 0.45}},
                         0.0) is None
    both = complaint_text({"complaint_score": 0.91, "complaint_word_model": 0.74,
                           "complaint_sentence": 0.88,
                           "complaint_features": [["<s> <user>", 1.17], ["terms:outage", 1.08]]})
    assert both == ("complaint score 0.91 (words 0.74 and sentence model 0.88 together): "
                    "(start) @handle +1.17, outage terms +1.08")


def test_each_rule_shows_the_complaint_score_its_explanation_shows() -> None:
    engine = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {})
    compared = 0
    for judged in engine.judge([facts(text) for text in _corpus() if text]):
        line = complaint_text(judged.explanation) or ""
        for hit in judged.hits:
            if "complaint_score" in hit.explanation:
                compared += 1
                shown = hit.explanation["complaint_score"].split()[0]
                assert line.startswith(f"complaint score {shown}"), (hit.explanation, line)
    assert compared > 50


async def test_the_triage_screen_shows_how_the_priority_was_reached(
        postbox: None, receiver: Receiver, store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    stored = _store_judged(store, config)
    app = TriageApp(config, store, refresh_every=3600,
                    connector_for=lambda source: build_connector(source, config))
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        assert app.current is not None and app.current.mention.id == stored["down"].id
        screen = " ".join(app.export_screenshot().replace("&#160;", " ").split())
    assert "priority = (0.45×severity" in screen
    assert "complaint score 0." in screen
    assert "terms: down" in screen and "[&#x27;" not in screen and "['" not in screen


def test_a_store_from_before_upgrades_and_rescore_fills_the_explanations(
        postbox: None, receiver: Receiver, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0002_tui_indexes")
        assert "explanation" not in {c["name"] for c in inspect(engine).get_columns("mentions")}
    finally:
        engine.dispose()
    store = Store.open(db_url)  # upgrades to the head on start
    try:
        assert db.current_revision(store.engine) == db.head_revision()
        _store_judged(store, config)
        with store.engine.begin() as conn:  # as a store judged before the column existed
            conn.exec_driver_sql("UPDATE mentions SET explanation = NULL")
        old = {m.external_id: m for m in store.list_mentions()}
        assert old["down"].explanation is None
        # `status` counts the recent ones (it looks back a week, through an index).
        [box] = [r for r in store.source_statuses() if r.name == "box"]
        assert (box.mentions, box.unjudged) == (len(POSTS), len(POSTS))
        with store.session() as s:
            s.execute(update(Mention).where(Mention.external_id == "plain")
                      .values(fetched_at=old["plain"].fetched_at - timedelta(days=8)))
        [box] = [r for r in store.source_statuses() if r.name == "box"]
        assert (box.mentions, box.unjudged) == (len(POSTS), len(POSTS) - 1)
        down = old["down"]
        assert explanation_lines(down.explanation, down.priority, down.flag) == [NOT_EXPLAINED]
        assert explanation_lines(None, 0.0, None) == []  # nothing to say of a plain mention
        assert store.rescore(load_judge(config)).mentions == len(POSTS)
        new = {m.external_id: m for m in store.list_mentions()}
        assert all(m.explanation and "components" in m.explanation for m in new.values())
        command.downgrade(db._alembic_config(store.engine), "0002_tui_indexes")
        assert "explanation" not in {c["name"] for c in inspect(store.engine).get_columns(
            "mentions")}
    finally:
        store.close()

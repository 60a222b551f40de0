"""Judgements reach the database in the ingest transaction, and `rules rescore` redoes them
after a rule change (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.judgement import Judgement, MentionFacts
from mentionwatch.rules_engine import load_judge
from mentionwatch.store import Store
from tests.conftest import deadline, make_config

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
    # A feed post: the reply sits under it, so no bare "someone" in front of the apology.
    assert draft is not None and draft.public_text and draft.public_text.startswith("We're sorry")
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
    rescored = store.rescore(load_judge(changed))
    assert rescored.mentions == 3 and rescored.changed == {(None, "complaint"): 1}
    assert _flags(store) == {"1": "complaint", "2": "praise", "3": "complaint"}
    meh = next(m for m in store.list_mentions() if m.external_id == "3")
    detail = store.mention_detail(meh.id)
    assert detail is not None and [m.rule for m in detail[1]] == ["meh"]
    # The team's own template ({author} is empty on a feed, and its comma tidied away).
    assert detail[2] is not None
    assert detail[2].public_text == "Sorry. Please send us a direct message."


class Poisoned:
    """The real rules engine, except that it raises on any post saying POISON: a bug that one
    hostile post could hit."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.history_days = inner.history_days

    def judge(self, mentions: Sequence[MentionFacts]) -> list[Judgement]:
        if any("POISON" in m.text for m in mentions):
            raise ValueError("cannot judge this post")
        return list(self.inner.judge(mentions))


def _poisoned_batch() -> Batch:
    posts = {"1": "@acme down again, third outage this week",
             "2": "acme POISON down again, worst service ever",
             "3": "thanks @acme, great support today!"}
    return Batch([MentionIn(external_id=k, text=v, author=AuthorIn("someone", followers=500),
                            created_at=NOW - timedelta(minutes=10)) for k, v in posts.items()],
                 next_cursor="after-3")


def test_a_post_the_rules_fail_on_is_stored_unjudged_and_holds_up_nothing(
        db_url: str, store: Store) -> None:
    config = make_config(db_url, [{"name": "feed", "kind": "rss", "url": "http://127.0.0.1:9/x"}])
    store.sync_sources([("feed", "rss", "h")])
    result = store.store_batch("feed", _poisoned_batch(), judge=Poisoned(load_judge(config)))
    # Every mention is stored and the cursor moves on; only the poisoned one lacks a verdict.
    assert (result.stored, result.unjudged) == (3, 1)
    assert result.judge_error == "ValueError: cannot judge this post"
    assert _flags(store) == {"1": "complaint", "2": None, "3": "praise"}
    row = store.source_row("feed")
    assert row is not None and row.cursor == "after-3"

    # Once the engine is mended, rescore judges it.
    assert store.rescore(load_judge(config)).failed == 0
    assert _flags(store) == {"1": "complaint", "2": "complaint", "3": "praise"}
    # Should it break again, a rescore keeps the earlier verdict and says how many failed.
    again = store.rescore(Poisoned(load_judge(config)))
    assert (again.mentions, again.failed) == (3, 1) and "cannot judge" in (again.error or "")
    assert _flags(store) == {"1": "complaint", "2": "complaint", "3": "praise"}


def test_poll_says_which_mentions_went_unjudged_and_exits_1(
        feeds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from mentionwatch.cli import core
    from tests.feedserver import rss
    from tests.test_decisions import run_cli

    url = feeds.add("/feed.xml", rss([
        {"title": "Acme down", "guid": "1", "link": "http://x.example/1",
         "description": "acme is down again"},
        {"title": "Acme POISON", "guid": "2", "link": "http://x.example/2",
         "description": "acme POISON"}]))
    path = tmp_path / "mentionwatch.toml"
    path.write_text(f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\n'
                    f'url = "sqlite:///{tmp_path / "mw.db"}"\n[[sources]]\nname = "news"\n'
                    f'kind = "rss"\nurl = "{url}"\n', encoding="utf-8")
    real = core._load_judge
    monkeypatch.setattr(core, "_load_judge", lambda app: Poisoned(real(app)))
    code, said = run_cli(["--config", str(path), "poll"], monkeypatch, capsys)
    assert code == 1
    assert ("news: 1 new mentions stored without a judgement: the rules failed on them "
            "(ValueError: cannot judge this post); `mentionwatch rules rescore`") in said
    monkeypatch.setattr(core, "_load_judge", real)
    code, listed = run_cli(["--config", str(path), "mentions", "list", "--json"],
                           monkeypatch, capsys)
    assert code == 0 and listed.count('"external_id"') == 2
    # `status` says so too (the daemon has no stderr a person reads), until a rescore.
    monkeypatch.setenv("COLUMNS", "200")
    code, shown = run_cli(["--config", str(path), "status"], monkeypatch, capsys)
    assert code == 0 and ("1 mentions of the last 7 days not judged: run `mentionwatch rules "
                          "rescore`") in shown
    code, as_json = run_cli(["--config", str(path), "status", "--json"], monkeypatch, capsys)
    assert '"unjudged": 1' in as_json
    code, rescored = run_cli(["--config", str(path), "rules", "rescore"], monkeypatch, capsys)
    assert code == 0 and "Re-scored 2 mentions; no flag changed." in rescored
    code, as_json = run_cli(["--config", str(path), "status", "--json"], monkeypatch, capsys)
    assert '"unjudged": 0' in as_json


def test_a_regex_that_runs_away_on_one_post_costs_only_that_posts_judgement(
        db_url: str, store: Store, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "greedy.toml").write_text(
        '[pack]\nname = "greedy"\n[[rules]]\nname = "stutter"\nflag = "complaint"\n'
        '[rules.when]\nregex = ["(?:(?:a|aa)+)+b"]\n', encoding="utf-8")
    config = make_config(db_url, [{"name": "feed", "kind": "rss", "url": "http://127.0.0.1:9/x"}],
                         rules={"dirs": [str(mine)]})
    store.sync_sources([("feed", "rss", "h")])
    posts = {"1": "@acme down again, third outage this week", "2": "acme " + "a" * 45}
    with deadline(30):
        result = store.store_batch("feed", Batch([MentionIn(external_id=k, text=v)
                                                  for k, v in posts.items()]),
                                   judge=load_judge(config))
    assert (result.stored, result.unjudged) == (2, 1)
    assert result.judge_error is not None and "took over 0.25 s" in result.judge_error
    assert _flags(store) == {"1": "complaint", "2": None}


def test_rescore_says_how_flags_moved() -> None:
    from mentionwatch.cli.rules import _flag_changes
    from mentionwatch.store import Rescored

    assert _flag_changes(Rescored(5)) == "no flag changed"
    moved = Rescored(5, changed={(None, "crisis"): 1, ("complaint", None): 2})
    assert _flag_changes(moved) == "3 changed flag: complaint -> none 2, none -> crisis 1"


def test_rescore_can_be_held_to_recent_mentions_of_some_sources(
        db_url: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select, update

    from mentionwatch.models import Mention, Source
    from tests.test_cli import config_text, feed_source
    from tests.test_decisions import run_cli

    feeds = feed_source("feed", "http://127.0.0.1:9/a") + feed_source("other",
                                                                      "http://127.0.0.1:9/b")
    config = tmp_path / "mentionwatch.toml"
    config.write_text(config_text(db_url, feeds), encoding="utf-8")
    base = make_config(db_url, [{"name": n, "kind": "rss", "url": "http://127.0.0.1:9/x"}
                                for n in ("feed", "other")])
    store.sync_sources([("feed", "rss", "a"), ("other", "rss", "b")])
    for name in ("feed", "other"):
        store.store_batch(name, _batch(), judge=load_judge(base))
    with store.engine.begin() as conn:  # feed's "fine I guess" was found a month ago
        old = conn.execute(select(Mention.id).join(Source).where(
            Source.name == "feed", Mention.external_id == "3")).scalar_one()
        conn.execute(update(Mention).where(Mention.id == old)
                     .values(fetched_at=NOW - timedelta(days=30)))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "lukewarm.toml").write_text(
        '[pack]\nname = "lukewarm"\n[[rules]]\nname = "meh"\nflag = "complaint"\n'
        '[rules.when]\nany = ["fine i guess"]\n', encoding="utf-8")
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[rules]\ndirs = ["mine"]\n')

    def flags() -> dict[tuple[str, str], str | None]:
        with store.engine.connect() as conn:
            return {(s, e): f for s, e, f in conn.execute(
                select(Source.name, Mention.external_id, Mention.flag).join(Source))}

    rescore = ["--config", str(config), "rules", "rescore"]
    code, said = run_cli([*rescore, "--since", "7d", "--source", "other"], monkeypatch, capsys)
    assert code == 0 and "Re-scored 3 mentions found since" in said
    assert "1 changed flag: none -> complaint 1" in said
    assert flags()[("other", "3")] == "complaint" and flags()[("feed", "3")] is None
    # The month-old one is left as its day judged it, unless asked for.
    code, said = run_cli([*rescore, "--since", "7d"], monkeypatch, capsys)
    assert code == 0 and "Re-scored 5 mentions" in said and "no flag changed" in said
    assert flags()[("feed", "3")] is None
    code, said = run_cli(rescore, monkeypatch, capsys)
    assert code == 0 and "Re-scored 6 mentions;" in said and flags()[("feed", "3")] == "complaint"
    code, said = run_cli([*rescore, "--source", "nope"], monkeypatch, capsys)
    assert code == 2 and "No source named 'nope'" in said
    code, said = run_cli([*rescore, "--since", "soon"], monkeypatch, capsys)
    assert code == 2 and "neither a duration" in said

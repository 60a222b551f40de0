"""Ingest throughput: N synthetic mentions through the real pipeline into a fresh SQLite file,
against raw sqlite3 executemany of the same rows into a table of the same shape, same run.

    python benchmarks/ingest.py [--n 100000] [--batch 1000] [--rules]

Last line: {"pipeline_per_s", "raw_per_s", "ratio", "peak_rss_mb", "n"}. Target: ratio >= 0.5
and peak memory that does not grow with N (the pipeline works batch by batch).

With --rules the pipeline runs the default rule packs, and the floor is VADER over the same
texts plus the raw insert; the last line adds "ratio_to_floor" (target <= 1.5). With
--rules --vader-only the judge does nothing but VADER (no rules, flags or drafts): the
smallest judgement the store writes, so its ratio is what a rules engine that cost nothing
would reach.

Making up the synthetic mentions is the fake source's work, not ingest's: each batch is made
before its timer starts, on every side alike. Timed: `poll_source` (pipeline), building the
row tuples from the mentions plus executemany and commit (raw), `polarity_scores` (VADER).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from _common import emit, peak_rss_mb

from mentionwatch import registry
from mentionwatch.config import parse_config
from mentionwatch.connector import AuthorIn, Batch, ConnectorSettings, MentionIn
from mentionwatch.judgement import Judge, Judgement, MentionFacts
from mentionwatch.pipeline import poll_source, sync_sources
from mentionwatch.store import Store

BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
WORDS = ("acme router down again", "billing problem with acme", "thanks acme support",
         "acme fiber outage downtown", "how do I reset my acme modem")


def synthetic(i: int) -> MentionIn:
    text = f"{WORDS[i % len(WORDS)]} #{i} @acme please help, waited {i % 90} minutes"
    return MentionIn(
        external_id=f"syn-{i}", text=text, url=f"https://social.example/p/{i}",
        author=AuthorIn(handle=f"user{i % 5000}", display_name=f"User {i % 5000}",
                        followers=((i % 5000) * 37) % 100_000),
        created_at=BASE_TIME + timedelta(seconds=i), language="en",
        likes=i % 50, reposts=i % 7, replies=i % 3, raw={"id": i, "text": text},
    )


class SyntheticSettings(ConnectorSettings):
    n: int
    batch: int


class SyntheticConnector:
    """A source that yields `n` mentions, `batch` per pass, the cursor being the offset."""

    kind: ClassVar[str] = "synthetic"
    platform: ClassVar[str] = "synthetic"
    Settings: ClassVar[type[ConnectorSettings]] = SyntheticSettings
    can_reply: ClassVar[bool] = False
    can_send_private: ClassVar[bool] = False
    reply_limit: ClassVar[int | None] = None
    default_interval: ClassVar[int] = 60
    prefiltered: ClassVar[bool] = False

    #: The next batch, made by the runner before the pass's timer starts (offset, mentions).
    prepared: ClassVar[tuple[int, list[MentionIn]] | None] = None

    def __init__(self, settings: SyntheticSettings, context: Any) -> None:
        self.settings = settings

    def fetch(self, cursor: str | None) -> Batch:
        start = int(cursor or 0)
        stop = min(start + self.settings.batch, self.settings.n)
        ready = SyntheticConnector.prepared
        SyntheticConnector.prepared = None
        if ready is None or ready[0] != start:  # the pipeline asked for another offset
            ready = (start, make_batch(start, stop))
        return Batch(ready[1], next_cursor=str(stop))

    def close(self) -> None:
        pass


def make_batch(start: int, stop: int) -> list[MentionIn]:
    return [synthetic(i) for i in range(start, stop)]


class VaderOnlyJudge:
    """A judge that only scores sentiment (the floor's VADER), as the store's Judge."""

    history_days = 0

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._polarity = SentimentIntensityAnalyzer().polarity_scores

    def judge(self, mentions: Sequence[MentionFacts]) -> list[Judgement]:
        return [Judgement(flag=None, priority=0.0,
                          sentiment=self._polarity(m.text)["compound"]) for m in mentions]


def run_pipeline(db: Path, n: int, batch: int, rules: bool,
                 complaint_model: str = "words", vader_only: bool = False) -> float:
    registry.BUILTIN["synthetic"] = f"{__name__}:SyntheticConnector"
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()
    config = parse_config({
        "brand": {"name": "Acme", "terms": ["acme", "@acme"]},
        "database": {"url": f"sqlite:///{db}"},
        "sources": [{"name": "synthetic", "kind": "synthetic", "n": n, "batch": batch}],
        "rules": {"complaint_model": complaint_model},
    }, Path("<benchmark>"))
    store = Store.open(config.database_url())
    judge: Judge | None = None
    if rules and vader_only:
        judge = VaderOnlyJudge()
    elif rules:
        from mentionwatch.rules_engine import load_judge

        judge = load_judge(config)
    sync_sources(config, store)
    source = config.sources[0]
    elapsed = 0.0
    stored = 0
    for start in range(0, n, batch):
        SyntheticConnector.prepared = (start, make_batch(start, min(start + batch, n)))
        started = time.perf_counter()
        outcome = poll_source(source, config, store, force=True, judge=judge)
        elapsed += time.perf_counter() - started
        if outcome.status != "ok":
            raise SystemExit(f"pipeline failed: {outcome.message}")
        stored += outcome.stored
    store.close()
    if stored != n:
        raise SystemExit(f"stored {stored} of {n}")
    return elapsed


# The same columns and indexes as mentionwatch's mentions table: the physical work of storing a
# row there is the floor; everything above it is our own code.
RAW_SCHEMA = """
CREATE TABLE mentions (
  id INTEGER PRIMARY KEY, source_id INTEGER, external_id TEXT, kind TEXT, url TEXT,
  canonical_url TEXT, author_id INTEGER, author_handle TEXT, title TEXT, text TEXT,
  language TEXT, created_at TEXT, fetched_at TEXT, likes INTEGER, reposts INTEGER,
  replies INTEGER, conversation_id TEXT, in_reply_to_id TEXT, is_reply_to_brand INTEGER,
  matched_terms TEXT, raw TEXT, status TEXT, priority REAL,
  UNIQUE (source_id, external_id));
CREATE UNIQUE INDEX ix_canonical ON mentions (canonical_url);
CREATE INDEX ix_status_priority ON mentions (status, priority);
CREATE INDEX ix_created_at ON mentions (created_at);
CREATE INDEX ix_fetched_at ON mentions (fetched_at);
CREATE INDEX ix_author_id ON mentions (author_id);
CREATE INDEX ix_conversation ON mentions (source_id, conversation_id);
"""


def raw_rows(mentions: list[MentionIn], first: int, now: str) -> list[tuple[Any, ...]]:
    """The row tuples, built the plainest way from the mentions (this is timed)."""
    return [
        (1, m.external_id, m.kind, m.url, m.url, (first + k) % 5000,
         m.author.handle if m.author else None, None, m.text, m.language,
         m.created_at.replace(tzinfo=None).isoformat(" ") if m.created_at else now, now,
         m.likes, m.reposts, m.replies, None, None, 0, '["acme", "@acme"]',
         json.dumps(dict(m.raw)), "new", 0.0)
        for k, m in enumerate(mentions)
    ]


def run_raw(db: Path, n: int, batch: int) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(RAW_SCHEMA)
    sql = ("INSERT INTO mentions (source_id, external_id, kind, url, canonical_url, author_id, "
           "author_handle, title, text, language, created_at, fetched_at, likes, reposts, "
           "replies, conversation_id, in_reply_to_id, is_reply_to_brand, matched_terms, raw, "
           "status, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    elapsed = 0.0
    for start in range(0, n, batch):
        mentions = make_batch(start, min(start + batch, n))
        started = time.perf_counter()
        rows = raw_rows(mentions, start, now)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - started
    conn.close()
    return elapsed


def run_vader(n: int, batch: int) -> float:
    """VADER alone over the same texts, the part of the rules the floor grants them."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    elapsed = 0.0
    for start in range(0, n, batch):
        texts = [m.text for m in make_batch(start, min(start + batch, n))]
        started = time.perf_counter()
        for text in texts:
            analyzer.polarity_scores(text)
        elapsed += time.perf_counter() - started
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternate the two runs this many times; the best of each counts")
    parser.add_argument("--rules", action="store_true",
                        help="also run the default rule packs inside the pipeline")
    parser.add_argument("--complaint-model", choices=("words", "words+sentence"),
                        default="words", help="[rules] complaint_model for --rules "
                        "(words+sentence needs mentionwatch[sentence])")
    parser.add_argument("--vader-only", action="store_true",
                        help="with --rules: a judge that only runs VADER instead of the packs "
                        "(what a rules engine that cost nothing would reach)")
    args = parser.parse_args()
    raw_times, pipe_times, vader_times = [], [], []
    for attempt in range(args.repeat):
        # Alternating runs in fresh files: a noisy neighbour slows all of them, not one.
        with tempfile.TemporaryDirectory() as tmp:
            raw_times.append(run_raw(Path(tmp) / "raw.db", args.n, args.batch))
            if args.rules:
                vader_times.append(run_vader(args.n, args.batch))
            pipe_times.append(run_pipeline(Path(tmp) / f"pipeline{attempt}.db", args.n,
                                           args.batch, args.rules, args.complaint_model,
                                           args.vader_only))
    raw_s, pipe_s = min(raw_times), min(pipe_times)
    vader_s = min(vader_times) if args.rules else 0.0
    figures = {
        "n": args.n,
        "pipeline_per_s": round(args.n / pipe_s),
        "raw_per_s": round(args.n / raw_s),
        "ratio": round(raw_s / pipe_s, 3),
        "peak_rss_mb": peak_rss_mb(),
        "rules": args.rules,
        "repeat": args.repeat,
    }
    if args.rules:
        # The unavoidable work with rules on: VADER over every text plus the raw insert.
        figures["vader_s"] = round(vader_s, 3)
        figures["floor_s"] = round(vader_s + raw_s, 3)
        figures["pipeline_s"] = round(pipe_s, 3)
        figures["ratio_to_floor"] = round(pipe_s / (vader_s + raw_s), 3)
        figures["complaint_model"] = "none: VADER only" if args.vader_only \
            else args.complaint_model
    print(f"pipeline: {pipe_s:.2f}s, raw sqlite3: {raw_s:.2f}s for {args.n} mentions")
    print("runs (s): pipeline", [round(t, 2) for t in pipe_times], "raw",
          [round(t, 2) for t in raw_times], "vader", [round(t, 2) for t in vader_times])
    emit(figures)


if __name__ == "__main__":
    main()

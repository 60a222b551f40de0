"""Ingest throughput: N synthetic mentions through the real pipeline into a fresh SQLite file,
against raw sqlite3 executemany of the same rows into a table of the same shape, same run.

    python benchmarks/ingest.py [--n 100000] [--batch 1000]

Last line: {"pipeline_per_s", "raw_per_s", "ratio", "peak_rss_mb", "n"}. Target: ratio >= 0.5
and peak memory that does not grow with N (the pipeline works batch by batch).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from _common import emit, peak_rss_mb

from mentionwatch import registry
from mentionwatch.config import parse_config
from mentionwatch.connector import AuthorIn, Batch, ConnectorSettings, MentionIn
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

    def __init__(self, settings: SyntheticSettings, context: Any) -> None:
        self.settings = settings

    def fetch(self, cursor: str | None) -> Batch:
        start = int(cursor or 0)
        stop = min(start + self.settings.batch, self.settings.n)
        return Batch([synthetic(i) for i in range(start, stop)], next_cursor=str(stop))

    def close(self) -> None:
        pass


def run_pipeline(db: Path, n: int, batch: int, rules: bool) -> float:
    registry.BUILTIN["synthetic"] = f"{__name__}:SyntheticConnector"
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()
    config = parse_config({
        "brand": {"name": "Acme", "terms": ["acme", "@acme"]},
        "database": {"url": f"sqlite:///{db}"},
        "sources": [{"name": "synthetic", "kind": "synthetic", "n": n, "batch": batch}],
    }, Path("<benchmark>"))
    store = Store.open(config.database_url())
    judge = None
    if rules:
        from mentionwatch.rules_engine import load_judge

        judge = load_judge(config)
    sync_sources(config, store)
    source = config.sources[0]
    started = time.perf_counter()
    stored = 0
    for _ in range((n + batch - 1) // batch):
        outcome = poll_source(source, config, store, force=True, judge=judge)
        if outcome.status != "ok":
            raise SystemExit(f"pipeline failed: {outcome.message}")
        stored += outcome.stored
    elapsed = time.perf_counter() - started
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


def raw_rows(n: int, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(start + batch, n)):
            m = synthetic(i)
            rows.append((1, m.external_id, m.kind, m.url, m.url, i % 5000,
                         m.author.handle if m.author else None, None, m.text, m.language,
                         m.created_at.replace(tzinfo=None).isoformat(" ") if m.created_at
                         else now, now, m.likes, m.reposts, m.replies, None, None, 0,
                         '["acme", "@acme"]', json.dumps(dict(m.raw)), "new", 0.0))
        yield rows


def run_raw(db: Path, n: int, batch: int) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(RAW_SCHEMA)
    sql = ("INSERT INTO mentions (source_id, external_id, kind, url, canonical_url, author_id, "
           "author_handle, title, text, language, created_at, fetched_at, likes, reposts, "
           "replies, conversation_id, in_reply_to_id, is_reply_to_brand, matched_terms, raw, "
           "status, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    started = time.perf_counter()
    for rows in raw_rows(n, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run_vader(n: int) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    for i in range(n):
        analyzer.polarity_scores(synthetic(i).text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternate the two runs this many times; the best of each counts")
    parser.add_argument("--rules", action="store_true",
                        help="also run the default rule packs inside the pipeline")
    args = parser.parse_args()
    raw_times, pipe_times = [], []
    for attempt in range(args.repeat):
        # Alternating runs in fresh files: a noisy neighbour slows both, not one.
        with tempfile.TemporaryDirectory() as tmp:
            raw_times.append(run_raw(Path(tmp) / "raw.db", args.n, args.batch))
            pipe_times.append(run_pipeline(Path(tmp) / f"pipeline{attempt}.db", args.n,
                                           args.batch, args.rules))
    raw_s, pipe_s = min(raw_times), min(pipe_times)
    vader_s = run_vader(args.n) if args.rules else 0.0
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
    print(f"pipeline: {pipe_s:.2f}s, raw sqlite3: {raw_s:.2f}s for {args.n} mentions")
    emit(figures)


if __name__ == "__main__":
    main()

"""TUI on a large store: time from app start to the first rendered queue with a small store
(1,000 mentions, 500 waiting) and a big one (1,000,000 mentions, 10,000 waiting), same run.

    python benchmarks/tui_scale.py [--big 1000000] [--pending 10000] [--repeat 3] [--keep DIR]

Both stores are SQLite files whose schema is made by the real migrations; the rows are then
written with raw sqlite3 executemany (building a million rows through the pipeline would take
minutes and measure the ingest, not the TUI). Each timing opens the store, starts the real
TriageApp headless (`App.run_test()`) and stops when the queue table has its rows and the
screen has been drawn. Both stores fill a whole first page, so both render the same amount.

Last line: {"small_s", "big_s", "ratio", ...}, medians of the alternating runs. Target:
ratio <= 1.5 (indexes and paging, not loading everything).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from _common import emit, peak_rss_mb

from mentionwatch.config import Config, parse_config
from mentionwatch.store import Store
from mentionwatch.tui.queries import (
    QueueFilter,
    explain,
    flag_counts,
    flag_counts_statement,
    queue,
    queue_statement,
)

SOURCES = ("x-brand", "reddit-brand", "forum")
NOW = datetime.now(UTC).replace(microsecond=0)
FLAGS = ("crisis", "complaint", "complaint", "question", "question", "praise")
CLOSED = ("replied", "dismissed", "resolved", "replied_elsewhere")
WORDS = ("router down again", "billing problem", "thanks for the quick fix", "outage downtown",
         "how do I reset my modem", "waited on hold for an hour", "new plan looks good")
CHUNK = 20_000


def sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime writes (naive UTC).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def mention_rows(total: int, pending: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """`pending` waiting mentions spread through `total`; the rest are what a store
    accumulates: unflagged mentions nobody needs to answer, and closed flagged ones."""
    rng = random.Random(seed)
    waiting = set(rng.sample(range(total), pending))
    authors = max(total // 20, 1)
    for i in range(total):
        created = NOW - timedelta(seconds=(total - i) * 30 + rng.randrange(30))
        author = i % authors + 1
        text = f"@acme {WORDS[i % len(WORDS)]} #{i}, {rng.randrange(90)} minutes now"
        if i in waiting:
            status, flag, priority = "new", rng.choice(FLAGS), round(rng.random(), 3)
        elif i % 10 == 0:
            status, flag, priority = rng.choice(CLOSED), rng.choice(FLAGS), round(rng.random(), 3)
        else:
            status, flag, priority = "new", "spam" if i % 97 == 0 else None, 0.0
        yield (rng.randrange(len(SOURCES)) + 1, f"m{i}", "post",
               f"https://social.example/p/{i}", f"https://social.example/p/{i}", author,
               f"user{author}", None, text, "en", sqlite_time(created), sqlite_time(created),
               i % 50, i % 7, i % 3, None, None, 0, '["acme"]', None, status, flag, priority,
               -0.4 if flag else 0.1)


MENTION_SQL = (
    "INSERT INTO mentions (source_id, external_id, kind, url, canonical_url, author_id, "
    "author_handle, title, text, language, created_at, fetched_at, likes, reposts, replies, "
    "conversation_id, in_reply_to_id, is_reply_to_brand, matched_terms, raw, status, flag, "
    "priority, sentiment) VALUES (" + ",".join("?" * 24) + ")")


def build(path: Path, total: int, pending: int) -> None:
    """Schema by the real migrations, rows by raw executemany."""
    Store.open(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = sqlite_time(NOW)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sources (name, kind, consecutive_failures, auth_failures, created_at) "
        "VALUES (?, 'rss', 0, 0, ?)", [(name, now) for name in SOURCES])
    conn.executemany(
        "INSERT INTO authors (platform, handle, handle_key, followers, updated_at) "
        "VALUES ('web', ?, ?, ?, ?)",
        [(f"user{a}", f"user{a}", (a * 37) % 100_000, now)
         for a in range(1, max(total // 20, 1) + 1)])
    conn.execute("COMMIT")
    rows = mention_rows(total, pending, seed=total)
    while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
        conn.execute("BEGIN")
        conn.executemany(MENTION_SQL, chunk)
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO drafts (mention_id, public_text, private_text, private_channel, updated_at) "
        "SELECT id, 'Sorry about that! Could you DM us your account number?', "
        "'Hi, could you tell us your account e-mail?', 'dm', ? FROM mentions "
        "WHERE status = 'new' AND flag IS NOT NULL", (now,))
    conn.execute("COMMIT")
    conn.close()


def config_for(path: Path) -> Config:
    return parse_config({
        "brand": {"name": "Acme", "terms": ["acme", "@acme"]},
        "database": {"url": f"sqlite:///{path}"},
        "sources": [{"name": name, "kind": "rss", "url": f"http://127.0.0.1:9/{name}.xml"}
                    for name in SOURCES],
    }, Path("<benchmark>"))


async def first_queue(path: Path) -> tuple[float, int]:
    """Seconds from opening the store to the first queue on screen; rows shown."""
    from textual.widgets import DataTable

    from mentionwatch.tui.app import TriageApp

    started = time.perf_counter()
    store = Store.open(f"sqlite:///{path}")
    try:
        app = TriageApp(config_for(path), store, refresh_every=3600)
        async with app.run_test(size=(200, 50)) as pilot:
            table = app.query_one("#queue", DataTable)
            while table.row_count == 0:
                await pilot.pause(0.001)
            screen = app.export_screenshot()  # draws the whole screen, queue included
            elapsed = time.perf_counter() - started
            if "user" not in screen:
                raise SystemExit("the queue did not render its rows")
            rows = table.row_count
    finally:
        store.close()
    return elapsed, rows


def query_ms(path: Path, repeat: int = 5) -> dict[str, float]:
    """The queries behind the screen on their own: first page, a page 9,000 rows deep, the
    flag counts (best of `repeat`, milliseconds)."""
    store = Store.open(f"sqlite:///{path}")
    try:
        deep = queue(store, limit=9_000)[-1].key
        timings = {
            "first_page_ms": lambda: queue(store),
            "deep_page_ms": lambda: queue(store, after=deep),
            "flag_counts_ms": lambda: flag_counts(store),
        }
        out = {}
        for name, call in timings.items():
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - t0)
            out[name] = round(best * 1000, 2)
        return out
    finally:
        store.close()


def query_plans(path: Path) -> list[str]:
    """EXPLAIN QUERY PLAN of the queue's first page, a later page and the flag counts."""
    store = Store.open(f"sqlite:///{path}")
    try:
        later = queue(store, limit=500)[-1].key
        statements = {
            "first page": queue_statement(QueueFilter(), now=NOW),
            "next page": queue_statement(QueueFilter(), now=NOW, after=later),
            "one source": queue_statement(QueueFilter(source=SOURCES[0]), now=NOW),
            "flag counts": flag_counts_statement(NOW),
        }
        return [f"plan, {name}: " + "; ".join(explain(store, statement))
                for name, statement in statements.items()]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--small-pending", type=int, default=500)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="alternate the two timings this many times; the medians count")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the databases here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tui-scale-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        small = where / f"small-{args.small}.db"
        big = where / f"big-{args.big}-{args.pending}.db"
        for path, total, pending in ((small, args.small, args.small_pending),
                                     (big, args.big, args.pending)):
            if not path.exists():
                t0 = time.perf_counter()
                build(path, total, pending)
                print(f"built {path.name}: {total:,} mentions, {pending:,} waiting, "
                      f"{time.perf_counter() - t0:.1f} s")
        for line in query_plans(big):
            print(line)
        asyncio.run(first_queue(small))  # untimed: imports and first-use costs
        small_times, big_times = [], []
        for _ in range(args.repeat):  # alternating: a noisy neighbour slows both
            small_s, small_rows = asyncio.run(first_queue(small))
            big_s, big_rows = asyncio.run(first_queue(big))
            small_times.append(small_s)
            big_times.append(big_s)
            print(f"first queue: small {small_s:.3f} s ({small_rows} rows), "
                  f"big {big_s:.3f} s ({big_rows} rows)")
        small_q, big_q = query_ms(small), query_ms(big)
        print(f"queries small: {small_q}")
        print(f"queries big:   {big_q}")
        figures = {
            "small_mentions": args.small, "small_pending": args.small_pending,
            "big_mentions": args.big, "big_pending": args.pending,
            "small_s": round(median(small_times), 3), "big_s": round(median(big_times), 3),
            "ratio": round(median(big_times) / median(small_times), 3),
            "small_best_s": round(min(small_times), 3), "big_best_s": round(min(big_times), 3),
            "big_first_page_ms": big_q["first_page_ms"],
            "big_deep_page_ms": big_q["deep_page_ms"],
            "big_flag_counts_ms": big_q["flag_counts_ms"],
            "small_first_page_ms": small_q["first_page_ms"],
            "peak_rss_mb": peak_rss_mb(), "repeat": args.repeat,
        }
    emit(figures)


if __name__ == "__main__":
    main()

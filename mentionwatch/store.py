"""The store: the one place that talks SQL.

`Store.store_batch` is the heart of ingest: one source pass, one transaction. New mentions,
their authors, rule matches and drafts, and the source's new cursor and health commit together
or not at all, so a crash mid-pass loses nothing and the next pass re-reads from the old cursor
while the unique keys absorb the re-reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mentionwatch import db
from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.judgement import Judge, Judgement, MentionFacts, stored_explanation
from mentionwatch.models import (
    Author,
    Draft,
    Heartbeat,
    Mention,
    OutboxAction,
    RuleMatch,
    ScheduledSend,
    Source,
    SourceUsage,
    utcnow,
)
from mentionwatch.urls import canonical_url

log = logging.getLogger(__name__)

MENTIONS: Table = cast(Table, Mention.__table__)
AUTHORS: Table = cast(Table, Author.__table__)
SOURCES: Table = cast(Table, Source.__table__)
USAGE: Table = cast(Table, SourceUsage.__table__)
MATCHES: Table = cast(Table, RuleMatch.__table__)
DRAFTS: Table = cast(Table, Draft.__table__)

#: (id, followers, display name, verified) of an author as stored.
AuthorFacts = tuple[int, int | None, str | None, bool | None]

# Rows per statement: small enough for PostgreSQL's parameter limit and SQLite's variables.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one stored batch did."""

    stored: int
    duplicates: int
    mention_ids: tuple[int, ...] = ()
    #: Mentions stored without a judgement because the rules engine failed on them, and the
    #: first error. They are kept (a post the engine cannot judge must not block its source);
    #: `mentionwatch rules rescore` judges them again.
    unjudged: int = 0
    judge_error: str | None = None


@dataclass(frozen=True, slots=True)
class Rescored:
    """What `rules rescore` did: mentions read, how many the judge failed on, the first
    error."""

    mentions: int
    failed: int = 0
    error: str | None = None
    #: How many mentions went from one flag to another (None: no flag), by (before, after).
    changed: Mapping[tuple[str | None, str | None], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    rate_limited_until: datetime | None
    disabled_reason: str | None
    mentions: int
    last_new_mention_at: datetime | None
    state: dict[str, Any] | None
    #: Mentions fetched within UNJUDGED_WINDOW and stored without a judgement: the rules
    #: failed on them, or this version's predecessor judged them (`mentionwatch rules
    #: rescore` judges them).
    unjudged: int = 0

    @classmethod
    def never_polled(cls, name: str, kind: str) -> SourceStatus:
        """A configured source with no row in the store yet."""
        return cls(name=name, kind=kind, last_attempt_at=None, last_success_at=None,
                   last_error=None, last_error_at=None, consecutive_failures=0,
                   next_attempt_at=None, rate_limited_until=None, disabled_reason=None,
                   mentions=0, last_new_mention_at=None, state=None)


@dataclass(frozen=True, slots=True)
class _WrittenMention:
    """A mention this pass stored: its id and, from the batch in memory, what was written."""

    id: int
    mention: MentionIn
    created_at: datetime
    author: AuthorFacts | None


@dataclass(frozen=True, slots=True)
class _Written:
    """What `_insert_mentions` stored: how many, their ids in id order (when asked for) and
    the written mentions themselves (empty when the batch repeated an external id: then the
    database says which copy was stored)."""

    stored: int
    ids: tuple[int, ...] = ()
    rows: tuple[_WrittenMention, ...] = ()


#: How far back `status` looks for mentions stored without a judgement.
UNJUDGED_WINDOW = timedelta(days=7)

#: How many mentions a judge failed on, and the first error.
_Failed = tuple[int, str | None]


def judge_each(judge: Judge, facts: Sequence[MentionFacts]
               ) -> tuple[list[Judgement | None], _Failed]:
    """The judge's verdicts on a batch. Should it fail on the batch, it judges one mention at a
    time, so that a post it cannot judge costs that post its judgement (None), not the
    batch: the rest are judged and stored, and the source is not held up behind it."""
    try:
        return list(judge.judge(facts)), (0, None)
    except Exception:
        log.exception("the rules engine failed on a batch of %d; judging one at a time",
                      len(facts))
    verdicts: list[Judgement | None] = []
    failures = 0
    first: str | None = None
    for one in facts:
        try:
            verdicts.append(judge.judge([one])[0])
        except Exception as exc:
            verdicts.append(None)
            failures += 1
            first = first or f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return verdicts, (failures, first)


#: json.dumps(value, default=str) without building an encoder for every call.
_raw_json = json.JSONEncoder(default=str).encode


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """Typed access to the database for every part of mentionwatch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(readonly=True), expire_on_commit=False
        )
        self._dialect = engine.dialect.name
        #: Parameter marker and value preparation for SQL sent straight to the driver.
        self._mark = "?" if self._dialect == "sqlite" else "%s"
        self._prepare_time: Callable[[datetime], Any] = (
            _sqlite_time if self._dialect == "sqlite" else _naive)
        # Authors known to be stored, by (platform, handle key); filled only after commits.
        self._authors: dict[tuple[str, str], AuthorFacts] = {}
        self._authors_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True,
             concurrency: int = db.DEFAULT_CONCURRENCY) -> Store:
        """Connect to `url` and (by default) bring the schema up to date, with a connection
        pool for `concurrency` poll passes at once ([poll] concurrency)."""
        engine = db.make_engine(url, **db.pool_options(concurrency))
        if migrate:
            db.upgrade(engine)
        return cls(engine)

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only: a SQLite file this process may not write
        (a copy on a report server, the service user's file). Reads work; writes raise
        StoreReadOnly."""
        return db.is_read_only(self.engine)

    def check_writable(self) -> None:
        """Raise StoreReadOnly if the store was opened read-only: for work that would
        otherwise find out only at its first write, after the work (a poll pass)."""
        if self.read_only:
            raise db.read_only_error(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        maker = self._read_sessions if readonly else self.sessions
        with maker() as session, session.begin():
            yield session

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table)

    # ----------------------------------------------------------------- sources

    def sync_sources(self, sources: Sequence[tuple[str, str, str]]) -> None:
        """Make sure a row exists for each configured (name, kind, config hash).

        A changed config hash clears an auth-failure disablement: the person fixed it.
        """
        with self.engine.begin() as conn:
            existing = {
                row.name: row
                for row in conn.execute(select(Source.name, Source.kind, Source.config_hash))
            }
            for name, kind, config_hash in sources:
                row = existing.get(name)
                if row is None:
                    conn.execute(
                        self._insert(SOURCES)
                        .values(name=name, kind=kind, config_hash=config_hash,
                                consecutive_failures=0, auth_failures=0, created_at=utcnow())
                        .on_conflict_do_nothing()
                    )
                elif row.config_hash != config_hash or row.kind != kind:
                    values: dict[str, Any] = {"config_hash": config_hash, "kind": kind}
                    if row.kind != kind:
                        values["cursor"] = None
                    # Changed settings are tried at the next pass, without waiting out the
                    # interval or a backoff earned with the old ones.
                    values.update(disabled_reason=None, auth_failures=0, next_attempt_at=None,
                                  last_attempt_at=None)
                    conn.execute(update(Source).where(Source.name == name).values(**values))

    def source_row(self, name: str) -> Source | None:
        with self.session(readonly=True) as session:
            return session.scalar(select(Source).where(Source.name == name))

    def update_source(self, name: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(Source).where(Source.name == name).values(**values))

    def source_statuses(self) -> list[SourceStatus]:
        counts = (
            select(Mention.source_id, func.count().label("n"))
            .group_by(Mention.source_id)
            .subquery()
        )
        # Only the recent ones, found through ix_mentions_fetched_at: counting every row's
        # explanation reads the whole table (0.5 s on a million mentions, against 0.01 s).
        # `+ 0` keeps SQLite from walking an index on source_id for the GROUP BY instead,
        # which reads every row too.
        source = (Mention.source_id + 0).label("source_id")
        unjudged = (
            select(source, func.count().label("n"))
            .where(Mention.fetched_at >= utcnow() - UNJUDGED_WINDOW,
                   Mention.explanation.is_(None))
            .group_by(source)
            .subquery()
        )
        query = (
            select(Source, func.coalesce(counts.c.n, 0), func.coalesce(unjudged.c.n, 0))
            .outerjoin(counts, counts.c.source_id == Source.id)
            .outerjoin(unjudged, unjudged.c.source_id == Source.id)
            .order_by(Source.name)
        )
        with self.session(readonly=True) as session:
            return [
                SourceStatus(
                    name=s.name, kind=s.kind, last_attempt_at=s.last_attempt_at,
                    last_success_at=s.last_success_at, last_error=s.last_error,
                    last_error_at=s.last_error_at,
                    consecutive_failures=s.consecutive_failures,
                    next_attempt_at=s.next_attempt_at, rate_limited_until=s.rate_limited_until,
                    disabled_reason=s.disabled_reason, mentions=int(n),
                    last_new_mention_at=s.last_new_mention_at, state=s.state,
                    unjudged=int(unjudged),
                )
                for s, n, unjudged in session.execute(query)
            ]

    # ----------------------------------------------------------------- ingest

    def store_batch(
        self,
        source_name: str,
        batch: Batch,
        *,
        judge: Judge | None = None,
        platform: str | None = None,
        now: datetime | None = None,
        fail_after: int | None = None,
        want_ids: bool = False,
    ) -> StoreResult:
        """Store a fetched batch and advance the source's cursor, in one transaction.

        Duplicates (same source and external id, or a canonical URL already stored from any
        source) are skipped. The ids of stored mentions are returned when a judge is given or
        `want_ids` is set (looking them up costs time on large batches). `fail_after` is for
        fault-injection tests: raise after that many rows were written, inside the transaction.
        """
        now = now or utcnow()
        learned: dict[tuple[str, str], AuthorFacts] = {}
        with self.engine.begin() as conn:
            source = conn.execute(
                select(Source.id, Source.kind).where(Source.name == source_name)
            ).one()
            plat = platform or source.kind
            written = self._insert_mentions(
                conn, source.id, plat, batch.mentions, now, fail_after, learned,
                want_ids=judge is not None or want_ids,
            )
            stored, stored_ids = written.stored, written.ids
            failed: _Failed = (0, None)
            if judge is not None and stored_ids:
                failed = self._judge_written(conn, judge, source_name, source.kind, written)
            values: dict[str, Any] = {
                "last_attempt_at": now,
                "last_success_at": now,
                "last_error": None,
                "consecutive_failures": 0,
                "auth_failures": 0,
                "next_attempt_at": None,
                "rate_limited_until": None,
            }
            if batch.next_cursor is not None:
                values["cursor"] = batch.next_cursor
            if batch.state is not None:
                values["state"] = batch.state
            if stored:
                values["last_new_mention_at"] = now
            conn.execute(update(Source).where(Source.id == source.id).values(**values))
            items = batch.items_read if batch.items_read is not None else len(batch.mentions)
            self._count_usage(conn, source.id, now, batch.requests, items)
        if learned:  # committed: now they are safe to remember
            with self._authors_lock:
                self._authors.update(learned)
        return StoreResult(stored, len(batch.mentions) - stored, tuple(stored_ids),
                           unjudged=failed[0], judge_error=failed[1])

    def _count_usage(
        self, conn: Connection, source_id: int, now: datetime, requests: int, items: int
    ) -> None:
        period = now.strftime("%Y-%m")
        table = USAGE
        stmt = self._insert(table).values(
            source_id=source_id, period=period, requests=requests, items_read=items
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["source_id", "period"],
            set_={
                "requests": table.c.requests + stmt.excluded.requests,
                "items_read": table.c.items_read + stmt.excluded.items_read,
            },
        )
        conn.execute(stmt)

    def _insert_mentions(
        self,
        conn: Connection,
        source_id: int,
        platform: str,
        mentions: Sequence[MentionIn],
        now: datetime,
        fail_after: int | None,
        learned: dict[tuple[str, str], AuthorFacts],
        want_ids: bool,
    ) -> _Written:
        """Insert what is new; return how many were stored and (if wanted) which, in id
        order, with what the judge needs of each."""
        # Duplicates (same source and external id, or a canonical URL stored from any source,
        # also within this batch) are left to the unique indexes: ON CONFLICT DO NOTHING. Only
        # our own posted replies need a look-up first: they must never come back as mentions.
        own: set[str] = set()
        if conn.execute(select(OutboxAction.id).where(OutboxAction.posted_id.is_not(None))
                        .limit(1)).first():
            own = self._existing(conn, OutboxAction.posted_id, [m.external_id for m in mentions])
        fresh = [m for m in mentions if m.external_id not in own] if own else list(mentions)
        if not fresh:
            return _Written(0)
        authors: dict[str, AuthorFacts] = {}
        author_ids = self._upsert_authors(conn, platform, fresh, now, learned, authors)
        terms_json: dict[tuple[str, ...], str | None] = {(): None}

        def terms(matched: tuple[str, ...]) -> str | None:
            if matched not in terms_json:  # few distinct term sets per batch
                terms_json[matched] = json.dumps(list(matched))
            return terms_json[matched]

        # Values go straight to the driver (see _bulk_insert_mentions), prepared here: naive-UTC
        # times, JSON as text. A date in the future is a publisher's mistake; it must not sort
        # on top forever.
        prepare = self._prepare_time
        fetched = prepare(now)
        created = [min(m.created_at, now) if m.created_at else now for m in fresh]
        rows = [
            (
                source_id, m.external_id, m.kind, m.url, _canonical(m.url),
                author_ids.get(m.author.handle.lower()) if m.author else None,
                m.author.handle if m.author else None,
                m.title, m.text, m.language, prepare(at), fetched,
                m.likes, m.reposts, m.replies, m.conversation_id, m.in_reply_to_id,
                m.is_reply_to_brand,
                terms(m.matched_terms),
                _raw_json(m.raw) if m.raw else None,
                "new", 0.0,
            )
            for m, at in zip(fresh, created, strict=True)
        ]
        written = stored = 0
        for chunk in _chunks(rows):
            if fail_after is not None and written + len(chunk) > fail_after:
                head = list(chunk[: max(0, fail_after - written)])
                if head:
                    self._bulk_insert_mentions(conn, head)
                raise RuntimeError(f"injected failure after {fail_after} rows")
            stored += self._bulk_insert_mentions(conn, chunk)
            written += len(chunk)
        if not want_ids or not stored:
            return _Written(stored)
        # Rows written by this pass carry its fetched_at; earlier copies do not.
        ids = self._ids_for(conn, source_id, [m.external_id for m in fresh], now)
        in_order = sorted(ids.items(), key=lambda item: item[1])
        stored_ids = tuple(mention_id for _, mention_id in in_order)
        by_external: dict[str, tuple[MentionIn, datetime, AuthorFacts | None]] = {}
        for m, at, row in zip(fresh, created, rows, strict=True):
            if m.external_id in by_external:  # which copy was stored is the database's word
                return _Written(stored, stored_ids)
            author = authors.get(m.author.handle.lower()) if m.author and row[5] else None
            by_external[m.external_id] = (m, at.astimezone(UTC), author)
        return _Written(stored, stored_ids, tuple(
            _WrittenMention(mention_id, *by_external[external_id])
            for external_id, mention_id in in_order
        ))

    _MENTION_COLUMNS = (
        "source_id", "external_id", "kind", "url", "canonical_url", "author_id",
        "author_handle", "title", "text", "language", "created_at", "fetched_at", "likes",
        "reposts", "replies", "conversation_id", "in_reply_to_id", "is_reply_to_brand",
        "matched_terms", "raw", "status", "priority",
    )

    def _bulk_insert_mentions(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """executemany straight to the driver: the ORM's per-value processing cost more than
        SQLite's own insert (see benchmarks/ingest.py). Values come prepared (naive-UTC
        times, JSON as text). Conflicts (a row stored meanwhile) are skipped."""
        columns = ", ".join(self._MENTION_COLUMNS)
        marks = ", ".join([self._mark] * len(self._MENTION_COLUMNS))
        result = conn.exec_driver_sql(
            f"INSERT INTO mentions ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            list(rows),
        )
        return int(result.rowcount)

    _AUTHOR_COLUMNS = ("platform", "handle", "handle_key", "external_id", "display_name",
                       "followers", "verified", "profile_url", "updated_at")

    def _bulk_insert_authors(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """executemany of prepared author rows straight to the driver, conflicts skipped."""
        sql = (f"INSERT INTO authors ({', '.join(self._AUTHOR_COLUMNS)}) "
               f"VALUES ({', '.join([self._mark] * len(self._AUTHOR_COLUMNS))}) "
               "ON CONFLICT DO NOTHING")
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, list(chunk))

    def _ids_for(
        self, conn: Connection, source_id: int, external_ids: Sequence[str], fetched_at: datetime
    ) -> dict[str, int]:
        """external id -> id of the rows this pass stored (they carry its fetched_at)."""
        ids: dict[str, int] = {}
        mark, when = self._mark, self._prepare_time(fetched_at)
        for chunk in _chunks(list(external_ids)):
            ids.update(conn.exec_driver_sql(
                f"SELECT external_id, id FROM mentions WHERE source_id = {mark} "
                f"AND fetched_at = {mark} AND external_id IN {self._marks(len(chunk))}",
                (source_id, when, *chunk)).all())
        return ids

    def _marks(self, count: int) -> str:
        """`(?, ?, ...)`: the values of an IN list for SQL sent straight to the driver (the
        compiled statements expand and process each value in Python)."""
        return f"({', '.join([self._mark] * count)})"

    def _existing(
        self, conn: Connection, column: Any, values: Sequence[str], *where: Any
    ) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(values)):
            found.update(conn.execute(select(column).where(column.in_(chunk), *where)).scalars())
        return found

    def _upsert_authors(
        self, conn: Connection, platform: str, mentions: Sequence[MentionIn], now: datetime,
        learned: dict[tuple[str, str], AuthorFacts], stored: dict[str, AuthorFacts],
    ) -> dict[str, int]:
        """Insert new authors, refresh changed facts on known ones; return handle_key -> id.

        Known authors are remembered per process (most mentions come from authors seen
        before); what this transaction learns goes into `learned`, applied after commit.
        `stored` receives each author's facts as they stand after this upsert (the judge's
        input, without reading them back).
        """
        latest: dict[str, AuthorIn] = {}
        for m in mentions:
            if m.author is not None and m.author.handle:
                latest[m.author.handle.lower()] = m.author
        if not latest:
            return {}
        table = AUTHORS
        ids: dict[str, int] = {}
        stale: list[dict[str, Any]] = []
        unknown: list[str] = []

        def check(key: str, known: AuthorFacts) -> None:
            author_id = known[0]
            ids[key] = author_id
            stored[key] = known
            a = latest[key]
            if a.followers is None:  # nothing new to say about this author
                return
            facts = (author_id, a.followers, a.display_name, a.verified)
            if facts != known:
                stale.append({"b_id": author_id, "followers": a.followers,
                              "display_name": a.display_name, "verified": a.verified,
                              "updated_at": now})
                learned[(platform, key)] = stored[key] = facts

        with self._authors_lock:
            cached = {key: self._authors.get((platform, key)) for key in latest}
        for key, facts in cached.items():
            if facts is None:
                unknown.append(key)
            else:
                check(key, facts)
        if unknown:
            # Insert every author this process has not seen (those stored already are left
            # to the unique index), then read all of them back once: a new author reads back
            # what was just written, a known one goes through `check` like a cached one.
            when = self._prepare_time(now)
            self._bulk_insert_authors(conn, [
                (platform, a.handle, key, a.external_id, a.display_name, a.followers,
                 a.verified, a.profile_url, when)
                for key in unknown for a in (latest[key],)
            ])
        for chunk in _chunks(unknown):
            for author_id, key, followers, name, verified in conn.exec_driver_sql(
                "SELECT id, handle_key, followers, display_name, verified FROM authors "
                f"WHERE platform = {self._mark} AND handle_key IN {self._marks(len(chunk))}",
                (platform, *chunk),
            ):
                facts = (author_id, followers, name, None if verified is None else bool(verified))
                learned[(platform, key)] = facts
                check(key, facts)
        if stale:
            conn.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    followers=bindparam("followers"), display_name=bindparam("display_name"),
                    verified=bindparam("verified"), updated_at=bindparam("updated_at"),
                ),
                stale,
            )
        return ids

    def _apply_judge(
        self, conn: Connection, judge: Judge, source_name: str, source_kind: str,
        mention_ids: Sequence[int],
    ) -> _Failed:
        """Judge stored mentions, read back from the database (rescore). A mention the judge
        fails on keeps its earlier judgement."""
        facts, ids = self._facts(conn, source_name, source_kind, mention_ids, judge.history_days)
        judgements, failed = judge_each(judge, facts)
        self.write_judgements(conn, [(i, j) for i, j in zip(ids, judgements, strict=True)
                                     if j is not None])
        return failed

    def _judge_written(
        self, conn: Connection, judge: Judge, source_name: str, source_kind: str,
        written: _Written,
    ) -> _Failed:
        """Judge the mentions this pass just stored, from the batch in memory: the same facts
        `_facts` would read back, without the round trip."""
        if not written.rows:
            return self._apply_judge(conn, judge, source_name, source_kind, written.ids)
        rows = written.rows
        history = self._author_history(
            conn, [(w.id, w.author[0] if w.author else None, w.created_at) for w in rows],
            judge.history_days)
        facts = []
        for w in rows:
            m, a = w.mention, w.author
            facts.append(MentionFacts(
                source=source_name, source_kind=source_kind, text=m.text, title=m.title,
                url=m.url, author_handle=m.author.handle if m.author else None,
                author_name=a[2] if a else None, followers=a[1] if a else None,
                verified=a[3] if a else None, language=m.language, created_at=w.created_at,
                likes=m.likes, reposts=m.reposts, replies=m.replies,
                is_reply_to_brand=m.is_reply_to_brand, matched_terms=tuple(m.matched_terms),
                author_history=tuple(history[w.id]) if w.id in history else (),
            ))
        judgements, failed = judge_each(judge, facts)
        self.write_judgements(conn, [(w.id, j) for w, j in zip(rows, judgements, strict=True)
                                     if j is not None])
        return failed

    def _facts(
        self, conn: Connection, source_name: str, source_kind: str,
        mention_ids: Sequence[int], history_days: int,
    ) -> tuple[list[MentionFacts], list[int]]:
        m, a = MENTIONS, AUTHORS
        rows: list[Any] = []
        for chunk in _chunks(list(mention_ids)):
            rows.extend(conn.execute(
                select(m, a.c.display_name, a.c.followers, a.c.verified)
                .outerjoin(a, a.c.id == m.c.author_id)
                .where(m.c.id.in_(chunk))
                .order_by(m.c.id)
            ))
        history = self._author_history(
            conn, [(r.id, r.author_id, r.created_at.replace(tzinfo=UTC)) for r in rows],
            history_days)
        facts = [
            MentionFacts(
                source=source_name, source_kind=source_kind, text=r.text, title=r.title,
                url=r.url, author_handle=r.author_handle, author_name=r.display_name,
                followers=r.followers, verified=r.verified, language=r.language,
                created_at=r.created_at.replace(tzinfo=UTC), likes=r.likes,
                reposts=r.reposts, replies=r.replies, is_reply_to_brand=r.is_reply_to_brand,
                matched_terms=tuple(json.loads(r.matched_terms)) if r.matched_terms else (),
                author_history=tuple(history.get(r.id, ())),
            )
            for r in rows
        ]
        return facts, [r.id for r in rows]

    def _author_history(
        self, conn: Connection, mentions: Sequence[tuple[int, int | None, datetime]], days: int
    ) -> dict[int, list[tuple[datetime, str]]]:
        """mention id -> the same author's earlier complaints, for (id, author id, created at)
        of each mention."""
        if days <= 0:
            return {}
        author_ids = sorted({author for _, author, _ in mentions if author is not None})
        if not author_ids:
            return {}
        since = self._prepare_time(utcnow() - timedelta(days=days))
        earlier: dict[int, list[tuple[int, datetime, str]]] = {}
        mark = self._mark
        for chunk in _chunks(author_ids):
            for mention_id, author, created, flag in conn.exec_driver_sql(
                "SELECT id, author_id, created_at, flag FROM mentions "
                f"WHERE author_id IN {self._marks(len(chunk))} AND created_at >= {mark} "
                f"AND flag IN ({mark}, {mark})",
                (*chunk, since, "complaint", "crisis"),
            ):
                earlier.setdefault(author, []).append((mention_id, _read_time(created), flag))
        if not earlier:
            return {}
        # Only what the author said before this mention counts as "already complained".
        return {
            mention_id: [(at, flag) for mid, at, flag in earlier.get(author, [])
                         if mid != mention_id and at <= created]
            for mention_id, author, created in mentions if author is not None
        }

    def rescore(self, judge: Judge, *, chunk: int = CHUNK,
                on_progress: Callable[[int], Any] | None = None,
                since: datetime | None = None,
                sources: Sequence[str] = ()) -> Rescored:
        """Re-run the rules over stored mentions (after a rule change), a chunk per
        transaction: every one, or those fetched `since` then, of `sources` only when named.
        Drafts a person edited are kept. A mention the judge fails on keeps its earlier
        judgement and is counted in `failed`."""
        done = failures = 0
        first: str | None = None
        changed: Counter[tuple[str | None, str | None]] = Counter()
        query = select(SOURCES.c.id, SOURCES.c.name, SOURCES.c.kind)
        if sources:
            query = query.where(SOURCES.c.name.in_(sources))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        window = [] if since is None else [MENTIONS.c.fetched_at >= since]
        for source in rows:
            last_id = 0
            while True:
                with self.engine.begin() as conn:
                    ids = list(conn.execute(
                        select(MENTIONS.c.id)
                        .where(MENTIONS.c.source_id == source.id, MENTIONS.c.id > last_id,
                               *window)
                        .order_by(MENTIONS.c.id).limit(chunk)
                    ).scalars())
                    if not ids:
                        break
                    before = self._flags(conn, ids)
                    failed, error = self._apply_judge(conn, judge, source.name, source.kind,
                                                      ids)
                    after = self._flags(conn, ids)
                    changed.update((before[i], after[i]) for i in ids if before[i] != after[i])
                last_id = ids[-1]
                done += len(ids)
                failures += failed
                first = first or error
                if on_progress:
                    on_progress(len(ids))
        return Rescored(done, failures, first, dict(changed))

    @staticmethod
    def _flags(conn: Connection, ids: Sequence[int]) -> dict[int, str | None]:
        rows = conn.execute(select(MENTIONS.c.id, MENTIONS.c.flag).where(MENTIONS.c.id.in_(ids)))
        return {mention_id: flag for mention_id, flag in rows}

    _DRAFT_COLUMNS = ("public_text", "private_text", "private_channel", "rule", "updated_at")

    def write_judgements(
        self, conn: Connection, judged: Sequence[tuple[int, Judgement]]
    ) -> None:
        """Replace the matches, triage fields and (unedited) drafts of judged mentions.

        Everything goes to the driver's executemany (like the mention insert): the ORM's
        per-value processing cost more than the writes themselves."""
        if not judged:
            return
        ids = [mid for mid, _ in judged]
        for chunk in _chunks(ids):
            conn.exec_driver_sql(
                f"DELETE FROM rule_matches WHERE mention_id IN {self._marks(len(chunk))}",
                tuple(chunk))
        now = self._prepare_time(utcnow())
        mark = self._mark
        matches = [
            (mid, h.rule, h.pack, h.flag, h.severity, h.alert, json.dumps(h.explanation), now)
            for mid, j in judged for h in j.hits
        ]
        if matches:
            conn.exec_driver_sql(
                "INSERT INTO rule_matches (mention_id, rule, pack, flag, severity, alert, "
                f"explanation, created_at) VALUES ({', '.join([mark] * 8)})", matches)
        conn.exec_driver_sql(
            f"UPDATE mentions SET flag = {mark}, priority = {mark}, sentiment = {mark}, "
            f"explanation = {mark} WHERE id = {mark}",
            [(j.flag, j.priority, j.sentiment,
              json.dumps(stored_explanation(j.explanation)), mid)
             for mid, j in judged])
        drafts = [
            (mid, j.public_draft, j.private_draft, j.private_channel, j.draft_rule, now)
            for mid, j in judged if j.public_draft or j.private_draft
        ]
        if drafts:
            # A person's edit wins over a re-scored draft.
            update_set = ", ".join(f"{c} = excluded.{c}" for c in self._DRAFT_COLUMNS)
            conn.exec_driver_sql(
                f"INSERT INTO drafts (mention_id, {', '.join(self._DRAFT_COLUMNS)}) "
                f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (mention_id) DO UPDATE "
                f"SET {update_set} WHERE drafts.edited_by IS NULL", drafts)

    # ----------------------------------------------------------------- health

    def record_failure(
        self,
        source_name: str,
        message: str,
        *,
        now: datetime,
        next_attempt_at: datetime | None,
        rate_limited_until: datetime | None = None,
        auth_failure: bool = False,
        disable_after_auth_failures: int | None = None,
    ) -> None:
        """Record a failed pass: the cursor is not touched."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(Source.consecutive_failures, Source.auth_failures)
                .where(Source.name == source_name)
            ).one()
            auth_failures = row.auth_failures + 1 if auth_failure else 0
            values: dict[str, Any] = {
                "last_attempt_at": now,
                "last_error": message[:2000],
                "last_error_at": now,
                "consecutive_failures": row.consecutive_failures + 1,
                "auth_failures": auth_failures,
                "next_attempt_at": next_attempt_at,
                "rate_limited_until": rate_limited_until,
            }
            if disable_after_auth_failures and auth_failures >= disable_after_auth_failures:
                values["disabled_reason"] = (
                    f"disabled after {auth_failures} authentication failures: {message[:300]}"
                )
            conn.execute(update(Source).where(Source.name == source_name).values(**values))

    def record_not_modified(self, source_name: str, *, now: datetime) -> None:
        self.update_source(
            source_name, last_attempt_at=now, last_success_at=now, last_error=None,
            consecutive_failures=0, auth_failures=0, next_attempt_at=None,
            rate_limited_until=None,
        )

    # ----------------------------------------------------------------- reading

    def list_mentions(
        self,
        *,
        limit: int = 50,
        source: str | None = None,
        flag: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        search: str | None = None,
    ) -> list[Mention]:
        """Recent mentions, newest first, with source and author loaded."""
        query = select(Mention).join(Mention.source)
        if source:
            query = query.where(Source.name == source)
        if flag == "none":
            query = query.where(Mention.flag.is_(None))
        elif flag:
            query = query.where(Mention.flag == flag)
        if status:
            query = query.where(Mention.status == status)
        if since:
            query = query.where(Mention.created_at >= since)
        if search:
            query = query.where(text_search(search))
        query = query.order_by(Mention.created_at.desc(), Mention.id.desc()).limit(limit)
        with self.session(readonly=True) as session:
            return list(session.scalars(query).unique())

    def mention_detail(
        self, mention_id: int
    ) -> tuple[Mention, list[RuleMatch], Draft | None] | None:
        """A mention with its rule matches and draft, or None."""
        with self.session(readonly=True) as session:
            mention = session.get(Mention, mention_id)
            if mention is None:
                return None
            matches = list(session.scalars(
                select(RuleMatch).where(RuleMatch.mention_id == mention_id)
                .order_by(RuleMatch.severity.desc())))
            draft = session.scalar(select(Draft).where(Draft.mention_id == mention_id))
            return mention, matches, draft

    def set_status(self, mention_id: int, status: str, *, actor: str, event: str,
                   unanswered: bool = False) -> None:
        """Set a mention's triage status and record who did it. `unanswered` also clears
        its first response time (undoing "answered elsewhere" before any reply)."""
        from mentionwatch.audit import record

        values: dict[str, Any] = {"status": status}
        if unanswered:
            values["first_response_at"] = None
        with self.engine.begin() as conn:
            conn.execute(update(MENTIONS).where(MENTIONS.c.id == mention_id).values(**values))
            record(conn, actor, event, mention_id, status=status)

    def count_mentions(self, source: str | None = None, *, sources: Sequence[str] = (),
                       since: datetime | None = None) -> int:
        """Stored mentions: of `source` (or `sources`), fetched `since` then when given."""
        query = select(func.count()).select_from(Mention)
        names = [source] if source else list(sources)
        if names:
            query = query.join(Mention.source).where(Source.name.in_(names))
        if since is not None:
            query = query.where(Mention.fetched_at >= since)
        with self.session(readonly=True) as session:
            return int(session.scalar(query) or 0)

    def arrivals(self, source_name: str, limit: int = 200) -> list[datetime]:
        """When the source's most recent mentions were stored (pass times), newest first."""
        query = (select(MENTIONS.c.fetched_at).join(SOURCES, SOURCES.c.id == MENTIONS.c.source_id)
                 .where(SOURCES.c.name == source_name)
                 .order_by(MENTIONS.c.fetched_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def write_heartbeat(self, name: str, *, pid: int | None, host: str | None,
                        details: dict[str, Any] | None = None) -> None:
        """Record that a long-running process is alive (upsert by name)."""
        table = cast(Table, Heartbeat.__table__)
        stmt = self._insert(table).values(name=name, at=utcnow(), pid=pid, host=host,
                                          details=details)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"at": stmt.excluded.at, "pid": stmt.excluded.pid,
                  "host": stmt.excluded.host, "details": stmt.excluded.details},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def heartbeats(self, kind: str) -> list[Heartbeat]:
        """The heartbeats of processes of one kind ("run": the row `kind` itself, as versions
        before one per process wrote it, and each "run:HOST:PID"), the latest first."""
        query = select(Heartbeat).where(_of_kind(kind)).order_by(Heartbeat.at.desc())
        with self.session(readonly=True) as session:
            return list(session.scalars(query))

    def prune_heartbeats(self, kind: str, *, before: datetime) -> int:
        """Remove the heartbeats of `kind` last written before `before`; how many."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(Heartbeat).where(_of_kind(kind), Heartbeat.at < before))
            return int(done.rowcount)

    def claim_send(self, name: str, period: str, *, now: datetime, host: str | None,
                   pid: int | None) -> bool:
        """Take the scheduled send `name` for `period`; False when it is taken already (sent,
        or being sent, by this or another process)."""
        table = cast(Table, ScheduledSend.__table__)
        stmt = (self._insert(table).values(name=name, period=period, claimed_at=now, host=host,
                                           pid=pid)
                .on_conflict_do_nothing().returning(table.c.id))
        with self.engine.begin() as conn:
            # (RETURNING, not rowcount: on PostgreSQL that said 1 for a row not inserted.)
            return conn.execute(stmt).first() is not None

    def finish_send(self, name: str, period: str, *, now: datetime,
                    recipients: Sequence[str], actor: str, **details: Any) -> None:
        """Record that the scheduled send went out, and to whom, with an audit event
        ("digest_sent") by `actor`. A row already recorded as sent keeps its first send
        (`report --email --again` adds only the event)."""
        from mentionwatch.audit import record

        with self.engine.begin() as conn:
            conn.execute(update(ScheduledSend).where(
                ScheduledSend.name == name, ScheduledSend.period == period,
                ScheduledSend.sent_at.is_(None))
                .values(sent_at=now, recipients=", ".join(recipients)))
            record(conn, actor, "digest_sent", send=name, period=period,
                   recipients=list(recipients), **details)

    def scheduled_send(self, name: str, period: str) -> ScheduledSend | None:
        """The scheduled send `name` of `period`, taken or sent; None when neither."""
        with self.session(readonly=True) as session:
            return session.scalar(select(ScheduledSend).where(
                ScheduledSend.name == name, ScheduledSend.period == period))

    def release_send(self, name: str, period: str) -> None:
        """Give back a scheduled send that failed, so that a later firing may try again."""
        with self.engine.begin() as conn:
            conn.execute(delete(ScheduledSend).where(
                ScheduledSend.name == name, ScheduledSend.period == period,
                ScheduledSend.sent_at.is_(None)))

    def usage(self, source_name: str, period: str) -> tuple[int, int]:
        """(requests, items read) for a source in a "YYYY-MM" period."""
        with self.session(readonly=True) as session:
            row = session.execute(
                select(SourceUsage.requests, SourceUsage.items_read)
                .join(Source, Source.id == SourceUsage.source_id)
                .where(and_(Source.name == source_name, SourceUsage.period == period))
            ).first()
        return (row.requests, row.items_read) if row else (0, 0)


def _canonical(url: str | None) -> str | None:
    """The canonical URL, or None when it is longer than its column (such a URL is stored,
    but takes no part in cross-source de-duplication)."""
    key = canonical_url(url)
    return key if key is None or len(key) <= _CANONICAL_WIDTH else None


_CANONICAL_WIDTH = int(Mention.__table__.c.canonical_url.type.length)  # type: ignore[attr-defined]


def _of_kind(kind: str) -> ColumnElement[bool]:
    """Heartbeat rows of one kind of process: `kind` itself, or "kind:..." (one per process)."""
    return or_(Heartbeat.name == kind, Heartbeat.name.startswith(f"{kind}:", autoescape=True))


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _read_time(value: datetime | str) -> datetime:
    """A time as the driver returns it (SQLite: text), made timezone-aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _sqlite_time(value: datetime) -> str:
    # The same text form SQLAlchemy's SQLite DateTime writes, so comparisons stay consistent.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def config_hash(data: dict[str, Any]) -> str:
    """A stable hash of a source's settings, to notice when a person changed them."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def text_search(words: str) -> ColumnElement[bool]:
    """Mentions whose text, title or author handle hold `words` (any case; % and _ are
    themselves, not LIKE's wildcards)."""
    escaped = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\")
                 for column in (Mention.text, Mention.title, Mention.author_handle)))

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mentionwatch import db
from mentionwatch.connector import Batch, MentionIn
from mentionwatch.judgement import Judge, Judgement, MentionFacts
from mentionwatch.models import (
    Author,
    Draft,
    Mention,
    OutboxAction,
    RuleMatch,
    Source,
    SourceUsage,
    utcnow,
)
from mentionwatch.urls import canonical_url

log = logging.getLogger(__name__)

# Rows per statement: small enough for PostgreSQL's parameter limit and SQLite's variables.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one stored batch did."""

    stored: int
    duplicates: int
    mention_ids: tuple[int, ...] = ()


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

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` and (by default) bring the schema up to date."""
        engine = db.make_engine(url)
        if migrate:
            db.upgrade(engine)
        return cls(engine)

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
                        self._insert(Source.__table__)
                        .values(name=name, kind=kind, config_hash=config_hash,
                                consecutive_failures=0, auth_failures=0, created_at=utcnow())
                        .on_conflict_do_nothing()
                    )
                elif row.config_hash != config_hash or row.kind != kind:
                    values: dict[str, Any] = {"config_hash": config_hash, "kind": kind}
                    if row.kind != kind:
                        values["cursor"] = None
                    values.update(disabled_reason=None, auth_failures=0, next_attempt_at=None)
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
        query = select(Source, func.coalesce(counts.c.n, 0)).outerjoin(
            counts, counts.c.source_id == Source.id
        ).order_by(Source.name)
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
                )
                for s, n in session.execute(query)
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
    ) -> StoreResult:
        """Store a fetched batch and advance the source's cursor, in one transaction.

        Duplicates (same source and external id, or a canonical URL already stored from any
        source) are skipped. `fail_after` is for fault-injection tests: raise after that many
        rows were written, inside the transaction.
        """
        now = now or utcnow()
        with self.engine.begin() as conn:
            source = conn.execute(
                select(Source.id, Source.kind).where(Source.name == source_name)
            ).one()
            plat = platform or source.kind
            stored_ids, duplicates = self._insert_mentions(
                conn, source.id, plat, batch.mentions, now, fail_after
            )
            if judge is not None and stored_ids:
                self._apply_judge(conn, judge, source_name, source.kind, stored_ids)
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
            if stored_ids:
                values["last_new_mention_at"] = now
            conn.execute(update(Source).where(Source.id == source.id).values(**values))
            items = batch.items_read if batch.items_read is not None else len(batch.mentions)
            self._count_usage(conn, source.id, now, batch.requests, items)
        return StoreResult(len(stored_ids), duplicates, tuple(stored_ids))

    def _count_usage(
        self, conn: Connection, source_id: int, now: datetime, requests: int, items: int
    ) -> None:
        period = now.strftime("%Y-%m")
        table = SourceUsage.__table__
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
    ) -> tuple[list[int], int]:
        # De-duplicate inside the batch first (a feed may list an entry twice).
        unique: dict[str, MentionIn] = {}
        for m in mentions:
            unique.setdefault(m.external_id, m)
        candidates = list(unique.values())
        canon = {m.external_id: canonical_url(m.url) for m in candidates}
        external_ids = [m.external_id for m in candidates]
        known_ids = self._existing(conn, Mention.external_id, external_ids,
                                   Mention.source_id == source_id)
        # Our own replies, posted through the outbox, must never come back as new mentions.
        known_ids |= self._existing(conn, OutboxAction.posted_id, external_ids)
        known_urls = self._existing(conn, Mention.canonical_url,
                                    [u for u in canon.values() if u])
        seen_urls: set[str] = set()
        fresh: list[MentionIn] = []
        for m in candidates:
            url = canon[m.external_id]
            if m.external_id in known_ids or (url and (url in known_urls or url in seen_urls)):
                continue
            if url:
                seen_urls.add(url)
            fresh.append(m)
        duplicates = len(mentions) - len(fresh)
        if not fresh:
            return [], duplicates
        author_ids = self._upsert_authors(conn, platform, fresh, now)
        rows = [
            {
                "source_id": source_id,
                "external_id": m.external_id,
                "kind": m.kind,
                "url": m.url,
                "canonical_url": canon[m.external_id],
                "author_id": author_ids.get(m.author.handle.lower()) if m.author else None,
                "author_handle": m.author.handle if m.author else None,
                "title": m.title,
                "text": m.text,
                "language": m.language,
                # A date in the future is a publisher's mistake; it must not sort on top forever.
                "created_at": min(m.created_at, now) if m.created_at else now,
                "fetched_at": now,
                "likes": m.likes,
                "reposts": m.reposts,
                "replies": m.replies,
                "conversation_id": m.conversation_id,
                "in_reply_to_id": m.in_reply_to_id,
                "is_reply_to_brand": m.is_reply_to_brand,
                "matched_terms": json.dumps(list(m.matched_terms)) if m.matched_terms else None,
                "raw": dict(m.raw) if m.raw else None,
                "status": "new",
                "priority": 0.0,
            }
            for m in fresh
        ]
        ids: list[int] = []
        stmt = self._insert(Mention.__table__).on_conflict_do_nothing().returning(
            Mention.__table__.c.id
        )
        written = 0
        for chunk in _chunks(rows):
            if fail_after is not None and written + len(chunk) > fail_after:
                head = list(chunk[: max(0, fail_after - written)])
                if head:
                    conn.execute(stmt, head)
                raise RuntimeError(f"injected failure after {fail_after} rows")
            ids.extend(conn.execute(stmt, list(chunk)).scalars())
            written += len(chunk)
        return ids, duplicates + (len(fresh) - len(ids))

    def _existing(
        self, conn: Connection, column: Any, values: Sequence[str], *where: Any
    ) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(values)):
            found.update(conn.execute(select(column).where(column.in_(chunk), *where)).scalars())
        return found

    def _upsert_authors(
        self, conn: Connection, platform: str, mentions: Sequence[MentionIn], now: datetime
    ) -> dict[str, int]:
        """Insert new authors, refresh changed facts on known ones; return handle_key -> id."""
        latest: dict[str, dict[str, Any]] = {}
        for m in mentions:
            if m.author is None or not m.author.handle:
                continue
            a = m.author
            latest[a.handle.lower()] = {
                "platform": platform, "handle": a.handle, "handle_key": a.handle.lower(),
                "external_id": a.external_id, "display_name": a.display_name,
                "followers": a.followers, "verified": a.verified,
                "profile_url": a.profile_url, "updated_at": now,
            }
        if not latest:
            return {}
        table = Author.__table__
        ids: dict[str, int] = {}
        stale: list[dict[str, Any]] = []
        for chunk in _chunks(list(latest)):
            for row in conn.execute(
                select(table.c.id, table.c.handle_key, table.c.followers, table.c.display_name,
                       table.c.verified)
                .where(table.c.platform == platform, table.c.handle_key.in_(chunk))
            ):
                ids[row.handle_key] = row.id
                new = latest[row.handle_key]
                if (new["followers"], new["display_name"], new["verified"]) != (
                    row.followers, row.display_name, row.verified
                ) and new["followers"] is not None:
                    stale.append({"b_id": row.id, **{k: new[k] for k in
                                  ("followers", "display_name", "verified", "updated_at")}})
        missing = [latest[k] for k in latest if k not in ids]
        for chunk in _chunks(missing):
            conn.execute(self._insert(table).on_conflict_do_nothing(), list(chunk))
        if missing:
            for chunk in _chunks([m["handle_key"] for m in missing]):
                for row in conn.execute(
                    select(table.c.id, table.c.handle_key)
                    .where(table.c.platform == platform, table.c.handle_key.in_(chunk))
                ):
                    ids[row.handle_key] = row.id
        if stale:
            from sqlalchemy import bindparam

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
    ) -> None:
        facts, ids = self._facts(conn, source_name, source_kind, mention_ids, judge.history_days)
        judgements = judge.judge(facts)
        self.write_judgements(conn, list(zip(ids, judgements, strict=True)))

    def _facts(
        self, conn: Connection, source_name: str, source_kind: str,
        mention_ids: Sequence[int], history_days: int,
    ) -> tuple[list[MentionFacts], list[int]]:
        m, a = Mention.__table__, Author.__table__
        rows = []
        for chunk in _chunks(list(mention_ids)):
            rows.extend(conn.execute(
                select(m, a.c.display_name, a.c.followers, a.c.verified)
                .outerjoin(a, a.c.id == m.c.author_id)
                .where(m.c.id.in_(chunk))
                .order_by(m.c.id)
            ))
        history = self._author_history(conn, rows, history_days)
        facts = [
            MentionFacts(
                source=source_name, source_kind=source_kind, text=r.text, title=r.title,
                url=r.url, author_handle=r.author_handle, author_name=r.display_name,
                followers=r.followers, verified=r.verified, language=r.language,
                created_at=r.created_at.replace(tzinfo=UTC), likes=r.likes,
                reposts=r.reposts, replies=r.replies, is_reply_to_brand=r.is_reply_to_brand,
                matched_terms=tuple(json.loads(r.matched_terms)) if r.matched_terms else (),
                author_history=tuple(history.get((r.author_id, r.id), ())),
            )
            for r in rows
        ]
        return facts, [r.id for r in rows]

    def _author_history(
        self, conn: Connection, rows: Sequence[Any], days: int
    ) -> dict[tuple[int, int], list[tuple[datetime, str]]]:
        if days <= 0:
            return {}
        author_ids = sorted({r.author_id for r in rows if r.author_id is not None})
        if not author_ids:
            return {}
        since = utcnow() - timedelta(days=days)
        earlier: dict[int, list[tuple[int, datetime, str]]] = {}
        m = Mention.__table__
        for chunk in _chunks(author_ids):
            for row in conn.execute(
                select(m.c.id, m.c.author_id, m.c.created_at, m.c.flag).where(
                    m.c.author_id.in_(chunk), m.c.created_at >= since.replace(tzinfo=None),
                    m.c.flag.in_(("complaint", "crisis")),
                )
            ):
                earlier.setdefault(row.author_id, []).append(
                    (row.id, row.created_at.replace(tzinfo=UTC), row.flag)
                )
        return {
            (r.author_id, r.id): [(at, flag) for mid, at, flag in earlier.get(r.author_id, [])
                                  if mid != r.id]
            for r in rows if r.author_id is not None
        }

    def write_judgements(
        self, conn: Connection, judged: Sequence[tuple[int, Judgement]]
    ) -> None:
        """Replace the matches, triage fields and (unedited) drafts of judged mentions."""
        from sqlalchemy import bindparam, delete

        if not judged:
            return
        ids = [mid for mid, _ in judged]
        for chunk in _chunks(ids):
            conn.execute(delete(RuleMatch).where(RuleMatch.mention_id.in_(chunk)))
        now = utcnow()
        matches = [
            {"mention_id": mid, "rule": h.rule, "pack": h.pack, "flag": h.flag,
             "severity": h.severity, "alert": h.alert, "explanation": h.explanation,
             "created_at": now}
            for mid, j in judged for h in j.hits
        ]
        for chunk in _chunks(matches):
            conn.execute(RuleMatch.__table__.insert(), list(chunk))
        m = Mention.__table__
        conn.execute(
            update(m).where(m.c.id == bindparam("b_id")).values(
                flag=bindparam("flag"), priority=bindparam("priority"),
                sentiment=bindparam("sentiment"),
            ),
            [{"b_id": mid, "flag": j.flag, "priority": j.priority, "sentiment": j.sentiment}
             for mid, j in judged],
        )
        drafts = [
            {"mention_id": mid, "public_text": j.public_draft, "private_text": j.private_draft,
             "private_channel": j.private_channel, "rule": j.draft_rule, "updated_at": now}
            for mid, j in judged if j.public_draft or j.private_draft
        ]
        d = Draft.__table__
        for chunk in _chunks(drafts):
            stmt = self._insert(d)
            # A person's edit wins over a re-scored draft.
            stmt = stmt.on_conflict_do_update(
                index_elements=["mention_id"],
                set_={k: stmt.excluded[k] for k in
                      ("public_text", "private_text", "private_channel", "rule", "updated_at")},
                where=d.c.edited_by.is_(None),
            )
            conn.execute(stmt, list(chunk))

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
        if flag:
            query = query.where(Mention.flag == flag)
        if status:
            query = query.where(Mention.status == status)
        if since:
            query = query.where(Mention.created_at >= since)
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(or_(func.lower(Mention.text).like(pattern),
                                    func.lower(Mention.author_handle).like(pattern)))
        query = query.order_by(Mention.created_at.desc(), Mention.id.desc()).limit(limit)
        with self.session(readonly=True) as session:
            return list(session.scalars(query).unique())

    def count_mentions(self, source: str | None = None) -> int:
        query = select(func.count()).select_from(Mention)
        if source:
            query = query.join(Mention.source).where(Source.name == source)
        with self.session(readonly=True) as session:
            return int(session.scalar(query) or 0)

    def usage(self, source_name: str, period: str) -> tuple[int, int]:
        """(requests, items read) for a source in a "YYYY-MM" period."""
        with self.session(readonly=True) as session:
            row = session.execute(
                select(SourceUsage.requests, SourceUsage.items_read)
                .join(Source, Source.id == SourceUsage.source_id)
                .where(and_(Source.name == source_name, SourceUsage.period == period))
            ).first()
        return (row.requests, row.items_read) if row else (0, 0)


def config_hash(data: dict[str, Any]) -> str:
    """A stable hash of a source's settings, to notice when a person changed them."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

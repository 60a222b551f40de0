"""The stored records. The store (`mentionwatch.store`) is the only place that talks SQL.

Times are stored as naive UTC and come back timezone-aware (UTC), on SQLite and PostgreSQL
alike. Schema changes go through Alembic migrations in `migrations/` (append-only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints let Alembic's SQLite batch mode drop and re-create them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The mentions the triage queue holds, as SQL with literal values: the partial index
#: `ix_mentions_queue` has this condition and the queue's queries repeat it word for word.
WAITING_STATUSES = ("new", "open")
WAITING_SQL = "status IN ('new', 'open') AND flag IS NOT NULL"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Source(Base):
    """A configured source and its health. The cursor moves only with stored mentions."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    cursor: Mapped[str | None] = mapped_column(Text)
    config_hash: Mapped[str | None] = mapped_column(String(64))
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_new_mention_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    rate_limited_until: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    #: Connector-owned state that is not a cursor (read budgets, learned rhythm...).
    state: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Author(Base):
    """A person or account on one platform."""

    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("platform", "handle_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(50))
    handle: Mapped[str] = mapped_column(String(300))
    #: Lower-cased handle, the unique key (handles are case-insensitive on most platforms).
    handle_key: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(300))
    followers: Mapped[int | None] = mapped_column(BigInteger)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    profile_url: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mention(Base):
    """One post that names the brand, stored once per (source, external id)."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_mentions_canonical_url", "canonical_url", unique=True),
        Index("ix_mentions_status_priority", "status", "priority"),
        Index("ix_mentions_created_at", "created_at"),
        Index("ix_mentions_fetched_at", "fetched_at"),
        Index("ix_mentions_author_id", "author_id"),
        Index("ix_mentions_conversation", "source_id", "conversation_id"),
        # The triage queue: only mentions waiting for a person, in queue order (migration
        # 0002_tui_indexes explains why it is partial and why its condition is literal).
        Index("ix_mentions_queue", text("priority DESC"), "created_at", "id", "flag", "status",
              "snoozed_until", sqlite_where=text(WAITING_SQL),
              postgresql_where=text(WAITING_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30), default="post")
    url: Mapped[str | None] = mapped_column(Text)
    canonical_url: Mapped[str | None] = mapped_column(String(2000))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id", ondelete="SET NULL"))
    author_handle: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    fetched_at: Mapped[datetime]
    likes: Mapped[int] = mapped_column(Integer, default=0)
    reposts: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    conversation_id: Mapped[str | None] = mapped_column(String(300))
    in_reply_to_id: Mapped[str | None] = mapped_column(String(300))
    is_reply_to_brand: Mapped[bool] = mapped_column(Boolean, default=False)
    matched_terms: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None]
    # Triage state, filled by the rules engine and the TUI.
    status: Mapped[str] = mapped_column(String(20), default="new")
    flag: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    sentiment: Mapped[float | None] = mapped_column(Float)
    #: The numbers behind the priority and the complaint score (judgement.STORED_EXPLANATION).
    explanation: Mapped[dict[str, Any] | None]
    assigned_to: Mapped[str | None] = mapped_column(String(100))
    snoozed_until: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]

    source: Mapped[Source] = relationship(lazy="joined")
    author: Mapped[Author | None] = relationship(lazy="joined")


class RuleMatch(Base):
    """Which rule matched which mention, and why (terms, thresholds, numbers)."""

    __tablename__ = "rule_matches"
    __table_args__ = (Index("ix_rule_matches_mention_id", "mention_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(200))
    pack: Mapped[str | None] = mapped_column(String(200))
    flag: Mapped[str] = mapped_column(String(20))
    severity: Mapped[float] = mapped_column(Float, default=0.0)
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    explanation: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Draft(Base):
    """The drafted public reply and private follow-up for a mention; editable by a person."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), unique=True
    )
    public_text: Mapped[str | None] = mapped_column(Text)
    private_text: Mapped[str | None] = mapped_column(Text)
    private_channel: Mapped[str | None] = mapped_column(String(30))
    rule: Mapped[str | None] = mapped_column(String(200))
    edited_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxAction(Base):
    """An approved reply on its way out: approved -> sending -> sent | failed | unknown.

    A crisis reply may first wait in `needs_approval` (approved_by set, second_approver not
    yet; see mentionwatch.team) and is never sent from there; `rejected` ends it unsent.

    The state moves to `sending` and commits before the network call, so a crash leaves
    `sending`, which recovery turns into `unknown` for a person to check; never re-sent.
    """

    __tablename__ = "outbox_actions"
    __table_args__ = (
        Index("ix_outbox_actions_state", "state"),
        Index("ix_outbox_actions_mention_id", "mention_id"),
        Index("ix_outbox_actions_posted_id", "posted_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))  # "reply" | "private"
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="approved")
    created_by: Mapped[str | None] = mapped_column(String(100))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    second_approver: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    posted_id: Mapped[str | None] = mapped_column(String(300))
    posted_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Who did what, when: approve, edit, dismiss, assign, send result, alert sent."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_mention_id",
                                                                  "mention_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(50))
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any] | None]


class Alert(Base):
    """An email to on-call staff. `dedup_key` makes "at most once per mention and trigger"."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    trigger: Mapped[str] = mapped_column(String(50))
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="SET NULL"))
    recipients: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Heartbeat(Base):
    """A long-running process saying it is alive (`mentionwatch run`)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime]
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None]


class SourceUsage(Base):
    """Requests and items read per source per month, for paid API read budgets."""

    __tablename__ = "source_usage"
    __table_args__ = (UniqueConstraint("source_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))  # "YYYY-MM"
    requests: Mapped[int] = mapped_column(Integer, default=0)
    items_read: Mapped[int] = mapped_column(Integer, default=0)


class ScheduledSend(Base):
    """An email sent on a schedule (`run`'s morning digest, cron's `report --email`), one
    row per period (the local day and time it is for; for `report --email` the day and the
    report's options). Taken before sending: a second firing of the same period (the autumn
    clock change repeats an hour), a restarted `run`, a second service on the same database
    or a cron job run again finds it and sends nothing. See `mentionwatch.sends`."""

    __tablename__ = "scheduled_sends"
    __table_args__ = (UniqueConstraint("name", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(100))
    claimed_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    recipients: Mapped[str | None] = mapped_column(Text)

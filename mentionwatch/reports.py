"""Reports: volume, flags, sentiment, authors, terms and response performance.

Two layers, so the figures can be checked on plain values:

- `load_report_data(store, ...)` reads what a report needs through read-only sessions (the
  store stays the only place that talks SQL; this module only builds SELECTs on its models);
- `compute_report(data, ...)` is pure: rows in, a typed `Report` out.

`build_report()` does both and is what the CLI, the HTML report, the digest email and the TUI
stats view call. All days are UTC days; all durations are seconds.

Definitions (stated once, because a PR lead will ask):

- *first reply* of a mention: the earliest of `mentions.first_response_at`, the `sent_at` of a
  sent `reply` outbox action, and an audit event named in `REPLY_AUDIT_EVENTS` ("replied
  elsewhere", for sources we cannot post to).
- *moved to a private channel*: a sent `private` outbox action, or an audit event named in
  `PRIVATE_AUDIT_EVENTS`.
- *response performance* covers mentions flagged in `COMPLAINT_FLAGS` created in the window.
  Median and 90th percentile are over the answered ones (linear interpolation between closest
  ranks, numpy's default); the "within 1 h" and "private" shares are over all of them, so an
  unanswered complaint counts against the team.
- *open backlog*: mentions flagged in `ACTIONABLE_FLAGS`, not in a closed status, with no first
  reply, whatever their age (an old unanswered complaint is exactly what must show).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mentionwatch.models import AuditEvent, Author, Mention, OutboxAction, Source, utcnow
from mentionwatch.store import Store

#: Flags whose response times the report measures.
COMPLAINT_FLAGS: tuple[str, ...] = ("complaint",)
#: Flags that need an answer from a person; unanswered ones make the backlog.
ACTIONABLE_FLAGS: tuple[str, ...] = ("complaint", "crisis", "question")
#: Flags shown in the flag summary even when their count is zero, in this order.
REPORTED_FLAGS: tuple[str, ...] = ("complaint", "crisis", "question", "praise", "spam")
#: Triage statuses that take a mention out of the backlog.
CLOSED_STATUSES: frozenset[str] = frozenset(
    {"dismissed", "resolved", "replied", "replied_elsewhere", "done", "closed", "spam",
     "handled"}
)
#: Audit events that count as a first reply given outside mentionwatch.
REPLY_AUDIT_EVENTS: frozenset[str] = frozenset(
    {"replied_elsewhere", "marked_replied", "reply_sent"}
)
#: Audit events that count as moving the conversation to a private channel.
PRIVATE_AUDIT_EVENTS: frozenset[str] = frozenset(
    {"private_sent", "private_elsewhere", "moved_private"}
)
#: Sentiment scores (VADER compound) at or beyond these count as negative / positive.
NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05
FAST_REPLY = timedelta(hours=1)
#: Backlog age buckets: (upper bound, label); the last has no upper bound.
BACKLOG_BUCKETS: tuple[tuple[timedelta | None, str], ...] = (
    (timedelta(hours=1), "< 1h"),
    (timedelta(hours=4), "1-4h"),
    (timedelta(hours=24), "4-24h"),
    (timedelta(days=3), "1-3d"),
    (None, "> 3d"),
)


# --------------------------------------------------------------------------- input records


@dataclass(frozen=True, slots=True)
class MentionRow:
    """What a report needs of one mention in the window."""

    id: int
    source: str
    created_at: datetime
    flag: str | None = None
    status: str = "new"
    sentiment: float | None = None
    platform: str | None = None
    author_handle: str | None = None
    author_name: str | None = None
    followers: int | None = None
    verified: bool | None = None
    matched_terms: tuple[str, ...] = ()
    engagement: int = 0
    first_reply_at: datetime | None = None
    private_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Rows read from the store for one report."""

    mentions: tuple[MentionRow, ...]
    #: created_at of every open, unanswered, actionable mention (any age).
    backlog_created: tuple[datetime, ...]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class DailySourceCount:
    day: date
    source: str
    count: int


@dataclass(frozen=True, slots=True)
class FlagCount:
    flag: str
    count: int


@dataclass(frozen=True, slots=True)
class DaySentiment:
    day: date
    scored: int
    mean: float | None
    negative: int
    neutral: int
    positive: int


@dataclass(frozen=True, slots=True)
class AuthorReach:
    handle: str
    platform: str | None
    display_name: str | None
    followers: int | None
    verified: bool | None
    mentions: int
    engagement: int


@dataclass(frozen=True, slots=True)
class TermCount:
    term: str
    count: int


@dataclass(frozen=True, slots=True)
class ResponsePerformance:
    complaints: int
    answered: int
    median_first_reply_s: float | None
    p90_first_reply_s: float | None
    answered_within_1h: int
    moved_private: int

    @property
    def unanswered(self) -> int:
        return self.complaints - self.answered

    @property
    def share_within_1h(self) -> float | None:
        return self.answered_within_1h / self.complaints if self.complaints else None

    @property
    def share_private(self) -> float | None:
        return self.moved_private / self.complaints if self.complaints else None


@dataclass(frozen=True, slots=True)
class BacklogBucket:
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: datetime
    since: datetime
    until: datetime
    sources_filter: tuple[str, ...]
    total: int
    days: tuple[date, ...]
    sources: tuple[str, ...]
    per_day: tuple[DailySourceCount, ...]
    flags: tuple[FlagCount, ...]
    sentiment: tuple[DaySentiment, ...]
    top_authors: tuple[AuthorReach, ...]
    top_terms: tuple[TermCount, ...]
    response: ResponsePerformance
    backlog: tuple[BacklogBucket, ...]
    backlog_oldest_s: float | None = field(default=None)

    def day_totals(self) -> list[int]:
        """Mentions per day, all sources together, in `days` order."""
        totals = dict.fromkeys(self.days, 0)
        for row in self.per_day:
            totals[row.day] += row.count
        return list(totals.values())

    def source_totals(self) -> dict[str, int]:
        totals = dict.fromkeys(self.sources, 0)
        for row in self.per_day:
            totals[row.source] += row.count
        return totals

    @property
    def backlog_total(self) -> int:
        return sum(b.count for b in self.backlog)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ISO 8601 UTC times, ISO dates, seconds for durations."""
        data: dict[str, Any] = _jsonable(asdict(self))
        r = self.response
        data["response"].update(
            unanswered=r.unanswered,
            share_within_1h=_round(r.share_within_1h),
            share_private=_round(r.share_private),
        )
        data["backlog_total"] = self.backlog_total
        data["definitions"] = {
            "complaint_flags": list(COMPLAINT_FLAGS),
            "actionable_flags": list(ACTIONABLE_FLAGS),
            "percentiles": "linear interpolation between closest ranks",
            "days": "UTC",
        }
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- pure figures


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th quantile (0..1) by linear interpolation between closest ranks; None if empty.

    Raises ValueError for q outside 0..1.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be between 0 and 1, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def utc_days(since: datetime, until: datetime) -> tuple[date, ...]:
    """Every UTC calendar day from `since` to `until`, both included."""
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def backlog_buckets(created: Iterable[datetime], now: datetime) -> tuple[BacklogBucket, ...]:
    """Count open items by age; an item exactly on a bound falls in the older bucket."""
    counts = [0] * len(BACKLOG_BUCKETS)
    for at in created:
        age = max(now - at, timedelta(0))
        for i, (upper, _label) in enumerate(BACKLOG_BUCKETS):
            if upper is None or age < upper:
                counts[i] += 1
                break
    return tuple(BacklogBucket(label, n) for (_u, label), n in zip(BACKLOG_BUCKETS, counts,
                                                                   strict=True))


def response_performance(rows: Iterable[MentionRow]) -> ResponsePerformance:
    """Response figures for the complaint-flagged rows among `rows`."""
    complaints = [r for r in rows if r.flag in COMPLAINT_FLAGS]
    delays = [
        max((r.first_reply_at - r.created_at).total_seconds(), 0.0)
        for r in complaints if r.first_reply_at is not None
    ]
    return ResponsePerformance(
        complaints=len(complaints),
        answered=len(delays),
        median_first_reply_s=percentile(delays, 0.5),
        p90_first_reply_s=percentile(delays, 0.9),
        answered_within_1h=sum(1 for d in delays if d <= FAST_REPLY.total_seconds()),
        moved_private=sum(1 for r in complaints if r.private_at is not None),
    )


def compute_report(
    data: ReportData,
    *,
    since: datetime,
    until: datetime,
    now: datetime | None = None,
    sources_filter: Sequence[str] = (),
    top: int = 10,
) -> Report:
    """Every report figure from `data`; pure, no I/O."""
    now = now or until
    rows = [r for r in data.mentions if since <= r.created_at <= until]
    days = utc_days(since, until)
    per: Counter[tuple[date, str]] = Counter(
        (r.created_at.astimezone(UTC).date(), r.source) for r in rows
    )
    sources = tuple(sorted({r.source for r in rows}))
    per_day = tuple(DailySourceCount(d, s, per[(d, s)]) for d in days for s in sources)

    flag_counts = Counter(r.flag or "none" for r in rows)
    flag_order = list(REPORTED_FLAGS) + sorted(set(flag_counts) - set(REPORTED_FLAGS))
    flags = tuple(FlagCount(f, flag_counts.get(f, 0)) for f in flag_order)

    scores: dict[date, list[float]] = defaultdict(list)
    for r in rows:
        if r.sentiment is not None:
            scores[r.created_at.astimezone(UTC).date()].append(r.sentiment)
    sentiment = tuple(_day_sentiment(d, scores.get(d, [])) for d in days)

    return Report(
        generated_at=now,
        since=since,
        until=until,
        sources_filter=tuple(sources_filter),
        total=len(rows),
        days=days,
        sources=sources,
        per_day=per_day,
        flags=flags,
        sentiment=sentiment,
        top_authors=top_authors(rows, top),
        top_terms=top_terms(rows, top),
        response=response_performance(rows),
        backlog=backlog_buckets(data.backlog_created, now),
        backlog_oldest_s=(
            max((now - c).total_seconds() for c in data.backlog_created)
            if data.backlog_created else None
        ),
    )


def _day_sentiment(day: date, values: list[float]) -> DaySentiment:
    return DaySentiment(
        day=day,
        scored=len(values),
        mean=sum(values) / len(values) if values else None,
        negative=sum(1 for v in values if v <= NEGATIVE_BELOW),
        neutral=sum(1 for v in values if NEGATIVE_BELOW < v < POSITIVE_ABOVE),
        positive=sum(1 for v in values if v >= POSITIVE_ABOVE),
    )


def top_authors(rows: Iterable[MentionRow], top: int = 10) -> tuple[AuthorReach, ...]:
    """Authors by reach (followers), then by how often they named the brand."""
    grouped: dict[tuple[str | None, str], list[MentionRow]] = defaultdict(list)
    for r in rows:
        if r.author_handle:
            grouped[(r.platform, r.author_handle.lower())].append(r)
    authors = []
    for (platform, _key), items in grouped.items():
        # The newest row carries the freshest display name and follower count.
        latest = max(items, key=lambda r: (r.created_at, r.id))
        authors.append(AuthorReach(
            handle=latest.author_handle or "", platform=platform,
            display_name=latest.author_name, followers=latest.followers,
            verified=latest.verified, mentions=len(items),
            engagement=sum(r.engagement for r in items),
        ))
    authors.sort(key=lambda a: (-(a.followers or 0), -a.mentions, a.handle.lower()))
    return tuple(authors[:top])


def top_terms(rows: Iterable[MentionRow], top: int = 10) -> tuple[TermCount, ...]:
    """The brand terms that matched most often; each mention counts a term once."""
    counts: Counter[str] = Counter()
    for r in rows:
        counts.update({t.strip().lower() for t in r.matched_terms if t.strip()})
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(TermCount(t, n) for t, n in ordered[:top])


# --------------------------------------------------------------------------- reading


def _terms(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _min(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates (min) bypass the UTCDateTime type and come back naive; they are UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _first_times(session: Any, mention_filter: Any) -> tuple[dict[int, datetime],
                                                              dict[int, datetime]]:
    """Earliest reply and private-channel times per mention, from outbox and audit rows."""
    replies: dict[int, datetime] = {}
    private: dict[int, datetime] = {}

    def keep(target: dict[int, datetime], mid: int, at: datetime | None) -> None:
        at = _aware(at)
        if at is not None and (mid not in target or at < target[mid]):
            target[mid] = at

    ids = select(Mention.id).where(mention_filter)
    for mid, action, at in session.execute(
        select(OutboxAction.mention_id, OutboxAction.action, func.min(OutboxAction.sent_at))
        .where(OutboxAction.mention_id.in_(ids), OutboxAction.state == "sent",
               OutboxAction.sent_at.is_not(None))
        .group_by(OutboxAction.mention_id, OutboxAction.action)
    ):
        keep(replies if action == "reply" else private if action == "private" else {}, mid, at)
    events = REPLY_AUDIT_EVENTS | PRIVATE_AUDIT_EVENTS
    for mid, event, at in session.execute(
        select(AuditEvent.mention_id, AuditEvent.event, func.min(AuditEvent.at))
        .where(AuditEvent.mention_id.in_(ids), AuditEvent.event.in_(sorted(events)))
        .group_by(AuditEvent.mention_id, AuditEvent.event)
    ):
        keep(replies if event in REPLY_AUDIT_EVENTS else private, mid, at)
    return replies, private


def load_report_data(
    store: Store, *, since: datetime, until: datetime, sources: Sequence[str] = ()
) -> ReportData:
    """Read the rows a report over [since, until] needs, in one read-only transaction."""
    in_window = Mention.created_at.between(since, until)
    by_source = Source.name.in_(list(sources)) if sources else None
    source_ids = select(Source.id).where(by_source) if by_source is not None else None
    window_filter = in_window if source_ids is None else (
        in_window & Mention.source_id.in_(source_ids)
    )
    backlog_filter = (
        Mention.flag.in_(ACTIONABLE_FLAGS)
        & Mention.status.not_in(sorted(CLOSED_STATUSES))
        & Mention.first_response_at.is_(None)
    )
    if source_ids is not None:
        backlog_filter = backlog_filter & Mention.source_id.in_(source_ids)

    with store.session(readonly=True) as session:
        replies, private = _first_times(session, window_filter)
        query = (
            select(
                Mention.id, Source.name, Mention.created_at, Mention.flag, Mention.status,
                Mention.sentiment, Author.platform, Mention.author_handle,
                Author.display_name, Author.followers, Author.verified, Mention.matched_terms,
                Mention.likes, Mention.reposts, Mention.replies, Mention.first_response_at,
            )
            .join(Source, Source.id == Mention.source_id)
            .outerjoin(Author, Author.id == Mention.author_id)
            .where(window_filter)
            .order_by(Mention.created_at, Mention.id)
        )
        rows = tuple(
            MentionRow(
                id=r.id, source=r.name, created_at=r.created_at, flag=r.flag,
                status=r.status, sentiment=r.sentiment, platform=r.platform,
                author_handle=r.author_handle, author_name=r.display_name,
                followers=r.followers, verified=r.verified,
                matched_terms=_terms(r.matched_terms),
                engagement=(r.likes or 0) + (r.reposts or 0) + (r.replies or 0),
                first_reply_at=_min(r.first_response_at, replies.get(r.id)),
                private_at=private.get(r.id),
            )
            for r in session.execute(query)
        )
        open_replies, _ = _first_times(session, backlog_filter)
        backlog = tuple(
            created for mid, created in session.execute(
                select(Mention.id, Mention.created_at).where(backlog_filter)
            )
            if mid not in open_replies
        )
    return ReportData(mentions=rows, backlog_created=backlog)


def build_report(
    store: Store,
    *,
    since: datetime | timedelta = timedelta(days=7),
    until: datetime | None = None,
    sources: Sequence[str] = (),
    top: int = 10,
    now: datetime | None = None,
) -> Report:
    """The report for mentions created in [since, until] (default: the last 7 days).

    `since` may be a datetime (timezone-aware) or a timedelta back from `now`. This is the one
    call the CLI, HTML report, digest email and the TUI stats view share.
    Raises ValueError for naive datetimes or since after until; StoreError if the database
    cannot be read.
    """
    now = now or utcnow()
    until = until or now
    start = now - since if isinstance(since, timedelta) else since
    if start.tzinfo is None or until.tzinfo is None:
        raise ValueError("report times must be timezone-aware (UTC)")
    if start > until:
        raise ValueError("the report window starts after it ends")
    data = load_report_data(store, since=start, until=until, sources=sources)
    return compute_report(data, since=start, until=until, now=now, sources_filter=sources,
                          top=top)

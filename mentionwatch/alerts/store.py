"""The SQL behind alerts, kept beside the rest of the alerts code but used only through this
class (the rest of mentionwatch talks to the database through `mentionwatch.store.Store`;
this adds the alert-specific queries on the same engine without growing that shared file).

"Once" rests on two things here: the unique `alerts.dedup_key` (an insert that conflicts
records nothing, so two pollers cannot both create the same alert) and a per-row claim
(`pending -> sending` only where the row is still pending), so only one process emails it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update

from mentionwatch.models import (
    Alert,
    AuditEvent,
    Author,
    Draft,
    Mention,
    OutboxAction,
    RuleMatch,
    Source,
)
from mentionwatch.store import Store

#: Triage states that mean a person has dealt with the mention.
CLOSED_STATUSES = ("dismissed", "replied", "replied_elsewhere", "done", "resolved", "closed",
                   "handled", "spam")
#: Outbox states that mean a reply is on its way or went out.
ANSWERED_OUTBOX = ("approved", "sending", "sent", "unknown")


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to record: its dedup key, trigger, mention and the facts for the email."""

    dedup_key: str
    trigger: str
    headline: str
    details: dict[str, Any] = field(default_factory=dict)
    mention_id: int | None = None


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    dedup_key: str
    trigger: str
    mention_id: int | None
    headline: str
    details: dict[str, Any]
    state: str
    attempts: int
    recipients: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class MentionView:
    """What an email says about one mention."""

    id: int
    source: str
    #: The source's kind (`twitter`, `rss`...): whether the author is an @handle.
    source_kind: str
    url: str | None
    author_handle: str | None
    author_name: str | None
    followers: int | None
    verified: bool | None
    title: str | None
    text: str
    flag: str | None
    priority: float
    status: str
    created_at: datetime
    reasons: tuple[tuple[str, str | None, bool, dict[str, Any] | None], ...]
    public_draft: str | None
    private_draft: str | None
    #: The numbers behind the priority and complaint score (judgement.STORED_EXPLANATION).
    explanation: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    created_at: datetime
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    disabled_reason: str | None
    last_new_mention_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryProblem:
    pending: int
    attempts: int
    last_error: str | None
    oldest: datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    """Pending alerts that are not due yet: after a failed send (in back-off), or held for
    the next digest. Each with when the first of them is due."""

    retrying: int = 0
    next_retry_at: datetime | None = None
    last_error: str | None = None
    held: int = 0
    held_until: datetime | None = None


def _row(a: Alert) -> AlertRow:
    try:
        details = json.loads(a.body) if a.body else {}
    except ValueError:
        details = {}
    return AlertRow(
        id=a.id, dedup_key=a.dedup_key, trigger=a.trigger, mention_id=a.mention_id,
        headline=a.subject or "", details=details if isinstance(details, dict) else {},
        state=a.state, attempts=a.attempts, recipients=a.recipients, last_error=a.last_error,
        created_at=a.created_at, sent_at=a.sent_at, next_attempt_at=a.next_attempt_at,
    )


class AlertStore:
    """Alert queries on a `Store`'s engine."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------ recording

    def record(self, alerts: Sequence[NewAlert], now: datetime) -> list[int]:
        """Insert alerts that are not recorded yet; return the ids of the new rows.

        A dedup key seen before (in this or any other process) inserts nothing.
        """
        new: list[int] = []
        table = Alert.__table__
        with self.store.engine.begin() as conn:
            for a in alerts:
                stmt = (
                    self.store._insert(table)
                    .values(dedup_key=a.dedup_key[:300], trigger=a.trigger,
                            mention_id=a.mention_id, subject=a.headline,
                            body=json.dumps(a.details, default=str), state="pending",
                            attempts=0, created_at=now)
                    .on_conflict_do_nothing(index_elements=["dedup_key"])
                    .returning(table.c.id)
                )
                got = conn.execute(stmt).scalar()
                if got is not None:
                    new.append(int(got))
        return new

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.store.session(readonly=True) as s:
            for start in range(0, len(keys), 500):
                chunk = [k[:300] for k in keys[start : start + 500]]
                found.update(s.scalars(select(Alert.dedup_key).where(Alert.dedup_key.in_(chunk))))
        return found

    # ------------------------------------------------------------ what triggers

    def urgent_mentions(
        self, since: datetime, threshold: float
    ) -> list[tuple[int, float, str | None, list[str]]]:
        """Mentions fetched since `since` that a rule marks "alert" or whose priority is at
        least `threshold`: (id, priority, flag, [alerting rules])."""
        m, r = Mention.__table__, RuleMatch.__table__
        alerting = exists().where(r.c.mention_id == m.c.id, r.c.alert.is_(True))
        query = select(m.c.id, m.c.priority, m.c.flag).where(
            m.c.fetched_at >= since,
            m.c.status.not_in(CLOSED_STATUSES),
            or_(alerting, and_(m.c.priority >= threshold,
                               or_(m.c.flag.is_(None), m.c.flag.not_in(("spam", "ignore"))))),
        ).order_by(m.c.id)
        with self.store.engine.connect() as conn:
            rows = list(conn.execute(query))
            rules: dict[int, list[str]] = {}
            ids = [row.id for row in rows]
            if ids:
                for mid, rule in conn.execute(
                    select(r.c.mention_id, r.c.rule)
                    .where(r.c.mention_id.in_(ids), r.c.alert.is_(True)).order_by(r.c.id)
                ):
                    rules.setdefault(mid, []).append(rule)
        return [(row.id, float(row.priority or 0.0), row.flag, rules.get(row.id, []))
                for row in rows]

    def count_mentions(self, flags: Sequence[str] | None, start: datetime, end: datetime) -> int:
        """Mentions created in (start, end], only those with one of `flags` unless None."""
        query = select(func.count()).select_from(Mention).where(
            Mention.created_at > start, Mention.created_at <= end
        )
        if flags is not None:
            query = query.where(Mention.flag.in_(list(flags)))
        with self.store.session(readonly=True) as s:
            return int(s.scalar(query) or 0)

    def monitored_since(self) -> datetime | None:
        """When the first mention was stored: the start of the data a baseline may use."""
        with self.store.session(readonly=True) as s:
            return s.scalar(select(func.min(Mention.fetched_at)))

    def unanswered(self, flags: Sequence[str], since: datetime, now: datetime
                   ) -> list[tuple[int, str, datetime]]:
        """(id, flag, created_at) of mentions with one of `flags`, created since `since`,
        with no first response, not closed, no reply approved or sent, and not snoozed past
        `now` (a person chose to come back to it later; it escalates once it wakes)."""
        if not flags:
            return []
        m, o = Mention.__table__, OutboxAction.__table__
        replied = exists().where(o.c.mention_id == m.c.id, o.c.state.in_(ANSWERED_OUTBOX))
        query = select(m.c.id, m.c.flag, m.c.created_at).where(
            m.c.flag.in_(list(flags)), m.c.created_at >= since,
            m.c.first_response_at.is_(None), m.c.status.not_in(CLOSED_STATUSES), ~replied,
            or_(m.c.snoozed_until.is_(None), m.c.snoozed_until <= now),
        ).order_by(m.c.created_at)
        with self.store.engine.connect() as conn:
            return [(row.id, row.flag, row.created_at) for row in conn.execute(query)]

    def source_health(self, names: Sequence[str]) -> list[SourceHealth]:
        if not names:
            return []
        with self.store.session(readonly=True) as s:
            return [
                SourceHealth(
                    name=row.name, created_at=row.created_at,
                    last_success_at=row.last_success_at, last_error=row.last_error,
                    consecutive_failures=row.consecutive_failures,
                    disabled_reason=row.disabled_reason,
                    last_new_mention_at=row.last_new_mention_at,
                )
                for row in s.scalars(select(Source).where(Source.name.in_(list(names))))
            ]

    def mention_views(self, ids: Sequence[int]) -> dict[int, MentionView]:
        if not ids:
            return {}
        out: dict[int, MentionView] = {}
        with self.store.session(readonly=True) as s:
            mentions = s.scalars(select(Mention).where(Mention.id.in_(list(ids)))).unique()
            matches: dict[int, list[RuleMatch]] = {}
            for match in s.scalars(select(RuleMatch).where(RuleMatch.mention_id.in_(list(ids)))
                                   .order_by(RuleMatch.severity.desc(), RuleMatch.id)):
                matches.setdefault(match.mention_id, []).append(match)
            drafts = {d.mention_id: d for d in
                      s.scalars(select(Draft).where(Draft.mention_id.in_(list(ids))))}
            for m in mentions:
                author: Author | None = m.author
                draft = drafts.get(m.id)
                out[m.id] = MentionView(
                    id=m.id, source=m.source.name, source_kind=m.source.kind, url=m.url,
                    author_handle=m.author_handle,
                    author_name=author.display_name if author else None,
                    followers=author.followers if author else None,
                    verified=author.verified if author else None,
                    title=m.title, text=m.text, flag=m.flag, priority=m.priority or 0.0,
                    status=m.status, created_at=m.created_at,
                    reasons=tuple((r.rule, r.flag, r.alert, r.explanation)
                                  for r in matches.get(m.id, [])),
                    public_draft=draft.public_text if draft else None,
                    private_draft=draft.private_text if draft else None,
                    explanation=m.explanation,
                )
        return out

    # ------------------------------------------------------------ delivery

    def last_sent_at(self) -> datetime | None:
        with self.store.session(readonly=True) as s:
            return s.scalar(select(func.max(Alert.sent_at)).where(Alert.state == "sent"))

    def claim_due(self, now: datetime, lease: timedelta) -> list[AlertRow]:
        """Claim the pending alerts whose retry time has come: each moves to `sending` only if
        it is still pending, so two processes never both get the same alert.

        A claim older than `lease` (the claimer crashed mid-send) goes back to pending first;
        that is the one case where an email may go out twice, chosen over losing an alert.
        """
        with self.store.engine.begin() as conn:
            conn.execute(
                update(Alert).where(Alert.state == "sending", Alert.next_attempt_at < now)
                .values(state="pending", next_attempt_at=now)
            )
        with self.store.session(readonly=True) as s:
            due = list(s.scalars(
                select(Alert.id).where(
                    Alert.state == "pending",
                    or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= now),
                ).order_by(Alert.id)
            ))
        claimed: list[int] = []
        with self.store.engine.begin() as conn:
            for alert_id in due:
                result = conn.execute(
                    update(Alert).where(Alert.id == alert_id, Alert.state == "pending")
                    .values(state="sending", next_attempt_at=now + lease)
                )
                if result.rowcount == 1:
                    claimed.append(alert_id)
        return self.rows(claimed)

    def rows(self, ids: Sequence[int]) -> list[AlertRow]:
        if not ids:
            return []
        with self.store.session(readonly=True) as s:
            return [_row(a) for a in
                    s.scalars(select(Alert).where(Alert.id.in_(list(ids))).order_by(Alert.id))]

    def release(self, ids: Sequence[int]) -> None:
        """Give claimed alerts back untouched (e.g. held for the next digest)."""
        if ids:
            with self.store.engine.begin() as conn:
                conn.execute(update(Alert).where(Alert.id.in_(list(ids)))
                             .values(state="pending", next_attempt_at=None))

    def hold(self, ids: Sequence[int], until: datetime) -> None:
        if ids:
            with self.store.engine.begin() as conn:
                conn.execute(update(Alert).where(Alert.id.in_(list(ids)))
                             .values(state="pending", next_attempt_at=until))

    def mark_sent(self, rows: Sequence[AlertRow], recipients: Sequence[str], now: datetime,
                  note: str | None = None) -> None:
        """Sent: state, time and recipients on each alert, plus an audit event each."""
        with self.store.engine.begin() as conn:
            conn.execute(
                update(Alert).where(Alert.id.in_([r.id for r in rows])).values(
                    state="sent", sent_at=now, recipients=", ".join(recipients),
                    attempts=Alert.attempts + 1, last_error=note, next_attempt_at=None,
                )
            )
            conn.execute(insert(AuditEvent), [
                {"at": now, "actor": "mentionwatch", "event": "alert_sent",
                 "mention_id": r.mention_id,
                 "details": {"alert_id": r.id, "trigger": r.trigger,
                             "recipients": list(recipients)}}
                for r in rows
            ])

    def mark_failed(self, rows: Sequence[AlertRow], error: str, now: datetime,
                    delay: Any) -> None:
        """Back to pending with one more attempt counted and a retry time from `delay`
        (a function of the attempt count)."""
        with self.store.engine.begin() as conn:
            for row in rows:
                attempts = row.attempts + 1
                conn.execute(
                    update(Alert).where(Alert.id == row.id).values(
                        state="pending", attempts=attempts, last_error=error[:1000],
                        next_attempt_at=now + delay(attempts),
                    )
                )

    def delivery_problem(self, min_attempts: int) -> DeliveryProblem | None:
        """Pending alerts that failed at least `min_attempts` times, summarised."""
        with self.store.session(readonly=True) as s:
            row = s.execute(
                select(func.count(), func.max(Alert.attempts), func.min(Alert.created_at))
                .where(Alert.state.in_(("pending", "sending")), Alert.attempts >= min_attempts)
            ).one()
            if not row[0]:
                return None
            last_error = s.scalar(
                select(Alert.last_error).where(Alert.state.in_(("pending", "sending")),
                                               Alert.attempts >= min_attempts)
                .order_by(Alert.id.desc()).limit(1)
            )
        return DeliveryProblem(int(row[0]), int(row[1]), last_error, row[2])

    def waiting(self, now: datetime) -> Waiting:
        """The pending alerts whose next attempt is after `now`, failed ones apart from those
        only held for a digest (never attempted)."""
        failed = Alert.attempts > 0
        with self.store.session(readonly=True) as s:
            counts = {bool(retry): (int(n), at) for retry, n, at in s.execute(
                select(failed, func.count(), func.min(Alert.next_attempt_at))
                .where(Alert.state == "pending", Alert.next_attempt_at > now)
                .group_by(failed)
            )}
            retrying, next_retry_at = counts.get(True, (0, None))
            held, held_until = counts.get(False, (0, None))
            last_error = s.scalar(
                select(Alert.last_error).where(Alert.state == "pending", failed,
                                               Alert.next_attempt_at > now)
                .order_by(Alert.id.desc()).limit(1)
            ) if retrying else None
        return Waiting(retrying, next_retry_at, last_error, held, held_until)

    def recent(self, limit: int = 50, state: str | None = None) -> list[AlertRow]:
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if state:
            query = query.where(Alert.state == state)
        with self.store.session(readonly=True) as s:
            return [_row(a) for a in s.scalars(query)]

"""The outbox: approved replies on their way out, sent exactly once.

States: approved -> sending -> sent | failed | unknown. A sender claims an action by moving it
to `sending` and COMMITS that before the network call. If the process dies after the call
and before the result is written, the action stays `sending`; the next sender pass marks it
`unknown` for a person to check at the source. The machine never sends an action that is
`sending`, `sent` or `unknown` again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from mentionwatch.audit import record
from mentionwatch.config import Config
from mentionwatch.connector import Connector, PostResult, StoredMentionRef
from mentionwatch.errors import MentionwatchError, RateLimited, SendError, SourceError, Transient
from mentionwatch.models import Draft, Mention, OutboxAction, Source, utcnow
from mentionwatch.store import Store

log = logging.getLogger(__name__)

ACTIONS = ("reply", "private")
#: States in which an action is (or may be) out at the source, or on its way.
LIVE_STATES = ("approved", "sending", "sent", "unknown")
#: A `sending` row older than this belongs to a sender that died mid-call.
STALE_SENDING = timedelta(minutes=2)


class OutboxError(MentionwatchError):
    """An approval that cannot be taken (already approved or sent, no text, no mention)."""

    exit_code = 1
    title = "Outbox"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    action_id: int
    mention_id: int
    action: str
    state: str
    message: str | None = None
    url: str | None = None


def approve(store: Store, mention_id: int, action: str, *, operator: str,
            text: str | None = None) -> int:
    """Approve a public `reply` or a `private` follow-up for sending; returns the action id.

    Uses the mention's draft unless `text` is given (an edit, recorded as such). Raises
    OutboxError when the mention does not exist, there is no text, or the same kind of action
    is already approved, being sent, sent or of unknown outcome: nothing is sent twice.
    """
    if action not in ACTIONS:
        raise OutboxError(f"Unknown action {action!r}; use 'reply' or 'private'.")
    with store.engine.begin() as conn:
        mention = conn.execute(
            select(Mention.id, Source.kind).join(Source, Source.id == Mention.source_id)
            .where(Mention.id == mention_id)).first()
        if mention is None:
            raise OutboxError(f"No mention with id {mention_id}.")
        _check_can_post(mention.kind, action, mention_id)
        live = conn.execute(
            select(OutboxAction.id, OutboxAction.state).where(
                OutboxAction.mention_id == mention_id, OutboxAction.action == action,
                OutboxAction.state.in_(LIVE_STATES))
        ).first()
        if live is not None:
            raise OutboxError(
                f"Mention {mention_id} already has a {action} in state {live.state!r} "
                f"(action {live.id}); it is not sent twice.",
                hint="A failed action can be approved again; an unknown one must be checked "
                "at the source first.")
        draft = conn.execute(select(Draft.public_text, Draft.private_text)
                             .where(Draft.mention_id == mention_id)).first()
        drafted = (draft.public_text if action == "reply" else draft.private_text) if draft \
            else None
        body = (text if text is not None else drafted or "").strip()
        if not body:
            raise OutboxError(f"Mention {mention_id} has no drafted {action}; pass the text.")
        now = utcnow()
        action_id = int(conn.execute(
            OutboxAction.__table__.insert().values(  # type: ignore[attr-defined]
                mention_id=mention_id, action=action, text=body, state="approved",
                created_by=operator, approved_by=operator, attempts=0, created_at=now,
                updated_at=now)
            .returning(OutboxAction.__table__.c.id)
        ).scalar_one())
        if text is not None and text.strip() != (drafted or "").strip():
            record(conn, operator, "edit", mention_id, action=action)
        record(conn, operator, "approve", mention_id, action=action, action_id=action_id)
        conn.execute(update(Mention).where(Mention.id == mention_id, Mention.status == "new")
                     .values(status="open"))
    return action_id


def _check_can_post(kind: str, action: str, mention_id: int) -> None:
    from mentionwatch.registry import connector_class

    try:
        cls = connector_class(kind)
    except KeyError:
        raise OutboxError(
            f"Mention {mention_id} comes from an unknown source kind {kind!r}."
        ) from None
    able = cls.can_reply if action == "reply" else cls.can_send_private
    if not able:
        raise OutboxError(
            f"{kind} sources cannot be answered from mentionwatch.",
            hint=f"Open the link, answer there, then run `mentionwatch replied-elsewhere "
            f"{mention_id}`.")


def recover(store: Store, *, stale: timedelta = STALE_SENDING) -> list[int]:
    """Mark `sending` actions whose sender died as `unknown`; returns their ids."""
    cutoff = utcnow() - stale
    with store.engine.begin() as conn:
        ids = list(conn.execute(
            select(OutboxAction.id, OutboxAction.mention_id).where(
                OutboxAction.state == "sending", OutboxAction.updated_at < cutoff)))
        for row in ids:
            conn.execute(update(OutboxAction).where(OutboxAction.id == row.id,
                                                    OutboxAction.state == "sending")
                         .values(state="unknown", updated_at=utcnow(),
                                 last_error="the sender stopped during the call; check at the "
                                 "source whether it was posted"))
            record(conn, "mentionwatch", "send_unknown", row.mention_id, action_id=row.id)
    return [row.id for row in ids]


ConnectorFactory = Callable[[Any], Connector]


def send_pending(config: Config, store: Store, *, connector_for: ConnectorFactory,
                 stale: timedelta = STALE_SENDING) -> list[SendOutcome]:
    """Send every approved action once. `connector_for(source_config)` builds connectors."""
    recover(store, stale=stale)
    with store.engine.connect() as conn:
        pending = list(conn.execute(
            select(OutboxAction.id).where(OutboxAction.state == "approved")
            .order_by(OutboxAction.id)).scalars())
    return [outcome for action_id in pending
            if (outcome := send_one(config, store, action_id, connector_for=connector_for))]


def send_one(config: Config, store: Store, action_id: int, *,
             connector_for: ConnectorFactory) -> SendOutcome | None:
    """Claim one approved action, send it, record the result. None if someone else has it."""
    with store.engine.begin() as conn:
        claimed = conn.execute(
            update(OutboxAction).where(OutboxAction.id == action_id,
                                       OutboxAction.state == "approved")
            .values(state="sending", attempts=OutboxAction.attempts + 1, updated_at=utcnow())
        ).rowcount
        if not claimed:
            return None
    # Committed: from here on a crash leaves `sending`, which becomes `unknown`, never resent.
    with store.session(readonly=True) as session:
        row = session.execute(
            select(OutboxAction, Mention, Source.name)
            .join(Mention, Mention.id == OutboxAction.mention_id)
            .join(Source, Source.id == Mention.source_id)
            .where(OutboxAction.id == action_id)).one()
    action, mention = row[0], row[1]
    ref = StoredMentionRef(
        external_id=mention.external_id, url=mention.url, author_handle=mention.author_handle,
        author_external_id=(mention.raw or {}).get("author_id") if mention.raw else None,
        conversation_id=mention.conversation_id, kind=mention.kind, raw=mention.raw or {})
    try:
        source = config.source(row.name)
        connector = connector_for(source)
        try:
            call = connector.reply if action.action == "reply" else connector.send_private
            posted: PostResult = call(ref, action.text)
        finally:
            connector.close()
    except (SendError, RateLimited, Transient, SourceError, MentionwatchError) as exc:
        # A transient failure during the call may still have posted: a person must look.
        state = "unknown" if isinstance(exc, Transient) else "failed"
        return _finish(store, action.id, mention.id, action.action, state, message=str(exc))
    except Exception as exc:  # a connector bug: the call may have gone out
        log.exception("sending action %s failed unexpectedly", action_id)
        return _finish(store, action.id, mention.id, action.action, "unknown",
                       message=f"internal error: {type(exc).__name__}: {exc}")
    return _finish(store, action.id, mention.id, action.action, "sent", posted=posted)


def _finish(store: Store, action_id: int, mention_id: int, action: str, state: str, *,
            message: str | None = None, posted: PostResult | None = None) -> SendOutcome:
    now = utcnow()
    with store.engine.begin() as conn:
        values: dict[str, Any] = {"state": state, "updated_at": now, "last_error": message}
        if posted is not None:
            values.update(posted_id=posted.external_id, posted_url=posted.url, sent_at=now)
        conn.execute(update(OutboxAction).where(OutboxAction.id == action_id).values(**values))
        if state == "sent":
            conn.execute(update(Mention).where(Mention.id == mention_id,
                                               Mention.first_response_at.is_(None))
                         .values(first_response_at=now))
            conn.execute(update(Mention).where(Mention.id == mention_id)
                         .values(status="replied"))
            if action == "private":
                record(conn, "mentionwatch", "moved_private", mention_id, action_id=action_id)
        record(conn, "mentionwatch", f"send_{state}", mention_id, action_id=action_id,
               action=action, message=message, url=posted.url if posted else None)
    return SendOutcome(action_id, mention_id, action, state, message,
                       posted.url if posted else None)


def mark(store: Store, mention_id: int, status: str, *, operator: str,
         reason: str | None = None) -> None:
    """Triage without posting: `dismissed` (with a reason), `replied_elsewhere` (answered
    at the source by hand: feeds and Hacker News cannot be posted to), or `resolved`."""
    events = {"dismissed": "dismiss", "replied_elsewhere": "replied_elsewhere",
              "resolved": "resolve"}
    if status not in events:
        raise OutboxError(f"Unknown status {status!r}.")
    now = utcnow()
    with store.engine.begin() as conn:
        found = conn.execute(update(Mention).where(Mention.id == mention_id)
                             .values(status=status)).rowcount
        if not found:
            raise OutboxError(f"No mention with id {mention_id}.")
        if status == "replied_elsewhere":
            conn.execute(update(Mention).where(Mention.id == mention_id,
                                               Mention.first_response_at.is_(None))
                         .values(first_response_at=now))
        record(conn, operator, events[status], mention_id, reason=reason)


def actions(store: Store, *, states: tuple[str, ...] | None = None,
            limit: int = 50) -> list[OutboxAction]:
    query = select(OutboxAction).order_by(OutboxAction.id.desc()).limit(limit)
    if states:
        query = query.where(OutboxAction.state.in_(states))
    with store.session(readonly=True) as session:
        return list(session.scalars(query))


def after_poll(config: Config, store: Store, report: Any) -> None:
    """The after-poll step: send what people approved (from `poll` and `run`)."""
    from mentionwatch.pipeline import build_connector

    for outcome in send_pending(config, store,
                                connector_for=lambda source: build_connector(source, config)):
        log.info("outbox: action %s (%s) %s", outcome.action_id, outcome.action, outcome.state)

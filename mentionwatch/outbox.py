"""The outbox: approved replies on their way out, sent exactly once.

States: [needs_approval ->] approved -> sending -> sent | failed | unknown. A crisis reply
waits in `needs_approval` for its second approver (mentionwatch.team); nothing sends it.
A sender claims an action by moving it to `sending` and COMMITS that before the network
call. If the process dies after the call and before the result is written, the action stays
`sending`; the next sender pass marks it `unknown` for a person to check at the source. The
machine never sends an action that is `sending`, `sent` or `unknown` again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from mentionwatch import privacy
from mentionwatch.audit import record
from mentionwatch.config import Config, TeamConfig
from mentionwatch.connector import Connector, PostResult, StoredMentionRef
from mentionwatch.errors import (
    MentionwatchError,
    RateLimited,
    SendError,
    SendUnconfirmed,
    SourceError,
    Transient,
)
from mentionwatch.models import AuditEvent, Draft, Mention, OutboxAction, Source, utcnow
from mentionwatch.store import Store
from mentionwatch.team import APPROVED, NEEDS_APPROVAL, first_state, second_refusal, waiting_for
from mentionwatch.text import one_line, strip_terminal_escapes

log = logging.getLogger(__name__)

ACTIONS = ("reply", "private")
#: States in which an action is (or may be) out at the source, on its way, or waiting for
#: its second approval: a mention has at most one of each kind in these.
LIVE_STATES = ("needs_approval", "approved", "sending", "sent", "unknown")
STATES = ("needs_approval", "approved", "sending", "sent", "failed", "unknown", "rejected")
#: A `sending` row older than this belongs to a sender that died mid-call.
STALE_SENDING = timedelta(minutes=2)


class OutboxError(MentionwatchError):
    """An approval that cannot be taken (already approved or sent, no text, no mention)."""

    exit_code = 1
    title = "Outbox"


class ShowsPrivateData(OutboxError):
    """A public reply that would post an email address, a phone, order or card number
    (pasted in from the customer's post, say): refused where the caller asked for the check,
    until a person approves it knowing what it shows."""

    def __init__(self, mention_id: int, findings: list[privacy.Finding], hint: str) -> None:
        super().__init__(f"Mention {mention_id} not approved: the public reply shows "
                         f"{privacy.describe(findings)}.", hint=hint)
        self.mention_id = mention_id
        self.findings = findings


class CannotPost(OutboxError):
    """The mention's source has no posting (feeds, Google Alerts, Hacker News): a person
    answers at the source and marks the mention answered elsewhere."""

    def __init__(self, kind: str, mention_id: int) -> None:
        super().__init__(
            f"{kind} sources cannot be answered from mentionwatch.",
            hint=f"Open the link, answer there, then run `mentionwatch replied-elsewhere "
            f"{mention_id}`.")
        self.kind = kind
        self.mention_id = mention_id


@dataclass(frozen=True, slots=True)
class SendOutcome:
    action_id: int
    mention_id: int
    action: str
    state: str
    message: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """What an approval did: the action, its state, and who it waits for if anyone."""

    action_id: int
    state: str
    waiting_for: str | None = None
    second: bool = False

    def describe(self, mention_id: int, action: str, operator: str) -> str:
        """One line for the person who approved (the CLI and the TUI say the same)."""
        what = "reply" if action == "reply" else "private follow-up"
        if self.state == NEEDS_APPROVAL:
            return (f"The {what} to mention {mention_id} (action {self.action_id}) waits for "
                    f"a second approval by {self.waiting_for}: it answers a crisis.")
        if self.second:
            return (f"Second approval of the {what} to mention {mention_id} (action "
                    f"{self.action_id}) by {operator}; it is sent next.")
        return (f"Approved the {what} to mention {mention_id} (action {self.action_id}) as "
                f"{operator}.")


def approve(store: Store, mention_id: int, action: str, *, operator: str,
            text: str | None = None, team: TeamConfig | None = None,
            simulated: bool = False) -> int:
    """Approve a public `reply` or a `private` follow-up for sending; returns the action id.
    See `take_approval` for the rules."""
    return take_approval(store, mention_id, action, operator=operator, text=text, team=team,
                         simulated=simulated).action_id


def take_approval(store: Store, mention_id: int, action: str, *, operator: str,
                  text: str | None = None, team: TeamConfig | None = None,
                  simulated: bool = False, private_data: PrivateDataCheck | None = None
                  ) -> Approval:
    """Approve a reply or private follow-up, or give the second approval of a waiting one.

    Uses the mention's draft unless `text` is given (an edit: saved to the draft with its
    editor, and audited). Replies to crisis-flagged mentions may wait in `needs_approval`
    (see mentionwatch.team); the sender never sends those. Raises OutboxError when the mention
    does not exist, there is no text, the operator may not give the missing approval, or the
    same kind of action is already approved, being sent, sent or of unknown outcome: nothing
    is sent twice. `simulated` (the demo) only marks the approval as one for the simulated
    sender: a source with no posting (a feed) is refused with CannotPost, as for real.
    `private_data`: refuse (ShowsPrivateData) a public reply whose text shows private data;
    None: not checked (the private follow-up never is: it goes to a private channel).
    """
    if action not in ACTIONS:
        raise OutboxError(f"Unknown action {action!r}; use 'reply' or 'private'.")
    if text is not None:  # what goes out in the brand's name: no escapes or controls
        text = strip_terminal_escapes(text)  # pasted in, or left by $EDITOR
    with store.engine.begin() as conn:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers): a
        # second operator approving the same mention at the same moment waits here, then
        # sees the first one's action below and is refused. Without it both read "no live
        # reply" and both inserted one, and the reply was posted twice.
        mention = conn.execute(
            select(Mention.id, Mention.flag, Mention.external_id, Mention.url,
                   Mention.author_handle, Mention.conversation_id, Mention.kind, Mention.raw,
                   Source.kind.label("source_kind"), Source.state.label("source_state"))
            .join(Source, Source.id == Mention.source_id)
            .where(Mention.id == mention_id).with_for_update(of=Mention)).first()
        if mention is None:
            raise OutboxError(f"No mention with id {mention_id}.")
        # Also in the demo: a feed item has nowhere to be posted, simulated or not.
        _check_can_post(mention.source_kind, action, mention_id)
        if text is not None and text.strip():
            _check_length(mention, text.strip(), action)  # an edit, also of a waiting one
        live = conn.execute(
            select(OutboxAction.id, OutboxAction.state, OutboxAction.text,
                   OutboxAction.approved_by).where(
                OutboxAction.mention_id == mention_id, OutboxAction.action == action,
                OutboxAction.state.in_(LIVE_STATES))
        ).first()
        if live is not None and live.state == NEEDS_APPROVAL:
            return _approve_waiting(conn, live, mention_id, mention.flag, action,
                                    operator=operator, text=text, team=team,
                                    private_data=private_data)
        if live is not None:
            raise OutboxError(
                f"Mention {mention_id} already has a {action} in state {live.state!r} "
                f"(action {live.id}); it is not sent twice.",
                hint="A failed action can be approved again; an unknown one must be checked "
                "at the source first.")
        draft = conn.execute(select(Draft.public_text, Draft.private_text, Draft.edited_by)
                             .where(Draft.mention_id == mention_id)).first()
        drafted = strip_terminal_escapes(
            ((draft.public_text if action == "reply" else draft.private_text) if draft
             else None) or "")
        body = (text if text is not None else drafted).strip()
        if not body:
            raise OutboxError(f"Mention {mention_id} has no drafted {action}; pass the text.")
        if text is None:  # an edit was checked above
            _check_length(mention, body, action)
        if private_data is not None and action == "reply":
            private_data.check(mention_id, body)
        edited = body != drafted.strip()
        editor = operator if edited else _last_editor(conn, mention_id, action,
                                                      draft.edited_by if draft else None)
        state = first_state(team, flag=mention.flag, operator=operator, editor=editor)
        now = utcnow()
        action_id = int(conn.execute(
            OutboxAction.__table__.insert().values(  # type: ignore[attr-defined]
                mention_id=mention_id, action=action, text=body, state=state,
                created_by=operator, approved_by=operator, attempts=0,
                created_at=now, updated_at=now)
            .returning(OutboxAction.__table__.c.id)
        ).scalar_one())
        if edited:
            _save_draft_edit(conn, mention_id, action, body, operator)
        waiting = waiting_for(team, operator) if state == NEEDS_APPROVAL else None
        # The flag as the person saw it: `rules train` learns from it even after a rescore.
        record(conn, operator, "approve", mention_id, action=action, action_id=action_id,
               state=state, flag=mention.flag, **_extra(waiting=waiting, simulated=simulated))
        conn.execute(update(Mention).where(Mention.id == mention_id, Mention.status == "new")
                     .values(status="open"))
    return Approval(action_id, state, waiting)


@dataclass(frozen=True)
class PrivateDataCheck:
    """What `take_approval` needs to refuse a public reply that shows private data: the
    brand's own support address and phone (no private data in a reply), and what the person
    can do instead, in their tool's words."""

    own: tuple[str | None, ...]
    hint: str

    def check(self, mention_id: int, body: str) -> None:
        found = privacy.private_data(body, self.own)
        if found:
            raise ShowsPrivateData(mention_id, found, self.hint)


def _check_length(mention: Any, body: str, action: str) -> None:
    """Refuse, at approval, a reply or follow-up its source would refuse at sending: counted
    as the source counts it, as the connector will send it, against the source's own limit
    (a Mastodon follow-up is a direct post, held to the instance's limit as a reply is)."""
    from mentionwatch.rules_engine import measure_private, measure_reply

    kind = mention.source_kind
    measure = measure_reply if action == "reply" else measure_private
    length, limit = measure(kind, body, mention_ref(mention), mention.source_state)
    if limit is not None and length > limit:
        what = "reply" if action == "reply" else "private follow-up"
        raise OutboxError(f"The {what} is {length} characters as {kind} counts them; the "
                          f"limit is {limit}. Shorten it by {length - limit} and approve "
                          "again.")


def mention_ref(mention: Any) -> StoredMentionRef:
    """What a connector needs to answer a stored mention, from a `Mention` (or a row of its
    columns under their own names)."""
    raw = mention.raw or {}
    return StoredMentionRef(
        external_id=mention.external_id, url=mention.url, author_handle=mention.author_handle,
        author_external_id=raw.get("author_id"), conversation_id=mention.conversation_id,
        kind=mention.kind, raw=raw)


def _approve_waiting(conn: Connection, live: Any, mention_id: int, flag: str | None,
                     action: str, *, operator: str, text: str | None,
                     team: TeamConfig | None,
                     private_data: PrivateDataCheck | None) -> Approval:
    """The second approval of a `needs_approval` action; or, with changed text, a fresh
    approval of the new text by this operator (who then needs their own second person).
    The unchanged text was checked for private data at its first approval."""
    body = (text if text is not None else live.text).strip()
    if body and body != live.text.strip():
        if private_data is not None and action == "reply":
            private_data.check(mention_id, body)
        state = first_state(team, flag=flag, operator=operator, editor=operator)
        conn.execute(update(OutboxAction).where(OutboxAction.id == live.id).values(
            text=body, state=state, approved_by=operator, second_approver=None,
            updated_at=utcnow()))
        _save_draft_edit(conn, mention_id, action, body, operator)
        waiting = waiting_for(team, operator) if state == NEEDS_APPROVAL else None
        record(conn, operator, "approve", mention_id, action=action, action_id=live.id,
               state=state, **_extra(waiting=waiting))
        return Approval(live.id, state, waiting)
    refusal = second_refusal(team, operator=operator, first=live.approved_by)
    if refusal:
        raise OutboxError(refusal, hint=f"Action {live.id} waits in needs_approval; it is "
                          "not sent until then.")
    done = conn.execute(update(OutboxAction).where(
        OutboxAction.id == live.id, OutboxAction.state == NEEDS_APPROVAL).values(
        state=APPROVED, second_approver=operator, updated_at=utcnow())).rowcount
    if not done:
        raise OutboxError(f"Action {live.id} was approved or changed by someone else.")
    record(conn, operator, "second_approve", mention_id, action=action, action_id=live.id,
           first=live.approved_by)
    return Approval(live.id, APPROVED, None, second=True)


def _last_editor(conn: Connection, mention_id: int, action: str,
                 edited_by: str | None) -> str | None:
    """Who last edited this kind of draft (the reply and the follow-up share one
    `drafts.edited_by`, so the audit trail says which one a person changed)."""
    if edited_by is None:
        return None
    edits = conn.execute(select(AuditEvent.actor, AuditEvent.details).where(
        AuditEvent.mention_id == mention_id, AuditEvent.event == "edit")
        .order_by(AuditEvent.id.desc()))
    for actor, details in edits:
        if (details or {}).get("action") == action:
            return str(actor)
    return None


def save_draft_edits(store: Store, edits: Mapping[int, Mapping[str, str]], *,
                     operator: str) -> int:
    """Keep edits a person typed but did not approve (the TUI calls this when it quits), in
    one transaction: nothing typed is lost, nothing is approved. Returns how many drafts."""
    saved = 0
    with store.engine.begin() as conn:
        for mention_id, kinds in edits.items():
            for action, text in kinds.items():
                _save_draft_edit(conn, mention_id, action, text, operator)
                saved += 1
    return saved


def _save_draft_edit(conn: Connection, mention_id: int, action: str, text: str,
                     operator: str) -> None:
    """Keep a person's edit in the draft (so a re-score never overwrites it) and audit it."""
    column = "public_text" if action == "reply" else "private_text"
    values = {column: text, "edited_by": operator, "updated_at": utcnow()}
    changed = conn.execute(update(Draft).where(Draft.mention_id == mention_id)
                           .values(**values)).rowcount
    if not changed:
        conn.execute(Draft.__table__.insert().values(  # type: ignore[attr-defined]
            mention_id=mention_id, **values))
    record(conn, operator, "edit", mention_id, action=action)


def _extra(**details: Any) -> dict[str, Any]:
    """Only the audit details that are set (a simulated flag only when simulated)."""
    return {k: v for k, v in details.items() if v}


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
        raise CannotPost(kind, mention_id)


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
                 stale: timedelta = STALE_SENDING, simulated: bool = False
                 ) -> list[SendOutcome]:
    """Send every approved action once. `connector_for(source_config)` builds connectors;
    `simulated` records the results as simulated (the demo's sender posts nothing)."""
    recover(store, stale=stale)
    with store.engine.connect() as conn:
        pending = list(conn.execute(
            select(OutboxAction.id).where(OutboxAction.state == "approved")
            .order_by(OutboxAction.id)).scalars())
    return [outcome for action_id in pending
            if (outcome := send_one(config, store, action_id, connector_for=connector_for,
                                    simulated=simulated))]


def send_one(config: Config, store: Store, action_id: int, *,
             connector_for: ConnectorFactory, simulated: bool = False) -> SendOutcome | None:
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
    ref = mention_ref(mention)
    try:
        source = config.source(row.name)
        connector = connector_for(source)
        try:
            call = connector.reply if action.action == "reply" else connector.send_private
            posted: PostResult = call(ref, action.text)
        finally:
            connector.close()
    except (SendError, RateLimited, Transient, SourceError, MentionwatchError) as exc:
        # A transient failure during the call, or an answer that does not show the post, may
        # still have posted: a person must look.
        state = "unknown" if isinstance(exc, Transient | SendUnconfirmed) else "failed"
        return _finish(store, action.id, mention.id, action.action, state, message=str(exc),
                       simulated=simulated)
    except Exception as exc:  # a connector bug: the call may have gone out
        log.exception("sending action %s failed unexpectedly", action_id)
        return _finish(store, action.id, mention.id, action.action, "unknown",
                       message=f"internal error: {type(exc).__name__}: {exc}",
                       simulated=simulated)
    return _finish(store, action.id, mention.id, action.action, "sent", posted=posted,
                   simulated=simulated)


def _finish(store: Store, action_id: int, mention_id: int, action: str, state: str, *,
            message: str | None = None, posted: PostResult | None = None,
            simulated: bool = False) -> SendOutcome:
    now = utcnow()
    # Both may quote the source (its error text, the URL it gave): stored and shown inert.
    message = strip_terminal_escapes(message) if message else message
    if posted is not None and posted.url:
        posted = PostResult(posted.external_id, strip_terminal_escapes(posted.url))
    with store.engine.begin() as conn:
        values: dict[str, Any] = {"state": state, "updated_at": now, "last_error": message}
        if posted is not None:
            values.update(posted_id=posted.external_id, posted_url=posted.url, sent_at=now)
        conn.execute(update(OutboxAction).where(OutboxAction.id == action_id).values(**values))
        if state == "sent":
            _mark_replied(conn, mention_id, action, action_id, now)
        # The machine sends; the audit line also names whose approval it carried out.
        approvers = conn.execute(select(OutboxAction.approved_by, OutboxAction.second_approver)
                                 .where(OutboxAction.id == action_id)).one()
        record(conn, "mentionwatch", f"send_{state}", mention_id, action_id=action_id,
               action=action, message=message, url=posted.url if posted else None,
               approved_by=" and ".join(filter(None, approvers)) or None,
               **_extra(simulated=simulated))
    return SendOutcome(action_id, mention_id, action, state, message,
                       posted.url if posted else None)


def _mark_replied(conn: Connection, mention_id: int, action: str, action_id: int,
                  now: datetime) -> None:
    """A reply went out: the case's first response time, and off the queue."""
    conn.execute(update(Mention).where(Mention.id == mention_id,
                                       Mention.first_response_at.is_(None))
                 .values(first_response_at=now))
    conn.execute(update(Mention).where(Mention.id == mention_id).values(status="replied"))
    if action == "private":
        record(conn, "mentionwatch", "moved_private", mention_id, action_id=action_id)


def _action_row(conn: Connection, action_id: int) -> Any:
    row = conn.execute(select(OutboxAction.id, OutboxAction.mention_id, OutboxAction.action,
                              OutboxAction.state).where(OutboxAction.id == action_id)).first()
    if row is None:
        raise OutboxError(f"No outbox action with id {action_id}.",
                          hint="`mentionwatch outbox list` shows them.")
    return row


def _require_state(row: Any, *states: str, doing: str) -> None:
    if row.state not in states:
        raise OutboxError(f"Action {row.id} is {row.state!r}; only {' or '.join(states)} "
                          f"actions can be {doing}.")


def retry(store: Store, action_id: int, *, operator: str) -> None:
    """Send a `failed` action again, as approved (its text and approvals are unchanged).

    Refused when another action of the same kind for the mention is live (approved again,
    sent...): nothing is sent twice. To change the text, approve the mention again instead.
    """
    with store.engine.begin() as conn:
        row = _action_row(conn, action_id)
        # As in take_approval: one live action per mention and kind, also when two failed
        # actions of one mention are retried at once.
        conn.execute(select(Mention.id).where(Mention.id == row.mention_id).with_for_update())
        row = _action_row(conn, action_id)  # as it is now that no one else is changing it
        _require_state(row, "failed", doing="retried")
        other = conn.execute(select(OutboxAction.id, OutboxAction.state).where(
            OutboxAction.mention_id == row.mention_id, OutboxAction.action == row.action,
            OutboxAction.state.in_(LIVE_STATES))).first()
        if other is not None:
            raise OutboxError(f"Mention {row.mention_id} already has a {row.action} in state "
                              f"{other.state!r} (action {other.id}); not retried.")
        conn.execute(update(OutboxAction).where(OutboxAction.id == action_id,
                                                OutboxAction.state == "failed")
                     .values(state=APPROVED, updated_at=utcnow()))
        record(conn, operator, "retry", row.mention_id, action_id=action_id,
               action=row.action)


def resolve_unknown(store: Store, action_id: int, *, operator: str, posted: bool) -> None:
    """A person checked an `unknown` action at the source: it was posted (`sent`, the case is
    answered) or it was not (`failed`, so it can be retried or edited)."""
    now = utcnow()
    with store.engine.begin() as conn:
        row = _action_row(conn, action_id)
        _require_state(row, "unknown", doing="resolved")
        if posted:
            values: dict[str, Any] = {"state": "sent", "sent_at": now,
                                      "last_error": f"marked as sent by {operator}"}
        else:
            values = {"state": "failed",
                      "last_error": f"not posted (checked at the source by {operator})"}
        conn.execute(update(OutboxAction).where(OutboxAction.id == action_id,
                                                OutboxAction.state == "unknown")
                     .values(updated_at=now, **values))
        if posted:
            _mark_replied(conn, row.mention_id, row.action, action_id, now)
        record(conn, operator, "resolve_unknown", row.mention_id, action_id=action_id,
               action=row.action, outcome="sent" if posted else "not sent")


def reject(store: Store, action_id: int, *, operator: str) -> None:
    """Turn down an action waiting for its second approval; the mention can be approved
    again with other text."""
    with store.engine.begin() as conn:
        row = _action_row(conn, action_id)
        _require_state(row, NEEDS_APPROVAL, doing="rejected")
        conn.execute(update(OutboxAction).where(OutboxAction.id == action_id,
                                                OutboxAction.state == NEEDS_APPROVAL)
                     .values(state="rejected", updated_at=utcnow(),
                             last_error=f"rejected by {operator}"))
        record(conn, operator, "reject", row.mention_id, action_id=action_id,
               action=row.action)


class SimulatedConnector:
    """The demo's sender: every reply and follow-up "succeeds" and nothing leaves the
    machine. Results are recorded as simulated in the outbox and the audit trail."""

    def __init__(self, source: Any = None) -> None:
        self.source = source

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        return PostResult(f"simulated-{mention.external_id}", None)

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        return PostResult(f"simulated-dm-{mention.external_id}", None)

    def close(self) -> None:
        pass


def mark(store: Store, mention_id: int, status: str, *, operator: str,
         reason: str | None = None) -> int:
    """Triage without posting: `dismissed` (with a reason), `replied_elsewhere` (answered
    at the source by hand: feeds and Hacker News cannot be posted to), or `resolved`.
    Returns the id of its audit event (what an undo checks nothing came after)."""
    events = {"dismissed": "dismiss", "replied_elsewhere": "replied_elsewhere",
              "resolved": "resolve"}
    if status not in events:
        raise OutboxError(f"Unknown status {status!r}.")
    now = utcnow()
    with store.engine.begin() as conn:
        flag = conn.execute(select(Mention.flag).where(Mention.id == mention_id)).first()
        found = conn.execute(update(Mention).where(Mention.id == mention_id)
                             .values(status=status)).rowcount
        if not found or flag is None:
            raise OutboxError(f"No mention with id {mention_id}.")
        if status == "replied_elsewhere":
            conn.execute(update(Mention).where(Mention.id == mention_id,
                                               Mention.first_response_at.is_(None))
                         .values(first_response_at=now))
        return record(conn, operator, events[status], mention_id, reason=reason,
                      flag=flag[0])


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
        if outcome.state == "sent":
            log.info("outbox: action %s (%s) sent", outcome.action_id, outcome.action)
            continue
        # Not sent, or perhaps sent: a person must act. Said where cron mail and journald
        # see it (the log shows warnings and worse by default).
        log.warning("outbox: the %s to mention %s (action %s) is %s: %s", outcome.action,
                    outcome.mention_id, outcome.action_id, outcome.state,
                    one_line(outcome.message) or "no message")

"""What the TUI reads: an indexed, paged queue and one mention's detail. Read-only sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from mentionwatch.models import Author, Draft, Mention, OutboxAction, RuleMatch, Source
from mentionwatch.store import Store

OPEN_STATUSES = ("new", "open")
ACTIONABLE_FLAGS = ("crisis", "complaint", "question", "praise")


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    flag: str | None
    priority: float
    source: str
    source_kind: str
    author: str | None
    followers: int | None
    created_at: datetime
    text: str
    title: str | None


def queue(store: Store, *, flag: str | None = None, search: str | None = None,
          limit: int = 200) -> list[QueueRow]:
    """Flagged mentions needing action, most urgent first (priority, then age)."""
    query = (
        select(Mention.id, Mention.flag, Mention.priority, Source.name, Source.kind,
               Mention.author_handle, Author.followers, Mention.created_at, Mention.text,
               Mention.title)
        .join(Source, Source.id == Mention.source_id)
        .outerjoin(Author, Author.id == Mention.author_id)
        .where(Mention.status.in_(OPEN_STATUSES))
        .where(Mention.flag.in_([flag] if flag else ACTIONABLE_FLAGS))
        .order_by(Mention.priority.desc(), Mention.created_at.asc())
        .limit(limit)
    )
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(func.lower(Mention.text).like(pattern)
                            | func.lower(Mention.author_handle).like(pattern))
    with store.session(readonly=True) as session:
        return [QueueRow(*row) for row in session.execute(query)]  # type: ignore[call-arg]


def flag_counts(store: Store) -> dict[str, int]:
    query = (select(Mention.flag, func.count()).where(Mention.status.in_(OPEN_STATUSES),
                                                      Mention.flag.in_(ACTIONABLE_FLAGS))
             .group_by(Mention.flag))
    with store.session(readonly=True) as session:
        return {flag or "": int(n) for flag, n in session.execute(query)}


@dataclass(frozen=True, slots=True)
class Detail:
    mention: Mention
    matches: list[RuleMatch]
    draft: Draft | None
    history: list[tuple[Mention, list[OutboxAction]]]
    actions: list[OutboxAction]


def detail(store: Store, mention_id: int) -> Detail | None:
    found = store.mention_detail(mention_id)
    if found is None:
        return None
    mention, matches, draft = found
    with store.session(readonly=True) as session:
        earlier = []
        if mention.author_id is not None:
            rows = session.scalars(
                select(Mention).where(Mention.author_id == mention.author_id,
                                      Mention.id != mention.id)
                .order_by(Mention.created_at.desc()).limit(10)).unique()
            for m in rows:
                sent = list(session.scalars(select(OutboxAction).where(
                    OutboxAction.mention_id == m.id, OutboxAction.state == "sent")))
                earlier.append((m, sent))
        actions = list(session.scalars(select(OutboxAction).where(
            OutboxAction.mention_id == mention.id).order_by(OutboxAction.id)))
    return Detail(mention, matches, draft, earlier, actions)

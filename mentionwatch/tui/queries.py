"""What the TUI reads: an indexed, paged queue and one mention's detail. Read-only sessions.

The queue is read a page at a time with a keyset on its order (priority descending, then
oldest first, then id), so the thousandth page costs what the first does. Open views repeat
the partial index's condition literally (`WAITING_SQL`) so both SQLite and PostgreSQL walk
`ix_mentions_queue` instead of the table; see migration 0002_tui_indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FunctionElement,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import NullType, TypeEngine

from mentionwatch.models import (
    WAITING_STATUSES,
    Author,
    Draft,
    Mention,
    OutboxAction,
    RuleMatch,
    Source,
    utcnow,
)
from mentionwatch.store import Store, text_search

OPEN_STATUSES = WAITING_STATUSES
ACTIONABLE_FLAGS = ("crisis", "complaint", "question", "praise")
#: Status views: waiting (awake), snoozed, waiting and assigned, then the closed ones.
VIEWS = ("open", "snoozed", "assigned", "answered", "resolved", "dismissed")
PAGE_SIZE = 200


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
    status: str = "new"
    assigned_to: str | None = None
    snoozed_until: datetime | None = None

    @property
    def key(self) -> QueueKey:
        return QueueKey(self.priority, self.created_at, self.id)


@dataclass(frozen=True, slots=True)
class QueueKey:
    """A row's place in queue order; the next page starts after it."""

    priority: float
    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows. Every field narrows; all of them combine."""

    flag: str | None = None
    source: str | None = None
    view: str = "open"
    assigned_to: str | None = None
    search: str | None = None


class _Likely(FunctionElement[Any]):
    """A condition SQLite's planner should take as mostly true: `likely(x)` there, plain `x`
    elsewhere. SQLite has no statistics unless someone ran ANALYZE, and then guesses that an
    equality on an indexed column (`status IN ('new', 'open')`, a source) picks few rows; it
    walks that index over every unflagged 'new' mention and sorts them. Marked likely, the
    term stops attracting an index and the planner walks the partial queue index, already in
    queue order. Partial-index matching looks through likely()."""

    # Untyped on purpose: a Boolean would be rendered `likely(...) = 1` on SQLite, which no
    # longer matches the partial index's condition.
    type: TypeEngine[Any] = NullType()
    name = "likely"
    inherit_cache = True


@compiles(_Likely)
def _plain(element: _Likely, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Likely, "sqlite")
def _likely_sqlite(element: _Likely, compiler: Any, **kw: Any) -> str:
    return f"likely({compiler.process(element.clauses, **kw)})"


def _waiting() -> ColumnElement[bool]:
    """`WAITING_SQL`, the partial index's condition, with literal values: a planner cannot
    match a bound parameter against a partial index."""
    literal: list[ColumnElement[Any]] = [literal_column(f"'{status}'")
                                         for status in WAITING_STATUSES]
    return and_(_Likely(Mention.status.in_(literal)), Mention.flag.is_not(None))


def _awake(now: datetime) -> ColumnElement[bool]:
    return or_(Mention.snoozed_until.is_(None), Mention.snoozed_until <= now)


def _view(view: str, now: datetime) -> list[ColumnElement[bool]]:
    if view == "open":
        return [_waiting(), _awake(now)]
    if view == "snoozed":
        return [_waiting(), Mention.snoozed_until > now]
    if view == "assigned":
        return [_waiting(), _awake(now), Mention.assigned_to.is_not(None)]
    if view == "answered":  # a reply or follow-up sent, or answered elsewhere
        return [Mention.status.in_(("replied", "replied_elsewhere"))]
    if view in ("resolved", "dismissed"):
        return [Mention.status == view]
    raise ValueError(f"unknown queue view {view!r}; use one of {', '.join(VIEWS)}")


def _after(key: QueueKey) -> ColumnElement[bool]:
    """Rows after `key` in (priority desc, created_at asc, id asc) order. The leading
    `priority <= p` bounds the index range; the rest breaks ties."""
    return and_(Mention.priority <= key.priority, or_(
        Mention.priority < key.priority,
        and_(Mention.priority == key.priority, or_(
            Mention.created_at > key.created_at,
            and_(Mention.created_at == key.created_at, Mention.id > key.id)))))


def queue_statement(where: QueueFilter, *, now: datetime, after: QueueKey | None = None,
                    limit: int = PAGE_SIZE) -> Any:
    """The SELECT for one page of the queue (exposed for EXPLAIN checks)."""
    query = (
        select(Mention.id, Mention.flag, Mention.priority, Source.name, Source.kind,
               Mention.author_handle, Author.followers, Mention.created_at, Mention.text,
               Mention.title, Mention.status, Mention.assigned_to, Mention.snoozed_until)
        .join(Source, Source.id == Mention.source_id)
        .outerjoin(Author, Author.id == Mention.author_id)
        .where(*_view(where.view, now))
        .where(Mention.flag == where.flag if where.flag else Mention.flag.in_(ACTIONABLE_FLAGS))
        .order_by(Mention.priority.desc(), Mention.created_at.asc(), Mention.id.asc())
        .limit(limit)
    )
    if where.source:
        query = query.where(_Likely(Source.name == where.source))
    if where.assigned_to:
        query = query.where(Mention.assigned_to == where.assigned_to)
    if where.search:
        query = query.where(text_search(where.search))
    if after is not None:
        query = query.where(_after(after))
    return query


def queue(store: Store, *, flag: str | None = None, search: str | None = None,
          limit: int = PAGE_SIZE, where: QueueFilter | None = None,
          after: QueueKey | None = None, now: datetime | None = None) -> list[QueueRow]:
    """One page of flagged mentions needing action, most urgent first (priority, then age),
    starting after `after` (None: the first page)."""
    where = where or QueueFilter(flag=flag, search=search)
    statement = queue_statement(where, now=now or utcnow(), after=after, limit=limit)
    with store.session(readonly=True) as session:
        return [QueueRow(*row) for row in session.execute(statement)]


def flag_counts_statement(now: datetime) -> Any:
    return (select(Mention.flag, func.count())
            .where(_waiting(), _awake(now), Mention.flag.in_(ACTIONABLE_FLAGS))
            .group_by(Mention.flag))


def flag_counts(store: Store, now: datetime | None = None) -> dict[str, int]:
    """Waiting (not snoozed) mentions per flag, read from the queue index alone."""
    with store.session(readonly=True) as session:
        return {flag or "": int(n) for flag, n in
                session.execute(flag_counts_statement(now or utcnow()))}


def source_names(store: Store) -> list[str]:
    """The configured sources, for the source filter."""
    with store.session(readonly=True) as session:
        return list(session.scalars(select(Source.name).order_by(Source.name)))


def explain(store: Store, statement: Any) -> list[str]:
    """How the database runs `statement`, one line a step: SQLite's EXPLAIN QUERY PLAN
    details or PostgreSQL's EXPLAIN. For checking that the queue stays on its index."""
    with store.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect,
                                    compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            return [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        return [str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {sql}")]


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

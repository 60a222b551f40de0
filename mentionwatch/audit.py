"""Who did what, when: every approve, edit, dismiss, send result is an audit event."""

from __future__ import annotations

import getpass
import os
from typing import Any

from sqlalchemy import Connection, select

from mentionwatch.models import AuditEvent, utcnow
from mentionwatch.store import Store

#: The actor of what the machine does by itself (sends, alerts), not a person.
MACHINE = "mentionwatch"


def operator_name() -> str:
    """The person at the keyboard: $MENTIONWATCH_OPERATOR, else the login name."""
    name = os.environ.get("MENTIONWATCH_OPERATOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(conn: Connection, actor: str, event: str, mention_id: int | None = None,
           **details: Any) -> int:
    """Add an audit event inside the caller's transaction; returns its id."""
    table = AuditEvent.__table__
    return int(conn.execute(table.insert().values(  # type: ignore[attr-defined]
        at=utcnow(), actor=actor[:100], event=event[:50], mention_id=mention_id,
        details=details or None).returning(table.c.id)).scalar_one())


def recent(store: Store, limit: int = 50, mention_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if mention_id is not None:
        query = query.where(AuditEvent.mention_id == mention_id)
    with store.session(readonly=True) as session:
        return list(session.scalars(query))

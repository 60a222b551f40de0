"""Indexes for the triage queue on a large store.

`ix_mentions_queue` holds only the mentions waiting for a person (status new/open with a flag),
in queue order (priority descending, then oldest first, then id), with the columns the queue
filters and the flag counts read. With a million stored mentions and ten thousand waiting, the
queue's first page and each next page (keyset on priority, created_at, id) walk this small
index instead of the table, and the counts per flag read it without touching the table. A
partial index costs the ingest nothing: new mentions have no flag until the rules judge them.

The predicate is written with literal values, and the queries repeat it literally
(`mentionwatch.tui.queries`), because neither SQLite nor PostgreSQL can prove a bound
parameter matches a partial index's condition.

Revision ID: 0002_tui_indexes
Revises: 0001
Create Date: 2026-12-01 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_tui_indexes"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status IN ('new', 'open') AND flag IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_mentions_queue", "mentions",
        [sa.text("priority DESC"), "created_at", "id", "flag", "status", "snoozed_until"],
        unique=False, sqlite_where=sa.text(WAITING), postgresql_where=sa.text(WAITING))


def downgrade() -> None:
    op.drop_index("ix_mentions_queue", table_name="mentions")

"""Scheduled sends: the morning digest goes out once per day and configured time.

`scheduled_sends` has one row per send and period ("2026-10-25 02:30 Europe/Berlin"), taken
before the email is sent and given back when sending fails. APScheduler's CronTrigger fires a
02:30 digest twice on the night the clocks go back; a restarted `run`, or two services on one
database, fired it again too.

Revision ID: 0004_scheduled_sends
Revises: 0003_mention_explanation
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_scheduled_sends"
down_revision: str | None = "0003_mention_explanation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("host", sa.String(length=200), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_sends")),
        sa.UniqueConstraint("name", "period", name=op.f("uq_scheduled_sends_name")),
    )


def downgrade() -> None:
    op.drop_table("scheduled_sends")

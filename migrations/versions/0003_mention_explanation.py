"""The numbers behind each mention's priority and complaint score.

`mentions.explanation` keeps the parts of the rules engine's judgement that have no column of
their own: the priority's components and weights, and the complaint score with the words that
weighed most (see `mentionwatch.judgement.STORED_EXPLANATION`), so the triage screen and
`mentions show` can say how a priority was reached. Mentions judged before this revision
have none until `mentionwatch rules rescore`.

Revision ID: 0003_mention_explanation
Revises: 0002_tui_indexes
Create Date: 2026-12-01 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_mention_explanation"
down_revision: str | None = "0002_tui_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mentions", sa.Column("explanation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("explanation")

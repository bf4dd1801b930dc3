"""community signals: Semantic Scholar's TL;DR on papers, and a reader's choice to see it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite, where dropping ``subscribers`` would cascade).
    op.add_column("papers", sa.Column("tldr", sa.Text(), nullable=True))
    op.add_column(
        "subscribers", sa.Column("show_tldr", sa.Boolean(), server_default=sa.true(), nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("subscribers", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("show_tldr")
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_column("tldr")

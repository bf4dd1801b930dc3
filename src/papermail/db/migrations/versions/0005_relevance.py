"""personal relevance: votes and seed papers, the mix setting, frozen reasons

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", papermail.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", papermail.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value IN (-1, 1)", name=op.f("ck_votes_value_sign")),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_votes_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("subscriber_id", "arxiv_id", name=op.f("uq_votes_subscriber_id_arxiv_id")),
    )
    # Plain ADD COLUMNs: on SQLite a new CHECK would rebuild ``subscribers``, and dropping the old
    # table with foreign keys on would cascade-delete every delivery. SQLite relies on the code's
    # validation of the mix (0..4); PostgreSQL gets the constraint too.
    op.add_column(
        "subscribers", sa.Column("relevance_mix", sa.SmallInteger(), server_default="2", nullable=False)
    )
    if op.get_bind().dialect.name != "sqlite":
        op.create_check_constraint(
            op.f("ck_subscribers_relevance_mix_range"), "subscribers", "relevance_mix BETWEEN 0 AND 4"
        )
    op.add_column("deliveries", sa.Column("reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("reasons")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_subscribers_relevance_mix_range"), "subscribers", type_="check")
    with op.batch_alter_table("subscribers", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("relevance_mix")
    op.drop_table("votes")

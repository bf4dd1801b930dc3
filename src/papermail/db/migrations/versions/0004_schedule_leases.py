"""schedule leases: one beat per database

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-05 12:00:00

A row per singleton process (today only beat): who holds it and until when. A holder renews its
lease while alive; a killed holder's lease runs out by itself.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", papermail.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", papermail.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_leases")),
    )


def downgrade() -> None:
    op.drop_table("schedule_leases")

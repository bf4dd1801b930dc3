"""schedule leases (one beat per database) and signup requests (equal-time signups)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 12:00:00

A row per singleton process (today only beat): who holds it and until when. A holder renews its
lease while alive; a killed holder's lease runs out by itself. A signup request is a posted signup
form waiting for a worker: the web stores only that, whatever the address, so every answer takes
the same time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0004"
down_revision: str | None = "0003"
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
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("requested_at", papermail.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
    )
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signup_requests_requested_at"), ["requested_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signup_requests_requested_at"))
    op.drop_table("signup_requests")
    op.drop_table("schedule_leases")

"""confirmations: a row for every confirmation email owed, sent and swept like a delivery

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 12:15:00

Migrations must run on both SQLite and PostgreSQL: use op.batch_alter_table for ALTERs, name
constraints through the metadata's naming convention, and never import papermail models here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "sending", "sent", "retry", "skipped", "failed", "exhausted", "uncertain")


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, papermail.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        _time("requested_at", nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="deliverystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("lost_claims", sa.Integer(), nullable=False),
        _time("lease_until"),
        _time("attempt_started_at"),
        _time("next_attempt_at"),
        _time("first_attempt_at"),
        sa.Column("last_smtp_code", sa.Integer(), nullable=True),
        sa.Column("last_smtp_reply", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        _time("sent_at"),
        _time("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_confirmations_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmations")),
        sa.UniqueConstraint("message_id", name=op.f("uq_confirmations_message_id")),
    )
    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_confirmations_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_confirmations_subscriber_id"), ["subscriber_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmations_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_confirmations_status_next_attempt_at"))
    op.drop_table("confirmations")

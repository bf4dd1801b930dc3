"""bounces and complaints: the messages that came back, one verdict per recipient, the bounce score

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = papermail.db.types.UTCDateTime(timezone=True)


def _detaching_foreign_key(column: str, table: str) -> sa.ForeignKeyConstraint:
    """A verdict outlives its report, subscriber and rows: deleting them only clears the reference."""
    name = op.f(f"fk_bounce_events_{column}_{table}")
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=name, ondelete="SET NULL")


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("envelope_sender", sa.String(length=320), nullable=True),
        sa.Column("envelope_recipient", sa.String(length=320), nullable=True),
        sa.Column("report_key", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("processed_at", _TIME, nullable=True),
        sa.CheckConstraint(
            "via IN ('smtp', 'imap', 'import', 'webhook')", name=op.f("ck_inbound_messages_via_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_messages_state_received_at"), ["state", "received_at"])
        batch_op.create_index(batch_op.f("ix_inbound_messages_report_key"), ["report_key"])
        batch_op.create_index(batch_op.f("ix_inbound_messages_received_at"), ["received_at"])
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "hard",
                "soft",
                "sender",
                "complaint",
                "none",
                name="bounceverdict",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("reporting_mta", sa.String(length=255), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("confirmation_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_event_id", sa.String(length=255), nullable=True),
        sa.Column("report_key", sa.String(length=255), nullable=True),
        _detaching_foreign_key("inbound_message_id", "inbound_messages"),
        _detaching_foreign_key("subscriber_id", "subscribers"),
        _detaching_foreign_key("delivery_id", "deliveries"),
        _detaching_foreign_key("confirmation_id", "confirmations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
        sa.UniqueConstraint(
            "provider", "provider_event_id", name=op.f("uq_bounce_events_provider_provider_event_id")
        ),
        sa.UniqueConstraint("report_key", "address", name=op.f("uq_bounce_events_report_key_address")),
    )
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bounce_events_recorded_at_verdict"), ["recorded_at", "verdict"])
        batch_op.create_index(batch_op.f("ix_bounce_events_subscriber_id"), ["subscriber_id"])
        batch_op.create_index(batch_op.f("ix_bounce_events_delivery_id"), ["delivery_id"])
        batch_op.create_index(batch_op.f("ix_bounce_events_inbound_message_id"), ["inbound_message_id"])
    # Plain ADD COLUMNs, like 0005: no table rebuild of ``subscribers`` on SQLite.
    op.add_column("subscribers", sa.Column("bounce_score", sa.Double(), server_default="0", nullable=False))
    op.add_column("subscribers", sa.Column("last_soft_bounce_at", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("last_soft_bounce_at")
        batch_op.drop_column("bounce_score")
    op.drop_table("bounce_events")
    op.drop_table("inbound_messages")

"""What comes back: inbound messages kept raw, and the verdicts on recipients drawn from them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from papermail.db.models.base import Base, BounceVerdict


class InboundMessage(Base):
    """A message that came back to us (bounce, complaint, auto-reply), kept raw for inspection."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    via: Mapped[str] = mapped_column(sa.String(16))  # "smtp", "imap", "import", "webhook"
    envelope_sender: Mapped[str | None] = mapped_column(sa.String(320))
    envelope_recipient: Mapped[str | None] = mapped_column(sa.String(320))
    # The report's own Message-ID, or a hash of its bytes when it has none: the same report
    # received twice has the same key, and only its first copy acts.
    report_key: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int]  # of the message as received; ``raw`` keeps at most MAX_STORED_BYTES of it
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # "received" (waiting for a worker), "processed", "duplicate" (its report was already seen)
    state: Mapped[str] = mapped_column(sa.String(16), default="received")
    kind: Mapped[str | None] = mapped_column(sa.String(16))  # "bounce", "complaint", ... once processed
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        sa.CheckConstraint("via IN ('smtp', 'imap', 'import', 'webhook')", name="via_known"),
        sa.Index(None, "state", "received_at"),
        sa.Index(None, "report_key"),
        sa.Index(None, "received_at"),
    )


class BounceEvent(Base):
    """One verdict about one recipient, from a report or a provider's webhook, and what we did."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    recorded_at: Mapped[datetime]
    # Raw reports are purged after 90 days; their events stay, for rates and history.
    inbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    address: Mapped[str] = mapped_column(sa.String(320))
    verdict: Mapped[BounceVerdict]
    status: Mapped[str | None] = mapped_column(sa.String(16))  # enhanced status code, e.g. "5.1.1"
    diagnostic: Mapped[str | None] = mapped_column(sa.Text)
    reporting_mta: Mapped[str | None] = mapped_column(sa.String(255))
    subscriber_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id", ondelete="SET NULL"))
    confirmation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("confirmations.id", ondelete="SET NULL")
    )
    # "suppressed", "unsubscribed", "counted", "already-seen", "not-a-subscriber", "none"
    action: Mapped[str] = mapped_column(sa.String(32))
    provider: Mapped[str | None] = mapped_column(sa.String(32))  # a webhook's provider, e.g. "ses"
    provider_event_id: Mapped[str | None] = mapped_column(sa.String(255))
    report_key: Mapped[str | None] = mapped_column(sa.String(255))  # InboundMessage.report_key

    __table_args__ = (
        # Dedup: a provider's event, or a report's verdict on one address, is acted on once.
        sa.UniqueConstraint("provider", "provider_event_id"),
        sa.UniqueConstraint("report_key", "address"),
        sa.Index(None, "recorded_at", "verdict"),
        sa.Index(None, "subscriber_id"),
        sa.Index(None, "delivery_id"),
        sa.Index(None, "inbound_message_id"),
    )

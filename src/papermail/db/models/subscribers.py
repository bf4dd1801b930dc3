"""Subscribers and what is sent to them: votes, suppressed addresses, digests, deliveries, confirmations.

A digest and a confirmation are sent under the same exactly-once rules, so both carry :class:`SendState`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from papermail.db.models.base import Base, DeliveryStatus, Frequency, SubscriberStatus


class Subscriber(Base):
    """A person who asked (or is asking) for the digest."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised (email-validator, lower-cased domain, IDN as punycode) so one person is one row.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(default=SubscriberStatus.PENDING)
    topics: Mapped[list[str]] = mapped_column(default=list)
    keywords: Mapped[list[str]] = mapped_column(default=list)
    frequency: Mapped[Frequency] = mapped_column(default=Frequency.WEEKLY)
    send_weekday: Mapped[int] = mapped_column(sa.SmallInteger, default=0)  # 0 = Monday (ISO - 1)
    send_hour: Mapped[int] = mapped_column(sa.SmallInteger, default=8)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime]
    confirmation_sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    consent_ip: Mapped[str | None] = mapped_column(sa.String(45))
    unsubscribed_at: Mapped[datetime | None]
    preferences_changed_at: Mapped[datetime | None]
    soft_bounce_count: Mapped[int] = mapped_column(default=0)
    hard_bounced_at: Mapped[datetime | None]
    # Mailman's bounce score: +0.5 per day with a soft bounce; it starts over when the last soft
    # bounce is older than the stale period, or a delivery succeeded since (papermail.bounces.policy).
    bounce_score: Mapped[float] = mapped_column(default=0.0, server_default="0")
    last_soft_bounce_at: Mapped[datetime | None]
    # 0 = trending order only … 4 = personal order only (docs/relevance.md); 2 blends them evenly.
    relevance_mix: Mapped[int] = mapped_column(sa.SmallInteger, default=2, server_default="2")
    # Semantic Scholar's TL;DR above each abstract; a reader may prefer the abstract alone.
    show_tldr: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="subscriber", passive_deletes=True)
    votes: Mapped[list[Vote]] = relationship(
        back_populates="subscriber", passive_deletes=True, cascade="all, delete-orphan", order_by="Vote.id"
    )

    __table_args__ = (
        sa.CheckConstraint("send_weekday BETWEEN 0 AND 6", name="send_weekday_range"),
        sa.CheckConstraint("send_hour BETWEEN 0 AND 23", name="send_hour_range"),
        sa.CheckConstraint("relevance_mix BETWEEN 0 AND 4", name="relevance_mix_range"),
        sa.Index(None, "status"),
        # Signed links carry the subscriber id: an erased subscriber's id must never be reused.
        {"sqlite_autoincrement": True},
    )


class Vote(Base):
    """A reader's "more/less like this" on one paper, or a seed paper they like (by arXiv id)."""

    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(sa.ForeignKey("subscribers.id", ondelete="CASCADE"))
    # Version-less, like Paper.arxiv_id; no foreign key, so a seed may name a paper not yet fetched.
    arxiv_id: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[int] = mapped_column(sa.SmallInteger)  # +1 more like this, -1 less like this
    source: Mapped[str] = mapped_column(sa.String(16))  # "digest" (a link in an email) or "seed"
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    subscriber: Mapped[Subscriber] = relationship(back_populates="votes")

    __table_args__ = (
        sa.UniqueConstraint("subscriber_id", "arxiv_id"),
        sa.CheckConstraint("value IN (-1, 1)", name="value_sign"),
    )


class Suppression(Base):
    """An address that must never be mailed again, kept as a hash so erased data stays erased."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex of the email
    reason: Mapped[str] = mapped_column(sa.String(32))  # "bounce", "complaint", "erased", "admin"
    created_at: Mapped[datetime]


class Digest(Base):
    """One period's digest run: it pins the ranking used, and can be paused by the breaker."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(16), unique=True)  # "2026-W48" or "2026-11-26"
    scoring_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scoring_runs.id"))
    created_at: Mapped[datetime]
    paused_at: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(sa.Text)


class SendState:
    """The columns of a row sent exactly once under ``papermail.sending.claims``' rules.

    Deliveries and confirmations share them: a claim fences every later write, a hand-over marks
    the message possibly sent, an outcome settles it, and the sweeper recovers what a dead worker
    or a lost queue message left behind.
    """

    status: Mapped[DeliveryStatus] = mapped_column(default=DeliveryStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)  # SMTP transactions tried
    # Times a worker took it; it only grows, so a worker's claim number fences its later writes.
    claims: Mapped[int] = mapped_column(default=0)
    # Claims whose worker died before recording an outcome; at the limit the row fails (crash loops).
    lost_claims: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    # Committed just before an SMTP transaction and cleared with its outcome: a row whose lease ran
    # out with this set may have been delivered (uncertain); without it, it certainly was not.
    attempt_started_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    last_smtp_code: Mapped[int | None]
    last_smtp_reply: Mapped[str | None] = mapped_column(sa.Text)
    # Fixed before the first SMTP transaction, so a resend of the same message is recognisable.
    message_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]  # also when it was last queued: the sweeper re-queues stale rows


class Delivery(SendState, Base):
    """One subscriber's digest for one period: the exactly-once ledger of sending."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(sa.ForeignKey("digests.id"))
    subscriber_id: Mapped[int] = mapped_column(sa.ForeignKey("subscribers.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(sa.String(16))
    # Frozen at planning time: a retry or resend renders exactly these papers, in this order.
    paper_ids: Mapped[list[int]] = mapped_column(default=list)
    # Frozen with them: the personal "why" of each paper ("close to … you liked"), "" for none;
    # NULL when the digest was ranked by trending alone.
    reasons: Mapped[list[str] | None] = mapped_column(sa.JSON(none_as_null=True))
    scheduled_for: Mapped[datetime]
    planned_at: Mapped[datetime]

    subscriber: Mapped[Subscriber] = relationship(back_populates="deliveries")

    __table_args__ = (
        sa.UniqueConstraint("subscriber_id", "period_key"),
        sa.Index(None, "period_key", "status"),
        sa.Index(None, "status", "next_attempt_at"),
    )


class Confirmation(SendState, Base):
    """A confirmation email owed for one signup request, sent under the same rules as a digest."""

    __tablename__ = "confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(sa.ForeignKey("subscribers.id", ondelete="CASCADE"))
    requested_at: Mapped[datetime]  # the signup request it confirms (its link carries this time)

    __table_args__ = (sa.Index(None, "status", "next_attempt_at"), sa.Index(None, "subscriber_id"))

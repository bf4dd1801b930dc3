"""The data model: papers and their signal time series, trend rankings, subscribers, deliveries.

The service's own bookkeeping (audit log, fetch log, HTTP validators, rate-limit hits, leases,
signup forms waiting for a worker) is in :mod:`papermail.db.bookkeeping`. Timestamps are aware UTC
(see :class:`UTCDateTime`); status columns are short strings checked by the enums below.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from papermail.arxiv_ids import id_month_start
from papermail.db.types import UTCDateTime

# Alembic names every constraint from this convention, so migrations can drop and alter them by
# name on PostgreSQL and in SQLite's batch mode alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed (double opt-in)
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # hard bounce: never mailed again


class Frequency(enum.StrEnum):
    WEEKLY = "weekly"
    DAILY = "daily"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # planned, waiting for a worker
    SENDING = "sending"  # claimed by a worker, under a lease
    SENT = "sent"  # the SMTP server answered 250
    RETRY = "retry"  # a transient failure; next_attempt_at says when
    SKIPPED = "skipped"  # nothing to send or no longer eligible; skip_reason says why
    FAILED = "failed"  # permanent failure (5xx, unbuildable message, or the worker kept dying)
    EXHAUSTED = "exhausted"  # transient failures past the give-up period
    UNCERTAIN = "uncertain"  # the lease ran out mid-send: it may or may not have gone out


class BounceVerdict(enum.StrEnum):
    HARD = "hard"  # the address is gone
    SOFT = "soft"  # mailbox full, deferred, greylisted: counted towards a threshold
    SENDER = "sender"  # our fault or the relay's (blocked, policy, authentication): never the reader's
    COMPLAINT = "complaint"  # the reader reported the mail as spam
    NONE = "none"  # a success report, an auto-reply, or no report at all


class FetchStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # some entries or feeds were rejected
    FAILED = "failed"


def _str_enum(cls: type[enum.StrEnum]) -> sa.Enum:
    # Stored as VARCHAR (not a native PostgreSQL ENUM) so adding a status is a code change only.
    return sa.Enum(
        cls,
        native_enum=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
        list[int]: sa.JSON(),
        SubscriberStatus: _str_enum(SubscriberStatus),
        Frequency: _str_enum(Frequency),
        DeliveryStatus: _str_enum(DeliveryStatus),
        FetchStatus: _str_enum(FetchStatus),
        BounceVerdict: _str_enum(BounceVerdict),
    }


def _id_month_of_inserted_row(context: Any) -> datetime | None:
    arxiv_id = context.get_current_parameters().get("arxiv_id")
    return id_month_start(arxiv_id) if arxiv_id else None


class Paper(Base):
    """One arXiv paper, whatever source we saw it through, keyed by its version-less id."""

    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "2401.01234" or old-style "cond-mat/0412498", never with a "v2" suffix.
    arxiv_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(sa.Text)
    abstract: Mapped[str] = mapped_column(sa.Text, default="")
    authors: Mapped[list[str]] = mapped_column(default=list)
    primary_category: Mapped[str | None] = mapped_column(sa.String(32))
    # All categories including the primary one, so a cross-list matches a topic like its home.
    categories: Mapped[list[str]] = mapped_column(default=list)
    published_at: Mapped[datetime | None]
    # The start of the month the arXiv id was issued in, derived from it on insert: the earliest the
    # first version can be, so it bounds the age of a paper whose ``published_at`` is unknown.
    id_month: Mapped[datetime | None] = mapped_column(default=_id_month_of_inserted_row)
    updated_at: Mapped[datetime | None]
    github_url: Mapped[str | None] = mapped_column(sa.String(300))
    on_huggingface: Mapped[bool] = mapped_column(default=False)
    # Semantic Scholar's machine-written one-sentence summary, when it has one.
    tldr: Mapped[str | None] = mapped_column(sa.Text)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]

    __table_args__ = (sa.Index(None, "first_seen_at"), sa.Index(None, "published_at"))

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}"

    @property
    def tldr_url(self) -> str:
        """Where the TL;DR comes from: the paper's page on Semantic Scholar."""
        return f"https://www.semanticscholar.org/arxiv/{self.arxiv_id}"

    @property
    def hf_url(self) -> str | None:
        return f"https://huggingface.co/papers/{self.arxiv_id}" if self.on_huggingface else None


class SignalSnapshot(Base):
    """One observation of a popularity metric: an append-only time series per paper."""

    __tablename__ = "signal_snapshots"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(sa.ForeignKey("papers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(16))  # "huggingface", "github", ...
    metric: Mapped[str] = mapped_column(sa.String(32))  # "upvotes", "comments", "github_stars"
    value: Mapped[int]
    # Truncated to the minute by the fetcher: a repeated fetch in the same minute is a no-op.
    observed_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("paper_id", "source", "metric", "observed_at"),
        sa.Index(None, "observed_at"),
        # Trending's bulk aggregate groups by (paper, metric) and filters on time: with ``value``
        # included the index covers the query, so it never touches or sorts the table itself.
        sa.Index(None, "paper_id", "metric", "observed_at", "value"),
    )


class ScoringRun(Base):
    """One ranking of all trending papers as of ``as_of``; digests of a period pin one run."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # The velocity window this run ranks by ("24h", "7d": papermail.trending.WINDOWS). A run that
    # does not say is weekly, the product's default; runs from before windows were 24-hour runs.
    window: Mapped[str] = mapped_column(sa.String(8), default="7d", server_default="24h")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    paper_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.Index(None, "as_of"), sa.Index(None, "window", "as_of"))


class TrendScore(Base):
    """A paper's place in one scoring run, with the evidence that explains it."""

    __tablename__ = "trend_scores"

    # No foreign keys, on purpose: a run writes one row per recent paper (100,000 in the benchmark)
    # at once, and PostgreSQL checks a foreign key with one query per row, which measured two
    # thirds of the write. The rows are written in the transaction that read those papers and
    # created the run, and trending.runs.prune_runs deletes a run's rows with the run.
    run_id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(primary_key=True)
    rank: Mapped[int]
    score: Mapped[float]
    # Human-readable "why this paper", e.g. "+42 upvotes today · +55★ today · 2 days old".
    evidence: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.UniqueConstraint("run_id", "rank"),)


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
    """The columns of a row sent exactly once under ``papermail.delivery.claims``' rules.

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

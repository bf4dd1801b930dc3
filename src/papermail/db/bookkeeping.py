"""The service's own bookkeeping tables: audit log, fetch log, HTTP validators, rate-limit hits,
beat's lease and signup forms waiting for a worker. The product's data is in :mod:`.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from papermail.db.models import Base, FetchStatus


class AuditLog(Base):
    """Who did what to whom, for admin actions and consent changes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(120))  # "cli:alice", "web", "system"
    action: Mapped[str] = mapped_column(sa.String(64))  # "resend.force", "subscriber.purge", ...
    subscriber_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (sa.Index(None, "at"),)


class FetchRun(Base):
    """One fetch of one source, with its counts; its problems are FetchProblem rows."""

    __tablename__ = "fetch_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # "arxiv", "huggingface"
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[FetchStatus] = mapped_column(default=FetchStatus.RUNNING)
    new_papers: Mapped[int] = mapped_column(default=0)
    updated_papers: Mapped[int] = mapped_column(default=0)
    signals_added: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)

    problems: Mapped[list[FetchProblem]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.Index(None, "source", "started_at"),
        # The running row is the fetch lock: at most one running fetch per source, on SQLite and
        # PostgreSQL alike, with no lock service beside the database.
        sa.Index(
            "uq_fetch_runs_running_source",
            "source",
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
    )


class FetchProblem(Base):
    """A rejected entry or a failed feed, with the reason, so nothing is dropped silently."""

    __tablename__ = "fetch_problems"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("fetch_runs.id", ondelete="CASCADE"))
    # "entry" (one rejected), "feed" (the whole feed failed) or "notice" (logged, not counted)
    kind: Mapped[str] = mapped_column(sa.String(16))
    url: Mapped[str | None] = mapped_column(sa.Text)
    entry_ref: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)

    run: Mapped[FetchRun] = relationship(back_populates="problems")


class HttpCache(Base):
    """Validators from the last 200 of a URL, for conditional GET."""

    __tablename__ = "http_cache"

    url: Mapped[str] = mapped_column(sa.String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(sa.String(500))
    last_modified: Mapped[str | None] = mapped_column(sa.String(100))
    fetched_at: Mapped[datetime]


class RateLimitHit(Base):
    """One counted event for a rate limit key (signups per IP, confirmations per address)."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime]

    __table_args__ = (sa.Index(None, "key", "at"),)


class ScheduleLease(Base):
    """Who runs a singleton process (beat) for this database, until when; renewed while alive."""

    __tablename__ = "schedule_leases"

    name: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class SignupRequest(Base):
    """A signup form as it was posted, waiting for a worker to decide what it means.

    Every POST /subscribe stores one and nothing else, so the answer takes the same time whether
    the address is new, active, unsubscribed or suppressed. Deleted when processed.
    """

    __tablename__ = "signup_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    preferences: Mapped[dict[str, Any]]
    requested_at: Mapped[datetime]

    __table_args__ = (sa.Index(None, "requested_at"),)

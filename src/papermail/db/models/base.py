"""The declarative base every model shares: its naming convention and column types, and the status enums.

Timestamps are aware UTC (see :class:`UTCDateTime`); status columns are short strings checked by
the enums below.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

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

"""Leases on singleton processes (one beat per database), kept in the database so they hold
across machines. A holder renews its lease while alive; a killed holder's lease runs out by itself.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.bookkeeping import ScheduleLease

BEAT = "beat"


@dataclass(frozen=True)
class Hold:
    """Who holds a lease and until when."""

    holder: str
    expires_at: datetime


def new_holder() -> str:
    """A name for this process that says where to look for it: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(session: Session, name: str, holder: str, duration: timedelta) -> Hold:
    """Take the lease unless someone else holds it; return whoever holds it now."""
    now = clock.now()
    taken = session.execute(
        sa.update(ScheduleLease)
        .where(
            ScheduleLease.name == name,
            sa.or_(ScheduleLease.expires_at < now, ScheduleLease.holder == holder),
        )
        .values(holder=holder, acquired_at=now, expires_at=now + duration)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        try:
            with session.begin_nested():
                session.add(
                    ScheduleLease(name=name, holder=holder, acquired_at=now, expires_at=now + duration)
                )
        except sa.exc.IntegrityError:
            pass  # a live holder's row: report it below
    current = session.execute(
        sa.select(ScheduleLease.holder, ScheduleLease.expires_at).where(ScheduleLease.name == name)
    ).one()
    return Hold(current.holder, current.expires_at)


def renew(session: Session, name: str, holder: str, duration: timedelta) -> bool:
    """Extend our lease; False if it is no longer ours (it ran out and someone else took it)."""
    result = session.execute(
        sa.update(ScheduleLease)
        .where(ScheduleLease.name == name, ScheduleLease.holder == holder)
        .values(expires_at=clock.now() + duration)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), if it is still ours."""
    session.execute(
        sa.delete(ScheduleLease)
        .where(ScheduleLease.name == name, ScheduleLease.holder == holder)
        .execution_options(synchronize_session=False)
    )

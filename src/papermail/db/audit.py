"""The audit log: one row per admin action or consent change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.bookkeeping import AuditLog


def record(
    session: Session,
    actor: str,
    action: str,
    *,
    subscriber_id: int | None = None,
    delivery_id: int | None = None,
    reason: str | None = None,
    **details: Any,
) -> AuditLog:
    """Add an audit row (committed with the caller's transaction)."""
    entry = AuditLog(
        at=clock.now(),
        actor=actor,
        action=action,
        subscriber_id=subscriber_id,
        delivery_id=delivery_id,
        reason=reason,
        details=details,
    )
    session.add(entry)
    return entry

"""Signups in two steps, so that POST /subscribe takes the same time whatever the address.

The web only records the form (one insert) and queues ``papermail.process_signup``; a worker then
decides what the request means (new, pending, active, unsubscribed, suppressed, throttled) with
:func:`papermail.signup.flow.request_signup`. Finding out which it was would otherwise show in the
answer's timing. A request whose queue message was lost is processed by the sweeper.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock, task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db.bookkeeping import SignupRequest
from papermail.db.models import Frequency
from papermail.signup.flow import SignupOutcome, request_signup
from papermail.signup.limits import RateLimiter
from papermail.subscribers.preferences import Preferences, preference_values

log = logging.getLogger(__name__)

# A request still waiting this long lost its queue message (broker down or restarted).
SWEEP_AFTER = timedelta(minutes=2)
SWEEP_BATCH = 200


def record_request(session: Session, email: str, preferences: Preferences) -> int:
    """Store a (validated, normalised) signup and queue its processing after commit; its id."""
    values = {**preference_values(preferences), "frequency": preferences.frequency.value}  # JSON
    request = SignupRequest(email=email, preferences=values, requested_at=clock.now())
    session.add(request)
    session.flush()
    enqueue_after_commit(session, task_names.PROCESS_SIGNUP, request.id)
    return request.id


def process_request(
    session: Session, settings: Settings, request_id: int, limiter: RateLimiter
) -> SignupOutcome | None:
    """Decide and act on one stored request; None if it is gone (already processed)."""
    request = session.get(SignupRequest, request_id)
    if request is None:
        return None
    email, stored = request.email, dict(request.preferences)
    # The conditional delete is the claim: of two workers on one request, one gets rowcount 1.
    claimed = session.execute(
        sa.delete(SignupRequest).where(SignupRequest.id == request_id),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not claimed:
        return None
    session.expunge(request)
    preferences = Preferences(
        topics=list(stored["topics"]),
        keywords=list(stored["keywords"]),
        frequency=Frequency(stored["frequency"]),
        send_weekday=int(stored["send_weekday"]),
        send_hour=int(stored["send_hour"]),
        timezone=stored["timezone"],
    )
    return request_signup(session, settings, email=email, preferences=preferences, limiter=limiter)


def waiting_request_ids(session: Session, limit: int = SWEEP_BATCH) -> list[int]:
    """Requests older than :data:`SWEEP_AFTER`, oldest first: their queue message was lost."""
    cutoff = clock.now() - SWEEP_AFTER
    query = (
        sa.select(SignupRequest.id)
        .where(SignupRequest.requested_at < cutoff)
        .order_by(SignupRequest.requested_at)
        .limit(limit)
    )
    return list(session.scalars(query))

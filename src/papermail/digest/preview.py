"""Previewing one subscriber's digest for a period, exactly as it would be sent, without sending it.

If the period is planned, the preview is the delivery's frozen content. Otherwise the papers are
chosen now, the same way the planner would, from the run the period's digest pinned (or the latest
run if the period has no digest yet), and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.db.models import Delivery, Digest, Subscriber
from papermail.digest.period import describe_period, latest_period, schedule_of
from papermail.digest.render import render_deliveries, render_digests
from papermail.digest.request import DigestRequest
from papermail.digest.select import select_for_subscribers
from papermail.mail.message import OutgoingEmail
from papermail.trending import DEFAULT_WINDOW, latest_run, window_for

PREVIEW_KEY = 0  # render_digests key for a digest that has no delivery row


class NothingToPreview(Exception):
    """There is no digest to show (no scoring run yet); the message says why."""


@dataclass(frozen=True)
class Preview:
    """What a subscriber gets for a period: an email, or the reason they get none."""

    period_key: str
    email: OutgoingEmail | None
    skip_reason: str | None
    delivery: Delivery | None  # the planned delivery, when there is one
    run_id: int | None


def default_period_key(session: Session, subscriber: Subscriber, now: datetime) -> str:
    """Their most recently planned period; before their first, the one of their last send time."""
    planned = session.scalar(
        sa.select(Delivery.period_key)
        .where(Delivery.subscriber_id == subscriber.id)
        .order_by(Delivery.scheduled_for.desc(), Delivery.id.desc())
        .limit(1)
    )
    return planned or latest_period(schedule_of(subscriber), now).key


def latest_run_id(session: Session, window: str = DEFAULT_WINDOW) -> int | None:
    """The id of the most recent finished scoring run of ``window``, if any."""
    run = latest_run(session, window)
    return run.id if run else None


def preview_digest(session: Session, settings: Settings, subscriber: Subscriber, period_key: str) -> Preview:
    """The digest ``subscriber`` gets (or got) for ``period_key``; writes nothing."""
    describe_period(period_key)  # raises ValueError for a malformed key
    delivery = session.scalar(
        sa.select(Delivery).where(Delivery.subscriber_id == subscriber.id, Delivery.period_key == period_key)
    )
    if delivery is not None:
        run_id = session.scalar(sa.select(Digest.scoring_run_id).where(Digest.id == delivery.digest_id))
        email = render_deliveries(session, settings, [delivery.id]).get(delivery.id)
        reason = None if email else (delivery.skip_reason or "the planned delivery has no papers")
        return Preview(period_key, email, reason, delivery, run_id)
    pinned = session.scalar(sa.select(Digest.scoring_run_id).where(Digest.period_key == period_key))
    run_id = pinned or latest_run_id(session, window_for(subscriber.frequency))
    if run_id is None:
        raise NothingToPreview("no scoring run yet: there is nothing to choose papers from")
    selection = select_for_subscribers(session, run_id, [subscriber], size=settings.digest_size)[
        subscriber.id
    ]
    if not selection.paper_ids:
        return Preview(period_key, None, selection.skip_reason, None, run_id)
    request = DigestRequest(
        PREVIEW_KEY, subscriber, period_key, selection.paper_ids, run_id, reasons=selection.reasons
    )
    email = render_digests(session, settings, [request]).get(PREVIEW_KEY)
    return Preview(period_key, email, None if email else "its papers no longer exist", None, run_id)

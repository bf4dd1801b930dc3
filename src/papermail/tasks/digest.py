"""Digest tasks: plan the due digests, send batches of deliveries, sweep up what fell through."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from papermail import clock, task_names
from papermail.config import get_settings
from papermail.db import session_scope, writer_session_factory
from papermail.delivery.plan import plan_and_queue
from papermail.delivery.send import send_batch
from papermail.delivery.sweep import sweep

log = logging.getLogger(__name__)

# The planner runs often so each subscriber's send hour is met within minutes, in every timezone.
PLAN_EVERY = timedelta(minutes=5)
SWEEP_EVERY = timedelta(minutes=1)

BEAT_SCHEDULE: dict = {
    "plan-due-digests": {"task": task_names.PLAN_DUE_DIGESTS, "schedule": PLAN_EVERY},
    "sweep-deliveries": {"task": task_names.SWEEP_DELIVERIES, "schedule": SWEEP_EVERY},
}


@shared_task(name=task_names.PLAN_DUE_DIGESTS)
def plan_due_digests() -> int:
    """Plan every due subscriber's delivery; each chunk's batches are queued once it commits."""
    settings = get_settings()
    with writer_session_factory(settings)() as session:
        planned = len(plan_and_queue(session, settings, now=clock.now()))
    if planned:
        log.info("planned %d deliveries", planned)
    return planned


@shared_task(name=task_names.SEND_DELIVERY_BATCH)
def send_delivery_batch(delivery_ids: list[int]) -> dict[str, int]:
    """Send these deliveries (the ones still claimable); return the counts per outcome."""
    return send_batch(get_settings(), delivery_ids).counts()


@shared_task(name=task_names.SWEEP_DELIVERIES)
def sweep_deliveries() -> dict[str, int]:
    """Settle expired claims and re-queue stale pending and due retry rows."""
    settings = get_settings()
    with session_scope(settings) as session:
        report = sweep(session, settings, now=clock.now())
    return report.counts()

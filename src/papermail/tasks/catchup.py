"""Catch-up tasks: on start, fetch stale sources now and backfill recent arXiv days in the background.

``papermail beat`` (and so ``papermail up``) queues ``papermail.catch_up`` when it starts; a worker
decides what is stale, so a restart with fresh data costs one query.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import date

from celery import shared_task

from papermail import clock, task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import get_settings
from papermail.db import writer_session_factory
from papermail.sources.catchup import plan_catch_up
from papermail.sources.runner import ARXIV, HUGGINGFACE, SKIPPED, run_fetch

log = logging.getLogger(__name__)

FETCH_TASKS = {ARXIV: task_names.FETCH_ARXIV, HUGGINGFACE: task_names.FETCH_HUGGINGFACE}
# A backfill day that found the arXiv lock taken (another arXiv fetch running) waits and tries again.
MAX_LOCKED_RETRIES = 30
LOCKED_RETRY_SECONDS = 5.0
BEAT_SCHEDULE: dict = {}


@shared_task(name=task_names.CATCH_UP)
def catch_up() -> dict:
    """Queue a fetch of every stale source, then the arXiv backfill, one day at a time."""
    settings = get_settings()
    with writer_session_factory(settings)() as session:
        plan = plan_catch_up(
            session,
            now=clock.now(),
            backfill_days=settings.backfill_days,
            categories=settings.arxiv_categories,
        )
        for source in plan.sources:
            enqueue_after_commit(session, FETCH_TASKS[source])
        if plan.days:
            days = [day.isoformat() for day in plan.days]
            enqueue_after_commit(session, task_names.BACKFILL_ARXIV_DAYS, days, plan.categories, 0)
        session.commit()
    if plan.sources:
        log.info("catching up: fetching %s now; backfilling %d arXiv days", plan.sources, len(plan.days))
    return {"sources": plan.sources, "days": [day.isoformat() for day in plan.days]}


@shared_task(name=task_names.BACKFILL_ARXIV_DAYS)
def backfill_arxiv_days(days: list[str], categories: list[str], locked_retries: int) -> str:
    """Backfill the first of ``days`` from the arXiv API, then queue the rest (paced, one at a time)."""
    settings = get_settings()
    # Consecutive tasks may run in different processes: keep arXiv's gap between API calls.
    time.sleep(LOCKED_RETRY_SECONDS if locked_retries else settings.arxiv_delay_seconds)
    wanted = dataclasses.replace(settings, arxiv_categories=tuple(categories) or settings.arxiv_categories)
    with writer_session_factory(settings)() as session:
        summary = run_fetch(session, wanted, ARXIV, day=date.fromisoformat(days[0]))
        if summary.status == SKIPPED and locked_retries < MAX_LOCKED_RETRIES:
            enqueue_after_commit(
                session, task_names.BACKFILL_ARXIV_DAYS, days, categories, locked_retries + 1
            )
        elif days[1:]:
            enqueue_after_commit(session, task_names.BACKFILL_ARXIV_DAYS, days[1:], categories, 0)
        session.commit()
    return summary.status

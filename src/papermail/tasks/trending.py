"""Trending tasks: rescore every recent paper.

The fetch tasks enqueue ``papermail.score_papers`` after each fetch commits, so a ranking follows
new signals within moments. Beat also runs it hourly as a safety net: even with no fetch (a source
down, the fetch worker stopped) velocity windows slide and papers age, so the ranking must move.
"""

import logging

from celery import shared_task
from celery.schedules import crontab

from papermail import task_names, trending
from papermail.config import get_settings
from papermail.db import session_scope

log = logging.getLogger(__name__)

# Half past the hour: away from the hourly Hugging Face fetch, whose own run follows it anyway.
SAFETY_NET_SCHEDULE = crontab(minute=30)

BEAT_SCHEDULE = {
    "score-papers-safety-net": {"task": task_names.SCORE_PAPERS, "schedule": SAFETY_NET_SCHEDULE},
}


@shared_task(name=task_names.SCORE_PAPERS)
def score_papers() -> int:
    """Rank every recent paper now, as a new scoring run; return the run's id."""
    settings = get_settings()
    with session_scope(settings) as session:
        summary = trending.score_papers(
            session, trending.TrendParams.from_settings(settings), keep_runs=settings.trend_keep_runs
        )
    log.info(
        "scoring run %d ranked %d papers as of %s (pruned %d old runs)",
        summary.run_id,
        summary.paper_count,
        summary.as_of.isoformat(),
        summary.pruned_runs,
    )
    return summary.run_id

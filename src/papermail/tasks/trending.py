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
def score_papers() -> dict[str, int]:
    """Rank every recent paper now, a new scoring run per window; return the run ids by window."""
    settings = get_settings()
    with session_scope(settings) as session:
        summaries = trending.score_windows(session, settings)
    for summary in summaries:
        log.info(
            "scoring run %d (%s window) ranked %d papers as of %s (pruned %d old runs)",
            summary.run_id,
            summary.window,
            summary.paper_count,
            summary.as_of.isoformat(),
            summary.pruned_runs,
        )
    return {summary.window: summary.run_id for summary in summaries}

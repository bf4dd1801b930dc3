"""Fetch tasks: arXiv after each weekday announcement, Hugging Face hourly, the community sources
(GitHub, Hacker News, Bluesky, Semantic Scholar) on their own schedules (all configurable).

Each task runs one fetch through :func:`papermail.sources.runner.run_fetch`, which takes the
source's lock (a second run of the same source is skipped, not queued) and, after it commits,
enqueues ``papermail.score_papers``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from celery import shared_task

from papermail import task_names
from papermail.config import get_settings
from papermail.db import writer_session_factory
from papermail.sources import runner
from papermail.sources.runner import ARXIV, HUGGINGFACE, run_fetch, source_off_reason
from papermail.tasks.schedules import SettingsSchedule, cron_schedule

# (source, task, the setting holding its crontab line)
SIGNAL_SCHEDULES = (
    (runner.GITHUB, task_names.FETCH_GITHUB, "github_fetch_cron"),
    (runner.HACKERNEWS, task_names.FETCH_HACKERNEWS, "hn_fetch_cron"),
    (runner.BLUESKY, task_names.FETCH_BLUESKY, "bluesky_fetch_cron"),
    (runner.SEMANTIC_SCHOLAR, task_names.FETCH_SEMANTIC_SCHOLAR, "s2_fetch_cron"),
)


class _FetchSchedule(SettingsSchedule):
    """The fetch tasks' ``BEAT_SCHEDULE``: arXiv, Hugging Face and the community sources."""

    def _entries(self) -> dict[str, dict[str, Any]]:
        settings = get_settings()
        return {
            "fetch-arxiv": {
                "task": task_names.FETCH_ARXIV,
                "schedule": cron_schedule(settings.arxiv_fetch_cron),
            },
            "fetch-huggingface": {
                "task": task_names.FETCH_HUGGINGFACE,
                "schedule": cron_schedule(settings.hf_fetch_cron),
            },
            **{
                f"fetch-{source}": {"task": task, "schedule": cron_schedule(getattr(settings, cron))}
                for source, task, cron in SIGNAL_SCHEDULES
                if not source_off_reason(settings, source)
            },
        }


BEAT_SCHEDULE = _FetchSchedule()


def _fetch(source: str, day: str | None) -> dict[str, Any]:
    settings = get_settings()
    with writer_session_factory(settings)() as session:
        summary = run_fetch(session, settings, source, day=date.fromisoformat(day) if day else None)
    return summary.as_dict()


@shared_task(name=task_names.FETCH_ARXIV)
def fetch_arxiv(day: str | None = None) -> dict[str, Any]:
    """Fetch today's arXiv listing (or backfill ``day``, YYYY-MM-DD, from the API)."""
    return _fetch(ARXIV, day)


@shared_task(name=task_names.FETCH_HUGGINGFACE)
def fetch_huggingface(day: str | None = None) -> dict[str, Any]:
    """Fetch Hugging Face daily papers and append their signals (``day``: that day's list)."""
    return _fetch(HUGGINGFACE, day)


@shared_task(name=task_names.FETCH_GITHUB)
def fetch_github() -> dict[str, Any]:
    """Snapshot the GitHub stars of recent papers' repositories."""
    return _fetch(runner.GITHUB, None)


@shared_task(name=task_names.FETCH_HACKERNEWS)
def fetch_hackernews() -> dict[str, Any]:
    """Snapshot the points and comments of Hacker News stories linking recent papers."""
    return _fetch(runner.HACKERNEWS, None)


@shared_task(name=task_names.FETCH_BLUESKY)
def fetch_bluesky() -> dict[str, Any]:
    """Snapshot the likes, reposts and quotes of Bluesky posts linking recent papers."""
    return _fetch(runner.BLUESKY, None)


@shared_task(name=task_names.FETCH_SEMANTIC_SCHOLAR)
def fetch_semantic_scholar() -> dict[str, Any]:
    """Snapshot recent papers' citations on Semantic Scholar, and store their TL;DRs."""
    return _fetch(runner.SEMANTIC_SCHOLAR, None)

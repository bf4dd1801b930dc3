"""The settings' crontab lines as beat schedules, read when beat reads them (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from celery.schedules import crontab


def cron_schedule(line: str) -> crontab:
    """A Celery crontab from a validated ``minute hour day month weekday`` line (UTC)."""
    minute, hour, day_of_month, month_of_year, day_of_week = line.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


class SettingsSchedule(Mapping[str, dict[str, Any]]):
    """A ``BEAT_SCHEDULE`` whose ``_entries`` are built from the settings when beat reads it
    (never at import time)."""

    def _entries(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._entries()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

"""One arXiv API pace for the whole deployment: fetches, backfills and look-ups share it.

arXiv asks for one call every few seconds from a client, not from each worker: a pacer per task let
74 look-ups go out 13 ms apart. Every call reserves the next free slot on one shared timeline,
``PAPERMAIL_ARXIV_DELAY_SECONDS`` apart, and sleeps until it. The timeline is a Redis key when the
broker is Redis, the database's ``rate_limit_hits`` on PostgreSQL (both as for sending mail), and a
locked file in the data directory on the embedded SQLite setup: a second SQLite writer would wait
on the fetch's own open transaction.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from papermail.config import Settings
from papermail.sending.pacing import DatabaseSendPacer, RedisSendPacer


class FileTimeline:
    """The next free slot (wall-clock seconds) in a file, read and moved under an exclusive lock."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path, self.interval = path, interval

    def reserve(self) -> float:
        """Seconds to wait for this call's slot."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                next_free = float(handle.read().strip() or 0)
            except ValueError:  # a torn or foreign file: start afresh
                next_free = 0.0
            now = time.time()
            slot = max(now, next_free)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{slot + self.interval:.6f}")
            handle.flush()
        return slot - now


@dataclass
class SharedPacer:
    """``wait()`` for the next slot of a shared timeline; the same interface as ``arxiv_api.Pacer``."""

    reserve: Callable[[], float]
    sleep: Callable[[float], None] = time.sleep

    def wait(self) -> float:
        """Sleep until this call's slot; the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)


def arxiv_pacer_for(settings: Settings) -> SharedPacer:
    """The deployment's arXiv API pacer (one per process and settings)."""
    return _arxiv_pacer(settings)


@cache
def _arxiv_pacer(settings: Settings) -> SharedPacer:
    interval = max(settings.arxiv_delay_seconds, 0.0)
    if interval == 0:
        return SharedPacer(lambda: 0.0)
    key = f"papermail:{settings.celery_queue}:arxiv-api"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return SharedPacer(RedisSendPacer(settings.broker_url, key, 1 / interval).reserve)
    if settings.database_url.startswith("postgresql"):
        return SharedPacer(DatabaseSendPacer(settings, key, 1 / interval).reserve)
    return SharedPacer(FileTimeline(settings.data_dir / "arxiv-api.pace", interval).reserve)

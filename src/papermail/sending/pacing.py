"""Send pacing: one send rate across every worker on every machine (Celery's ``rate_limit`` is per worker).

Each message reserves the next free slot on a shared timeline, spaced ``1 / rate`` seconds apart, and
its sender sleeps until that slot. With Redis as the broker the timeline is one Redis key updated by
a Lua script (atomic, one round trip per message); with the embedded SQLite setup it lives in the
database's ``rate_limit_hits`` table, serialised by the database's own write lock.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cache

import redis
import sqlalchemy as sa

from papermail import clock
from papermail.config import Settings
from papermail.db import session_factory
from papermail.db.bookkeeping import RateLimitHit
from papermail.mail.outbox import NoPacing, SendPacer

# Slots older than this are of no more use: they are deleted as new ones are reserved.
DB_HISTORY = timedelta(minutes=1)
_PG_LOCK_ID = 0x5041_5045_524D  # an arbitrary constant naming the advisory lock ("PAPERM")

# KEYS[1] = the timeline key; ARGV[1] = seconds per message. Returns the wait, as a string
# (Lua numbers become integers in Redis replies).
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(next_free, now)
local ttl_ms = math.ceil((slot + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', slot + interval), 'PX', ttl_ms)
return string.format('%.6f', slot - now)
"""


class RedisSendPacer:
    """The shared timeline in one Redis key."""

    def __init__(self, url: str, key: str, rate: float) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self.key, self.interval = key, 1.0 / rate
        self._reserve = self.client.register_script(_RESERVE_SLOT)

    def wait_turn(self) -> None:
        _sleep_for(self.reserve())

    def reserve(self) -> float:
        """Take the next free slot; the seconds until it."""
        return float(self._reserve(keys=[self.key], args=[f"{self.interval:.6f}"]))


class DatabaseSendPacer:
    """The shared timeline as rows of ``rate_limit_hits``, one per reserved slot."""

    def __init__(self, settings: Settings, key: str, rate: float) -> None:
        self.factory = session_factory(settings)
        self.key, self.interval = key, timedelta(seconds=1.0 / rate)

    def wait_turn(self) -> None:
        _sleep_for(self.reserve())

    def reserve(self) -> float:
        """Take the next free slot; the seconds until it."""
        with self.factory.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_ID)))
            # On SQLite this write comes first on purpose: it takes the database's write lock
            # before the read, so two processes can't reserve the same slot.
            session.execute(
                sa.delete(RateLimitHit).where(
                    RateLimitHit.key == self.key, RateLimitHit.at < clock.now() - DB_HISTORY
                )
            )
            # The time is read only now, holding the lock: read before waiting for it, the slot
            # could already be past on return and go out in a burst with the next one.
            now = clock.now()
            last = session.scalar(sa.select(sa.func.max(RateLimitHit.at)).where(RateLimitHit.key == self.key))
            slot = max(now, last + self.interval) if last else now
            session.add(RateLimitHit(key=self.key, at=slot))
        return (slot - clock.now()).total_seconds()


def _sleep_for(wait: float) -> None:
    if wait > 0:
        time.sleep(wait)


def send_pacer_for(settings: Settings) -> SendPacer:
    """The pacer for these settings: none, Redis-backed, or database-backed."""
    return _send_pacer(settings)


@cache
def _send_pacer(settings: Settings) -> SendPacer:
    if settings.send_rate <= 0:
        return NoPacing()
    # One timeline per deployment: everything sharing the queue shares the relay.
    key = f"papermail:{settings.celery_queue}:send-rate"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisSendPacer(settings.broker_url, key, settings.send_rate)
    return DatabaseSendPacer(settings, key, settings.send_rate)

"""Signup limits (per IP, per address) shared by every web process on every machine: Redis or the database.

A limit is a sliding window: at most ``rate.count`` allowed events for a key in the last
``rate.window``. Keys never hold an address in clear (callers pass :func:`address_key`).
With a Redis broker the counters live in Redis (one atomic script per check); otherwise in the
``rate_limit_hits`` table, in the caller's transaction.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Protocol

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Rate, Settings
from papermail.db.bookkeeping import RateLimitHit
from papermail.redaction import email_hash

REDIS_KEY_PREFIX = "papermail:ratelimit:"
# An IPv6 subscriber gets a whole /64 (2^64 addresses): limiting each address would limit nothing.
IPV6_PREFIX = 64
SIGNUP_BUDGET_KEY = "signup:everyone"
REDIS_TIMEOUT_SECONDS = 2.0

# KEYS[1] the window's sorted set; ARGV: now (ms), window (ms), limit, a unique member.
# Atomic in Redis, so concurrent workers can never both take the last slot.
_SLIDING_WINDOW_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class LimiterUnavailable(Exception):
    """The limits can't be checked (Redis is unreachable): nothing may be done without them."""


class RateLimiter(Protocol):
    """Counts an event for ``key`` and says whether it is within ``rate``."""

    def allow(self, session: Session, key: str, rate: Rate) -> bool: ...


def address_key(kind: str, email: str) -> str:
    """A limit key for a (normalised) address that doesn't reveal the address."""
    return f"{kind}:{email_hash(email)[:32]}"


def mailbox_key(kind: str, email: str) -> str:
    """:func:`address_key` of the mailbox: ``ada+1@`` and ``ada+2@`` reach one inbox, so count as one."""
    local, at, domain = email.rpartition("@")
    return address_key(kind, f"{local.split('+', 1)[0]}{at}{domain}")


def ip_key(kind: str, ip: str | None) -> str:
    """A limit key for a client: its IPv4 address, or its IPv6 /64 (one subscriber's whole network)."""
    return f"{kind}:ip:{client_network(ip)}"


def client_network(ip: str | None) -> str:
    """``203.0.113.9`` for ``203.0.113.009`` or ``::ffff:203.0.113.9``; ``2001:db8:1:2::/64`` for IPv6."""
    if not ip:
        return "unknown"
    text = ip.strip()
    if "." in text and ":" not in text:
        # ipaddress refuses leading zeros; they are decimal to every server that accepts them.
        parts = text.split(".")
        if len(parts) == 4 and all(part.isdigit() for part in parts):
            text = ".".join(str(int(part)) for part in parts)
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class RedisRateLimiter:
    """Sliding-window limits in Redis, shared by every process that uses the same server."""

    def __init__(self, url: str, prefix: str = REDIS_KEY_PREFIX) -> None:
        # A Redis that doesn't answer must cost a visitor seconds, not the proxy's whole timeout.
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        self.prefix = prefix
        self._script = self.client.register_script(_SLIDING_WINDOW_LUA)

    def allow(self, session: Session, key: str, rate: Rate) -> bool:
        now_ms = int(clock.now().timestamp() * 1000)
        window_ms = int(rate.window.total_seconds() * 1000)
        member = f"{now_ms}-{uuid.uuid4().hex}"
        try:
            allowed = self._script(keys=[self.prefix + key], args=[now_ms, window_ms, rate.count, member])
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"Redis rate limiter: {type(exc).__name__}: {exc}") from exc
        return bool(allowed)


class DatabaseRateLimiter:
    """Sliding-window limits in the ``rate_limit_hits`` table, in the caller's transaction.

    The hit is written *before* counting and taken back if it is over the limit: on SQLite that
    makes the transaction a writer at once (a read-then-write transaction can fail with "database
    is locked" under concurrency). Like Redis, only allowed events count. On PostgreSQL two
    concurrent requests for one key may both pass at the boundary; callers that need an exact
    count (confirmations per address) hold a row lock around the check.
    """

    def allow(self, session: Session, key: str, rate: Rate) -> bool:
        now = clock.now()
        hit = RateLimitHit(key=key, at=now)
        session.add(hit)
        session.flush()
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(RateLimitHit)
            .where(RateLimitHit.key == key, RateLimitHit.at > now - rate.window)
        )
        if (count or 0) > rate.count:
            session.delete(hit)
            session.flush()
            return False
        return True


def limiter_for(settings: Settings) -> RateLimiter:
    """Redis when the broker is Redis (already shared by every machine), else the database."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(settings.broker_url, prefix=redis_key_prefix(settings.celery_queue))
    return DatabaseRateLimiter()


def redis_key_prefix(celery_queue: str) -> str:
    """The limits' keys are per installation, like its queue: two sharing a Redis don't mix counts."""
    return f"{REDIS_KEY_PREFIX}{celery_queue}:"


def longest_window(settings: Settings) -> Rate:
    """The web limit with the longest window: hits older than it count for nothing."""
    return max(settings.signup_rate_per_ip, settings.confirmations_per_address, key=lambda r: r.window)


def purge_hits(session: Session, older_than: datetime) -> int:
    """Delete database hits older than ``older_than``; return how many."""
    result = session.execute(
        sa.delete(RateLimitHit).where(RateLimitHit.at < older_than),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount or 0

"""The HTTP client for feeds: timeouts, an honest User-Agent, retries with backoff, conditional GET.

Retries cover what is worth retrying: connection errors, timeouts, 5xx and 429, waiting
exponentially longer each time (with jitter, so many workers don't retry in step) or as long as
``Retry-After`` asks. Other 4xx answers are final. Conditional GET sends the validators stored in
:class:`~papermail.db.bookkeeping.HttpCache` from the last 200, so an unchanged feed is a cheap 304.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import __version__, clock
from papermail.config import Settings
from papermail.db.bookkeeping import HttpCache

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After longer than this is a "come back later", not a retry: it would outlast the task.
MAX_RETRY_WAIT_SECONDS = 120.0
JITTER = 0.25  # up to +25% on each backoff


class FetchError(Exception):
    """A URL could not be fetched; ``str()`` is one line saying why. ``body`` is any answer we got."""

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason} ({url})")
        self.url, self.reason, self.status, self.body = url, reason, status, body
        self.headers = {name.lower(): value for name, value in (headers or {}).items()}


@dataclass(frozen=True, slots=True)
class Validators:
    """The ETag and Last-Modified of a previous 200, sent back as If-None-Match/If-Modified-Since."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful answer: 2xx with its body, or 304 with none."""

    url: str
    status: int
    content: bytes
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def user_agent(settings: Settings) -> str:
    """Names the service, the instance and whom to contact, as arXiv and Hugging Face ask."""
    return f"papermail/{__version__} (+{settings.base_url}; mailto:{settings.fetch_contact})"


class HttpClient:
    """A polite, retrying HTTP GET. ``sleep`` is injectable so tests never wait for real."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout_seconds: float,
        retries: int,
        backoff_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float = MAX_RETRY_WAIT_SECONDS,
    ) -> None:
        self.timeout_seconds, self.retries, self.backoff_seconds = timeout_seconds, retries, backoff_seconds
        self.sleep, self.max_wait_seconds = sleep, max_wait_seconds
        self.attempts = 0  # requests sent, retries included: what a request budget counts
        self._client = httpx.Client(
            timeout=timeout_seconds,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> HttpClient:
        """A client configured from the fetch settings."""
        return cls(
            user_agent=user_agent(settings),
            timeout_seconds=settings.http_timeout_seconds,
            retries=settings.fetch_retries,
            backoff_seconds=settings.fetch_backoff_seconds,
            sleep=sleep,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        validators: Validators | None = None,
        before_attempt: Callable[[], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """GET ``url``; retry what is transient; raise FetchError with the reason when it gives up.

        ``before_attempt`` runs before every attempt, retries included (the arXiv API's pacing).
        """
        return self.request(
            "GET", url, params=params, validators=validators, before_attempt=before_attempt, headers=headers
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        validators: Validators | None = None,
        before_attempt: Callable[[], None] | None = None,
        headers: Mapping[str, str] | None = None,
        json: object = None,
    ) -> Fetched:
        """Like :meth:`get`, for any method; ``json`` is sent as the body. Every attempt is counted."""
        full_url = str(httpx.URL(url, params=params))
        headers = {**_conditional_headers(validators), **(headers or {})}
        reason, status, body = "", None, b""
        for attempt in range(self.retries + 1):
            if before_attempt:
                before_attempt()
            self.attempts += 1
            try:
                response = self._client.request(method, full_url, headers=headers, json=json)
            except httpx.TimeoutException:
                reason, wait = f"timed out after {self.timeout_seconds:g} s", self._backoff(attempt)
            except httpx.HTTPError as exc:  # refused, reset, DNS, TLS, a broken stream...
                if _name_not_resolved(exc):
                    # No DNS answer means no network (or a typo): retrying only makes people wait.
                    host = httpx.URL(full_url).host
                    raise FetchError(
                        full_url, f"cannot resolve {host}: no network or DNS (not retried)"
                    ) from None
                reason, wait = f"connection failed: {exc or type(exc).__name__}", self._backoff(attempt)
            else:
                status, body = response.status_code, response.content
                if status == 304 or 200 <= status < 300:
                    return Fetched(full_url, status, body, _validators(response, validators))
                reason = f"HTTP {status} {response.reason_phrase}".strip()
                if status not in RETRYABLE_STATUSES and status < 500:
                    raise FetchError(full_url, reason, status=status, body=body, headers=response.headers)
                wait = max(self._backoff(attempt), _retry_after_seconds(response) or 0.0)
            if attempt == self.retries:
                break
            if wait > self.max_wait_seconds:
                raise FetchError(
                    full_url, f"{reason}; asked to retry after {wait:.0f} s", status=status, body=body
                )
            self.sleep(wait)
        attempts = self.retries + 1
        tried = f"gave up after {attempts} attempts" if attempts > 1 else "no retries configured"
        raise FetchError(full_url, f"{reason} ({tried})", status=status, body=body)

    def _backoff(self, attempt: int) -> float:
        return self.backoff_seconds * 2**attempt * (1 + random.uniform(0, JITTER))


def _name_not_resolved(exc: BaseException) -> bool:
    """True when the error comes from a failed DNS lookup (socket.gaierror anywhere in its chain)."""
    seen: BaseException | None = exc
    for _ in range(10):  # chains are short; a cycle must not hang us
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    headers = {}
    if validators and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _validators(response: httpx.Response, sent: Validators | None) -> Validators:
    if response.status_code == 304:  # a 304 may omit them; the ones we sent are still current
        return sent or Validators()
    return Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - clock.now()).total_seconds())


# -- the conditional GET cache ---------------------------------------------------------------------


def load_validators(session: Session, url: str) -> Validators | None:
    """The validators stored for ``url`` by its last 200, if any."""
    row = session.get(HttpCache, url)
    return Validators(row.etag, row.last_modified) if row else None


def store_validators(session: Session, fetched: Fetched) -> None:
    """Remember a 200's validators for the next conditional GET (or forget stale ones)."""
    if fetched.not_modified:
        return
    etag, last_modified = fetched.validators.etag, fetched.validators.last_modified
    if not etag and not last_modified:
        session.execute(sa.delete(HttpCache).where(HttpCache.url == fetched.url))
        return
    session.merge(
        HttpCache(
            url=fetched.url,
            etag=etag[:500] if etag else None,
            last_modified=last_modified[:100] if last_modified else None,
            fetched_at=clock.now(),
        )
    )

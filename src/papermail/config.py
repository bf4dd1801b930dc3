"""Settings: every option comes from a ``PAPERMAIL_*`` environment variable (or ``.env``).

The defaults are the embedded single-machine setup: SQLite and a SQLite-backed broker in the data
directory, and mail written to a file outbox there. Production points the URLs at PostgreSQL, Redis
and an SMTP relay.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from papermail.categories import canonical_categories

PREFIX = "PAPERMAIL_"
SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES, MIN_SECRET_BITS = 32, 128
MAKE_SECRET_HINT = "make one with `papermail secret`"  # noqa: S105 - advice, not a secret
ENVIRONMENTS = ("development", "production")
MAIL_SCHEMES = ("smtp", "smtps", "smtp+starttls", "file", "console", "memory")
LATE_POLICIES = ("send-late-once", "skip")
MAX_DIGEST_SIZE = 50

log = logging.getLogger(__name__)
T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{PREFIX}{variable}: {mask_secrets(problem)}")
        self.variable = PREFIX + variable


@dataclass(frozen=True, repr=False)
class Settings:
    """The effective configuration; build it with :func:`load_settings`."""

    env: str
    data_dir: Path
    database_url: str
    broker_url: str
    mail_url: str
    base_url: str
    mail_from: str
    secret_key: str
    old_secret_keys: tuple[str, ...]
    postal_address: str
    arxiv_categories: tuple[str, ...]
    arxiv_rss_url: str
    arxiv_api_url: str
    hf_api_url: str
    http_timeout_seconds: float
    digest_size: int
    smtp_timeout_seconds: float
    celery_queue: str
    beat_lease_seconds: float
    # -- fetch: politeness towards arXiv and Hugging Face, and when beat fetches --
    fetch_contact: str
    fetch_retries: int
    fetch_backoff_seconds: float
    arxiv_delay_seconds: float
    arxiv_fetch_cron: str
    hf_fetch_cron: str
    backfill_days: int  # on start with stale data: arXiv days fetched in the background
    hf_refresh_days: int
    hf_refresh_max_requests: int
    # -- community signals: GitHub stars, Hacker News, Bluesky, Semantic Scholar (README: sources) --
    github_api_url: str
    github_token: str | None
    github_fetch_cron: str
    github_max_requests: int
    hn_api_url: str
    hn_fetch_cron: str
    hn_max_requests: int
    bluesky_api_url: str
    bluesky_handle: str | None
    bluesky_app_password: str | None
    bluesky_fetch_cron: str
    bluesky_max_requests: int
    s2_api_url: str
    s2_api_key: str | None
    s2_fetch_cron: str
    s2_max_requests: int
    # web: signup, confirmation and rate limits
    confirm_hours: float
    unconfirmed_days: float
    signup_rate_per_ip: Rate
    confirmations_per_address: Rate
    signup_budget: Rate
    proxy_count: int
    record_consent_ip: bool
    # -- sending: planning and delivering digests --
    send_batch_size: int
    smtp_max_per_connection: int
    send_rate: float  # messages per second across all workers; 0 = no limit
    send_lease_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float
    give_up_hours: float
    late_limit_hours: float
    late_policy: str
    max_worker_deaths: int
    breaker_threshold: int
    requeue_after_seconds: float
    dkim_key_path: Path | None
    dkim_selector: str
    dkim_domain: str | None
    # -- bounce intake: the inbound SMTP server, provider webhooks and the IMAP mailbox --
    inbound_bind: str | None
    inbound_max_bytes: int
    inbound_max_connections: int
    inbound_connections_per_ip: int
    inbound_rate_per_ip: Rate
    webhook_max_age_seconds: float
    webhook_secret: str
    ses_topic_arns: tuple[str, ...]
    sns_cert_hosts: tuple[str, ...]
    mailgun_signing_key: str
    sendgrid_public_key: str
    postmark_webhook_auth: str
    bounce_imap_url: str | None
    bounce_imap_ca_file: Path | None
    bounce_imap_cron: str
    # -- trending: the trendiness formula's parameters, explained in docs/trending.md --
    trend_half_life_hours: float
    trend_volume_weight: float
    trend_weight_upvotes: float
    trend_weight_github_stars: float
    trend_weight_comments: float
    trend_weight_hn_points: float
    trend_weight_hn_comments: float
    trend_weight_bluesky_likes: float
    trend_weight_bluesky_reposts: float
    trend_weight_citations: float
    trend_max_age_days: float
    trend_keep_runs: int
    # -- bounces: VERP return paths and the hard-bounce pause; docs/bounces.md --
    bounce_address: str | None  # "bounces@example.org"; None = no VERP, the From address is the sender
    bounce_pause_rate: float  # hard bounces among a send's first deliveries above which it pauses

    @property
    def is_production(self) -> bool:
        """True when secrets and real addresses are required."""
        return self.env == "production"

    def __repr__(self) -> str:
        # Never let a secret or a URL password reach a log line or a traceback.
        shown = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Settings({shown})"

    def masked(self) -> dict[str, str]:
        """The settings as strings, with secrets and URL passwords hidden, for display."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                text = "****" if value else "(not set)"
            elif isinstance(value, Rate):
                text = value.spec
            elif value is None:
                text = "(not set)"
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = mask_secrets(str(value))
            shown[f.name] = text
        return shown


# A URL in a text: its scheme, then everything up to white space or a quote.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s'\"<>]+)")
# A query parameter named like a secret (``password``, ``api_key``, ``access_token``, ``sig`` …).
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][^=&;#\s]*(?:passw|pass\b|pwd|token|key|secret|signature|sig\b)[^=&;#\s]*=)[^&;#\s]*"
)
MASK = "****"
MIN_MASKED_PIECE = 3  # shorter pieces of a secret would mask common text, and reveal little
_MASKED_PARAM = rf"\1{MASK}"


def mask_secrets(text: str, *urls: str) -> str:
    """``text`` with every URL's userinfo and secret-named query parameters replaced by ``****``.

    The userinfo runs to the last ``@`` before the query, as a URL parser reads it, so a password
    holding a stray ``@`` is hidden whole; ``urls`` (values as given, which may hold characters a
    URL should have escaped, even spaces) are masked wherever they occur first.
    """
    for url in urls:
        if url:
            text = text.replace(url, _mask_url(url))
            # A driver that split the URL its own way may quote any piece of a secret.
            for piece in sorted(_secret_pieces(url), key=len, reverse=True):
                text = text.replace(piece, MASK)
    return _URL.sub(lambda m: _mask_url(m[0]), text)


def _secret_pieces(url: str) -> set[str]:
    """The password of ``url``, its parts between ``@``s, and its secret-named parameters' values."""
    head, _mark, query = _split_query(url.partition("://")[2])
    password = head.rpartition("@")[0].partition(":")[2]
    values = [m[0].partition("=")[2] for m in _SECRET_PARAM.finditer("?" + query)]
    return {p for p in (password, *password.split("@"), *values) if len(p) >= MIN_MASKED_PIECE}


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head, mark, query = _split_query(rest)
    userinfo, at, host = head.rpartition("@")
    if (
        at
        and userinfo != MASK
        and not userinfo.endswith(f":{MASK}")
        and (":" in userinfo or "/" not in userinfo)
    ):
        user, colon, _password = userinfo.partition(":")
        head = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = _SECRET_PARAM.sub(_MASKED_PARAM, mark + query)[len(mark) :]
    return f"{scheme}://{head}{mark}{query}"


def _split_query(rest: str) -> tuple[str, str, str]:
    """``rest`` before its query or fragment, the ``?``/``#`` mark, and what follows it."""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    return (rest, "", "") if cut < 0 else (rest[:cut], rest[cut], rest[cut + 1 :])


class SecretMaskingFilter(logging.Filter):
    """A handler filter that hides URL passwords in every log line (message and traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def mask_log_handlers(*loggers: logging.Logger) -> None:
    """Install :class:`SecretMaskingFilter` on the handlers of ``loggers`` (default: the root)."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, SecretMaskingFilter) for f in handler.filters):
                handler.addFilter(SecretMaskingFilter())


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most ``count`` events per ``window``; ``spec`` is how it was written."""

    count: int
    window: timedelta
    spec: str


RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SECRET_FIELDS = (
    "secret_key",
    "old_secret_keys",
    "webhook_secret",
    "mailgun_signing_key",
    "postmark_webhook_auth",
    "github_token",
    "bluesky_app_password",
    "s2_api_key",
)


# -- parsers: each takes the raw string and returns the value or raises ValueError ----------------


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None


def _finite_float(raw: str) -> float:
    value = _number(raw)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _positive_float(raw: str) -> float:
    value = _finite_float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = _number(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number")
    return value


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """A parser of whole numbers from ``low`` (to ``high``), its error naming the range and the text."""
    if high is not None:
        wanted = f"a whole number from {low} to {high}"
    else:
        wanted = "a positive whole number" if low == 1 else f"{low} or a positive whole number"

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be {wanted}, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {wanted}, got {raw!r}")
        return value

    return parse


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _weight(raw: str) -> float:
    value = _finite_float(raw)
    if value < 0:
        raise ValueError("must be zero (ignore the signal) or a positive number")
    return value


def _fraction(raw: str) -> float:
    value = _finite_float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {raw!r}")
    return raw.strip()


def _base_url(raw: str) -> str:
    return _http_url(raw).rstrip("/")


def _checked_url(raw: str, network_schemes: tuple[str, ...]) -> str:
    """``raw`` if its port is a number and a network URL names a host; the message masks secrets."""
    parts = urlsplit(raw.strip())
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"has a port that is not a number in {raw!r}") from None
    if parts.scheme in network_schemes and not parts.hostname:
        raise ValueError(f"must name a host, got {raw!r}")
    return raw.strip()


def _database_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError(f"must be a sqlite:/// or postgresql+psycopg:// URL, got {raw!r}")
    if scheme.startswith("postgresql"):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(raw)
        except (ArgumentError, ValueError):
            raise ValueError(f"is not a valid database URL: {raw!r}") from None
    return _checked_url(raw, ())


def _broker_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "sqla+sqlite", "sqla+postgresql+psycopg", "memory"):
        raise ValueError(f"must be redis://… or sqla+sqlite:///…, got {raw!r}")
    return _checked_url(raw, ("redis", "rediss"))


def _mail_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in MAIL_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(MAIL_SCHEMES)}, got {raw!r}")
    return _checked_url(raw, ("smtp", "smtps", "smtp+starttls"))


def _address(raw: str) -> str:
    from email.headerregistry import Address

    _name, addr = parseaddr(raw)
    if "@" not in addr or "\n" in raw or "\r" in raw:
        raise ValueError(f"must be an email address like 'papermail <digest@example.org>', got {raw!r}")
    Address(addr_spec=addr)  # raises on malformed local part or domain
    return raw.strip()


def _cron(raw: str) -> str:
    from celery.schedules import ParseException, crontab

    parts = raw.split()
    if len(parts) != 5:
        raise ValueError(f"must be a crontab line 'minute hour day month weekday' (UTC), got {raw!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except (ValueError, ParseException) as exc:
        raise ValueError(f"bad crontab {raw!r}: {exc}") from None
    return " ".join(parts)


def _categories(raw: str) -> tuple[str, ...]:
    values = tuple(canonical_categories(raw.split(",")))  # UnknownCategory is a ValueError
    if not values:
        raise ValueError("must list at least one arXiv category, e.g. cs.LG")
    return values


def _key_list(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _rate(raw: str) -> Rate:
    """Parse ``COUNT/WINDOW`` such as ``10/h``, ``3/6h`` or ``5/10m`` (units s, m, h, d)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", raw)
    if not match or int(match[1]) == 0 or match[2] == "0":
        raise ValueError(f"must look like 10/h or 3/6h (count/window, units s m h d), got {raw!r}")
    seconds = int(match[2] or 1) * RATE_UNITS[match[3]]
    return Rate(count=int(match[1]), window=timedelta(seconds=seconds), spec=raw.strip())


def _late_policy(raw: str) -> str:
    if raw not in LATE_POLICIES:
        raise ValueError(f"must be one of {', '.join(LATE_POLICIES)}, got {raw!r}")
    return raw


def _optional_domain(raw: str) -> str | None:
    domain = raw.strip().lower()
    if not domain:
        return None
    if not all(label and len(label) < 64 for label in domain.split(".")) or any(
        ch.isspace() or ch in "@/<>" for ch in domain
    ):
        raise ValueError(f"must be a domain name like example.org, got {raw!r}")
    return domain


def _dkim_key_path(raw: str) -> Path | None:
    if not raw.strip():
        return None
    path = Path(raw.strip()).expanduser()
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise ValueError(f"cannot read the DKIM private key: {exc.strerror or exc}") from None
    if b"PRIVATE KEY-----" not in head:
        raise ValueError(f"{path} is not a PEM private key")
    return path


def _env_name(raw: str) -> str:
    if raw not in ENVIRONMENTS:
        raise ValueError(f"must be one of {', '.join(ENVIRONMENTS)}, got {raw!r}")
    return raw


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {raw!r}") from exc
    return raw


class _Reader:
    """Reads ``PAPERMAIL_*`` values from a mapping, turning parse failures into ConfigError."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.defaulted: dict[str, str] = {}  # variable -> the default used, for `papermail config`
        self.read: list[str] = []  # every variable looked at, in order

    def get(self, name: str, parse: Callable[[str], T], default: str | None) -> T:
        raw = self.values.get(PREFIX + name)
        self.read.append(name)
        if raw is None or raw == "":
            if default is None:
                raise ConfigError(name, "is required but not set")
            raw = self.defaulted[name] = default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, mask_secrets(str(exc), raw)) from None

    def raw(self, name: str, *, listed: bool = True) -> str:
        """The text as given ("" when unset); ``listed=False`` keeps it out of `papermail config`."""
        if listed:
            self.read.append(name)
        return self.values.get(PREFIX + name, "")


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge ``.env`` (if present in the working directory) under the process environment."""
    merged = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    merged.update(os.environ if environ is None else environ)
    return merged


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise ConfigError naming the first bad variable."""
    return _load(_Reader(environment(environ) if environ is None else environ))


@dataclass(frozen=True)
class SettingSource:
    """One ``PAPERMAIL_*`` variable: the text in effect and where it came from."""

    variable: str
    value: str
    source: str  # "environment", ".env", "default" or "generated"


SECRET_VARIABLES = tuple(name.upper() for name in SECRET_FIELDS)


def setting_sources() -> list[SettingSource]:
    """Every variable papermail reads, its value (secrets masked) and where it came from."""
    dotenv = {k for k, v in dotenv_values(".env").items() if v is not None}
    reader = _Reader(environment())
    _load(reader, make_secret=lambda _data_dir: "")  # only looking: never write a key file
    sources = []
    for name in dict.fromkeys(reader.read):
        variable = PREFIX + name
        if name in reader.defaulted:
            value, source = reader.defaulted[name], "default"
        elif reader.values.get(variable):
            value = reader.values[variable]
            source = "environment" if variable in os.environ or variable not in dotenv else ".env"
        else:
            value, source = "", "generated" if name == "SECRET_KEY" else "default"
        if name in SECRET_VARIABLES:
            value = "****" if value or source == "generated" else "(not set)"
        sources.append(SettingSource(variable, mask_secrets(value, value) or "(not set)", source))
    return sources


def _load(read: _Reader, make_secret: Callable[[Path], str] | None = None) -> Settings:
    env = read.get("ENV", _env_name, "development")
    data_dir = Path(read.get("DATA_DIR", _text, "./var")).expanduser().resolve()
    secret_key = read.raw("SECRET_KEY")
    if not secret_key:
        if env == "production":
            raise ConfigError("SECRET_KEY", f"is required when PAPERMAIL_ENV=production; {MAKE_SECRET_HINT}")
        secret_key = (make_secret or _development_secret)(data_dir)
    old_secret_keys = read.get("OLD_SECRET_KEYS", _key_list, "")
    if env == "production":
        for name, keys in (("SECRET_KEY", [secret_key]), ("OLD_SECRET_KEYS", old_secret_keys)):
            if any(not is_strong_secret(key) for key in keys):
                raise ConfigError(
                    name, f"is too weak for production: {MIN_SECRET_BYTES}+ random bytes; {MAKE_SECRET_HINT}"
                )
    mail_from = read.get("FROM", _address, "papermail <papermail@localhost>")
    if read.raw("TREND_WINDOW_HOURS", listed=False):
        # A silent no-op would mislead: each digest now ranks over its own period.
        raise ConfigError(
            "TREND_WINDOW_HOURS", "was removed: daily digests rank by 24 hours, weekly ones by 7 days"
        )
    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=read.get("DATABASE_URL", _database_url, f"sqlite:///{data_dir}/papermail.db"),
        broker_url=read.get("BROKER_URL", _broker_url, f"sqla+sqlite:///{data_dir}/broker.db"),
        mail_url=read.get("MAIL_URL", _mail_url, f"file://{data_dir}/outbox"),
        base_url=read.get("BASE_URL", _base_url, "http://localhost:8000"),
        mail_from=mail_from,
        secret_key=secret_key,
        old_secret_keys=old_secret_keys,
        postal_address=read.get("POSTAL_ADDRESS", str, "(set PAPERMAIL_POSTAL_ADDRESS)"),
        arxiv_categories=read.get("ARXIV_CATEGORIES", _categories, "cs.AI,cs.CL,cs.CV,cs.LG"),
        arxiv_rss_url=read.get("ARXIV_RSS_URL", _http_url, "https://rss.arxiv.org/rss/"),
        arxiv_api_url=read.get("ARXIV_API_URL", _http_url, "https://export.arxiv.org/api/query"),
        hf_api_url=read.get("HF_API_URL", _http_url, "https://huggingface.co/api/daily_papers"),
        http_timeout_seconds=read.get("HTTP_TIMEOUT", _positive_float, "20"),
        digest_size=read.get("DIGEST_SIZE", _whole_number(1, MAX_DIGEST_SIZE), "10"),
        smtp_timeout_seconds=read.get("SMTP_TIMEOUT", _positive_float, "30"),
        celery_queue=read.get("CELERY_QUEUE", _text, "papermail"),
        beat_lease_seconds=read.get("BEAT_LEASE_SECONDS", _positive_float, "60"),
        fetch_contact=read.get("FETCH_CONTACT", _address, parseaddr(mail_from)[1]),
        fetch_retries=read.get("FETCH_RETRIES", _non_negative_int, "3"),
        fetch_backoff_seconds=read.get("FETCH_BACKOFF", _positive_float, "2"),
        arxiv_delay_seconds=read.get("ARXIV_API_DELAY", _non_negative_float, "3"),
        # arXiv rebuilds its RSS at midnight US Eastern (04:00/05:00 UTC) on weekdays; the second
        # run is a free catch-up (conditional GET, idempotent upserts) if the first one failed.
        arxiv_fetch_cron=read.get("ARXIV_FETCH_CRON", _cron, "30 5,9 * * mon-fri"),
        hf_fetch_cron=read.get("HF_FETCH_CRON", _cron, "15 * * * *"),
        backfill_days=read.get("BACKFILL_DAYS", _non_negative_int, "7"),
        # Upvotes keep growing for one to two weeks after a paper is featured: every scheduled
        # fetch re-reads the listings of that many days, within a request budget.
        hf_refresh_days=read.get("HF_REFRESH_DAYS", _non_negative_int, "14"),
        hf_refresh_max_requests=read.get("HF_REFRESH_MAX_REQUESTS", _non_negative_int, "40"),
        **_signal_settings(read),
        **_web_settings(read),
        **_sending_settings(read),
        **_bounce_intake_settings(read),
        # -- trending: defaults and their reasons are in docs/trending.md --
        trend_half_life_hours=read.get("TREND_HALF_LIFE_HOURS", _positive_float, "36"),
        trend_volume_weight=read.get("TREND_VOLUME_WEIGHT", _fraction, "0.5"),
        trend_weight_upvotes=read.get("TREND_WEIGHT_UPVOTES", _weight, "1"),
        trend_weight_github_stars=read.get("TREND_WEIGHT_GITHUB_STARS", _weight, "0.5"),
        trend_weight_comments=read.get("TREND_WEIGHT_COMMENTS", _weight, "0.5"),
        trend_weight_hn_points=read.get("TREND_WEIGHT_HN_POINTS", _weight, "0.5"),
        trend_weight_hn_comments=read.get("TREND_WEIGHT_HN_COMMENTS", _weight, "0.25"),
        trend_weight_bluesky_likes=read.get("TREND_WEIGHT_BLUESKY_LIKES", _weight, "0.4"),
        trend_weight_bluesky_reposts=read.get("TREND_WEIGHT_BLUESKY_REPOSTS", _weight, "0.4"),
        trend_weight_citations=read.get("TREND_WEIGHT_CITATIONS", _weight, "0.5"),
        trend_max_age_days=read.get("TREND_MAX_AGE_DAYS", _positive_float, "30"),
        trend_keep_runs=read.get("TREND_KEEP_RUNS", _positive_int, "24"),
        **_bounce_settings(read),
    )


def _optional_text(raw: str) -> str | None:
    return raw.strip() or None


# Without a token GitHub allows 60 requests an hour per address: an hourly run stays under it.
GITHUB_ANONYMOUS_REQUESTS_PER_HOUR = 60


def _signal_settings(read: _Reader) -> dict[str, object]:
    """The community sources' addresses, credentials, schedules and request budgets per run."""
    github_token = read.get("GITHUB_TOKEN", _optional_text, "")
    github_max = read.get("GITHUB_MAX_REQUESTS", _non_negative_int, "1000" if github_token else "50")
    if not github_token and github_max > GITHUB_ANONYMOUS_REQUESTS_PER_HOUR:
        raise ConfigError(
            "GITHUB_MAX_REQUESTS",
            f"must be at most {GITHUB_ANONYMOUS_REQUESTS_PER_HOUR} without PAPERMAIL_GITHUB_TOKEN "
            "(GitHub's hourly limit for anonymous requests)",
        )
    handle = read.get("BLUESKY_HANDLE", _optional_text, "")
    password = read.get("BLUESKY_APP_PASSWORD", _optional_text, "")
    if bool(handle) != bool(password):
        missing = "BLUESKY_APP_PASSWORD" if handle else "BLUESKY_HANDLE"
        raise ConfigError(missing, "must be set too: Bluesky's search needs a handle and an app password")
    return {
        "github_api_url": read.get("GITHUB_API_URL", _base_url, "https://api.github.com"),
        "github_token": github_token,
        "github_fetch_cron": read.get("GITHUB_FETCH_CRON", _cron, "40 * * * *"),
        "github_max_requests": github_max,
        "hn_api_url": read.get("HN_API_URL", _base_url, "https://hn.algolia.com/api/v1"),
        "hn_fetch_cron": read.get("HN_FETCH_CRON", _cron, "25 */3 * * *"),
        "hn_max_requests": read.get("HN_MAX_REQUESTS", _non_negative_int, "20"),
        "bluesky_api_url": read.get("BLUESKY_API_URL", _base_url, "https://bsky.social/xrpc"),
        "bluesky_handle": handle,
        "bluesky_app_password": password,
        "bluesky_fetch_cron": read.get("BLUESKY_FETCH_CRON", _cron, "35 */3 * * *"),
        "bluesky_max_requests": read.get("BLUESKY_MAX_REQUESTS", _non_negative_int, "30"),
        "s2_api_url": read.get("S2_API_URL", _base_url, "https://api.semanticscholar.org"),
        "s2_api_key": read.get("S2_API_KEY", _optional_text, ""),
        "s2_fetch_cron": read.get("S2_FETCH_CRON", _cron, "50 6 * * *"),
        "s2_max_requests": read.get("S2_MAX_REQUESTS", _non_negative_int, "120"),
    }


def _web_settings(read: _Reader) -> dict[str, object]:
    """The web's settings; unconfirmed signups must outlive their confirmation link."""
    confirm_hours = read.get("CONFIRM_HOURS", _positive_float, "72")
    unconfirmed_days = read.get("UNCONFIRMED_DAYS", _positive_float, "4")
    if unconfirmed_days * 24 < confirm_hours:
        raise ConfigError(
            "UNCONFIRMED_DAYS",
            f"must be at least PAPERMAIL_CONFIRM_HOURS ({confirm_hours:g} h), or links outlive signups",
        )
    return {
        "confirm_hours": confirm_hours,
        "unconfirmed_days": unconfirmed_days,
        "signup_rate_per_ip": read.get("SIGNUP_RATE_PER_IP", _rate, "10/h"),
        "confirmations_per_address": read.get("CONFIRMATIONS_PER_ADDRESS", _rate, "3/6h"),
        "signup_budget": read.get("SIGNUP_BUDGET", _rate, "120/m"),
        "proxy_count": read.get("PROXY_COUNT", _non_negative_int, "0"),
        "record_consent_ip": read.get("RECORD_CONSENT_IP", _bool, "false"),
    }


# "bounces+" and the longest VERP token must fit the 64-octet local part (RFC 5321 4.5.3.1.1).
MAX_BOUNCE_LOCAL_PART = 24


def _bounce_address(raw: str) -> str | None:
    address = raw.strip()
    if not address:
        return None
    if parseaddr(address)[1] != address or address.count("@") != 1:
        raise ValueError(f"must be a bare address like bounces@example.org, got {raw!r}")
    local, _, domain = address.partition("@")
    if not local or "+" in local or len(local) > MAX_BOUNCE_LOCAL_PART:
        raise ValueError(f"the part before @ must be 1-{MAX_BOUNCE_LOCAL_PART} characters without '+'")
    _address(address)
    if _optional_domain(domain) is None:
        raise ValueError(f"must be a bare address like bounces@example.org, got {raw!r}")
    return local + "@" + domain.lower()


def _bounce_settings(read: _Reader) -> dict[str, object]:
    """VERP and the self-pausing send."""
    return {
        "bounce_address": read.get("BOUNCE_ADDRESS", _bounce_address, ""),
        "bounce_pause_rate": read.get("BOUNCE_PAUSE_RATE", _fraction, "0.1"),
    }


# A claim must outlive a few blocking SMTP operations, or a slow but healthy send would look dead.
LEASE_TO_SMTP_TIMEOUT = 3


def _sending_settings(read: _Reader) -> dict[str, object]:
    """The settings of planning and sending digests."""
    values: dict[str, object] = {
        "send_batch_size": read.get("SEND_BATCH_SIZE", _positive_int, "100"),
        "smtp_max_per_connection": read.get("SMTP_MAX_PER_CONNECTION", _positive_int, "100"),
        "send_rate": read.get("SEND_RATE", _non_negative_float, "0"),
        "send_lease_seconds": read.get("SEND_LEASE_SECONDS", _positive_float, "300"),
        "retry_base_seconds": read.get("RETRY_BASE_SECONDS", _positive_float, "300"),
        "retry_max_seconds": read.get("RETRY_MAX_SECONDS", _positive_float, "14400"),
        "give_up_hours": read.get("GIVE_UP_HOURS", _positive_float, "48"),
        "late_limit_hours": read.get("LATE_LIMIT_HOURS", _positive_float, "24"),
        "late_policy": read.get("LATE_POLICY", _late_policy, "send-late-once"),
        "max_worker_deaths": read.get("MAX_WORKER_DEATHS", _positive_int, "3"),
        "breaker_threshold": read.get("BREAKER_THRESHOLD", _positive_int, "50"),
        "requeue_after_seconds": read.get("REQUEUE_AFTER_SECONDS", _positive_float, "900"),
        "dkim_key_path": read.get("DKIM_KEY_PATH", _dkim_key_path, ""),
        "dkim_selector": read.get("DKIM_SELECTOR", _text, "papermail"),
        "dkim_domain": read.get("DKIM_DOMAIN", _optional_domain, ""),
    }
    smtp_timeout = read.get("SMTP_TIMEOUT", _positive_float, "30")
    if values["send_lease_seconds"] < LEASE_TO_SMTP_TIMEOUT * smtp_timeout:  # type: ignore[operator]
        raise ConfigError(
            "SEND_LEASE_SECONDS",
            f"must be at least {LEASE_TO_SMTP_TIMEOUT} times PAPERMAIL_SMTP_TIMEOUT ({smtp_timeout:g} s)",
        )
    if values["retry_max_seconds"] < values["retry_base_seconds"]:  # type: ignore[operator]
        raise ConfigError("RETRY_MAX_SECONDS", "must not be less than PAPERMAIL_RETRY_BASE_SECONDS")
    return values


def _host_port(raw: str) -> str | None:
    if not raw.strip():
        return None
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. 0.0.0.0:2525, got {raw!r}")
    return raw.strip()


def _imap_url(raw: str) -> str | None:
    if not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme != "imaps" or not parts.hostname or not parts.username:
        raise ValueError("must be imaps://user:password@host[:port][/mailbox] (IMAP over TLS)")
    return _checked_url(raw, ("imaps",))


def _optional_file(raw: str) -> Path | None:
    if not raw.strip():
        return None
    path = Path(raw.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file")
    return path


def _bounce_intake_settings(read: _Reader) -> dict[str, object]:
    """How bounce reports come in: SMTP, provider webhooks, an IMAP mailbox."""
    return {
        "inbound_bind": read.get("INBOUND_BIND", _host_port, ""),
        "inbound_max_bytes": read.get("INBOUND_MAX_BYTES", _positive_int, "1048576"),
        "inbound_max_connections": read.get("INBOUND_MAX_CONNECTIONS", _positive_int, "100"),
        "inbound_connections_per_ip": read.get("INBOUND_CONNECTIONS_PER_IP", _positive_int, "10"),
        "inbound_rate_per_ip": read.get("INBOUND_RATE_PER_IP", _rate, "600/m"),
        "webhook_max_age_seconds": read.get("WEBHOOK_MAX_AGE", _positive_float, "3600"),
        "webhook_secret": read.raw("WEBHOOK_SECRET").strip(),
        "ses_topic_arns": read.get("SES_TOPIC_ARNS", _key_list, ""),
        "sns_cert_hosts": read.get("SNS_CERT_HOSTS", _key_list, "sns.*.amazonaws.com"),
        "mailgun_signing_key": read.raw("MAILGUN_SIGNING_KEY").strip(),
        "sendgrid_public_key": read.get("SENDGRID_PUBLIC_KEY", _public_key, ""),
        "postmark_webhook_auth": read.get("POSTMARK_WEBHOOK_AUTH", _user_password, ""),
        "bounce_imap_url": read.get("BOUNCE_IMAP_URL", _imap_url, ""),
        "bounce_imap_ca_file": read.get("BOUNCE_IMAP_CA_FILE", _optional_file, ""),
        "bounce_imap_cron": read.get("BOUNCE_IMAP_CRON", _cron, "*/5 * * * *"),
    }


def _public_key(raw: str) -> str:
    """An ECDSA public key as SendGrid shows it (base64 DER), or PEM; "" when unset."""
    if not raw.strip():
        return ""
    from papermail.bounces.signatures import load_public_key

    load_public_key(raw.strip())  # raises ValueError naming the problem
    return raw.strip()


def _user_password(raw: str) -> str:
    if raw.strip() and ":" not in raw.strip():
        raise ValueError("must be USER:PASSWORD (the basic-auth credentials set in Postmark)")
    return raw.strip()


def make_secret() -> str:
    """A new random secret key (64 URL-safe characters, 384 bits)."""
    return secrets.token_urlsafe(48)


def is_strong_secret(key: str) -> bool:
    """At least 32 bytes and, by the spread of its characters and no repeats, 128 bits of entropy.

    A guessable key lets anyone forge every link (a short wordlist found ``changeme`` from one
    unsubscribe token in a millisecond); padding a word to 32 bytes doesn't make it random.
    """
    data = key.encode()
    if len(data) < MIN_SECRET_BYTES:
        return False
    counts = Counter(data).values()
    per_byte = -sum(n / len(data) * math.log2(n / len(data)) for n in counts)
    # A repeated part adds nothing: count the bytes that start a 4-byte run not seen before.
    fresh = len({data[i : i + 4] for i in range(len(data) - 3)}) + 3
    return per_byte * fresh >= MIN_SECRET_BITS


def _development_secret(data_dir: Path) -> str:
    """Read, or create once, a random secret kept in the data directory (development only)."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = make_secret()
    # O_EXCL: if two processes start at once, exactly one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    log.warning(
        "PAPERMAIL_SECRET_KEY is not set: generated a development key in %s. "
        "Set PAPERMAIL_SECRET_KEY (and PAPERMAIL_ENV=production) before going live.",
        path,
    )
    return key


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded from the environment on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def use_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (``None`` reloads from the environment on next use)."""
    global _current
    _current = settings


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA timezone, else raise ValueError."""
    return _timezone(name)

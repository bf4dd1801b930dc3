"""Value parsers: each takes a variable's raw text and returns the value, or raises ValueError saying why.

The message is the part after ``PAPERMAIL_NAME: ``; the reader adds the name and masks secrets.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from papermail.categories import canonical_categories

RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAIL_SCHEMES = ("smtp", "smtps", "smtp+starttls", "file", "console", "memory")
# "bounces+" and the longest VERP token must fit the 64-octet local part (RFC 5321 4.5.3.1.1).
MAX_BOUNCE_LOCAL_PART = 24


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most ``count`` events per ``window``; ``spec`` is how it was written."""

    count: int
    window: timedelta
    spec: str


def text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def optional_text(raw: str) -> str | None:
    return raw.strip() or None


def number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None


def finite_float(raw: str) -> float:
    value = number(raw)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def positive_float(raw: str) -> float:
    value = finite_float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def non_negative_float(raw: str) -> float:
    value = number(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number")
    return value


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
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


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def weight(raw: str) -> float:
    value = finite_float(raw)
    if value < 0:
        raise ValueError("must be zero (ignore the signal) or a positive number")
    return value


def fraction(raw: str) -> float:
    value = finite_float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def rate(raw: str) -> Rate:
    """Parse ``COUNT/WINDOW`` such as ``10/h``, ``3/6h`` or ``5/10m`` (units s, m, h, d)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", raw)
    if not match or int(match[1]) == 0 or match[2] == "0":
        raise ValueError(f"must look like 10/h or 3/6h (count/window, units s m h d), got {raw!r}")
    seconds = int(match[2] or 1) * RATE_UNITS[match[3]]
    return Rate(count=int(match[1]), window=timedelta(seconds=seconds), spec=raw.strip())


def key_list(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser accepting exactly one of ``choices``, its error listing them."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {raw!r}")
    return raw.strip()


def base_url(raw: str) -> str:
    return http_url(raw).rstrip("/")


def checked_url(raw: str, network_schemes: tuple[str, ...]) -> str:
    """``raw`` if its port is a number and a network URL names a host; the message masks secrets."""
    parts = urlsplit(raw.strip())
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"has a port that is not a number in {raw!r}") from None
    if parts.scheme in network_schemes and not parts.hostname:
        raise ValueError(f"must name a host, got {raw!r}")
    return raw.strip()


def database_url(raw: str) -> str:
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
    return checked_url(raw, ())


def broker_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "sqla+sqlite", "sqla+postgresql+psycopg", "memory"):
        raise ValueError(f"must be redis://… or sqla+sqlite:///…, got {raw!r}")
    return checked_url(raw, ("redis", "rediss"))


def mail_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in MAIL_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(MAIL_SCHEMES)}, got {raw!r}")
    return checked_url(raw, ("smtp", "smtps", "smtp+starttls"))


def imap_url(raw: str) -> str | None:
    if not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme != "imaps" or not parts.hostname or not parts.username:
        raise ValueError("must be imaps://user:password@host[:port][/mailbox] (IMAP over TLS)")
    return checked_url(raw, ("imaps",))


def address(raw: str) -> str:
    from email.headerregistry import Address

    _name, addr = parseaddr(raw)
    if "@" not in addr or "\n" in raw or "\r" in raw:
        raise ValueError(f"must be an email address like 'papermail <digest@example.org>', got {raw!r}")
    Address(addr_spec=addr)  # raises on malformed local part or domain
    return raw.strip()


def optional_domain(raw: str) -> str | None:
    domain = raw.strip().lower()
    if not domain:
        return None
    if not all(label and len(label) < 64 for label in domain.split(".")) or any(
        ch.isspace() or ch in "@/<>" for ch in domain
    ):
        raise ValueError(f"must be a domain name like example.org, got {raw!r}")
    return domain


def bounce_address(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if parseaddr(value)[1] != value or value.count("@") != 1:
        raise ValueError(f"must be a bare address like bounces@example.org, got {raw!r}")
    local, _, domain = value.partition("@")
    if not local or "+" in local or len(local) > MAX_BOUNCE_LOCAL_PART:
        raise ValueError(f"the part before @ must be 1-{MAX_BOUNCE_LOCAL_PART} characters without '+'")
    address(value)
    if optional_domain(domain) is None:
        raise ValueError(f"must be a bare address like bounces@example.org, got {raw!r}")
    return local + "@" + domain.lower()


def host_port(raw: str) -> str | None:
    if not raw.strip():
        return None
    split_host_port(raw)
    return raw.strip()


def split_host_port(raw: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:2525`` for IPv6) as a host and a port number."""
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. 0.0.0.0:2525, got {raw!r}")
    return host.strip("[]"), int(port)


def optional_file(raw: str) -> Path | None:
    if not raw.strip():
        return None
    path = Path(raw.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file")
    return path


def dkim_key_path(raw: str) -> Path | None:
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


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """An ECDSA public key from PEM or from base64 DER (as SendGrid's settings page shows it)."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("is not a PEM or base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("is not an ECDSA (elliptic curve) public key")
    return key


def public_key(raw: str) -> str:
    """An ECDSA public key as SendGrid shows it (base64 DER), or PEM; "" when unset."""
    if not raw.strip():
        return ""
    load_public_key(raw.strip())  # raises ValueError naming the problem
    return raw.strip()


def user_password(raw: str) -> str:
    if raw.strip() and ":" not in raw.strip():
        raise ValueError("must be USER:PASSWORD (the basic-auth credentials set in Postmark)")
    return raw.strip()


def cron(raw: str) -> str:
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


def categories(raw: str) -> tuple[str, ...]:
    values = tuple(canonical_categories(raw.split(",")))  # UnknownCategory is a ValueError
    if not values:
        raise ValueError("must list at least one arXiv category, e.g. cs.LG")
    return values


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA timezone, else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {name!r}") from exc
    return name

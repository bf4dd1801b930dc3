"""Signed links for subscribers: confirm, preferences, unsubscribe and view-in-browser.

Each purpose has its own salt, so a token made for one purpose never works for another. Tokens are
signed with the current secret key; tokens signed with any key in ``PAPERMAIL_OLD_SECRET_KEYS`` are
still accepted, so rotating the key doesn't break the unsubscribe links already in inboxes.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from itsdangerous import BadData, URLSafeTimedSerializer

from papermail.config import Settings
from papermail.subscribers import email_hash


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    VIEW = "view"  # one delivery as a web page; carries [subscriber_id, delivery_id]


# CAN-SPAM wants unsubscribe to work for 30 days after a send; RFC 8058 one-click links sit in
# archives for years, so they never expire (None). Preference links live a year and, bound to the
# address, die at once when it is erased or changed.
MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(hours=72),
    Purpose.PREFERENCES: timedelta(days=365),
    Purpose.UNSUBSCRIBE: None,
}
# How much of the address hash a link carries: enough that a link made for one address never
# matches another, short enough to keep URLs short.
ADDRESS_TAG_CHARS = 16

PATHS = {
    Purpose.CONFIRM: "confirm",
    Purpose.PREFERENCES: "preferences",
    Purpose.UNSUBSCRIBE: "unsubscribe",
    Purpose.VIEW: "digest",
}
# A digest stays readable in a browser exactly as long as its unsubscribe link works.
MAX_AGE[Purpose.VIEW] = MAX_AGE[Purpose.UNSUBSCRIBE]


class BadToken(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


def _serializer(settings: Settings, purpose: Purpose) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with any of them.
    keys = [*settings.old_secret_keys, settings.secret_key]
    return URLSafeTimedSerializer(keys, salt=f"papermail.{purpose.value}")


def make_token(settings: Settings, purpose: Purpose, subscriber_id: int, *extra: int | str) -> str:
    """A signed token carrying the subscriber id (and ``extra`` values the checker wants back)."""
    return _serializer(settings, purpose).dumps([subscriber_id, *extra])


def read_token(
    settings: Settings, purpose: Purpose, token: str, max_age: timedelta | None = None
) -> list[int | str]:
    """The ``[subscriber_id, *extra]`` a token carries; raise BadToken if it isn't valid."""
    age = max_age or MAX_AGE[purpose]
    try:
        payload = _serializer(settings, purpose).loads(token, max_age=age and age.total_seconds())
    except BadData as exc:
        raise BadToken(str(exc)) from None
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], int):
        raise BadToken("unexpected payload")
    return payload


def link(settings: Settings, purpose: Purpose, subscriber_id: int, *extra: int | str) -> str:
    """The absolute URL of a signed page for this subscriber, e.g. ``…/unsubscribe/<token>``."""
    token = make_token(settings, purpose, subscriber_id, *extra)
    return f"{settings.base_url}/{PATHS[purpose]}/{token}"


def address_tag(email: str) -> str:
    """A short hash of the address a link was mailed to, so the link dies with the address."""
    return email_hash(email)[:ADDRESS_TAG_CHARS]


def preferences_link(settings: Settings, subscriber_id: int, email: str) -> str:
    """The absolute URL of a subscriber's preferences page, bound to their current address."""
    return link(settings, Purpose.PREFERENCES, subscriber_id, address_tag(email))

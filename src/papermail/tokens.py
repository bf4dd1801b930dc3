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


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    VIEW = "view"  # one delivery as a web page; carries [subscriber_id, delivery_id]


# CAN-SPAM wants unsubscribe to work for 30 days after a send; we promise well over 60.
MAX_AGE = {
    Purpose.CONFIRM: timedelta(hours=72),
    Purpose.PREFERENCES: timedelta(days=365),
    Purpose.UNSUBSCRIBE: timedelta(days=365),
}

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
        payload = _serializer(settings, purpose).loads(token, max_age=age.total_seconds())
    except BadData as exc:
        raise BadToken(str(exc)) from None
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], int):
        raise BadToken("unexpected payload")
    return payload


def link(settings: Settings, purpose: Purpose, subscriber_id: int, *extra: int | str) -> str:
    """The absolute URL of a signed page for this subscriber, e.g. ``…/unsubscribe/<token>``."""
    token = make_token(settings, purpose, subscriber_id, *extra)
    return f"{settings.base_url}/{PATHS[purpose]}/{token}"

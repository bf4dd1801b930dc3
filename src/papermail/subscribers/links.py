"""Signed links for subscribers (confirm, preferences, unsubscribe, view, votes), and whom they lead to.

Each purpose has its own salt, so a token made for one purpose never works for another. Tokens are
signed with the current secret key; tokens signed with any key in ``PAPERMAIL_OLD_SECRET_KEYS`` are
still accepted, so rotating the key doesn't break the unsubscribe links already in inboxes.
"""

from __future__ import annotations

import binascii
import enum
import functools
import hashlib
import hmac
import json
import re
from datetime import timedelta

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, int_to_bytes, want_bytes
from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Settings
from papermail.db.models import Subscriber
from papermail.redaction import email_hash


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    # One delivery: its web page and its votes. A DeliveryTokens token; links from before carry
    # [subscriber id, delivery id, address tag] (compact) or [subscriber id, delivery id] (serializer).
    VIEW = "view"
    VOTE = "vote"  # the links from before one token per delivery: [subscriber id, arXiv id, +1 or -1]


# CAN-SPAM wants unsubscribe to work for 30 days after a send; RFC 8058 one-click links sit in
# archives for years, so they never expire (None). Preference, view and vote links live a year and,
# bound to the address, die at once when it is erased or changed.
MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(hours=72),
    Purpose.PREFERENCES: timedelta(days=365),
    Purpose.UNSUBSCRIBE: None,
    Purpose.VIEW: timedelta(days=365),
    Purpose.VOTE: timedelta(days=365),
}
# How much of the address hash a link carries: enough that a link made for one address never
# matches another, short enough to keep URLs short.
ADDRESS_TAG_CHARS = 16

PATHS = {
    Purpose.CONFIRM: "confirm",
    Purpose.PREFERENCES: "preferences",
    Purpose.UNSUBSCRIBE: "unsubscribe",
    Purpose.VIEW: "digest",
    Purpose.VOTE: "vote",
}


class BadToken(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _base64(data: bytes) -> bytes:
    """itsdangerous' ``base64_encode`` of bytes in one line, not four calls deep (twice per link)."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


class _CompactSigner(TimestampSigner):
    """A TimestampSigner for thousands of tokens: each key derived once, the signing HMAC keyed once.

    Its tokens are byte for byte those of a plain TimestampSigner with the same keys and salt, so
    links minted before this class, and links signed with a rotated-out key, still verify.
    """

    def __init__(self, secret_keys: list[str] | list[bytes], salt: str | bytes) -> None:
        super().__init__(secret_keys, salt=salt)
        self._derived: dict[bytes, bytes] = {}
        # itsdangerous keys a new HMAC per token, padding the key in pure Python (it passes the
        # digest as a callable); a copy of one keyed HMAC skips that. SHA-1 is its default digest.
        self._signing_mac = hmac.new(self.derive_key(), digestmod=hashlib.sha1)
        # (second, its encoding) in one attribute, so a thread never pairs one with another's.
        self._stamp: tuple[int | None, bytes] = (None, b"")

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(key)
        return derived

    def sign(self, value: str | bytes) -> bytes:
        """TimestampSigner.sign, with the timestamp encoded once a second and the HMAC keyed once."""
        now = self.get_timestamp()
        stamped_at, stamp = self._stamp
        if now != stamped_at:
            stamp = _base64(int_to_bytes(now))
            self._stamp = (now, stamp)
        stamped = want_bytes(value) + self.sep + stamp
        mac = self._signing_mac.copy()
        mac.update(stamped)
        return stamped + self.sep + _base64(mac.digest())


# json.dumps builds a new encoder on every call with these separators, which cost more than the HMAC.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class _Serializer(URLSafeTimedSerializer):
    """URLSafeTimedSerializer keeping one _CompactSigner per salt (itsdangerous builds one per token)."""

    default_signer = _CompactSigner

    def __init__(self, secret_keys: list[str], salt: str) -> None:
        super().__init__(secret_keys, salt=salt)
        self._signers: dict[str | bytes | None, TimestampSigner] = {}

    def dump_payload(self, obj: object) -> bytes:
        """URLSafeSerializer's payload without its zlib attempt, which never shortens a few ids.

        When zlib doesn't win, itsdangerous sends the plain JSON: the same bytes as here.
        """
        return _base64(_COMPACT_JSON.encode(obj).encode())

    def make_signer(self, salt: str | bytes | None = None) -> TimestampSigner:
        signer = self._signers.get(salt)
        if signer is None:
            signer = self._signers[salt] = super().make_signer(salt)
        return signer


def _signing_keys(settings: Settings) -> tuple[str, ...]:
    """The keys, oldest first: itsdangerous signs with the last and verifies with any of them."""
    return (*settings.old_secret_keys, settings.secret_key)


def page_prefix(settings: Settings, purpose: Purpose) -> str:
    """A signed page's URL up to its token, e.g. ``…/unsubscribe/``."""
    return f"{settings.base_url}/{PATHS[purpose]}/"


def _serializer(settings: Settings, purpose: Purpose) -> URLSafeTimedSerializer:
    return _serializer_for(_signing_keys(settings), purpose)


@functools.lru_cache(maxsize=32)
def _serializer_for(keys: tuple[str, ...], purpose: Purpose) -> _Serializer:
    """One serializer per key list and purpose: a digest's three links, and every page, reuse it."""
    return _Serializer(list(keys), salt=f"papermail.{purpose.value}")


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
    return page_prefix(settings, purpose) + make_token(settings, purpose, subscriber_id, *extra)


def address_tag(email: str) -> str:
    """A short hash of the address a link was mailed to, so the link dies with the address."""
    return email_hash(email)[:ADDRESS_TAG_CHARS]


def preferences_link(settings: Settings, subscriber_id: int, email: str) -> str:
    """The absolute URL of a subscriber's preferences page, bound to their current address."""
    return link(settings, Purpose.PREFERENCES, subscriber_id, address_tag(email))


def is_valid_link(settings: Settings, purpose: Purpose, token: str) -> bool:
    """True if the link is signed by us for this purpose and not expired (no database access)."""
    try:
        read_token(settings, purpose, token)
    except BadToken:
        return False
    return True


def subscriber_for_link(
    session: Session, settings: Settings, purpose: Purpose, token: str
) -> Subscriber | None:
    """The subscriber a preferences or unsubscribe link belongs to, or None if it isn't valid.

    A preferences link names the address it was made for: after an erasure or an address change
    it leads nowhere. An unsubscribe link names only the id (ids are never reused), so it works
    for every digest ever sent.
    """
    try:
        payload = read_token(settings, purpose, token)
    except BadToken:
        return None
    subscriber = session.get(Subscriber, payload[0])
    if purpose == Purpose.PREFERENCES and (
        subscriber is None or payload[1:] != [address_tag(subscriber.email)]
    ):
        return None
    return subscriber


class CompactTokens:
    """Signed tokens for links minted by the thousand (a vote link per paper in every digest).

    The same keys, salt per purpose and expiry as :func:`make_token`, but the fields are signed
    with a bare timestamped HMAC: the serializer's JSON and compression cost several times the
    signature, which was most of a digest's render time with 20 vote links in it.
    """

    def __init__(self, settings: Settings, purpose: Purpose) -> None:
        self.purpose = purpose
        self._signer = _CompactSigner(
            list(_signing_keys(settings)), salt=f"papermail.compact.{purpose.value}"
        )
        self._link_prefix = page_prefix(settings, purpose)

    def make(self, subscriber_id: int, *extra: int | str) -> str:
        """A token carrying the subscriber id and ``extra``."""
        payload = _base64(_COMPACT_JSON.encode([subscriber_id, *extra]).encode())
        return self._signer.sign(payload).decode("ascii")

    def link(self, subscriber_id: int, *extra: int | str) -> str:
        """The absolute URL of the signed page, e.g. ``…/vote/<token>``."""
        return self._link_prefix + self.make(subscriber_id, *extra)

    def read(self, token: str) -> list[int | str]:
        """The ``[subscriber_id, *extra]`` a token carries; raise BadToken if it isn't valid."""
        try:
            payload = self._signer.unsign(token, max_age=MAX_AGE[self.purpose].total_seconds())
            values = json.loads(base64_decode(payload))
        except (BadData, ValueError) as exc:
            raise BadToken(str(exc)) from None
        if not isinstance(values, list) or not values or type(values[0]) is not int:
            raise BadToken("unexpected payload")
        return values


# HMAC-SHA256 cut to 128 bits, half the hash as RFC 2104 advises: a forger still needs 2^128 guesses.
DELIVERY_MAC_BYTES = 16
_STAMP_BYTES = 4  # seconds since 1970, unsigned: good until 2106
_DELIVERY_TOKEN = re.compile(r"[A-Za-z0-9_-]{28,40}\Z")  # base64url of 4 + 1..8 + 16 bytes


class DeliveryTokens:
    """The short signed token of one delivery: its view link and every vote link in it carry it.

    It holds the delivery id and when it was signed; its HMAC also covers the hash of the address the
    delivery was mailed to, which it doesn't carry, so the token dies when the address changes or
    is erased. 32 characters where the compact token of [subscriber, delivery, address tag] took 71:
    a digest has twenty vote links, and every byte of them is built, encoded and sent per reader.
    Keys rotate like the others': signed with the current key, any old key still verifies.
    """

    def __init__(self, settings: Settings) -> None:
        salt = f"papermail.{Purpose.VIEW.value}.delivery".encode()
        # Newest first: signing takes the first, reading tries them all.
        self._macs = [
            hmac.new(hmac.new(want_bytes(key), salt, hashlib.sha256).digest(), digestmod=hashlib.sha256)
            for key in reversed(_signing_keys(settings))
        ]

    def make(self, delivery_id: int, email: str) -> str:
        """The token of a delivery mailed to ``email``, signed now."""
        stamp = int(clock.now().timestamp()).to_bytes(_STAMP_BYTES)
        body = stamp + delivery_id.to_bytes(max(1, (delivery_id.bit_length() + 7) // 8))
        return _base64(body + self._sign(self._macs[0], body, email)).decode("ascii")

    def delivery_id(self, token: str) -> int:
        """The delivery a token names if it is well formed and unexpired; :meth:`check` the address."""
        body = self._decode(token)[:-DELIVERY_MAC_BYTES]
        age = clock.now().timestamp() - int.from_bytes(body[:_STAMP_BYTES])
        if not 0 <= age <= MAX_AGE[Purpose.VIEW].total_seconds():
            raise BadToken("expired or signed in the future")
        return int.from_bytes(body[_STAMP_BYTES:])

    def check(self, token: str, email: str) -> None:
        """Raise BadToken unless one of the keys signed ``token`` for a delivery mailed to ``email``."""
        data = self._decode(token)
        body, mac = data[:-DELIVERY_MAC_BYTES], data[-DELIVERY_MAC_BYTES:]
        if not any(hmac.compare_digest(mac, self._sign(key, body, email)) for key in self._macs):
            raise BadToken("signature does not match")

    @staticmethod
    def is_one(token: str) -> bool:
        """True if ``token`` has this shape (older tokens have dots in them)."""
        return _DELIVERY_TOKEN.match(token) is not None

    @staticmethod
    def _decode(token: str) -> bytes:
        if not DeliveryTokens.is_one(token):
            raise BadToken("not a delivery token")
        try:
            return base64_decode(token)
        except BadData as exc:
            raise BadToken(str(exc)) from None

    @staticmethod
    def _sign(keyed: hmac.HMAC, body: bytes, email: str) -> bytes:
        mac = keyed.copy()
        mac.update(body)
        mac.update(email_hash(email).encode())
        return mac.digest()[:DELIVERY_MAC_BYTES]

"""Proving a webhook request comes from its provider, and is fresh.

Each provider signs differently: Mailgun with an HMAC of a timestamp and a token, SendGrid with an
ECDSA signature over its timestamp header and the body, Postmark only with the basic-auth
credentials set in its dashboard, and our generic webhook with a bearer secret. A failed check is a
:class:`WebhookRejected` that the view turns into a 4xx naming the problem (never the secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from papermail.config.parsers import load_public_key


class WebhookRejected(Exception):
    """The request is refused; ``status`` is the HTTP status: 400, 401, 403 or 404 for the request,
    502 when a server of the provider's (SNS's certificate host) could not be reached."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def check_fresh(when: datetime, now: datetime, max_age_seconds: float) -> None:
    """Refuse a signed timestamp more than ``max_age_seconds`` from ``now`` (either way: clocks drift)."""
    if abs(now - when) > timedelta(seconds=max_age_seconds):
        raise WebhookRejected(400, f"timestamp {when:%Y-%m-%dT%H:%M:%SZ} is outside the accepted window")


def epoch_time(raw: object) -> datetime:
    """A Unix timestamp (string or number) as an aware datetime; bad input is a 400."""
    try:
        return datetime.fromtimestamp(float(str(raw)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise WebhookRejected(400, f"timestamp {str(raw)[:40]!r} is not a Unix time") from None


def iso_time(raw: object) -> datetime:
    """An ISO 8601 timestamp as an aware (UTC if unqualified) datetime; bad input is a 400."""
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise WebhookRejected(400, f"timestamp {str(raw)[:40]!r} is not ISO 8601") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def verify_mailgun(signing_key: str, timestamp: str, token: str, signature: str) -> None:
    """Mailgun: ``signature`` is the hex HMAC-SHA256 of timestamp + token under the signing key."""
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature).lower()):
        raise WebhookRejected(401, "the Mailgun signature does not verify")


def verify_sendgrid(public_key: str, timestamp: str, body: bytes, signature: str) -> None:
    """SendGrid's signed event webhook: ECDSA-SHA256 over the timestamp header then the raw body."""
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        load_public_key(public_key).verify(
            raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected(401, "the SendGrid signature does not verify") from None


def verify_bearer(secret: str, authorization: str | None) -> None:
    """The generic webhook: ``Authorization: Bearer <PAPERMAIL_WEBHOOK_SECRET>``."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret.encode()):
        raise WebhookRejected(401, "missing or wrong bearer secret")


def verify_basic(user_password: str, authorization: str | None) -> None:
    """Postmark: HTTP basic auth with the credentials put in the webhook URL in its dashboard."""
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        given = b""
    if scheme.lower() != "basic" or not hmac.compare_digest(given, user_password.encode()):
        raise WebhookRejected(401, "missing or wrong basic-auth credentials")

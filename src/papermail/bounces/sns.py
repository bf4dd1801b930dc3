"""Amazon SNS messages (how SES reports bounces and complaints): signature checks and subscribing.

SNS signs each message with the key of an X.509 certificate it names by URL. Anybody can name a
URL, so the certificate is fetched only from an allow-listed host (``PAPERMAIL_SNS_CERT_HOSTS``,
by default ``sns.*.amazonaws.com`` over https), cached per URL, and must be valid now. Anybody can
also create an SNS topic, so only the topics in ``PAPERMAIL_SES_TOPIC_ARNS`` are accepted.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from papermail.bounces.signatures import WebhookRejected, check_fresh, iso_time
from papermail.config import Settings

# The fields each message type signs, in this order (SNS developer guide, "Verifying signatures").
_SUBSCRIPTION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SUBSCRIPTION_FIELDS,
    "UnsubscribeConfirmation": _SUBSCRIPTION_FIELDS,
}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE_BYTES = 64 * 1024

_certificates: dict[str, x509.Certificate] = {}
_certificates_lock = threading.Lock()


def verify_message(settings: Settings, message: dict[str, Any], now: datetime) -> None:
    """Raise WebhookRejected unless ``message`` is a fresh, SNS-signed message of an accepted topic."""
    kind = message.get("Type")
    if kind not in SIGNED_FIELDS:
        raise WebhookRejected(400, f"unknown SNS message type {str(kind)[:40]!r}")
    if message.get("TopicArn") not in settings.ses_topic_arns:
        raise WebhookRejected(403, "the SNS topic is not in PAPERMAIL_SES_TOPIC_ARNS")
    algorithm = SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookRejected(400, "unsupported SNS SignatureVersion")
    check_fresh(iso_time(message.get("Timestamp")), now, settings.webhook_max_age_seconds)
    certificate = _certificate(settings, str(message.get("SigningCertURL", "")), now)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise WebhookRejected(400, "the SNS certificate does not hold an RSA key")
        public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, binascii.Error):
        raise WebhookRejected(401, "the SNS signature does not verify") from None


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: each present signed field's name and value, one per line."""
    lines = []
    for name in SIGNED_FIELDS[message["Type"]]:
        if name in message and message[name] is not None:
            lines += [name, str(message[name])]
    return ("\n".join(lines) + "\n").encode()


def allowed_url(settings: Settings, url: str) -> bool:
    """True if ``url`` is https on an allow-listed host glob, or starts with an allow-listed origin."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    for entry in settings.sns_cert_hosts:
        if "://" in entry:  # a whole origin, e.g. a test's local server
            if url.startswith(entry.rstrip("/") + "/"):
                return True
        elif parts.scheme == "https" and parts.port is None and fnmatch.fnmatchcase(host, entry):
            return True
    return False


def _certificate(settings: Settings, url: str, now: datetime) -> x509.Certificate:
    if not allowed_url(settings, url) or not urlsplit(url).path.endswith(".pem"):
        raise WebhookRejected(403, "the SNS SigningCertURL is not on an allow-listed host")
    with _certificates_lock:
        certificate = _certificates.get(url)
    if certificate is None:
        certificate = _fetch_certificate(settings, url)
        with _certificates_lock:
            _certificates[url] = certificate
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRejected(403, "the SNS signing certificate is not valid now")
    return certificate


def _fetch_certificate(settings: Settings, url: str) -> x509.Certificate:
    try:
        response = httpx.get(url, timeout=settings.http_timeout_seconds, follow_redirects=False)
        response.raise_for_status()
        if len(response.content) > MAX_CERTIFICATE_BYTES:
            raise ValueError("too large")
        return x509.load_pem_x509_certificate(response.content)
    except (httpx.HTTPError, ValueError) as exc:
        # A 4xx makes SNS give up; the certificate host being away is worth a retry.
        raise WebhookRejected(502, f"could not fetch the SNS signing certificate: {exc}") from None


def confirm_subscription(settings: Settings, message: dict[str, Any]) -> None:
    """Visit a verified SubscriptionConfirmation's SubscribeURL (an allow-listed host only)."""
    url = str(message.get("SubscribeURL", ""))
    if not allowed_url(settings, url):
        raise WebhookRejected(403, "the SNS SubscribeURL is not on an allow-listed host")
    try:
        httpx.get(url, timeout=settings.http_timeout_seconds, follow_redirects=False).raise_for_status()
    except httpx.HTTPError as exc:
        raise WebhookRejected(502, f"could not confirm the SNS subscription: {exc}") from None


def forget_certificates() -> None:
    """Empty the certificate cache (tests that rotate their certificate)."""
    with _certificates_lock:
        _certificates.clear()

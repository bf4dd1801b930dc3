"""Each provider's side of a webhook, played by the test with its own keys.

Payload shapes follow each provider's documentation (SES notification contents, Mailgun's
``event-data``, SendGrid's event webhook, Postmark's bounce and spam-complaint webhooks). SNS's
signing certificate is made here and served from a local HTTP server, which also records the
visit to a SubscribeURL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from papermail.bounces.sns import string_to_sign

MAILGUN_KEY = "key-mailgun-test-signing"
POSTMARK_AUTH = "postmark:hook-password"
GENERIC_SECRET = "generic-webhook-secret"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:papermail-ses"


def webhook_settings(sns: SnsSigner, sendgrid: SendGridSigner) -> dict[str, str]:
    """The settings that switch every webhook on, with the test's keys."""
    return {
        "mailgun_signing_key": MAILGUN_KEY,
        "sendgrid_public_key": sendgrid.public_key,
        "postmark_webhook_auth": POSTMARK_AUTH,
        "webhook_secret": GENERIC_SECRET,
        "ses_topic_arns": TOPIC_ARN,
        "sns_cert_hosts": f"sns.*.amazonaws.com,{sns.origin}",
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- SNS -------------------------------------------------------------------------------------------


@dataclass
class SnsSigner:
    """A test SNS: an RSA key, its self-signed certificate served over HTTP, and signed messages."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    visited: list[str] = field(default_factory=list)
    certificate_fetches: int = 0

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.amazonaws.com")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        signer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith(".pem"):
                    signer.certificate_fetches += 1
                    body = signer.certificate.public_bytes(serialization.Encoding.PEM)
                else:
                    signer.visited.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        message = {**message, "SignatureVersion": version}
        message["SigningCertURL"] = f"{self.origin}/SimpleNotificationService-test.pem"
        # SignatureVersion 1 is SHA1 with RSA: SNS still signs with it by default.
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    def notification(self, ses: dict[str, Any], *, at: datetime | None = None) -> dict[str, Any]:
        return self.sign(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": TOPIC_ARN,
                "Message": json.dumps(ses),
                "Timestamp": _iso(at or datetime.now(UTC)),
            }
        )

    def subscription_confirmation(self) -> dict[str, Any]:
        token = uuid.uuid4().hex
        return self.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": str(uuid.uuid4()),
                "Token": token,
                "TopicArn": TOPIC_ARN,
                "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
                "SubscribeURL": f"{self.origin}/?Action=ConfirmSubscription&Token={token}",
                "Timestamp": _iso(datetime.now(UTC)),
            }
        )


def ses_bounce(
    address: str, *, bounce_type: str = "Permanent", status: str = "5.1.1", source: str = ""
) -> dict:
    """An SES bounce notification, as in the SES developer guide's examples."""
    now = _iso(datetime.now(UTC))
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; 550 {status} user unknown",
                }
            ],
            "timestamp": now,
            "feedbackId": f"0100{uuid.uuid4().hex}-000000",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": now,
            "source": source or "digest@papermail.test",
            "messageId": f"0100{uuid.uuid4().hex}",
            "destination": [address],
        },
    }


def ses_complaint(address: str) -> dict:
    now = _iso(datetime.now(UTC))
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": now,
            "feedbackId": f"0100{uuid.uuid4().hex}-000000",
            "complaintFeedbackType": "abuse",
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
        },
        "mail": {"timestamp": now, "source": "digest@papermail.test", "destination": [address]},
    }


# -- Mailgun ---------------------------------------------------------------------------------------


def mailgun_webhook(
    event_data: dict[str, Any], *, at: datetime | None = None, key: str = MAILGUN_KEY
) -> dict:
    timestamp = str(int((at or datetime.now(UTC)).timestamp()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def mailgun_failed(address: str, *, severity: str = "permanent", sender: str = "") -> dict[str, Any]:
    """A ``failed`` event as in Mailgun's webhook documentation."""
    return {
        "event": "failed",
        "id": uuid.uuid4().hex[:22],
        "timestamp": datetime.now(UTC).timestamp(),
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": address,
        "envelope": {"sender": sender or "digest@papermail.test", "transport": "smtp"},
        "delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "enhanced-code": "5.1.1" if severity == "permanent" else "4.2.2",
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "mx-host": "mx.example.org",
        },
        "message": {"headers": {"message-id": f"{uuid.uuid4().hex}@papermail.test"}},
    }


def mailgun_complained(address: str) -> dict[str, Any]:
    return {
        "event": "complained",
        "id": uuid.uuid4().hex[:22],
        "timestamp": datetime.now(UTC).timestamp(),
        "recipient": address,
    }


# -- SendGrid --------------------------------------------------------------------------------------


class SendGridSigner:
    """SendGrid's signed event webhook: an ECDSA P-256 key pair made by the test."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, *, at: datetime | None = None) -> dict[str, str]:
        timestamp = str(int((at or datetime.now(UTC)).timestamp()))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "Content-Type": "application/json",
        }


def sendgrid_event(address: str, event: str = "bounce", **extra: Any) -> dict[str, Any]:
    """One event as in SendGrid's event-webhook reference."""
    return {
        "email": address,
        "timestamp": int(datetime.now(UTC).timestamp()),
        "smtp-id": f"<{uuid.uuid4().hex}@papermail.test>",
        "event": event,
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": f"{uuid.uuid4().hex}.filter0001",
        **extra,
    }


# -- Postmark --------------------------------------------------------------------------------------


def postmark_headers(auth: str = POSTMARK_AUTH) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def postmark_bounce(address: str, bounce_type: str = "HardBounce", record_type: str = "Bounce") -> dict:
    """A bounce (or spam complaint) webhook as in Postmark's documentation."""
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "ID": int(uuid.uuid4().int % 10**12),
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": str(uuid.uuid4()),
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "digest@papermail.test",
        "BouncedAt": _iso(datetime.now(UTC)),
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your papers this week",
    }


# -- generic ---------------------------------------------------------------------------------------


def generic_headers(secret: str = GENERIC_SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def generic_event(address: str, verdict: str = "hard", *, at: datetime | None = None, **extra: Any) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "address": address,
        "verdict": verdict,
        "status": "5.1.1" if verdict == "hard" else None,
        "timestamp": _iso(at or datetime.now(UTC)),
        **extra,
    }

"""Bounce settings: intake (inbound SMTP, provider webhooks, an IMAP mailbox), VERP and the send pause."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from papermail.config import parsers as parse
from papermail.config.parsers import Rate
from papermail.config.reader import Reader, secret


@dataclass(frozen=True, repr=False)
class BounceSettings:
    """How bounce reports come in (docs/bounces.md), where they are addressed, and when a send pauses."""

    inbound_bind: str | None
    inbound_max_bytes: int
    inbound_max_connections: int
    inbound_connections_per_ip: int
    inbound_rate_per_ip: Rate
    webhook_max_age_seconds: float
    webhook_secret: str = secret()
    ses_topic_arns: tuple[str, ...]
    sns_cert_hosts: tuple[str, ...]
    mailgun_signing_key: str = secret()
    sendgrid_public_key: str
    postmark_webhook_auth: str = secret()
    bounce_imap_url: str | None
    bounce_imap_ca_file: Path | None
    bounce_imap_cron: str
    bounce_address: str | None  # "bounces@example.org"; None = no VERP, the From address is the sender
    bounce_pause_rate: float  # hard bounces among a send's first deliveries above which it pauses


def read_bounces(read: Reader) -> dict[str, object]:
    """How bounce reports come in, then VERP and the self-pausing send."""
    return {
        "inbound_bind": read.get("INBOUND_BIND", parse.host_port, ""),
        "inbound_max_bytes": read.get("INBOUND_MAX_BYTES", parse.positive_int, "1048576"),
        "inbound_max_connections": read.get("INBOUND_MAX_CONNECTIONS", parse.positive_int, "100"),
        "inbound_connections_per_ip": read.get("INBOUND_CONNECTIONS_PER_IP", parse.positive_int, "10"),
        "inbound_rate_per_ip": read.get("INBOUND_RATE_PER_IP", parse.rate, "600/m"),
        "webhook_max_age_seconds": read.get("WEBHOOK_MAX_AGE", parse.positive_float, "3600"),
        "webhook_secret": read.raw("WEBHOOK_SECRET").strip(),
        "ses_topic_arns": read.get("SES_TOPIC_ARNS", parse.key_list, ""),
        "sns_cert_hosts": read.get("SNS_CERT_HOSTS", parse.key_list, "sns.*.amazonaws.com"),
        "mailgun_signing_key": read.raw("MAILGUN_SIGNING_KEY").strip(),
        "sendgrid_public_key": read.get("SENDGRID_PUBLIC_KEY", parse.public_key, ""),
        "postmark_webhook_auth": read.get("POSTMARK_WEBHOOK_AUTH", parse.user_password, ""),
        "bounce_imap_url": read.get("BOUNCE_IMAP_URL", parse.imap_url, ""),
        "bounce_imap_ca_file": read.get("BOUNCE_IMAP_CA_FILE", parse.optional_file, ""),
        "bounce_imap_cron": read.get("BOUNCE_IMAP_CRON", parse.cron, "*/5 * * * *"),
        "bounce_address": read.get("BOUNCE_ADDRESS", parse.bounce_address, ""),
        "bounce_pause_rate": read.get("BOUNCE_PAUSE_RATE", parse.fraction, "0.1"),
    }

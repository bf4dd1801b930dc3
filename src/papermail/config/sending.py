"""Sending settings: the mail server and sender, what a digest holds, pacing and retries, DKIM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from papermail.config import parsers as parse
from papermail.config.reader import ConfigError, Reader

MAX_DIGEST_SIZE = 50
LATE_POLICIES = ("send-late-once", "skip")
# A claim must outlive a few blocking SMTP operations, or a slow but healthy send would look dead.
LEASE_TO_SMTP_TIMEOUT = 3


@dataclass(frozen=True, repr=False)
class SendingSettings:
    """How digests are addressed, sized, signed and paced on their way out."""

    mail_url: str
    mail_from: str
    postal_address: str
    digest_size: int
    smtp_timeout_seconds: float
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


def read_sending(read: Reader, data_dir: Path) -> dict[str, object]:
    """The sending settings; mail goes to a file outbox in ``data_dir`` unless PAPERMAIL_MAIL_URL says."""
    values: dict[str, object] = {
        "mail_from": read.get("FROM", parse.address, "papermail <papermail@localhost>"),
        "mail_url": read.get("MAIL_URL", parse.mail_url, f"file://{data_dir}/outbox"),
        "postal_address": read.get("POSTAL_ADDRESS", str, "(set PAPERMAIL_POSTAL_ADDRESS)"),
        "digest_size": read.get("DIGEST_SIZE", parse.whole_number(1, MAX_DIGEST_SIZE), "10"),
        "smtp_timeout_seconds": read.get("SMTP_TIMEOUT", parse.positive_float, "30"),
        "send_batch_size": read.get("SEND_BATCH_SIZE", parse.positive_int, "100"),
        "smtp_max_per_connection": read.get("SMTP_MAX_PER_CONNECTION", parse.positive_int, "100"),
        "send_rate": read.get("SEND_RATE", parse.non_negative_float, "0"),
        "send_lease_seconds": read.get("SEND_LEASE_SECONDS", parse.positive_float, "300"),
        "retry_base_seconds": read.get("RETRY_BASE_SECONDS", parse.positive_float, "300"),
        "retry_max_seconds": read.get("RETRY_MAX_SECONDS", parse.positive_float, "14400"),
        "give_up_hours": read.get("GIVE_UP_HOURS", parse.positive_float, "48"),
        "late_limit_hours": read.get("LATE_LIMIT_HOURS", parse.positive_float, "24"),
        "late_policy": read.get("LATE_POLICY", parse.one_of(LATE_POLICIES), "send-late-once"),
        "max_worker_deaths": read.get("MAX_WORKER_DEATHS", parse.positive_int, "3"),
        "breaker_threshold": read.get("BREAKER_THRESHOLD", parse.positive_int, "50"),
        "requeue_after_seconds": read.get("REQUEUE_AFTER_SECONDS", parse.positive_float, "900"),
        "dkim_key_path": read.get("DKIM_KEY_PATH", parse.dkim_key_path, ""),
        "dkim_selector": read.get("DKIM_SELECTOR", parse.text, "papermail"),
        "dkim_domain": read.get("DKIM_DOMAIN", parse.optional_domain, ""),
    }
    smtp_timeout = values["smtp_timeout_seconds"]
    if values["send_lease_seconds"] < LEASE_TO_SMTP_TIMEOUT * smtp_timeout:  # type: ignore[operator]
        raise ConfigError(
            "SEND_LEASE_SECONDS",
            f"must be at least {LEASE_TO_SMTP_TIMEOUT} times PAPERMAIL_SMTP_TIMEOUT ({smtp_timeout:g} s)",
        )
    if values["retry_max_seconds"] < values["retry_base_seconds"]:  # type: ignore[operator]
        raise ConfigError("RETRY_MAX_SECONDS", "must not be less than PAPERMAIL_RETRY_BASE_SECONDS")
    return values

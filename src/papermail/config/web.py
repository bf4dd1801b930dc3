"""Web settings: signup and confirmation, their rate limits, and the proxies in front of the app."""

from __future__ import annotations

from dataclasses import dataclass

from papermail.config import parsers as parse
from papermail.config.parsers import Rate
from papermail.config.reader import ConfigError, Reader


@dataclass(frozen=True, repr=False)
class WebSettings:
    """How long signups and their links last, how fast they may come, and whom to trust for the IP."""

    confirm_hours: float
    unconfirmed_days: float
    signup_rate_per_ip: Rate
    confirmations_per_address: Rate
    signup_budget: Rate
    proxy_count: int
    record_consent_ip: bool


def read_web(read: Reader) -> dict[str, object]:
    """The web's settings; unconfirmed signups must outlive their confirmation link."""
    confirm_hours = read.get("CONFIRM_HOURS", parse.positive_float, "72")
    unconfirmed_days = read.get("UNCONFIRMED_DAYS", parse.positive_float, "4")
    if unconfirmed_days * 24 < confirm_hours:
        raise ConfigError(
            "UNCONFIRMED_DAYS",
            f"must be at least PAPERMAIL_CONFIRM_HOURS ({confirm_hours:g} h), or links outlive signups",
        )
    return {
        "confirm_hours": confirm_hours,
        "unconfirmed_days": unconfirmed_days,
        "signup_rate_per_ip": read.get("SIGNUP_RATE_PER_IP", parse.rate, "10/h"),
        "confirmations_per_address": read.get("CONFIRMATIONS_PER_ADDRESS", parse.rate, "3/6h"),
        "signup_budget": read.get("SIGNUP_BUDGET", parse.rate, "120/m"),
        "proxy_count": read.get("PROXY_COUNT", parse.non_negative_int, "0"),
        "record_consent_ip": read.get("RECORD_CONSENT_IP", parse.boolean, "false"),
    }

"""What a subscriber chooses (topics, keywords, when), how a choice is checked, stored and changed.

Forms, CSV rows and the command line all go through :func:`parse_preferences`; the preferences page
changes a subscriber through :func:`change_preferences` and :func:`change_tldr_choice`, and a
digest's web page may ask for a fresh link to it (:func:`send_preferences_link`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from papermail import clock
from papermail.categories import UnknownCategory, canonical_categories
from papermail.config import Settings, validate_timezone
from papermail.db import audit, session_factory
from papermail.db.models import Frequency, Subscriber, SubscriberStatus
from papermail.mail import emails
from papermail.mail.outbox import Outbox
from papermail.sending.pacing import send_pacer_for
from papermail.subscribers import links
from papermail.subscribers.core import InvalidInput, is_suppressed

log = logging.getLogger(__name__)

MAX_TOPICS = 20
MAX_KEYWORDS = 20
MAX_KEYWORD_LENGTH = 60
# Letters, digits, spaces and a little punctuation: a keyword is matched as whole words, so
# anything that looks like markup or a header is a mistake, not a keyword.
KEYWORD_PATTERN = re.compile(r"^[\w][\w .+#'-]*$")


@dataclass(frozen=True)
class Preferences:
    """What a subscriber chooses; build it with :func:`parse_preferences` to validate it."""

    topics: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    frequency: Frequency = Frequency.WEEKLY
    send_weekday: int = 0
    send_hour: int = 8
    timezone: str = "UTC"


def parse_preferences(
    *,
    topics: list[str] | tuple[str, ...] = (),
    keywords: list[str] | tuple[str, ...] | str = (),
    frequency: str = "weekly",
    send_weekday: int | str = 0,
    send_hour: int | str = 8,
    timezone: str = "UTC",
) -> Preferences:
    """Validate raw preference values from a form, a CSV row or the command line."""
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    try:
        clean_topics = sorted(canonical_categories(topics))
    except UnknownCategory as exc:
        raise InvalidInput(str(exc)) from None
    if len(clean_topics) > MAX_TOPICS:
        raise InvalidInput(f"Choose at most {MAX_TOPICS} topics.")
    clean_keywords: list[str] = []
    for keyword in keywords:
        keyword = " ".join(keyword.split())
        if not keyword:
            continue
        if len(keyword) > MAX_KEYWORD_LENGTH or not KEYWORD_PATTERN.match(keyword):
            raise InvalidInput(
                f"Keywords are words of at most {MAX_KEYWORD_LENGTH} characters, separated by commas."
            )
        if keyword.lower() not in (k.lower() for k in clean_keywords):
            clean_keywords.append(keyword)
    if len(clean_keywords) > MAX_KEYWORDS:
        raise InvalidInput(f"Use at most {MAX_KEYWORDS} keywords.")
    if not clean_topics and not clean_keywords:
        raise InvalidInput("Choose at least one topic or keyword.")
    try:
        chosen_frequency = Frequency(frequency)
    except ValueError:
        raise InvalidInput("Frequency must be weekly or daily.") from None
    weekday, hour = _int_in_range(send_weekday, 0, 6, "Send day"), _int_in_range(send_hour, 0, 23, "Hour")
    try:
        zone = validate_timezone(timezone.strip())
    except ValueError:
        raise InvalidInput("Unknown timezone; use a name like Europe/Berlin.") from None
    return Preferences(clean_topics, clean_keywords, chosen_frequency, weekday, hour, zone)


def _int_in_range(raw: int | str, low: int, high: int, what: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number.") from None
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low} and {high}.")
    return value


def preference_values(preferences: Preferences) -> dict[str, Any]:
    """The subscriber columns that hold ``preferences``, for inserts and updates alike."""
    return {
        "topics": list(preferences.topics),
        "keywords": list(preferences.keywords),
        "frequency": preferences.frequency,
        "send_weekday": preferences.send_weekday,
        "send_hour": preferences.send_hour,
        "timezone": preferences.timezone,
    }


def apply_preferences(subscriber: Subscriber, preferences: Preferences) -> None:
    """Store validated preferences on a subscriber."""
    for column, value in preference_values(preferences).items():
        setattr(subscriber, column, value)
    subscriber.preferences_changed_at = clock.now()


# -- changes from the preferences page ------------------------------------------------------------


def change_preferences(session: Session, subscriber: Subscriber, preferences: Preferences) -> None:
    """Store new preferences chosen on the preferences page."""
    apply_preferences(subscriber, preferences)
    audit.record(session, "web", "subscriber.preferences", subscriber_id=subscriber.id)


def change_tldr_choice(session: Session, subscriber: Subscriber, show_tldr: bool) -> None:
    """Show or hide Semantic Scholar's TL;DR in the reader's digests (and their browser copies)."""
    if subscriber.show_tldr != show_tldr:
        subscriber.show_tldr = show_tldr
        audit.record(session, "web", "subscriber.tldr", subscriber_id=subscriber.id, show_tldr=show_tldr)


def send_preferences_link(
    settings: Settings, subscriber_id: int, *, sessions: sessionmaker[Session] | None = None
) -> str | None:
    """Mail a subscriber a fresh preferences link; the outcome, or None if they get no mail.

    Asked for from a digest's web page, which shows none itself: only the mailbox gets the key.
    """
    with (sessions or session_factory(settings))() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.status not in (
            SubscriberStatus.ACTIVE,
            SubscriberStatus.UNSUBSCRIBED,
        ):
            return None
        if is_suppressed(session, subscriber.email):
            return None
        email = emails.preferences_link(
            subscriber.email,
            link_url=links.preferences_link(settings, subscriber.id, subscriber.email),
            base_url=settings.base_url,
            postal_address=settings.postal_address,
        )
    with Outbox.from_settings(settings, pacer=send_pacer_for(settings)) as outbox:
        outcome = outbox.send(email)
    log.info("preferences link to subscriber %s: %s", subscriber_id, outcome.verdict)
    return str(outcome.verdict)

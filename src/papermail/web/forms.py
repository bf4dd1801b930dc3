"""The signup and preferences forms: raw values for re-display, and their validation."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import available_timezones

from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from papermail.db.models import Frequency, Subscriber
from papermail.subscribers.core import InvalidInput, normalise_email
from papermail.subscribers.preferences import Preferences, parse_preferences

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HONEYPOT_FIELD = "website"
DEFAULT_TIMEZONE = "UTC"
# Legacy aliases and POSIX-style zones only clutter the picker; the canonical names cover everyone.
_HIDDEN_ZONE_PREFIXES = (
    "Etc/",
    "SystemV/",
    "posix/",
    "right/",
    "US/",
    "Canada/",
    "Mexico/",
    "Brazil/",
    "Chile/",
)
# Longest value we accept in any free-text form field (the email has its own, stricter limit).
MAX_FIELD_LENGTH = 1000
# Control characters (CR/LF included) never belong in a form field; "<" and ">" would be markup.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MARKUP = re.compile(r"[<>]")


def check_text_fields(fields: Mapping[str, str]) -> None:
    """Refuse over-long values, control characters (CR/LF) and markup in any form field."""
    for label, value in fields.items():
        if len(value) > MAX_FIELD_LENGTH:
            raise InvalidInput(f"{label} is too long (at most {MAX_FIELD_LENGTH} characters).")
        if _CONTROL.search(value):
            raise InvalidInput(f"{label} can't contain line breaks or control characters.")
        if _MARKUP.search(value):
            raise InvalidInput(f"{label} can't contain HTML: please remove < and >.")


@cache
def timezone_choices() -> tuple[str, ...]:
    """The IANA zones offered in the picker: UTC first, then canonical Area/City names sorted."""
    available = available_timezones()
    canonical = _canonical_zones() & available
    if not canonical:  # no zone.tab next to the zone files: drop what we know to be aliases
        canonical = {z for z in available if "/" in z and not z.startswith(_HIDDEN_ZONE_PREFIXES)}
    return (DEFAULT_TIMEZONE, *sorted(canonical))


def _canonical_zones() -> set[str]:
    """The zones of the tz database's ``zone.tab``: one canonical name per place, no aliases.

    ``available_timezones()`` also lists backward-compatible links such as ``Asia/Calcutta``
    (now ``Asia/Kolkata``); offering both makes people pick between two names for one place.
    """
    for directory in zoneinfo.TZPATH:
        table = Path(directory) / "zone.tab"
        if table.is_file():
            lines = table.read_text(encoding="utf-8").splitlines()
            return {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
    return set()


_OPTION = Markup("<option>{}</option>")
_SELECTED_OPTION = Markup("<option selected>{}</option>")


@cache
def _timezone_option_tags() -> tuple[Markup, ...]:
    return tuple(_OPTION.format(zone) for zone in timezone_choices())


def timezone_options(selected: str) -> Markup:
    """The picker's ``<option>`` tags with ``selected`` chosen (the ~600 tags are built once)."""
    # Rendering 600 options through Jinja on every page view cost more than the rest of the form.
    zones = timezone_choices()
    tags = list(_timezone_option_tags())
    if selected in zones:
        tags[zones.index(selected)] = _SELECTED_OPTION.format(selected)
    else:  # a value we don't offer (validation refuses it) is shown as typed, escaped
        tags.append(_SELECTED_OPTION.format(selected))
    return Markup("").join(tags)


class FormErrors(dict[str, str]):
    """Field name -> message; ``"preferences"`` holds a message about the choices as a whole."""


@dataclass
class PreferenceFields:
    """What the form shows and sends for preferences, as text, exactly as the visitor left it."""

    topics: list[str] = field(default_factory=list)
    keywords: str = ""
    frequency: str = Frequency.WEEKLY.value
    send_weekday: str = "0"
    send_hour: str = "8"
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> PreferenceFields:
        return cls(
            topics=form.getlist("topics"),
            keywords=form.get("keywords", ""),
            frequency=form.get("frequency", ""),
            send_weekday=form.get("send_weekday", ""),
            send_hour=form.get("send_hour", ""),
            timezone=form.get("timezone", ""),
        )

    @classmethod
    def from_subscriber(cls, subscriber: Subscriber) -> PreferenceFields:
        return cls(
            topics=list(subscriber.topics),
            keywords=", ".join(subscriber.keywords),
            frequency=subscriber.frequency.value,
            send_weekday=str(subscriber.send_weekday),
            send_hour=str(subscriber.send_hour),
            timezone=subscriber.timezone,
        )

    def parse(self) -> Preferences:
        """Validated preferences, or InvalidInput with a message fit for the form."""
        check_text_fields(
            {
                "Keywords": self.keywords,
                "Frequency": self.frequency,
                "Send day": self.send_weekday,
                "Hour": self.send_hour,
                "Timezone": self.timezone,
                "Topics": ",".join(self.topics),
            }
        )
        return parse_preferences(
            topics=self.topics,
            keywords=self.keywords,
            frequency=self.frequency,
            send_weekday=self.send_weekday,
            send_hour=self.send_hour,
            timezone=self.timezone,
        )


@dataclass
class SignupFields:
    """The signup form: an address plus preferences, and the honeypot."""

    email: str = ""
    preferences: PreferenceFields = field(default_factory=PreferenceFields)
    honeypot: str = ""

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> SignupFields:
        return cls(
            email=form.get("email", ""),
            preferences=PreferenceFields.from_form(form),
            honeypot=form.get(HONEYPOT_FIELD, ""),
        )

    @property
    def is_bot(self) -> bool:
        """Only software fills the field people can't see."""
        return bool(self.honeypot.strip())

    def parse(self) -> tuple[str, Preferences, FormErrors]:
        """The normalised address and preferences, plus the errors to show (empty when valid)."""
        errors = FormErrors()
        email = ""
        preferences = Preferences()
        try:
            check_text_fields({"Email address": self.email})
            email = normalise_email(self.email)
        except InvalidInput as exc:
            errors["email"] = str(exc)
        try:
            preferences = self.preferences.parse()
        except InvalidInput as exc:
            errors["preferences"] = str(exc)
        return email, preferences, errors


def preferences_errors(fields: PreferenceFields) -> tuple[Preferences | None, FormErrors]:
    """Validate the preferences form alone."""
    try:
        return fields.parse(), FormErrors()
    except InvalidInput as exc:
        return None, FormErrors(preferences=str(exc))

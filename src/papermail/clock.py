"""The one clock: every "now" in papermail comes from here, so tests can freeze it."""

from datetime import UTC, datetime


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)

"""What an arXiv identifier says about its paper's age: the month its first version was submitted.

New-style ids (``1903.04209``, since April 2007) start with YYMM; old-style ids
(``hep-th/9901001``, 1991 to March 2007) carry YYMM after the archive. A paper cannot be older
than the start of that month, which bounds the age of a paper whose publication date is unknown;
and its first version was announced by the end of that month, so it is at least that old.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_NEW_STYLE = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}(?:v\d+)?$")
_OLD_STYLE = re.compile(r"^[a-z-]+(?:\.[A-Za-z-]+)?/(\d{2})(\d{2})\d{3}(?:v\d+)?$")
# Old-style two-digit years from 91 on are the 1990s (arXiv opened in August 1991).
FIRST_OLD_STYLE_YEAR = 91
# arXiv announces at 20:00 New York time, which is already the next day in UTC.
ANNOUNCEMENT_GRACE = timedelta(days=1)


def id_month_start(arxiv_id: str) -> datetime | None:
    """The first instant (UTC) of the month ``arxiv_id`` was issued in; None if it has no date."""
    if match := _NEW_STYLE.match(arxiv_id):
        century = 2000
    elif match := _OLD_STYLE.match(arxiv_id):
        century = 1900 if int(match[1]) >= FIRST_OLD_STYLE_YEAR else 2000
    else:
        return None
    year, month = century + int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        return None
    return datetime(year, month, 1, tzinfo=UTC)


def id_month_end(arxiv_id: str) -> datetime | None:
    """The first instant (UTC) after the month ``arxiv_id`` was issued in; None if it has no date."""
    start = id_month_start(arxiv_id)
    if start is None:
        return None
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def bounded_first_version(arxiv_id: str, published_at: datetime | None) -> datetime | None:
    """A first version's date no later than its id's month; None if the date can't be one.

    A date more than a day after the month (a cross-list's or replacement's listing date, say) is
    not the first version's, so it is dropped. Within that day, it is arXiv's announcement in New
    York time crossing midnight UTC, and the end of the month is kept instead.
    """
    end = id_month_end(arxiv_id)
    if published_at is None or end is None or published_at < end:
        return published_at
    return end if published_at < end + ANNOUNCEMENT_GRACE else None

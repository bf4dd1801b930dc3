"""What an arXiv identifier says about its paper's age: the month its first version was submitted.

New-style ids (``1903.04209``, since April 2007) start with YYMM; old-style ids
(``hep-th/9901001``, 1991 to March 2007) carry YYMM after the archive. A paper cannot be older
than the start of that month, which bounds the age of a paper whose publication date is unknown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_NEW_STYLE = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}(?:v\d+)?$")
_OLD_STYLE = re.compile(r"^[a-z-]+(?:\.[A-Za-z-]+)?/(\d{2})(\d{2})\d{3}(?:v\d+)?$")
# Old-style two-digit years from 91 on are the 1990s (arXiv opened in August 1991).
FIRST_OLD_STYLE_YEAR = 91


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

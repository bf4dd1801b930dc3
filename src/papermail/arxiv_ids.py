"""arXiv identifiers: how they are written, their canonical form, and what they say about a paper's age.

New-style ids (``1903.04209``, since April 2007) start with YYMM; old-style ids
(``hep-th/9901001``, 1991 to March 2007) carry YYMM after the archive. A paper cannot be older
than the start of that month, which bounds the age of a paper whose publication date is unknown;
and its first version was announced by the end of that month, so it is at least that old.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# New style (2007+): YYMM.NNNN or YYMM.NNNNN, then an optional version.
_NEW_STYLE = r"(\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(?:v(\d+))?"
# Old style: archive[.SUBJECT-CLASS]/YYMMNNN, e.g. cond-mat/0412498 or math.GT/0309136v2. Only the
# archives arXiv had before 2007: any other word (``passwd/0101001``) is no paper.
OLD_STYLE_ARCHIVES = [
    "acc-phys",
    "adap-org",
    "alg-geom",
    "ao-sci",
    "astro-ph",
    "atom-ph",
    "bayes-an",
    "chao-dyn",
    "chem-ph",
    "cmp-lg",
    "comp-gas",
    "cond-mat",
    "cs",
    "dg-ga",
    "funct-an",
    "gr-qc",
    "hep-ex",
    "hep-lat",
    "hep-ph",
    "hep-th",
    "math",
    "math-ph",
    "mtrl-th",
    "nlin",
    "nucl-ex",
    "nucl-th",
    "patt-sol",
    "physics",
    "plasm-ph",
    "q-alg",
    "q-bio",
    "quant-ph",
    "solv-int",
    "supr-con",
]
_OLD_STYLE = (
    rf"({'|'.join(sorted(OLD_STYLE_ARCHIVES, key=len, reverse=True))})(?:\.[A-Za-z]{{2}})?"
    r"/(\d{2}(?:0[1-9]|1[0-2])\d{3})(?:v(\d+))?"
)
# An id stands on its own: not inside a longer word, number or archive name.
_NEW_STYLE_ID = re.compile(rf"(?<![\w.]){_NEW_STYLE}(?!\w|\.\d)")
_OLD_STYLE_ID = re.compile(rf"(?<![\w.-]){_OLD_STYLE}(?!\w|\.\d)", re.IGNORECASE)
# Old-style two-digit years from 91 on are the 1990s (arXiv opened in August 1991).
FIRST_OLD_STYLE_YEAR = 91
# arXiv announces at 20:00 New York time, which is already the next day in UTC.
ANNOUNCEMENT_GRACE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ArxivId:
    """A canonical arXiv id (no version; old-style archives lower-cased) and the version, if given."""

    id: str
    version: int | None


def parse_arxiv_id(text: str) -> ArxivId:
    """Find the arXiv id in an id, URL, ``oai:`` guid or ``arXiv:`` reference; raise ValueError if none."""
    old = _OLD_STYLE_ID.search(text)
    new = _NEW_STYLE_ID.search(text)
    # Whichever comes first wins, so "https://arxiv.org/abs/2104.12255v1" is never read from its path.
    if old and (not new or old.start() < new.start()):
        version = old.group(3)
        return ArxivId(f"{old.group(1).lower()}/{old.group(2)}", int(version) if version else None)
    if new:
        version = new.group(2)
        return ArxivId(new.group(1), int(version) if version else None)
    raise ValueError(f"no arXiv id in {text[:80]!r}" if text.strip() else "no arXiv id")


def id_month_start(arxiv_id: str) -> datetime | None:
    """The first instant (UTC) of the month ``arxiv_id`` was issued in; None if it is no arXiv id."""
    if match := _NEW_STYLE_ID.fullmatch(arxiv_id):
        number, century = match[1], 2000
    elif match := _OLD_STYLE_ID.fullmatch(arxiv_id):
        number = match[2]
        century = 1900 if int(number[:2]) >= FIRST_OLD_STYLE_YEAR else 2000
    else:
        return None
    return datetime(century + int(number[:2]), int(number[2:4]), 1, tzinfo=UTC)


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

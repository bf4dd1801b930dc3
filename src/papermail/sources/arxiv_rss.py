"""arXiv listings over RSS: the current format (rss.arxiv.org) and the older RSS 1.0/RDF of mirrors.

Current format: ``arxiv:announce_type`` (new, replace, cross, replace-cross, absonly), ``dc:creator``
as one comma-joined string, and a plain-text description ``arXiv:ID Announce Type: … Abstract: …``.
Older format: version, primary category and UPDATED / CROSS LISTED inside the title, HTML-escaped
authors and abstract, and no per-item dates. A bad query comes back as a valid, empty channel titled
``Feed error for query: …``: that is an error, never "no new papers".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import feedparser
import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.arxiv_ids import ArxivId, parse_arxiv_id
from papermail.config import Settings
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.sources.feeds import entry_ref, parsed_date, read_feed
from papermail.sources.normalise import html_to_text, normalise_categories, normalise_text, split_authors
from papermail.sources.records import PaperRecord, ParsedFeed, Problem

NEW, CROSS = "new", "cross"
ANNOUNCE_TYPES = frozenset({NEW, CROSS, "replace", "replace-cross", "absonly"})
FEED_ERROR_PREFIX = "Feed error for query"
# rss.arxiv.org takes "cat1+cat2+…"; past this many characters of categories a listing is split
# into several feeds, so no URL grows long whatever the subscribers follow (166 offered).
MAX_CATEGORY_CHARS = 200

_DESCRIPTION = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?(?P<abstract>.*)$",
    re.DOTALL | re.IGNORECASE,
)
_LEGACY_TITLE = re.compile(
    r"^(?P<title>.*?)\.?\s*\(arXiv:(?P<id>[^\s\[\]]+)\s*\[(?P<primary>[^\]]*)\]"
    r"\s*(?P<flag>UPDATED|CROSS LISTED)?\)\s*$",
    re.DOTALL,
)
_LEGACY_FLAGS = {None: NEW, "UPDATED": "replace", "CROSS LISTED": CROSS}


def rss_url(settings: Settings, categories: Sequence[str] | None = None) -> str:
    """One feed listing ``categories`` (default: the configured ones), as rss.arxiv.org joins them."""
    return settings.arxiv_rss_url + "+".join(categories or settings.arxiv_categories)


def rss_urls(settings: Settings, categories: Sequence[str]) -> list[str]:
    """The feeds listing ``categories``, split so that no URL carries over MAX_CATEGORY_CHARS of them."""
    groups: list[list[str]] = [[]]
    for category in categories:
        if groups[-1] and len("+".join([*groups[-1], category])) > MAX_CATEGORY_CHARS:
            groups.append([])
        groups[-1].append(category)
    return [rss_url(settings, group) for group in groups if group]


def categories_to_fetch(session: Session, settings: Settings) -> list[str]:
    """The configured categories, then every other one an active subscriber follows (sorted)."""
    followed: set[str] = set()
    query = sa.select(Subscriber.topics).where(Subscriber.status == SubscriberStatus.ACTIVE)
    for topics in session.execute(query.execution_options(yield_per=1000)).scalars():
        followed.update(topics or ())
    configured = list(settings.arxiv_categories)
    return configured + sorted(followed - set(configured))


def parse_rss(content: bytes, url: str | None = None) -> ParsedFeed:
    """Records from an arXiv RSS listing; bad entries and error channels become problems."""
    feed, problems = read_feed(content, url)
    parsed = rss_records(feed, url)
    parsed.problems[:0] = problems
    return parsed


def rss_records(feed: feedparser.FeedParserDict, url: str | None = None) -> ParsedFeed:
    """The normalising half of :func:`parse_rss`, for a feed feedparser has already read."""
    parsed = ParsedFeed(entries_seen=len(feed.entries))
    channel = feed.get("feed") or {}
    title = normalise_text(channel.get("title") or "")
    if title.startswith(FEED_ERROR_PREFIX):
        detail = normalise_text(channel.get("description") or channel.get("subtitle") or "")
        parsed.problems.append(Problem.feed(url, f"arXiv answered {title!r}: {detail or 'no detail'}"))
        return parsed
    legacy = feed.get("version") == "rss10"
    channel_date = parsed_date(channel, "updated_parsed", "published_parsed")
    for index, entry in enumerate(feed.entries):
        try:
            parsed.records.append(_record(entry, legacy=legacy, channel_date=channel_date))
        except ValueError as exc:
            parsed.problems.append(Problem.entry(url, entry_ref(entry, index), str(exc)))
    return parsed


def _record(entry: dict, *, legacy: bool, channel_date: datetime | None) -> PaperRecord:
    raw_title = entry.get("title") or ""
    description = entry.get("summary") or entry.get("description") or ""
    current = _DESCRIPTION.match(description)
    old = _LEGACY_TITLE.match(raw_title) if legacy else None
    ident = _identify(entry, current, old)

    if old:
        title, announce = old["title"], _LEGACY_FLAGS[old["flag"]]
    else:
        title = raw_title
        announce = (entry.get("arxiv_announce_type") or (current and current["type"]) or NEW).lower()
    title = normalise_text(title)
    if not title:
        raise ValueError("no title")
    if announce not in ANNOUNCE_TYPES:
        raise ValueError(f"unknown announce type {announce!r}")

    # Only the old format's abstract and authors are HTML; the current format's are plain text
    # whose "<" is math, not markup.
    to_text = html_to_text if legacy else normalise_text
    abstract = to_text(current["abstract"] if current else description)
    authors = [
        name
        for creator in (entry.get("authors") or [{"name": entry.get("author") or ""}])
        for name in split_authors(to_text(creator.get("name") or ""))
    ]
    tags = [tag.get("term") for tag in entry.get("tags") or []]
    primary, categories = normalise_categories(old["primary"] if old else (tags or [None])[0], tags)

    announced = parsed_date(entry, "published_parsed", "updated_parsed") or channel_date
    version = ident.version or (1 if announce in (NEW, CROSS) else None)
    return PaperRecord(
        arxiv_id=ident.id,
        version=version,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        primary_category=primary,
        categories=tuple(categories),
        # A new paper is first published now. A cross-list's or replacement's first version is
        # older (by days or by years) and unknown here, so it is left for the API lookup.
        published_at=announced if announce == NEW else None,
        updated_at=announced,
        announced_new=announce == NEW,
    )


def _identify(entry: dict, current: re.Match[str] | None, old: re.Match[str] | None) -> ArxivId:
    """The id from the guid, link, description or title, with the version from whichever has one."""
    candidates = [entry.get("id"), entry.get("link"), current and current["id"], old and old["id"]]
    found = []
    for candidate in candidates:
        if isinstance(candidate, str):
            try:
                found.append(parse_arxiv_id(candidate))
            except ValueError:
                continue
    if not found:
        raise ValueError("no arXiv id in the entry")
    first = found[0].id
    version = next((f.version for f in found if f.id == first and f.version), None)
    return ArxivId(first, version)

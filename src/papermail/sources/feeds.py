"""Reading XML feeds with feedparser without trusting or mangling them."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import feedparser

from papermail.sources.normalise import html_to_text, normalise_text
from papermail.sources.records import Problem

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def read_feed(content: bytes, url: str | None) -> tuple[feedparser.FeedParserDict, list[Problem]]:
    """Parse a feed, keeping text verbatim; return it with a problem if it was malformed or no feed.

    feedparser's sanitiser is off: it would turn an abstract's ``$x<y$ and $z>w$`` into ``$xw$``.
    Nothing it returns is trusted as markup; the parsers decide what is HTML and what is text.
    """
    try:
        # A stream, never bytes: feedparser opens anything that looks like a file name.
        feed = feedparser.parse(io.BytesIO(content), sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser promises not to raise; a feed must never crash a run
        return feedparser.FeedParserDict(feed={}, entries=[]), [
            Problem.feed(url, f"could not parse the feed: {exc!r}")
        ]
    problems = []
    if feed.get("bozo"):
        reason = f"malformed feed: {_describe(feed.get('bozo_exception'))}"
        if feed.entries:
            reason += f"; kept the {len(feed.entries)} entries that could be read"
        problems.append(Problem.feed(url, reason))
    elif not feed.get("version") and not feed.entries:
        problems.append(Problem.feed(url, "not an RSS or Atom feed"))
    return feed, problems


def _describe(exc: object) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message.splitlines()[0]


def entry_text(entry: dict, key: str) -> str:
    """An entry's field as clean text, read as HTML only when the feed declares it HTML."""
    value = entry.get(key) or ""
    detail = entry.get(f"{key}_detail") or {}
    return html_to_text(value) if detail.get("type") in _HTML_TYPES else normalise_text(value)


def parsed_date(item: dict, *keys: str) -> datetime | None:
    """The first of ``keys`` (feedparser's UTC ``*_parsed`` tuples) present, as an aware datetime."""
    for key in keys:
        # dict.get, not item.get: feedparser warns when "updated" falls back to "published".
        value = to_datetime(dict.get(item, key))
        if value:
            return value
    return None


def to_datetime(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's UTC ``*_parsed`` tuple as an aware datetime (None if missing or impossible)."""
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def entry_ref(entry: dict, index: int) -> str:
    """How to name an entry in a problem report: its id, link or title, else its position."""
    for key in ("id", "link", "title"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return normalise_text(value)[:200]
    return f"entry #{index + 1}"

"""/trending, /trending.json and /trending.xml: the public ranking as a page, JSON and an Atom feed.

A response depends only on the scoring run it shows and the query, so each rendered body is kept in
this process until the run changes (a bounded cache, keyed by run id). Which run is the latest is
looked up at most once per ``PREVIEW_TTL_SECONDS`` per window, like the home page's preview: a hot
page costs no database query at all. The run's id and time are the ``ETag`` and ``Last-Modified``,
so feed readers and caches ask again with a conditional request and get a bodiless 304.

Absolute links come from ``PAPERMAIL_BASE_URL``, never from the request's Host header: a cached body
is shared by every visitor and must not carry a host one of them made up.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, render_template, request

from papermail import __version__, clock
from papermail.digest.period import describe_period, key_of
from papermail.web.context import WebContext, web_context
from papermail.web.listing import (
    PAGE_SIZE,
    WINDOW_FREQUENCIES,
    WINDOWS,
    BadQuery,
    Listing,
    NoRanking,
    NotRankedYet,
    RunStamp,
    TrendingQuery,
    find_run,
    parse_query,
    read_listing,
)

blueprint = Blueprint("feeds", __name__)

JSON_VERSION = 1
CACHED_BODIES = 256  # distinct (run, query, format) bodies kept per process
# Public data that changes at most with each scoring run: anyone may keep it for a minute.
CACHE_CONTROL = "public, max-age=60"
ATOM_AUTHORS = 10
MIMETYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "xml": "application/atom+xml; charset=utf-8",
}


class BodyCache:
    """A small, thread-safe LRU of rendered bodies (a query string can't grow it without bound)."""

    def __init__(self, size: int = CACHED_BODIES) -> None:
        self._size = size
        self._bodies: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], compute: Callable[[], Any]) -> Any:
        """The value under ``key``, computed (outside the lock) if missing."""
        with self._lock:
            if key in self._bodies:
                self._bodies.move_to_end(key)
                return self._bodies[key]
        value = compute()
        with self._lock:
            self._bodies[key] = value
            while len(self._bodies) > self._size:
                self._bodies.popitem(last=False)
        return value


def _bodies() -> BodyCache:
    return current_app.extensions.setdefault("papermail.feeds", BodyCache())


@blueprint.get("/trending")
def page() -> Response:
    return _serve("html")


@blueprint.get("/trending.json")
def as_json() -> Response:
    return _serve("json")


@blueprint.get("/trending.xml")
def atom() -> Response:
    return _serve("xml")


def _serve(kind: str) -> Response:
    context = web_context()
    extra_topics = frozenset(context.settings.arxiv_categories)
    try:
        query = parse_query(request.args.to_dict(flat=False), extra_topics)
        run = _run_for(context, query)
    except BadQuery as exc:
        return _problem(kind, HTTPStatus.BAD_REQUEST, str(exc))
    except NotRankedYet as exc:
        return _on_its_way(kind, context, query, str(exc))
    except NoRanking as exc:
        return _problem(kind, HTTPStatus.NOT_FOUND, str(exc))
    etag = _etag(kind, run, query)
    last_modified = run.finished_at.replace(microsecond=0)
    response = Response(mimetype=MIMETYPES[kind].split(";")[0])
    response.set_etag(etag)
    response.last_modified = last_modified
    response.headers["Cache-Control"] = CACHE_CONTROL
    # "*" matches any page that exists: whether this one does (?page=99) shows only on rendering.
    any_version = bool(request.if_none_match and request.if_none_match.star_tag)
    if not any_version and _not_modified(etag, last_modified):
        response.status_code = HTTPStatus.NOT_MODIFIED
        return response
    try:
        body = _bodies().get((kind, run.run_id, query), lambda: _render(kind, context, query, run))
    except NoRanking as exc:
        return _problem(kind, HTTPStatus.NOT_FOUND, str(exc))
    if any_version:
        response.status_code = HTTPStatus.NOT_MODIFIED
        return response
    response.set_data(body)
    response.headers["Content-Type"] = MIMETYPES[kind]
    return response


def _run_for(context: WebContext, query: TrendingQuery) -> RunStamp:
    if query.period is None:
        # A new run appears at most hourly: re-check which is latest once per TTL, not per request.
        return context.cached(f"trending-run:{query.window}", lambda: _find(context, query))
    # A period's pinned run never changes once its digest exists; misses are not kept.
    return _bodies().get(("period", query.period), lambda: _find(context, query))


def _find(context: WebContext, query: TrendingQuery) -> RunStamp:
    return context.read(lambda session: find_run(session, query))


def _etag(kind: str, run: RunStamp, query: TrendingQuery) -> str:
    identity = repr((__version__, JSON_VERSION, kind, query)).encode()
    return f"r{run.run_id}-{hashlib.sha256(identity).hexdigest()[:16]}"


def _not_modified(etag: str, last_modified: datetime) -> bool:
    if request.if_none_match:
        # RFC 9110 §13.1.2: If-None-Match compares weakly (a W/"…" copy of ours matches).
        return request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    return since is not None and since >= last_modified


def _problem(kind: str, status: HTTPStatus, message: str) -> Response:
    """A one-line error in the format asked for (never cached: the next run may fix it)."""
    if kind == "json":
        body = json.dumps({"version": JSON_VERSION, "error": message})
    elif kind == "xml":
        body = f"{status.phrase}: {message}\n"
    else:
        body = render_template(
            "error.html", title=status.phrase, message=f"{message[:1].upper()}{message[1:]}."
        )
    mimetype = {"json": "application/json", "xml": "text/plain"}.get(kind, "text/html")
    return Response(body, status=status, mimetype=mimetype)


def _on_its_way(kind: str, context: WebContext, query: TrendingQuery, reason: str) -> Response:
    """Before the first ranking: a page, an empty list or an empty feed, each saying why (never cached)."""
    now = clock.now()
    period = key_of(WINDOW_FREQUENCIES[query.window], now.astimezone(UTC).date())
    base_url = context.settings.base_url
    if kind == "json":
        body = json.dumps({**_json_frame(query, period), "reason": reason}, ensure_ascii=False)
    elif kind == "xml":
        title = _title_of(query, live=True, period=period)
        head = _atom_head(base_url, query, _feed_tag(base_url, query, period), title, now)
        body = render_template("trending.xml", **head, subtitle=reason, entries=[])
    else:
        body = render_template("error.html", title=_title_of(query, live=True, period=period), message=reason)
    response = Response(body, mimetype=MIMETYPES[kind].split(";")[0])
    response.headers["Content-Type"] = MIMETYPES[kind]
    response.headers["Cache-Control"] = "no-cache"  # the first ranking may land any minute
    return response


# -- rendering ------------------------------------------------------------------------------------


def _render(kind: str, context: WebContext, query: TrendingQuery, run: RunStamp) -> bytes:
    listing = context.read(lambda session: read_listing(session, query, run))
    base_url = context.settings.base_url
    if kind == "json":
        return json.dumps(listing_json(listing, base_url), ensure_ascii=False).encode()
    if kind == "xml":
        return render_template("trending.xml", **atom_context(listing, base_url)).encode()
    return render_template("trending.html", **page_context(listing)).encode()


def _url(base_url: str, path: str, params: list[tuple[str, str]]) -> str:
    return f"{base_url}{path}{'?' + urlencode(params) if params else ''}"


def _title(listing: Listing) -> str:
    return _title_of(listing.query, live=listing.run.live, period=listing.run.period)


def _title_of(query: TrendingQuery, *, live: bool, period: str) -> str:
    topics = f" in {', '.join(query.topics)}" if query.topics else ""
    if live:
        span = "today" if query.window == "24h" else "this week"
        return f"Trending {span}{topics}"
    return f"Trending{topics}, {describe_period(period)}"


def page_context(listing: Listing) -> dict[str, Any]:
    """What trending.html shows: the papers, paging, and links to the other windows and formats."""
    query = listing.query

    def link(path: str = "/trending", **changes: Any) -> str:
        return _url("", path, replace(query, **changes).params())

    return {
        "title": _title(listing),
        "listing": listing,
        "windows": [(window, link(window=window, page=1), window == query.window) for window in WINDOWS],
        "without_topic": {
            topic: link(topics=tuple(t for t in query.topics if t != topic), page=1) for topic in query.topics
        },
        "previous_url": link(page=query.page - 1) if query.page > 1 else None,
        "next_url": link(page=query.page + 1) if query.page < listing.pages else None,
        "live_url": link(period=None, page=1),
        "feed_url": link("/trending.xml", page=1),
        "json_url": link("/trending.json"),
        "as_of": f"{listing.run.as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    }


def listing_json(listing: Listing, base_url: str) -> dict[str, Any]:
    """The documented JSON (docs/trending-feeds.md, docs/trending.schema.json)."""
    query, run = listing.query, listing.run

    def page_url(number: int) -> str:
        return _url(base_url, "/trending.json", query.params(page=number))

    return _json_frame(
        query,
        run.period,
        live=run.live,
        run={"id": run.run_id, "as_of": _timestamp(run.as_of), "finished_at": _timestamp(run.finished_at)},
        total=listing.total,
        pages=listing.pages,
        next_url=page_url(query.page + 1) if query.page < listing.pages else None,
        previous_url=page_url(query.page - 1) if query.page > 1 else None,
        papers=[
            {
                "rank": entry.rank,
                "run_rank": entry.run_rank,
                "score": entry.score,
                "arxiv_id": entry.arxiv_id,
                "title": entry.card.title,
                "authors": list(entry.authors),
                "primary_category": entry.primary_category,
                "categories": list(entry.categories),
                "evidence": entry.card.evidence,
                "published_at": _timestamp(entry.published_at) if entry.published_at else None,
                "abstract_url": entry.card.abs_url,
                "pdf_url": entry.card.pdf_url,
                "huggingface_url": entry.card.hf_url,
                "code_url": entry.card.code_url,
                "signals": entry.signals,
                "tldr": entry.card.tldr or None,
                "tldr_url": entry.card.tldr_url or None,
            }
            for entry in listing.entries
        ],
    )


def _json_frame(
    query: TrendingQuery,
    period: str,
    *,
    live: bool = True,
    run: dict[str, Any] | None = None,
    total: int = 0,
    pages: int = 1,
    next_url: str | None = None,
    previous_url: str | None = None,
    papers: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The listing JSON's keys in their documented order; the defaults are an empty listing."""
    return {
        "version": JSON_VERSION,
        "window": query.window,
        "period": period,
        "live": live,
        "topics": list(query.topics),
        "run": run,
        "page": query.page,
        "per_page": PAGE_SIZE,
        "total": total,
        "pages": pages,
        "next": next_url,
        "previous": previous_url,
        "papers": list(papers),
    }


def atom_context(listing: Listing, base_url: str) -> dict[str, Any]:
    """What trending.xml needs: ids stable per paper, window and period, so readers see no repeats."""
    query, run = listing.query, listing.run
    tag = _feed_tag(base_url, query, run.period)
    return {
        **_atom_head(base_url, query, tag, _title(listing), run.finished_at),
        "entries": [
            {
                "id": f"{tag}/{entry.arxiv_id}",
                "entry": entry,
                "authors": entry.authors[:ATOM_AUTHORS],
                "published": _timestamp(entry.published_at) if entry.published_at else None,
            }
            for entry in listing.entries
        ],
    }


def _feed_tag(base_url: str, query: TrendingQuery, period: str) -> str:
    """What the ids of the feed and its entries start with: one per site, window and period."""
    authority = urlsplit(base_url).hostname or "localhost"
    return f"tag:{authority},{period[:4]}:trending/{query.window}/{period}"


def _atom_head(
    base_url: str, query: TrendingQuery, tag: str, title: str, updated: datetime
) -> dict[str, Any]:
    """The feed's own title, id, time and links, as trending.xml shows them above the entries."""
    return {
        "title": f"papermail: {title}",
        "feed_id": f"{tag}/{'+'.join(query.topics) or 'all'}",
        "self_url": _url(base_url, "/trending.xml", query.params(page=1)),
        "page_url": _url(base_url, "/trending", query.params(page=1)),
        "updated": _timestamp(updated),
    }


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")

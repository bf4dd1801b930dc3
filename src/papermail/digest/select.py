"""Choosing each subscriber's papers for a period from one pinned trending ranking.

A paper qualifies for a subscriber when one of its categories (cross-lists included) is among their
topics, or one of their keywords occurs as a whole word, in any case, in its title or abstract. The
digest is the best-ranked qualifying papers that the subscriber has not been sent before. Papers are
rows keyed by the version-less arXiv id, so a new version or a cross-list of a paper already sent is
the same row and is never sent again.

Subscribers with the same topics and keywords are one group: the ranking is scanned once per group,
and only the per-person step (dropping what each one already received) is done per subscriber.
Readers who voted on papers (and want a personal mix) get the group's leading eligible papers
reordered by :class:`~papermail.digest.personal.PersonalRanker` (docs/relevance.md); everyone else
takes the trending order exactly as it is, without any model being built.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.categories import with_archives
from papermail.db.models import Delivery, Frequency, Paper, Subscriber, TrendScore
from papermail.digest.personal import RERANK_POOL, TIE_LIMIT, PersonalRanker

# Bound parameters per IN (...) query: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 1000


@dataclass(frozen=True)
class Selection:
    """The papers chosen for one subscriber, or why there are none (``skip_reason`` set ⇔ no papers)."""

    paper_ids: list[int]
    skip_reason: str | None = None
    # Per paper, the personal "why" ("" for none); empty when trending alone chose the papers.
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if bool(self.paper_ids) == bool(self.skip_reason):
            raise ValueError("a Selection has either papers or a skip reason, not both or neither")


@dataclass(frozen=True)
class Interests:
    """What decides a subscriber's papers; subscribers with equal Interests share selection work."""

    topics: frozenset[str]
    keywords: frozenset[str]  # lower-cased
    shown_keywords: tuple[str, ...] = field(default=(), compare=False)
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    # Each keyword's first word, lower-cased: a paper containing none of them can't match, and a
    # substring test is far cheaper than the regex (readers with votes scan deep into a ranking).
    probes: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, topics: Iterable[str], keywords: Iterable[str]) -> Interests:
        """Interests from a subscriber's stored topics and keywords."""
        shown = tuple(dict.fromkeys(" ".join(k.split()) for k in keywords if k.strip()))
        return cls(
            topics=frozenset(topics),
            keywords=frozenset(k.lower() for k in shown),
            shown_keywords=shown,
            pattern=keyword_pattern(shown),
            probes=tuple(dict.fromkeys(k.split()[0].lower() for k in shown)),
        )

    @property
    def follows_everything(self) -> bool:
        return not self.topics and not self.keywords

    def matches(self, paper: RankedPaper) -> bool:
        """True if the paper is in one of the topics or mentions one of the keywords."""
        if self.follows_everything or not self.topics.isdisjoint(paper.categories):
            return True
        if self.pattern is None or not any(probe in paper.folded for probe in self.probes):
            return False
        return self.pattern.search(paper.text) is not None

    def describe(self) -> str:
        """``in cs.RO or cs.SY or matching "SLAM"``: the interests as words, for people."""
        return describe_interests(sorted(self.topics), self.shown_keywords)


def describe_interests(topics: Sequence[str], keywords: Sequence[str], joiner: str = "or") -> str:
    """``in cs.RO or cs.SY`` / ``matching "SLAM"`` / both; empty when following everything."""
    parts = []
    if topics:
        parts.append("in " + _join(list(topics), joiner))
    if keywords:
        parts.append("matching " + _join([f"\u201c{k}\u201d" for k in keywords], joiner))
    return f" {joiner} ".join(parts)


def _join(items: list[str], joiner: str) -> str:
    if len(items) <= 2:
        return f" {joiner} ".join(items)
    return ", ".join(items[:-1]) + f" {joiner} " + items[-1]


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """A case-insensitive regex finding any keyword as whole words (``c++`` and ``r&d`` too)."""
    if not keywords:
        return None
    # Longest first, so "large language model" wins over "language" (same answer, clearer intent).
    alternatives = [r"\s+".join(map(re.escape, k.split())) for k in sorted(keywords, key=len, reverse=True)]
    # Lookarounds instead of \b: \b needs a word character at the edge, which "c++" doesn't have.
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RankedPaper:
    """What selection needs to know about one paper of a ranking."""

    paper_id: int
    categories: frozenset[str]
    text: str  # title and abstract, for keywords; empty when no subscriber has keywords
    score: float = 0.0  # the trending score: equal scores share a rank when blending
    folded: str = ""  # text, lower-cased


def load_ranking(session: Session, run_id: int, *, with_text: bool) -> list[RankedPaper]:
    """The run's papers in rank order (one query); titles and abstracts only if keywords need them."""
    columns = [TrendScore.paper_id, Paper.primary_category, Paper.categories, TrendScore.score]
    if with_text:
        columns += [Paper.title, Paper.abstract]
    query = (
        sa.select(*columns)
        .join(Paper, Paper.id == TrendScore.paper_id)
        .where(TrendScore.run_id == run_id)
        .order_by(TrendScore.rank)
    )
    ranking = []
    for row in session.execute(query):
        # An archive followed ("astro-ph") matches every category in it.
        categories = with_archives([*(row.categories or ()), *filter(None, [row.primary_category])])
        text = f"{row.title}\n{row.abstract}" if with_text else ""
        ranking.append(RankedPaper(row.paper_id, categories, text, row.score, text.lower()))
    return ranking


def received_paper_ids(session: Session, subscriber_ids: Sequence[int]) -> dict[int, set[int]]:
    """Every paper each subscriber was given in any delivery so far, whatever its status.

    Strict on purpose: a delivery that failed or is still retrying may yet go out (a retry, an
    admin resend), and a paper must never reach a reader twice.
    """
    received: dict[int, set[int]] = {}
    for start in range(0, len(subscriber_ids), IN_CHUNK):
        chunk = subscriber_ids[start : start + IN_CHUNK]
        query = sa.select(Delivery.subscriber_id, Delivery.paper_ids).where(Delivery.subscriber_id.in_(chunk))
        for subscriber_id, paper_ids in session.execute(query):
            if paper_ids:
                received.setdefault(subscriber_id, set()).update(paper_ids)
    return received


class _Matches:
    """The ids of a ranking's papers matching one Interests, in rank order, found only as needed.

    Most subscribers of a group need just the first ``size`` matches plus the few they already
    received, so the ranking is scanned no further than the hungriest member of the group needs.
    """

    def __init__(self, pending: Iterable[RankedPaper]) -> None:
        """``pending``: the matches in rank order, consumed only as far as they are asked for."""
        self._pending = iter(pending)
        self._found: list[RankedPaper] = []

    @classmethod
    def scan(cls, ranking: Sequence[RankedPaper], interests: Interests) -> _Matches:
        """The matches found by testing each paper of the ranking in turn."""
        return cls(paper for paper in ranking if interests.matches(paper))

    def __iter__(self) -> Iterator[RankedPaper]:
        index = 0
        while True:
            if index == len(self._found):
                following = next(self._pending, None)
                if following is None:
                    return
                self._found.append(following)
            yield self._found[index]
            index += 1

    def first(self, count: int) -> list[RankedPaper]:
        """The first ``count`` matches (fewer if the ranking runs out), scanning only as needed."""
        while len(self._found) < count:
            following = next(self._pending, None)
            if following is None:
                break
            self._found.append(following)
        return self._found[:count]


class RunSelection:
    """One scoring run's ranking over a planning pass: read once, each Interests' matches found once,
    and one personal ranker (its text model fitted once). The run's scores never change once it
    has finished, so every chunk of the pass can share them.
    """

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.personal = PersonalRanker(run_id)
        self._ranking: list[RankedPaper] = []
        self._with_text: bool | None = None  # None: not read yet
        self._position_of: dict[int, int] = {}  # paper id -> place in the ranking
        # Each category's papers, in rank order.
        self._in_category: dict[str, list[RankedPaper]] = {}
        self._matches: dict[Interests, _Matches] = {}

    def matches(self, session: Session, interests: Interests) -> _Matches:
        """The run's papers matching ``interests``, found as needed and kept for the pass."""
        if self._with_text is None or (interests.keywords and not self._with_text):
            self._with_text = bool(interests.keywords)
            self._ranking = load_ranking(session, self.run_id, with_text=self._with_text)
            self._position_of = {paper.paper_id: n for n, paper in enumerate(self._ranking)}
            self._in_category = {}
            for paper in self._ranking:
                for category in paper.categories:
                    self._in_category.setdefault(category, []).append(paper)
            self._matches.clear()
        if interests not in self._matches:
            merged = self._merged(session, interests)
            found = _Matches.scan(self._ranking, interests) if merged is None else _Matches(merged)
            self._matches[interests] = found
        return self._matches[interests]

    def _merged(self, session: Session, interests: Interests) -> Iterator[RankedPaper] | None:
        """The matches of ``interests`` as its topics' papers and its keywords' matches, merged in
        rank order; None for a scan of the whole ranking (no topics: everything, or keywords only).

        Readers with votes want ~110 matches, deep into a ranking for a rare topic: testing every
        paper on the way was most of their selection time. Keywords are tested once per pass for
        everyone with the same keywords, whatever their topics.
        """
        if not interests.topics:
            return None
        streams: list[Iterable[RankedPaper]] = [
            self._in_category.get(t, ()) for t in sorted(interests.topics)
        ]
        if interests.keywords:
            streams.append(self.matches(session, Interests.of((), interests.shown_keywords)))
        merged = heapq.merge(*streams, key=lambda paper: self._position_of[paper.paper_id])
        # A paper matching twice comes up twice in a row.
        return (next(same) for _, same in itertools.groupby(merged, key=lambda paper: paper.paper_id))


def select_for_subscribers(
    session: Session,
    run_id: int,
    subscribers: Sequence[Subscriber],
    *,
    size: int,
    run: RunSelection | None = None,
) -> dict[int, Selection]:
    """Each subscriber's papers from scoring run ``run_id``, keyed by subscriber id.

    Pass the same ``run`` (for ``run_id``) to every call of a planning pass, so the ranking is
    read, and the text model fitted, once.
    """
    groups: dict[Interests, list[Subscriber]] = {}
    for subscriber in subscribers:
        groups.setdefault(Interests.of(subscriber.topics, subscriber.keywords), []).append(subscriber)
    if not groups:
        return {}
    run = run or RunSelection(run_id)
    # Keywords first: the ranking is then read with its texts at once, if any group needs them.
    ordered = sorted(groups.items(), key=lambda group: not group[0].keywords)
    received = received_paper_ids(session, [s.id for s in subscribers])
    ranker = run.personal
    tastes = ranker.tastes(session, subscribers)
    selections: dict[int, Selection] = {}
    for interests, members in ordered:
        matches = run.matches(session, interests)
        for subscriber in members:
            got = received.get(subscriber.id, set())
            taste = tastes.get(subscriber.id)
            pool = _candidate_pool(matches, got | set(taste.paper_ids)) if taste else []
            if pool and taste:
                chosen, reasons = ranker.order(session, taste, pool, subscriber.relevance_mix, size)
                selections[subscriber.id] = Selection(chosen, reasons=reasons)
            else:
                selections[subscriber.id] = _select_one(matches, got, size, interests, subscriber.frequency)
    return selections


def _candidate_pool(matches: _Matches, excluded: set[int]) -> list[tuple[int, float]]:
    """(paper id, trending score) of the leading eligible papers, extended while the last one ties."""
    head = matches.first(RERANK_POOL + len(excluded) + 1)
    pool = [(paper.paper_id, paper.score) for paper in head if paper.paper_id not in excluded]
    if len(pool) <= RERANK_POOL or pool[RERANK_POOL][1] != pool[RERANK_POOL - 1][1]:
        return pool[:RERANK_POOL]
    # The last place ties: every paper with that score comes along, so none is cut arbitrarily.
    tied = pool[RERANK_POOL - 1][1]
    pool = pool[:RERANK_POOL] + [entry for entry in pool[RERANK_POOL:] if entry[1] == tied]
    for paper in itertools.islice(matches, len(head), None):
        if paper.score != tied or len(pool) >= TIE_LIMIT:
            break
        if paper.paper_id not in excluded:
            pool.append((paper.paper_id, paper.score))
    return pool[:TIE_LIMIT]


def _select_one(
    matches: Iterable[RankedPaper], received: set[int], size: int, interests: Interests, frequency: Frequency
) -> Selection:
    chosen: list[int] = []
    already_received = 0
    for paper in matches:
        paper_id = paper.paper_id
        if paper_id in received:
            already_received += 1
            continue
        chosen.append(paper_id)
        if len(chosen) == size:
            break
    if chosen:
        return Selection(chosen)
    return Selection([], skip_reason(interests, frequency, already_received))


def skip_reason(interests: Interests, frequency: Frequency, already_received: int = 0) -> str:
    """Why a subscriber gets no digest, e.g. ``no new papers in cs.RO this week``."""
    when = "today" if frequency == Frequency.DAILY else "this week"
    where = interests.describe()
    reason = f"no new papers {where} {when}" if where else f"no new papers {when}"
    if already_received == 1:
        reason += " (the one trending paper was in an earlier digest)"
    elif already_received:
        reason += f" (all {already_received} trending papers were in earlier digests)"
    return reason

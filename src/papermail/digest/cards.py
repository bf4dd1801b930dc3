"""Papers as a digest shows them: one card per paper, loaded and prepared once per batch.

A card is built once per batch and shared by every digest that has the paper; each reader then sees
it with their own personal reason, and with or without its TL;DR.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.categories import category_name
from papermail.db.models import Paper, TrendScore
from papermail.digest.request import DigestRequest
from papermail.digest.select import IN_CHUNK

ABSTRACT_WORDS = 60
TLDR_WORDS = 45  # S2's TL;DRs are one sentence (about 20 words); a longer one is cut, as abstracts are
AUTHORS_SHOWN = 3
# Only web links become hrefs: a javascript: or data: URL from a feed is not escaped by autoescape.
_WEB_URL = re.compile(r"https?://[^\s\"'<>]+\Z", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PaperCard:
    """One paper as the templates show it; built once per batch, shared by every digest."""

    title: str
    abs_url: str
    pdf_url: str
    hf_url: str | None
    code_url: str | None
    authors: str
    abstract: str
    category: str
    evidence: str
    arxiv_id: str = ""
    tldr: str = ""  # Semantic Scholar's one-sentence summary, shown above the abstract
    tldr_url: str = ""


def for_reader(card: PaperCard, request: DigestRequest, reason: str) -> PaperCard:
    """The card as this reader sees it: with their personal reason, and a TL;DR if they want one."""
    card = with_reason(card, reason)
    return card if request.subscriber.show_tldr or not card.tldr else replace(card, tldr="")


@dataclass(frozen=True, slots=True)
class ReaderCards:
    """The papers of one digest that have cards, as its reader sees them."""

    places: list[int]  # each paper's place in the delivery's frozen papers, from 1, as vote links name it
    keys: list[tuple[int | None, int]]  # each paper's (run id, paper id), as :func:`load_cards` keys it
    papers: list[PaperCard]


def reader_cards(cards: Mapping[tuple[int | None, int], PaperCard], request: DigestRequest) -> ReaderCards:
    """The request's papers that have ``cards``, in order, each with the reader's frozen reason."""
    shown = [(n, (request.run_id, pid)) for n, pid in enumerate(request.paper_ids, 1)]
    shown = [(place, key) for place, key in shown if key in cards]
    if not shown:
        return ReaderCards([], [], [])
    places, keys = [place for place, _ in shown], [key for _, key in shown]
    reasons = request.reasons_by_paper()
    papers = [for_reader(cards[key], request, reasons.get(key[1], "")) for key in keys]
    return ReaderCards(places, keys, papers)


def with_reason(card: PaperCard, reason: str) -> PaperCard:
    """The card with the reader's personal reason after the trending evidence."""
    if not reason:
        return card
    return replace(card, evidence=" · ".join(part for part in (card.evidence, reason) if part))


def load_cards(
    session: Session, requests: Iterable[DigestRequest]
) -> dict[tuple[int | None, int], PaperCard]:
    """Every paper the requests need, keyed by (run id, paper id): two queries per thousand papers."""
    wanted: dict[int | None, set[int]] = {}
    for request in requests:
        wanted.setdefault(request.run_id, set()).update(request.paper_ids)
    all_ids = sorted(set().union(*wanted.values())) if wanted else []
    papers: dict[int, Paper] = {}
    for start in range(0, len(all_ids), IN_CHUNK):
        chunk = all_ids[start : start + IN_CHUNK]
        papers.update((p.id, p) for p in session.scalars(sa.select(Paper).where(Paper.id.in_(chunk))))
    cards: dict[tuple[int | None, int], PaperCard] = {}
    for run_id, paper_ids in wanted.items():
        evidence = _evidence(session, run_id, sorted(paper_ids)) if run_id is not None else {}
        for paper_id in paper_ids:
            if paper := papers.get(paper_id):
                cards[(run_id, paper_id)] = paper_card(paper, evidence.get(paper_id, ""))
    return cards


def _evidence(session: Session, run_id: int, paper_ids: list[int]) -> Mapping[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(paper_ids), IN_CHUNK):
        query = sa.select(TrendScore.paper_id, TrendScore.evidence).where(
            TrendScore.run_id == run_id, TrendScore.paper_id.in_(paper_ids[start : start + IN_CHUNK])
        )
        found.update((paper_id, evidence) for paper_id, evidence in session.execute(query))
    return found


def paper_card(paper: Paper, evidence: str) -> PaperCard:
    """How one paper is shown: short authors, an abstract cut to about 60 words, safe links."""
    category = paper.primary_category or (paper.categories[0] if paper.categories else "")
    name = category_name(category)
    return PaperCard(
        title=" ".join(paper.title.split()),
        abs_url=paper.abs_url,
        pdf_url=paper.pdf_url,
        hf_url=paper.hf_url,
        code_url=paper.github_url if paper.github_url and _WEB_URL.match(paper.github_url) else None,
        authors=shorten_authors(paper.authors),
        abstract=shorten_abstract(paper.abstract),
        category=f"{category} · {name}" if name != category else category,
        evidence=" ".join(evidence.split()),
        arxiv_id=paper.arxiv_id,
        tldr=shorten_abstract(paper.tldr, TLDR_WORDS) if paper.tldr else "",
        tldr_url=paper.tldr_url if paper.tldr else "",
    )


def shorten_authors(authors: Sequence[str], shown: int = AUTHORS_SHOWN) -> str:
    """``A, B, C et al.`` for long author lists, all of them for short ones."""
    if len(authors) <= shown:
        return ", ".join(authors)
    return ", ".join(authors[:shown]) + " et al."


def shorten_abstract(abstract: str, words: int = ABSTRACT_WORDS) -> str:
    """The abstract cut at a word boundary to at most ``words`` words, with an ellipsis if cut."""
    parts = abstract.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:-\u2013\u2014") + "\u2026"

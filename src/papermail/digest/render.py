"""Rendering digests: a batch of deliveries becomes ready-to-build emails in a few queries.

Everything a digest shows is fixed by its delivery row: the papers are the frozen
``Delivery.paper_ids`` in their order, and each paper's "why" line is the evidence from the scoring
run the period's :class:`Digest` pinned. Rendering a delivery again (a retry, a resend, a preview)
therefore shows the same papers with the same evidence, however the trending data has moved since.

The cost per digest is one Jinja render per part plus three signed tokens: papers are loaded and
prepared (abstract cut, authors shortened) once per batch and shared by every digest that has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlencode

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from papermail.categories import category_name
from papermail.config import Settings
from papermail.db.models import Delivery, Digest, Frequency, Paper, Subscriber, TrendScore
from papermail.digest.select import IN_CHUNK, describe_interests
from papermail.mail.message import OutgoingEmail, sender_domain
from papermail.mail.templates import EmailTemplates, get_templates
from papermail.subscribers.links import (
    CompactTokens,
    DeliveryTokens,
    Purpose,
    link,
    page_prefix,
    preferences_link,
)

TEMPLATE_NAME = "weekly-digest"
ABSTRACT_WORDS = 60
TLDR_WORDS = 45  # S2's TL;DRs are one sentence (about 20 words); a longer one is cut, as abstracts are
AUTHORS_SHOWN = 3
SUBJECT_TITLE_CHARS = 72
_WEEK_KEY = re.compile(r"(\d{4})-W(\d{2})\Z")
_DATE_KEY = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# Only web links become hrefs: a javascript: or data: URL from a feed is not escaped by autoescape.
_WEB_URL = re.compile(r"https?://[^\s\"'<>]+\Z", re.IGNORECASE)
# Cards are rendered once per batch with this stand-in for "<vote page>/<token>" in their
# "More/Less like this" links (``<slot>/3/more``); each digest then puts its one signed token in
# where the slots were, far cheaper than a render per reader.
VOTE_SLOT = "https://vote.papermail.invalid/t"
MORE_WAY, LESS_WAY = "more", "less"  # the last part of a vote link


def describe_period(period_key: str) -> str:
    """``2026-W48`` → ``Week 48, 2026``; ``2026-11-26`` → ``26 November 2026``."""
    if week := _WEEK_KEY.match(period_key):
        year, number = int(week[1]), int(week[2])
        date.fromisocalendar(year, number, 1)  # raises ValueError for week 0 or 54
        return f"Week {number}, {year}"
    if day := _DATE_KEY.match(period_key):
        when = date(int(day[1]), int(day[2]), int(day[3]))
        return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"
    raise ValueError(f"period {period_key!r} is neither an ISO week (2026-W48) nor a date (2026-11-26)")


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


@dataclass(frozen=True)
class DigestRequest:
    """Everything that decides one digest's content: who, which period, which papers, which run."""

    key: int  # the delivery id (or any key the caller wants the result under)
    subscriber: Subscriber
    period_key: str
    paper_ids: Sequence[int]
    run_id: int | None
    delivery_id: int | None = None  # a planned delivery: its digest gets a "View in browser" link
    # Frozen with the papers: each one's personal "why" ("" for none), or empty for none at all.
    reasons: Sequence[str] = ()

    def reason(self, paper_id: int) -> str:
        """The personal reason frozen for this paper, or ""."""
        return self.reasons_by_paper().get(paper_id, "")

    def reasons_by_paper(self) -> dict[int, str]:
        """Each paper's frozen personal reason (a paper without one may be missing)."""
        return dict(zip(self.paper_ids, self.reasons, strict=False)) if self.reasons else {}

    @classmethod
    def of_delivery(cls, delivery: Delivery, subscriber: Subscriber, run_id: int | None) -> DigestRequest:
        """The request that renders a planned delivery exactly as it was frozen."""
        return cls(
            delivery.id,
            subscriber,
            delivery.period_key,
            delivery.paper_ids,
            run_id,
            delivery_id=delivery.id,
            reasons=delivery.reasons or (),
        )


def render_deliveries(
    session: Session, settings: Settings, delivery_ids: Sequence[int]
) -> dict[int, OutgoingEmail]:
    """The email of each delivery, keyed by delivery id; ids without papers are left out."""
    requests: list[DigestRequest] = []
    for start in range(0, len(delivery_ids), IN_CHUNK):
        query = (
            sa.select(Delivery, Subscriber, Digest.scoring_run_id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(Digest, Digest.id == Delivery.digest_id)
            .where(Delivery.id.in_(delivery_ids[start : start + IN_CHUNK]))
        )
        for delivery, subscriber, run_id in session.execute(query):
            if delivery.paper_ids:
                requests.append(DigestRequest.of_delivery(delivery, subscriber, run_id))
    return render_digests(session, settings, requests)


def render_digests(
    session: Session, settings: Settings, requests: Sequence[DigestRequest]
) -> dict[int, OutgoingEmail]:
    """Render digests that may not have a delivery row yet (previews); keyed by ``request.key``."""
    cards = load_cards(session, requests)
    templates = get_templates()
    rendered_cards = RenderedCards(templates)
    links = DigestLinks(settings)
    list_id = f"papermail digest <digest.{sender_domain(settings.mail_from)}>"
    emails: dict[int, OutgoingEmail] = {}
    for request in requests:
        # Each paper's place in the delivery's frozen papers, from 1, as its vote links name it.
        shown = [(n, (request.run_id, pid)) for n, pid in enumerate(request.paper_ids, 1)]
        shown = [(place, key) for place, key in shown if key in cards]
        if not shown:
            continue
        places, placed = [place for place, _ in shown], [key for _, key in shown]
        reasons = request.reasons_by_paper()
        papers = [for_reader(cards[key], request, reasons.get(key[1], "")) for key in placed]
        token = links.token(request)
        # A preview has no delivery to sign: its links name each paper, as they did before.
        previews = None if token else links.per_paper(request, papers)
        html_cards, text_cards = rendered_cards.get(placed, papers, places, links.votes_url(token), previews)
        unsubscribe_url = link(settings, Purpose.UNSUBSCRIBE, request.subscriber.id)
        context = digest_context(
            request, papers, settings, unsubscribe_url, html_cards, text_cards, view_url=links.view_url(token)
        )
        rendered = templates.render(TEMPLATE_NAME, context)
        emails[request.key] = OutgoingEmail(
            to=request.subscriber.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers={
                "List-Id": list_id,
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
    return emails


class RenderedCards:
    """Each paper's card, rendered once per place in a digest and reused by every digest of the batch.

    Most subscribers of a batch share most of their papers, so most cards are rendered once for
    many digests: the per-digest work left is the frame around them.
    """

    def __init__(self, templates: EmailTemplates) -> None:
        self._html = templates.partial(TEMPLATE_NAME, "card.html")
        self._text = templates.partial(TEMPLATE_NAME, "card.txt")
        # Each card cut at its vote slots, so a digest's token goes in by a join, not a search.
        self._done: dict[tuple[int | None, int, int, str, int, bool], tuple[list[str], list[str]]] = {}

    def get(
        self,
        keys: Sequence[tuple[int | None, int]],
        papers: Sequence[PaperCard],
        places: Sequence[int],
        votes_url: str | None,
        previews: Sequence[tuple[str, str]] | None = None,
    ) -> tuple[list[Markup], list[str]]:
        """The HTML and text cards of ``papers`` (identified by ``keys``), numbered from 1.

        Their vote links name each paper's place in the delivery under ``votes_url`` (the vote page
        and the delivery's token, URL-safe: nothing to escape); a preview's ``previews`` (more,
        less) links replace them instead.
        """
        html_cards, text_cards = [], []
        for n, ((run_id, paper_id), paper, place) in enumerate(zip(keys, papers, places, strict=True), 1):
            key = (run_id, paper_id, n, paper.evidence, place, bool(paper.tldr))
            if key not in self._done:
                slots = {
                    "more_url": vote_path(VOTE_SLOT, place, MORE_WAY),
                    "less_url": vote_path(VOTE_SLOT, place, LESS_WAY),
                }
                self._done[key] = (
                    self._html.render(p=paper, n=n, **slots).split(VOTE_SLOT),
                    self._text.render(p=paper, n=n, **slots).split(VOTE_SLOT),
                )
            html_parts, text_parts = self._done[key]
            if previews is not None:
                html, text = VOTE_SLOT.join(html_parts), VOTE_SLOT.join(text_parts)
                html, text = _put_links(html, text, place, previews[n - 1])
            else:
                html, text = votes_url.join(html_parts), votes_url.join(text_parts)
            html_cards.append(Markup(html))  # noqa: S704 - rendered by the autoescaping card template
            text_cards.append(text)
        return html_cards, text_cards


def _put_links(html: str, text: str, place: int, links: tuple[str, str]) -> tuple[str, str]:
    # The card template autoescapes everything it inserts, and the links are escaped here.
    for way, url in zip((MORE_WAY, LESS_WAY), links, strict=True):
        slot = vote_path(VOTE_SLOT, place, way)
        html, text = html.replace(slot, escape(url)), text.replace(slot, url)
    return html, text


def vote_path(prefix: str, place: int, way: str) -> str:
    """A vote link: the delivery's token (or a stand-in for it), the paper's place, the way."""
    return f"{prefix}/{place}/{way}"


class DigestLinks:
    """A digest's view link and its papers' vote links: one signed token for the whole delivery.

    The token names the delivery and is bound to the address it was mailed to; a vote link adds
    the paper's place in the delivery's frozen ``paper_ids`` and the way, e.g. ``/vote/<t>/3/more``.
    """

    def __init__(self, settings: Settings) -> None:
        self._delivery = DeliveryTokens(settings)
        self._per_paper = CompactTokens(settings, Purpose.VOTE)
        self._view_prefix = page_prefix(settings, Purpose.VIEW)
        self._vote_prefix = page_prefix(settings, Purpose.VOTE)

    def token(self, request: DigestRequest) -> str | None:
        """The delivery's signed token; None for a preview (no delivery yet)."""
        if request.delivery_id is None:
            return None
        return self._delivery.make(request.delivery_id, request.subscriber.email)

    def view_url(self, token: str | None) -> str | None:
        return self._view_prefix + token if token else None

    def votes_url(self, token: str | None) -> str | None:
        """What the vote links start with: the vote page and the delivery's token."""
        return self._vote_prefix + token if token else None

    def per_paper(self, request: DigestRequest, papers: Sequence[PaperCard]) -> list[tuple[str, str]]:
        """A preview's links: each paper's vote signed on its own, as links were before."""
        return [vote_links(self._per_paper, request.subscriber.id, paper.arxiv_id) for paper in papers]


def vote_links(vote_tokens: CompactTokens, subscriber_id: int, arxiv_id: str) -> tuple[str, str]:
    """A preview's signed "More like this" and "Less like this" links for one paper."""
    return vote_tokens.link(subscriber_id, arxiv_id, 1), vote_tokens.link(subscriber_id, arxiv_id, -1)


def for_reader(card: PaperCard, request: DigestRequest, reason: str) -> PaperCard:
    """The card as this reader sees it: with their personal reason, and a TL;DR if they want one."""
    card = with_reason(card, reason)
    return card if request.subscriber.show_tldr or not card.tldr else replace(card, tldr="")


def with_reason(card: PaperCard, reason: str) -> PaperCard:
    """The card with the reader's personal reason after the trending evidence."""
    if not reason:
        return card
    return replace(card, evidence=" · ".join(part for part in (card.evidence, reason) if part))


def digest_context(
    request: DigestRequest,
    papers: Sequence[PaperCard],
    settings: Settings,
    unsubscribe_url: str,
    html_cards: Sequence[Markup],
    text_cards: Sequence[str],
    *,
    view_url: str | None = None,
) -> dict[str, object]:
    """The template context of one digest: the frame's values plus the papers' rendered cards."""
    subscriber = request.subscriber
    period_label = describe_period(request.period_key)
    lead = digest_lead(subscriber, len(papers))
    frequency = "daily" if subscriber.frequency == Frequency.DAILY else "weekly"
    return {
        "email_title": f"papermail · {period_label}",
        "preview_text": f"{lead}: {papers[0].title}"
        if subscriber.topics or subscriber.keywords
        else papers[0].title,
        "period_label": period_label,
        "lead": lead,
        "view_url": view_url,
        "trending_url": trending_url(settings.base_url, subscriber.topics),
        "papers": papers,
        "html_cards": html_cards,
        "text_cards": text_cards,
        "preferences_url": preferences_link(settings, subscriber.id, subscriber.email),
        "unsubscribe_url": unsubscribe_url,
        "footer_reason": (
            f"You get this {frequency} digest because {subscriber.email} subscribed to papermail. "
            "Each paper appears in your digest only once."
        ),
        "postal_address": settings.postal_address,
    }


def digest_lead(subscriber: Subscriber, count: int) -> str:
    """``10 trending papers in cs.LG matching “diffusion”``: the line under the digest's title."""
    interests = describe_interests(sorted(subscriber.topics), subscriber.keywords)
    papers = f"{count} trending paper{'' if count == 1 else 's'}"
    return f"{papers} {interests}" if interests else papers


def trending_url(base_url: str, topics: Iterable[str]) -> str:
    """The public /trending page for these topics (a digest's footer links it; nothing personal)."""
    query = urlencode([("topic", topic) for topic in sorted(topics)])
    return f"{base_url}/trending{'?' + query if query else ''}"


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

"""Rendering digests: a batch of deliveries becomes ready-to-build emails in a few queries.

Everything a digest shows is fixed by its delivery row: the papers are the frozen
``Delivery.paper_ids`` in their order, and each paper's "why" line is the evidence from the scoring
run the period's :class:`Digest` pinned. Rendering a delivery again (a retry, a resend, a preview)
therefore shows the same papers with the same evidence, however the trending data has moved since.

The cost per digest is one Jinja render per part plus three signed tokens: papers are loaded and
prepared (abstract cut, authors shortened) once per batch and shared by every digest that has them
(:mod:`papermail.digest.cards`), and so are their rendered cards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.db.models import Delivery, Frequency, Subscriber
from papermail.digest.cards import PaperCard, load_cards, reader_cards
from papermail.digest.links import DigestLinks, vote_path
from papermail.digest.period import describe_period
from papermail.digest.request import DigestRequest, delivery_query
from papermail.digest.select import IN_CHUNK, describe_interests
from papermail.mail.message import OutgoingEmail, sender_domain
from papermail.mail.templates import EmailTemplates, get_templates
from papermail.subscribers.links import Purpose, link, preferences_link
from papermail.subscribers.votes import LESS_WAY, MORE_WAY

TEMPLATE_NAME = "weekly-digest"
# Cards are rendered once per batch with this stand-in for "<vote page>/<token>" in their
# "More/Less like this" links (``<slot>/3/more``); each digest then puts its one signed token in
# where the slots were, far cheaper than a render per reader.
VOTE_SLOT = "https://vote.papermail.invalid/t"


def render_deliveries(
    session: Session, settings: Settings, delivery_ids: Sequence[int]
) -> dict[int, OutgoingEmail]:
    """The email of each delivery, keyed by delivery id; ids without papers are left out."""
    requests: list[DigestRequest] = []
    for start in range(0, len(delivery_ids), IN_CHUNK):
        query = delivery_query().where(Delivery.id.in_(delivery_ids[start : start + IN_CHUNK]))
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
        shown = reader_cards(cards, request)
        if not shown.papers:
            continue
        papers = shown.papers
        token = links.token(request)
        # A preview has no delivery to sign: its links name each paper, as they did before.
        previews = None if token else links.per_paper(request, papers)
        html_cards, text_cards = rendered_cards.get(
            shown.keys, papers, shown.places, links.votes_url(token), previews
        )
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

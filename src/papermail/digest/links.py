"""A digest's links: its "View in browser" page and its papers' "More/Less like this" votes."""

from __future__ import annotations

from collections.abc import Sequence

from papermail.config import Settings
from papermail.digest.cards import PaperCard
from papermail.digest.request import DigestRequest
from papermail.subscribers.links import CompactTokens, DeliveryTokens, Purpose, page_prefix


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

"""A reader's votes ("more/less like this") and seed papers, and their mix setting.

A vote is keyed by the version-less arXiv id, so a seed may name a paper papermail has not fetched
yet: it counts from the first ranking that has its text. One vote per subscriber and paper; voting
again changes it. The web pages and the command line both change votes through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.arxiv_ids import parse_arxiv_id
from papermail.config import Settings
from papermail.db.inserts import dialect_insert
from papermail.db.models import Paper, Subscriber, SubscriberStatus, Vote
from papermail.sources.http import HttpClient
from papermail.sources.lookups import look_up_papers, unknown_papers
from papermail.subscribers import links
from papermail.subscribers.core import InvalidInput

MORE, LESS = 1, -1
FROM_DIGEST, FROM_SEED = "digest", "seed"
MAX_SEEDS = 50
# Votes and seeds a reader keeps in all; the oldest beyond it are dropped. Thousands only slow their
# preferences page and the planning of their digest, and say no more about their interests.
MAX_VOTES = 500
MIX_STEPS = 5  # 0 = trending only … 4 = my interests only
DEFAULT_MIX = 2
_SPLIT = re.compile(r"[\s,]+")


def parse_paper_ref(text: str) -> str:
    """The version-less arXiv id in ``2411.01234``, ``arXiv:2411.01234v2`` or an abs/pdf URL."""
    ref = text.strip()
    if "://" in ref:
        host = (urlsplit(ref).hostname or "").lower()
        if host != "arxiv.org" and not host.endswith(".arxiv.org"):
            raise InvalidInput(f"{ref[:80]} is not an arXiv link (arxiv.org/abs/… or arxiv.org/pdf/…)")
    try:
        return parse_arxiv_id(ref).id
    except ValueError:
        raise InvalidInput(f"{ref[:80]!r} is not an arXiv id (like 2411.01234) or an arXiv link") from None


def parse_paper_refs(refs: str | Iterable[str], limit: int = MAX_SEEDS) -> list[str]:
    """The distinct arXiv ids of a box of ids/URLs (one per line) or a list; at most ``limit``."""
    items = _SPLIT.split(refs) if isinstance(refs, str) else [r for ref in refs for r in _SPLIT.split(ref)]
    ids = list(dict.fromkeys(parse_paper_ref(item) for item in items if item.strip()))
    if len(ids) > limit:
        raise InvalidInput(f"At most {limit} papers, please ({len(ids)} given).")
    return ids


def parse_mix(value: int | str) -> int:
    """The mix setting, 0 (trending only) to 4 (my interests only)."""
    try:
        mix = int(str(value).strip())
    except ValueError:
        mix = -1
    if not 0 <= mix < MIX_STEPS:
        raise InvalidInput(
            f"The mix is a whole number from 0 (trending only) to {MIX_STEPS - 1} (my interests only)."
        )
    return mix


def record_vote(session: Session, subscriber_id: int, arxiv_id: str, value: int, source: str) -> None:
    """Insert the vote, or change the one this subscriber already gave the paper (one statement)."""
    if value not in (MORE, LESS):
        raise ValueError(f"a vote is +1 or -1, not {value}")
    now = clock.now()
    statement = dialect_insert(session, Vote).values(
        subscriber_id=subscriber_id,
        arxiv_id=arxiv_id,
        value=value,
        source=source,
        created_at=now,
        updated_at=now,
    )
    # A seed changes the value but keeps "digest" as the source of a vote given in an email.
    update = {"value": value, "updated_at": now}
    if source == FROM_DIGEST:
        update["source"] = source
    session.execute(
        statement.on_conflict_do_update(index_elements=["subscriber_id", "arxiv_id"], set_=update)
    )


def record_votes(
    session: Session, subscriber_id: int, arxiv_ids: Sequence[str], value: int, source: str
) -> int:
    """:func:`record_vote` for each id; then only the newest :data:`MAX_VOTES` are kept."""
    for arxiv_id in arxiv_ids:
        record_vote(session, subscriber_id, arxiv_id, value, source)
    return trim_votes(session, subscriber_id)


def trim_votes(session: Session, subscriber_id: int) -> int:
    """Drop the subscriber's oldest votes and seeds beyond :data:`MAX_VOTES`; how many went."""
    mine = Vote.subscriber_id == subscriber_id
    if (session.scalar(sa.select(sa.func.count()).select_from(Vote).where(mine)) or 0) <= MAX_VOTES:
        return 0
    newest = sa.select(Vote.id).where(mine).order_by(Vote.updated_at.desc(), Vote.id.desc()).limit(MAX_VOTES)
    return session.execute(sa.delete(Vote).where(mine, Vote.id.not_in(newest))).rowcount


def remove_vote(session: Session, subscriber_id: int, arxiv_id: str) -> bool:
    """Forget a vote or seed; False if there was none."""
    result = session.execute(
        sa.delete(Vote).where(Vote.subscriber_id == subscriber_id, Vote.arxiv_id == arxiv_id)
    )
    return bool(result.rowcount)


def set_mix(subscriber: Subscriber, mix: int) -> bool:
    """Change the mix setting; True if it changed."""
    if subscriber.relevance_mix == mix:
        return False
    subscriber.relevance_mix = mix
    return True


@dataclass(frozen=True)
class ShownVote:
    """A vote as the preferences page and the export show it."""

    arxiv_id: str
    value: int
    source: str
    title: str | None  # None until the paper has been fetched

    @property
    def label(self) -> str:
        return "More like this" if self.value == MORE else "Less like this"


def votes_of(session: Session, subscriber_id: int) -> list[ShownVote]:
    """A subscriber's votes and seeds, newest first, with the titles papermail knows."""
    query = (
        sa.select(Vote.arxiv_id, Vote.value, Vote.source, Paper.title)
        .outerjoin(Paper, Paper.arxiv_id == Vote.arxiv_id)
        .where(Vote.subscriber_id == subscriber_id)
        .order_by(Vote.updated_at.desc(), Vote.id.desc())
    )
    return [ShownVote(a, v, s, " ".join(t.split()) if t else None) for a, v, s, t in session.execute(query)]


# -- links in the digest --------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteLink:
    """What a "More/Less like this" link asks for: who, which paper, which way."""

    subscriber_id: int
    arxiv_id: str
    value: int
    title: str
    counts: bool = True  # False once the reader unsubscribed: the link then records nothing

    @property
    def more(self) -> bool:
        return self.value == MORE


MORE_WAY, LESS_WAY = "more", "less"  # the last part of a vote link
WAYS = {MORE_WAY: MORE, LESS_WAY: LESS}


def vote_at(
    session: Session, subscriber: Subscriber, paper_ids: Sequence[int], place: int, way: str
) -> VoteLink | None:
    """The vote for the paper at ``place`` (from 1) of a delivery's frozen papers; None if none is."""
    if way not in WAYS or not 1 <= place <= len(paper_ids):
        return None
    found = session.execute(
        sa.select(Paper.arxiv_id, Paper.title).where(Paper.id == paper_ids[place - 1])
    ).first()
    if found is None:
        return None
    arxiv_id, title = found
    return VoteLink(subscriber.id, arxiv_id, WAYS[way], " ".join(title.split()), counts=_counts(subscriber))


def record_link_vote(session: Session, found: VoteLink) -> bool:
    """Record what a vote link asks for, unless its reader has unsubscribed; True if recorded."""
    if not found.counts:
        return False
    record_votes(session, found.subscriber_id, [found.arxiv_id], found.value, FROM_DIGEST)
    return True


def _counts(subscriber: Subscriber) -> bool:
    return subscriber.status == SubscriberStatus.ACTIVE


def read_vote_link(session: Session, settings: Settings, token: str) -> VoteLink | None:
    """The vote a signed link stands for, or None if it is forged, expired or its reader is gone."""
    try:
        payload = links.CompactTokens(settings, links.Purpose.VOTE).read(token)
    except links.BadToken:
        return None
    if len(payload) != 3 or not isinstance(payload[1], str) or payload[2] not in (MORE, LESS):
        return None
    subscriber_id, arxiv_id, value = payload
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    title = session.scalar(sa.select(Paper.title).where(Paper.arxiv_id == arxiv_id))
    title = " ".join((title or arxiv_id).split())
    return VoteLink(int(subscriber_id), arxiv_id, int(value), title, counts=_counts(subscriber))


# -- liking papers by id --------------------------------------------------------------------------


@dataclass(frozen=True)
class LikeResult:
    """What :func:`like_papers` recorded, and the ids it could not find (with why)."""

    recorded: list[str]
    fetched: list[str]
    missing: dict[str, str]


def like_papers(
    session: Session,
    settings: Settings,
    subscriber_id: int,
    arxiv_ids: Sequence[str],
    value: int,
    source: str,
    *,
    http: HttpClient | None = None,
) -> LikeResult:
    """Vote on papers by id, looking unknown ones up on arXiv first; ids arXiv lacks are not recorded."""
    unknown = unknown_papers(session, list(arxiv_ids))
    missing = look_up_papers(session, settings, unknown, http=http) if unknown else {}
    recorded = [arxiv_id for arxiv_id in arxiv_ids if arxiv_id not in missing]
    record_votes(session, subscriber_id, recorded, value, source)
    fetched = [arxiv_id for arxiv_id in unknown if arxiv_id not in missing]
    return LikeResult(recorded, fetched, missing)

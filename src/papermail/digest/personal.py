"""The database side of personal relevance: one :class:`PersonalRanker` per ranking and planning pass.

It fits the ranking's TF-IDF model the first time a reader with votes needs it (never, when nobody
voted), loads the texts of papers as they are needed, once, and orders each voting reader's
candidates. :mod:`papermail.digest.relevance` holds the maths; ``docs/relevance.md`` the method.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import Paper, Subscriber, TrendScore, Vote
from papermail.digest.relevance import Taste, TextSpace, choose, paper_tags, paper_text

# The TF-IDF vocabulary and weights come from the ranking's leading papers: enough text for stable
# weights, and the same for every reader and chunk, so a reader's order never depends on batching.
FIT_PAPERS = 2000
# Eligible papers, in trending order, that the personal score may reorder (more if the last ties).
RERANK_POOL = 100
TIE_LIMIT = 2000
_TEXT_CHUNK = 1000


_TEXT_COLUMNS = (
    Paper.id,
    Paper.title,
    Paper.abstract,
    Paper.primary_category,
    Paper.categories,
    Paper.authors,
)


def _texts(rows: Iterable[sa.Row]) -> dict[int, str]:
    """Each paper's text for the text space, by id: its words and its tags (categories, authors)."""
    texts = {}
    for paper_id, title, abstract, primary, categories, authors in rows:
        listed = list(dict.fromkeys([*([primary] if primary else []), *(categories or ())]))
        texts[paper_id] = paper_text(title, abstract, paper_tags(listed, authors))
    return texts


class PersonalRanker:
    """Personal ordering over one scoring run; keep one per planning pass to fit the model once."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._space: TextSpace | None = None

    def _text_space(self, session: Session) -> TextSpace:
        if self._space is None:
            query = (
                sa.select(*_TEXT_COLUMNS)
                .join(TrendScore, TrendScore.paper_id == Paper.id)
                .where(TrendScore.run_id == self.run_id)
                .order_by(TrendScore.rank)
                .limit(FIT_PAPERS)
            )
            texts = _texts(session.execute(query))
            self._space = TextSpace(list(texts.values()), list(texts))
        return self._space

    def add_texts(self, session: Session, paper_ids: Iterable[int]) -> None:
        """Vectorise the papers not seen yet: one query and one transform per thousand."""
        space = self._text_space(session)
        missing = space.missing(sorted(set(paper_ids)))
        for start in range(0, len(missing), _TEXT_CHUNK):
            chunk = missing[start : start + _TEXT_CHUNK]
            space.add(_texts(session.execute(sa.select(*_TEXT_COLUMNS).where(Paper.id.in_(chunk)))))

    def tastes(self, session: Session, subscribers: Sequence[Subscriber]) -> dict[int, Taste]:
        """The votes of those who voted and want any personal weight (mix > 0), by subscriber id."""
        wanted = [s.id for s in subscribers if s.relevance_mix > 0]
        if not wanted:
            return {}
        query = (
            sa.select(Vote.subscriber_id, Paper.id, Vote.value, Paper.title)
            .join(Paper, Paper.arxiv_id == Vote.arxiv_id)
            .where(Vote.subscriber_id.in_(wanted))
            .order_by(Vote.subscriber_id, Vote.id)
        )
        rows = session.execute(query).all()
        if not rows:
            return {}
        self.add_texts(session, [paper_id for _, paper_id, _, _ in rows])
        space = self._text_space(session)
        by_subscriber: dict[int, list[tuple[int, int, str]]] = {}
        for subscriber_id, paper_id, value, title in rows:
            if space.knows(paper_id):
                by_subscriber.setdefault(subscriber_id, []).append((paper_id, value, title))
        return {
            subscriber_id: Taste(*(tuple(column) for column in zip(*votes, strict=True)))
            for subscriber_id, votes in by_subscriber.items()
        }

    def order(
        self, session: Session, taste: Taste, pool: Sequence[tuple[int, float]], mix: int, size: int
    ) -> tuple[list[int], list[str]]:
        """The best ``size`` of ``pool`` ((paper id, trending score) in trending order), with reasons."""
        self.add_texts(session, [paper_id for paper_id, _ in pool])
        ids, trend = [paper_id for paper_id, _ in pool], [score for _, score in pool]
        return choose(self._text_space(session), taste, ids, trend, mix, size)

"""Personal relevance: a TF-IDF text space per ranking, a per-reader score, and the blend on scores.

Pure functions and small objects over texts and numbers (no database): :mod:`papermail.digest.personal`
feeds them. The method is written down in ``docs/relevance.md``.

* One :class:`TextSpace` per ranking: a TF-IDF model (title twice + abstract, unigrams and
  bigrams, words weighted by the square root of their IDF) fitted once on the ranking's leading
  papers; any paper is turned into a vector with it, once.
* A reader's taste is their votes (+1 / -1) and seeds (+1). A candidate's personal score sums, over
  the votes, how much more similar it is to the voted paper than the reader's typical candidate:
  the more votes, the wider the scores spread.
* :func:`blend` adds the personal score, weighted by the mix, to the trending score (in its own
  units, doublings of heat): a large trending lead needs much evidence to overturn. At mixes up to
  2, the sure trending leaders stay in the digest unless the reader leans away from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

MIX_STEPS = 5
DISLIKE_WEIGHT = 0.5
# The blend's exchange rate at mix 2: a candidate standing 0.01 of cosine similarity (summed over
# the votes) above the reader's typical candidate counts as SIMILARITY_WEIGHT / 100 trending points,
# i.e. doublings of a paper's heat (docs/trending.md). Mix 1 counts a third of it, mix 3 three times.
# Chosen on benchmarks/relevance.py: 100 to 200 trade precision at 5 votes against how large a
# trending lead one vote can overturn (the demo's week's hit, 13.7 points ahead, stays first).
SIMILARITY_WEIGHT = 150.0
# At mixes up to this one, the trending leaders of the reader's filtered list stay in the digest
# unless they are closer to the reader's dislikes than to their likes.
KEEP_LEADERS = 3
KEEP_LEADERS_MAX_MIX = 2
# Below this cosine similarity a liked paper is not named as the reason. On benchmarks/relevance.py's
# category readers, personal picks above it are relevant about 80 % of the time, those below about
# 20 %; 0.16 (before tags) named a reason for 1 to 4 % of the picks only.
REASON_MIN_SIMILARITY = 0.06
REASON_TITLE_CHARS = 40
# Up to this many votes, a reader's votes are multiplied as dense columns over the vocabulary
# (faster; memory grows with votes x vocabulary); beyond it, as sparse rows.
DENSE_VOTES_MAX = 32
# Each word is weighted by its IDF to this power. Full IDF (1) lets the rarest words, often unique to
# one paper (acronyms, dataset names, bigrams), dominate a vector, while a reader's few votes are
# matched by the shared topical vocabulary: the square root measured better at 5 and 10 votes
# (benchmarks/relevance.py), and a sharper IDF (squared, or without sklearn's +1) worse.
IDF_POWER = 0.5
# A paper's text is its title, a line break, then its abstract. The title's words are counted this
# many times: the title is the authors' own summary of the topic, where an abstract also spends
# words on setting and results (field weighting, as in BM25F). Two measured better than one at 5
# votes (benchmarks/relevance.py, 2,200 readers), and no worse at 10.
TITLE_COUNT = 2
# A paper's arXiv categories and authors are tags beside its words. Two papers' cosine similarity is
# then 1 / (1 + TAG_WEIGHT²) of their words' plus TAG_WEIGHT² / (1 + TAG_WEIGHT²) of their tags'
# (when both have tags): what the authors chose to file a paper under, and who wrote it, are
# evidence the words alone miss (benchmarks/relevance.py, category and author readers).
TAG_WEIGHT = 0.7
TAGS_MARK = "\x1e"


class TextSpace:
    """A TF-IDF model fitted on one ranking's papers, and the vectors of the papers seen so far."""

    def __init__(self, fit_texts: Sequence[str], paper_ids: Sequence[int] = ()) -> None:
        """Fit on ``fit_texts``; with ``paper_ids`` (one per text), those papers are added as well."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        # TfidfVectorizer's two steps, apart, so the IDF can be softened before any vector is made.
        self._counter = CountVectorizer(ngram_range=(1, 2), stop_words="english", dtype=np.float32)
        self._weighting = TfidfTransformer(sublinear_tf=True)
        self._tagger: CountVectorizer | None = CountVectorizer(
            analyzer=_tags_of, binary=True, dtype=np.float32
        )
        self._tag_weighting = TfidfTransformer()
        self._row_of: dict[int, int] = {}
        self._blocks: list[csr_matrix] = []
        self._matrix: csr_matrix | None = None
        words = [_words_of(text) for text in fit_texts]
        try:
            # Fitting tokenises every text; the counts serve the fitted papers' vectors too.
            counts = self._counter.fit_transform(words)
            self.ready = True
        except ValueError:  # no texts, or only stop words: nothing to compare papers by
            self.ready = False
            return
        counts = self._with_titles(counts, words)
        self._weighting.fit(counts)
        self._weighting.idf_ = self._weighting.idf_**IDF_POWER
        fitted = self._joined(self._weighting.transform(counts), self._tag_rows(fit_texts, fit=True))
        if paper_ids:
            self._row_of.update((paper_id, n) for n, paper_id in enumerate(paper_ids))
            self._blocks.append(fitted)

    def add(self, texts: Mapping[int, str]) -> None:
        """Vectorise the papers not seen yet (one transform for the lot)."""
        new = [paper_id for paper_id in texts if paper_id not in self._row_of]
        if not new or not self.ready:
            return
        start = len(self._row_of)
        self._row_of.update((paper_id, start + n) for n, paper_id in enumerate(new))
        new_texts = [texts[paper_id] for paper_id in new]
        words = [_words_of(text) for text in new_texts]
        counts = self._with_titles(self._counter.transform(words), words)
        self._blocks.append(self._joined(self._weighting.transform(counts), self._tag_rows(new_texts)))
        self._matrix = None

    def _tag_rows(self, texts: Sequence[str], *, fit: bool = False) -> csr_matrix:
        """The texts' tags, TF-IDF weighted like the words (no columns if the fitted texts had none)."""
        from scipy.sparse import csr_matrix

        if fit:
            try:
                self._tag_weighting.fit(self._tagger.fit_transform(texts))
                self._tag_weighting.idf_ = self._tag_weighting.idf_**IDF_POWER
            except ValueError:  # no paper has tags
                self._tagger = None
        if self._tagger is None:
            return csr_matrix((len(texts), 0), dtype=np.float32)
        return self._tag_weighting.transform(self._tagger.transform(texts))

    @staticmethod
    def _joined(words: csr_matrix, tags: csr_matrix) -> csr_matrix:
        """Each paper's words and tags side by side (tags at ``TAG_WEIGHT``), L2-normalised."""
        from scipy.sparse import hstack
        from sklearn.preprocessing import normalize

        joined = hstack([words, tags * np.float32(TAG_WEIGHT)], format="csr", dtype=np.float32)
        joined.sort_indices()
        return normalize(joined, copy=False)

    def _with_titles(self, counts: csr_matrix, texts: Sequence[str]) -> csr_matrix:
        """``counts`` with each title's words (its text's first line) counted ``TITLE_COUNT`` times."""
        if TITLE_COUNT == 1:
            return counts
        # Counted apart, not by repeating the title in the text: no bigram across the seam.
        titles = self._counter.transform([text.partition("\n")[0] for text in texts])
        return counts + titles * np.float32(TITLE_COUNT - 1)

    def missing(self, paper_ids: Sequence[int]) -> list[int]:
        """The ids :meth:`add` has not vectorised yet."""
        return [paper_id for paper_id in paper_ids if paper_id not in self._row_of]

    def vectors(self, paper_ids: Sequence[int]) -> csr_matrix:
        """The L2-normalised TF-IDF rows of papers already added, in the given order."""
        from scipy.sparse import csr_matrix, vstack

        if self._matrix is None:
            self._matrix = vstack(self._blocks, format="csr")
            self._blocks = [self._matrix]
        matrix = self._matrix
        # The rows' entries gathered with numpy: scipy's row indexing cost more than the maths.
        rows = np.array([self._row_of[paper_id] for paper_id in paper_ids], dtype=np.intp)
        starts = matrix.indptr[rows]
        lengths = matrix.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, dtype=matrix.indptr.dtype)
        np.cumsum(lengths, out=indptr[1:])
        entries = np.arange(indptr[-1]) + np.repeat(starts - indptr[:-1], lengths)
        return csr_matrix(
            (matrix.data[entries], matrix.indices[entries], indptr), shape=(len(rows), matrix.shape[1])
        )

    def knows(self, paper_id: int) -> bool:
        return paper_id in self._row_of


def paper_text(title: str, abstract: str | None, tags: Sequence[str] = ()) -> str:
    """A paper as :class:`TextSpace` reads it: the title on the first line (its words are counted
    again), the abstract, then the paper's tags (categories, authors) after ``TAGS_MARK``."""
    text = f"{title}\n{abstract or ''}"
    return f"{text}\n{TAGS_MARK}{TAGS_MARK.join(tags)}" if tags else text


def paper_tags(categories: Sequence[str] | None, authors: Sequence[str] | None) -> list[str]:
    """The tags two papers can share: each arXiv category they are listed in, and each author."""
    return [f"category:{c}" for c in categories or ()] + [
        "author:" + " ".join(name.lower().split()) for name in authors or ()
    ]


def _words_of(text: str) -> str:
    return text.partition(TAGS_MARK)[0]


def _tags_of(text: str) -> list[str]:
    return text.split(TAGS_MARK)[1:]


@dataclass(frozen=True)
class Taste:
    """One reader's votes on papers the space knows: paper ids, their signs, and titles for reasons."""

    paper_ids: tuple[int, ...]
    values: tuple[int, ...]  # +1 / -1, parallel to paper_ids
    titles: tuple[str, ...]

    @property
    def liked(self) -> list[int]:
        return [n for n, value in enumerate(self.values) if value > 0]


@dataclass(frozen=True)
class Comparison:
    """Each pair's cosine similarity between a reader's candidates and voted papers."""

    similarity: np.ndarray  # candidates x voted papers, in the taste's order

    @classmethod
    def of(cls, space: TextSpace, taste: Taste, candidates: Sequence[int]) -> Comparison:
        found, votes = space.vectors(candidates), space.vectors(taste.paper_ids)
        if votes.shape[0] > DENSE_VOTES_MAX:
            return cls((found @ votes.T).toarray())
        # The voted papers as dense columns: sparse rows times dense columns adds each pair's
        # terms in the same order as the sparse-by-sparse product (equal to the bit), without its
        # set-up (a transpose over the whole vocabulary per reader).
        columns = np.zeros((votes.shape[1], votes.shape[0]), dtype=votes.dtype)
        columns[votes.indices, np.repeat(np.arange(votes.shape[0]), np.diff(votes.indptr))] = votes.data
        return cls(found @ columns)


def personal_scores(
    space: TextSpace, taste: Taste, candidates: Sequence[int], comparison: Comparison | None = None
) -> np.ndarray:
    """The reader's evidence for each candidate: per vote, how much more similar the candidate is to
    the voted paper than the reader's typical candidate, summed (likes +1, dislikes -½).

    A sum, not a mean: each vote is evidence, so the scores' spread grows with the votes. Only
    differences between candidates matter; the typical candidate scores 0. ``comparison``, if
    given, is :meth:`Comparison.of` the same space, taste and candidates.
    """
    compared = comparison or Comparison.of(space, taste, candidates)
    similarity = compared.similarity
    if not similarity.shape[0]:
        return np.zeros(0, dtype=np.float32)
    weights = np.where(np.asarray(taste.values) > 0, 1, -DISLIKE_WEIGHT).astype(np.float32)
    evidence = similarity @ weights
    return evidence - np.median(evidence)


def disliked_more(taste: Taste, similarity: np.ndarray) -> np.ndarray:
    """Per candidate (a row of :class:`Comparison` ``.similarity``): closer to the reader's dislikes
    than to their likes, on average."""
    values = np.asarray(taste.values)
    liked, disliked = values > 0, values < 0
    to_liked = similarity[:, liked].mean(axis=1) if liked.any() else np.zeros(similarity.shape[0])
    to_disliked = similarity[:, disliked].mean(axis=1) if disliked.any() else np.zeros(similarity.shape[0])
    return to_disliked > to_liked


def blend(
    trend_scores: Sequence[float],
    personal: np.ndarray,
    mix: int,
    *,
    size: int | None = None,
    disliked: np.ndarray | None = None,
) -> list[int]:
    """Candidate positions in blended order; ``mix`` 0 keeps the trending order, 4 is personal only.

    Blended on scores: ``trending score + mix / (4 - mix) · SIMILARITY_WEIGHT · personal score``.
    With ``size`` (the digest's) and a mix up to ``KEEP_LEADERS_MAX_MIX``, the trending leaders
    (:func:`sure_leaders`) stay among the first ``size`` unless ``disliked`` (per candidate) says
    they are closer to the reader's dislikes.
    """
    if not 0 <= mix < MIX_STEPS:
        raise ValueError(f"mix must be 0..{MIX_STEPS - 1}, not {mix}")
    positions = np.arange(len(trend_scores))
    if mix == 0:
        return positions.tolist()
    personal = np.asarray(personal, dtype=np.float64)
    if mix == MIX_STEPS - 1:
        # Personal only: ties (no similarity at all) keep the trending order.
        return np.lexsort((positions, -personal)).tolist()
    trend = np.asarray(trend_scores, dtype=np.float64)
    combined = trend + mix / (MIX_STEPS - 1 - mix) * SIMILARITY_WEIGHT * personal
    # Ties in the blend go to the personal score, then to the trending order.
    order = np.lexsort((positions, -personal, -combined)).tolist()
    if size is None or mix > KEEP_LEADERS_MAX_MIX:
        return order
    kept = sure_leaders(trend)
    if disliked is not None:
        kept &= ~np.asarray(disliked, dtype=bool)
    # In trending order (the candidates' own), as many as the digest holds.
    return _keep_in_head(order, set(np.flatnonzero(kept)[:size].tolist()), size)


def sure_leaders(trend_scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per candidate: certainly among the first ``KEEP_LEADERS`` of the trending order, i.e. at most
    ``KEEP_LEADERS`` candidates (itself included) score as high. Papers that tie with many others
    (a cold start, a day without signals) are no one's sure leader."""
    trend = np.asarray(trend_scores, dtype=np.float64)
    at_least = len(trend) - np.searchsorted(np.sort(trend), trend, side="left")
    return at_least <= KEEP_LEADERS


def _keep_in_head(order: list[int], kept: set[int], size: int) -> list[int]:
    """``order`` with every ``kept`` position among its first ``size``: a kept one found below
    takes the place of the lowest unkept one above, which moves just below the head."""
    missing = [n for n in order[size:] if n in kept]
    if not missing:
        return order
    head = order[:size]
    unkept = [n for n in head if n not in kept]
    bumped = set(unkept[len(unkept) - len(missing) :])
    new_head = [n for n in head if n not in bumped] + missing
    rest = [n for n in head if n in bumped] + [n for n in order[size:] if n not in kept]
    return new_head + rest


def choose(
    space: TextSpace,
    taste: Taste,
    candidates: Sequence[int],
    trend_scores: Sequence[float],
    mix: int,
    size: int,
) -> tuple[list[int], list[str]]:
    """The reader's best ``size`` of ``candidates`` (in trending order, with their trending scores),
    and each one's reason."""
    # One product gives both the scores and the reasons (the chosen papers' rows of it).
    comparison = Comparison.of(space, taste, candidates)
    scores = personal_scores(space, taste, candidates, comparison)
    away = disliked_more(taste, comparison.similarity)
    positions = blend(trend_scores, scores, mix, size=size, disliked=away)[:size]
    chosen = [candidates[n] for n in positions]
    return chosen, reasons_for(space, taste, chosen, comparison.similarity[positions])


def reasons_for(
    space: TextSpace, taste: Taste, chosen: Sequence[int], similarity: np.ndarray | None = None
) -> list[str]:
    """Per chosen paper, ``close to "Title…" you liked`` naming the most similar liked paper, or "".

    ``similarity``, if given, is the chosen papers' rows of :class:`Comparison` ``.similarity``.
    """
    liked = taste.liked
    if not liked or not chosen:
        return ["" for _ in chosen]
    if similarity is None:
        similarity = Comparison.of(space, taste, chosen).similarity
    reasons = []
    for row in similarity[:, liked]:
        best = int(row.argmax())
        if row[best] < REASON_MIN_SIMILARITY:
            reasons.append("")
        else:
            reasons.append(f'close to "{short_title(taste.titles[liked[best]])}" you liked')
    return reasons


def short_title(title: str, limit: int = REASON_TITLE_CHARS) -> str:
    """A title cut at a word boundary to about ``limit`` characters, with an ellipsis if cut."""
    words = " ".join(title.split())
    if len(words) <= limit:
        return words
    # One character more, so a word ending exactly at the limit is kept whole.
    head = words[: limit + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else words[:limit]
    return cut.rstrip(",;:-\u2013\u2014") + "\u2026"

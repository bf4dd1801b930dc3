"""Personal relevance: a TF-IDF text space per ranking, a per-reader score, and the blend by rank.

Pure functions and small objects over texts and numbers (no database): :mod:`papermail.digest.personal`
feeds them. The method is written down in ``docs/relevance.md``.

* One :class:`TextSpace` per ranking: a TF-IDF model (title twice + abstract, unigrams and
  bigrams, words weighted by the square root of their IDF) fitted once on the ranking's leading
  papers; any paper is turned into a vector with it, once.
* A reader's taste is their votes (+1 / -1) and seeds (+1). With at least ``MODEL_MIN_VOTES`` votes
  of both signs, a logistic regression over them scores candidates; otherwise the score is the
  cosine similarity to the liked papers' centroid minus half that to the disliked ones'.
* :func:`blend` orders candidates by ``(1 - w) · trending rank + w · personal rank`` with
  ``w = mix / 4``; papers whose trending scores tie share one rank, so personal decides among them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

MIX_STEPS = 5
MODEL_MIN_VOTES = 8
DISLIKE_WEIGHT = 0.5
# Below this cosine similarity a liked paper is not named as the reason: the words shared are noise.
# With IDF at full strength it was 0.12; the square root raised similarities, and 0.16 keeps the same
# share of pairs above it (8 of the 29,890 pairs of benchmarks/relevance.py's papers).
REASON_MIN_SIMILARITY = 0.16
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


class TextSpace:
    """A TF-IDF model fitted on one ranking's papers, and the vectors of the papers seen so far."""

    def __init__(self, fit_texts: Sequence[str], paper_ids: Sequence[int] = ()) -> None:
        """Fit on ``fit_texts``; with ``paper_ids`` (one per text), those papers are added as well."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        # TfidfVectorizer's two steps, apart, so the IDF can be softened before any vector is made.
        self._counter = CountVectorizer(ngram_range=(1, 2), stop_words="english", dtype=np.float32)
        self._weighting = TfidfTransformer(sublinear_tf=True)
        self._row_of: dict[int, int] = {}
        self._blocks: list[csr_matrix] = []
        self._matrix: csr_matrix | None = None
        try:
            # Fitting tokenises every text; the counts serve the fitted papers' vectors too.
            counts = self._counter.fit_transform(fit_texts)
            self.ready = True
        except ValueError:  # no texts, or only stop words: nothing to compare papers by
            self.ready = False
            return
        counts = self._with_titles(counts, fit_texts)
        self._weighting.fit(counts)
        self._weighting.idf_ = self._weighting.idf_**IDF_POWER
        fitted = self._weighting.transform(counts)
        if paper_ids:
            # Fitting leaves each row's words unsorted; transform sorts them (same vectors).
            fitted.sort_indices()
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
        counts = self._with_titles(self._counter.transform(new_texts), new_texts)
        self._blocks.append(self._weighting.transform(counts))
        self._matrix = None

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
    """A reader's candidates and voted papers as TF-IDF rows, and each pair's cosine similarity."""

    found: csr_matrix  # the candidates' rows
    votes: csr_matrix  # the voted papers' rows, in the taste's order
    similarity: np.ndarray  # candidates x voted papers

    @classmethod
    def of(cls, space: TextSpace, taste: Taste, candidates: Sequence[int]) -> Comparison:
        found, votes = space.vectors(candidates), space.vectors(taste.paper_ids)
        if votes.shape[0] > DENSE_VOTES_MAX:
            return cls(found, votes, (found @ votes.T).toarray())
        # The voted papers as dense columns: sparse rows times dense columns adds each pair's
        # terms in the same order as the sparse-by-sparse product (equal to the bit), without its
        # set-up (a transpose over the whole vocabulary per reader).
        columns = np.zeros((votes.shape[1], votes.shape[0]), dtype=votes.dtype)
        columns[votes.indices, np.repeat(np.arange(votes.shape[0]), np.diff(votes.indptr))] = votes.data
        return cls(found, votes, found @ columns)


def personal_scores(
    space: TextSpace, taste: Taste, candidates: Sequence[int], comparison: Comparison | None = None
) -> np.ndarray:
    """How close each candidate is to the reader's taste (higher is closer; only the order matters).

    ``comparison``, if given, is :meth:`Comparison.of` the same space, taste and candidates.
    """
    compared = comparison or Comparison.of(space, taste, candidates)
    values = np.asarray(taste.values)
    liked, disliked = values > 0, values < 0
    if len(values) >= MODEL_MIN_VOTES and liked.any() and disliked.any():
        return _model_scores(compared.votes, values, compared.found)
    # The centroid's cosine similarity: (candidates x votes) · weights.
    weights = np.where(liked, 1 / max(liked.sum(), 1), -DISLIKE_WEIGHT / max(disliked.sum(), 1))
    return compared.similarity @ weights.astype(np.float32)


def _model_scores(votes: csr_matrix, values: np.ndarray, found: csr_matrix) -> np.ndarray:
    from scipy.sparse import csr_matrix

    # Fitted on the words the voted papers use only: a word none of them has gets weight 0 anyway
    # (L2 penalty), and the vocabulary of a whole ranking made each fit 20x slower. The columns
    # renumbered in place: the same matrix as votes[:, used], without scipy's fancy indexing.
    used, columns = np.unique(votes.indices, return_inverse=True)
    voted_words = csr_matrix((votes.data, columns, votes.indptr), shape=(votes.shape[0], len(used)))
    coef, intercept = _logistic_regression(voted_words, values)
    weights = np.zeros(votes.shape[1], dtype=np.float64)
    weights[used] = coef
    return found @ weights + intercept


# liblinear's solver for L2-regularised logistic regression in the dual (L2R_LR_DUAL).
_LIBLINEAR_L2R_LR_DUAL = 7
_LIBLINEAR_TOL = 1e-4
_LIBLINEAR_MAX_ITER = 100


def _logistic_regression(votes: csr_matrix, values: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights and intercept of ``LogisticRegression(class_weight="balanced", solver="liblinear",
    dual=True, random_state=0).fit(votes, values)``, bit for bit, without its per-fit overhead.

    The dual form: a handful of votes against thousands of words. sklearn's checks, label encoding
    and class weights cost 30x the solve itself (~5 ms a reader); this is the same liblinear call
    with the same arguments. tests/digest/test_relevance.py holds it equal to the sklearn model.
    """
    from sklearn.svm import _liblinear

    positive = values > 0
    # "balanced": n_samples / (n_classes * count), classes in sorted order (-1, then +1).
    class_weight = len(values) / (2 * np.bincount(positive, minlength=2))
    _liblinear.set_verbosity_wrap(0)
    raw, _ = _liblinear.train_wrap(
        votes.astype(np.float64),
        positive.astype(np.float64),
        True,  # sparse
        _LIBLINEAR_L2R_LR_DUAL,
        _LIBLINEAR_TOL,
        1.0,  # bias, i.e. intercept_scaling: fit an intercept
        1.0,  # C
        class_weight,
        _LIBLINEAR_MAX_ITER,
        _liblinear_seed(),
        0.1,  # epsilon (unused by this solver)
        np.ones(len(values)),  # sample weights
    )
    # A fixed seed: liblinear shuffles the votes with it, and a seed drawn from numpy's global
    # state changed some readers' orders from one run to the next.
    return raw[0, :-1], float(raw[0, -1])


@cache
def _liblinear_seed() -> int:
    """The seed sklearn passes liblinear for ``random_state=0``."""
    return int(np.random.RandomState(0).randint(np.iinfo("i").max))


def shared_ranks(scores: Sequence[float] | np.ndarray, *, higher_first: bool = True) -> np.ndarray:
    """1-based competition ranks (1, 2, 2, 4): equal scores share the best rank of their group."""
    values = -np.asarray(scores, dtype=np.float64) if higher_first else np.asarray(scores, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    # A group starts where the value changes; every member gets the group's first position.
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]] if len(values) else np.array([], bool)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))
    ranks[order] = first + 1
    return ranks


def blend(trend_scores: Sequence[float], personal: np.ndarray, mix: int) -> list[int]:
    """Candidate positions in blended order; ``mix`` 0 keeps the trending order, 4 is personal only."""
    if not 0 <= mix < MIX_STEPS:
        raise ValueError(f"mix must be 0..{MIX_STEPS - 1}, not {mix}")
    positions = np.arange(len(trend_scores))
    if mix == 0:
        return positions.tolist()
    weight = mix / (MIX_STEPS - 1)
    combined = (1 - weight) * shared_ranks(trend_scores) + weight * shared_ranks(personal)
    # Ties in the blend go to the personal score, then to the trending order.
    return np.lexsort((positions, -np.asarray(personal), combined)).tolist()


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

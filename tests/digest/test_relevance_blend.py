"""Properties of the blend of trending and personal scores (docs/relevance.md, "The blend")."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from papermail.digest import relevance

WORDS = [
    "diffusion",
    "denoising",
    "sampler",
    "graph",
    "kernel",
    "bandit",
    "regret",
    "reward",
    "policy",
    "agent",
    "robot",
    "grasp",
    "protein",
    "molecule",
    "docking",
    "transformer",
    "attention",
    "sparse",
    "pruning",
    "quantum",
    "circuit",
    "qubit",
    "fuzzing",
    "compiler",
    "theorem",
    "bound",
    "privacy",
    "federated",
]
SIZE = 10

texts = st.lists(st.sampled_from(WORDS), min_size=3, max_size=8).map(" ".join)
# Trending scores in doublings of heat, with ties (papers of one day without signals) likely.
scores = st.one_of(
    st.sampled_from([0.0, -0.5, -1.0]), st.floats(-4, 9, allow_nan=False).map(lambda x: round(x, 1))
)


@st.composite
def readers(draw, min_votes: int = 0):
    """A ranking's candidates (texts and trending scores, in trending order) and one reader's votes."""
    candidates = draw(st.lists(texts, min_size=1, max_size=25))
    trend = sorted(draw(st.lists(scores, min_size=len(candidates), max_size=len(candidates))), reverse=True)
    voted = draw(st.lists(st.tuples(texts, st.sampled_from([1, -1])), min_size=min_votes, max_size=12))
    return candidates, trend, voted


def rank(candidates, trend, voted, mix, extra_likes=()):
    """The blended order (candidate positions) and what the blend was given."""
    all_votes = [*voted, *((text, 1) for text in extra_likes)]
    papers = [*candidates, *(text for text, _ in all_votes)]
    space = relevance.TextSpace([f"{text}\n{text}" for text in papers], range(len(papers)))
    ids = list(range(len(candidates)))
    taste = relevance.Taste(
        tuple(range(len(candidates), len(papers))),
        tuple(value for _, value in all_votes),
        tuple(text for text, _ in all_votes),
    )
    comparison = relevance.Comparison.of(space, taste, ids)
    personal = relevance.personal_scores(space, taste, ids, comparison)
    away = relevance.disliked_more(taste, comparison.similarity)
    return relevance.blend(trend, personal, mix, size=SIZE, disliked=away), away


@settings(max_examples=150, deadline=None)
@given(readers())
def test_the_sure_trending_leaders_stay_at_the_default_mix(reader):
    candidates, trend, voted = reader
    order, away = rank(candidates, trend, voted, mix=2)
    leaders = relevance.sure_leaders(trend)
    assert leaders.sum() <= relevance.KEEP_LEADERS
    for n in np.flatnonzero(leaders):
        assert n in order[:SIZE] or away[n]
    assert sorted(order) == list(range(len(candidates)))


@settings(max_examples=100, deadline=None)
@given(readers(), st.integers(0, 4))
def test_without_votes_the_order_is_trending(reader, mix):
    candidates, trend, _ = reader
    order, _ = rank(candidates, trend, [], mix)
    assert order == list(range(len(candidates)))


@settings(max_examples=150, deadline=None)
@given(readers(min_votes=1), st.integers(1, 4), st.data())
def test_more_likes_of_papers_like_a_candidate_never_lower_it(reader, mix, data):
    candidates, trend, voted = reader
    x = data.draw(st.integers(0, len(candidates) - 1))
    likes = data.draw(st.integers(1, 3))
    before, _ = rank(candidates, trend, voted, mix)
    after, _ = rank(candidates, trend, voted, mix, extra_likes=[candidates[x]] * likes)
    assert after.index(x) <= before.index(x)

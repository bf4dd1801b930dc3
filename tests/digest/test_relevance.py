"""Personal relevance: votes reorder the eligible papers by the reader's mix, and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest

from papermail.db.models import DeliveryStatus, Frequency
from papermail.digest.relevance import (
    DENSE_VOTES_MAX,
    DISLIKE_WEIGHT,
    SIMILARITY_WEIGHT,
    TAG_WEIGHT,
    Comparison,
    Taste,
    TextSpace,
    blend,
    disliked_more,
    personal_scores,
    reasons_for,
    short_title,
)
from papermail.digest.render import render_deliveries
from papermail.digest.select import select_for_subscribers
from papermail.subscribers import votes

DIFFUSION = (
    "Denoising Diffusion Models for {n} Image Synthesis",
    "We train a denoising diffusion model with a score network that removes Gaussian noise step by "
    "step; the diffusion sampler generates images with classifier-free guidance. Variant {n}.",
)
THEORY = (
    "Generalization Bounds for {n} Learning via PAC-Bayes",
    "We prove a generalization bound with PAC-Bayes theory and Rademacher complexity; the theorem "
    "gives sample complexity for learning under a convex loss. Variant {n}.",
)
TOPICS = {"diffusion": DIFFUSION, "theory": THEORY}
# One author for all: the shelf's papers differ only by their words.
SAME_AUTHORS = ("Ada Lovelace",)


@pytest.fixture
def shelf(world):
    """Twenty cs.LG papers alternating theory (odd ranks) and diffusion, plus three cs.CV diffusion ones."""
    papers = []
    for n in range(20):
        title, abstract = THEORY if n % 2 == 0 else DIFFUSION
        papers.append(
            world.paper(title=title.format(n=n), abstract=abstract.format(n=n), authors=SAME_AUTHORS)
        )
    vision = [
        world.paper(
            title=DIFFUSION[0].format(n=f"V{n}"),
            abstract=DIFFUSION[1].format(n=n),
            categories=["cs.CV"],
            authors=SAME_AUTHORS,
        )
        for n in range(3)
    ]
    return papers, vision


def _theme(paper) -> str:
    return "diffusion" if "Diffusion" in paper.title else "theory"


def _vote(session, subscriber, paper, value=votes.MORE):
    votes.record_vote(session, subscriber.id, paper.arxiv_id, value, votes.FROM_DIGEST)


def test_blend_extremes():
    trend = [9.0, 8.0, 7.0, 6.0]
    personal = np.array([0.1, 0.4, 0.3, 0.9])
    assert blend(trend, personal, 0) == [0, 1, 2, 3]
    assert blend(trend, personal, 4) == [3, 1, 2, 0]
    # Equal trending scores: the personal score decides, whatever the mix above 0.
    assert blend([1.0] * 4, personal, 1) == [3, 1, 2, 0]
    # A large trending lead needs much evidence: at mix 2, 1 / SIMILARITY_WEIGHT is one trending point.
    assert blend([20.0, 0.0], np.array([0.0, 19.9 / SIMILARITY_WEIGHT]), 2) == [0, 1]
    assert blend([20.0, 0.0], np.array([0.0, 20.1 / SIMILARITY_WEIGHT]), 2) == [1, 0]


def test_short_title_cuts_at_a_word():
    assert short_title("Denoising Diffusion Probabilistic Models Revisited For Everyone") == (
        "Denoising Diffusion Probabilistic Models\u2026"
    )


def test_no_votes_is_exactly_trending(session, world, shelf):
    papers, vision = shelf
    run = world.run(papers + vision)
    reader = world.subscriber()
    selection = select_for_subscribers(session, run.id, [reader], size=10)[reader.id]
    assert selection.paper_ids == [p.id for p in papers[:10]]
    assert selection.reasons == []


def test_mix_extremes_with_votes(session, world, shelf):
    papers, vision = shelf
    run = world.run(papers + vision)
    trending_only, personal_only = world.subscriber(), world.subscriber()
    trending_only.relevance_mix, personal_only.relevance_mix = 0, 4
    for reader in (trending_only, personal_only):
        _vote(session, reader, papers[1])  # a diffusion paper
        _vote(session, reader, papers[0], votes.LESS)  # a theory paper
    selections = select_for_subscribers(session, run.id, [trending_only, personal_only], size=6)
    by_id = {p.id: p for p in papers + vision}
    # Mix 0: today's order, exactly, with no model built.
    assert selections[trending_only.id].paper_ids == [p.id for p in papers[:6]]
    assert selections[trending_only.id].reasons == []
    # Mix 4: diffusion first, in trending order among themselves, and never outside cs.LG; the
    # papers voted on are not news to this reader.
    personal = [by_id[i] for i in selections[personal_only.id].paper_ids]
    assert [_theme(p) for p in personal] == ["diffusion"] * 6
    assert personal == [p for p in papers[2:] if _theme(p) == "diffusion"][:6]
    reasons = selections[personal_only.id].reasons
    assert reasons[0].startswith('close to "Denoising Diffusion Models for 1') and reasons[0].endswith(
        " you liked"
    )


def test_cold_start_ties_let_personal_decide(session, world, shelf):
    papers, _ = shelf
    run = world.run(papers)
    for score in run_scores(session, run):
        score.score = 0.0  # nothing trending yet: every paper equally new
    session.flush()
    reader, other = world.subscriber(), world.subscriber()
    votes.record_vote(session, reader.id, papers[0].arxiv_id, votes.MORE, votes.FROM_SEED)  # theory
    selections = select_for_subscribers(session, run.id, [reader, other], size=5)
    chosen = {p.id: p for p in papers}
    assert [_theme(chosen[i]) for i in selections[reader.id].paper_ids] == ["theory"] * 5
    assert selections[other.id].paper_ids == [p.id for p in papers[:5]]


def run_scores(session, run):
    from papermail.db.models import TrendScore

    return session.query(TrendScore).filter(TrendScore.run_id == run.id).all()


def test_never_repeat_holds_for_voters(session, world, shelf):
    papers, _ = shelf
    run = world.run(papers)
    reader = world.subscriber()
    reader.relevance_mix = 4
    sent = [p for p in papers if _theme(p) == "diffusion"][:3]
    world.delivery(reader, world.digest("2026-W47", run), sent, status=DeliveryStatus.SENT)
    _vote(session, reader, sent[0])
    chosen = select_for_subscribers(session, run.id, [reader], size=10)[reader.id].paper_ids
    assert not set(chosen) & {p.id for p in sent}


def test_a_seed_not_fetched_yet_changes_nothing(session, world, shelf):
    papers, _ = shelf
    run = world.run(papers)
    reader = world.subscriber()
    votes.record_vote(session, reader.id, "2612.99999", votes.MORE, votes.FROM_SEED)
    assert select_for_subscribers(session, run.id, [reader], size=4)[reader.id].paper_ids == [
        p.id for p in papers[:4]
    ]


def test_the_reason_is_frozen_and_new_votes_leave_a_rendered_digest_alone(session, world, shelf, settings):
    papers, _ = shelf
    run = world.run(papers)
    reader = world.subscriber(frequency=Frequency.WEEKLY)
    reader.relevance_mix = 4
    _vote(session, reader, papers[1])
    selection = select_for_subscribers(session, run.id, [reader], size=3)[reader.id]
    delivery = world.delivery(reader, world.digest("2026-W48", run), selection.paper_ids)
    delivery.reasons = selection.reasons
    session.flush()
    first = render_deliveries(session, settings, [delivery.id])[delivery.id]
    assert '5 days old · close to "Denoising Diffusion Models for 1 Image…" you liked\n' in first.text
    # New votes change the next ranking, never a delivery already planned.
    _vote(session, reader, papers[1], votes.LESS)
    _vote(session, reader, papers[2])
    again = render_deliveries(session, settings, [delivery.id])[delivery.id]
    assert strip_links(again.html) == strip_links(first.html)
    assert strip_links(again.text) == strip_links(first.text)


def strip_links(body: str) -> str:
    import re

    return re.sub(r"/(unsubscribe|preferences|vote)/[A-Za-z0-9_.\-]+", "/<signed>", body)


def test_the_pool_takes_every_paper_tied_with_its_last_place():
    from papermail.digest.personal import RERANK_POOL
    from papermail.digest.select import Interests, RankedPaper, _candidate_pool, _Matches

    scores = [100.0 - n for n in range(RERANK_POOL - 1)] + [0.0] * 30 + [-1.0] * 5
    ranking = [RankedPaper(n, frozenset({"cs.LG"}), "", score) for n, score in enumerate(scores)]
    pool = _candidate_pool(_Matches.scan(ranking, Interests.of([], [])), excluded={3})
    assert [paper_id for paper_id, _ in pool] == [n for n in range(RERANK_POOL - 1 + 30) if n != 3]
    distinct = [RankedPaper(n, frozenset(), "", -float(n)) for n in range(RERANK_POOL + 50)]
    assert len(_candidate_pool(_Matches.scan(distinct, Interests.of([], [])), excluded=set())) == RERANK_POOL


def test_planning_freezes_the_reasons_of_voters_only(session, world, shelf, settings):
    import sqlalchemy as sa

    from papermail import clock
    from papermail.db.models import Delivery
    from papermail.delivery.plan import plan

    papers, _ = shelf
    world.run(papers)
    voter, other = world.subscriber(), world.subscriber()
    voter.relevance_mix = 4
    _vote(session, voter, papers[1])
    plan(session, settings, now=clock.now(), period_key="2026-W48")
    rows = {d.subscriber_id: d for d in session.scalars(sa.select(Delivery))}
    assert rows[other.id].reasons is None
    assert rows[other.id].paper_ids == [p.id for p in papers[: settings.digest_size]]
    assert len(rows[voter.id].reasons) == len(rows[voter.id].paper_ids)
    assert rows[voter.id].reasons[0] == 'close to "Denoising Diffusion Models for 1 Image…" you liked'


def test_the_fast_paths_equal_the_plain_maths_to_the_bit(texts):
    """Planning's shortcuts (one fit_transform, rows gathered with numpy, votes as dense columns)
    give exactly the numbers of the plain sparse products they replace: orders can hinge on the
    last bit, near-duplicate papers being common.
    """
    # Near-duplicates as in real rankings (versions, cross-lists): the same abstract, titles apart.
    papers = {n: f"{texts[n % len(texts)][0]} ({n})\n{texts[n % len(texts)][1]}" for n in range(300)}
    ids = list(papers)
    space = TextSpace(list(papers.values())[:200], ids[:200])
    space.add(papers)
    plain = TextSpace(list(papers.values())[:200])
    plain.add(papers)
    matrix = plain.vectors(ids)
    assert_same_bits(space.vectors(ids).toarray(), matrix.toarray())

    rng = np.random.default_rng(14)
    large = 0
    for _ in range(60):
        candidates = rng.choice(ids, 100, replace=False).tolist()
        voted = rng.choice(ids, rng.choice([*range(1, 13), DENSE_VOTES_MAX + 5]), replace=False).tolist()
        values = rng.choice([1, 1, -1], len(voted)).tolist()
        large += len(voted) > DENSE_VOTES_MAX
        taste = Taste(tuple(voted), tuple(values), tuple(papers[p].split("\n")[0] for p in voted))
        found, votes = matrix[candidates], matrix[voted]
        comparison = Comparison.of(space, taste, candidates)
        assert_same_bits(comparison.similarity, (found @ votes.T).toarray())

        weights = np.where(np.array(values) > 0, 1, -DISLIKE_WEIGHT).astype(np.float32)
        evidence = (found @ votes.T).toarray() @ weights
        expected = evidence - np.median(evidence)
        assert_same_bits(personal_scores(space, taste, candidates, comparison), expected)
        assert_same_bits(personal_scores(space, taste, candidates), expected)

        chosen = list(range(0, 100, 9))
        assert reasons_for(space, taste, [candidates[n] for n in chosen], comparison.similarity[chosen]) == (
            reasons_for(space, taste, [candidates[n] for n in chosen])
        )
    assert large >= 2


def assert_same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


WORKED_EXAMPLE = {
    "liked": (
        "Denoising Diffusion Probabilistic Models",
        "We present high quality image synthesis results using diffusion probabilistic models, a class "
        "of latent variable models inspired by nonequilibrium thermodynamics. We train on a weighted "
        "variational bound designed according to a connection between diffusion models and denoising "
        "score matching.",
    ),
    "disliked": (
        "Rademacher Complexity of Neural Networks",
        "We bound the Rademacher complexity of deep neural networks by the norms of their weight "
        "matrices, and derive generalization bounds that do not depend on the size of the network.",
    ),
    "A": (
        "Scaling Laws for Mixture-of-Experts Language Models",
        "We study how the loss of sparse mixture-of-experts language models scales with parameters, "
        "data and compute, and fit scaling laws that predict the best number of experts for a "
        "training budget.",
    ),
    "B": (
        "Consistency Distillation of Denoising Diffusion Models",
        "We distill a pretrained denoising diffusion model into a consistency model that generates "
        "images in one or two steps, matching the sample quality of the diffusion sampler at a "
        "fraction of its cost.",
    ),
    "C": (
        "A Benchmark for Web Agents",
        "We introduce a benchmark of realistic tasks on live websites for autonomous agents, with "
        "automatic evaluation of whether each task was completed.",
    ),
    "D": (
        "Video Generation with Latent Diffusion",
        "We extend latent diffusion models to video by adding temporal layers to a pretrained image "
        "model, and generate high resolution videos from text prompts.",
    ),
    "E": (
        "PAC-Bayes Bounds for Deep Networks",
        "We derive non-vacuous PAC-Bayes generalization bounds for deep neural networks trained with "
        "stochastic gradient descent, and compare them with norm-based complexity measures.",
    ),
}


def test_the_worked_example_of_docs_relevance():
    """The numbers and orders of the worked example in docs/relevance.md, from the code itself."""
    names = list(WORKED_EXAMPLE)
    space = TextSpace([f"{title}\n{abstract}" for title, abstract in WORKED_EXAMPLE.values()], range(7))
    taste = Taste((0, 1), (1, -1), (WORKED_EXAMPLE["liked"][0], WORKED_EXAMPLE["disliked"][0]))
    candidates, trending = [2, 3, 4, 5, 6], [9.5, 5.1, 5.1, 3.0, 1.4]
    comparison = Comparison.of(space, taste, candidates)
    scores = personal_scores(space, taste, candidates, comparison)

    similarity = np.round(comparison.similarity.astype(float), 3).tolist()
    assert similarity == [[0.045, 0], [0.248, 0], [0, 0], [0.147, 0], [0, 0.28]]
    assert np.round(scores.astype(float), 3).tolist() == [0, 0.203, -0.045, 0.102, -0.185]
    away = disliked_more(taste, comparison.similarity)
    assert away.tolist() == [False, False, False, False, True]
    blended = [
        np.round(np.array(trending) + mix / (4 - mix) * SIMILARITY_WEIGHT * scores.astype(float), 1).tolist()
        for mix in (1, 2, 3)
    ]
    assert blended == [
        [9.5, 15.3, 2.9, 8.1, -7.8],
        [9.5, 35.6, -1.6, 18.4, -26.3],
        [9.5, 96.5, -15.0, 49.1, -81.6],
    ]

    def order(mix: int, size: int | None = None) -> str:
        positions = blend(trending, scores, mix, size=size, disliked=away)
        return "".join(names[candidates[n]] for n in positions)[: size or len(positions)]

    assert [order(mix) for mix in range(5)] == ["ABCDE", "BADCE", "BDACE", "BDACE", "BDACE"]
    assert [order(mix, size=3) for mix in range(5)] == ["ABC", "BAC", "BAC", "BDA", "BDA"]
    digest = blend(trending, scores, 2, size=3, disliked=away)[:3]
    assert reasons_for(space, taste, [candidates[n] for n in digest], comparison.similarity[digest]) == [
        'close to "Denoising Diffusion Probabilistic Models" you liked',
        "",
        "",
    ]


def test_shared_categories_and_authors_count_beside_the_words():
    from papermail.digest.relevance import paper_tags, paper_text

    words = ("A Study of Channels", "We study channels and their capacity under noise constraints.")
    liked = paper_text(*words, paper_tags(["cs.IT"], ["Ada Lovelace"]))
    same_category = paper_text(*words, paper_tags(["cs.IT"], ["Alan Turing"]))
    same_author = paper_text(*words, paper_tags(["math.ST"], ["Ada  lovelace"]))
    neither = paper_text(*words, paper_tags(["math.ST"], ["Alan Turing"]))
    untagged = paper_text(*words)
    space = TextSpace([liked, same_category, same_author, neither, untagged], range(5))
    taste = Taste((0,), (1,), (words[0],))
    scores = personal_scores(space, taste, [1, 2, 3, 4])
    assert scores[0] > scores[2] and scores[1] > scores[2]
    # The same words: without tags, the similarity is the words' share of it.
    words_share = 1 / np.sqrt(1 + TAG_WEIGHT**2)
    assert np.isclose(Comparison.of(space, taste, [4]).similarity[0, 0], words_share, atol=1e-6)

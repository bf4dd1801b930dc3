"""Offline evaluation of personal relevance: does a reader's third digest get better with votes?

    .venv/bin/python benchmarks/relevance.py [--seeds N] [--clusters K]

Real abstracts: every paper recorded in the shared fixtures (arXiv RSS and API answers, the Hugging
Face daily papers and the trending page), read from ``../shared/fixtures`` and de-duplicated by
title. Synthetic readers: each has a hidden interest, one theme, either a cluster of the abstracts
(k-means over their TF-IDF) or a few words; a paper is relevant to the reader if it is in the theme.

Each reader gets three weekly digests of 10 papers from three disjoint weeks of papers. Trending
knows nothing of the reader; it is modelled two ways: *distinct*, every paper with its own random
score (the hardest case for the blend), and *realistic*, where only 30 % of papers have Hugging Face
signals (random scores above the rest) and the others score by age alone, so papers announced the
same day (one of five) tie, as on a real week where most papers never reach Hugging Face. Readers
read their first two digests and vote: "More like this" on every relevant paper, "Less like this"
on half the others, until they have given N votes. The third digest is ranked three ways by
papermail's own code (:mod:`papermail.digest.relevance`, the same functions planning uses):
trending only (mix 0, the baseline), blended (mix 2, the default) and personal only (mix 4).
One text model serves every reader, fitted on all the papers, as planning fits one per ranking on
its leading papers (which span the weeks a reader voted in).
Reported: precision@10 of the third digest (the share of relevant papers), mean over readers, for
each vote budget N, and the ratio blended / trending-only with a bootstrap 95 % interval (the
readers are resampled, each keeping its trending-only and blended digest). Target: >= 2x at 5 votes.
At 5 votes the ratio is also split by how many of the votes were likes.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from tests.conftest import shared_fixtures_dir  # noqa: E402
from tests.digest.builders import seed_texts  # noqa: E402

from papermail.digest.personal import RERANK_POOL  # noqa: E402
from papermail.digest.relevance import Taste, TextSpace, blend, personal_scores  # noqa: E402
from papermail.sources.arxiv_api import parse_api_feed  # noqa: E402
from papermail.sources.arxiv_rss import parse_rss  # noqa: E402
from papermail.sources.huggingface import parse_daily_papers  # noqa: E402

DIGEST_SIZE = 10
WEEKS = 3
VOTE_BUDGETS = (0, 1, 2, 5, 10, 20)
MIXES = {"trending only (mix 0)": 0, "blended (mix 2)": 2, "personal only (mix 4)": 4}
# Word themes: a paper is in the theme if its title or abstract has one of the words.
WORD_THEMES = {
    "language models": r"\blanguage models?\b|\bLLMs?\b",
    "reinforcement learning": r"\breinforcement\b|\bpolicy\b|\breward",
    "images and video": r"\bimages?\b|\bvideo\b|\bvisual\b",
    "agents": r"\bagents?\b|\bagentic\b",
    "testing": r"\btest(s|ing)?\b",
}


@dataclass(frozen=True)
class Paper:
    key: int
    title: str
    text: str


def load_papers(fixtures: Path) -> list[Paper]:
    """Every recorded real paper, once (by title)."""
    pairs: list[tuple[str, str]] = []
    for path in sorted((fixtures / "arxiv-rss").glob("arxiv_*.xml")):
        pairs += [(r.title, r.abstract) for r in parse_rss(path.read_bytes()).records]
    for path in sorted((fixtures / "arxiv-api").glob("*.xml")):
        pairs += [(r.title, r.abstract) for r in parse_api_feed(path.read_bytes()).records]
    hf = parse_daily_papers((fixtures / "huggingface" / "hf_daily_papers.json").read_bytes())
    pairs += [(r.title, r.abstract) for r in hf.records]
    pairs += seed_texts(fixtures)
    unique = {" ".join(t.lower().split()): (t, a) for t, a in pairs if len(a) > 200}
    return [Paper(n, t, f"{t}\n{a}") for n, (t, a) in enumerate(unique.values())]


def themes(papers: list[Paper], clusters: int, seed: int) -> dict[str, set[int]]:
    """Hidden interests: k-means clusters of the abstracts, and word themes; 5 % to 30 % of papers each."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(stop_words="english", min_df=2).fit_transform([p.text for p in papers])
    labels = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit_predict(vectors)
    found = {
        f"cluster {c}": {p.key for p, label in zip(papers, labels, strict=True) if label == c}
        for c in range(clusters)
    }
    for name, pattern in WORD_THEMES.items():
        words = re.compile(pattern, re.IGNORECASE)
        found[f'words "{name}"'] = {p.key for p in papers if words.search(p.text)}
    low, high = 0.05 * len(papers), 0.30 * len(papers)
    return {name: keys for name, keys in found.items() if low <= len(keys) <= high}


@dataclass
class Reader:
    relevant: set[int]
    rng: random.Random
    votes: list[tuple[int, int]]  # (paper key, +1/-1)

    def read(self, digest: list[int], budget: int) -> None:
        """Vote on a digest: more on every relevant paper, less on half the others, within the budget."""
        for key in digest:
            if len(self.votes) >= budget:
                return
            if key in self.relevant:
                self.votes.append((key, 1))
            elif self.rng.random() < 0.5:
                self.votes.append((key, -1))


def text_space(papers: list[Paper]) -> TextSpace:
    """One text model for every reader and week, as planning fits one per ranking (its leading papers)."""
    return TextSpace([p.text for p in papers], [p.key for p in papers])


def digest(
    week: list[Paper],
    trend: list[float],
    reader: Reader,
    mix: int,
    by_key: dict[int, Paper],
    space: TextSpace,
) -> list[int]:
    """The 10 papers papermail picks from a week for this reader, as planning does."""
    pool = list(range(min(RERANK_POOL, len(week))))  # the week is already in trending order
    if mix == 0 or not reader.votes:
        return [week[n].key for n in pool[:DIGEST_SIZE]]
    voted = [key for key, _ in reader.votes]
    taste = Taste(tuple(voted), tuple(v for _, v in reader.votes), tuple(by_key[k].title for k in voted))
    keys = [week[n].key for n in pool]
    scores = personal_scores(space, taste, keys)
    order = blend([trend[n] for n in pool], scores, mix)
    return [keys[n] for n in order[:DIGEST_SIZE]]


def trending_week(week: list[Paper], rng: random.Random, realistic: bool) -> tuple[list[Paper], list[float]]:
    """The week's papers in trending order, with their scores (ties kept in the given order)."""
    if realistic:
        scores = [10 + rng.random() if rng.random() < 0.3 else -float(rng.randrange(5)) for _ in week]
    else:
        scores = [rng.random() for _ in week]
    ranked = sorted(zip(scores, range(len(week)), week, strict=True), key=lambda item: (-item[0], item[1]))
    return [paper for _, _, paper in ranked], [score for score, _, _ in ranked]


def evaluate(
    papers: list[Paper], interests: dict[str, set[int]], seeds: int, *, realistic: bool
) -> dict[int, dict[str, list[float]]]:
    """Precision@10 of the third digest per vote budget and mix, one value per (theme, seed) reader.

    Also per budget: the votes and likes the blended reader gave (a trending-only reader sees the
    same first two digests, so gives the very same votes: the comparison is paired).
    """
    by_key = {p.key: p for p in papers}
    space = text_space(papers)
    results: dict[int, dict[str, list[float]]] = {
        b: {name: [] for name in MIXES} | {"votes": [], "likes": []} for b in VOTE_BUDGETS
    }
    for seed in range(seeds):
        for relevant in interests.values():
            rng = random.Random(seed)
            shuffled = papers[:]
            rng.shuffle(shuffled)
            ranked = [trending_week(shuffled[w::WEEKS], rng, realistic) for w in range(WEEKS)]
            weeks, trends = [week for week, _ in ranked], [scores for _, scores in ranked]
            for budget in VOTE_BUDGETS:
                for name, mix in MIXES.items():
                    reader = Reader(relevant, random.Random(seed * 7919 + budget), [])
                    # The first two digests, each ranked with the votes given so far, at the reader's mix
                    # (a trending-only reader votes too: their third digest ignores the votes).
                    for w in range(WEEKS - 1):
                        reader.read(digest(weeks[w], trends[w], reader, max(mix, 2), by_key, space), budget)
                    third = digest(weeks[-1], trends[-1], reader, mix, by_key, space)
                    results[budget][name].append(sum(key in relevant for key in third) / len(third))
                    if mix == MIXES["blended (mix 2)"]:
                        results[budget]["votes"].append(len(reader.votes))
                        results[budget]["likes"].append(sum(value > 0 for _, value in reader.votes))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=200, help="random weeks and trending orders per theme")
    parser.add_argument("--clusters", type=int, default=8, help="k-means clusters among the hidden interests")
    args = parser.parse_args()
    papers = load_papers(shared_fixtures_dir())
    interests = themes(papers, args.clusters, seed=48)
    sizes = ", ".join(f"{name} ({len(keys)})" for name, keys in interests.items())
    print(f"{len(papers)} real abstracts in {WEEKS} weeks of ~{len(papers) // WEEKS}")
    print(f"{len(interests)} hidden interests (papers in each): {sizes}")
    readers = len(interests) * args.seeds
    print(f"{readers} readers; precision@{DIGEST_SIZE} of the third digest, mean (median) over readers\n")
    for realistic in (False, True):
        print(
            "trending " + ("realistic: 30 % with signals, the rest tied by day" if realistic else "distinct")
        )
        report(evaluate(papers, interests, args.seeds, realistic=realistic))


def report(results: dict[int, dict[str, list[float]]]) -> None:
    """The table of one trending model, and the verdict at 5 votes with its 95 % interval."""
    names = list(MIXES)
    print(f"{'votes given':>12}  " + "  ".join(f"{name:>22}" for name in names) + "   blended / trending")
    for budget in VOTE_BUDGETS:
        row = results[budget]
        cells = [f"{statistics.mean(row[n]):>14.3f} ({statistics.median(row[n]):.2f})" for n in names]
        base, mine = statistics.mean(row[names[0]]), statistics.mean(row[names[1]])
        given = float(np.mean(row["votes"]))
        print(f"{given:>12.1f}  " + "  ".join(cells) + f"   {mine / base:>6.2f}x")
    at_five = results[5]
    trending, blended = np.asarray(at_five[names[0]]), np.asarray(at_five[names[1]])
    ratio = blended.mean() / trending.mean()
    low, high = paired_interval(trending, blended)
    verdict = "met" if ratio >= 2 else "NOT met"
    print(
        f"at 5 votes: blended {ratio:.2f}x trending only, 95 % interval {low:.2f}x to {high:.2f}x "
        f"(target >= 2x: {verdict})"
    )
    likes = np.asarray(at_five["likes"])
    for label, readers in (("no like", likes == 0), ("1 like", likes == 1), ("2+ likes", likes >= 2)):
        if readers.any():
            print(
                f"  readers with {label} among their 5 votes: {readers.mean():.0%}, "
                f"blended {blended[readers].mean() / trending[readers].mean():.2f}x trending only"
            )
    print()


def paired_interval(trending: np.ndarray, blended: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    """A bootstrap 95 % interval of mean(blended) / mean(trending), resampling readers (paired)."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(trending), size=(rounds, len(trending)))
    ratios = blended[picks].mean(axis=1) / trending[picks].mean(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


if __name__ == "__main__":
    main()

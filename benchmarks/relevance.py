"""Offline evaluation of personal relevance: does a reader's third digest get better with votes?

    .venv/bin/python benchmarks/relevance.py [--seeds N] [--clusters K] [--readers KIND]...

Real papers: every paper recorded in the shared fixtures (arXiv RSS and API answers, the Hugging
Face daily papers and the trending page), read from ``../shared/fixtures`` and de-duplicated by
title, with the categories and authors their source gave. Three kinds of reader:

* synthetic: a hidden interest made by a text model, a k-means cluster of the abstracts or a few
  words; relevant are the papers in it;
* category: one arXiv category; relevant are the papers their authors filed in it (any listing);
* author: an author of 3 papers or more, who likes some of their own papers (at most all but one);
  relevant are their other papers and their co-authors'. Their digest is picked from all other
  papers at once.

Synthetic and category readers get three weekly digests of 10 papers from three disjoint weeks of
papers. Trending knows nothing of the reader; it is modelled in its own units (doublings of heat)
two ways: *distinct*, every paper a random score from -3 to 9, and *realistic*, where only 30 % of
papers have Hugging Face signals (1.5 log2(1 + upvotes) less their age) and the others score by
age alone, so papers announced the same day tie. Readers vote on their first two digests: "More
like this" on every relevant paper, "Less like this" on half the others, until they have given N
votes. The third digest is ranked three ways by papermail's own code
(:func:`papermail.digest.relevance.choose`, as planning does): trending only (mix 0, the baseline),
blended (mix 2, the default) and personal only (mix 4). One text model serves every reader, fitted
on all the papers, as planning fits one per ranking on its leading papers.

Reported: precision@10 (the share of relevant papers), mean over readers, for each vote budget N,
and the ratio blended / trending-only with a bootstrap 95 % interval (readers resampled, each
keeping its trending-only and blended digest); target >= 2x at 5 votes, split by how many of the
votes were likes. And the "why" line: the share of the blended digest's personal picks (papers
trending alone would not have chosen) that carry one, and how many of those, and of the others,
are relevant.
"""

from __future__ import annotations

import argparse
import math
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
from papermail.digest.relevance import Taste, TextSpace, choose, paper_tags, paper_text  # noqa: E402
from papermail.sources.arxiv_api import parse_api_feed  # noqa: E402
from papermail.sources.arxiv_rss import parse_rss  # noqa: E402
from papermail.sources.huggingface import parse_daily_papers  # noqa: E402

DIGEST_SIZE = 10
WEEKS = 3
VOTE_BUDGETS = (0, 1, 3, 5, 10, 20)
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
    text: str  # as the text space reads it: words, then tags
    words: str  # title and abstract
    categories: frozenset[str] = frozenset()
    authors: frozenset[str] = frozenset()


def load_papers(fixtures: Path) -> list[Paper]:
    """Every recorded real paper, once (by title), with the categories and authors its source gave."""
    records = []
    for path in sorted((fixtures / "arxiv-rss").glob("arxiv_*.xml")):
        records += parse_rss(path.read_bytes()).records
    for path in sorted((fixtures / "arxiv-api").glob("*.xml")):
        records += parse_api_feed(path.read_bytes()).records
    records += parse_daily_papers((fixtures / "huggingface" / "hf_daily_papers.json").read_bytes()).records
    found = [(r.title, r.abstract, frozenset(r.categories), frozenset(r.authors)) for r in records]
    found += [(t, a, frozenset(), frozenset()) for t, a in seed_texts(fixtures)]
    unique: dict[str, tuple[str, str, frozenset[str], frozenset[str]]] = {}
    for title, abstract, categories, authors in found:
        key = " ".join(title.lower().split())
        if len(abstract) > 200 and (key not in unique or categories):
            unique[key] = (title, abstract, categories, authors)
    return [
        Paper(n, t, paper_text(t, a, paper_tags(sorted(c), sorted(w))), f"{t}\n{a}", c, w)
        for n, (t, a, c, w) in enumerate(unique.values())
    ]


def themes(papers: list[Paper], clusters: int, seed: int) -> dict[str, set[int]]:
    """Hidden interests: k-means clusters of the abstracts, and word themes; 5 % to 30 % of papers each."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(stop_words="english", min_df=2).fit_transform([p.words for p in papers])
    labels = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit_predict(vectors)
    found = {
        f"cluster {c}": {p.key for p, label in zip(papers, labels, strict=True) if label == c}
        for c in range(clusters)
    }
    for name, pattern in WORD_THEMES.items():
        words = re.compile(pattern, re.IGNORECASE)
        found[f'words "{name}"'] = {p.key for p in papers if words.search(p.words)}
    return _sized(found, len(papers))


def _sized(found: dict[str, set[int]], papers: int) -> dict[str, set[int]]:
    low, high = 0.05 * papers, 0.30 * papers
    return {name: keys for name, keys in found.items() if low <= len(keys) <= high}


def category_interests(papers: list[Paper]) -> dict[str, set[int]]:
    """Readers of one arXiv category: relevant are the papers their authors filed in it (any listing)."""
    categories = sorted({c for p in papers for c in p.categories})
    found = {f"category {c}": {p.key for p in papers if c in p.categories} for c in categories}
    return _sized(found, len(papers))


def author_interests(papers: list[Paper], least: int = 3) -> dict[str, tuple[set[int], set[int]]]:
    """Readers who are authors of ``least`` papers or more: (their papers, theirs and their co-authors')."""
    written: dict[str, set[int]] = {}
    for paper in papers:
        for author in paper.authors:
            written.setdefault(author, set()).add(paper.key)
    found = {}
    for author, keys in sorted(written.items()):
        if len(keys) >= least:
            circle = {a for p in papers if p.key in keys for a in p.authors}
            found[f"author {author}"] = (keys, {p.key for p in papers if p.authors & circle})
    return found


def evaluate_authors(
    papers: list[Paper], authors: dict[str, tuple[set[int], set[int]]], seeds: int, *, realistic: bool
) -> dict[int, dict[str, list[float]]]:
    """Authors as readers: they seed N of their own papers (all but one at most) as likes; the digest
    is picked from all other papers at once, and relevant are their other papers and co-authors'."""
    by_key = {p.key: p for p in papers}
    space = text_space(papers)
    results: dict[int, dict[str, list[float]]] = {
        b: {name: [] for name in MIXES} | {key: [] for key in PICK_COUNTS} for b in VOTE_BUDGETS
    }
    for seed in range(seeds):
        for own, circle in authors.values():
            rng = random.Random(seed)
            for budget in VOTE_BUDGETS:
                liked = rng.sample(sorted(own), min(budget, len(own) - 1))
                reader = Reader(circle, rng, [(key, 1) for key in liked])
                rest = [p for p in papers if p.key not in liked]
                week, trend = trending_week(rest, random.Random(seed), realistic)
                relevant = circle - set(liked)
                for name, mix in MIXES.items():
                    picked = digest(week, trend, reader, mix, by_key, space)
                    results[budget][name].append(sum(key in relevant for key in picked.keys) / DIGEST_SIZE)
                    if mix == MIXES["blended (mix 2)"]:
                        counts = _pick_counts(picked, relevant)
                        counts |= {
                            "votes": len(liked),
                            "likes": len(liked),
                            "picks of likers": counts["picks"],
                        }
                        for key, value in counts.items():
                            results[budget][key].append(value)
    return results


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


@dataclass
class Picked:
    """A digest, and per paper whether personal relevance put it there and named a reason."""

    keys: list[int]
    personal: list[bool]  # not in the trending-only digest of the same week
    reasons: list[str]


def digest(
    week: list[Paper],
    trend: list[float],
    reader: Reader,
    mix: int,
    by_key: dict[int, Paper],
    space: TextSpace,
) -> Picked:
    """The 10 papers papermail picks from a week for this reader, as planning does."""
    pool = list(range(min(RERANK_POOL, len(week))))  # the week is already in trending order
    trending = [week[n].key for n in pool[:DIGEST_SIZE]]
    if mix == 0 or not reader.votes:
        return Picked(trending, [False] * len(trending), [""] * len(trending))
    voted = {key for key, _ in reader.votes}
    pool = [n for n in pool if week[n].key not in voted]  # not news to the reader
    keys = [week[n].key for n in pool]
    taste = Taste(
        tuple(key for key, _ in reader.votes),
        tuple(v for _, v in reader.votes),
        tuple(by_key[k].title for k, _ in reader.votes),
    )
    chosen, reasons = choose(space, taste, keys, [trend[n] for n in pool], mix, DIGEST_SIZE)
    return Picked(chosen, [key not in trending for key in chosen], reasons)


def trending_week(week: list[Paper], rng: random.Random, realistic: bool) -> tuple[list[Paper], list[float]]:
    """The week's papers in trending order, with their scores in the trending formula's units
    (doublings of heat; ties kept in the given order)."""
    if realistic:
        # A paper with signals: 1.5 log2(1 + upvotes) less its age; the others by age alone, per day.
        scores = [
            1.5 * math.log2(1 + int(rng.lognormvariate(2.5, 1.2))) - rng.uniform(0, 7) * 24 / 36
            if rng.random() < 0.3
            else -rng.randrange(7) * 24 / 36
            for _ in week
        ]
    else:
        scores = [rng.uniform(-3, 9) for _ in week]
    ranked = sorted(zip(scores, range(len(week)), week, strict=True), key=lambda item: (-item[0], item[1]))
    return [paper for _, _, paper in ranked], [score for score, _, _ in ranked]


def evaluate(
    papers: list[Paper], interests: dict[str, set[int]], seeds: int, *, realistic: bool
) -> dict[int, dict[str, list[float]]]:
    """Precision@10 of the third digest per vote budget and mix, one value per (theme, seed) reader.

    Also per budget: the votes and likes the blended reader gave (a trending-only reader sees the
    same first two digests, so gives the very same votes: the comparison is paired), and for the
    blended digest's personal picks (those trending alone would not have chosen): how many carry a
    reason, and how many of those, and of the others, are relevant.
    """
    by_key = {p.key: p for p in papers}
    space = text_space(papers)
    results: dict[int, dict[str, list[float]]] = {
        b: {name: [] for name in MIXES} | {key: [] for key in PICK_COUNTS} for b in VOTE_BUDGETS
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
                        shown = digest(weeks[w], trends[w], reader, max(mix, 2), by_key, space)
                        reader.read(shown.keys, budget)
                    third = digest(weeks[-1], trends[-1], reader, mix, by_key, space)
                    results[budget][name].append(sum(key in relevant for key in third.keys) / DIGEST_SIZE)
                    if mix == MIXES["blended (mix 2)"]:
                        counts = _pick_counts(third, relevant)
                        counts["votes"] = len(reader.votes)
                        counts["likes"] = sum(value > 0 for _, value in reader.votes)
                        counts["picks of likers"] = counts["picks"] if counts["likes"] else 0
                        for key, value in counts.items():
                            results[budget][key].append(value)
    return results


PICK_COUNTS = (
    "votes",
    "likes",
    "picks",
    "picks of likers",
    "with reason",
    "relevant with reason",
    "relevant without",
)


def _pick_counts(picked: Picked, relevant: set[int]) -> dict[str, int]:
    mine = [(key, reason) for key, own, reason in zip(*vars(picked).values(), strict=True) if own]
    return {
        "picks": len(mine),
        "with reason": sum(bool(reason) for _, reason in mine),
        "relevant with reason": sum(bool(reason) and key in relevant for key, reason in mine),
        "relevant without": sum(not reason and key in relevant for key, reason in mine),
    }


READERS = {
    "synthetic (k-means clusters and word themes)": "synthetic",
    "category (the arXiv categories the authors chose)": "category",
    "author (their papers and their co-authors')": "author",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=100, help="random weeks and trending orders per theme")
    parser.add_argument("--clusters", type=int, default=8, help="k-means clusters among the hidden interests")
    parser.add_argument("--readers", choices=sorted(READERS.values()), action="append", help="default: all")
    args = parser.parse_args()
    papers = load_papers(shared_fixtures_dir())
    print(f"{len(papers)} real abstracts in {WEEKS} weeks of ~{len(papers) // WEEKS}")
    for title, kind in READERS.items():
        if args.readers and kind not in args.readers:
            continue
        if kind == "author":
            authors = author_interests(papers)
            sizes = ", ".join(
                f"{name} ({len(own)}, {len(circle)})" for name, (own, circle) in authors.items()
            )
            print(f"\n== {title} readers: {len(authors)} authors (their papers, with co-authors'): {sizes}")
            print(
                f"{len(authors) * args.seeds} readers; precision@{DIGEST_SIZE}, votes are their own papers\n"
            )
        else:
            interests = (
                themes(papers, args.clusters, seed=48) if kind == "synthetic" else category_interests(papers)
            )
            sizes = ", ".join(f"{name} ({len(keys)})" for name, keys in interests.items())
            print(f"\n== {title} readers: {len(interests)} interests (papers in each): {sizes}")
            readers = len(interests) * args.seeds
            print(f"{readers} readers; precision@{DIGEST_SIZE} of the third digest, mean (median)\n")
        for realistic in (False, True):
            model = "realistic: 30 % with signals, the rest by day" if realistic else "distinct"
            print(f"trending {model}")
            if kind == "author":
                report(evaluate_authors(papers, authors, args.seeds, realistic=realistic))
            else:
                report(evaluate(papers, interests, args.seeds, realistic=realistic))


def report(results: dict[int, dict[str, list[float]]]) -> None:
    """The table of one trending model, the verdict at 5 votes with its 95 % interval, and the reasons."""
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
        if readers.any() and trending[readers].mean():
            print(
                f"  readers with {label} among their 5 votes: {readers.mean():.0%}, "
                f"blended {blended[readers].mean() / trending[readers].mean():.2f}x trending only"
            )
    for budget in (5, 10):
        row = {key: sum(results[budget][key]) for key in PICK_COUNTS}
        picks, named = row["picks"], row["with reason"]
        unnamed = picks - named
        print(
            f"  {budget} votes: {picks} personal picks, {named / max(picks, 1):.0%} with a reason "
            f"({named / max(row['picks of likers'], 1):.0%} of those of readers with a like); "
            f"relevant: {row['relevant with reason'] / max(named, 1):.0%} of those with a reason, "
            f"{row['relevant without'] / max(unnamed, 1):.0%} of those without"
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

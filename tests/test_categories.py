"""arXiv's taxonomy as papermail knows it: checked against the recorded feeds, matched in any case."""

from __future__ import annotations

from datetime import date

import pytest

from papermail.categories import (
    ARCHIVES,
    CATEGORY_GROUPS,
    KNOWN_CATEGORIES,
    TAXONOMY,
    UnknownCategory,
    canonical_categories,
    canonical_category,
    category_name,
    closest_categories,
    spelled_out,
    with_archives,
)
from papermail.digest.select import Interests, RankedPaper
from papermail.sources.arxiv_api import backfill_query, parse_api_feed
from papermail.sources.arxiv_rss import parse_rss


def recorded_categories(fixtures) -> set[str]:
    """Every category named by an entry of the recorded arXiv RSS listings and API answers."""
    found: set[str] = set()
    for folder, parse in (("arxiv-rss", parse_rss), ("arxiv-api", parse_api_feed)):
        for path in sorted((fixtures / folder).glob("*.xml")):
            found.update(
                c for record in parse(path.read_bytes(), path.name).records for c in record.categories
            )
    return found


def test_every_category_in_the_recorded_feeds_is_known(shared_fixtures):
    seen = recorded_categories(shared_fixtures)
    assert len(seen) >= 39  # the recordings span computer science, maths, physics, economics, biology
    assert seen - KNOWN_CATEGORIES == set()
    assert {"astro-ph", "hep-ph", "gr-qc", "q-bio.QM", "econ.GN", "math.ST"} <= seen


def test_the_whole_taxonomy_and_its_archives_are_known():
    categories = KNOWN_CATEGORIES - ARCHIVES
    assert len(categories) == 155
    archives = "astro-ph cond-mat cs econ eess math nlin physics q-bio q-fin stat"
    assert set(archives.split()) == ARCHIVES
    codes = [code for group in TAXONOMY.values() for code, _name in group]
    assert len(codes) == len(set(codes))  # each in one field only
    assert {"astro-ph.GA", "math.AG", "hep-th", "q-bio.GN", "cond-mat.str-el", "physics.optics"} <= categories
    assert category_name("astro-ph.GA") == "Astrophysics of Galaxies" and category_name("x.YZ") == "x.YZ"


def test_the_form_offers_every_category_once_the_most_followed_first():
    offered = [code for group in CATEGORY_GROUPS.values() for code, _name in group]
    assert sorted(offered) == sorted(KNOWN_CATEGORIES)
    assert [code for code, _ in CATEGORY_GROUPS["Most followed"]] == [
        "cs.AI", "cs.CL", "cs.CV", "cs.LG", "stat.ML", "cs.RO"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("cs.lg", "cs.LG"),
        (" CS.LG ", "cs.LG"),
        ("astro-ph.ga", "astro-ph.GA"),
        ("MATH.AG", "math.AG"),
        ("HEP-TH", "hep-th"),
        ("q-bio.gn", "q-bio.GN"),
        ("Cond-Mat.Str-El", "cond-mat.str-el"),
        ("Astro-Ph", "astro-ph"),
    ],
)
def test_any_case_is_canonicalised(typed, canonical):
    assert canonical_category(typed) == canonical


def test_repeats_in_any_case_count_once():
    assert canonical_categories(["cs.lg", "cs.LG", "", "stat.ml"]) == ["cs.LG", "stat.ML"]


@pytest.mark.parametrize(
    ("typed", "closest"),
    [
        ("cs.XY", ["cs.SY", "cs.CY", "cs.SI"]),
        ("astroph.GA", ["astro-ph.GA", "astro-ph", "astro-ph.SR"]),
        ("hep-theory", ["hep-th", "hep-ph", "hep-ex"]),
        ("robotics", ["cs.RO"]),
        ("zz", []),
    ],
)
def test_an_unknown_topic_names_the_closest_categories_and_the_full_list(typed, closest):
    assert closest_categories(typed) == closest
    with pytest.raises(UnknownCategory) as raised:
        canonical_category(typed)
    message = str(raised.value)
    assert message.startswith(f"{typed!r} is not an arXiv category")
    assert message.endswith("All of them: `papermail topics` or https://arxiv.org/category_taxonomy")
    assert all(code in message for code in closest)
    assert "papermail topics" not in raised.value.for_visitors


def test_an_archive_matches_every_category_in_it():
    galaxies = RankedPaper(1, with_archives(["astro-ph.GA", "physics.comp-ph"]), "")
    assert with_archives(["astro-ph.GA", "hep-th"]) == {"astro-ph.GA", "astro-ph", "hep-th"}
    assert Interests.of(["astro-ph"], []).matches(galaxies)
    assert Interests.of(["physics"], []).matches(galaxies)
    assert not Interests.of(["cond-mat"], []).matches(galaxies)


def test_a_backfill_asks_the_api_for_an_archives_categories_one_by_one():
    assert spelled_out(["cs.LG", "nlin", "nlin.CD"]) == [
        "cs.LG",
        "nlin",
        "nlin.AO",
        "nlin.CD",
        "nlin.CG",
        "nlin.PS",
        "nlin.SI",
    ]
    query = backfill_query(["astro-ph", "hep-th"], date(2026, 4, 28))
    assert query.startswith("(cat:astro-ph OR cat:astro-ph.CO OR cat:astro-ph.EP OR cat:astro-ph.GA OR ")
    assert query.endswith("OR cat:hep-th) AND submittedDate:[202604280000 TO 202604282359]")

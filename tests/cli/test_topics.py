"""``papermail topics`` and topics typed on the command line: any case, one wording for mistakes."""

from __future__ import annotations

import json

from papermail.categories import KNOWN_CATEGORIES, TAXONOMY
from tests.cli.conftest import one_line_error


def test_topics_lists_every_category_grouped_by_field(run):
    result = run("topics")
    assert result.exit_code == 0
    assert all(field in result.stdout for field in TAXONOMY)
    assert "astro-ph.GA" in result.stdout and "Astrophysics of Galaxies" in result.stdout
    assert "155 categories" in result.stdout


def test_topics_json_is_the_taxonomy(run):
    listed = json.loads(run("topics", "--json").stdout)
    assert [group["field"] for group in listed] == list(TAXONOMY)
    codes = {c["code"] for group in listed for c in group["categories"]}
    assert codes == KNOWN_CATEGORIES
    [astro] = [c for group in listed for c in group["categories"] if c["code"] == "astro-ph"]
    assert astro == {"code": "astro-ph", "name": "Astrophysics (all of it)", "archive": True}


def test_topics_in_any_case_are_stored_canonical(run, seed):
    result = run(
        "subscribers", "add", "stars@example.org", "--topics", "cs.lg,ASTRO-PH.ga", "--topics", "hep-TH"
    )
    assert result.exit_code == 0, result.output
    assert seed.find("stars@example.org").topics == ["astro-ph.GA", "cs.LG", "hep-th"]


def test_subscribers_add_and_trending_word_an_unknown_topic_the_same(run, seed):
    added = run("subscribers", "add", "x@example.org", "--topics", "cs.LG,cs.XY")
    ranked = run("trending", "--topic", "cs.XY")
    assert (added.exit_code, ranked.exit_code) == (2, 2)
    expected = (
        "'cs.XY' is not an arXiv category; the closest are cs.SY, cs.CY, cs.SI. "
        "All of them: `papermail topics` or https://arxiv.org/category_taxonomy"
    )
    assert one_line_error(added) == one_line_error(ranked) == expected
    assert seed.find("x@example.org") is None

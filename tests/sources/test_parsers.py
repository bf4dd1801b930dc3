"""Parsing recorded responses into records and problems (no database, no network)."""

import json
from datetime import UTC, datetime

import pytest

from papermail.sources.arxiv_api import parse_api_feed
from papermail.sources.arxiv_rss import parse_rss
from papermail.sources.huggingface import parse_daily_papers
from tests.sources.conftest import DATA_DIR


def _api(api_fixtures, prefix: str):
    [path] = api_fixtures.glob(f"{prefix}_s0_m100_*.xml")
    return parse_api_feed(path.read_bytes(), path.name)


def _by_id(parsed):
    return {record.arxiv_id: record for record in parsed.records}


# -- arXiv RSS ------------------------------------------------------------------------------------


def test_current_rss_gives_ids_versions_authors_and_categories(shared_fixtures):
    parsed = parse_rss((shared_fixtures / "arxiv-rss" / "arxiv_cs_cl.xml").read_bytes())
    assert parsed.problems == []
    assert [r.arxiv_id for r in parsed.records] == ["2604.22002", "2604.22027", "2604.22038"]
    first = parsed.records[0]
    assert first.version == 1 and first.announced_new
    # One comma-joined dc:creator with a mononym after a double space.
    assert first.authors == ("Anamta Khan", "Ratna Kandala", "Deepti", "Sheza Munir", "Joyojeet Pal")
    assert first.published_at == datetime(2026, 4, 27, 4, 0, tzinfo=UTC)
    assert not first.abstract.startswith("arXiv:") and "Announce Type" not in first.abstract


def test_rss_tex_markup_is_stripped_and_primary_category_comes_first(shared_fixtures):
    records = _by_id(parse_rss((shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml").read_bytes()))
    artifact = records["2604.21936"]
    assert "\\textbf" not in artifact.abstract and "two requirements" not in artifact.abstract
    assert "central: adaptability, the ability" in artifact.abstract
    assert artifact.primary_category == "cs.AI"
    assert artifact.categories == ("cs.AI", "cs.CV", "cs.MA")
    assert len(artifact.authors) == 18


def test_rss_error_channel_is_an_error_not_an_empty_listing(shared_fixtures):
    parsed = parse_rss((shared_fixtures / "arxiv-rss" / "error_rss_mock_feed.xml").read_bytes(), "u")
    assert parsed.failed and parsed.records == []
    [problem] = parsed.problems
    assert problem.kind == "feed"
    assert "Feed error for query: http://rss.arxiv.org/rss/astroph" in problem.reason
    assert "Bad archive 'astroph'" in problem.reason


def test_an_empty_listing_is_not_an_error(shared_fixtures):
    parsed = parse_rss((shared_fixtures / "arxiv-rss" / "empty_rss_mock_feed.xml").read_bytes())
    assert not parsed.failed and parsed.problems == [] and parsed.records == []


def test_announce_types_decide_what_is_new_and_hostile_markup_is_text():
    parsed = parse_rss((DATA_DIR / "arxiv_rss_announce_types.xml").read_bytes(), "u")
    records = _by_id(parsed)
    assert {i: r.announced_new for i, r in records.items()} == {
        "2604.30001": True,  # new
        "1605.08386": False,  # replace
        "2604.30002": False,  # cross
        "1707.08567": False,  # replace-cross
        "2604.30003": False,  # absonly
    }
    new = records["2604.30001"]
    # The script is gone; "&amp;lt;b&amp;gt;" was decoded once, to the text "&lt;b&gt;", never a tag.
    assert new.title == "Attention Is &lt;b&gt;Not&lt;/b&gt; All You Need"
    assert new.abstract == (
        "We show that $x<y$ and $z>w$ imply nothing about markup, and that a literal &lt;b&gt; stays text."
    )
    assert new.authors == ("Rémy Martin", "Przemysław Nowak", "Deepti", "J. Smith")
    replaced = records["1605.08386"]
    assert replaced.version == 3 and replaced.published_at is None  # first version's date unknown
    # A cross-listing can come days or years after the first version: its date is unknown here.
    assert records["2604.30002"].published_at is None
    [problem] = parsed.problems
    assert (problem.kind, problem.entry_ref, problem.reason) == ("entry", "abc", "no arXiv id in the entry")


def test_legacy_rdf_reads_version_category_and_flags_from_the_title():
    parsed = parse_rss((DATA_DIR / "arxiv_rdf_legacy.xml").read_bytes())
    assert parsed.problems == []
    records = _by_id(parsed)
    new, updated, cross = records["2302.14045"], records["2301.00001"], records["2302.00002"]
    assert new.title == "Language Is Not All You Need: Aligning Perception with Language Models"
    assert (new.version, new.primary_category, new.announced_new) == (1, "cs.CL", True)
    assert new.authors == ("Shaohan Huang", "Li Dong", "Wenhui Wang")
    # HTML abstract: tags and script dropped, "&amp;lt;" (HTML "&lt;") is the text "<", once.
    assert new.abstract == (
        "A big convergence of language, multimodal perception and world modeling; "
        "we show $x < y$ and that &lt;b&gt; is text."
    )
    assert new.published_at == datetime(2023, 3, 2, 1, 30, tzinfo=UTC)  # the channel's date
    assert (updated.version, updated.announced_new, updated.published_at) == (2, False, None)
    assert updated.authors == ("Kurt Gödel",)
    assert (cross.primary_category, cross.announced_new) == ("stat.ML", False)


TRICKY = [
    # (file, feed-level problem expected, entries rejected)
    ("enc_bozo_bogus_encoding.xml", True, 0),
    ("enc_bozo_encoding_mismatch_crash.xml", True, 1),
    ("enc_bozo_linenoise.xml", True, 1),
    ("enc_utf-16le-bom.xml", False, 0),
    ("ent_doesnotexist.xml", True, 0),
    ("ill_always_strip_doctype.xml", False, 0),
    ("ill_http_high_bit_date.xml", False, 0),
    ("ill_rss_incomplete_cdata.xml", True, 1),
    ("ill_undeclared_namespace.xml", True, 0),
    ("wf_atom10_relative_uri.xml", False, 0),
    ("wf_base_malformed_base.xml", False, 1),
    ("wf_rss_item_description_escaped_markup.xml", False, 1),
    ("wf_rss_item_guid_not_permalink_not_url.xml", False, 1),
    ("wf_sanitize_item_content_encoded_script_nested_cdata.xml", False, 1),
    ("wf_sanitize_item_description_onclick.xml", False, 1),
]


def test_every_tricky_feed_is_listed(shared_fixtures):
    assert sorted(p.name for p in (shared_fixtures / "feeds-tricky").iterdir()) == sorted(
        t[0] for t in TRICKY
    )


@pytest.mark.parametrize(("name", "feed_problem", "rejected"), TRICKY)
def test_tricky_feeds_never_crash_and_every_problem_is_reported(
    shared_fixtures, name, feed_problem, rejected
):
    parsed = parse_rss((shared_fixtures / "feeds-tricky" / name).read_bytes(), name)
    assert parsed.records == []  # none of them carries an arXiv id
    kinds = [problem.kind for problem in parsed.problems]
    assert kinds.count("feed") == int(feed_problem)
    assert kinds.count("entry") == rejected
    assert all(problem.reason for problem in parsed.problems)


# -- arXiv API ------------------------------------------------------------------------------------


def test_a_paper_titled_0_is_a_paper(api_fixtures):
    [record] = _api(api_fixtures, "id_2104.12255v1").records
    assert (record.arxiv_id, record.version, record.title) == ("2104.12255", 1, "0")
    assert "$35,000 in total" in record.abstract  # a dollar sign, not math
    assert record.published_at == datetime(2021, 4, 20, 16, 7, 14, tzinfo=UTC)


def test_34_authors_in_order(api_fixtures):
    [record] = _api(api_fixtures, "id_1707.08567").records
    assert len(record.authors) == 34
    assert record.authors[:3] == ("Kees A. Schouhamer Immink", "Stan Baggen", "Ferdaous Chaabane")


def test_old_style_ids_and_affiliations_stay_out_of_names(api_fixtures):
    [record] = _api(api_fixtures, "id_astro-ph_0601001").records
    assert (record.arxiv_id, record.version, record.primary_category) == ("astro-ph/0601001", 1, "astro-ph")
    assert record.authors == ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski")
    assert "V_max<17.5" in record.abstract


def test_the_api_error_entry_is_an_error_not_a_paper(api_fixtures):
    parsed = _api(api_fixtures, "id_abc")
    assert parsed.failed and parsed.records == []
    [problem] = parsed.problems
    assert problem.reason == "arXiv API error: incorrect id format for abc"


@pytest.mark.parametrize("prefix", ["id_0000.0000", "id_0808.05394"])
def test_no_results_is_neither_a_paper_nor_an_error(api_fixtures, prefix):
    parsed = _api(api_fixtures, prefix)
    assert parsed.records == [] and parsed.problems == [] and parsed.total_results == 0


def test_paging_metadata(api_fixtures):
    [path] = api_fixtures.glob("q_testing_s0_m100_*.xml")
    parsed = parse_api_feed(path.read_bytes())
    assert parsed.total_results == 214881 and len(parsed.records) == 100


# -- Hugging Face ---------------------------------------------------------------------------------


def test_hf_2026_schema_signals_and_links(shared_fixtures):
    parsed = parse_daily_papers((shared_fixtures / "huggingface" / "hf_daily_papers.json").read_bytes())
    assert parsed.problems == [] and len(parsed.records) == 30
    records = _by_id(parsed)
    assert sum(1 for r in parsed.records if r.github_url) == 16
    msa = records["2606.13392"]
    assert msa.github_url == "https://github.com/MiniMax-AI/MSA"
    assert msa.on_huggingface and not msa.from_arxiv and msa.version is None
    signals = {(s.arxiv_id, s.metric): s.value for s in parsed.signals}
    assert signals[("2606.13392", "upvotes")] == 103
    assert signals[("2606.13392", "comments")] == 4  # top-level numComments
    assert signals[("2606.13392", "github_stars")] == 251
    assert ("2606.00467", "github_stars") not in signals  # absent, not zero
    assert len(parsed.signals) == 30 + 30 + 16
    # paper.publishedAt, not the top-level one four hours earlier (a different calendar day).
    assert records["2606.00467"].published_at == datetime(2026, 5, 30, tzinfo=UTC)
    assert all("\n" not in r.abstract for r in parsed.records)


def test_hf_hidden_authors_are_still_authors(shared_fixtures):
    items = json.loads((shared_fixtures / "huggingface" / "hf_daily_papers.json").read_text())
    hidden = next(
        (item["paper"]["id"], author["name"])
        for item in items
        for author in item["paper"]["authors"]
        if author.get("hidden")
    )
    records = _by_id(parse_daily_papers(json.dumps(items).encode()))
    assert hidden[1] in records[hidden[0]].authors


def test_hf_2024_schema(shared_fixtures):
    parsed = parse_daily_papers((DATA_DIR / "hf_daily_papers_2024.json").read_bytes(), "u")
    records = _by_id(parsed)
    assert set(records) == {"1707.08567", "2104.12255", "1605.08386"}
    proceedings = records["1707.08567"]
    assert (
        proceedings.title
        == "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
    )
    # Names from "name", or from the user's full name when "name" is missing; double spaces collapsed.
    assert proceedings.authors == ("Kees A. Schouhamer Immink", "Stan Baggen", "Ferdaous Chaabane")
    assert records["2104.12255"].title == "0"
    assert records["1605.08386"].github_url is None  # javascript: is not a link
    [problem] = parsed.problems
    assert (problem.kind, problem.entry_ref, problem.reason) == (
        "entry",
        "An item whose paper has no id",
        "no arXiv id",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>Service Unavailable</html>", "not JSON"),
        (b'{"error": "Invalid date"}', "Hugging Face error: Invalid date"),
        (b'{"papers": []}', "expected a list of papers, got dict"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_hf_answers_that_are_not_a_paper_list_are_feed_errors(body, reason):
    parsed = parse_daily_papers(body, "u")
    assert parsed.failed
    assert parsed.problems[0].reason.startswith(reason)

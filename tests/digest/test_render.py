"""Rendering deliveries: what each paper shows, frozen content, escaping, size, and the built message."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import feedparser
import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.db.models import Digest, TrendScore
from papermail.digest.cards import TLDR_WORDS, shorten_abstract, shorten_authors
from papermail.digest.period import describe_period
from papermail.digest.render import render_deliveries
from papermail.mail.message import build_message, make_message_id
from papermail.subscribers import links
from tests.digest.builders import parse_message, part_text

HOSTILE_TITLE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def week(world):
    """A planned week: ten papers, a run pinned by the period's digest, one reader's delivery."""
    papers = [
        world.paper(
            categories=["cs.LG", "stat.ML"],
            on_huggingface=n % 2 == 0,
            github_url=f"https://github.com/lab/repo-{n}" if n % 3 == 0 else None,
            authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Chen Wei", "Ngozi Okonkwo"][: 1 + n % 5],
        )
        for n in range(10)
    ]
    run = world.run(papers)
    digest = world.digest("2026-W48", run)
    reader = world.subscriber("ann@example.org", topics=["cs.LG", "cs.CL"], keywords=["diffusion"])
    delivery = world.delivery(reader, digest, papers)
    return papers, run, reader, delivery


def render_one(session, settings, delivery):
    return render_deliveries(session, settings, [delivery.id])[delivery.id]


def test_each_paper_shows_title_link_authors_abstract_category_evidence_and_links(session, settings, week):
    papers, run, _reader, delivery = week
    email = render_one(session, settings, delivery)
    for n, paper in enumerate(papers):
        assert f'<a href="https://arxiv.org/abs/{paper.arxiv_id}">' in email.html
        assert f'href="https://arxiv.org/pdf/{paper.arxiv_id}"' in email.html
        assert (f'href="https://huggingface.co/papers/{paper.arxiv_id}"' in email.html) == (n % 2 == 0)
        assert (f'href="https://github.com/lab/repo-{n}"' in email.html) == (n % 3 == 0)
        assert shorten_authors(paper.authors) in email.text
        assert shorten_abstract(paper.abstract) in email.text
        assert paper.title in email.text
    assert email.text.count("et al.") == sum(len(p.authors) > 3 for p in papers)
    assert "cs.LG · Machine Learning" in email.text
    assert email.html.isascii()  # other characters as references: "·" is "&#183;"
    for line in session.scalars(sa.select(TrendScore.evidence).where(TrendScore.run_id == run.id)):
        assert line in email.text
        assert line in html.unescape(email.html)


def test_header_names_the_period_and_topics_and_footer_has_links_reason_and_address(session, settings, week):
    _papers, _run, reader, delivery = week
    email = render_one(session, settings, delivery)
    assert email.subject.startswith("Week 48, 2026: ")
    assert email.subject.endswith(" and 9 more")
    for part in (email.text, html.unescape(email.html)):
        assert "Week 48, 2026" in part
        assert "in cs.CL or cs.LG or matching \u201cdiffusion\u201d" in part
        assert "because ann@example.org subscribed" in part
        assert settings.postal_address in part
    for purpose, label in (
        (links.Purpose.PREFERENCES, "Change topics"),
        (links.Purpose.UNSUBSCRIBE, "Unsubscribe"),
    ):
        urls = re.findall(rf"{settings.base_url}/{purpose.value}/[\w.-]+", email.text)
        assert urls and all(f'href="{url}">{label}' in email.html for url in urls)
        assert links.read_token(settings, purpose, urls[0].rpartition("/")[2])[0] == reader.id


def test_list_headers_are_exactly_one_each_and_the_unsubscribe_token_verifies(session, settings, week):
    _papers, _run, reader, delivery = week
    email = render_one(session, settings, delivery)
    message = parse_message(
        build_message(
            email,
            mail_from=settings.mail_from,
            message_id=make_message_id(settings.mail_from),
            date=clock.now(),
        )
    )
    (unsubscribe,) = message.get_all("List-Unsubscribe")
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert message.get_all("List-Id") == ["papermail digest <digest.papermail.test>"]
    url = re.fullmatch(r"<(https://papermail\.test/unsubscribe/([\w.-]+))>", unsubscribe)
    assert url, unsubscribe
    assert links.read_token(settings, links.Purpose.UNSUBSCRIBE, url[2]) == [reader.id]
    assert f'href="{url[1]}"' in part_text(message, "html")
    assert url[1] in part_text(message, "plain")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"] == "ann@example.org"


def test_the_same_delivery_renders_the_same_after_trending_moves(session, settings, world, week):
    papers, _run, _reader, delivery = week
    with freeze_time("2026-11-30 08:00:00"):
        before = render_one(session, settings, delivery)
        # Trending moves on: a newer run ranks other papers first, with other evidence.
        world.run([world.paper(), *reversed(papers)], evidence=[f"new evidence {n}" for n in range(11)])
        after = render_one(session, settings, delivery)
    assert after == before


def test_renders_many_deliveries_in_a_few_queries_and_skips_empty_ones(session, settings, world, week):
    papers, _run, _reader, first = week
    digest = session.get(Digest, first.digest_id)
    others = [world.delivery(world.subscriber(), digest, papers[n : n + 5]) for n in range(5)]
    empty = world.delivery(world.subscriber(), digest, [])
    statements = []
    engine = session.get_bind()
    record = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        emails = render_deliveries(session, settings, [first.id, *(d.id for d in others), empty.id, 999_999])
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert set(emails) == {first.id, *(d.id for d in others)}
    assert len(statements) <= 3
    assert emails[others[2].id].text.count("Abstract: https://arxiv.org/abs/") == 5


class TagCollector(HTMLParser):
    """The sequence of (tag, attribute names) in a document, and any event-handler attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(name for name, _value in attrs)))
        self.hrefs += [value for name, value in attrs if name == "href"]


def structure(html: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(html)
    return collector


def tricky_texts(shared_fixtures) -> list[str]:
    """Every title, summary and content value feedparser gets out of the hostile test feeds."""
    found = [HOSTILE_TITLE, '"><script>alert(1)</script>', "{{ 7*7 }} {% raw %}"]
    for path in sorted((shared_fixtures / "feeds-tricky").glob("*.xml")):
        parsed = feedparser.parse(path.read_bytes())
        for entry in [parsed.feed, *parsed.entries]:
            found += [entry.get("title", ""), entry.get("summary", "")]
            found += [content.get("value", "") for content in entry.get("content", [])]
    return [text for text in found if text.strip()]


def test_everything_from_feeds_is_escaped(session, settings, world, shared_fixtures):
    texts = tricky_texts(shared_fixtures)
    assert any("<a href" in text for text in texts) and any("<img" in text for text in texts)
    run_papers = []
    for n in range(0, len(texts), 2):
        run_papers.append(
            world.paper(
                title=texts[n],
                abstract=texts[(n + 1) % len(texts)],
                authors=[texts[n], "Grace Hopper"],
                github_url="javascript:alert(1)" if n == 0 else None,
            )
        )
    benign_papers = [
        world.paper(title="A title", abstract="An abstract.", authors=["A", "B"]) for _ in run_papers
    ]
    run = world.run(run_papers + benign_papers)
    digest = world.digest("2026-W48", run)
    hostile = world.delivery(world.subscriber(), digest, run_papers)
    benign = world.delivery(world.subscriber(), digest, benign_papers)
    emails = render_deliveries(session, settings, [hostile.id, benign.id])
    hostile_html, benign_html = emails[hostile.id].html, emails[benign.id].html
    # Same markup whatever the feeds said: no tag, attribute or link came from their text.
    assert structure(hostile_html).tags == structure(benign_html).tags
    assert not any(href.startswith("javascript") for href in structure(hostile_html).hrefs)
    assert "&lt;img src=x onerror=alert(1)&gt;" in hostile_html
    # (Signed links are random-looking and may hold "49": they are left out of the search.)
    unsigned = re.sub(re.escape(settings.base_url) + r"/\w+/[\w.\-]+", "", hostile_html)
    assert "{{ 7*7 }}" in hostile_html and "49" not in unsigned
    # The text part is plain text: shown as written, for the reader's client to display as text.
    assert HOSTILE_TITLE in emails[hostile.id].text


def test_ten_paper_digest_fits_the_size_budget_with_long_abstracts(session, settings, world, texts):
    longest = sorted(texts, key=lambda pair: len(pair[0]) + len(pair[1]), reverse=True)[:10]
    papers = [
        world.paper(
            title=title + " " + title,  # twice the longest real titles
            abstract=abstract * 3,
            authors=[f"Author Number{n} Withalongsurname" for n in range(40)],
            on_huggingface=True,
            github_url="https://github.com/a-long-organisation-name/a-rather-long-repository-name",
            categories=["cs.CL", "cs.AI", "cs.LG", "stat.ML"],
        )
        for title, abstract in longest
    ]
    for paper, (_title, abstract) in zip(papers, longest, strict=True):
        paper.tldr = abstract  # a TL;DR far longer than Semantic Scholar's one sentence: it is cut
    evidence = "+1,234 upvotes this week · +1,055★ this week · 2,500 points on Hacker News · 2 days old"
    run = world.run(papers, evidence=[evidence] * 10)
    reader = world.subscriber(
        topics=["cs.CL", "cs.AI", "cs.LG", "cs.CV", "stat.ML"], keywords=["agents", "RL"]
    )
    delivery = world.delivery(reader, world.digest("2026-W48", run), papers)
    email = render_one(session, settings, delivery)
    raw = build_message(
        email, mail_from=settings.mail_from, message_id="<x@papermail.test>", date=clock.now()
    )
    assert shorten_abstract(longest[0][1], TLDR_WORDS) in email.text
    html_size, message_size = len(email.html.encode()), len(raw)
    assert html_size < 60_000, html_size
    assert message_size < 100_000, message_size
    parse_message(raw)
    assert "<img" not in email.html  # nothing to load: readable with images off


@pytest.mark.parametrize(
    ("key", "label"),
    [("2026-W48", "Week 48, 2026"), ("2026-W01", "Week 1, 2026"), ("2026-11-26", "26 November 2026")],
)
def test_describe_period(key, label):
    assert describe_period(key) == label


@pytest.mark.parametrize("key", ["2026-W61", "2026-W00", "2026-13-01", "2026-02-30", "week 48", "2026-W48x"])
def test_describe_period_refuses_malformed_keys(key):
    with pytest.raises(ValueError):
        describe_period(key)


def test_abstracts_are_cut_at_a_word_boundary_and_authors_shortened():
    words = " ".join(f"word{n}," for n in range(100))
    assert shorten_abstract(words) == " ".join(f"word{n}," for n in range(60))[:-1] + "\u2026"
    assert shorten_abstract("  short\n  abstract ") == "short abstract"
    assert shorten_authors(["A", "B", "C"]) == "A, B, C"
    assert shorten_authors(["A", "B", "C", "D"]) == "A, B, C et al."

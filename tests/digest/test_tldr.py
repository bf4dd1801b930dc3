"""Semantic Scholar's TL;DR on a digest card: labelled, linked, above the abstract, and optional."""

from __future__ import annotations

from papermail import clock
from papermail.digest.render import render_deliveries, shorten_abstract
from papermail.mail.message import build_message

TLDR = "A robot learns to grasp unseen objects from three demonstrations."


def _week(world, *, tldr: str = TLDR, show_tldr: bool = True):
    papers = world.papers(3)
    papers[0].tldr = tldr
    run = world.run(papers)
    digest = world.digest("2026-W48", run)
    reader = world.subscriber("ann@example.org")
    reader.show_tldr = show_tldr
    delivery = world.delivery(reader, digest, papers)
    return papers, digest, delivery


def test_the_card_shows_the_tldr_labelled_and_linked_above_the_abstract(session, settings, world):
    papers, _digest, delivery = _week(world)
    email = render_deliveries(session, settings, [delivery.id])[delivery.id]
    source = f"https://www.semanticscholar.org/arxiv/{papers[0].arxiv_id}"
    html_tldr = email.html.index(f"<strong>TL;DR</strong> {TLDR}")
    assert f'<a href="{source}">Semantic' in email.html[html_tldr:]
    assert html_tldr < email.html.index(shorten_abstract(papers[0].abstract)[:40])
    text_tldr = email.text.index(f"TL;DR: {TLDR} (Semantic Scholar: {source})")
    assert text_tldr < email.text.index(shorten_abstract(papers[0].abstract)[:40])
    assert email.text.count("TL;DR") == 1  # the papers without one show none


def test_a_reader_who_turned_tldrs_off_gets_none_while_others_in_the_batch_do(session, settings, world):
    papers, digest, delivery = _week(world, show_tldr=False)
    other_delivery = world.delivery(world.subscriber("bob@example.org"), digest, papers)
    emails = render_deliveries(session, settings, [delivery.id, other_delivery.id])
    assert "TL;DR" not in emails[delivery.id].html and "TL;DR" not in emails[delivery.id].text
    assert TLDR in emails[other_delivery.id].html and TLDR in emails[other_delivery.id].text


def test_a_long_tldr_is_cut_and_ten_cards_with_tldrs_fit_the_size_budget(session, settings, world, texts):
    longest = sorted(texts, key=lambda pair: len(pair[0]) + len(pair[1]), reverse=True)[:10]
    papers = [
        world.paper(
            title=title + " " + title,
            abstract=abstract * 3,
            authors=[f"Author Number{n} Withalongsurname" for n in range(40)],
            on_huggingface=True,
            github_url="https://github.com/a-long-organisation-name/a-rather-long-repository-name",
            categories=["cs.CL", "cs.AI", "cs.LG", "stat.ML"],
        )
        for title, abstract in longest
    ]
    for paper, (_title, abstract) in zip(papers, longest, strict=True):
        paper.tldr = abstract  # far longer than any real TL;DR
    evidence = "+1,234★ this week · 2,500 points on Hacker News · 570 likes on Bluesky · 2 days old"
    run = world.run(papers, evidence=[evidence] * 10)
    reader = world.subscriber(
        topics=["cs.CL", "cs.AI", "cs.LG", "cs.CV", "stat.ML"], keywords=["agents", "RL"]
    )
    delivery = world.delivery(reader, world.digest("2026-W48", run), papers)
    email = render_deliveries(session, settings, [delivery.id])[delivery.id]
    raw = build_message(
        email, mail_from=settings.mail_from, message_id="<x@papermail.test>", date=clock.now()
    )
    assert shorten_abstract(longest[0][1], 45) in email.text
    html_size, message_size = len(email.html.encode()), len(raw)
    assert html_size < 60_000, html_size  # the limits of test_render's size test
    assert message_size < 100_000, message_size

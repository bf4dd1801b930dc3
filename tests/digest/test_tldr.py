"""Semantic Scholar's TL;DR on a digest card: labelled, linked, above the abstract, and optional.

That ten cards with long TL;DRs still fit the size budget is checked by test_render's size test.
"""

from __future__ import annotations

from papermail.digest.cards import shorten_abstract
from papermail.digest.render import render_deliveries

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

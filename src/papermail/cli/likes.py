"""``papermail subscribers like``, and the ``--like``/``--mix`` options of ``subscribers add``."""

from __future__ import annotations

from collections.abc import Sequence

import click
from sqlalchemy.orm import Session

from papermail.admin import subscribers as admin
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.options import email_argument, one_line_errors
from papermail.cli.output import changed
from papermail.config import Settings
from papermail.db.models import Subscriber
from papermail.subscribers import votes


def parse_mix_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """Click callback: the mix setting 0..4, or a usage error in one line."""
    if value is None:
        return None
    try:
        return votes.parse_mix(value)
    except votes.InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


def apply_likes(
    session: Session, settings: Settings, subscriber: Subscriber, refs: Sequence[str], value: int, source: str
) -> str | None:
    """Record the votes and print what happened; return the error line for ids that could not be had."""
    ids = votes.parse_paper_refs(refs, limit=max(votes.MAX_SEEDS, len(refs)))
    result = votes.like_papers(session, settings, subscriber.id, ids, value, source)
    if result.fetched:
        changed(f"fetched {len(result.fetched)} from the arXiv API: {', '.join(result.fetched)}")
    if result.recorded:
        how = "more like" if value == votes.MORE else "less like"
        changed(f"{subscriber.email}: {how} {', '.join(result.recorded)}")
    if not result.missing:
        return None
    listed = ", ".join(f"{arxiv_id} ({why})" for arxiv_id, why in result.missing.items())
    return f"not recorded: {listed}"


def apply_mix(subscriber: Subscriber, mix: int | None) -> str | None:
    """Set the mix; return the change ("relevance mix 2 → 3") for the caller's one line, or None."""
    if mix is None:
        return None
    before = subscriber.relevance_mix
    return f"relevance mix {before} → {mix}" if votes.set_mix(subscriber, mix) else None


@click.command()
@email_argument()
@click.argument("papers", nargs=-1, required=True, metavar="ID_OR_URL...")
@click.option("--less", is_flag=True, help="Less like these (default: more like these).")
def like(email: str, papers: tuple[str, ...], less: bool) -> None:
    """Tell papermail a subscriber likes (or, with --less, dislikes) papers: arXiv ids or abs/pdf URLs.

    Papers papermail hasn't fetched are looked up on the arXiv API (paced); voting again changes the vote.
    """
    settings = settings_or_exit()
    with one_line_errors(), cli_session() as session:
        subscriber = admin.get_subscriber(session, email)
        value = votes.LESS if less else votes.MORE
        problem = apply_likes(session, settings, subscriber, papers, value, votes.FROM_SEED)
    if problem:  # after the commit: what was found stays recorded
        raise CommandError(problem)

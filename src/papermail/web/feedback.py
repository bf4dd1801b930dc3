"""Feedback pages: "More/Less like this" from the digest, and the interests part of preferences.

A GET of a vote link never records anything (link scanners open every link in a mail): it shows
the paper and one button, whose POST records the vote. The signed link is the authority, so that
POST needs no CSRF token, like one-click unsubscribe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Blueprint, render_template, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.db.models import Subscriber
from papermail.digest.browser import read_delivery_link
from papermail.sources.lookups import unknown_papers
from papermail.subscribers import votes
from papermail.subscribers.core import InvalidInput
from papermail.web.context import web_context
from papermail.web.csrf import csrf_exempt
from papermail.web.security import noindexed

blueprint = Blueprint("feedback", __name__)
MIX_LABELS = ("Trending only", "Mostly trending", "Balanced", "Mostly my interests", "My interests only")
INTERESTS_FORM, FORGET_FORM = "interests", "forget"


def _invalid_link() -> tuple[str, int]:
    return render_template("invalid_link.html"), HTTPStatus.BAD_REQUEST


@blueprint.get("/vote/<token>")
@noindexed
def vote_page(token: str) -> Any:
    context = web_context()
    found = context.read(lambda session: votes.read_vote_link(session, context.settings, token))
    return render_template("vote.html", vote=found) if found else _invalid_link()


@blueprint.post("/vote/<token>")
@csrf_exempt  # the signed link is the key; mail clients and scanners never POST it
@noindexed
def vote(token: str) -> Any:
    context = web_context()
    return _recorded(lambda session: votes.read_vote_link(session, context.settings, token), None)


@blueprint.get("/vote/<token>/<int:place>/<way>")
@noindexed
def digest_vote_page(token: str, place: int, way: str) -> Any:
    context = web_context()
    found = context.read(lambda session: _digest_vote(session, token, place, way))
    return render_template("vote.html", vote=found) if found else _invalid_link()


@blueprint.post("/vote/<token>/<int:place>/<way>")
@csrf_exempt  # as above
@noindexed
def digest_vote(token: str, place: int, way: str) -> Any:
    return _recorded(lambda session: _digest_vote(session, token, place, way), token)


def _digest_vote(session: Session, token: str, place: int, way: str) -> votes.VoteLink | None:
    # One token per delivery: the place names a paper of its frozen list, checked here.
    link = read_delivery_link(session, web_context().settings, token)
    if link is None or link.token is None:
        return None
    return votes.vote_at(session, link.subscriber, link.delivery.paper_ids, place, way)


def _recorded(find: Callable[[Session], votes.VoteLink | None], token: str | None) -> Any:
    """Record the vote a link stands for and say so; the page mints no preferences link."""

    def work(session: Session) -> tuple[votes.VoteLink, bool] | None:
        found = find(session)
        return (found, votes.record_link_vote(session, found)) if found else None

    done = web_context().transaction(work)
    if done is None:
        return _invalid_link()
    found, recorded = done
    ask_url = url_for("web.ask_preferences_link", token=token) if token else None
    return render_template("voted.html", vote=found, recorded=recorded, ask_url=ask_url)


# -- the interests part of the preferences page -----------------------------------------------------


@dataclass
class InterestsForm:
    """The "Papers I like" box and the mix, as the visitor left them, with the outcome."""

    likes: str = ""
    mix: str = str(votes.DEFAULT_MIX)
    error: str | None = None
    saved: str | None = None
    shown: list[votes.ShownVote] = field(default_factory=list)
    labels: tuple[str, ...] = MIX_LABELS


def is_interests_post(form: MultiDict[str, str]) -> bool:
    """True if the POST came from the interests forms rather than the main preferences form."""
    return form.get("form") in (INTERESTS_FORM, FORGET_FORM)


def save_interests(session: Session, subscriber: Subscriber, form: MultiDict[str, str]) -> InterestsForm:
    """Add the seeds and set the mix, or forget one vote; the form to show again."""
    state = InterestsForm(likes=form.get("likes", ""), mix=form.get("mix", ""))
    try:
        if form.get("form") == FORGET_FORM:
            arxiv_id = votes.parse_paper_ref(form.get("arxiv_id", ""))
            votes.remove_vote(session, subscriber.id, arxiv_id)
            state.saved, state.likes, state.mix = f"Forgot {arxiv_id}.", "", str(subscriber.relevance_mix)
            return state
        ids = votes.parse_paper_refs(state.likes)
        mix = votes.parse_mix(state.mix)
    except InvalidInput as exc:
        state.error = str(exc)
        return state
    dropped = votes.record_votes(session, subscriber.id, ids, votes.MORE, votes.FROM_SEED)
    votes.set_mix(subscriber, mix)
    unknown = unknown_papers(session, ids)
    if unknown:
        enqueue_after_commit(session, task_names.LOOK_UP_PAPERS, unknown)
    added = f" Added {len(ids)} paper{'' if len(ids) == 1 else 's'}." if ids else ""
    kept = (
        f" You have {votes.MAX_VOTES} votes and seeds, the most kept: {dropped} older ones were dropped."
        if dropped
        else ""
    )
    state.saved, state.likes = f"Saved.{added}{kept} Your next digest will use them.", ""
    return state


def interests_form(
    session: Session, subscriber: Subscriber, state: InterestsForm | None = None
) -> InterestsForm:
    """The interests forms for the preferences page, with the subscriber's votes listed."""
    state = state or InterestsForm(mix=str(subscriber.relevance_mix))
    state.shown = votes.votes_of(session, subscriber.id)
    return state

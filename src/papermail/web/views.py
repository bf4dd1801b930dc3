"""The pages. Each view reads the form, calls one function (of ``signup/`` or ``subscribers/``), renders."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Flask, render_template, request, url_for
from werkzeug.exceptions import HTTPException, ServiceUnavailable, TooManyRequests

from papermail import clock, task_names
from papermail.categories import CATEGORY_GROUPS
from papermail.celery_app import enqueue_after_commit
from papermail.config import Rate, parsers
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.delivery.upcoming import next_send_at
from papermail.digest.browser import delivery_page, read_delivery_link
from papermail.digest.recent import recent_digests
from papermail.digest.render import trending_url
from papermail.redaction import shown_email
from papermail.signup import flow
from papermail.signup.limits import SIGNUP_BUDGET_KEY, LimiterUnavailable, ip_key
from papermail.signup.requests import record_request
from papermail.subscribers import links
from papermail.subscribers.preferences import change_preferences, change_tldr_choice
from papermail.subscribers.unsubscribe import unsubscribe_by_link
from papermail.web import feedback, probes
from papermail.web.context import web_context
from papermail.web.csrf import csrf_exempt
from papermail.web.forms import (
    HONEYPOT_FIELD,
    WEEKDAYS,
    FormErrors,
    PreferenceFields,
    SignupFields,
    preferences_errors,
    timezone_options,
)
from papermail.web.preview import top_trending
from papermail.web.security import noindex, noindexed

log = logging.getLogger(__name__)
blueprint = Blueprint("web", __name__)

Page = tuple[str, int] | str
SERVER_ERROR_MESSAGE = "Something went wrong on our side. Please try again in a few minutes."
UNAVAILABLE_MESSAGE = (
    "We can't take signups or confirmations for a moment. Nothing was saved: please try again in a "
    "minute. Links to change your preferences or to unsubscribe keep working."
)
RETRY_AFTER_SECONDS = 60
# A person changes their preferences a few times; a script posting the seeds box all day is not one.
PREFERENCES_POSTS_PER_HOUR = parsers.rate("30/h")
PREFERENCES_LINKS_PER_DAY = parsers.rate("3/d")


class RateLimited(TooManyRequests):
    description = "Too many requests from your network. Please wait a while and try again."


class SignupsBusy(ServiceUnavailable):
    description = "We are getting more signups than we can take right now. Please try again in a minute."


def _form_context(fields: PreferenceFields, errors: FormErrors) -> dict[str, Any]:
    return {
        "fields": fields,
        "errors": errors,
        "category_groups": CATEGORY_GROUPS,
        "weekdays": WEEKDAYS,
        "timezone_options": timezone_options,
        "honeypot_field": HONEYPOT_FIELD,
    }


def _check_ip_limit(kind: str, rate: Rate) -> None:
    context = web_context()
    key = ip_key(kind, request.remote_addr)
    if not context.transaction(lambda session: context.limiter.allow(session, key, rate)):
        log.info("rate limit %s reached for a client", kind)
        raise RateLimited(retry_after=_retry_after(rate))


def _check_signup_budget(session: sa.orm.Session) -> None:
    # Many networks at once, each within its own limit: past the budget the form says "busy"
    # rather than queue thousands of signups ahead of the next real person.
    context = web_context()
    budget = context.settings.signup_budget
    if not context.limiter.allow(session, SIGNUP_BUDGET_KEY, budget):
        log.warning("signup budget %s spent: answering 503", budget.spec)
        raise SignupsBusy(retry_after=_retry_after(budget))


def _preferences_post_allowed(session: sa.orm.Session, subscriber_id: int) -> bool:
    try:
        return web_context().limiter.allow(
            session, f"preferences:{subscriber_id}", PREFERENCES_POSTS_PER_HOUR
        )
    except LimiterUnavailable as exc:
        # Unlike signups (which could mail-bomb anyone), changing one's own preferences may go on.
        log.warning("%s: preferences change allowed unchecked", exc)
        return True


def _retry_after(rate: Rate) -> int:
    """Seconds to tell a refused client: the window, at least a minute, at most an hour."""
    return int(min(max(rate.window.total_seconds(), 60), 3600))


def _own_link(purpose: links.Purpose, subscriber: Subscriber) -> str:
    # Relative, so it works on whatever host served the page (CSP form-action is 'self').
    extra = [links.address_tag(subscriber.email)] if purpose == links.Purpose.PREFERENCES else []
    token = links.make_token(web_context().settings, purpose, subscriber.id, *extra)
    return url_for(f"web.{links.PATHS[purpose]}", token=token)


def _invalid_link() -> tuple[str, int]:
    # One page for every bad link (tampered, expired, other purpose, unknown): no oracle.
    return render_template("invalid_link.html"), HTTPStatus.BAD_REQUEST


# -- home and signup ------------------------------------------------------------------------------


def _home(signup_fields: SignupFields, errors: FormErrors, *, guess_timezone: bool) -> str:
    context = web_context()
    papers = context.cached("preview", lambda: context.read(top_trending))
    return render_template(
        "index.html",
        email=signup_fields.email,
        papers=papers,
        guess_timezone=guess_timezone,
        **_form_context(signup_fields.preferences, errors),
    )


@blueprint.get("/")
def index() -> Page:
    return _home(SignupFields(), FormErrors(), guess_timezone=True)


@blueprint.post("/subscribe")
def subscribe() -> Page:
    context = web_context()
    settings = context.settings
    _check_ip_limit("signup", settings.signup_rate_per_ip)
    fields = SignupFields.from_form(request.form)
    if fields.is_bot:
        log.info("signup: honeypot filled; dropped")
        return render_template("check_inbox.html")
    email, preferences, errors = fields.parse()
    if errors:
        return _home(fields, errors, guess_timezone=False), HTTPStatus.BAD_REQUEST

    def record(session: sa.orm.Session) -> None:
        _check_signup_budget(session)  # in the same transaction: one commit per signup
        # Only recorded here, the same for every address: a worker decides what it means, so
        # neither the page nor the time it takes tells who is subscribed.
        record_request(session, email, preferences)

    context.transaction(record)
    return render_template("check_inbox.html")


# -- confirming -----------------------------------------------------------------------------------


def _confirmed_page(check: flow.ConfirmCheck) -> Any:
    # Only the click that confirms gets a preferences link: a used link may sit in a forwarded mail.
    if check.state == flow.ConfirmState.ALREADY_ACTIVE or check.subscriber is None:
        return noindex(render_template("confirmed.html", preferences_url=None))
    subscriber = check.subscriber
    first = next_send_at(subscriber, clock.now()).astimezone(ZoneInfo(subscriber.timezone))
    return noindex(
        render_template(
            "confirmed.html",
            preferences_url=_own_link(links.Purpose.PREFERENCES, subscriber),
            first_digest=f"{first:%A %-d %B at %H:%M} ({subscriber.timezone})",
        )
    )


@blueprint.get("/confirm/<token>")
def confirm_page(token: str) -> Page:
    context = web_context()
    # GET never changes anything: link scanners open every link in a mail.
    check = context.read(lambda session: flow.check_confirm_token(session, context.settings, token))
    if check.state == flow.ConfirmState.INVALID or check.subscriber is None:
        return _invalid_link()
    if check.state == flow.ConfirmState.ALREADY_ACTIVE:
        return _confirmed_page(check)
    return render_template("confirm.html")


@blueprint.post("/confirm/<token>")
def confirm(token: str) -> Page:
    context = web_context()
    _check_ip_limit("confirm", context.settings.signup_rate_per_ip)
    check = context.transaction(
        lambda session: flow.confirm(session, context.settings, token, ip=request.remote_addr)
    )
    if check.state == flow.ConfirmState.INVALID or check.subscriber is None:
        return _invalid_link()
    return _confirmed_page(check)


# -- preferences ----------------------------------------------------------------------------------


@blueprint.route("/preferences/<token>", methods=["GET", "POST"])
@noindexed
def preferences(token: str) -> Page:
    context = web_context()
    settings = context.settings

    def work(session: sa.orm.Session) -> Page:
        subscriber = links.subscriber_for_link(session, settings, links.Purpose.PREFERENCES, token)
        if subscriber is None:
            return _invalid_link()
        saved = tldr_saved = False
        errors = FormErrors()
        interests = None
        if request.method == "POST" and not _preferences_post_allowed(session, subscriber.id):
            raise RateLimited(retry_after=_retry_after(PREFERENCES_POSTS_PER_HOUR))
        if request.method == "POST" and request.form.get("form") == "tldr":
            if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
                change_tldr_choice(session, subscriber, request.form.get("show_tldr") == "on")
                tldr_saved = True
            fields = PreferenceFields.from_subscriber(subscriber)
        elif request.method == "POST" and feedback.is_interests_post(request.form):
            if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
                interests = feedback.save_interests(session, subscriber, request.form)
            fields = PreferenceFields.from_subscriber(subscriber)
        elif request.method == "POST":
            fields = PreferenceFields.from_form(request.form)
            chosen, errors = preferences_errors(fields)
            if chosen is not None and subscriber.status != SubscriberStatus.UNSUBSCRIBED:
                change_preferences(session, subscriber, chosen)
                saved = True
        else:
            fields = PreferenceFields.from_subscriber(subscriber)
        page = render_template(
            "preferences.html",
            address=shown_email(subscriber.email),
            saved=saved,
            tldr_saved=tldr_saved,
            show_tldr=subscriber.show_tldr,
            unsubscribed=subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED),
            digests=recent_digests(session, subscriber.id),
            unsubscribe_url=_own_link(links.Purpose.UNSUBSCRIBE, subscriber),
            interests=feedback.interests_form(session, subscriber, interests),
            **_form_context(fields, errors),
        )
        return (page, HTTPStatus.BAD_REQUEST) if errors or (interests and interests.error) else page

    return context.transaction(work)


# -- unsubscribing --------------------------------------------------------------------------------


@blueprint.get("/unsubscribe/<token>")
@noindexed
def unsubscribe_page(token: str) -> Page:
    # GET only shows the button (RFC 8058 and link scanners); nothing changes.
    if not links.is_valid_link(web_context().settings, links.Purpose.UNSUBSCRIBE, token):
        return _invalid_link()
    return render_template("unsubscribe.html")


@blueprint.post("/unsubscribe/<token>")
@csrf_exempt  # RFC 8058 one-click: mail providers POST with no cookie and no token; the link is the key.
@noindexed
def unsubscribe(token: str) -> Page:
    context = web_context()
    how = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "page"
    if not context.transaction(
        lambda session: unsubscribe_by_link(session, context.settings, token, how=how)
    ):
        return _invalid_link()
    # 200 with a page, never a redirect: one-click clients don't follow them.
    return render_template("unsubscribed.html")


# -- a digest in the browser ---------------------------------------------------------------------


@blueprint.get("/digest/<token>")
@noindexed
def digest(token: str) -> Any:
    context = web_context()
    page = context.read(lambda session: delivery_page(session, context.settings, token))
    if page is None:
        return _invalid_link()
    # No preferences or unsubscribe link here: view links get forwarded and pasted. The owner can
    # have one mailed to them instead.
    return render_template("digest.html", page=page, token=token, trending_url=trending_url("", page.topics))


@blueprint.post("/digest/<token>/preferences-link")
@noindexed
def ask_preferences_link(token: str) -> Any:
    context = web_context()
    _check_ip_limit("preferences-link", context.settings.signup_rate_per_ip)

    def work(session: sa.orm.Session) -> bool:
        link = read_delivery_link(session, context.settings, token)
        if link is None:
            return False
        # However often it is asked for, an address gets a few such mails a day.
        if context.limiter.allow(
            session, f"preferences-link:{link.subscriber.id}", PREFERENCES_LINKS_PER_DAY
        ):
            enqueue_after_commit(session, task_names.SEND_PREFERENCES_LINK, link.subscriber.id)
        return True

    if not context.transaction(work):
        return _invalid_link()
    return render_template("preferences_link_sent.html")


# -- health and errors ----------------------------------------------------------------------------


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    if probes.database_state(web_context().sessions) != probes.OK:
        return {"status": "error", "database": probes.UNREACHABLE}, HTTPStatus.SERVICE_UNAVAILABLE
    return {"status": "ok"}, HTTPStatus.OK


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    # /healthz says the process lives (cheap, for restarts); this says whether to send it traffic.
    context = web_context()
    states = context.readiness.states(lambda: probes.readiness_states(context.sessions, context.settings))
    ready = all(state == probes.OK for state in states.values())
    code = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
    return {"status": "ok" if ready else "error", **states}, code


def register_error_pages(app: Flask) -> None:
    """Friendly pages, in our own look, for every HTTP error."""

    @app.errorhandler(LimiterUnavailable)
    def limits_unavailable(exc: LimiterUnavailable) -> tuple[str, int, dict[str, str]]:
        # Signups and confirmations are refused whole (their transaction rolled back) while the
        # limits can't be checked: unlimited signups would let anyone mail-bomb any address.
        log.warning("%s: answering 503", exc)
        code = HTTPStatus.SERVICE_UNAVAILABLE
        page = render_template("error.html", title=code.phrase, message=UNAVAILABLE_MESSAGE, code=code)
        return page, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int, dict[str, str]]:
        # Flask wraps unhandled errors in InternalServerError (and logs them via log_exception).
        code = exc.code or HTTPStatus.INTERNAL_SERVER_ERROR
        busy = isinstance(exc, SignupsBusy)  # our own 503, with its own words
        message = (
            SERVER_ERROR_MESSAGE if code >= HTTPStatus.INTERNAL_SERVER_ERROR and not busy else exc.description
        )
        page = render_template("error.html", title=HTTPStatus(code).phrase, message=message, code=code)
        # Retry-After (429, 503) tells clients and crawlers when to come back.
        headers = {k: v for k, v in exc.get_headers() if k == "Retry-After"}
        return page, code, headers

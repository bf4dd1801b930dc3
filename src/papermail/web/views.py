"""The pages. Each view reads the form, calls one function in :mod:`papermail.signup`, renders."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, make_response, render_template, request, url_for
from werkzeug.exceptions import HTTPException, TooManyRequests

from papermail import signup, signup_requests, tokens
from papermail.categories import CATEGORY_GROUPS
from papermail.config import Rate
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.digest.browser import delivery_page
from papermail.digest.render import trending_url
from papermail.signup_limits import LimiterUnavailable, ip_key
from papermail.web import feedback, readiness
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

log = logging.getLogger(__name__)
blueprint = Blueprint("web", __name__)

Page = tuple[str, int] | str
SERVER_ERROR_MESSAGE = "Something went wrong on our side. Please try again in a few minutes."
UNAVAILABLE_MESSAGE = (
    "We can't take signups or confirmations for a moment. Nothing was saved: please try again in a "
    "minute. Links to change your preferences or to unsubscribe keep working."
)
RETRY_AFTER_SECONDS = 60


class RateLimited(TooManyRequests):
    description = "Too many requests from your network. Please wait a while and try again."


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
        raise RateLimited()


def _own_link(purpose: tokens.Purpose, subscriber: Subscriber) -> str:
    # Relative, so it works on whatever host served the page (CSP form-action is 'self').
    extra = [tokens.address_tag(subscriber.email)] if purpose == tokens.Purpose.PREFERENCES else []
    token = tokens.make_token(web_context().settings, purpose, subscriber.id, *extra)
    return url_for(f"web.{tokens.PATHS[purpose]}", token=token)


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
    # Only recorded here, the same for every address: a worker decides what it means, so neither
    # the page nor the time it takes tells who is subscribed.
    context.transaction(lambda session: signup_requests.record_request(session, email, preferences))
    return render_template("check_inbox.html")


# -- confirming -----------------------------------------------------------------------------------


def _confirmed_page(subscriber: Subscriber) -> str:
    return render_template(
        "confirmed.html", preferences_url=_own_link(tokens.Purpose.PREFERENCES, subscriber)
    )


@blueprint.get("/confirm/<token>")
def confirm_page(token: str) -> Page:
    context = web_context()
    # GET never changes anything: link scanners open every link in a mail.
    check = context.read(lambda session: signup.check_confirm_token(session, context.settings, token))
    if check.state == signup.ConfirmState.INVALID or check.subscriber is None:
        return _invalid_link()
    if check.state == signup.ConfirmState.ALREADY_ACTIVE:
        return _confirmed_page(check.subscriber)
    return render_template("confirm.html")


@blueprint.post("/confirm/<token>")
def confirm(token: str) -> Page:
    context = web_context()
    _check_ip_limit("confirm", context.settings.signup_rate_per_ip)
    check = context.transaction(
        lambda session: signup.confirm(session, context.settings, token, ip=request.remote_addr)
    )
    if check.state == signup.ConfirmState.INVALID or check.subscriber is None:
        return _invalid_link()
    return _confirmed_page(check.subscriber)


# -- preferences ----------------------------------------------------------------------------------


@blueprint.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> Page:
    context = web_context()
    settings = context.settings

    def work(session: sa.orm.Session) -> Page:
        subscriber = signup.subscriber_for_link(session, settings, tokens.Purpose.PREFERENCES, token)
        if subscriber is None:
            return _invalid_link()
        saved = tldr_saved = False
        errors = FormErrors()
        interests = None
        if request.method == "POST" and request.form.get("form") == "tldr":
            if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
                signup.change_tldr_choice(session, subscriber, request.form.get("show_tldr") == "on")
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
                signup.change_preferences(session, subscriber, chosen)
                saved = True
        else:
            fields = PreferenceFields.from_subscriber(subscriber)
        page = render_template(
            "preferences.html",
            saved=saved,
            tldr_saved=tldr_saved,
            show_tldr=subscriber.show_tldr,
            unsubscribed=subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED),
            digests=signup.recent_digests(session, subscriber.id),
            unsubscribe_url=_own_link(tokens.Purpose.UNSUBSCRIBE, subscriber),
            interests=feedback.interests_form(session, subscriber, interests),
            **_form_context(fields, errors),
        )
        return (page, HTTPStatus.BAD_REQUEST) if errors or (interests and interests.error) else page

    return context.transaction(work)


# -- unsubscribing --------------------------------------------------------------------------------


@blueprint.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Page:
    # GET only shows the button (RFC 8058 and link scanners); nothing changes.
    if not signup.is_valid_link(web_context().settings, tokens.Purpose.UNSUBSCRIBE, token):
        return _invalid_link()
    return render_template("unsubscribe.html")


@blueprint.post("/unsubscribe/<token>")
@csrf_exempt  # RFC 8058 one-click: mail providers POST with no cookie and no token; the link is the key.
def unsubscribe(token: str) -> Page:
    context = web_context()
    how = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "page"
    if not context.transaction(
        lambda session: signup.unsubscribe_by_link(session, context.settings, token, how=how)
    ):
        return _invalid_link()
    # 200 with a page, never a redirect: one-click clients don't follow them.
    return render_template("unsubscribed.html")


# -- a digest in the browser ---------------------------------------------------------------------


@blueprint.get("/digest/<token>")
def digest(token: str) -> Any:
    context = web_context()
    page = context.read(lambda session: delivery_page(session, context.settings, token))
    if page is None:
        response = make_response(_invalid_link())
    else:
        response = make_response(
            render_template(
                "digest.html",
                page=page,
                preferences_url=_own_link(tokens.Purpose.PREFERENCES, page.subscriber),
                unsubscribe_url=_own_link(tokens.Purpose.UNSUBSCRIBE, page.subscriber),
                trending_url=trending_url("", page.topics),
            )
        )
    # One person's digest: search engines must not list it, whoever pasted the link where.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# -- health and errors ----------------------------------------------------------------------------


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    try:
        web_context().read(lambda session: session.execute(sa.text("SELECT 1")))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("healthz: database unreachable: %s", exc.__class__.__name__)
        return {"status": "error", "database": "unreachable"}, HTTPStatus.SERVICE_UNAVAILABLE
    return {"status": "ok"}, HTTPStatus.OK


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    # /healthz says the process lives (cheap, for restarts); this says whether to send it traffic.
    context = web_context()
    try:
        database = context.read(readiness.database_state)
    except sa.exc.SQLAlchemyError:  # not even a connection
        database = readiness.UNREACHABLE
    states = {"database": database, "broker": readiness.broker_state(context.settings)}
    ready = all(state == readiness.OK for state in states.values())
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
    def http_error(exc: HTTPException) -> Page:
        # Flask wraps unhandled errors in InternalServerError (and logs them via log_exception).
        code = exc.code or HTTPStatus.INTERNAL_SERVER_ERROR
        message = SERVER_ERROR_MESSAGE if code >= HTTPStatus.INTERNAL_SERVER_ERROR else exc.description
        page = render_template("error.html", title=HTTPStatus(code).phrase, message=message, code=code)
        return page, code

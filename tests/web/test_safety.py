"""Rate limiters, settings, CSRF coverage of every route, and logs without tokens or addresses."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from freezegun import freeze_time
from gunicorn.config import Config

from papermail import config, redaction
from papermail.signup import confirmations
from papermail.signup.limits import DatabaseRateLimiter, RedisRateLimiter, limiter_for
from papermail.subscribers import links
from papermail.web import csrf
from papermail.web.logs import RedactingLogger, describe_exception, redact
from tests.config.refusal import refusal
from tests.conftest import settings_environ
from tests.support.web import SIGNUP_FORM, csrf_token, link_path, post_signup

FIVE_PER_MINUTE = config.parsers.rate("5/m")


@pytest.fixture(params=["database", "redis"])
def limiter(request, redis_limiter):
    return redis_limiter if request.param == "redis" else DatabaseRateLimiter()


def test_a_limit_allows_its_count_per_sliding_window(limiter, session):
    with freeze_time("2026-03-02 09:00:00") as frozen:
        allowed = []
        for _ in range(8):
            allowed.append(limiter.allow(session, "signup:ip:192.0.2.1", FIVE_PER_MINUTE))
            frozen.tick(timedelta(seconds=5))
        assert allowed == [True] * 5 + [False] * 3
        assert limiter.allow(session, "signup:ip:192.0.2.2", FIVE_PER_MINUTE), "keys are independent"
        frozen.tick(timedelta(seconds=21))  # the first hit is now a minute old
        assert limiter.allow(session, "signup:ip:192.0.2.1", FIVE_PER_MINUTE)
        assert not limiter.allow(session, "signup:ip:192.0.2.1", FIVE_PER_MINUTE)


def test_redis_limits_are_used_with_a_redis_broker(tmp_path):
    redis_settings = config.load_settings(settings_environ(tmp_path, broker_url="redis://127.0.0.1:6379/0"))
    assert isinstance(limiter_for(redis_settings), RedisRateLimiter)
    assert isinstance(limiter_for(config.load_settings(settings_environ(tmp_path))), DatabaseRateLimiter)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SIGNUP_RATE_PER_IP", "lots", "PAPERMAIL_SIGNUP_RATE_PER_IP: must look like 10/h"),
        ("CONFIRMATIONS_PER_ADDRESS", "0/6h", "PAPERMAIL_CONFIRMATIONS_PER_ADDRESS: must look like"),
        ("CONFIRM_HOURS", "-1", "PAPERMAIL_CONFIRM_HOURS: must be a positive number"),
        ("UNCONFIRMED_DAYS", "1", "PAPERMAIL_UNCONFIRMED_DAYS: must be at least PAPERMAIL_CONFIRM_HOURS"),
        ("PROXY_COUNT", "-1", "PAPERMAIL_PROXY_COUNT: must be 0 or a positive"),
        ("RECORD_CONSENT_IP", "maybe", "PAPERMAIL_RECORD_CONSENT_IP: must be true or false"),
    ],
)
def test_bad_web_settings_name_the_variable(tmp_path, variable, value, message):
    assert refusal(tmp_path, variable, value).startswith(message)


def test_web_settings_parse(tmp_path):
    settings = config.load_settings(
        settings_environ(tmp_path, signup_rate_per_ip="20/10m", record_consent_ip="yes", confirm_hours="48")
    )
    assert settings.signup_rate_per_ip.count == 20
    assert settings.signup_rate_per_ip.window == timedelta(minutes=10)
    assert settings.record_consent_ip is True
    assert settings.confirm_hours == 48
    assert settings.masked()["signup_rate_per_ip"] == "20/10m"


def test_every_form_route_but_one_click_unsubscribe_requires_csrf(app, web_settings):
    """Route enumeration: a new POST route fails here until it is protected (or exempted on purpose)."""
    paths = {
        "web.subscribe": "/subscribe",
        "web.confirm": link_path(web_settings, links.Purpose.CONFIRM, 1, 1, "x"),
        "web.preferences": link_path(web_settings, links.Purpose.PREFERENCES, 1),
        "web.unsubscribe": link_path(web_settings, links.Purpose.UNSUBSCRIBE, 1),
        # Exempt too: the signed vote link is the authority (its reader 1 doesn't exist here: 400).
        "feedback.vote": links.CompactTokens(web_settings, links.Purpose.VOTE)
        .link(1, "2401.00001", 1)
        .removeprefix(web_settings.base_url),
        # Exempt: providers authenticate by signature or secret (here unconfigured: 404).
        "webhooks.receive": "/webhooks/generic",
        "feedback.digest_vote": links.CompactTokens(web_settings, links.Purpose.VIEW)
        .link(1, 2, "x")
        .removeprefix(web_settings.base_url)
        + "/1/more",
        "web.ask_preferences_link": "/digest/x/preferences-link",
    }
    post_routes = {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    assert post_routes == set(paths)
    with app.app_context():
        assert {endpoint for endpoint in paths if csrf.is_exempt(endpoint)} == {
            "web.unsubscribe",
            "feedback.vote",
            "webhooks.receive",
            "feedback.digest_vote",
        }
    client = app.test_client(use_cookies=False)
    for endpoint, path in paths.items():
        status = client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code
        expected = {"web.unsubscribe": 200, "webhooks.receive": 404}.get(endpoint, 400)
        assert status == expected, endpoint


def test_routes_that_create_subscriptions_are_rate_limited(make_app, web_settings):
    from dataclasses import replace

    settings = replace(web_settings, signup_rate_per_ip=config.parsers.rate("1/h"))
    client = make_app(settings).test_client()
    confirm = link_path(web_settings, links.Purpose.CONFIRM, 1, 1, "x")
    for path, form in (("/subscribe", SIGNUP_FORM), (confirm, {})):
        token = csrf_token(client)
        statuses = [client.post(path, data={**form, "csrf_token": token}).status_code for _ in range(2)]
        assert statuses[1] == 429, path


def test_logs_hold_no_tokens_and_no_full_addresses(client, web_settings, people, caplog, enqueued):
    caplog.set_level(logging.DEBUG)
    post_signup(client, email="ada.lovelace@example.org")
    subscriber = people.get("ada.lovelace@example.org")
    confirm_path = confirmations.confirm_link(web_settings, subscriber).removeprefix(web_settings.base_url)
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    unsubscribe_path = link_path(web_settings, links.Purpose.UNSUBSCRIBE, subscriber.id)
    client.post(unsubscribe_path, data={"List-Unsubscribe": "One-Click"})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "a***@example.org" in logged
    assert "ada.lovelace" not in logged
    for path in (confirm_path, unsubscribe_path):
        assert path.rsplit("/", 1)[1] not in logged


def test_access_logs_and_crash_logs_redact_link_tokens():
    line = "GET /unsubscribe/WzEsMl0.abc.def?x=1 HTTP/1.1 from /preferences/tok/en"
    assert redact(line) == "GET /unsubscribe/…?x=1 HTTP/1.1 from /preferences/…/en"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/confirm/secret-token",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/confirm/secret-token",
        "HTTP_REFERER": "https://papermail.test/preferences/other-secret",
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)
    request_time = timedelta(milliseconds=3)
    atoms = RedactingLogger(Config()).atoms(response, {}, environ, request_time)
    assert "secret" not in repr(atoms)
    assert atoms["r"] == "POST /confirm/… HTTP/1.1"
    message = "SQL [parameters: ('ada@example.org',)]"
    try:
        raise ValueError(message)
    except ValueError as exc:
        described = describe_exception((type(exc), exc, exc.__traceback__))
    assert described.startswith("ValueError") and "ada@example.org" not in described


def test_log_masking():
    assert redaction.mask_email("ada@example.org") == "a***@example.org"
    assert re.fullmatch(r"\S+", redaction.mask_email("x@y"))

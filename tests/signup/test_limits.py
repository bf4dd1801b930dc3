"""Signup limits that a flood can't dodge: client networks, mailboxes, a global budget, its own queue."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from papermail import config, task_names
from papermail.celery_app import celery_config, signup_queue, worker_queues
from papermail.signup import flow
from papermail.signup.limits import client_network, mailbox_key
from tests.conftest import REPO_ROOT
from tests.support.web import SIGNUP_FORM, csrf_token


@pytest.mark.parametrize(
    ("remote", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.009", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("::ffff:cb00:7109", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:0db8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        (None, "unknown"),
    ],
)
def test_clients_are_keyed_by_their_network(remote, network):
    assert client_network(remote) == network


def test_plus_tags_of_one_mailbox_are_one_address_for_the_confirmation_limit(client, people):
    keys = {mailbox_key("confirm", f"victim+{n}@example.org") for n in range(5)}
    assert keys == {mailbox_key("confirm", "victim@example.org")}
    for n in range(5):
        client.post(
            "/subscribe",
            data={**SIGNUP_FORM, "email": f"victim+{n}@example.org", "csrf_token": csrf_token(client)},
        )
    from tests.support.web import process_signup_requests

    outcomes = process_signup_requests(client.application)
    assert outcomes.count(flow.SignupOutcome.CONFIRMATION_QUEUED) == 3
    assert outcomes.count(flow.SignupOutcome.THROTTLED) == 2


def test_an_ipv6_network_is_one_client_and_a_mapped_address_is_its_ipv4(make_app, web_settings):
    settings = replace(web_settings, signup_rate_per_ip=config.parsers.rate("2/h"))
    client = make_app(settings).test_client()
    token = csrf_token(client)

    def sign_up(ip: str, n: int) -> int:
        form = {**SIGNUP_FORM, "email": f"p{n}@example.org", "csrf_token": token}
        return client.post("/subscribe", data=form, environ_base={"REMOTE_ADDR": ip}).status_code

    assert [sign_up(f"2001:db8:7:7::{n}", n) for n in range(1, 4)] == [200, 200, 429]
    assert [
        sign_up(ip, n) for n, ip in enumerate(["198.51.100.7", "::ffff:198.51.100.7", "198.51.100.007"])
    ] == [
        200,
        200,
        429,
    ]


def test_past_the_global_budget_the_form_answers_503_with_retry_after(make_app, web_settings):
    settings = replace(web_settings, signup_budget=config.parsers.rate("3/m"))
    client = make_app(settings).test_client()
    token = csrf_token(client)
    answers = [
        client.post(
            "/subscribe",
            data={**SIGNUP_FORM, "email": f"p{n}@example.org", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"2001:db8:{n}::1"},
        )
        for n in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 503]
    assert answers[3].headers["Retry-After"] == "60"
    assert "more signups than we can take" in answers[3].get_data(as_text=True)


def test_a_429_says_when_to_come_back(make_app, web_settings):
    client = make_app(replace(web_settings, signup_rate_per_ip=config.parsers.rate("1/h"))).test_client()
    token = csrf_token(client)
    codes = [client.post("/subscribe", data={**SIGNUP_FORM, "csrf_token": token}) for _ in range(2)]
    assert codes[1].status_code == 429 and codes[1].headers["Retry-After"] == "3600"


def test_signups_have_their_own_queue_which_every_worker_consumes(web_settings):
    assert celery_config(web_settings)["task_routes"] == {
        task_names.PROCESS_SIGNUP: {"queue": signup_queue(web_settings)}
    }
    assert worker_queues(web_settings) == [web_settings.celery_queue, signup_queue(web_settings)]
    # Every way of running papermail starts workers through `papermail worker`, which consumes both.
    for launcher in ("Procfile", "docker-compose.yml", "src/papermail/cli/service.py"):
        text = Path(REPO_ROOT, launcher).read_text()
        assert "worker" in text and '--queues", settings.celery_queue' not in text and "-Q" not in text, (
            launcher
        )

"""A signup flood from many networks (IPv6 included) can't starve a real signup of its confirmation."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.celery_app import declare_embedded_queue
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.web import create_app
from tests.conftest import wait_for
from tests.support.web import SIGNUP_FORM, csrf_token

pytestmark = pytest.mark.slow

FLOOD, BUDGET = 80, 40
REAL = "real.person@example.org"


def _flood_address(n: int) -> str:
    # Every other one from its own IPv6 /64, the rest from IPv4 addresses, some written oddly.
    if n % 2:
        return f"2001:db8:{n:x}::{n}"
    return f"::ffff:198.51.100.{n}" if n % 4 else f"203.0.113.{n:03d}"


def test_a_real_signup_is_still_confirmed_within_a_minute(send_env_factory, smtp_server, worker_factory):
    env = send_env_factory("sqlite", broker="embedded", mail_url=smtp_server.url, signup_budget=f"{BUDGET}/m")
    declare_embedded_queue(env.settings)
    client = create_app(env.settings, {"TESTING": True}).test_client()
    token = csrf_token(client)

    def sign_up(email: str, ip: str) -> int:
        form = {**SIGNUP_FORM, "email": email, "csrf_token": token}
        return client.post("/subscribe", data=form, environ_base={"REMOTE_ADDR": ip}).status_code

    answers = [sign_up(f"flood{n}@example.org", _flood_address(n)) for n in range(FLOOD)]
    assert answers == [200] * BUDGET + [503] * (FLOOD - BUDGET)
    worker_factory(env.environ, concurrency=2)
    # Told "try again in a minute", the real person comes back a minute later, behind the flood.
    with freeze_time(clock.now() + timedelta(seconds=61), tick=True):
        assert sign_up(REAL, "192.0.2.10") == 200
    [mail] = wait_for(lambda: smtp_server.received_by(REAL), timeout=60, message="the real confirmation")
    text = message_from_bytes(mail.data, policy=policy.default).get_body(("plain",)).get_content()
    path = re.search(r"https://papermail\.test(/confirm/\S+)", text)[1]
    assert client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code == 200
    with env.session() as session:
        status = session.scalar(sa.select(Subscriber.status).where(Subscriber.email == REAL))
    assert status == SubscriberStatus.ACTIVE

"""Provider webhooks: authenticated, fresh, idempotent, and a clear 4xx for anything wrong."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from papermail import config
from papermail.bounces import sns
from papermail.celery_app import reset_celery
from papermail.db.models import BounceEvent, Subscriber, SubscriberStatus
from papermail.signup.limits import DatabaseRateLimiter
from papermail.web import create_app
from tests.bounces import providers as p
from tests.conftest import make_settings
from tests.support.send_env import add_subscribers

READER = "reader0@example.org"
STALE = datetime.now(UTC) - timedelta(hours=3)


@pytest.fixture(scope="module")
def sns_server() -> Iterator[p.SnsSigner]:
    signer = p.SnsSigner()
    yield signer
    signer.close()


@pytest.fixture
def sns_signer(sns_server) -> Iterator[p.SnsSigner]:
    sns_server.visited.clear()
    sns_server.certificate_fetches = 0
    sns.forget_certificates()
    yield sns_server
    sns.forget_certificates()


@pytest.fixture(scope="module")
def sendgrid_signer() -> p.SendGridSigner:
    return p.SendGridSigner()


@pytest.fixture
def hook_settings(database, tmp_path, sns_signer, sendgrid_signer) -> Iterator[config.Settings]:
    settings = make_settings(
        tmp_path,
        database_url=database.url,
        broker_url="memory://",
        bounce_address="bounces@papermail.test",
        **p.webhook_settings(sns_signer, sendgrid_signer),
    )
    config.use_settings(settings)
    reset_celery()
    yield settings
    config.use_settings(None)
    reset_celery()


def _client(settings: config.Settings, session: Session) -> FlaskClient:
    sessions = sessionmaker(
        bind=session.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    test_config = {"TESTING": True, "SESSION_FACTORY": sessions, "RATE_LIMITER": DatabaseRateLimiter()}
    return create_app(settings, test_config).test_client()


@pytest.fixture
def client(hook_settings, session) -> FlaskClient:
    return _client(hook_settings, session)


@pytest.fixture
def reader(session) -> int:
    [subscriber_id] = add_subscribers(session, 1)
    session.commit()
    return subscriber_id


def _status(session: Session, subscriber_id: int) -> SubscriberStatus:
    session.expire_all()
    return session.get(Subscriber, subscriber_id).status


# Each provider's request for an event, signed (or authenticated) the way that provider does it.
Request = tuple[str, bytes, dict[str, str]]


def ses(signer: p.SnsSigner, notice: dict, at: datetime | None = None) -> Request:
    return "ses", json.dumps(signer.notification(notice, at=at)).encode(), {"Content-Type": "text/plain"}


def mailgun(event_data: dict, at: datetime | None = None, key: str = p.MAILGUN_KEY) -> Request:
    return "mailgun", json.dumps(p.mailgun_webhook(event_data, at=at, key=key)).encode(), {}


def sendgrid(signer: p.SendGridSigner, events: list, at: datetime | None = None) -> Request:
    body = json.dumps(events).encode()
    return "sendgrid", body, signer.headers(body, at=at)


def postmark(record: dict, auth: str = p.POSTMARK_AUTH) -> Request:
    return "postmark", json.dumps(record).encode(), p.postmark_headers(auth)


def generic(events: list, secret: str = p.GENERIC_SECRET) -> Request:
    return "generic", json.dumps({"events": events}).encode(), p.generic_headers(secret)


def post(client: FlaskClient, request: Request) -> tuple[int, dict[str, Any]]:
    provider, body, headers = request
    response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    return response.status_code, response.get_json()


Maker = Callable[[p.SnsSigner, p.SendGridSigner], Request]
HARD_BOUNCES: dict[str, Maker] = {
    "ses": lambda sn, _sg: ses(sn, p.ses_bounce(READER)),
    "mailgun": lambda _sn, _sg: mailgun(p.mailgun_failed(READER)),
    "sendgrid": lambda _sn, sg: sendgrid(sg, [p.sendgrid_event(READER, status="5.1.1", type="bounce")]),
    "postmark": lambda _sn, _sg: postmark(p.postmark_bounce(READER)),
    "generic": lambda _sn, _sg: generic([p.generic_event(READER)]),
}
COMPLAINTS: dict[str, Maker] = {
    "ses": lambda sn, _sg: ses(sn, p.ses_complaint(READER)),
    "mailgun": lambda _sn, _sg: mailgun(p.mailgun_complained(READER)),
    "sendgrid": lambda _sn, sg: sendgrid(sg, [p.sendgrid_event(READER, "spamreport")]),
    "postmark": lambda _sn, _sg: postmark(p.postmark_bounce(READER, "SpamComplaint", "SpamComplaint")),
    "generic": lambda _sn, _sg: generic([p.generic_event(READER, "complaint")]),
}


@pytest.mark.parametrize("provider", HARD_BOUNCES)
def test_a_hard_bounce_suppresses_once(client, session, reader, sns_signer, sendgrid_signer, provider):
    request = HARD_BOUNCES[provider](sns_signer, sendgrid_signer)
    assert post(client, request) == (200, {"events": 1, "actions": ["suppressed"]})
    assert _status(session, reader) == SubscriberStatus.BOUNCED
    # The provider retries (or someone replays) the same request: nothing changes.
    assert post(client, request) == (200, {"events": 1, "actions": ["already-seen"]})


@pytest.mark.parametrize("provider", COMPLAINTS)
def test_a_complaint_unsubscribes(client, session, reader, sns_signer, sendgrid_signer, provider):
    status, body = post(client, COMPLAINTS[provider](sns_signer, sendgrid_signer))
    assert (status, body["actions"]) == (200, ["unsubscribed"])
    assert _status(session, reader) == SubscriberStatus.UNSUBSCRIBED


def test_soft_bounces_and_deliveries_do_not_suppress(client, session, reader, sendgrid_signer):
    events = [
        p.sendgrid_event(READER, "deferred", response="452 4.2.2 mailbox full"),
        p.sendgrid_event(READER, "delivered"),
        p.sendgrid_event(READER, "open"),  # says nothing about the address: skipped
    ]
    status, body = post(client, sendgrid(sendgrid_signer, events))
    assert (status, body["events"]) == (200, 2)
    assert "suppressed" not in body["actions"]
    assert post(client, mailgun(p.mailgun_failed(READER, severity="temporary")))[0] == 200
    assert _status(session, reader) == SubscriberStatus.ACTIVE


WRONG_CREDENTIALS: dict[str, Maker] = {
    "mailgun": lambda _sn, _sg: mailgun(p.mailgun_failed(READER), key="not-the-key"),
    "sendgrid": lambda _sn, _sg: sendgrid(p.SendGridSigner(), [p.sendgrid_event(READER)]),
    "postmark": lambda _sn, _sg: postmark(p.postmark_bounce(READER), auth="postmark:guess"),
    "generic": lambda _sn, _sg: generic([p.generic_event(READER)], secret="guess"),
    "ses": lambda sn, _sg: _tampered(ses(sn, p.ses_bounce(READER))),
}


def _tampered(request: Request) -> Request:
    provider, body, headers = request
    message = json.loads(body)
    message["Message"] = message["Message"].replace("Permanent", "Transient")
    return provider, json.dumps(message).encode(), headers


@pytest.mark.parametrize("provider", WRONG_CREDENTIALS)
def test_unauthenticated_requests_are_refused(client, session, reader, sns_signer, sendgrid_signer, provider):
    status, body = post(client, WRONG_CREDENTIALS[provider](sns_signer, sendgrid_signer))
    assert status == 401 and body["error"]
    assert _status(session, reader) == SubscriberStatus.ACTIVE


STALE_REQUESTS: dict[str, Maker] = {
    "ses": lambda sn, _sg: ses(sn, p.ses_bounce(READER), at=STALE),
    "mailgun": lambda _sn, _sg: mailgun(p.mailgun_failed(READER), at=STALE),
    "sendgrid": lambda _sn, sg: sendgrid(sg, [p.sendgrid_event(READER)], at=STALE),
    "generic": lambda _sn, _sg: generic([p.generic_event(READER, at=STALE)]),
}


@pytest.mark.parametrize("provider", STALE_REQUESTS)
def test_an_old_signed_request_is_refused(client, session, reader, sns_signer, sendgrid_signer, provider):
    status, body = post(client, STALE_REQUESTS[provider](sns_signer, sendgrid_signer))
    assert status == 400 and "outside the accepted window" in body["error"]
    assert _status(session, reader) == SubscriberStatus.ACTIVE


def test_unconfigured_and_unknown_providers_are_404(hook_settings, session):
    bare = replace(hook_settings, mailgun_signing_key="", webhook_secret="", ses_topic_arns=())
    client = _client(bare, session)
    for provider in ("mailgun", "generic", "ses", "sparkpost"):
        status, body = post(client, (provider, b"{}", {}))
        assert status == 404 and "no " in body["error"]


# Authenticated requests whose bodies are wrong in every way we could think of: each gets a 400.
MALFORMED_BODIES = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"[" * 50_000,
    b"null",
    b"[]",
    b'{"events": "no"}',
    b'{"events": [1]}',
    b'{"events": [{"id": "x", "address": "no-at-sign", "verdict": "hard", "timestamp": 0}]}',
    b'{"events": [{"id": "x", "address": "a@b.c", "verdict": "maybe", "timestamp": 0}]}',
    b'{"events": [{"id": "x", "address": "a@b.c", "verdict": "hard", "timestamp": "yesterday"}]}',
    b'{"events": [{"id": "x", "address": "a@b.c", "verdict": "hard", "timestamp": 1e300}]}',
    b'{"events": [{"id": null, "address": "a@b.c", "verdict": "hard", "timestamp": 0}]}',
]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_generic_bodies_are_400(client, body):
    fresh = body.replace(b'"timestamp": 0', f'"timestamp": {int(time.time())}'.encode())
    status, answer = post(client, ("generic", fresh, p.generic_headers()))
    assert status == 400 and answer["error"] and "window" not in answer["error"]


@pytest.mark.parametrize(
    "event_data",
    [
        {},
        {"event": "failed"},
        {"event": "failed", "id": "x", "recipient": 5},
        {"event": "complained", "id": []},
    ],
)
def test_malformed_mailgun_events_are_400(client, event_data):
    assert post(client, mailgun(event_data))[0] == 400
    status, _ = post(client, ("mailgun", json.dumps({"signature": "x", "event-data": {}}).encode(), {}))
    assert status == 400


@pytest.mark.parametrize(
    "events", [{}, [{"event": "bounce"}], [{"event": "bounce", "sg_event_id": "x", "email": None}], ["x"]]
)
def test_malformed_sendgrid_batches_are_400_or_skipped(client, sendgrid_signer, events):
    status, _ = post(client, sendgrid(sendgrid_signer, events))
    assert status in (400, 200) and (status == 400) == (events not in (["x"],))


@pytest.mark.parametrize(
    "record", [[], {"RecordType": "Bounce"}, {"RecordType": "Bounce", "Email": "a@b.c", "ID": None}]
)
def test_malformed_postmark_records_are_400(client, record):
    assert post(client, postmark(record))[0] == 400


@pytest.mark.parametrize("message", ["not json", "[]", json.dumps({"notificationType": "Bounce"})])
def test_malformed_ses_notifications_are_400(client, sns_signer, message):
    signed = sns_signer.sign(
        {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": p.TOPIC_ARN,
            "Message": message,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    )
    assert post(client, ("ses", json.dumps(signed).encode(), {}))[0] == 400


def test_sns_subscription_is_confirmed_after_the_signature_checks(client, sns_signer):
    confirmation = sns_signer.subscription_confirmation()
    status, body = post(client, ("ses", json.dumps(confirmation).encode(), {}))
    assert (status, body) == (200, {"events": 0, "actions": []})
    assert sns_signer.visited == [confirmation["SubscribeURL"].removeprefix(sns_signer.origin)]


def test_sns_certificates_come_only_from_allowed_hosts_and_are_cached(
    client, session, reader, sns_signer, hook_settings
):
    for _ in range(3):
        assert post(client, ses(sns_signer, p.ses_bounce(f"x{_}@example.org")))[0] == 200
    assert sns_signer.certificate_fetches == 1
    elsewhere = sns_signer.notification(p.ses_bounce(READER))
    elsewhere["SigningCertURL"] = "https://attacker.example/SimpleNotificationService-1.pem"
    status, body = post(client, ("ses", json.dumps(elsewhere).encode(), {}))
    assert status == 403 and "allow-listed" in body["error"]
    other_topic = sns_signer.sign({**sns_signer.notification(p.ses_bounce(READER)), "TopicArn": "arn:x"})
    assert post(client, ("ses", json.dumps(other_topic).encode(), {}))[0] == 403
    assert _status(session, reader) == SubscriberStatus.ACTIVE


def test_sns_signature_version_2_and_the_default_allow_list(client, session, reader, sns_signer):
    message = sns_signer.sign(json.loads(ses(sns_signer, p.ses_bounce(READER))[1]), version="2")
    assert post(client, ("ses", json.dumps(message).encode(), {}))[0] == 200
    assert _status(session, reader) == SubscriberStatus.BOUNCED


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem", True),
        ("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem", False),
        ("https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", False),
        ("https://sns.eu-west-1.amazonaws.com:8443/x.pem", False),
        ("https://evil.example/sns.eu-west-1.amazonaws.com/x.pem", False),
    ],
)
def test_the_default_certificate_allow_list(tmp_path, url, allowed):
    assert sns.allowed_url(make_settings(tmp_path), url) is allowed


def test_a_bad_sendgrid_key_stops_start_up(tmp_path):
    with pytest.raises(config.ConfigError, match="PAPERMAIL_SENDGRID_PUBLIC_KEY"):
        make_settings(tmp_path, sendgrid_public_key="not a key")


def test_a_big_batch_and_long_fields_are_taken(client, session, reader, sendgrid_signer):
    noise = [p.sendgrid_event(f"x{n}@example.org", "open", useragent="Mozilla/5.0 " * 20) for n in range(200)]
    long_status = p.sendgrid_event(READER, status="5.1.1 (the mailbox does not exist) " * 5, type="bounce")
    request = sendgrid(sendgrid_signer, [*noise, long_status])
    assert len(request[1]) > 50_000  # far above the web forms' 16 KB limit
    assert post(client, request) == (200, {"events": 1, "actions": ["suppressed"]})
    session.expire_all()
    [event] = session.scalars(sa.select(BounceEvent).where(BounceEvent.address == READER))
    assert event.status == "5.1.1"


def test_a_body_over_a_megabyte_is_413(client):
    status, _ = post(client, ("generic", b"x" * (1024 * 1024 + 1), p.generic_headers()))
    assert status == 413


def test_the_same_event_twice_in_one_batch_acts_once(client, session, reader, sendgrid_signer):
    event = p.sendgrid_event(READER, status="5.1.1", type="bounce")
    assert post(client, sendgrid(sendgrid_signer, [event, event])) == (
        200,
        {"events": 2, "actions": ["suppressed", "already-seen"]},
    )

"""Subscribers: signed tokens, address normalisation, preferences, suppression."""

from dataclasses import replace
from datetime import timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer

from papermail import subscribers, tokens
from papermail.db.models import Subscriber, SubscriberStatus


def test_tokens_round_trip_and_reject_other_purposes(settings):
    token = tokens.make_token(settings, tokens.Purpose.UNSUBSCRIBE, 42)
    assert tokens.read_token(settings, tokens.Purpose.UNSUBSCRIBE, token) == [42]
    with pytest.raises(tokens.BadToken):
        tokens.read_token(settings, tokens.Purpose.CONFIRM, token)
    with pytest.raises(tokens.BadToken):
        tokens.read_token(settings, tokens.Purpose.UNSUBSCRIBE, token[:-2] + "xx")


def test_unsubscribe_tokens_survive_key_rotation_and_sixty_days(settings):
    with freeze_time("2026-01-01"):
        token = tokens.make_token(settings, tokens.Purpose.UNSUBSCRIBE, 7)
    rotated = replace(settings, secret_key="new-key", old_secret_keys=(settings.secret_key,))
    with freeze_time("2026-01-01") as frozen:
        frozen.tick(timedelta(days=61))
        assert tokens.read_token(rotated, tokens.Purpose.UNSUBSCRIBE, token) == [7]
        with pytest.raises(tokens.BadToken):
            tokens.read_token(replace(rotated, old_secret_keys=()), tokens.Purpose.UNSUBSCRIBE, token)


@pytest.mark.parametrize("purpose", list(tokens.Purpose))
def test_tokens_are_plain_itsdangerous_tokens_both_ways(settings, purpose):
    # The signer and serializer are kept between tokens for speed; the links must not change.
    rotated = replace(settings, secret_key="new-key-" + "n" * 30, old_secret_keys=(settings.secret_key,))
    plain = URLSafeTimedSerializer([settings.secret_key, rotated.secret_key], salt=f"papermail.{purpose}")
    plain_old_key = URLSafeTimedSerializer(settings.secret_key, salt=f"papermail.{purpose}")
    with freeze_time("2026-01-01") as frozen:
        for _ in range(2):  # the second time, a later second
            assert tokens.make_token(rotated, purpose, 7, "tag") == plain.dumps([7, "tag"])
            assert plain.loads(tokens.make_token(rotated, purpose, 7, "tag")) == [7, "tag"]
            assert tokens.read_token(rotated, purpose, plain.dumps([7, "tag"])) == [7, "tag"]
            assert tokens.read_token(rotated, purpose, plain_old_key.dumps([7])) == [7]
            frozen.tick(timedelta(seconds=2))


def test_confirm_tokens_expire(settings):
    with freeze_time("2026-01-01") as frozen:
        token = tokens.make_token(settings, tokens.Purpose.CONFIRM, 1)
        frozen.tick(timedelta(hours=73))
        with pytest.raises(tokens.BadToken):
            tokens.read_token(settings, tokens.Purpose.CONFIRM, token)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("User@EXAMPLE.com", "user@example.com"),
        ("  user@example.com ", "user@example.com"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ],
)
def test_one_address_has_one_normal_form(raw, expected):
    assert subscribers.normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "not-an-address", "a@b\r\nBcc: evil@x.org", "x" * 250 + "@example.com", "<b>@x.org"]
)
def test_bad_addresses_are_refused_with_a_message(raw):
    with pytest.raises(subscribers.InvalidInput):
        subscribers.normalise_email(raw)


def test_preferences_are_validated():
    prefs = subscribers.parse_preferences(
        topics=["cs.LG", "cs.CL", "cs.LG"], keywords="diffusion,  large   language models"
    )
    assert prefs.topics == ["cs.CL", "cs.LG"]
    assert prefs.keywords == ["diffusion", "large language models"]
    for bad in (
        {"topics": ["cs.NOPE"]},
        {"keywords": "<script>"},
        {"topics": ["cs.LG"], "send_hour": 24},
        {"topics": ["cs.LG"], "timezone": "Mars/Olympus"},
        {"topics": ["cs.LG"], "frequency": "hourly"},
        {},
    ):
        with pytest.raises(subscribers.InvalidInput):
            subscribers.parse_preferences(**bad)


def test_suppressed_addresses_are_never_mailable(session):
    person = Subscriber(email="a@example.org", status=SubscriberStatus.ACTIVE, created_at=_now())
    session.add(person)
    session.flush()
    assert subscribers.is_mailable(session, person)
    subscribers.suppress(session, "a@example.org", "complaint")
    subscribers.suppress(session, "a@example.org", "complaint")
    assert not subscribers.is_mailable(session, person)


def _now():
    from papermail import clock

    return clock.now()

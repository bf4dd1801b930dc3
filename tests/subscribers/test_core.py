"""Subscribers: signed tokens, address normalisation, preferences, suppression."""

from dataclasses import replace
from datetime import timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer

from papermail.db.models import Subscriber, SubscriberStatus
from papermail.subscribers import core, links, preferences


def test_tokens_round_trip_and_reject_other_purposes(settings):
    token = links.make_token(settings, links.Purpose.UNSUBSCRIBE, 42)
    assert links.read_token(settings, links.Purpose.UNSUBSCRIBE, token) == [42]
    with pytest.raises(links.BadToken):
        links.read_token(settings, links.Purpose.CONFIRM, token)
    with pytest.raises(links.BadToken):
        links.read_token(settings, links.Purpose.UNSUBSCRIBE, token[:-2] + "xx")


def test_unsubscribe_tokens_survive_key_rotation_and_sixty_days(settings):
    with freeze_time("2026-01-01"):
        token = links.make_token(settings, links.Purpose.UNSUBSCRIBE, 7)
    rotated = replace(settings, secret_key="new-key", old_secret_keys=(settings.secret_key,))
    with freeze_time("2026-01-01") as frozen:
        frozen.tick(timedelta(days=61))
        assert links.read_token(rotated, links.Purpose.UNSUBSCRIBE, token) == [7]
        with pytest.raises(links.BadToken):
            links.read_token(replace(rotated, old_secret_keys=()), links.Purpose.UNSUBSCRIBE, token)


@pytest.mark.parametrize("purpose", list(links.Purpose))
def test_tokens_are_plain_itsdangerous_tokens_both_ways(settings, purpose):
    # The signer and serializer are kept between tokens for speed; the links must not change.
    rotated = replace(settings, secret_key="new-key-" + "n" * 30, old_secret_keys=(settings.secret_key,))
    plain = URLSafeTimedSerializer([settings.secret_key, rotated.secret_key], salt=f"papermail.{purpose}")
    plain_old_key = URLSafeTimedSerializer(settings.secret_key, salt=f"papermail.{purpose}")
    with freeze_time("2026-01-01") as frozen:
        for _ in range(2):  # the second time, a later second
            assert links.make_token(rotated, purpose, 7, "tag") == plain.dumps([7, "tag"])
            assert plain.loads(links.make_token(rotated, purpose, 7, "tag")) == [7, "tag"]
            assert links.read_token(rotated, purpose, plain.dumps([7, "tag"])) == [7, "tag"]
            assert links.read_token(rotated, purpose, plain_old_key.dumps([7])) == [7]
            frozen.tick(timedelta(seconds=2))


def test_confirm_tokens_expire(settings):
    with freeze_time("2026-01-01") as frozen:
        token = links.make_token(settings, links.Purpose.CONFIRM, 1)
        frozen.tick(timedelta(hours=73))
        with pytest.raises(links.BadToken):
            links.read_token(settings, links.Purpose.CONFIRM, token)


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
    assert core.normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "not-an-address", "a@b\r\nBcc: evil@x.org", "x" * 250 + "@example.com", "<b>@x.org"]
)
def test_bad_addresses_are_refused_with_a_message(raw):
    with pytest.raises(core.InvalidInput):
        core.normalise_email(raw)


def test_preferences_are_validated():
    prefs = preferences.parse_preferences(
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
        with pytest.raises(core.InvalidInput):
            preferences.parse_preferences(**bad)


def test_suppressed_addresses_are_never_mailable(session):
    person = Subscriber(email="a@example.org", status=SubscriberStatus.ACTIVE, created_at=_now())
    session.add(person)
    session.flush()
    assert core.is_mailable(session, person)
    core.suppress(session, "a@example.org", "complaint")
    core.suppress(session, "a@example.org", "complaint")
    assert not core.is_mailable(session, person)


def _now():
    from papermail import clock

    return clock.now()

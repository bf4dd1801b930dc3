"""Shared domain pieces: signed tokens, address normalisation, preferences, email templates."""

import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer

from papermail.db.models import Subscriber, SubscriberStatus
from papermail.mail.templates import EmailTemplates, TemplateError
from papermail.resources import templates_dir
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


@pytest.fixture
def email_root(tmp_path):
    shutil.copytree(templates_dir() / "email" / "_base", tmp_path / "email" / "_base")
    sample = tmp_path / "email" / "sample"
    sample.mkdir()
    (sample / "subject.txt").write_text("Hello\n  {{ name }}\n")
    (sample / "body.txt").write_text("Hi {{ name }}\n{% include 'email/_base/footer.txt' %}")
    (sample / "body.mjml").write_text(
        '<mjml><mj-include path="_base/head.mjml" /><mj-body><mj-include path="_base/header.mjml" />'
        '<mj-section><mj-column><mj-text><a href="{{ url }}">{{ name }}</a>'
        "{% if items %}{{ items|length }}{% endif %}</mj-text></mj-column></mj-section>"
        '<mj-include path="_base/footer.mjml" /></mj-body></mjml>'
    )
    return tmp_path


def test_mjml_is_compiled_once_and_jinja_survives_it(email_root):
    templates = EmailTemplates(email_root)
    context = {
        "name": "<img src=x onerror=alert(1)>",
        "url": "https://a.example/?q=1&r=2",
        "items": [1, 2],
        "footer_reason": "You asked for it.",
        "postal_address": "1 Street",
    }
    first = templates.render("sample", context)
    assert first.subject == "Hello <img src=x onerror=alert(1)>"
    assert "&lt;img src=x onerror=alert(1)&gt;" in first.html
    assert 'href="https://a.example/?q=1&amp;r=2"' in first.html
    assert "<img" not in first.html
    assert "You asked for it." in first.text
    compiled = templates.html_template("sample")
    templates.render("sample", context)
    assert templates.html_template("sample") is compiled
    assert templates.names() == ["sample"]
    with pytest.raises(TemplateError):
        templates.html_template("missing")

"""The hand-built MIME: byte-valid, parsed back by the stdlib, and impossible to inject headers into."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from email import message_from_string, policy

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from papermail.mail.message import MessageBuildError, OutgoingEmail, build_message, make_message_id
from tests.digest.builders import parse_message, part_text, same_html

MAIL_FROM = "papermail <digest@papermail.test>"
DATE = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
LIST_HEADERS = {
    "List-Id": "papermail digest <digest.papermail.test>",
    "List-Unsubscribe": "<https://papermail.test/unsubscribe/abc.def-ghi_jkl>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def build(email: OutgoingEmail, **kwargs) -> bytes:
    options = {"mail_from": MAIL_FROM, "message_id": "<m1@papermail.test>", "date": DATE} | kwargs
    return build_message(email, **options)


def sample(**changes) -> OutgoingEmail:
    fields = {
        "to": "ann@example.org",
        "subject": "Week 48, 2026: Attention is all you need and 9 more",
        "text": "Hello\n\nA paper.\n",
        "html": '<p>Hello</p><p class="x">A paper.</p>',
        "headers": LIST_HEADERS,
    } | changes
    return OutgoingEmail(**fields)


BODIES = {
    "ascii": "Plain words = and a trailing space \nand a tab\t\n.leading dot\nFrom the start\n",
    "accents": "Rémy Ollivier, Przemysław Kowalski: naïve café résumé, 5 µm, ≤ 3 \u00d7 10⁻⁶\n",
    "cjk": "大型语言模型的训练需要大量的内存。我们提出了一种新的优化器。" * 20,
    "emoji": "🚀 Trending: 🔥🔥🔥 and a long line " + "word " * 400,
    "no final newline": "x" * 5000,
    "bare CR and CRLF": "one\rtwo\r\nthree\n",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_parts_round_trip_in_order_with_every_required_header(body):
    raw = build(sample(text=body, html=f"<p>{body}</p>"))
    message = parse_message(raw)
    for name in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version"):
        assert len(message.get_all(name)) == 1, name
    assert message["Message-ID"] == "<m1@papermail.test>"
    assert message["Message-ID"].rpartition("@")[2].rstrip(">") == "papermail.test"  # the From domain
    assert message["Date"].datetime == DATE
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    normalised = body.replace("\r\n", "\n").replace("\r", "\n")
    assert part_text(message, "plain").rstrip("\n") == normalised.rstrip("\n")
    assert same_html(part_text(message, "html"), f"<p>{normalised}</p>")


@pytest.mark.parametrize(
    ("body", "text_encoding", "html_encoding"),
    [
        ("The naïve baseline of Rémy Ollivier. " + "words " * 300, "quoted-printable", "7bit"),
        (BODIES["cjk"], "base64", "base64"),
        ("a" * 3000, "quoted-printable", "quoted-printable"),  # nowhere to break the HTML line
        ("nul\x00 and form feed\x0c", "quoted-printable", "quoted-printable"),  # not allowed in 7bit
    ],
)
def test_each_part_gets_the_cheapest_valid_transfer_encoding(body, text_encoding, html_encoding):
    message = parse_message(build(sample(text=body, html=f"<p>{body}</p>")))
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == text_encoding
    assert message.get_body(("html",))["Content-Transfer-Encoding"] == html_encoding
    assert part_text(message, "plain").rstrip("\n") == body
    assert same_html(part_text(message, "html"), f"<p>{body}</p>")


def test_text_only_message_is_a_single_part():
    message = parse_message(build(sample(html=None)))
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Hello\n\nA paper.\n"


def test_extra_headers_are_written_once_each():
    message = parse_message(build(sample()))
    for name, value in LIST_HEADERS.items():
        assert message.get_all(name) == [value]


def test_non_ascii_and_long_headers_are_encoded_and_folded():
    subject = "Über große Sprachmodelle: ein Überblick — " + "sehr lange Überschrift " * 12
    long_ascii = "A title " * 30
    unbreakable = "x" * 3000
    display = 'Papier, "Mail" Ärger'
    quoted = display.replace('"', '\\"')
    for text in (subject, long_ascii, unbreakable):
        raw = build(sample(subject=text), mail_from=f'"{quoted}" <digest@papermail.test>')
        message = parse_message(raw)
        assert message["Subject"] == text
        assert message["From"].addresses[0].display_name == display
        assert message["From"].addresses[0].addr_spec == "digest@papermail.test"
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()


def test_a_unicode_local_part_stays_utf8_for_smtputf8():
    raw = build(sample(to="jürgen@example.org"))
    parse_message(raw)
    # RFC 6532: the header is raw UTF-8, which the stdlib reads when given text.
    message = message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "jürgen@example.org"


INJECTIONS = [
    "x\r\nBcc: evil@example.org",
    "x\nBcc: evil@example.org",
    "x\rBcc: y",
    "x\x00",
    "x\x1b[31m",
    "x\u2028y",
]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("where", ["to", "subject", "header value", "mail_from", "message_id"])
def test_control_characters_in_any_header_value_refuse_the_message(value, where):
    email, kwargs = sample(), {}
    if where == "to":
        email = sample(to=f"ann@example.org{value}")
    elif where == "subject":
        email = sample(subject=value)
    elif where == "header value":
        email = sample(headers={"List-Id": value})
    elif where == "mail_from":
        kwargs["mail_from"] = f"papermail <digest@papermail.test>{value}"
    else:
        kwargs["message_id"] = f"<m{value}@papermail.test>"
    with pytest.raises(MessageBuildError):
        build(email, **kwargs)


@pytest.mark.parametrize(
    "headers",
    [
        {"Bcc: evil@example.org\r\nX": "1"},
        {"X Space": "1"},
        {"Subject": "second"},
        {"content-type": "text/x"},
    ],
)
def test_extra_header_names_cannot_inject_or_override(headers):
    with pytest.raises(MessageBuildError):
        build(sample(headers=headers))


@pytest.mark.parametrize("to", ["", "not an address", "a@example.org, b@example.org", "<a@b>, c@d"])
def test_recipient_must_be_exactly_one_address(to):
    with pytest.raises(MessageBuildError):
        build(sample(to=to))


def test_date_must_be_aware_and_message_id_well_formed():
    with pytest.raises(MessageBuildError):
        build(sample(), date=datetime(2026, 11, 26))
    with pytest.raises(MessageBuildError):
        build(sample(), message_id="no-angle-brackets@papermail.test")
    assert make_message_id(MAIL_FROM).endswith("@papermail.test>")
    assert make_message_id(MAIL_FROM) != make_message_id(MAIL_FROM)


@given(subject=st.text(max_size=300), extra=st.text(max_size=200))
def test_no_subject_or_header_text_can_add_a_header(subject, extra):
    try:
        raw = build(sample(subject=subject, headers={"X-Note": extra}))
    except MessageBuildError:
        return  # refused: nothing was built, nothing was injected
    message = parse_message(raw)
    names = [name.lower() for name in message]
    assert names == ["date", "message-id", "from", "to", "subject", "mime-version", "x-note", "content-type"]
    assert message["Subject"] == " ".join(subject.split()) or message["Subject"] == subject
    assert str(message["X-Note"]) in (extra, " ".join(extra.split()))


@given(body=st.text(max_size=3000))
def test_any_body_text_round_trips_in_both_parts(body):
    written = body.replace("\r\n", "\n").replace("\r", "\n")
    assume(">\n<" not in written)  # same_html can't tell an added line break from a written one
    message = parse_message(build(sample(text=body, html=body)))
    assert part_text(message, "plain").rstrip("\n") == written.rstrip("\n")
    assert same_html(part_text(message, "html"), written)


TRICKY_LINE = st.text(st.sampled_from("ab =\t.é★"), max_size=90) | st.text(max_size=90)


@given(lines=st.lists(TRICKY_LINE, max_size=8))
def test_a_quoted_printable_text_part_is_b2a_qp_of_the_whole_text(lines):
    # A mostly ASCII line with one "é" makes the part quoted-printable rather than 7bit (mostly
    # non-ASCII text goes as base64 instead, and is left out); no bare CRs.
    anchor = "a line in plain words with one é, as a digest's lines are"
    text = "".join(f"{line}\n" for line in [*lines, anchor]).replace("\r", "")
    for _ in range(2):  # the second time, from the lines encoded the first
        head, _, body = build(sample(text=text, html=None)).partition(b"\r\n\r\n")
        assume(b"quoted-printable" in head)
        assert body == binascii.b2a_qp(text.encode().replace(b"\n", b"\r\n") or b"\r\n", istext=True)

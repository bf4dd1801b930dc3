"""Turning a rendered email into RFC 5322 bytes ready for SMTP.

The MIME is assembled by hand. ``email.message.EmailMessage`` costs about 15 ms for a 100 KB
digest, most of it in its policy machinery; the C codecs in :mod:`binascii` and :mod:`base64` do the
same encoding in a fraction of a millisecond. What the stdlib would have guaranteed is guaranteed
here instead, and tests parse every shape back with the ``email`` package:

- CRLF line endings only, and no line over 998 octets: the text part is quoted-printable, the
  HTML part 7bit (non-ASCII as character references, long lines broken between tags), and either is
  base64 when it is mostly non-ASCII;
- non-ASCII header text as RFC 2047 encoded-words;
- no header injection: CR, LF or any other control character in a header value raises
  :class:`MessageBuildError`, so a bad value fails one message and never adds a header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parseaddr
from functools import lru_cache

CRLF = "\r\n"
MAX_LINE_OCTETS = 998  # RFC 5322 §2.1.1: MUST
FOLD_AT = 78  # RFC 5322 §2.1.1: SHOULD
# 45 bytes of UTF-8 become 60 base64 characters: with "=?utf-8?b?" and "?=" that is 72, under
# the 75 an encoded-word may have (RFC 2047 §2).
ENCODED_WORD_BYTES = 45
BASE64_LINE = 76  # RFC 2045 §6.8: encoded lines of at most 76 characters
# A part is "mostly ASCII" when spelling its other characters out (=XX or &#NNN;) grows it by less
# than base64 would, which is by a third.
MOSTLY_ASCII = 4 / 3
# A line break would start a new header (injection). Other controls have no business in a header,
# and NEL / LINE SEPARATOR / PARAGRAPH SEPARATOR are line breaks to str.splitlines and some parsers.
_FORBIDDEN_IN_HEADER = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_FOLD_POINT = re.compile(r" (?=\S)")
_HEADER_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 ftext: printable ASCII except ":"
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\\\"@]+@[^\s<>()\[\],;:\\\"@]+\Z")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>\Z")
_QUOTE_NEEDED = re.compile(r"[()<>\[\]:;@\\,.\"]")
# The headers build_message writes itself: an extra header may not add a second one.
_OWN_HEADERS = frozenset(
    (
        "date",
        "message-id",
        "from",
        "to",
        "subject",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    )
)
QP_CACHED_LINES = 20_000  # about two batches of digests' distinct lines, a few MB at most
_QP_LINES: dict[bytes, bytes] = {}  # a text line -> its quoted-printable form, with CRLF
_HIGH_BYTES = bytes(range(128, 256))
_CONTROL_BYTES = bytes([*range(0, 9), *range(11, 32), 127])  # not allowed in a 7bit part


class MessageBuildError(ValueError):
    """The message cannot be built (for example a header value with a line break)."""


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email: who it is for, its parts, and extra headers such as List-Unsubscribe."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def sender_domain(mail_from: str) -> str:
    """The domain of a From setting like ``papermail <digest@example.org>``."""
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


def make_message_id(mail_from: str) -> str:
    """A globally unique Message-ID on our own domain."""
    return f"<{uuid.uuid4().hex}@{sender_domain(mail_from)}>"


def build_message(email: OutgoingEmail, *, mail_from: str, message_id: str, date: datetime) -> bytes:
    """Serialise ``email`` as CRLF MIME bytes: text first, HTML last (multipart/alternative)."""
    if date.tzinfo is None:
        raise MessageBuildError(f"naive Date {date!r}: use papermail.clock.now()")
    _check_value("Message-ID", message_id)
    if not _MESSAGE_ID.match(message_id):
        raise MessageBuildError(f"Message-ID must look like <unique@domain>, got {message_id!r}")
    lines = [
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        _address_header("From", mail_from),
        _address_header("To", email.to),
        _unstructured_header("Subject", email.subject),
        "MIME-Version: 1.0",
    ]
    for name, value in email.headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise MessageBuildError(f"extra header name {name!r} is not allowed")
        lines.append(_unstructured_header(name, value))
    head = CRLF.join(lines).encode("utf-8")
    if email.html is None:
        cte, body = _encode_body(email.text, html=False)
        part_head = f'Content-Type: text/plain; charset="utf-8"{CRLF}Content-Transfer-Encoding: {cte}'
        return b"".join((head, b"\r\n", part_head.encode(), b"\r\n\r\n", body))
    # "=_" never occurs in quoted-printable or base64 output, and a 7bit HTML part would need this
    # exact hash on a line of its own, so the boundary can't occur in a part.
    boundary = "=_pm_" + hashlib.blake2b(message_id.encode(), digest_size=12).hexdigest()
    pieces = [
        head,
        f'{CRLF}Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}{CRLF}'.encode(),
    ]
    for subtype, content in (("plain", email.text), ("html", email.html)):
        cte, body = _encode_body(content, html=subtype == "html")
        pieces.append(
            f'--{boundary}{CRLF}Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: {cte}{CRLF}{CRLF}".encode()
        )
        pieces.append(body)
    pieces.append(f"--{boundary}--{CRLF}".encode())
    return b"".join(pieces)


def _encode_body(text: str, *, html: bool) -> tuple[str, bytes]:
    """The transfer encoding and the encoded bytes (ending in CRLF) of one text part."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        # b2a_qp takes its line ending from the first one it sees: make sure there is a CRLF.
        text += "\n"
    if html:
        # HTML can spell any character as &#NNN; and take a line break between tags: then it needs
        # no transfer encoding at all, the cheapest and smallest form, and stays readable.
        plain = text.encode("ascii", "xmlcharrefreplace")
        if len(plain) < MOSTLY_ASCII * len(text) and not _has_control_bytes(plain):
            lines = _lines_within_limit(plain.split(b"\n"))
            if lines is not None:
                return "7bit", b"\r\n".join(lines)
    data = text.encode("utf-8").replace(b"\n", b"\r\n")
    high = 0 if data.isascii() else len(data) - len(data.translate(None, _HIGH_BYTES))
    if len(data) + 2 * high < MOSTLY_ASCII * len(data):
        # Quoted-printable keeps mostly-English text readable in the raw message.
        return "quoted-printable", _quoted_printable(data)
    # Mostly non-ASCII (quoted-printable would triple it), or HTML that couldn't be 7bit.
    encoded = base64.b64encode(data)
    lines = [encoded[start : start + BASE64_LINE] for start in range(0, len(encoded), BASE64_LINE)]
    return "base64", b"\r\n".join(lines) + b"\r\n"


def _quoted_printable(data: bytes) -> bytes:
    """``binascii.b2a_qp(data, istext=True)`` of CRLF text ending in CRLF, a line at a time.

    Quoted-printable encodes each line on its own, and the digests of a batch share most of their
    lines (a paper's card), so each line is encoded once and then taken from a cache. A line is
    encoded with its CRLF, which makes b2a_qp write CRLF soft line breaks too.
    """
    if len(_QP_LINES) > QP_CACHED_LINES:
        _QP_LINES.clear()
    encoded = []
    for line in data.split(b"\r\n")[:-1]:
        done = _QP_LINES.get(line)
        if done is None:
            done = _QP_LINES[line] = binascii.b2a_qp(line + b"\r\n", istext=True)
        encoded.append(done)
    return b"".join(encoded)


def _has_control_bytes(data: bytes) -> bool:
    """True if ``data`` has a byte a 7bit part may not carry (NUL, other controls, DEL)."""
    return len(data.translate(None, _CONTROL_BYTES)) != len(data)


def _lines_within_limit(lines: list[bytes]) -> list[bytes] | None:
    """HTML lines, long ones broken between two tags (or else at a space); None if that fails.

    A line break between ``>`` and ``<`` is whitespace between tags, which the layout ignores
    (MJML's own unminified output is full of it); it never lands inside an Outlook conditional
    comment's condition or an attribute value, where a space might.
    """
    if all(len(line) <= MAX_LINE_OCTETS for line in lines):
        return lines
    short: list[bytes] = []
    for line in lines:
        start = 0
        while len(line) - start > MAX_LINE_OCTETS:
            end = start + MAX_LINE_OCTETS
            cut = line.rfind(b"><", start, end) + 1
            if cut > start:
                short.append(line[start:cut])
                start = cut
                continue
            cut = line.rfind(b" ", start, end)
            if cut <= start:
                return None
            short.append(line[start:cut])
            start = cut + 1
        short.append(line[start:])
    return short


def _check_value(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise MessageBuildError(f"{name} must be text, got {type(value).__name__}")
    if _FORBIDDEN_IN_HEADER.search(value):
        raise MessageBuildError(f"{name} contains a line break or control character: {value[:80]!r}")


def _unstructured_header(name: str, value: str) -> str:
    """``Name: value``, folded at spaces, or as encoded-words when it isn't plain ASCII."""
    _check_value(name, value)
    if value.isascii() and "=?" not in value:
        folded = _fold(name, value)
        if folded is not None:
            return folded
    # Encoded-words can be split anywhere, so this also carries an ASCII word too long to fold.
    return f"{name}: " + f"{CRLF} ".join(_encoded_words(value))


def _fold(name: str, value: str) -> str | None:
    """``Name: value`` folded at spaces to about 78 characters, or None if a piece stays over 998."""
    if len(name) + 2 + len(value) <= FOLD_AT:
        return f"{name}: {value}"
    # Fold only at a space followed by text: unfolding (dropping the CRLF) gives the value back
    # exactly, and no continuation line is whitespace only. The name keeps its first word.
    first, *rest = _FOLD_POINT.split(value)
    folded: list[str] = []
    current = f"{name}: {first}"
    for word in rest:
        if len(current) + 1 + len(word) > FOLD_AT:
            folded.append(current)
            current = word
        else:
            current = f"{current} {word}"
    folded.append(current)
    if max(map(len, folded)) > MAX_LINE_OCTETS:
        return None
    return f"{CRLF} ".join(folded)


def _encoded_words(text: str) -> Iterator[str]:
    """RFC 2047 base64 encoded-words of at most 75 characters, never splitting a character."""
    data = text.encode("utf-8")
    start = 0
    while start < len(data):
        end = min(start + ENCODED_WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            end -= 1
        yield f"=?utf-8?b?{base64.b64encode(data[start:end]).decode()}?="
        start = end


@lru_cache(maxsize=1024)
def _address_header(name: str, value: str) -> str:
    """``Name: "Display" <addr>``; a non-ASCII address is kept as UTF-8 (RFC 6532, SMTPUTF8)."""
    _check_value(name, value)
    if _ADDR_SPEC.match(value):  # the usual case, a bare address: nothing to parse
        return f"{name}: {value}"
    display, address = parseaddr(value)
    # parseaddr quietly keeps the first of several addresses: insist the value was just one.
    written_as_one = value.strip() == address or value.rstrip().endswith(f"<{address}>")
    if not _ADDR_SPEC.match(address) or not written_as_one:
        raise MessageBuildError(f"{name} is not one email address: {value!r}")
    if not display:
        return f"{name}: {address}"
    if not display.isascii():
        phrase = " ".join(_encoded_words(display))
    elif _QUOTE_NEEDED.search(display):
        phrase = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = display
    header = _fold(name, f"{phrase} <{address}>")
    if header is None:
        raise MessageBuildError(f"{name} is longer than a header line may be")
    return header

"""Reading a returned message: what kind of report it is, which recipients failed, and why.

In this order: an ARF complaint (RFC 5965), a standard DSN (RFC 3464) anywhere in the message
(nested or forwarded reports too), an auto-reply, and then the non-standard formats through
``flufl.bounce``'s detectors. Our own traces are read from the whole message, wherever the
reporting MTA put the returned headers: VERP tokens, the original Message-ID and the
List-Unsubscribe URL. Nothing here raises on bad input: a message that can't be read is
``unparsed`` and kept.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

from papermail.bounces.classify import classify, find_status, verdict_from_text
from papermail.bounces.outcome import ReportKind
from papermail.db.models import BounceVerdict

log = logging.getLogger(__name__)

# How much of a human-readable part is read for a verdict: the explanation comes first.
TEXT_LIMIT = 8000
SUCCESS_ACTIONS = ("delivered", "relayed", "expanded")
COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
_UNSUBSCRIBE_URL = re.compile(r"^list-unsubscribe:[^\n]*?<(https?://[^>\s]+)>", re.IGNORECASE | re.MULTILINE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|on leave|"
    r"away from|abwesenheit|absence|r[ée]ponse automatique|autoreply)",
    re.IGNORECASE,
)
# Where an MTA starts quoting the returned message: its text explains nothing about the failure.
_RETURNED_PART = re.compile(
    r"^-+ ?(start of |begin )?(returned|original|undelivered|below this line)|"
    r"\bcopy of (the|your) (original )?message|^received: |^return-path: |^message-id: ",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_SUBJECT = re.compile(r"^\s*subject:.*$", re.IGNORECASE | re.MULTILINE)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (system|subsystem)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|fail|problem|notification)|returned mail|failure notice|"
    r"mail delivery failed|could not be delivered|non[- ]?delivery|nicht zustellbar|rejected|mail error",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RecipientReport:
    """A recipient a report names, with its verdict."""

    address: str
    verdict: BounceVerdict
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class Report:
    """What a returned message says."""

    kind: ReportKind
    recipients: tuple[RecipientReport, ...] = ()
    reporting_mta: str | None = None
    # The verdict on a report that names nobody (or only addresses we don't know), applied only
    # to a subscriber whose signed token it carries.
    verdict: BounceVerdict = BounceVerdict.NONE
    diagnostic: str | None = None
    text: str = ""  # the whole message as text, where our tokens are looked for
    original_message_ids: tuple[str, ...] = ()
    unsubscribe_urls: tuple[str, ...] = ()


def read_report(raw: bytes) -> Report:
    """What ``raw`` is; never raises (a message that breaks the parser is ``unparsed``)."""
    try:
        return _read(raw)
    except Exception:  # broken MIME and charsets can break the stdlib parser or a detector anywhere
        log.warning("could not read a returned message of %d bytes", len(raw), exc_info=True)
        return Report(ReportKind.UNPARSED, text=raw.decode("latin-1"))


def _read(raw: bytes) -> Report:
    text = raw.decode("latin-1")
    if not raw.strip():
        return Report(ReportKind.UNPARSED, text=text)
    message = email.message_from_bytes(raw)
    message_ids = _MESSAGE_ID.findall(text)
    own_id = (message.get("Message-ID") or "").strip() if message_ids else ""
    traces = {
        "text": text,
        # Every Message-ID in the text but the report's own: the returned message's, wherever it is.
        "original_message_ids": tuple(dict.fromkeys(m for m in message_ids if m != own_id)),
        "unsubscribe_urls": tuple(dict.fromkeys(_UNSUBSCRIBE_URL.findall(text))),
    }
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/feedback-report":
            return _complaint(message, part, **traces)
        if content_type == "message/delivery-status":
            report = _delivery_status(part, **traces)
            if report is not None:
                return report
    if _is_auto_reply(message):
        return Report(ReportKind.AUTO_REPLY, **traces)
    return _non_standard(message, **traces)


def _fields(part: Message) -> list[Message]:
    """The header blocks of a report part, however the parser took it apart."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [block for block in payload if isinstance(block, Message)]
    else:
        body = payload if isinstance(payload, str) else ""
        blocks = [email.message_from_string(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", body)]
    return [block for block in blocks if len(block)]


def _value(block: Message, name: str) -> str | None:
    """A field's value as one clean line, without the ``rfc822;`` type prefix."""
    value = block.get(name)
    if value is None:
        return None
    value = " ".join(str(value).split())
    if ";" in value and name.lower() != "diagnostic-code":
        value = value.split(";", 1)[1].strip()
    return value or None


def _address(value: str | None) -> str | None:
    if not value:
        return None
    found = _ADDRESS.search(value)
    return found.group(0).strip(".").lower() if found else None


def _delivery_status(part: Message, **traces) -> Report | None:
    blocks = _fields(part)
    if not blocks:
        return None
    reporting_mta = _value(blocks[0], "Reporting-MTA") or _value(blocks[0], "Received-From-MTA")
    recipients: dict[str, RecipientReport] = {}
    for block in blocks:
        address = _address(_value(block, "Final-Recipient") or _value(block, "Original-Recipient"))
        if address is None or address in recipients:
            continue
        recipients[address] = _recipient(address, block)
    if not recipients:
        return None
    failed = any(r.verdict != BounceVerdict.NONE for r in recipients.values())
    kind = ReportKind.BOUNCE if failed else ReportKind.DELIVERY_REPORT
    return Report(kind, tuple(recipients.values()), reporting_mta, **traces)


def _recipient(address: str, block: Message) -> RecipientReport:
    action = (_value(block, "Action") or "").lower()
    diagnostic = _value(block, "Diagnostic-Code")
    status = find_status(_value(block, "Status")) or find_status(diagnostic)
    if action in SUCCESS_ACTIONS:
        verdict = BounceVerdict.NONE
    elif action == "delayed":
        verdict = BounceVerdict.SOFT
    else:
        verdict = classify(status, diagnostic, default=BounceVerdict.HARD)
    return RecipientReport(address, verdict, status, diagnostic and diagnostic[:1000])


def _complaint(message: Message, part: Message, **traces) -> Report:
    blocks = _fields(part)
    fields = blocks[0] if blocks else Message()
    feedback_type = (_value(fields, "Feedback-Type") or "abuse").lower()
    if feedback_type in COMPLAINT_TYPES:
        verdict = BounceVerdict.COMPLAINT
    elif feedback_type == "auth-failure":
        verdict = BounceVerdict.SENDER
    else:
        verdict = BounceVerdict.NONE  # "not-spam": the reader took it back
    named = [a for _, a in getaddresses(fields.get_all("Original-Rcpt-To", []))]
    if not named:
        named = [a for _, a in getaddresses(_returned_headers(message).get_all("To", []))]
    recipients = tuple(
        dict.fromkeys(
            RecipientReport(address.lower(), verdict, diagnostic=f"feedback-type: {feedback_type}")
            for address in named
            if "@" in address
        )
    )
    reporting_mta = _value(fields, "Reporting-MTA") or _value(fields, "User-Agent")
    kind = ReportKind.COMPLAINT if verdict == BounceVerdict.COMPLAINT else ReportKind.NOT_A_REPORT
    return Report(kind, recipients, reporting_mta, verdict=verdict, **traces)


def _returned_headers(message: Message) -> Message:
    """The headers of the message a report returns (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if part.get_content_type() == "text/rfc822-headers":
            return email.message_from_string(_part_text(part))
    return Message()


def _is_auto_reply(message: Message) -> bool:
    """Vacation notices and autoresponders (RFC 3834 and the usual vendor headers)."""
    if _looks_like_bounce(message):
        return False
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no" or message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if (message.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(str(message.get("Subject") or "")))


def _looks_like_bounce(message: Message) -> bool:
    sender = f"{message.get('From') or ''} {message.get('Return-Path') or ''}"
    return bool(_BOUNCE_SENDER.search(sender) or _BOUNCE_SUBJECT.search(str(message.get("Subject") or "")))


def _non_standard(message: Message, **traces) -> Report:
    explanation = _explanation(message)
    temporary, permanent = all_failures(message)
    # One explanation for every address the detectors found: classified once per kind of failure.
    status, diagnostic = find_status(explanation), explanation[:1000] or None
    recipients: dict[str, RecipientReport] = {}
    for found, default in ((permanent, BounceVerdict.HARD), (temporary, BounceVerdict.SOFT)):
        verdict = classify(status, explanation, default=default) if found else default
        for raw_address in sorted(found):
            address = _address(raw_address.decode("utf-8", "replace"))
            if address and address not in recipients:
                recipients[address] = RecipientReport(address, verdict, status, diagnostic)
    reporting_mta = _address(str(message.get("From") or "")) or None
    if recipients:
        return Report(ReportKind.BOUNCE, tuple(recipients.values()), reporting_mta, **traces)
    if _looks_like_bounce(message):
        return Report(
            ReportKind.UNPARSED,
            (),
            reporting_mta,
            verdict=verdict_from_text(explanation) or BounceVerdict.NONE,
            diagnostic=diagnostic,
            **traces,
        )
    return Report(ReportKind.NOT_A_REPORT, **traces)


def _explanation(message: Message) -> str:
    """The first human-readable part, where an MTA explains the failure."""
    for part in message.walk():
        if part.get_content_maintype() == "message":
            break  # the returned message itself says nothing about why it failed
        if part.get_content_type() == "text/plain":
            text = _part_text(part)[:TEXT_LIMIT]
            quoted = _RETURNED_PART.search(text)
            # The returned message's Subject is quoted too, and its words ("Virus alert") explain nothing.
            own_words = _QUOTED_SUBJECT.sub("", text[: quoted.start()] if quoted else text)
            return " ".join(own_words.split())
    return ""


def _part_text(part: Message) -> str:
    """A text part decoded; unknown or lying charsets fall back to Latin-1, which never fails."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", "replace")
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1")

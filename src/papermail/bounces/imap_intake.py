"""``papermail bounces fetch``: take the reports waiting in an IMAP mailbox (``PAPERMAIL_BOUNCE_IMAP_URL``).

For operators whose bounce address is an ordinary mailbox. Only IMAP over TLS (``imaps://``), with
the certificate checked (``PAPERMAIL_BOUNCE_IMAP_CA_FILE`` for a private CA). Messages are read in
batches; each batch is stored and committed first, and only then deleted from the mailbox. A crash
in between leaves them there, and the next fetch stores them again: the copy is recognised as the
same report (its Message-ID) and changes nothing. Nothing is deleted that was not committed.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from papermail.bounces.store import Received, store_and_commit
from papermail.config import Settings

BATCH_SIZE = 100
IMAPS_PORT = 993
_LITERAL_SIZE = re.compile(rb"\{(\d+)\}$")


class MailboxError(Exception):
    """The mailbox could not be read (unreachable, refused login, no such folder): one line."""


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did: the ids of the stored messages, and the mailbox they came from."""

    stored: list[int]
    mailbox: str


@dataclass(frozen=True)
class MailboxAddress:
    host: str
    port: int
    user: str
    password: str
    mailbox: str


def mailbox_address(url: str) -> MailboxAddress:
    """The parts of ``imaps://user:password@host[:port][/mailbox]`` (percent-escapes decoded)."""
    parts = urlsplit(url)
    return MailboxAddress(
        host=parts.hostname or "",
        port=parts.port or IMAPS_PORT,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def fetch_mailbox(settings: Settings, *, limit: int = 10_000) -> FetchResult:
    """Store up to ``limit`` waiting messages, deleting each batch only after its commit."""
    if settings.bounce_imap_url is None:
        raise MailboxError("PAPERMAIL_BOUNCE_IMAP_URL is not set")
    address = mailbox_address(settings.bounce_imap_url)
    stored: list[int] = []
    try:
        with _connect(settings, address) as imap:
            _ok(imap.select(_quoted(address.mailbox)), f"cannot open the mailbox {address.mailbox!r}")
            uids = _ok(imap.uid("SEARCH", "UNDELETED"), "SEARCH failed")[0].split()[:limit]
            for start in range(0, len(uids), BATCH_SIZE):
                batch = uids[start : start + BATCH_SIZE]
                stored += _store_batch(settings, imap, batch)
                _delete(imap, batch)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"IMAP {address.host}:{address.port}: {exc}") from None
    return FetchResult(stored, address.mailbox)


def _connect(settings: Settings, address: MailboxAddress) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(
        cafile=str(settings.bounce_imap_ca_file) if settings.bounce_imap_ca_file else None
    )
    try:
        imap = imaplib.IMAP4_SSL(
            address.host, address.port, ssl_context=context, timeout=settings.http_timeout_seconds
        )
    except OSError as exc:
        raise MailboxError(f"cannot reach IMAP {address.host}:{address.port}: {exc}") from None
    try:
        imap.login(address.user, address.password)
    except imaplib.IMAP4.error as exc:
        imap.shutdown()
        raise MailboxError(f"IMAP {address.host}: login as {address.user!r} refused: {exc}") from None
    return imap


def _store_batch(settings: Settings, imap: imaplib.IMAP4_SSL, uids: list[bytes]) -> list[int]:
    # At most the inbound size limit of each message is fetched: a report's own parts come first.
    part = f"BODY.PEEK[]<0.{settings.inbound_max_bytes}>"
    answer = _ok(imap.uid("FETCH", b",".join(uids).decode(), f"({part})"), "FETCH failed")
    messages = [item[1] for item in answer if isinstance(item, tuple) and _LITERAL_SIZE.search(item[0])]
    return store_and_commit(settings, [Received(raw) for raw in messages], via="imap")


def _delete(imap: imaplib.IMAP4_SSL, uids: list[bytes]) -> None:
    uid_set = b",".join(uids).decode()
    _ok(imap.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "marking messages deleted failed")
    if "UIDPLUS" in imap.capabilities:
        _ok(imap.uid("EXPUNGE", uid_set), "EXPUNGE failed")  # only ours, not others' deletions
    else:
        _ok(imap.expunge(), "EXPUNGE failed")


def _ok(answer: tuple[str, list], what: str) -> list:
    status, data = answer
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise MailboxError(f"{what}: {detail or status}")
    return data


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'

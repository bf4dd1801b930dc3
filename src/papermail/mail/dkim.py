"""DKIM signing (dkimpy), optional: on when ``PAPERMAIL_DKIM_KEY_PATH`` names a PEM private key.

Gmail and Yahoo want the one-click unsubscribe headers covered by a DKIM signature (RFC 8058
section 4), so they are always in ``h=``. Without a key here, the relay must sign them instead.
"""

from __future__ import annotations

from functools import cache

import dkim

from papermail.config import Settings
from papermail.mail.message import sender_domain

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)


class DkimSigner:
    """Prepends a DKIM-Signature (relaxed/relaxed, rsa-sha256) to serialised messages."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector, self.domain, self.private_key = selector.encode(), domain.encode(), private_key

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header first."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return signature + message


def signer_for(settings: Settings) -> DkimSigner | None:
    """The signer the settings ask for, or None when DKIM signing is off."""
    return _signer(settings.dkim_key_path, settings.dkim_selector, settings.dkim_domain, settings.mail_from)


@cache
def _signer(key_path, selector: str, domain: str | None, mail_from: str) -> DkimSigner | None:
    if key_path is None:
        return None
    return DkimSigner(selector, domain or sender_domain(mail_from), key_path.read_bytes())

"""VERP: a return path per message, ``bounces+<token>@domain``, naming the row it was sent for.

The token is ``d<delivery id>-<mac>`` or ``c<confirmation id>-<mac>``: a truncated HMAC-SHA256 of
the row under the secret key, in lower-case base32, since some MTAs lower-case local parts. It
never expires (bounces can come days later) and verifies under any key in
``PAPERMAIL_OLD_SECRET_KEYS`` too, so rotating the key doesn't orphan reports in flight. With
``PAPERMAIL_BOUNCE_ADDRESS`` unset there are no tokens: :func:`verp_sender_for` returns None.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass

from papermail.config import Settings

# 80 bits: a forged token is as likely as guessing a 16-character password.
MAC_CHARS = 16
_TOKEN = re.compile(r"(?P<kind>[dc])(?P<row>[1-9][0-9]{0,17})-(?P<mac>[a-z2-7]{16})\Z")


class VerpKind(enum.StrEnum):
    DELIVERY = "d"
    CONFIRMATION = "c"


@dataclass(frozen=True)
class VerpTarget:
    """The row a verified VERP token names."""

    kind: VerpKind
    row_id: int

    @property
    def delivery_id(self) -> int | None:
        return self.row_id if self.kind == VerpKind.DELIVERY else None

    @property
    def confirmation_id(self) -> int | None:
        return self.row_id if self.kind == VerpKind.CONFIRMATION else None


def _mac(key: str, kind: VerpKind, row_id: int) -> str:
    digest = hmac.new(key.encode(), f"papermail.verp:{kind.value}{row_id}".encode(), hashlib.sha256)
    return base64.b32encode(digest.digest()).decode("ascii")[:MAC_CHARS].lower()


def make_token(settings: Settings, kind: VerpKind, row_id: int) -> str:
    """The token naming this row, signed with the current key."""
    return f"{kind.value}{row_id}-{_mac(settings.secret_key, kind, row_id)}"


def read_token(settings: Settings, token: str) -> VerpTarget | None:
    """The row a token names, if its signature verifies under any of our keys; else None."""
    match = _TOKEN.match(token.lower())
    if match is None:
        return None
    kind, row_id = VerpKind(match["kind"]), int(match["row"])
    for key in (settings.secret_key, *settings.old_secret_keys):
        if hmac.compare_digest(_mac(key, kind, row_id), match["mac"]):
            return VerpTarget(kind, row_id)
    return None


def verp_sender_for(settings: Settings, kind: VerpKind, row_id: int) -> str | None:
    """The envelope sender for this row's message, or None when VERP is off."""
    if settings.bounce_address is None:
        return None
    local, _, domain = settings.bounce_address.partition("@")
    return f"{local}+{make_token(settings, kind, row_id)}@{domain}"


def _split(settings: Settings, address: str) -> tuple[str, str | None] | None:
    """``(local, token or None)`` if the address is our bounce address or a VERP form of it."""
    if settings.bounce_address is None:
        return None
    address = address.strip().strip("<>").lower()
    local, at, domain = address.rpartition("@")
    base_local, _, base_domain = settings.bounce_address.lower().partition("@")
    if not at or domain != base_domain:
        return None
    if local == base_local:
        return local, None
    prefix = base_local + "+"
    return (local, local[len(prefix) :]) if local.startswith(prefix) else None


def parse_verp_recipient(settings: Settings, address: str) -> VerpTarget | None:
    """The row named by a ``bounces+<token>@domain`` address, or None if it isn't one that verifies."""
    parts = _split(settings, address)
    if parts is None or parts[1] is None:
        return None
    return read_token(settings, parts[1])


def accepts_recipient(settings: Settings, address: str) -> bool:
    """True for the bounce address itself and its VERP forms whose token verifies (else: 550)."""
    parts = _split(settings, address)
    if parts is None:
        return False
    return parts[1] is None or read_token(settings, parts[1]) is not None

"""How secrets and addresses appear in logs and output."""

from __future__ import annotations

import hashlib


def mask_email(email: str) -> str:
    """An address fit for a log line: ``a***@example.org``."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def shown_email(email: str) -> str:
    """An address a page may show to whoever holds its link: ``a…e@example.org``."""
    local, _, domain = email.rpartition("@")
    ends = local[:1] + ("…" + local[-1] if len(local) > 2 else "…")
    return f"{ends}@{domain}"


def email_hash(email: str) -> str:
    """The SHA-256 of a normalised address: what a suppression keeps after the address is erased."""
    return hashlib.sha256(email.encode()).hexdigest()

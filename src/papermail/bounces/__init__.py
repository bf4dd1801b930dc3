"""Bounces and complaints: what comes back after papermail sent a message, and what it does.

The inbound SMTP server and IMAP store what arrives together with
:func:`~papermail.bounces.store.store_and_commit`; after the commit one task runs
:func:`process_inbound_messages` on them (the sweep runs :func:`process_inbound_message` on any left
waiting). ``bounces import`` stores and processes at once. Webhooks hand over parsed events to
:func:`apply_provider_event`. Both steps are idempotent. docs/bounces.md explains verdicts, policy
and VERP (the return paths that :mod:`papermail.sending.verp` writes and this package reads back).
"""

from papermail.bounces.outcome import Action, ProcessResult, ProviderEvent, RecipientOutcome, ReportKind
from papermail.bounces.process import apply_provider_event, process_inbound_message, process_inbound_messages
from papermail.bounces.store import MAX_STORED_BYTES
from papermail.sending.verp import VerpTarget, accepts_recipient, parse_verp_recipient

__all__ = [
    "MAX_STORED_BYTES",
    "Action",
    "ProcessResult",
    "ProviderEvent",
    "RecipientOutcome",
    "ReportKind",
    "VerpTarget",
    "accepts_recipient",
    "apply_provider_event",
    "parse_verp_recipient",
    "process_inbound_message",
    "process_inbound_messages",
]

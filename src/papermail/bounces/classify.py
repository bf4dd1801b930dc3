"""Verdicts from enhanced status codes (RFC 3463) and, where a code says little, from the text.

The rule of thumb: a verdict may suppress a reader only when the report blames the address
(``hard``) or the mailbox's state for a while (``soft``); anything that blames the message, the
sender, the relay or its reputation is ``sender``, which never suppresses anyone. When a text
matches both, ``sender`` wins, since wrongly suppressing a good reader is the worse mistake.

==============================  ========  =====================================================
status                          verdict   why
==============================  ========  =====================================================
2.x.x                           none      delivered
4.x.x                           soft      temporary by definition
5.1.7, 5.1.8                    sender    our own (envelope sender) address is refused
5.1.x (others)                  hard      bad mailbox, bad domain, moved (5.1.6), null MX (5.1.10)
5.2.2                           soft      mailbox full
5.2.3, 5.3.4                    sender    message too big
5.2.x (others)                  hard      mailbox disabled
5.3.x (others), 5.4.7           soft      the receiving system's trouble, or delivery expired
5.4.6, 5.5.x, 5.6.x, 5.7.x      sender    routing loop, protocol, content, policy, authentication
5.x.0 and the rest of 5.x.x     by text   then as above (``hard`` for 5.0.0) if the text says nothing
==============================  ========  =====================================================
"""

from __future__ import annotations

import re

from papermail.db.models import BounceVerdict

# Not inside a version number ("Mailman v2.0.13") or an IP address.
STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w.])")

SENDER_TEXT = re.compile(
    r"spam|junk mail|block ?list|black ?list|blocked|(?<!not )\blisted (at|on|in|by)\b|reputation|spamhaus|"
    r"\bpolicy\b|policies|\bspf\b|\bdkim\b|\bdmarc\b|authenticat|not authori[sz]ed|"
    r"relay(ing)? (access )?(denied|not permitted)|not permitted to relay|unable to relay|"
    r"content (rejected|filter)|virus|banned|rate limit|too many (connections|messages from)|"
    r"message (size|too (big|large))|size limit|sender (address )?rejected|sender denied|"
    r"not accepting mail from",
)
HARD_TEXT = re.compile(
    r"user ?unknown|unknown (user|recipient|local.?part|address)|no such (user|recipient|mailbox|address)|"
    r"does ?n[o']t exist|not exist|no mailbox|mailbox (unavailable|not found|does not exist)|"
    r"invalid (recipient|address|mailbox|user)|recipient (address )?rejected|address rejected|"
    r"has moved|no longer (valid|available|active|in use)|"
    r"account (has been |is )?(disabled|deactivated|closed|suspended|inactive|expired)|"
    r"(host|domain) (unknown|not found)|unknown (host|domain)|unrouteable|not our customer|"
    r"recipient not found|bad destination|undeliverable address|unknown or illegal alias|"
    r"user (not found|doesn't have)|doesn't have an? \S+ account|not a valid mailbox|"
    r"addressee unknown|name service error|mailbox disabled|not listed in",
)
SOFT_TEXT = re.compile(
    r"mailbox (is )?full|over ?quota|quota (exceeded|full|violation)|exceed(ed|s)? (the )?(storage|quota)|"
    r"insufficient (storage|space|disk)|out of (storage|space)|mailbox size limit|"
    r"defer|try (again )?later|temporar|greylist|graylist|delayed|will (retry|be retried)|"
    r"still (trying|being retried)|expired|timed? ?out|could not be delivered for \d",
)

_SPECIFIC: dict[str, BounceVerdict] = {
    "5.1.7": BounceVerdict.SENDER,
    "5.1.8": BounceVerdict.SENDER,
    "5.2.2": BounceVerdict.SOFT,
    "5.2.3": BounceVerdict.SENDER,
    "5.3.4": BounceVerdict.SENDER,
    "5.4.6": BounceVerdict.SENDER,
    "5.4.7": BounceVerdict.SOFT,
}
_BY_SUBJECT: dict[str, BounceVerdict] = {
    "1": BounceVerdict.HARD,
    "2": BounceVerdict.HARD,
    "3": BounceVerdict.SOFT,
    "5": BounceVerdict.SENDER,
    "6": BounceVerdict.SENDER,
    "7": BounceVerdict.SENDER,
}


def find_status(text: str | None) -> str | None:
    """The first enhanced status code in ``text`` ("5.1.1"), if any."""
    found = STATUS.search(text or "")
    return ".".join(found.groups()) if found else None


def verdict_from_text(text: str | None) -> BounceVerdict | None:
    """What a diagnostic says in words: sender, hard or soft (in that order), or None."""
    if not text:
        return None
    # The patterns are lower case: matching lowered text is several times faster than IGNORECASE.
    text = text.lower()
    for pattern, verdict in (
        (SENDER_TEXT, BounceVerdict.SENDER),
        (HARD_TEXT, BounceVerdict.HARD),
        (SOFT_TEXT, BounceVerdict.SOFT),
    ):
        if pattern.search(text):
            return verdict
    return None


def classify(status: str | None, diagnostic: str | None, *, default: BounceVerdict) -> BounceVerdict:
    """The verdict on a failed recipient from its status code and diagnostic text."""
    status = status or find_status(diagnostic)
    if status is None:
        return verdict_from_text(diagnostic) or default
    klass, subject, detail = status.split(".")
    if klass == "2":
        return BounceVerdict.NONE
    if klass == "4":
        return BounceVerdict.SOFT
    if detail == "0":  # "other or undefined": the words say more than the code
        return verdict_from_text(diagnostic) or _BY_SUBJECT.get(subject, BounceVerdict.HARD)
    if status in _SPECIFIC:
        return _SPECIFIC[status]
    if subject == "4":
        return BounceVerdict.HARD  # 5.4.4 unable to route, 5.4.1 no answer / access denied
    if subject in _BY_SUBJECT:
        return _BY_SUBJECT[subject]
    return verdict_from_text(diagnostic) or BounceVerdict.HARD

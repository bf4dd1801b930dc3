"""The data model: papers and their signal time series, trend rankings, subscribers, deliveries.

The service's own bookkeeping (audit log, fetch log, HTTP validators, rate-limit hits, leases,
signup forms waiting for a worker) is in :mod:`papermail.db.bookkeeping`. Every model is imported
from here, whichever module defines it.
"""

from papermail.db.models.base import (
    NAMING_CONVENTION,
    Base,
    BounceVerdict,
    DeliveryStatus,
    FetchStatus,
    Frequency,
    SubscriberStatus,
)
from papermail.db.models.bounces import BounceEvent, InboundMessage
from papermail.db.models.papers import Paper, ScoringRun, SignalSnapshot, TrendScore
from papermail.db.models.subscribers import (
    Confirmation,
    Delivery,
    Digest,
    SendState,
    Subscriber,
    Suppression,
    Vote,
)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "BounceEvent",
    "BounceVerdict",
    "Confirmation",
    "Delivery",
    "DeliveryStatus",
    "Digest",
    "FetchStatus",
    "Frequency",
    "InboundMessage",
    "Paper",
    "ScoringRun",
    "SendState",
    "SignalSnapshot",
    "Subscriber",
    "SubscriberStatus",
    "Suppression",
    "TrendScore",
    "Vote",
]

"""The tamper-evident delivery ledger.

Every packet the hub receives and every state transition of its deliveries is appended to a
hash chain (:mod:`hub.ledger.chain` documents the encoding), checkpointed and signed by the hub
operator organization, and can be exported as an offline-verifiable evidence bundle.
"""

from hub.ledger.records import (
    DocumentIn,
    EventIn,
    EventKind,
    StoredDelivery,
    StoredDocument,
    StoredEvent,
    VerifyResult,
)
from hub.ledger.store import Ledger

__all__ = [
    "DocumentIn",
    "EventIn",
    "EventKind",
    "Ledger",
    "StoredDelivery",
    "StoredDocument",
    "StoredEvent",
    "VerifyResult",
]

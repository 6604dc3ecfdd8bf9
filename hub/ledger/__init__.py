"""The tamper-evident delivery ledger.

Every packet the hub receives and every state transition of its deliveries is appended to a
hash chain (:mod:`hub.ledger.chain` documents the encoding), checkpointed and signed by the hub
operator organization, and can be exported as an offline-verifiable evidence bundle.

The record types load without SQLAlchemy (the pure pipeline plans in them); :class:`Ledger`
itself is imported on first use.
"""

from typing import TYPE_CHECKING, Any

from hub.ledger.records import (
    REFUSED,
    DocumentIn,
    EventIn,
    EventKind,
    IssuedReceipt,
    LedgerOpenError,
    LedgerRowRejected,
    ReceiptConflict,
    Refusal,
    RevocationEvidence,
    StoredDelivery,
    StoredDocument,
    StoredEvent,
    VerifyResult,
)

if TYPE_CHECKING:
    from hub.ledger.store import Ledger


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from hub.ledger.store import Ledger

        return Ledger
    raise AttributeError(f"module 'hub.ledger' has no attribute {name!r}")


__all__ = [
    "REFUSED",
    "DocumentIn",
    "EventIn",
    "EventKind",
    "IssuedReceipt",
    "Ledger",
    "LedgerOpenError",
    "LedgerRowRejected",
    "ReceiptConflict",
    "Refusal",
    "RevocationEvidence",
    "StoredDelivery",
    "StoredDocument",
    "StoredEvent",
    "VerifyResult",
]

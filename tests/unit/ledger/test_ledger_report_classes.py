"""The adoption report's reason classes (pure)."""

from __future__ import annotations

from hub.ledger.report import REASON_CLASSES, reason_class
from hub.reasons import Reason

NOT_A_REFUSAL_OF_THE_SENDER = {
    Reason.OK, Reason.BROKER_UNAVAILABLE, Reason.LEDGER_UNAVAILABLE,
    Reason.DELIVERY_LIMIT_EXCEEDED, Reason.INTERNAL_ERROR, Reason.OPERATOR_DISCARDED,
    Reason.LEDGER_ROW_REJECTED, Reason.AXIS_UNAVAILABLE,
    # The agency API's answers to a request (issue 18): never a packet's outcome in the ledger
    Reason.API_AUTH_REQUIRED, Reason.API_CREDENTIALS_INVALID, Reason.API_CLIENT_CERT_UNKNOWN,
    Reason.API_RATE_LIMITED, Reason.API_REQUEST_INVALID, Reason.API_DOCUMENT_NOT_FOUND,
    Reason.API_KEY_NOT_HELD, Reason.API_CLIENT_CERT_REVOKED, Reason.API_CLIENT_CERT_INVALID,
    Reason.API_CLIENT_CERT_STATUS_UNKNOWN,
}
"""Codes the report counts as ``other``: outcomes of the hub or its operator, not of what the
sender sent."""


def test_every_reason_of_the_catalogue_has_a_class_or_is_deliberately_other() -> None:
    # A new reason code must be placed in a class (or listed here): this fails until it is.
    unplaced = {r for r in Reason if reason_class(r.value) == "other"}
    assert unplaced == NOT_A_REFUSAL_OF_THE_SENDER


def test_no_reason_is_in_two_classes() -> None:
    seen: dict[Reason, str] = {}
    for name, members in REASON_CLASSES.items():
        for reason in members:
            assert reason not in seen, (reason, seen.get(reason), name)
            seen[reason] = name


def test_an_unknown_code_is_other() -> None:
    assert reason_class("NOT_A_CODE") == "other"
    assert reason_class(None) == "other"

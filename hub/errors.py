"""The hub's error tree, split by what the caller must do with a delivery.

::

    HubError
    ├── PermanentError      dead-letter now, ledger row, signed negative status to the sender
    └── TransientError      retry later with backoff (broker, ledger, revocation source down)
    ConfigurationError      at start-up only; the process exits with EXIT_CONFIG

A bad signature or a malformed envelope is *data* (a reason code in a report); these
exceptions carry such a reason across layers and are mapped to a settlement in exactly one
place (:mod:`hub.consumers.settlement`). A misuse of the API is an ordinary ``TypeError``.
"""

from __future__ import annotations

from hub.reasons import Reason


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class PermanentError(HubError):
    """The delivery can never succeed as it is: dead-letter it with ``reason``."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class TransientError(HubError):
    """The delivery may succeed later: retry it with backoff, never drop it."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class ConfigurationError(Exception):
    """Settings, directory, keys or trust anchors are unusable; raised at start-up only."""

"""The one exception the EDXML package raises for a packet it refuses."""

from __future__ import annotations

from hub.errors import PermanentError


class EnvelopeRefused(PermanentError):
    """The packet can never be accepted as it is (malformed, oversized, off-schema, …).

    ``reason`` is a stable :class:`hub.reasons.Reason`; ``detail`` says where (line, element)
    without quoting document content.
    """

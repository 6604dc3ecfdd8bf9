"""Strict base64 decoding: exactly ``base64.b64decode(data, validate=True)``, at SIMD speed.

The standard library decodes about 0.5 GB/s here (2.1–2.9 ms for the 1 MB attachment of a
1 MB envelope, a tenth of the hub's time for it); pybase64's C decoder takes 0.05 ms. The two do
not agree on every input: pybase64 also refuses padding after a complete quantum
(``"AAAA="``), which the standard library's strict mode lets through. So pybase64 answers
first and the standard library has the last word on whatever pybase64 refuses:

* pybase64 accepts  → the standard library accepts the same input with the same bytes;
* pybase64 refuses  → the standard library decides (decodes it, or raises as it always did).

The first line is a property of the two decoders, not of this code: ``tests/unit/edxml/
test_b64.py`` checks it on hand-picked edge cases, on hypothesis-generated near-base64 and on
100,000 seeded short inputs of the alphabet, padding, whitespace and junk (a million such
inputs once, by hand: pybase64 never accepted what the standard library refused, and never
decoded differently). The hub's verdicts on base64 (ATTACHMENT_ENCODING_INVALID,
SIGNATURE_INVALID …) therefore stay those of the standard library byte for byte.
"""

from __future__ import annotations

import base64
import binascii

import pybase64


def strict_b64decode(data: bytes | bytearray | str) -> bytes:
    """``base64.b64decode(data, validate=True)``: the same bytes, the same errors
    (:class:`binascii.Error`, or :class:`ValueError` for a non-ASCII ``str``)."""
    try:
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(data, validate=True)

"""The ledger's canonical row encoding and hash chain (pure: no database, no I/O).

This docstring is the specification an auditor needs to re-implement the check without our code.

Canonical JSON
    ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
    UTF-8: keys sorted by code point, no whitespace, non-ASCII characters written as themselves.
    Only strings, integers, booleans, null, lists and objects occur; floats never do (a float in
    an event's ``detail`` is written as its ``repr`` string before it is stored). Timestamps are
    strings in UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fractional digits).
    (The hub writes these bytes with orjson where orjson is proven to write the same ones, and
    with the standard library's encoder otherwise: :func:`canonical_json`.)

Entries
    Every ledger entry has a position ``seq`` (1, 2, 3, … without gaps, shared by documents and
    events). A *document* entry is the object::

        {"v": 1, "type": "document", "seq": N, "digest": <sha256 hex of the exact bytes>,
         "sender": ..., "document_id": ..., "kind": "envelope"|"status"|"receipt",
         "code": ..., "subject_digest": ..., "recipients": [...],
         "received_at": <timestamp>, "links_to": <digest or null>, "size": <byte count>,
         "report_digest": <sha256 hex of the stored report text, or null>}

    An *event* entry is the object::

        {"v": 1, "type": "event", "seq": N, "kind": <EventKind value>, "message_id": ...,
         "at": <timestamp>, "digest": <document digest or null>, "organ_id": ... or null,
         "reason": ... or null, "actor": ..., "detail": <the stored detail text, a canonical
         JSON object serialized as a string>}

    Two keys appear in a document entry only when they have a value (entries written before
    they existed hash as they always did):

    - ``"refusal"`` (kind ``refused``: a packet the hub refused) — the object
      ``{"reason": <reason code>, "account": <broker account or null>, "kept": <bool: the
      bytes are stored>, "cap": <largest refused packet stored, bytes>}``; ``sender`` is then
      the publishing organization, or "" when unknown;
    - ``"revocation"`` — the list of revocation data the validation used, each
      ``{"kind": "crl"|"ocsp", "digest": <sha256 hex of the DER>, "at": <timestamp>,
      "source": ..., "certificate": <sha256 hex of the DER of the certificate it is about, or
      null>, "issuer": <same for its issuer, or null>}``.

    ``entry_hash = SHA-256(canonical JSON of the entry)`` (hex, lowercase).

Chain
    ``chain_hash(0) = "00" * 32`` and
    ``chain_hash(N) = SHA-256(bytes.fromhex(chain_hash(N-1)) + bytes.fromhex(entry_hash(N)))``.
    Because a link needs only the previous link and the entry's hash, a proof for one document
    discloses the other entries' hashes, never their content.

Checkpoints
    Every N entries (and on demand) the hub operator signs the canonical JSON of
    ``{"v": 1, "type": "checkpoint", "ledger": "edxml-hub", "seq": N, "head": chain_hash(N),
    "at": <timestamp>}`` with its organization key (RSA, SHA-256; PKCS#1 v1.5 or PSS), and keeps
    the certificate beside the signature. A verifier recomputes the chain up to ``seq`` and checks
    both the head and the signature (``openssl dgst -sha256 -verify``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "00" * 32
"""The chain hash before the first entry."""

ENCODING_VERSION = 1


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_SORTED = orjson.OPT_SORT_KEYS
_SCALARS = frozenset({str, int, bool, type(None)})
_MAX_DEPTH = 200
"""Deeper values take the reference encoder (orjson refuses more than 254 levels)."""


def canonical_json_reference(value: Any) -> bytes:
    """The canonical bytes as the specification writes them: the standard library's encoder.

    :func:`canonical_json` returns exactly these bytes, faster; this one stays the reference
    the tests compare it with, and the path for values orjson would write differently."""
    # One encoder, built once: json.dumps with options builds a new one per call.
    return _ENCODER.encode(value).encode("utf-8")


def is_plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` holds nothing but exact ``str``, ``int``, ``bool`` and ``None``
    values in lists, tuples and dicts (no subclass such as an enum, no float, no other type).

    orjson writes such a value exactly as the reference encoder does, or refuses it: an integer
    beyond 64 bits, a lone surrogate, a dict key that is not an exact ``str`` (orjson checks the
    keys, so this walk does not)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    if _SCALARS.issuperset(map(type, items)):  # flat: one pass in C
        return True
    if depth >= _MAX_DEPTH:
        return False
    for item in items:  # noqa: SIM110 (a loop: all() over a generator is slower here)
        if type(item) not in _SCALARS and not is_plain(item, depth + 1):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (see the module docstring).

    Byte for byte :func:`canonical_json_reference`: orjson (keys sorted by code point, which is
    UTF-8 byte order) writes plain values (:func:`is_plain`); anything else, and anything orjson
    refuses, goes to the reference encoder, which writes it or raises as it always did."""
    if type(value) is dict and _SCALARS.issuperset(map(type, value.values())):
        return _encode_plain(value)  # a flat object (most ledger entries): is_plain, inlined
    return _encode_plain(value) if is_plain(value) else canonical_json_reference(value)


def _encode_plain(value: Any) -> bytes:
    """:func:`canonical_json` of a value :func:`is_plain` accepted."""
    try:
        return orjson.dumps(value, option=_SORTED)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits, a lone surrogate, a key that is not a str: the reference
        # writes or raises.
        return canonical_json_reference(value)


@functools.lru_cache(maxsize=1024)
def utc_text(at: datetime) -> str:
    """A timestamp as canonical UTC text; naive datetimes are refused (time zones are facts)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize(value: Any) -> Any:
    """Make a detail/report value canonical-JSON-safe: floats and datetimes become strings.

    ``str`` and ``int`` subclasses (enums) become the exact ``str``/``int`` of the same value:
    the reference encoder writes a subclass as that value, so the bytes are the same."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        # Floats have no single textual form across languages; an auditor compares strings.
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [normalize(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "value") and isinstance(value.value, str | int):  # enums
        return value.value
    return str(value)


def canonical_text(value: Mapping[str, Any] | None) -> str:
    """Canonical JSON text of a mapping as stored in the ledger (``{}`` for None)."""
    if not value:
        return "{}"
    if is_plain(value):  # normalize() would return an equal copy: skip its walk
        try:
            return orjson.dumps(value, option=_SORTED).decode("utf-8")
        except orjson.JSONEncodeError:
            pass  # e.g. a key that is not a str: normalize() makes it one
    return canonical_json(normalize(value)).decode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_entry(
    *,
    seq: int,
    digest: str,
    sender: str,
    document_id: str,
    kind: str,
    code: str,
    subject_digest: str,
    recipients: Sequence[str],
    received_at: str,
    links_to: str | None,
    size: int,
    report_digest: str | None,
    refusal: Mapping[str, Any] | None = None,
    revocation: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The canonical object of a document entry (``received_at`` already canonical text)."""
    entry: dict[str, Any] = {
        "v": ENCODING_VERSION,
        "type": "document",
        "seq": seq,
        "digest": digest,
        "sender": sender,
        "document_id": document_id,
        "kind": kind,
        "code": code,
        "subject_digest": subject_digest,
        "recipients": list(recipients),
        "received_at": received_at,
        "links_to": links_to,
        "size": size,
        "report_digest": report_digest,
    }
    if refusal is not None:
        entry["refusal"] = dict(refusal)
    if revocation is not None:
        entry["revocation"] = [dict(r) for r in revocation]
    return entry


def event_entry(
    *,
    seq: int,
    kind: str,
    message_id: str,
    at: str,
    digest: str | None,
    organ_id: str | None,
    reason: str | None,
    actor: str,
    detail: str,
) -> dict[str, Any]:
    """The canonical object of an event entry (``at`` canonical text, ``detail`` stored text)."""
    return {
        "v": ENCODING_VERSION,
        "type": "event",
        "seq": seq,
        "kind": kind,
        "message_id": message_id,
        "at": at,
        "digest": digest,
        "organ_id": organ_id,
        "reason": reason,
        "actor": actor,
        "detail": detail,
    }


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 hex of an entry's canonical JSON."""
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def link(prev_chain_hash: str, this_entry_hash: str) -> str:
    """The chain hash after appending an entry."""
    data = bytes.fromhex(prev_chain_hash) + bytes.fromhex(this_entry_hash)
    return hashlib.sha256(data).hexdigest()


def checkpoint_payload(seq: int, head: str, at: str) -> bytes:
    """The exact bytes the operator signs for a checkpoint."""
    return canonical_json(
        {"v": ENCODING_VERSION, "type": "checkpoint", "ledger": "edxml-hub", "seq": seq,
         "head": head, "at": at}
    )

"""The ledger checks that a document's digest is the SHA-256 of its bytes; for a document made
from a parsed packet (``of_packet``) it takes the digest the parser computed from those very
bytes instead of hashing them again. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.edxml import Envelope, Organization, build_envelope, parse_packet, sample_header
from hub.ledger import DocumentIn, Ledger
from hub.ledger.models import Document
from hub.ledger.records import LedgerRowRejected, digest_is_of_raw, of_packet
from tests.integration.ledger.ledger_samples import T0

SENDER = "000.00.01.H27"
BAD_DIGEST = r"document #0: .*not the SHA-256 of its bytes"


def _envelope(number: str = "12") -> Envelope:
    packet = parse_packet(build_envelope(sample_header(
        Organization(SENDER, "Văn phòng UBND tỉnh"), "000.00.02.H27", number=number)))
    assert isinstance(packet, Envelope)
    return packet


def _document(env: Envelope, *, raw: bytes | None = None, digest: str | None = None
              ) -> DocumentIn:
    return DocumentIn(SENDER, env.document_id, env.digest if digest is None else digest,
                      "envelope", env.raw if raw is None else raw, T0)


def _documents(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Document)) or 0)


def test_a_document_of_a_parsed_packet_is_recorded_with_the_packets_bytes_and_digest(
        ledger_url: str) -> None:
    env = _envelope()
    document = of_packet(_document(env), env)
    assert digest_is_of_raw(document)
    with Ledger.open(ledger_url) as ledger:
        ledger.write([document], [])
        assert ledger.raw(env.digest) == env.raw
        assert hashlib.sha256(ledger.raw(env.digest) or b"").hexdigest() == env.digest
        assert ledger.verify().ok


def test_a_document_whose_digest_is_not_that_of_its_bytes_is_refused_and_nothing_written(
        ledger_url: str) -> None:
    env = _envelope()
    wrong = _document(env, digest=hashlib.sha256(b"other bytes").hexdigest())
    assert not digest_is_of_raw(wrong)
    with Ledger.open(ledger_url) as ledger:
        with pytest.raises(LedgerRowRejected, match=BAD_DIGEST):
            ledger.write([wrong], [])
        assert _documents(ledger) == 0


def test_a_packet_document_given_other_bytes_by_replace_is_hashed_again_and_refused(
        ledger_url: str) -> None:
    env = _envelope()
    marked = of_packet(_document(env), env)
    swapped = dataclasses.replace(marked, raw=_envelope("13").raw)
    assert not digest_is_of_raw(swapped)
    with Ledger.open(ledger_url) as ledger:
        with pytest.raises(LedgerRowRejected, match=BAD_DIGEST):
            ledger.write([swapped], [])
        assert _documents(ledger) == 0


def test_only_the_packets_own_bytes_and_digest_are_marked() -> None:
    env, other = _envelope(), _envelope("13")
    with pytest.raises(ValueError, match="packet's bytes and digest"):
        of_packet(_document(env, raw=bytes(bytearray(env.raw))), env)  # equal, not the same
    with pytest.raises(ValueError, match="packet's bytes and digest"):
        of_packet(_document(env, digest=other.digest), env)
    with pytest.raises(ValueError, match="packet's bytes and digest"):
        of_packet(_document(env), other)
    assert not digest_is_of_raw(_document(env))
    changeable: Any = bytearray(env.raw)  # bytes that could change after they were hashed
    mutable = dataclasses.replace(env, raw=changeable)
    with pytest.raises(ValueError, match="packet's bytes and digest"):
        of_packet(_document(mutable, raw=changeable), mutable)

"""validate_packet never raises for bad input, and only reads what it is given."""

from __future__ import annotations

import base64
import dataclasses
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.edxml import parse_packet
from hub.reasons import Reason
from hub.validators import Indication, _evidence_of, validate_packet
from hub.validators.trust import read_certificate
from hub.validators.xmldsig import check_xml_signature
from tests.pki_fixtures import AT
from tests.unit.validators.signature_vectors import DIRECTORY, Vectors


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_in_place_of_the_packet_are_refused_without_raising(
    vectors: Vectors, raw: bytes,
) -> None:
    packet = dataclasses.replace(parse_packet(vectors.valid_raw), raw=raw)
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    assert not report.accepted
    assert report.reason is not Reason.INTERNAL_ERROR


def test_a_truncated_signed_packet_is_refused_without_raising(vectors: Vectors) -> None:
    raw = vectors.valid_raw
    for cut in (len(raw) // 3, len(raw) // 2, len(raw) - 20):
        packet = dataclasses.replace(parse_packet(raw), raw=raw[:cut])
        report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                                 crls=vectors.crls)
        assert report.indication is Indication.FAILED
        assert report.reason is Reason.ENVELOPE_MALFORMED


def test_a_dtd_smuggled_into_the_raw_bytes_is_refused(vectors: Vectors) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>'
    packet = dataclasses.replace(parse_packet(vectors.valid_raw), raw=bomb)
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    assert report.reason is Reason.ENVELOPE_DTD_FORBIDDEN


def test_the_report_names_the_signer_and_when_validity_was_judged(vectors: Vectors) -> None:
    packet = parse_packet(vectors.valid_raw)
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    assert report.accepted, report.describe()
    assert report.signer is not None
    assert report.signer.uid == "000.00.01.H27"
    assert report.validated_at == AT
    trust = next(c for c in report.checks if c.check == "trust")
    assert trust.evidence["validity_judged_at"] == AT.isoformat()
    assert [c.check for c in report.checks] == ["xmldsig", "trust", "revocation", "signer", "pdf"]


def test_the_signer_evidence_is_built_from_the_certificate_facts_on_every_packet(
    vectors: Vectors,
) -> None:
    packet = parse_packet(vectors.valid_raw)
    reports = [validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                               crls=vectors.crls) for _ in range(2)]
    first = reports[0].checks[0]
    leaf = check_xml_signature(packet.raw, vectors.policy).leaf
    for report in reports:
        assert report.signer == _evidence_of(read_certificate(leaf))
        assert report.signer is not None
        assert report.signer.fingerprint == first.evidence["certificate"]
        assert report.signer.serial == f"{leaf.serial_number:x}"


def test_a_bug_in_a_check_becomes_internal_error_not_an_exception(vectors: Vectors) -> None:
    packet = parse_packet(vectors.valid_raw)

    class BrokenDirectory:
        def find(self, code: str, at: object = None) -> object:
            raise RuntimeError("bug")

        def authorizes(self, *args: object) -> bool:
            return False

        def signer_for(self, *args: object) -> None:
            return None

    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=BrokenDirectory(),
                             crls=vectors.crls)
    assert report.reason is Reason.INTERNAL_ERROR
    assert report.indeterminate


def test_a_permanent_pdf_failure_wins_over_an_undecided_earlier_pdf_signature(
    vectors: Vectors,
) -> None:
    from hub.trust.signing import minimal_pdf, sign_pdf

    # Given a PDF signed first by the person (status undecided: no CRL of the issuing CA), then
    # by a certificate under a public CA
    pdf = sign_pdf(minimal_pdf(), vectors.person, field_name="NguoiKy", reason="Ký")
    pdf = sign_pdf(pdf, vectors.pki.business, field_name="DauCoQuan", reason="Đóng dấu")
    packet = parse_packet(vectors.signed(pdf=pdf))
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.root_crl_only)
    # Then the refusal is permanent, not a retry
    assert report.indication is Indication.FAILED
    assert report.reason is Reason.PDF_SIGNER_UNTRUSTED


# -- odd certificates in KeyInfo (issue 16, L4): a certificate reason, never INTERNAL_ERROR -----

_CERT_TEXT = re.compile(rb"<ds:X509Certificate>([^<]*)</ds:X509Certificate>")


def _flip_in_certificate(raw: bytes, which: int, position: int, bit: int) -> bytes:
    found = list(_CERT_TEXT.finditer(raw))
    match = found[which % len(found)]
    der = bytearray(base64.b64decode(b"".join(match.group(1).split())))
    der[position % len(der)] ^= 1 << bit
    return raw[:match.start(1)] + base64.b64encode(bytes(der)) + raw[match.end(1):]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 1), position=st.integers(0, 2000), bit=st.integers(0, 7))
def test_a_bit_flipped_keyinfo_certificate_gets_a_signature_or_certificate_reason(
    vectors: Vectors, which: int, position: int, bit: int,
) -> None:
    # Given the sender's envelope whose KeyInfo certificate (signer or CA) had one bit flipped in
    # transit (KeyInfo is not covered by the signature)
    raw = _flip_in_certificate(vectors.valid_raw, which, position, bit)
    packet = parse_packet(raw)
    # When it is validated, Then nothing raises and the verdict names a signature or
    # certificate reason (or the flip was harmless), never an internal error
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    assert report.reason is not Reason.INTERNAL_ERROR, report.describe()
    assert report.reason.value.startswith(("OK", "SIGNATURE_", "CERT_")), report.describe()


def test_a_keyinfo_certificate_that_is_not_on_the_validated_path_is_refused(
    vectors: Vectors,
) -> None:
    # Given the sender's envelope whose unsigned KeyInfo carries a corrupted copy of the issuing
    # CA: it still parses, and the hub's configured intermediate would complete the chain
    found = list(_CERT_TEXT.finditer(vectors.valid_raw))
    assert len(found) >= 2  # the leaf and the issuing CA
    ca = found[1]
    der = base64.b64decode(b"".join(ca.group(1).split()))
    at = der.rindex(b"(TEST)")  # in the CA's own subject name: it no longer names the leaf's issuer
    corrupted = der[:at] + b"(TESX)" + der[at + 6:]
    raw = (vectors.valid_raw[:ca.start(1)] + base64.b64encode(corrupted)
           + vectors.valid_raw[ca.end(1):])
    packet = parse_packet(raw)
    # When it is validated
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    # Then it is refused as xmlsec1 refuses it (it builds its chain from the document's copies):
    # never accepted with a certificate on the wire that nobody validated (fuzzing, N1)
    assert report.reason is Reason.CERT_PATH_INVALID, report.describe()
    assert "not on the validated path" in report.describe()

"""The validators' caches (certificate facts, CRL lookups, paths) never outlive their inputs.

Every rule is judged again on every envelope: a CRL refreshed between two envelopes, a
certificate that expires between two envelopes, or another chain for the same key change the
verdict of the very next envelope, however warm the caches are. And every cache is bounded.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from hub.config import Settings, with_overrides
from hub.edxml import parse_packet
from hub.reasons import Reason
from hub.testing.pki import ROOT_BITS, make_crl
from hub.trust.keystore import OrgSigner
from hub.trust.revocation import RevocationCache
from hub.validators import (
    CrlEntry,
    CrlSnapshot,
    Indication,
    ValidationReport,
    trust,
    validate_packet,
    xmldsig,
)
from hub.validators.outcome import ValidationFailure
from hub.validators.pdf import AlgorithmVerdicts
from hub.validators.xmldsig import DS
from tests.pki_fixtures import AT, PKI_NOW, GeneratedPki
from tests.unit.validators.signature_vectors import DIRECTORY, Vectors


def _judge(vectors: Vectors, raw: bytes, *, at: dt.datetime = AT,
           crls: CrlSnapshot | None = None) -> ValidationReport:
    return validate_packet(parse_packet(raw), at=at, policy=vectors.policy, directory=DIRECTORY,
                           crls=vectors.crls if crls is None else crls)


def _failed(report: ValidationReport) -> tuple[str, Reason]:
    problem = report.first_problem
    assert problem is not None, report.describe()
    return problem.check, problem.reason


def _no_pdf(vectors: Vectors, signer: OrgSigner | None = None) -> bytes:
    """An envelope without attachments (no PDF signer to judge), signed by ``signer``."""
    return vectors.signed(signer, attachments=())


def _issuing_key(pki: GeneratedPki) -> rsa.RSAPrivateKey:
    return pki.keys("issuing-ca", 2048)


def _write_crl(path: Path, pki: GeneratedPki, *, revoked: tuple[int, ...], number: int) -> None:
    crl = make_crl(pki.issuing_ca, _issuing_key(pki),
                   revoked=[(serial, PKI_NOW) for serial in revoked],
                   this_update=PKI_NOW + dt.timedelta(seconds=number),
                   next_update=PKI_NOW + dt.timedelta(days=1), number=number)
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER))


def test_a_certificate_revoked_by_a_refreshed_crl_is_refused_on_the_next_envelope(
    vectors: Vectors, tmp_path: Path,
) -> None:
    # Given the hub's revocation cache reading the issuing CA's CRL from a file, without the
    # sender's certificate, and an envelope accepted with it (every cache now warm)
    crl_file = tmp_path / "issuing-ca.crl"
    _write_crl(crl_file, vectors.pki, revoked=(), number=1)
    cache = RevocationCache(with_overrides(Settings(), trust={
        "crls": [str(crl_file), str(vectors.pki.paths.root_crl_der)], "fetch_crls": False}))
    first = _judge(vectors, _no_pdf(vectors), crls=cache.snapshot())
    assert first.accepted, first.describe()
    before = cache.snapshot()
    again = _judge(vectors, _no_pdf(vectors), crls=before)
    assert again.accepted, again.describe()
    # When the CA publishes a CRL listing it and the hub refreshes
    _write_crl(crl_file, vectors.pki, revoked=(vectors.org.cert.serial_number,), number=2)
    cache.refresh()
    # Then the very next envelope is refused, citing the new CRL
    report = _judge(vectors, _no_pdf(vectors), crls=cache.snapshot())
    assert _failed(report) == ("revocation", Reason.CERT_REVOKED)
    detail = next(c for c in report.checks if c.check == "revocation").evidence["detail"]
    assert "(CRL 2)" in detail
    # And the snapshot taken before the refresh still says what its CRL said
    assert _judge(vectors, _no_pdf(vectors), crls=before).accepted


def test_a_certificate_that_expires_between_two_envelopes_is_refused_on_the_second(
    vectors: Vectors,
) -> None:
    leaf = vectors.org.cert
    before = leaf.not_valid_after_utc - dt.timedelta(minutes=1)
    after = leaf.not_valid_after_utc + dt.timedelta(minutes=1)
    # CRLs issued just before: fresh at both instants (before their nextUpdate)
    pki = vectors.pki
    crls = CrlSnapshot.of(
        CrlEntry(make_crl(ca, key, this_update=before - dt.timedelta(hours=1),
                          next_update=after + dt.timedelta(days=1)), fetched_at=before)
        for ca, key in ((pki.root, pki.keys("root", ROOT_BITS)),
                        (pki.issuing_ca, pki.keys("issuing-ca", 2048))))
    # Given an envelope accepted a minute before the signer certificate expires
    first = _judge(vectors, _no_pdf(vectors), at=before, crls=crls)
    assert first.accepted, first.describe()
    # When the next envelope of the same signer is judged two minutes later
    second = _judge(vectors, _no_pdf(vectors), at=after, crls=crls)
    # Then it is refused as expired, although its path and facts came from the caches
    assert _failed(second) == ("trust", Reason.CERT_EXPIRED)
    assert vectors.policy.cache.hits >= 1
    detail = next(c for c in second.checks if c.check == "trust").evidence["detail"]
    assert detail == f"signer certificate expired {leaf.not_valid_after_utc.isoformat()}"


def test_a_crl_that_goes_stale_between_two_envelopes_leaves_the_second_undecided(
    vectors: Vectors,
) -> None:
    entries = [CrlEntry(c, fetched_at=PKI_NOW) for c in vectors.pki.crls]
    crls = CrlSnapshot.of(entries)
    # The last instant both CRLs are fresh (CrlEntry.fresh_until: nextUpdate, or the window
    # after it when obtained later)
    deadline = min(e.fresh_until(vectors.policy.crl_freshness) for e in entries)
    assert deadline == min(e.crl.next_update_utc or deadline for e in entries)
    assert _judge(vectors, _no_pdf(vectors), at=deadline, crls=crls).accepted
    later = _judge(vectors, _no_pdf(vectors), at=deadline + dt.timedelta(seconds=1), crls=crls)
    assert later.indication is Indication.INDETERMINATE, later.describe()
    assert _failed(later) == ("revocation", Reason.REVOCATION_UNAVAILABLE)


def _same_key_other_issuer(pki: GeneratedPki, leaf: OrgSigner) -> OrgSigner:
    """``leaf``'s subject and key, issued by an impostor CA that carries the issuing CA's name
    (so the path is built by name to the real CA, whose signature does not verify)."""
    impostor_key = pki.keys("impostor-ca", 2048)
    impostor = (
        x509.CertificateBuilder().subject_name(pki.issuing_ca.subject)
        .issuer_name(pki.root.subject).public_key(impostor_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW - dt.timedelta(days=1))
        .not_valid_after(PKI_NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(impostor_key, hashes.SHA256()))
    cert = (
        x509.CertificateBuilder().subject_name(leaf.cert.subject)
        .issuer_name(impostor.subject).public_key(leaf.key.public_key())
        .serial_number(leaf.cert.serial_number)
        .not_valid_before(leaf.cert.not_valid_before_utc)
        .not_valid_after(leaf.cert.not_valid_after_utc)
        .sign(impostor_key, hashes.SHA256()))
    return OrgSigner("impostor", leaf.key, cert, (impostor,))


def test_a_different_chain_with_the_same_leaf_key_is_not_served_a_cached_verdict(
    vectors: Vectors,
) -> None:
    genuine = vectors.org
    other = _same_key_other_issuer(vectors.pki, genuine)
    assert other.cert.public_key() == genuine.cert.public_key()
    assert other.cert.subject == genuine.cert.subject
    # Given the genuine certificate accepted (its path, facts and CRL lookups cached)
    assert _judge(vectors, _no_pdf(vectors, genuine)).accepted
    # When the same key and name come with another certificate and chain
    refused = _judge(vectors, _no_pdf(vectors, other))
    # Then that chain is judged on its own, and the genuine one is still accepted after it
    assert _failed(refused) == ("trust", Reason.CERT_PATH_INVALID)
    assert _judge(vectors, _no_pdf(vectors, genuine)).accepted


def test_the_same_leaf_offering_a_stray_certificate_is_not_served_the_cached_verdict(
    vectors: Vectors,
) -> None:
    genuine = vectors.org
    assert _judge(vectors, _no_pdf(vectors, genuine)).accepted
    # The same signed envelope, its (unsigned) KeyInfo also offering a certificate that is not
    # on its path
    root = etree.fromstring(_no_pdf(vectors, genuine))
    x509_data = next(root.iter(f"{DS}X509Data"))
    etree.SubElement(x509_data, f"{DS}X509Certificate").text = base64.b64encode(
        vectors.pki.public_root.public_bytes(serialization.Encoding.DER)).decode()
    refused = _judge(vectors, etree.tostring(root, encoding="UTF-8", xml_declaration=True))
    assert _failed(refused) == ("trust", Reason.CERT_PATH_INVALID)
    assert "not on the validated path" in refused.checks[-1].evidence["detail"]
    assert _judge(vectors, _no_pdf(vectors, genuine)).accepted


def test_the_certificate_facts_cache_is_bounded_in_entries_and_bytes(pki: GeneratedPki) -> None:
    memo = trust._ByObject(size=8, max_bytes=20_000)
    certs = [x509.load_pem_x509_certificate(pki.paths.root_cert.read_bytes()) for _ in range(40)]
    facts = trust.read_certificate(certs[0])
    for cert in certs:
        memo.put(cert, facts)
        assert len(memo) <= 8
        assert memo.size_bytes <= 20_000
    # The newest are found by their object; another object with the same DER is not
    assert memo.get(certs[-1]) is facts
    assert memo.get(certs[0]) is None
    assert len(trust._BY_OBJECT) <= trust._BY_OBJECT.max_entries


def test_a_crl_remembers_a_bounded_number_of_serial_lookups(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trust, "MAX_LISTED_MEMO", 16)
    entry = CrlEntry(vectors.pki.crls[1], fetched_at=PKI_NOW)
    revoked = vectors.pki.special("revoked").cert.serial_number
    for serial in range(1, 100):
        assert entry.listed(serial) is None
        assert len(entry._listed) <= 16
    found = entry.listed(revoked)
    assert found is not None
    assert found.serial_number == revoked
    # The lookup lives on this CRL entry: another entry of the same CRL starts empty
    assert not CrlEntry(vectors.pki.crls[1], fetched_at=PKI_NOW)._listed


def test_a_report_judged_from_warm_caches_is_the_report_judged_from_cold_ones(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = _no_pdf(vectors)
    warm = [_judge(vectors, raw).to_dict() for _ in range(3)]
    # Every cache emptied: the certificate facts, the KeyInfo signers, the paths, the CRLs'
    monkeypatch.setattr(trust, "_BY_OBJECT", trust._ByObject())
    monkeypatch.setattr(trust, "_FACTS", trust.BoundedCache(size=64))
    monkeypatch.setattr(xmldsig, "SIGNER_CACHE", xmldsig.SignerCache())
    cold = validate_packet(
        parse_packet(raw), at=AT, policy=dataclasses.replace(vectors.policy),
        directory=DIRECTORY,
        crls=CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW, source="test")
                            for c in vectors.pki.crls))
    assert warm[0] == warm[1] == warm[2] == cold.to_dict()


def test_a_serial_listed_with_a_later_revocation_date_is_refused_from_that_date_with_one_snapshot(
    vectors: Vectors,
) -> None:
    pki = vectors.pki
    revoked = pki.special("revoked").cert
    path = (revoked, pki.issuing_ca, pki.root)
    listed = vectors.crls  # one snapshot, judged at two instants
    # Before the revocation date the CRL clears it (nothing remembered: the serial is listed)
    before = PKI_NOW - dt.timedelta(days=2)
    assert trust.check_revocation(path, listed, vectors.policy, before)
    # From the revocation date on, it is revoked
    with pytest.raises(ValidationFailure) as failure:
        trust.check_revocation(path, listed, vectors.policy, AT)
    assert failure.value.reason is Reason.CERT_REVOKED


def test_a_snapshot_remembers_a_bounded_number_of_cleared_paths(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trust, "MAX_PASSED_MEMO", 2)
    snapshot = CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in vectors.pki.crls)
    for organ_id in ("000.00.01.H27", "000.00.02.H27", "000.00.03.H27", "000.00.14.H27"):
        path = trust.validate_chain(vectors.pki.org(organ_id).cert, (), vectors.policy, AT)
        evidence = trust.check_revocation(path, snapshot, vectors.policy, AT)
        assert trust.check_revocation(path, snapshot, vectors.policy, AT) == evidence
        assert 1 <= len(snapshot._passed) <= 2
    # Another snapshot of the same CRLs starts with nothing remembered
    assert not CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in vectors.pki.crls)._passed


def test_key_info_certificates_that_do_not_verify_are_not_remembered_by_object(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = trust._ByObject()
    monkeypatch.setattr(trust, "_BY_OBJECT", memo)
    monkeypatch.setattr(xmldsig, "SIGNER_CACHE", xmldsig.SignerCache())
    # Given the sender's envelope whose KeyInfo was swapped in transit for other certificates
    template = _no_pdf(vectors)
    original = template.split(b"<ds:X509Certificate>", 1)[1].split(b"</ds:X509Certificate>")[0]
    others = [vectors.pki.org(o).cert for o in ("000.00.02.H27", "000.00.03.H27")]
    for other in others:
        forged = template.replace(original, base64.b64encode(
            other.public_bytes(serialization.Encoding.DER)), 1)
        # When each is judged, Then each is refused and none of its certificates is kept
        assert _failed(_judge(vectors, forged)) == ("xmldsig", Reason.SIGNATURE_INVALID)
    assert len(memo) == 0
    # While a signature that verifies leaves its certificates found by object (its leaf, at
    # least; the others when the path is searched rather than found in the chain cache)
    assert _judge(vectors, template).accepted
    policy = vectors.policy
    assert 1 <= len(memo) <= 2 + len((*policy.roots, *policy.intermediates, *policy.public_roots))


def test_a_path_s_remembered_refusal_comes_after_the_validity_times_as_before(
    vectors: Vectors,
) -> None:
    # A certificate without a signing keyUsage, judged first inside its validity window
    cert = vectors.pki.special("wrong_key_usage").cert
    policy = dataclasses.replace(vectors.policy)
    expired = cert.not_valid_after_utc + dt.timedelta(seconds=1)
    for at, reason in ((AT, Reason.CERT_KEY_USAGE_INVALID), (expired, Reason.CERT_EXPIRED),
                       (AT, Reason.CERT_KEY_USAGE_INVALID), (expired, Reason.CERT_EXPIRED)):
        with pytest.raises(ValidationFailure) as failure:
            trust.validate_chain(cert, (), policy, at)
        # The key-usage verdict is kept with the path; the time is judged first, every time
        assert failure.value.reason is reason
    assert policy.cache.hits == 3


def test_the_pdf_algorithm_verdicts_are_bounded_in_entries_and_bytes_and_keep_none() -> None:
    memo = AlgorithmVerdicts(size=3, max_bytes=1000)
    for n in range(5):
        memo.put(f"{n:064x}", None if n % 2 else f"refused {n}")
    assert len(memo) == 3
    assert memo.verdict(f"{0:064x}") is None  # pushed out: evaluated again
    assert memo.verdict(f"{3:064x}") == (None,)  # allowed, remembered: not a miss
    assert memo.verdict(f"{4:064x}") == ("refused 4",)
    memo.put("f" * 64, "x" * 2000)  # costs more than the budget: not kept
    assert memo.verdict("f" * 64) is None
    memo.clear()
    assert (len(memo), memo.size_bytes) == (0, 0)

"""OCSP end to end: certificates that name a real local responder, asked over HTTP by the cache.

Each test validates a packet the way the hub does: judge with the answers known, and when the
report is undecided ask the questions it names (``report.ocsp_queries``), then judge again.
Only the root's CRL is known (it covers the issuing CA), so OCSP decides for the signers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from hub.config import Settings, with_overrides
from hub.reasons import Reason
from hub.trust.revocation import MAX_OCSP_BYTES, OcspCache, RevocationCache
from hub.validators import (
    CrlEntry,
    CrlSnapshot,
    Indication,
    OcspEntry,
    OcspSnapshot,
    ValidationReport,
    validate_packet,
)
from hub.validators.ocsp import (
    CertId,
    OcspQuery,
    OcspStatus,
    OcspUnusable,
    ocsp_urls,
    read_answer,
)
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import check_revocation
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki, make_pki
from tests.unit.validators.ocsp_responder import Issuer, OcspResponder
from tests.unit.validators.signature_vectors import Vectors

HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def server() -> Iterator[OcspResponder]:
    with OcspResponder(PKI_NOW) as responder:
        yield responder


@pytest.fixture(scope="module")
def ocsp_pki(
    tmp_path_factory: pytest.TempPathFactory, pki: GeneratedPki, server: OcspResponder,
) -> GeneratedPki:
    """The test PKI again (same keys), every certificate naming ``server`` as its responder."""
    return make_pki(tmp_path_factory.mktemp("ocsp-pki"), keys=pki.keys, ocsp_url=server.url)


@pytest.fixture
def responder(server: OcspResponder, ocsp_pki: GeneratedPki) -> OcspResponder:
    server.reset([Issuer(ocsp_pki.issuing_ca, ocsp_pki.keys("issuing-ca", 2048))])
    return server


@pytest.fixture(scope="module")
def vectors(ocsp_pki: GeneratedPki) -> Vectors:
    return Vectors(ocsp_pki)


class Clock:
    """The cache's notion of now, moved by the test."""

    def __init__(self, now: dt.datetime = AT) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> RevocationCache:
    return RevocationCache(with_overrides(Settings(), trust={"crl_freshness_s": 3600}),
                           clock=clock)


def _judge(
    v: Vectors, cache: RevocationCache, raw: bytes | None = None,
    crls: CrlSnapshot | None = None,
) -> tuple[ValidationReport, ValidationReport]:
    """First judgement, and the one after asking what it asked (as hub.app does)."""
    packet = v.packet(raw or v.valid_raw)

    def once() -> ValidationReport:
        return validate_packet(packet, at=AT, policy=v.policy, directory=DIRECTORY,
                               crls=v.root_crl_only if crls is None else crls,
                               ocsp=cache.ocsp_snapshot())

    first = once()
    if first.indeterminate and first.ocsp_queries:
        cache.refresh(ocsp=first.ocsp_queries)
        return first, once()
    return first, first


def _revocation(report: ValidationReport) -> dict[str, str]:
    return dict(next(c for c in report.checks if c.check == "revocation").evidence)


def test_the_certificates_name_the_responder(ocsp_pki: GeneratedPki, server: OcspResponder) -> None:
    assert ocsp_urls(ocsp_pki.org("000.00.01.H27").cert) == (server.url,)
    assert ocsp_urls(ocsp_pki.issuing_ca) == (server.url,)


def test_a_good_answer_from_the_named_responder_accepts_the_packet(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    # Given no CRL of the issuing CA and no answer yet
    first, report = _judge(vectors, cache)
    # Then the first judgement is undecided and says where to ask
    assert first.indeterminate
    assert first.reason is Reason.REVOCATION_UNAVAILABLE
    where = _revocation(first)
    assert where["ocsp_urls"] == responder.url
    assert "issuing-ca.crl" in where["crl_urls"]
    # And once the responder is asked (envelope seal and PDF person: two certificates),
    asked = {CertId.of(s.cert, vectors.pki.issuing_ca) for s in (vectors.org, vectors.person)}
    assert set(responder.requests) == asked
    # the packet is accepted on the OCSP answer
    assert report.accepted, report.describe()
    assert _revocation(report)["ocsp_signer"].startswith("good@")
    assert _revocation(report)["ocsp_signer"].endswith("by issuing CA")


def test_answers_are_cached_per_certificate_until_they_expire(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder, clock: Clock,
) -> None:
    _judge(vectors, cache)
    asked = len(responder.requests)
    # A second packet from the same signers is judged without asking again
    first, _ = _judge(vectors, cache)
    assert first.accepted
    assert len(responder.requests) == asked
    # The answers say nextUpdate = thisUpdate + 1 day: kept until then, dropped after
    clock.now = PKI_NOW + dt.timedelta(hours=23)
    assert len(cache.ocsp_snapshot()) == 2
    clock.now = PKI_NOW + dt.timedelta(days=1, minutes=1)
    assert len(cache.ocsp_snapshot()) == 0


def test_a_revoked_answer_refuses_the_packet(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.revoked[vectors.org.cert.serial_number] = PKI_NOW - HOUR
    _, report = _judge(vectors, cache)
    assert (report.indication, report.reason) == (Indication.FAILED, Reason.CERT_REVOKED)
    problem = report.first_problem
    assert problem is not None
    assert problem.evidence["revocation_source"] == "ocsp"


def test_a_revoked_answer_wins_over_a_fresh_crl_that_does_not_list_the_serial(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.revoked[vectors.org.cert.serial_number] = PKI_NOW - HOUR
    cache.refresh(ocsp=_judge(vectors, cache)[0].ocsp_queries)
    _, report = _judge(vectors, cache, crls=vectors.crls)
    assert report.reason is Reason.CERT_REVOKED


def test_an_unknown_answer_leaves_revocation_undecided(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.unknown.add(vectors.org.cert.serial_number)
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert report.reason is Reason.REVOCATION_UNAVAILABLE
    assert "does not know" in report.summary()["detail"]


def test_an_unknown_answer_with_a_fresh_crl_is_decided_by_the_crl(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.unknown.add(vectors.org.cert.serial_number)
    _, report = _judge(vectors, cache, crls=vectors.crls)
    assert report.accepted, report.describe()
    assert "crl_signer" in _revocation(report)


def test_a_stale_answer_is_not_used(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    # thisUpdate three days old, nextUpdate one day after it: stale at AT
    responder.this_update = PKI_NOW - dt.timedelta(days=3)
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert report.reason is Reason.REVOCATION_UNAVAILABLE
    assert "stale answer" in cache.ocsp.errors[responder.url]


def test_an_answer_without_next_update_is_fresh_for_the_freshness_window(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.next_update = None
    responder.this_update = AT - dt.timedelta(minutes=50)
    _, report = _judge(vectors, cache)
    assert report.accepted, report.describe()
    responder.this_update = AT - dt.timedelta(minutes=70)
    _, report = _judge(vectors, RevocationCache(Settings(), clock=lambda: AT))
    assert report.indeterminate


def test_an_answer_with_a_bad_responder_signature_is_not_used(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.forge_with = vectors.pki.keys("public-ca", 2048)
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert "does not verify" in report.summary()["detail"]


def test_a_delegated_responder_issued_by_the_ca_may_sign_the_answers(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder, ocsp_pki: GeneratedPki,
) -> None:
    # Given the PKI's delegated responder (id-kp-OCSPSigning, nocheck) signs the answers
    paths = ocsp_pki.paths.ocsp_responder
    assert paths is not None
    delegate = ocsp_pki._load("ocsp-responder", paths)
    responder.delegate = Issuer(delegate.cert, delegate.key)  # type: ignore[arg-type]
    _, report = _judge(vectors, cache)
    assert report.accepted, report.describe()
    assert _revocation(report)["ocsp_signer"].endswith(f"by {delegate.fingerprint}")


def test_an_unreachable_responder_leaves_revocation_undecided_and_is_recorded(
    tmp_path_factory: pytest.TempPathFactory, pki: GeneratedPki, cache: RevocationCache,
) -> None:
    # Given certificates naming a responder whose port is closed
    with OcspResponder(PKI_NOW) as gone:
        url = gone.url
    v = Vectors(make_pki(tmp_path_factory.mktemp("ocsp-gone"), keys=pki.keys, ocsp_url=url))
    first, report = _judge(v, cache)
    # Then the packet is retried later, the evidence names the responder, the error is kept
    assert report.indeterminate
    assert _revocation(report)["ocsp_urls"] == url
    assert "ConnectionError" in cache.ocsp.errors[url]
    assert first.ocsp_queries


def test_an_unsuccessful_responder_status_is_recorded(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.status = ocsp.OCSPResponseStatus.TRY_LATER
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert cache.ocsp.errors[responder.url] == "responder answered TRY_LATER"


def test_an_oversized_answer_is_refused(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder,
) -> None:
    responder.oversize = True
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert "larger than the limit" in cache.ocsp.errors[responder.url]
    assert MAX_OCSP_BYTES < 100_000


def test_the_same_question_is_asked_at_most_once_a_minute(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder, clock: Clock,
) -> None:
    responder.status = ocsp.OCSPResponseStatus.TRY_LATER
    first, _ = _judge(vectors, cache)
    asked = len(responder.requests)
    cache.refresh(ocsp=first.ocsp_queries)
    assert len(responder.requests) == asked
    clock.now += dt.timedelta(seconds=61)
    cache.refresh(ocsp=first.ocsp_queries)
    assert len(responder.requests) == 2 * asked


def test_fetching_can_be_switched_off(vectors: Vectors, responder: OcspResponder) -> None:
    cache = RevocationCache(with_overrides(Settings(), trust={"fetch_crls": False}))
    _, report = _judge(vectors, cache)
    assert report.indeterminate
    assert responder.requests == []


# -- reading answers (pure) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(pki: GeneratedPki) -> Issuer:
    return Issuer(pki.issuing_ca, pki.keys("issuing-ca", 2048))


def _entry(responder: OcspResponder, cert: x509.Certificate, ca: Issuer,
           fetched_at: dt.datetime = AT) -> OcspEntry:
    return OcspEntry.from_der(responder.answer(cert, ca.cert), fetched_at)


def test_an_answer_about_another_certificate_is_unusable(pki: GeneratedPki, ca: Issuer) -> None:
    responder = OcspResponder(PKI_NOW, issuers=[ca])
    entry = _entry(responder, pki.org("000.00.01.H27").cert, ca)
    other = CertId.of(pki.org("000.00.02.H27").cert, ca.cert)
    with pytest.raises(OcspUnusable, match="no SHA-256 answer"):
        read_answer(entry, other, ca.cert, at=AT, freshness=HOUR)


def test_an_answer_signed_with_a_hash_weaker_than_sha256_is_unusable(pki: GeneratedPki, ca: Issuer) -> None:
    cert = pki.org("000.00.01.H27").cert
    cert_id = CertId.of(cert, ca.cert)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(cert, ca.cert, hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, PKI_NOW,
                      PKI_NOW + dt.timedelta(days=1), None, None)
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        .sign(ca.key, hashes.SHA224())  # cryptography no longer signs with SHA-1 at all
    )
    with pytest.raises(OcspUnusable, match="sha224"):
        read_answer(OcspEntry(response, AT), cert_id, ca.cert, at=AT, freshness=HOUR)


def test_an_answer_from_the_future_is_unusable(pki: GeneratedPki, ca: Issuer) -> None:
    cert = pki.org("000.00.01.H27").cert
    responder = OcspResponder(PKI_NOW, issuers=[ca], this_update=AT + HOUR)
    with pytest.raises(OcspUnusable, match="in the future"):
        read_answer(_entry(responder, cert, ca), CertId.of(cert, ca.cert), ca.cert, at=AT,
                    freshness=HOUR)


def test_an_answer_produced_after_the_receipt_time_still_decides(
    pki: GeneratedPki, ca: Issuer,
) -> None:
    # A retry days later: the answer is newer than the packet, which only makes it stronger
    cert = pki.org("000.00.01.H27").cert
    later = AT + dt.timedelta(days=3)
    responder = OcspResponder(later, issuers=[ca])
    answer = read_answer(_entry(responder, cert, ca, fetched_at=later),
                         CertId.of(cert, ca.cert), ca.cert, at=AT, freshness=HOUR)
    assert (answer.status, answer.fresh) == (OcspStatus.GOOD, True)


def _path(pki: GeneratedPki) -> tuple[x509.Certificate, ...]:
    return (pki.org("000.00.01.H27").cert, pki.issuing_ca, pki.root)


def _snapshot(pki: GeneratedPki, responder: OcspResponder, ca: Issuer) -> OcspSnapshot:
    cert = pki.org("000.00.01.H27").cert
    return OcspSnapshot.of([(CertId.of(cert, ca.cert), _entry(responder, cert, ca))])


def _root_crl(pki: GeneratedPki) -> CrlSnapshot:
    return CrlSnapshot.of([CrlEntry(pki.crls[0], PKI_NOW)])


def test_a_revocation_after_the_receipt_time_does_not_refuse_the_packet(
    pki: GeneratedPki, ca: Issuer, vectors: Vectors,
) -> None:
    responder = OcspResponder(PKI_NOW, issuers=[ca],
                              revoked={_path(pki)[0].serial_number: AT + HOUR})
    evidence = check_revocation(_path(pki), _root_crl(pki), vectors.policy, AT,
                                _snapshot(pki, responder, ca))
    assert evidence["ocsp_signer"].startswith("not revoked at receipt (revoked ")


def test_a_stale_revoked_answer_still_refuses(pki: GeneratedPki, ca: Issuer,
                                              vectors: Vectors) -> None:
    responder = OcspResponder(PKI_NOW, issuers=[ca], this_update=PKI_NOW - dt.timedelta(days=5),
                              revoked={_path(pki)[0].serial_number: PKI_NOW - dt.timedelta(days=6)})
    with pytest.raises(ValidationFailure) as failure:
        check_revocation(_path(pki), _root_crl(pki), vectors.policy, AT,
                         _snapshot(pki, responder, ca))
    assert failure.value.reason is Reason.CERT_REVOKED


def test_only_http_responders_are_asked(clock: Clock) -> None:
    cache = OcspCache(clock=clock)
    query = OcspQuery(CertId(b"\0" * 32, b"\0" * 32, 1),
                      ("ftp://127.0.0.1/ocsp", "file:///etc/passwd"))
    assert cache.fetch(query) is None
    assert cache.requests == 0


def test_the_test_pki_issues_a_delegated_responder_certificate(ocsp_pki: GeneratedPki) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    paths = ocsp_pki.paths.ocsp_responder
    assert paths is not None
    cert = x509.load_pem_x509_certificates(paths.cert.read_bytes())[0]
    assert cert.issuer == ocsp_pki.issuing_ca.subject
    ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(ekus) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert cert.extensions.get_extension_for_class(x509.OCSPNoCheck) is not None
    assert ocsp_urls(cert) == ()  # its own status is never asked


# -- what is remembered about an answer never outlives it, nor serves another issuer or time --


def test_a_delegated_responder_that_expires_between_two_envelopes_is_refused_on_the_second(
    ocsp_pki: GeneratedPki,
) -> None:
    # Given an answer signed by the PKI's delegated responder, read once (its checks remembered)
    ca = Issuer(ocsp_pki.issuing_ca, ocsp_pki.keys("issuing-ca", 2048))
    paths = ocsp_pki.paths.ocsp_responder
    assert paths is not None
    delegate = ocsp_pki._load("ocsp-responder", paths)
    responder = OcspResponder(PKI_NOW, issuers=[ca])
    responder.delegate = Issuer(delegate.cert, delegate.key)  # type: ignore[arg-type]
    cert = ocsp_pki.org("000.00.01.H27").cert
    entry = _entry(responder, cert, ca)
    cert_id = CertId.of(cert, ca.cert)
    issuer_id = delegate.fingerprint  # any stable id: the memo is per issuer
    answer = read_answer(entry, cert_id, ca.cert, at=AT, freshness=HOUR, issuer_id=issuer_id)
    assert answer.responder == delegate.fingerprint
    # When the same entry is read after the responder certificate expired
    later = delegate.cert.not_valid_after_utc + dt.timedelta(seconds=1)
    # Then its signature no longer counts, although the signature checks were remembered
    with pytest.raises(OcspUnusable, match="does not verify"):
        read_answer(entry, cert_id, ca.cert, at=later, freshness=HOUR, issuer_id=issuer_id)
    assert read_answer(entry, cert_id, ca.cert, at=AT, freshness=HOUR,
                       issuer_id=issuer_id).responder == delegate.fingerprint


def test_an_answer_verified_for_one_issuer_is_not_taken_as_verified_for_another(
    pki: GeneratedPki, ca: Issuer,
) -> None:
    cert = pki.org("000.00.01.H27").cert
    entry = _entry(OcspResponder(PKI_NOW, issuers=[ca]), cert, ca)
    cert_id = CertId.of(cert, ca.cert)
    assert read_answer(entry, cert_id, ca.cert, at=AT, freshness=HOUR,
                       issuer_id="issuing-ca").responder == "issuing CA"
    # The public root's key never signed it: checked for that issuer on its own
    with pytest.raises(OcspUnusable, match="does not verify"):
        read_answer(entry, cert_id, pki.public_root, at=AT, freshness=HOUR,
                    issuer_id="public-root")


def test_the_ocsp_snapshot_is_kept_until_an_answer_expires_or_arrives(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder, clock: Clock,
) -> None:
    _judge(vectors, cache)
    first = cache.ocsp_snapshot()
    assert len(first) == 2
    clock.now = PKI_NOW + dt.timedelta(hours=23)
    assert cache.ocsp_snapshot() is first
    # A new answer (the same question, asked again after the retry delay) makes a new one
    clock.now = AT + dt.timedelta(minutes=2)
    cache.refresh(ocsp=[OcspQuery(CertId.of(vectors.org.cert, vectors.pki.issuing_ca),
                                  (responder.url,))])
    second = cache.ocsp_snapshot()
    assert second is not first
    assert len(second) == 2
    # And once the answers' nextUpdate passed, none is handed out
    clock.now = PKI_NOW + dt.timedelta(days=2)
    assert len(cache.ocsp_snapshot()) == 0


def test_a_certificate_revoked_in_a_refreshed_answer_is_refused_on_the_next_envelope(
    vectors: Vectors, cache: RevocationCache, responder: OcspResponder, clock: Clock,
) -> None:
    # Given packets accepted on "good" answers (every cache warm)
    assert _judge(vectors, cache)[1].accepted
    assert _judge(vectors, cache)[0].accepted
    # When the responder now says revoked and the hub asks again
    responder.revoked[vectors.org.cert.serial_number] = PKI_NOW - HOUR
    clock.now = AT + dt.timedelta(minutes=2)
    cache.refresh(ocsp=[OcspQuery(CertId.of(vectors.org.cert, vectors.pki.issuing_ca),
                                  (responder.url,))])
    # Then the very next packet is refused
    report, _ = _judge(vectors, cache)
    assert (report.indication, report.reason) == (Indication.FAILED, Reason.CERT_REVOKED)


# -- an answer cryptography cannot read is unusable, never an internal error ----------------------

SHA256_WITH_RSA = bytes.fromhex("2a864886f70d01010b")  # 1.2.840.113549.1.1.11
UNKNOWN_SIGNATURE = bytes.fromhex("2a864886f70d01016f")  # 1.2.840.113549.1.1.111
SHA256 = bytes.fromhex("608648016503040201")  # 2.16.840.1.101.3.4.2.1
UNKNOWN_HASH = bytes.fromhex("60864801650304027f")  # 2.16.840.1.101.3.4.2.127


def _swap(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def rewrite(der: bytes) -> bytes:
        assert der.count(old) == 1
        return der.replace(old, new)
    return rewrite


def test_an_answer_signed_with_an_algorithm_cryptography_does_not_know_is_unusable(
    ocsp_pki: GeneratedPki, vectors: Vectors,
) -> None:
    ca = Issuer(ocsp_pki.issuing_ca, ocsp_pki.keys("issuing-ca", 2048))
    responder = OcspResponder(PKI_NOW, issuers=[ca], rewrite=_swap(SHA256_WITH_RSA,
                                                                   UNKNOWN_SIGNATURE))
    cert = ocsp_pki.org("000.00.01.H27").cert
    cert_id = CertId.of(cert, ca.cert)
    entry = _entry(responder, cert, ca)
    with pytest.raises(OcspUnusable, match="unsupported algorithm"):
        read_answer(entry, cert_id, ca.cert, at=AT, freshness=HOUR)
    # Through the validators: undecided (retried later), not an internal error
    report = validate_packet(vectors.packet(vectors.valid_raw), at=AT, policy=vectors.policy,
                             directory=DIRECTORY, crls=vectors.root_crl_only,
                             ocsp=OcspSnapshot.of([(cert_id, entry)]))
    assert report.reason is Reason.REVOCATION_UNAVAILABLE, report.describe()
    assert report.indication is Indication.INDETERMINATE
    assert "OCSP answer unusable" in _revocation(report)["detail"]


def test_an_answer_whose_cert_id_hash_cryptography_does_not_know_names_no_certificate(
    pki: GeneratedPki, ca: Issuer,
) -> None:
    responder = OcspResponder(PKI_NOW, issuers=[ca], rewrite=_swap(SHA256, UNKNOWN_HASH))
    cert = pki.org("000.00.01.H27").cert
    cert_id = CertId.of(cert, ca.cert)
    entry = _entry(responder, cert, ca)
    assert entry.single(cert_id) is None
    assert OcspSnapshot.of([(cert_id, entry)]).for_cert(cert_id) is entry
    with pytest.raises(OcspUnusable, match="no SHA-256 answer"):
        read_answer(entry, cert_id, ca.cert, at=AT, freshness=HOUR)


@pytest.mark.parametrize(("swap", "fetch_error", "detail"), [
    pytest.param((SHA256, UNKNOWN_HASH), "no SHA-256 answer", "no OCSP answer",
                 id="an unknown CertID hash: the cache keeps no answer"),
    pytest.param((SHA256_WITH_RSA, UNKNOWN_SIGNATURE), None, "unsupported algorithm",
                 id="an unknown signature algorithm: the validators find it unusable"),
])
def test_a_responder_answering_with_an_unknown_algorithm_leaves_the_packet_undecided(
    vectors: Vectors, responder: OcspResponder, cache: RevocationCache,
    swap: tuple[bytes, bytes], fetch_error: str | None, detail: str,
) -> None:
    responder.rewrite = _swap(*swap)
    first, second = _judge(vectors, cache)
    assert responder.requests, "the responder was asked"
    for report in (first, second):
        assert report.reason is Reason.REVOCATION_UNAVAILABLE, report.describe()
    errors = " ".join(cache.ocsp.errors.values())
    assert (fetch_error in errors) if fetch_error else not errors
    assert detail in _revocation(second)["detail"]

"""The CMS side of a PDF signature as pyHanko checks it, with certificate names compared once.

pyHanko finds a signature's signer certificate among the certificates of the CMS by the
SignerInfo's issuer and serial number (or subject key identifier), then checks the signed
signing-certificate attribute (ESS, RFC 5035 / RFC 2634 §5.4) against it — twice per
signature, once while finding the certificate and once more inside ``validate_sig_integrity``.
Its ``match_issuer_serial`` compares the DER of the two issuer names first and, when they
differ, compares them as RFC 5280 §7.1 says, with asn1crypto's RFC 4518 string preparation
(unicode mapping, NFKC, prohibited characters — a Python loop per character, per attribute,
per comparison). The ESS attribute names its issuer in a GeneralName, whose encoding carries an
explicit ``[4]`` tag and so never equals the certificate's: every ESS check took that path, and
so did every other certificate of the CMS while the signer was searched for. That was ~4 ms of
the bench's 1 MB envelope (two signatures; issue 23).

The functions below are pyHanko 0.38's own steps — ``extract_certs_for_validation``,
``extract_certificate_info``, ``_check_signing_certificate``, ``check_ess_certid``,
``match_issuer_serial`` and ``validate_sig_integrity`` (``pyhanko/sign/general.py`` and
``pyhanko/sign/validation/generic_cms.py``) — in the same order, raising the same exceptions,
with one change: the RFC 5280 comparison of two names is remembered by their DER
(:func:`_names_match`), which is all it depends on. The hub calls them instead of pyHanko's on
its fast path only; nothing in pyHanko is replaced. Proven equal to pyHanko's function by
function (``tests/unit/validators/test_pdf_cms.py``: names equal only once prepared, names that
cannot be prepared, signer identified by key identifier, ESS attributes that do not match) and
on every PDF shape (``tests/unit/validators/test_pdf_fast_path.py``).

:func:`byte_range_digests` hashes the ``/ByteRange`` of every signature of a PDF from the bytes
in memory (memoryview slices, the common prefix of the ranges hashed once) — what pyHanko's
``byte_range_digest`` computes by reading the file 4 KiB at a time, once per signature.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

_DIGESTS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_384",
                      "sha3_512"})
"""Digest algorithms :func:`byte_range_digests` computes (pyHanko's own hash for each; any
other is left to pyHanko, whose error, if any, is then its own)."""

_NAME_MATCHES = 1024
"""Name pairs remembered (a PKI has a handful of issuer names; unknown pairs cost one
comparison each, as in pyHanko)."""


@functools.lru_cache(maxsize=_NAME_MATCHES)
def _names_match(expected: bytes, actual: bytes) -> bool:
    """asn1crypto's ``Name.__eq__`` (RFC 5280 §7.1, RFC 4518 preparation) of two names, given
    the DER of their RDNSequences; False where it raises ValueError, as ``match_issuer_serial``
    has it. Anything else it raises propagates (and is not remembered)."""
    from asn1crypto import x509

    try:
        return bool(x509.RDNSequence.load(expected) == x509.RDNSequence.load(actual))
    except ValueError:
        return False


def _same_issuer(expected: Any, cert: Any) -> bool:
    """``expected.dump() == cert.issuer.dump() or expected == cert.issuer``, ValueError being
    no match: pyHanko's issuer test, the second half remembered."""
    try:
        issuer = cert.issuer
        if expected.dump() == issuer.dump():
            return True
        # Name.__eq__ is ``isinstance(other, Name) and self.chosen == other.chosen``: both
        # are Names here (an IssuerAndSerialNumber's issuer, a GeneralName's directoryName).
        return _names_match(expected.chosen.dump(), issuer.chosen.dump())
    except ValueError:
        return False


def match_issuer_serial(expected_issuer_serial: Any, cert: Any) -> bool:
    """pyHanko's ``match_issuer_serial``: ``cert`` is the certificate that
    ``expected_issuer_serial`` (an IssuerAndSerialNumber, or an ESS IssuerSerial) names."""
    from asn1crypto import x509

    serial_asn1 = cert["tbs_certificate"]["serial_number"]
    expected_issuer = expected_issuer_serial["issuer"]
    if isinstance(expected_issuer, x509.GeneralNames):
        if len(expected_issuer) != 1 or expected_issuer[0].name != "directory_name":
            return False
        expected_issuer = expected_issuer[0].chosen
    issuer_match = _same_issuer(expected_issuer, cert)
    return bool(issuer_match and expected_issuer_serial["serial_number"] == serial_asn1)


def check_ess_certid(cert: Any, certid: Any) -> bool:
    """pyHanko's ``check_ess_certid``: the ESSCertID(v2) hashes and names ``cert``."""
    from asn1crypto import tsp
    from cryptography.hazmat.primitives import hashes
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    # ESSCertID (v1) hashes with SHA-1 by definition (RFC 2634 §5.4.1)
    hash_algo = ("sha1" if isinstance(certid, tsp.ESSCertID)
                 else certid["hash_algorithm"]["algorithm"].native)
    md = hashes.Hash(get_pyca_cryptography_hash(hash_algo))
    md.update(cert.dump())
    if md.finalize() != certid["cert_hash"].native:
        return False
    expected_issuer_serial = certid["issuer_serial"]
    return not expected_issuer_serial or match_issuer_serial(expected_issuer_serial, cert)


def check_signing_certificate(cert: Any, signed_attrs: Any) -> None:
    """pyHanko's ``_check_signing_certificate``: the signed signing-certificate(v2) attribute,
    if any, names ``cert``; raises SignatureValidationError if not."""
    from pyhanko.sign.ades.report import AdESIndeterminate
    from pyhanko.sign.validation import errors
    from pyhanko.sign.validation.generic_cms import get_signing_cert_attr

    attr = get_signing_cert_attr(signed_attrs)
    if attr is None:
        return
    certid = attr["certs"][0]  # the signer's; the others only restrict the CAs
    if not check_ess_certid(cert, certid):
        raise errors.SignatureValidationError(
            f"Signing certificate attribute does not match selected signer's certificate for "
            f"subject\"{cert.subject.human_friendly}\".",
            ades_subindication=AdESIndeterminate.NO_SIGNING_CERTIFICATE_FOUND)


def _partition(certs: Sequence[Any], signer_info: Any) -> tuple[Any, list[Any]]:
    """pyHanko's ``_partition_certs``: the signer's certificate (the last that matches the
    SignerInfo's sid, as pyHanko keeps it), and the others."""
    from pyhanko.sign.general import CMSExtractionError

    sid = signer_info["sid"]
    if sid.name == "issuer_and_serial_number":
        def predicate(c: Any) -> bool:
            return match_issuer_serial(sid.chosen, c)
    elif sid.name == "subject_key_identifier":
        ski = sid.chosen.native

        def predicate(c: Any) -> bool:
            return bool(c.key_identifier == ski)
    else:
        raise NotImplementedError
    cert = None
    other_certs = []
    for c in certs:
        if predicate(c):
            cert = c
        else:
            other_certs.append(c)
    if cert is None:
        raise CMSExtractionError(  # type: ignore[no-untyped-call]
            "signer certificate not included in signature")
    return cert, other_certs


def signer_certificates(signed_data: Any) -> Any:
    """pyHanko's ``extract_certs_for_validation`` (ETSI EN 319 102-1 §5.2.3.4): the signer's
    certificate and the others carried in the CMS, as pyHanko's ``SignedDataCerts``, the
    signing-certificate attribute checked; raises what pyHanko raises."""
    from pyhanko.sign.ades.report import AdESIndeterminate
    from pyhanko.sign.general import CMSExtractionError, SignedDataCerts, extract_signer_info
    from pyhanko.sign.validation import errors

    try:
        # extract_certificate_info
        certs, attr_certs = [], []
        for c in signed_data["certificates"]:
            cert = c.chosen.untag()
            if c.name == "certificate":
                certs.append(cert)
            elif c.name == "v2_attr_cert":
                attr_certs.append(cert)
        signer_cert, other_certs = _partition(certs, extract_signer_info(signed_data))
        cert_info = SignedDataCerts(
            signer_cert=signer_cert, other_certs=other_certs, attribute_certs=attr_certs)
    except CMSExtractionError:
        raise errors.SignatureValidationError(
            "signer certificate not included in signature",
            ades_subindication=AdESIndeterminate.NO_SIGNING_CERTIFICATE_FOUND) from None
    signer_info = extract_signer_info(signed_data)
    check_signing_certificate(cert_info.signer_cert, signer_info["signed_attrs"])
    return cert_info


def validate_sig_integrity(
    signer_info: Any, cert: Any, expected_content_type: str, actual_digest: bytes, *,
    signing_certificate_checked: bool = False,
) -> tuple[bool, bool]:
    """pyHanko's ``validate_sig_integrity`` with its default signature validator: (the digest
    equals the signed messageDigest, the signature verifies under ``cert``'s key).

    ``signing_certificate_checked``: ``cert`` is what :func:`signer_certificates` found for
    this very ``signer_info``, so the signing-certificate attribute was checked against it then
    (pyHanko checks it twice on this path, "for compatibility", with the same attribute and
    certificate: the second answer is the first) and is not checked again."""
    from asn1crypto import core
    from cryptography.exceptions import InvalidSignature
    from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate
    from pyhanko.sign.general import (
        CMSStructuralError,
        MultivaluedAttributeError,
        NonexistentAttributeError,
        find_unique_cms_attribute,
    )
    from pyhanko.sign.validation import errors
    from pyhanko.sign.validation.generic_cms import validate_algorithm_protection
    from pyhanko.sign.validation.utils import extract_message_digest
    from pyhanko_certvalidator.sig_validate import (
        DefaultSignatureValidator,
        SignatureValidationContext,
    )

    signature_algorithm = signer_info["signature_algorithm"]
    digest_algorithm_obj = signer_info["digest_algorithm"]
    md_algorithm = digest_algorithm_obj["algorithm"].native
    signature = signer_info["signature"].native
    embedded_digest: bytes | None
    if signer_info["signed_attrs"] is core.VOID:
        embedded_digest = None
        prehashed = True
        signed_data = actual_digest
    else:
        signed_attrs = signer_info["signed_attrs"].untag()  # re-tagged as a universal SET OF
        signed_data = signed_attrs.dump()
        prehashed = False
        try:
            validate_algorithm_protection(
                signed_attrs, claimed_digest_algorithm_obj=digest_algorithm_obj,
                claimed_signature_algorithm_obj=signature_algorithm,
                claimed_mac_algorithm_obj=None)
        except CMSStructuralError as e:
            raise errors.SignatureValidationError(
                e.failure_message, ades_subindication=AdESFailure.FORMAT_FAILURE) from None
        except errors.CMSAlgorithmProtectionError as e:
            raise errors.SignatureValidationError(
                e.failure_message, ades_subindication=AdESIndeterminate.GENERIC) from None
        if not signing_certificate_checked:
            check_signing_certificate(cert, signed_attrs)
        try:
            content_type = find_unique_cms_attribute(signed_attrs, "content_type")
        except (NonexistentAttributeError, MultivaluedAttributeError):
            raise errors.SignatureValidationError(
                "Content type not found in signature, or multiple content-type attributes "
                "present.", ades_subindication=AdESFailure.FORMAT_FAILURE) from None
        content_type = content_type.native
        if content_type != expected_content_type:
            raise errors.SignatureValidationError(
                f"Content type {content_type} did not match expected value "
                f"{expected_content_type}", ades_subindication=AdESFailure.FORMAT_FAILURE)
        embedded_digest = extract_message_digest(signer_info)
    try:
        DefaultSignatureValidator().validate_signature(
            signature, signed_data, cert.public_key, signature_algorithm,
            context=SignatureValidationContext(
                contextual_md_algorithm=md_algorithm, prehashed=prehashed))
        valid = True
    except InvalidSignature:
        valid = False
    intact = actual_digest == embedded_digest if embedded_digest is not None else valid
    return intact, valid


def _standard_range(byte_range: Any, size: int) -> tuple[int, int, int, int] | None:
    """``/ByteRange`` as four integers from 0 to the file's ``size``, or None: anything else
    (an odd count, a negative or huge offset, a reference, a real number) is left to pyHanko,
    which raises or reads it its own way."""
    if not isinstance(byte_range, list):
        return None
    values = tuple(byte_range)
    if len(values) != 4 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= size for v in values):
        return None
    return int(values[0]), int(values[1]), int(values[2]), int(values[3])


def byte_range_digests(data: bytes, signatures: Sequence[Any]) -> list[bytes | None]:
    """The ``/ByteRange`` digest of each embedded signature of the PDF ``data``, as pyHanko's
    ``EmbeddedPdfSignature.compute_digest`` gives it (None where pyHanko is left to compute
    it: a range that is not four integers within the file, another digest algorithm).

    pyHanko reads each range from the file 4 KiB at a time, a length past the end stopping
    there: slices of ``data`` do the same without a copy. The first range of every signature
    starts at the file's start, so for signatures with the same algorithm the common prefix is
    hashed once (a hash state copied where each signature's first range ends)."""
    from cryptography.hazmat.primitives import hashes
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    view = memoryview(data)
    digests: list[bytes | None] = [None] * len(signatures)
    by_algorithm: dict[str, list[tuple[int, int, tuple[int, int, int, int]]]] = {}
    for i, sig in enumerate(signatures):
        ranges = _standard_range(getattr(sig, "byte_range", None), len(data))
        algorithm = getattr(sig, "external_md_algorithm", None)
        if ranges is None or algorithm not in _DIGESTS:
            continue
        by_algorithm.setdefault(algorithm, []).append((ranges[1] if ranges[0] == 0 else -1, i,
                                                       ranges))
    for algorithm, wanted in by_algorithm.items():
        spec = get_pyca_cryptography_hash(algorithm)
        prefix, hashed = hashes.Hash(spec), 0
        for first_end, i, (lo1, len1, lo2, len2) in sorted(wanted):
            if first_end < 0:  # a first range not at the file's start: hashed on its own
                md = hashes.Hash(spec)
                md.update(view[lo1:lo1 + len1])
            else:
                prefix.update(view[hashed:first_end])
                hashed = first_end
                md = prefix.copy()
            md.update(view[lo2:lo2 + len2])
            digests[i] = md.finalize()
    return digests

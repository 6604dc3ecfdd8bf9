"""PDF attachment signatures (PAdES-style), validated with pyHanko under the same roots.

Where the legally binding signatures are (Circular 41/2017/TT-BTTTT Art. 6; Decree
30/2020/NĐ-CP Art. 5): in the attached PDF — the competent **person**'s signature and the
**organization**'s (the electronic seal). The rules:

- every attachment that is a PDF — declared ``application/pdf``, or starting with ``%PDF-``
  within its first 1024 bytes whatever type the manifest declares (issue 16, M3) — and
  carries signatures is validated: each signature must be intact and verify
  (PDF_SIGNATURE_INVALID), cover the document as signed with no later change beyond what
  ``policy.pdf_changes`` allows (PDF_MODIFIED_AFTER_SIGNING, below), and be made with a
  certificate trusted under the specialized roots, with the same policy as the envelope
  signature (PDF_SIGNER_UNTRUSTED; revocation data missing → REVOCATION_UNAVAILABLE);
- what may change after a signature (:class:`~hub.validators.trust.PdfChangePolicy`, pyHanko's
  difference analysis; issue 16, M2 "shadow attacks"): after the sending organization's seal
  (its last signature, found by the directory) and after the last signature of any PDF, by
  default only revocation data and document timestamps — a changed form field, a new
  annotation or a further signature (say one whose appearance covers the page) is refused;
  after an earlier signature (the competent person's), what issuing needs — the clerk filling
  in the number and date — with the fields changed recorded in the evidence
  (``changed_before_seal``);
- a PAdES document timestamp (``/DocTimeStamp``, B-LTA: what archiving adds after the last
  signature) is no one's signature — neither the seal nor a signature after it — and is
  checked on its own (:func:`check_timestamp`): intact, nothing changed after it beyond the
  same policy, its TSA on a path to the configured roots (PDF_SIGNER_UNTRUSTED otherwise);
- a signature whose ``/SubFilter`` pyHanko does not validate (``adbe.x509.rsa_sha1``,
  ``adbe.pkcs7.sha1``), which pyHanko would silently leave out, is PDF_SIGNATURE_INVALID;
  one made with an algorithm pyHanko's policy refuses (SHA-1, MD5, a short key) is
  PDF_SIGNER_UNTRUSTED with the algorithm named in the detail;
- with ``policy.require_pdf_signatures`` (default on) the **main document** — the first PDF in
  the manifest — must carry a valid signature of a *person* signer and one of the
  *organization* signer of the sending body, as the directory lists them
  (PDF_PERSON_SIGNATURE_MISSING / PDF_ORGANIZATION_SIGNATURE_MISSING);
- an envelope whose manifest has no PDF passes this check: the requirement applies to the main
  document when it is a PDF (other formats are not signed in place). A PDF that cannot be read
  is PDF_MALFORMED when the policy is on; with the policy off it is skipped (the hub is no PDF
  linter) — unless it is needed for a signature check, which it then is not. An encrypted PDF
  anyone can open (empty user password: an owner password only restricts viewers) is read,
  decrypted, like any other;
- what a PDF may cost is bounded before pyHanko reads an object (:func:`_check_cross_references`,
  pyHanko's own xref reader with the bounds checked on what it parsed): at most
  :data:`MAX_PDF_REVISIONS` revisions (the difference analysis grows with their square), no
  xref stream declaring entries that its data or the file cannot hold (pyHanko's lenient
  reader would make each up: 241 bytes, 1.5 GB), no xref table read twice. Out of bounds is
  PDF_MALFORMED whatever the policy: such a file is not skipped.

How a signature is checked (:func:`_check_signature`): pyHanko's lower-level API decides
integrity — the same calls :func:`pyhanko.sign.validation.validate_pdf_signature` makes
(SubFilter, ``/ByteRange`` digest, coverage, difference analysis, CMS signature, signed
attributes, pyHanko's algorithm policy) — and the hub decides trust with
:func:`~hub.validators.trust.validate_chain` and
:func:`~hub.validators.trust.check_revocation`. What pyHanko's path validation would add on top
(RFC 5280 §6.1 over the same path: path length, name constraints, critical extensions; its
signing key-usage rule, nonRepudiation) is run once per certification path and remembered in
the policy's cache: none of it depends on the validation time once the hub has found every
certificate of the path valid at ``at``. Signatures pyHanko treats specially (timestamp tokens,
seed values, CAdES signer attributes) go through the reference. :func:`check_signature_reference`
is the reference — pyHanko's full ``validate_pdf_signature`` with a fresh
``ValidationContext``, then the hub's trust rules — kept to prove the fast path gives the same
verdict (``tests/unit/validators/test_pdf_fast_path.py``).

What the fast path does differently, never what it decides (issue 23): it finds the signer
certificate and checks the signing-certificate attribute with :mod:`hub.validators._pdfcms` —
pyHanko's own steps, with each RFC 5280 name comparison remembered instead of redone (~4 ms
per 1 MB envelope); and it hashes every signature's ``/ByteRange`` from the bytes in memory,
their common prefix once, handing pyHanko the digests it would have computed
(:func:`_seed_digests`). Nothing in pyHanko is replaced for that. Reading a PDF, pyHanko parses
each signature's ``/Contents`` hex string one character at a time; :func:`read_hex_string` is
the same function without the loop (the same result, position and errors, proven on random
input; anything unusual is handed back to pyHanko's own). It is the one change made to pyHanko
itself, process-wide: installed explicitly at start-up by :func:`install_hex_reader`, on the
pinned pyHanko release only (:data:`HEX_READER_PYHANKO`).

Errors: what pyHanko, pyhanko-certvalidator and asn1crypto raise on malformed input — their
failed ``assert`` statements and cryptography's UnsupportedAlgorithm included
(:func:`_is_input_error`) — is a verdict on the document (PDF_SIGNATURE_INVALID; a file nested
too deeply for the reader, or unreadable, PDF_MALFORMED; a certificate that cannot be read,
PDF_SIGNER_UNTRUSTED). Anything else (MemoryError, RuntimeError, an assert of the hub's own)
is the hub's own problem and propagates (INTERNAL_ERROR, retried), never a permanent refusal.

pyHanko's synchronous API calls ``asyncio.run()``: never call these functions from inside a
running event loop (the hub's consumers are threads, not coroutines); doing so is such an
internal error.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from hub.edxml.model import Attachment, Envelope
from hub.reasons import Reason
from hub.validators import _pdfcms
from hub.validators.ocsp import OcspQuery, OcspSnapshot
from hub.validators.outcome import Indication, Refusal, ValidationFailure
from hub.validators.trust import (
    BoundedCache,
    CrlSnapshot,
    PdfChange,
    TrustPolicy,
    check_revocation,
    fingerprint,
    read_certificate,
    validate_chain,
)

PDF_TYPES = frozenset({"application/pdf"})
PDF_MAGIC = b"%PDF-"
PDF_HEADER_WINDOW = 1024
"""Where PDF readers look for the ``%PDF-`` header (ISO 32000 implementation notes): the hub
finds PDFs the same way, whatever type the manifest declares (issue 16, M3)."""
_LEVELS = {PdfChange.NONE: "NONE", PdfChange.REVOCATION_DATA: "LTA_UPDATES",
           PdfChange.FORM_FILLING: "FORM_FILLING", PdfChange.ANNOTATIONS: "ANNOTATIONS"}
_INPUT_ERRORS: tuple[type[Exception], ...] = (
    ValueError, KeyError, TypeError, IndexError, AttributeError, NotImplementedError,
    ArithmeticError, UnsupportedAlgorithm, zlib.error)
"""What pyHanko, pyhanko-certvalidator and asn1crypto raise on malformed input, besides
pyHanko's ``PdfError`` (:func:`_input_errors`) and their failed ``assert`` statements
(:func:`_is_input_error`): a signature they cannot read is PDF_SIGNATURE_INVALID, a file they
cannot read PDF_MALFORMED. That includes cryptography's UnsupportedAlgorithm (a signer key of
an algorithm it does not know) and arithmetic on absurd numbers. Anything else (RuntimeError
from a running event loop, MemoryError ...) is the hub's problem: it propagates and becomes
INTERNAL_ERROR, retried — never a permanent verdict on the document."""
MAX_PDF_REVISIONS = 64
"""Revisions (cross-reference sections) a PDF may have. Signing workflows add a handful — the
person's signature, the clerk's filling, the seal, revocation data, document timestamps — while
the cost of pyHanko's difference analysis grows with the square of the count (1,600 empty
updates, 0.3 MB: 9 s). A PDF with more is PDF_MALFORMED, found before pyHanko reads any
object."""
XREF_BYTES_PER_ENTRY = 8
"""The fewest bytes of the file that one cross-reference entry can stand for. An xref stream
may declare entries (``/Index``, ``/Size``) that its data does not hold: pyHanko's lenient
reader then makes each up — a 241-byte file declaring 2,000,000,000 of them ended in
MemoryError. Every object of a real PDF takes far more than 8 bytes, even compressed in an
object stream; a PDF whose xref streams declare more entries than its size allows, or more than
their decoded data holds, is PDF_MALFORMED."""
_XREF_ENTRIES_FLOOR = 1024
"""Entries any PDF may declare, however small (a few thousand cost nothing)."""
_XREF_SHORTFALL = 64
"""Entries an xref stream's data may lack (a writer off by a few, which pyHanko tolerates)."""


class SignerDirectory(Protocol):
    """What the PDF check needs from :class:`hub.directory.Directory`."""

    def signer_for(self, organ_id: str, certificate: x509.Certificate, at: datetime) -> Any: ...


@functools.lru_cache(maxsize=256)
def _asn1(cert: x509.Certificate) -> Any:
    """The asn1crypto form of a configured certificate (roots and CAs: converted once)."""
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _validation_context(policy: TrustPolicy, at: datetime) -> Any:
    """A fresh pyhanko-certvalidator context per signature (it keeps state); the reference's.

    It gets no revocation data on purpose: revocation is judged once, by
    :func:`~hub.validators.trust.check_revocation`, with the hub's rule (CRL or OCSP, the same
    freshness window); pyHanko checks integrity and the path to the specialized roots.
    """
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[_asn1(c) for c in policy.roots],  # never the OS store
        other_certs=[_asn1(c) for c in policy.intermediates],
        allow_fetching=False,
        moment=at,
        revocation_mode="soft-fail",
    )


def _declared_pdf(content_type: str) -> bool:
    """Whether ``content_type`` names PDF (not remembered: the sender writes it, any length)."""
    return content_type.partition(";")[0].strip().lower() in PDF_TYPES


def _is_pdf(content_type: str, data: bytes | None = None) -> bool:
    """Declared as a PDF, or a PDF by its content (the header in the first 1024 bytes:
    ``find`` within the window, which is ``in data[:1024]`` without copying the window)."""
    return _declared_pdf(content_type) or (
        data is not None and data.find(PDF_MAGIC, 0, PDF_HEADER_WINDOW) >= 0)


def _is_pdf_attachment(attachment: Attachment) -> bool:
    return _is_pdf(attachment.content_type, attachment.data)


@functools.cache
def _input_errors() -> tuple[type[Exception], ...]:
    from pyhanko.pdf_utils.misc import PdfError

    return (PdfError, *_INPUT_ERRORS)


_LIBRARIES = frozenset({"pyhanko", "pyhanko_certvalidator", "asn1crypto"})
"""Whose ``assert`` statements check input (:func:`_is_input_error`)."""


def _is_input_error(exc: Exception) -> bool:
    """Whether ``exc`` is what pyHanko, its certificate validator or asn1crypto raise on
    malformed input (:data:`_INPUT_ERRORS`): a verdict on the document. An AssertionError is,
    when one of their own ``assert`` statements failed (a SignerInfo naming ECDSA or Ed25519
    over an RSA key, xref subsections out of order); anywhere else — the hub's code, a test's
    stand-in — it is a bug, and propagates (INTERNAL_ERROR)."""
    if isinstance(exc, AssertionError):
        frames = exc.__traceback__
        while frames is not None and frames.tb_next is not None:
            frames = frames.tb_next
        module = "" if frames is None else str(frames.tb_frame.f_globals.get("__name__", ""))
        return module.partition(".")[0] in _LIBRARIES
    return isinstance(exc, _input_errors())


def _level(change: PdfChange) -> Any:
    """pyHanko's ModificationLevel for a :class:`~hub.validators.trust.PdfChange`."""
    from pyhanko.sign.diff_analysis import ModificationLevel

    return ModificationLevel[_LEVELS[change]]


def _change_name(level: Any) -> str:
    return next((c.value for c, n in _LEVELS.items() if level is not None and n == level.name),
                str(level))


def _modified(coverage: Any, level: Any, docmdp_ok: bool | None, allowed: Any) -> bool:
    """Changed after signing beyond what ``allowed`` (a ModificationLevel) permits, or not
    known not to be."""
    from pyhanko.sign.validation import SignatureCoverageLevel

    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return False
    if coverage != SignatureCoverageLevel.ENTIRE_REVISION:
        return True
    return level is None or level > allowed or not docmdp_ok


def _refuse_unsound(facts: Any, name: str, field: str, allowed: PdfChange) -> None:
    """The integrity verdict, in pyHanko's order, for both paths: ``facts`` is pyHanko's
    signature status (the reference) or :class:`_Integrity` (the fast path)."""
    if not facts.intact:
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING, f"{name} field {field}: signed bytes changed")
    if not facts.valid:
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID, f"{name} field {field}: signature does not verify")
    if _modified(facts.coverage, facts.modification_level, facts.docmdp_ok, _level(allowed)):
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING,
            f"{name} field {field}: changed after signing "
            f"({_change_name(facts.modification_level)}; allowed: {allowed.value})")


def _changed_fields(diff: Any) -> frozenset[str]:
    """The form fields pyHanko's difference analysis saw changed after a signature."""
    from pyhanko.sign.diff_analysis import DiffResult

    return frozenset(diff.changed_form_fields) if isinstance(diff, DiffResult) else frozenset()


def _load_certificate(der: bytes, name: str, field: str) -> x509.Certificate:
    """A certificate carried in a PDF signature, loaded and readable, or PDF_SIGNER_UNTRUSTED
    (CERT_MALFORMED)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        read_certificate(cert)
    except (ValueError, ValidationFailure):
        raise ValidationFailure(
            Reason.PDF_SIGNER_UNTRUSTED,
            f"{name} field {field}: {Reason.CERT_MALFORMED.value}") from None
    return cert


@dataclass(frozen=True, slots=True)
class _Checked:
    """One signature that passed (its trust possibly pending revocation data)."""

    cert: x509.Certificate
    pending: ValidationFailure | None
    """The INDETERMINATE failure left for later (revocation data missing), if any."""
    changed: frozenset[str]
    """Form fields changed after this signature (pyHanko's difference analysis)."""
    level: Any
    """pyHanko's ModificationLevel of what followed this signature."""


@dataclass(frozen=True, slots=True)
class _Revocation:
    """The revocation data handed in, and where to note the OCSP questions left open."""

    crls: CrlSnapshot
    ocsp: OcspSnapshot | None
    wanted: list[OcspQuery] | None


@dataclass(frozen=True, slots=True)
class _Integrity:
    """What pyHanko's validate_pdf_signature establishes about one signature, trust aside."""

    intact: bool
    """The ``/ByteRange`` digest equals the signed messageDigest."""
    valid: bool
    """The CMS signature verifies under the signer's key."""
    coverage: Any
    """pyHanko's SignatureCoverageLevel."""
    modification_level: Any
    """pyHanko's ModificationLevel of later revisions (None: not known)."""
    docmdp_ok: bool | None
    changed: frozenset[str]
    """Form fields changed after signing."""
    algorithm_problem: str | None
    """Why pyHanko's algorithm policy refuses the signature (weak digest, short key), if so:
    pyHanko then never trusts the signer."""
    certs: Any
    """The CMS's certificates (pyHanko's SignedDataCerts): the signer's, and the others."""


def _trusted_path(
    others: Sequence[Any],
    cert: x509.Certificate,
    name: str,
    field: str,
    policy: TrustPolicy,
    revocation: _Revocation,
    at: datetime,
) -> tuple[tuple[x509.Certificate, ...] | None, ValidationFailure | None]:
    """The hub's trust rules (as for the envelope signature: roots, policy OIDs, public CA,
    CRLs, OCSP), with the other certificates the CMS carries (``others``) offered for the
    path. Returns the path, or (None, the pending INDETERMINATE failure); raises
    PDF_SIGNER_UNTRUSTED for a permanent failure."""
    offered = [_load_certificate(c.dump(), name, field) for c in others]
    try:
        path = validate_chain(cert, offered, policy, at)
        check_revocation(path, revocation.crls, policy, at, revocation.ocsp, revocation.wanted)
    except ValidationFailure as failure:
        if failure.indication is Indication.INDETERMINATE:
            # Keep going: a permanent failure further on wins over a pointless retry, and
            # every signature's open OCSP question is collected at once.
            return None, ValidationFailure(
                failure.reason, f"{name} field {field}: {failure.detail}",
                indication=Indication.INDETERMINATE, evidence=failure.evidence)
        raise ValidationFailure(
            Reason.PDF_SIGNER_UNTRUSTED, f"{name} field {field}: {failure.reason.value}",
            evidence={"pdf_signer": fingerprint(cert)}) from None
    return path, None


def check_signature_reference(
    embedded: Any, name: str, policy: TrustPolicy, revocation: _Revocation, at: datetime,
    allowed: PdfChange = PdfChange.FORM_FILLING,
) -> _Checked:
    """The reference: pyHanko's full ``validate_pdf_signature`` (path building included), then
    the hub's trust rules. The same verdict as :func:`_check_signature`, several times slower.
    ``allowed``: what may have changed after this signature."""
    from pyhanko.sign.validation import validate_pdf_signature

    field = embedded.field_name or "?"
    try:
        status = validate_pdf_signature(
            embedded, signer_validation_context=_validation_context(policy, at))
    except RecursionError:
        raise ValidationFailure(
            Reason.PDF_MALFORMED, f"{name} field {field}: nested too deeply") from None
    except Exception as exc:  # pyHanko raises many types for broken CMS: "invalid"
        if not _is_input_error(exc):
            raise
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID, f"{name} field {field}: {type(exc).__name__}") from None
    _refuse_unsound(status, name, field, allowed)
    cert = _load_certificate(status.signing_cert.dump(), name, field)
    changed = _changed_fields(status.diff_result)
    path, pending = _trusted_path(
        embedded.other_embedded_certs, cert, name, field, policy, revocation, at)
    if path is None:
        # pyHanko's own verdict below would only repeat the missing revocation data.
        return _Checked(cert, pending, changed, status.modification_level)
    if not status.trusted:
        try:
            problem = _algorithm_problem(embedded.signer_info, status.signing_cert, at,
                                         remember=False)  # its text only: pyHanko dropped it
        except Exception as exc:  # pyHanko read the same values without failing
            if not _is_input_error(exc):
                raise
            problem = type(exc).__name__
        raise _untrusted(name, field, cert, problem, status.trust_problem_indic)
    return _Checked(cert, None, changed, status.modification_level)


def _untrusted(
    name: str, field: str, cert: x509.Certificate, algorithm_problem: str | None, problem: Any,
) -> ValidationFailure:
    """PDF_SIGNER_UNTRUSTED for a signer pyHanko does not trust although the hub's own rules
    do: an algorithm its policy refuses (SHA-1, MD5, a short key — the certificate may well be
    trusted, the signature made with it is not), else what its path validation found."""
    detail = (f"algorithm refused: {algorithm_problem}" if algorithm_problem is not None
              else f"not trusted by pyHanko ({problem})")
    return ValidationFailure(Reason.PDF_SIGNER_UNTRUSTED, f"{name} field {field}: {detail}",
                             evidence={"pdf_signer": fingerprint(cert)})


def _needs_reference(embedded: Any) -> bool:
    """Signatures whose extras pyHanko validates with the certificate validator (timestamp
    tokens), or judges from the field (seed values) or from CAdES signer attributes: rare in
    official documents, so they simply take the reference path."""
    from pyhanko.sign.general import find_cms_attribute_iter

    if "/SV" in embedded.sig_field:
        return True
    signer_info = embedded.signer_info
    signed, unsigned = signer_info["signed_attrs"], signer_info["unsigned_attrs"]
    return any(
        next(iter(find_cms_attribute_iter(attrs, kind)), None) is not None
        for attrs, kind in ((signed, "content_time_stamp"), (signed, "signer_attributes_v2"),
                            (unsigned, "signature_time_stamp_token")))


class AlgorithmVerdicts(BoundedCache):
    """pyHanko's algorithm-usage verdict of a CMS signer — None: allowed; else its failure
    message — by :func:`_algorithm_key` (hex). The keys being digests, an entry's size is
    bounded whatever the certificate holds (a sender's CMS certificate may carry a public key
    of megabytes); a miss evaluates the rule, so an attacker choosing algorithms and keys only
    pushes out older verdicts."""

    entry_overhead: ClassVar[int] = 128  # a short tuple and a hex key, no certificates

    def verdict(self, key: str) -> tuple[str | None] | None:
        """``(problem,)`` as remembered, or None when not remembered."""
        found: tuple[str | None] | None = self.get((key,))
        return found

    def put(self, key: str, problem: str | None) -> None:
        self._put((key,), (problem,), self.entry_overhead + len(key) + len(problem or ""))


_ALGORITHM_VERDICTS = AlgorithmVerdicts(size=1024, max_bytes=1 << 20)


def _algorithm_key(signature_algorithm: bytes, digest_algorithm: bytes, public_key: bytes) -> str:
    """SHA-256 (hex) of the three DER values, each length-prefixed (no two triples share an
    input)."""
    digest = hashlib.sha256()
    for part in (signature_algorithm, digest_algorithm, public_key):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _algorithm_problem(
    signer_info: Any, cert: Any, at: datetime, *, remember: bool = True,
) -> str | None:
    """Why pyHanko's algorithm policy refuses the signature of ``signer_info`` under ``cert``
    (its failure message), or None: the exact rule validate_pdf_signature applies, under the
    certificate validator's default policy (as ValidationContext() carries it). That policy
    ignores the time, so its verdict is a function of the three DER values it reads: remembered
    by them (0.4 ms a signature of asn1crypto objects, every PDF signed the same way giving the
    same answer). ``remember=False``: neither read nor written there (the reference's)."""
    from pyhanko.sign.validation import errors, generic_cms
    from pyhanko.sign.validation.utils import CMSAlgorithmUsagePolicy
    from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

    verdict_key = _algorithm_key(signer_info["signature_algorithm"].dump(),
                                 signer_info["digest_algorithm"].dump(), cert.public_key.dump())
    remembered = _ALGORITHM_VERDICTS.verdict(verdict_key) if remember else None
    if remembered is not None:
        return remembered[0]
    problem = None
    try:
        weak = DisallowWeakAlgorithmsPolicy()  # type: ignore[no-untyped-call]
        generic_cms._enforce_algorithm_usage(
            signer_info, cert, CMSAlgorithmUsagePolicy.lift_policy(weak), time_indic=at)
    except errors.DisallowedAlgorithmError as exc:
        problem = exc.failure_message
    if remember:
        _ALGORITHM_VERDICTS.put(verdict_key, problem)
    return problem


def _integrity(embedded: Any, at: datetime, certs_of: Callable[[Any], Any]) -> _Integrity:
    """pyHanko's validate_pdf_signature up to (not including) path building, step by step:
    ``async_validate_pdf_signature`` and ``cms_basic_validation`` in pyhanko/sign/validation.
    Raises what they raise (any exception means PDF_SIGNATURE_INVALID). ``certs_of`` finds the
    CMS's certificates (:class:`_CmsCertificates`)."""
    from asn1crypto import core
    from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.general import CMSStructuralError, extract_signer_info
    from pyhanko.sign.validation import SignatureCoverageLevel, errors, generic_cms

    if embedded.sig_object_type != "/Sig":
        raise errors.SignatureValidationError("Signature object type must be /Sig")
    accepted = {SigSeedSubFilter.ADOBE_PKCS7_DETACHED, SigSeedSubFilter.PADES,
                SigSeedSubFilter.PBAD_PADES}
    if SigSeedSubFilter(embedded.sig_object.get("/SubFilter", None)) not in accepted:
        raise errors.SignatureValidationError("not a recognized SubFilter type in signatures")
    embedded.compute_integrity_info()
    summary = embedded.summarise_integrity_info()
    signer_info = embedded.signer_info
    if generic_cms.extract_self_reported_ts(signer_info) is None:
        embedded.self_reported_timestamp  # noqa: B018 - pyHanko reads (and may refuse) /M
    signed_data = embedded.signed_data
    signer_info = extract_signer_info(signed_data)
    # generic_cms.extract_certs_for_validation, its name comparisons remembered (_pdfcms).
    certs = certs_of(embedded)
    cert = certs.signer_cert
    if signed_data["encap_content_info"]["content"] is not core.VOID:
        raise errors.SignatureValidationError("detached signatures have no encapsulated data")
    problem = _algorithm_problem(signer_info, cert, at)
    try:
        intact, valid = _pdfcms.validate_sig_integrity(
            signer_info, cert,
            expected_content_type=signed_data["encap_content_info"]["content_type"].native,
            actual_digest=embedded.compute_digest(), signing_certificate_checked=True)
    except CMSStructuralError as exc:
        raise errors.SignatureValidationError(exc.failure_message) from exc
    # PdfSignatureStatus.modification_level, from the same facts.
    coverage, diff = summary["coverage"], summary["diff_result"]
    if diff is None:
        level = (None if coverage == SignatureCoverageLevel.ENTIRE_REVISION
                 else ModificationLevel.NONE if coverage == SignatureCoverageLevel.ENTIRE_FILE
                 else ModificationLevel.OTHER)
    elif isinstance(diff, DiffResult):
        level = diff.modification_level
    else:
        level = ModificationLevel.OTHER
    return _Integrity(intact, valid, coverage, level, summary["docmdp_ok"], _changed_fields(diff),
                      problem, certs)


def _pyhanko_path_check(
    path: tuple[x509.Certificate, ...], signer: Any, policy: TrustPolicy, at: datetime
) -> str | None:
    """What pyHanko's path validation and signing key-usage rule say about the hub's ``path``
    (None: nothing against it). Remembered per path in ``policy.cache``: the answer does not
    depend on ``at`` once the hub has found every certificate of the path valid at ``at``
    (pyHanko's validity check only widens by its time tolerance; no revocation data is given
    to it, and its algorithm policy does not look at the time). Raises on what would make
    pyHanko's validate_pdf_signature raise."""
    from pyhanko.sign.validation import generic_cms
    from pyhanko.sign.validation.status import PdfSignatureStatus
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.authority import CertTrustAnchor
    from pyhanko_certvalidator.path import ValidationPath
    from pyhanko_certvalidator.util import CancelableAsyncIterator

    class OnePath(CancelableAsyncIterator[Any]):
        """The hub's path as pyHanko's only candidate (pyHanko's own lift_iterable_async
        raises StopIteration in a coroutine when the candidate fails)."""

        def __init__(self, candidate: Any) -> None:
            self.left = [candidate]

        async def __anext__(self) -> Any:
            if not self.left:
                raise StopAsyncIteration
            return self.left.pop()

        async def cancel(self) -> None:
            self.left.clear()

    key = ("pdf-pkix", *(fingerprint(c) for c in path))
    cached = policy.cache.get(key)
    if isinstance(cached, Refusal):
        return cached.detail
    if cached is not None:
        return None
    root = _asn1(path[-1])
    context = ValidationContext(
        trust_roots=[root], allow_fetching=False, moment=at, revocation_mode="soft-fail")
    candidate = ValidationPath(
        CertTrustAnchor(root), [_asn1(c) for c in reversed(path[1:-1])], signer)
    try:
        result = asyncio.run(generic_cms.validate_cert_usage(
            signer, context,
            key_usage_settings=PdfSignatureStatus.default_usage_constraints(None),
            paths=OnePath(candidate)))
        problem = None if result.error_subindic is None else str(result.error_subindic)
    except ValueError:  # as cms_basic_validation: a processing error is no trust
        problem = "certificate chain general failure"
    if problem is None:
        policy.cache.put(key, path)
    else:
        policy.cache.put(key, Refusal(Reason.PDF_SIGNER_UNTRUSTED, problem))
    return problem


def _check_signature(
    embedded: Any, name: str, policy: TrustPolicy, revocation: _Revocation, at: datetime,
    allowed: PdfChange = PdfChange.FORM_FILLING, certs_of: Callable[[Any], Any] | None = None,
) -> _Checked:
    """The signer certificate of a valid signature, with the revocation failure left pending
    (INDETERMINATE), if any; raises for every permanent failure. The same verdict as
    :func:`check_signature_reference`, in the same order of checks. ``certs_of``: the
    envelope's :class:`_CmsCertificates` (a fresh one by default)."""
    field = embedded.field_name or "?"
    try:
        if _needs_reference(embedded):
            return check_signature_reference(embedded, name, policy, revocation, at, allowed)
        facts = _integrity(embedded, at, certs_of or _CmsCertificates())
    except RecursionError:
        raise ValidationFailure(
            Reason.PDF_MALFORMED, f"{name} field {field}: nested too deeply") from None
    except Exception as exc:  # pyHanko raises many types for broken CMS: "invalid"
        if not _is_input_error(exc):
            raise
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID, f"{name} field {field}: {type(exc).__name__}") from None
    _refuse_unsound(facts, name, field, allowed)
    signer = facts.certs.signer_cert
    cert = _load_certificate(signer.dump(), name, field)
    path, pending = _trusted_path(
        facts.certs.other_certs, cert, name, field, policy, revocation, at)
    if path is None:
        return _Checked(cert, pending, facts.changed, facts.modification_level)
    if facts.algorithm_problem is not None:
        raise _untrusted(name, field, cert, facts.algorithm_problem, None)
    try:
        problem = _pyhanko_path_check(path, signer, policy, at)
    except RecursionError:
        raise ValidationFailure(
            Reason.PDF_MALFORMED, f"{name} field {field}: nested too deeply") from None
    except Exception as exc:  # as in the reference, where pyHanko raised it earlier
        if not _is_input_error(exc):
            raise
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID,
            f"{name} field {field}: {type(exc).__name__}") from None
    if problem is not None:
        raise _untrusted(name, field, cert, None, problem)
    return _Checked(cert, None, facts.changed, facts.modification_level)


_HEX_DIGITS = b"0123456789abcdefABCDEF"
_PDF_WHITESPACE = b" \n\r\t\f\x00"
_pyhanko_read_hex: Callable[[Any], Any] | None = None
"""pyHanko's own read_hex_string_from_stream, once :func:`install_hex_reader` replaced it."""
HEX_READER_PYHANKO = frozenset({"0.38.0"})
"""The pyHanko releases :func:`read_hex_string` is installed into (the release it was proven
equal to): on any other, :func:`install_hex_reader` leaves pyHanko alone until the proof
(``tests/unit/validators/test_pdf_fast_path.py``) has been run against it and the release
added here."""


def read_hex_string(stream: Any) -> Any:
    """pyHanko's ``read_hex_string_from_stream`` without its Python loop per character.

    A signature's ``/Contents`` is a hex string of tens of kilobytes; pyHanko reads it one
    character at a time (~4 ms per signature). The same result, the same stream position
    after it, the same errors: anything but a plain hex string — only hex digits and PDF
    whitespace up to the closing ``>``, no comment — is left to pyHanko's function
    (``tests/unit/validators/test_pdf_fast_path.py`` compares the two on random input).
    """
    import binascii

    from pyhanko.pdf_utils import generic

    start = stream.tell()
    stream.read(1)  # the "<", as pyHanko does
    data, size = b"", 4096
    while True:
        more = stream.read(size)
        searched, data = len(data), data + more
        end = data.find(b">", searched)
        if end >= 0 or len(more) < size:  # found, or the end of the file
            break
        size *= 2
    body = data[:end]
    if end < 0 or b"%" in body or body.translate(None, _PDF_WHITESPACE + _HEX_DIGITS):
        stream.seek(start)
        return pyhanko_hex_reader()(stream)
    digits = body.translate(None, _PDF_WHITESPACE)
    stream.seek(start + 1 + end + 1)
    return generic.pdf_string(binascii.unhexlify(digits + b"0" * (len(digits) % 2)))


def pyhanko_hex_reader() -> Callable[[Any], Any]:
    """pyHanko's own ``read_hex_string_from_stream``, installed or not."""
    from pyhanko.pdf_utils import generic

    return _pyhanko_read_hex or generic.read_hex_string_from_stream


def install_hex_reader() -> bool:
    """Have pyHanko's object reader use :func:`read_hex_string` — the one process-wide change
    the hub makes to pyHanko (issue 23): made explicitly at start-up (:func:`hub.app.build_hub`),
    and only on a release in :data:`HEX_READER_PYHANKO`. Returns whether it is installed.
    Without it every check gives the same verdict, ~4 ms slower per signature. Idempotent."""
    global _pyhanko_read_hex
    from pyhanko.pdf_utils import generic
    from pyhanko.version import __version__

    if __version__ not in HEX_READER_PYHANKO:
        return False
    original = generic.read_hex_string_from_stream
    if original is not read_hex_string:  # another thread may have got here first
        _pyhanko_read_hex = original
        generic.read_hex_string_from_stream = read_hex_string
    return True


def hex_reader_installed() -> bool:
    """Whether pyHanko reads hex strings with :func:`read_hex_string`."""
    from pyhanko.pdf_utils import generic

    return generic.read_hex_string_from_stream is read_hex_string


def _seed_digests(data: bytes, signatures: Sequence[Any]) -> None:
    """Give each signature its ``/ByteRange`` digest from the bytes in memory
    (:func:`~hub.validators._pdfcms.byte_range_digests`), in the cache pyHanko's
    ``compute_digest`` reads first (``external_digests``, per signature object): pyHanko then
    uses the same digest it would have computed. A range it must judge itself is left to it."""
    try:
        digests = _pdfcms.byte_range_digests(data, signatures)
        for signature, digest in zip(signatures, digests, strict=True):
            if digest is not None:
                signature.external_digests[signature.external_md_algorithm] = digest
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        return  # a CMS pyHanko cannot read: its check says so, where it reads it


def _malformed(name: str, detail: str) -> ValidationFailure:
    return ValidationFailure(Reason.PDF_MALFORMED, f"{name}: {detail}")


def _xref_stream_entries(xref: Any) -> tuple[int, int]:
    """(entries, bytes of decoded data per entry) that pyHanko's ``parse_xref_stream`` reads
    from the cross-reference stream ``xref``: each ``/Index`` count (``[0 /Size]`` without it),
    and the positive ``/W`` widths, as pyHanko reads them. A value that is no integer makes
    pyHanko's parse fail before it reads the entries it governs; counting it would only
    overcount, so it is not."""
    pairs = xref.get("/Index", None)
    if pairs is None:
        pairs = [0, xref.get("/Size")]
    widths = xref.get("/W")
    if not isinstance(pairs, list) or not isinstance(widths, list):
        return 0, 0  # pyHanko's parse fails before its first entry
    values = list(pairs)  # unresolved, as pyHanko iterates them
    counts = values[1:len(values) - len(values) % 2:2]
    entries = sum(c for c in counts if isinstance(c, int) and c > 0)
    return entries, sum(w for w in list(widths)[:3] if isinstance(w, int) and w > 0)


@functools.cache
def _bounded_xref_builder() -> type[Any]:
    """pyHanko's own cross-reference reader (``XRefBuilder``, lenient as the hub reads PDFs),
    with the hub's bounds checked on what it parsed — names decoded, the same sections in the
    same order — before it turns a section into entries. Used on its own, before the real
    reader: nothing in pyHanko is changed."""
    from pyhanko.pdf_utils.decode_limits import DecodePurpose
    from pyhanko.pdf_utils.xref import XRefBuilder

    class BoundedXRefBuilder(XRefBuilder):
        def __init__(self, handler: Any, stream: Any, last_startxref: int, name: str,
                     size: int) -> None:
            super().__init__(handler, stream, strict=False, last_startxref=last_startxref)
            self.name, self.size = name, size
            self.entries = 0
            """Entries declared by the xref streams read so far."""
            self.table_bytes = 0
            """Bytes of the xref tables read so far."""

        def _counted(self) -> None:
            if len(self.sections) > MAX_PDF_REVISIONS:
                raise _malformed(self.name, f"more than {MAX_PDF_REVISIONS} revisions "
                                            "(incremental updates)")

        def _read_xref_table(self, declared_startxref: int) -> Any:
            found = super()._read_xref_table(declared_startxref)
            meta = self.sections[-1].meta_info
            # Each table is read line by line up to its trailer: tables that share their
            # lines (nested /Prev chains) would make the reading quadratic.
            self.table_bytes += max(0, meta.end_location - meta.start_location)
            if self.table_bytes > self.size:
                raise _malformed(self.name, "cross-reference tables overlap")
            self._counted()
            return found

        def _read_xref_stream(self, declared_startxref: int) -> Any:
            found = super()._read_xref_stream(declared_startxref)
            self._counted()
            return found

        def _read_xref_stream_object(self) -> tuple[Any, Any]:
            """Every xref stream, a hybrid file's ``/XRefStm`` included."""
            ref, xref = super()._read_xref_stream_object()  # type: ignore[no-untyped-call]
            entries, width = _xref_stream_entries(xref)
            self.entries += entries
            bound = max(_XREF_ENTRIES_FLOOR, self.size // XREF_BYTES_PER_ENTRY)
            if self.entries > bound:
                raise _malformed(
                    self.name, f"cross-reference streams declare {self.entries} entries; "
                               f"a file of {self.size} bytes holds at most {bound}")
            if entries > _XREF_SHORTFALL:
                held = 0
                if width:
                    held = len(xref.read_data(DecodePurpose.XREF_STREAM,
                                              expected_size=entries * (width + 1))) // width
                if entries - held > _XREF_SHORTFALL:
                    raise _malformed(
                        self.name, f"a cross-reference stream declares {entries} entries; "
                                   f"its data holds {held}")
            return ref, xref

    return BoundedXRefBuilder


def _check_cross_references(data: bytes, name: str) -> bool:
    """Read the file's cross-reference sections as pyHanko's reader will, refusing what is out
    of proportion (PDF_MALFORMED, whatever ``require_pdf_signatures`` says: such a file is not
    skipped as unreadable): more than :data:`MAX_PDF_REVISIONS` sections, xref streams declaring
    more entries than the file or their data hold (:data:`XREF_BYTES_PER_ENTRY`), xref tables
    read twice. False when pyHanko could not read them at all (its reader will say so too)."""
    from pyhanko.pdf_utils.reader import process_data_at_eof
    from pyhanko.pdf_utils.rw_common import PdfHandler

    stream = io.BytesIO(data)
    try:
        stream.seek(-1, io.SEEK_END)  # where pyHanko's reader starts looking for %%EOF
        builder = _bounded_xref_builder()(
            PdfHandler(), stream, process_data_at_eof(stream), name, len(data))
        builder.read_xrefs()
    except RecursionError:
        return False
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        return False
    return True


def _opened(reader: Any) -> bool:
    """Whether ``reader``'s file is readable: not encrypted, or encrypted with an empty user
    password (anyone may open it: an owner password only restricts what viewers allow), which
    then decrypts it. Other encryption (a user password, certificates) cannot be read.

    A PDF 2.0 file's MAC (ISO/TS 32004) is checked once the password is accepted; pyHanko then
    reports a mismatch as a failure, but the file is decrypted all the same: it was changed
    after it was last written, and its signatures say what changed (not "unreadable", which
    ``require_pdf_signatures=false`` would skip)."""
    from pyhanko.pdf_utils.crypt.api import AuthStatus, PdfMacStatus

    if not reader.encrypted:
        return True
    result = reader.decrypt(b"")
    return result.status is not AuthStatus.FAILED or result.mac_status is PdfMacStatus.FAILED


def _unsupported_signatures(reader: Any, embedded: Sequence[Any]) -> list[str]:
    """The filled signature fields pyHanko left out of ``embedded_signatures`` — it drops, with
    a log line only, signatures whose /SubFilter it does not support (``adbe.x509.rsa_sha1``,
    ``adbe.pkcs7.sha1``: ISO 32000-1 §12.8.3, SHA-1 based) — each as "field (SubFilter)"."""
    from collections import Counter

    from pyhanko.sign.fields import enumerate_sig_fields

    filled = list(enumerate_sig_fields(reader, filled_status=True))
    left = Counter(s.field_name for s in embedded)
    missing = []
    for field, value, _ in filled:
        if left[field] > 0:
            left[field] -= 1
            continue
        sub_filter = value.get_object().get("/SubFilter", None)
        missing.append(f"{field or '?'} ({sub_filter})")
    return missing


def _signatures(data: bytes, name: str) -> Sequence[Any] | None:
    """The embedded signatures and document timestamps in the order they were made (by signed
    revision), or None when the file cannot be read as a PDF (deep nesting included: pyHanko's
    reader recurses; encrypted other than with an empty user password). Raises PDF_MALFORMED
    for a file out of proportion (:func:`_check_cross_references`), and PDF_SIGNATURE_INVALID
    for a signature pyHanko cannot validate (:func:`_unsupported_signatures`): it would
    otherwise go unchecked."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    if not _check_cross_references(data, name):
        return None
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if not _opened(reader):
            return None
        embedded = sorted(reader.embedded_signatures, key=lambda s: s.signed_revision)
        unsupported = _unsupported_signatures(reader, embedded)
    except RecursionError:
        return None
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        return None
    if unsupported:
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID,
            f"{name}: unsupported signature format, field {', '.join(unsupported)}")
    return embedded


def _pyhanko_signer(signature: Any) -> Any:
    """The signer certificate as pyHanko finds it (the reference's)."""
    return signature.signer_cert


class _CmsCertificates:
    """Each signature's CMS certificates (pyHanko's SignedDataCerts: the signer's, the others)
    as :func:`hub.validators._pdfcms.signer_certificates` finds them — the fast path's, once per
    signature of one envelope (first for the seal's role, then for the check). A failure is not
    remembered: it is raised again where the check needs the certificate, as pyHanko does."""

    def __init__(self) -> None:
        self._found: dict[Any, Any] = {}  # keyed by the signature object, kept alive meanwhile

    def __call__(self, signature: Any) -> Any:
        found = self._found.get(signature)
        if found is None:
            found = self._found[signature] = _pdfcms.signer_certificates(signature.signed_data)
        return found

    def signer(self, signature: Any) -> Any:
        return self(signature).signer_cert


def _role(
    signature: Any, sender: str, directory: SignerDirectory, at: datetime,
    signer_of: Callable[[Any], Any],
) -> str | None:
    """The directory role of a signature's signer for ``sender`` (None: unknown, or the
    signature or its certificate cannot be read — its own check says why)."""
    try:
        cert = x509.load_der_x509_certificate(signer_of(signature).dump())
        read_certificate(cert)
    except (RecursionError, ValidationFailure):
        return None
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        return None
    signer = directory.signer_for(sender, cert, at)
    return None if signer is None else str(signer.role)


def _seal_revision(
    signatures: Sequence[Any], sender: str, directory: SignerDirectory, at: datetime,
    signer_of: Callable[[Any], Any],
) -> int | None:
    """The revision the sending organization's seal (its last signature) signed, if any."""
    sealed = [s.signed_revision for s in signatures
              if _role(s, sender, directory, at, signer_of) == "organization"]
    return max(sealed) if sealed else None


PRELOADED = (
    "asn1crypto.core", "asn1crypto.tsp", "asn1crypto.x509",
    "pyhanko.pdf_utils.crypt.api", "pyhanko.pdf_utils.decode_limits",
    "pyhanko.pdf_utils.generic", "pyhanko.pdf_utils.misc", "pyhanko.pdf_utils.reader",
    "pyhanko.pdf_utils.rw_common", "pyhanko.pdf_utils.xref",
    "pyhanko.sign.ades.report", "pyhanko.sign.diff_analysis", "pyhanko.sign.fields",
    "pyhanko.sign.general", "pyhanko.sign.validation", "pyhanko.sign.validation.errors",
    "pyhanko.sign.validation.generic_cms", "pyhanko.sign.validation.pdf_embedded",
    "pyhanko.sign.validation.status", "pyhanko.sign.validation.utils", "pyhanko.version",
)
"""What the PDF check imports when it first runs (pyHanko's ``sign`` package pulls in aiohttp,
whose import builds an SSL context from the system's certificates: ~0.3 s here)."""


def preload() -> None:
    """Import what the PDF check needs now, for a long-running consumer to call at start-up.

    The check imports pyHanko lazily so that commands which never read a PDF start fast; a
    consumer would otherwise pay ~0.3 s inside its first batch holding a PDF (that batch's
    envelopes all wait), and the modules would land after ``settle_heap`` froze the start-up
    heap. pyHanko imports cryptography's deprecated DSA module: its warning is not shown."""
    import importlib
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for name in PRELOADED:
            importlib.import_module(name)


def check_pdf_attachments(
    envelope: Envelope,
    *,
    policy: TrustPolicy,
    crls: CrlSnapshot,
    directory: SignerDirectory,
    at: datetime,
    ocsp: OcspSnapshot | None = None,
    wanted: list[OcspQuery] | None = None,
    require_signatures: bool | None = None,
    reference: bool = False,
) -> dict[str, str]:
    """Validate the PDF signatures of ``envelope``; returns evidence or raises.

    Every attachment that is a PDF — declared so, or by its content — is checked.
    ``require_signatures`` overrides ``policy.require_pdf_signatures`` (the national-axis
    interop policy always requires them). The evidence names the main document and the
    fingerprints of the person and organization signers found on it (``main_person``,
    ``main_organization``), the count of its signatures (``main_signatures``) and document
    timestamps (``main_timestamps``, when it has any), and what changed between a signature
    and the seal (``changed_before_seal``). ``reference=True`` checks every signature with
    :func:`check_signature_reference` instead: the same verdict, several times slower.

    What may change after each signature is ``policy.pdf_changes``
    (:class:`~hub.validators.trust.PdfChangePolicy`): ``after_seal`` after the sender's
    organization's seal (its last signature, by the directory) and after the last signature
    of the file; ``before_seal`` after the others. A signature after the seal is refused
    unless ``signatures_after_seal``.
    """
    if not any(map(_is_pdf_attachment, envelope.attachments)) and (
        _main_document(envelope, ()) is None
    ):
        # No PDF at all (most small envelopes): the verdict below, without building the run.
        return {"pdfs": "0"}
    run = _PdfCheck(envelope, policy=policy, crls=crls, directory=directory, at=at, ocsp=ocsp,
                    wanted=wanted, require_signatures=require_signatures, reference=reference)
    for attachment in run.pdfs:
        run.attachment(attachment)
    return run.verdict()


_SignatureCheck = Callable[[Any, str, TrustPolicy, _Revocation, datetime, PdfChange], _Checked]
"""The fast path (:func:`_check_signature`) or the reference (:func:`check_signature_reference`)."""


def _main_document(envelope: Envelope, pdfs: Sequence[Attachment]) -> Attachment | None:
    """The main document: the first PDF in the manifest's order (else the first PDF)."""
    by_id = {a.content_id: a for a in envelope.attachments}
    return next(
        (by_id[r.content_id] for r in envelope.manifest
         if r.content_id in by_id and (_is_pdf(r.content_type)
                                       or _is_pdf_attachment(by_id[r.content_id]))),
        pdfs[0] if pdfs else None,
    )


def _certificate_names(prefix: str, cert: x509.Certificate) -> dict[str, str]:
    """Serial (hex, as the envelope signer's evidence writes it), issuer and subject (RFC 4514)
    and subject UID of a signer certificate already found valid (so readable): what the office's
    subscriber registry matches (:mod:`hub.ledger.subscribers`)."""
    facts = read_certificate(cert)
    names = {f"{prefix}_serial": f"{facts.serial:x}", f"{prefix}_issuer": facts.issuer_text,
             f"{prefix}_subject": facts.subject_text}
    if facts.uid:
        names[f"{prefix}_uid"] = facts.uid
    return names


DOC_TIMESTAMP = "/DocTimeStamp"
"""The signature object type of a PAdES document timestamp (ETSI EN 319 142-1 §5.4; B-LTA)."""


def _is_timestamp(embedded: Any) -> bool:
    return bool(embedded.sig_object_type == DOC_TIMESTAMP)


def check_timestamp(
    embedded: Any, name: str, policy: TrustPolicy, at: datetime, allowed: PdfChange,
) -> None:
    """A document timestamp (PAdES B-LTA, what long-term archiving adds after the last
    signature): intact and valid — pyHanko's ``validate_pdf_timestamp``: the RFC 3161 token's
    imprint over the ``/ByteRange``, its CMS signature —, nothing changed after it beyond
    ``allowed``, and its TSA certificate (extended key usage timeStamping) on a path to the
    configured roots at ``at`` — never the system's store. It names no signer: it counts
    neither as the person's signature nor as the seal, and adds no trust to them (the hub
    judges every signature at ``at``). The same on both paths."""
    from pyhanko.sign.validation import validate_pdf_timestamp

    field = embedded.field_name or "?"
    try:
        status = validate_pdf_timestamp(
            embedded, validation_context=_validation_context(policy, at))
    except RecursionError:
        raise ValidationFailure(
            Reason.PDF_MALFORMED, f"{name} field {field}: nested too deeply") from None
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID,
            f"{name} field {field}: document timestamp: {type(exc).__name__}") from None
    if not status.intact:
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING,
            f"{name} field {field}: timestamped bytes changed")
    if not status.valid:
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID,
            f"{name} field {field}: document timestamp does not verify")
    # No DocMDP applies to a timestamp (pyHanko leaves docmdp_ok unset): the level decides.
    if _modified(status.coverage, status.modification_level, True, _level(allowed)):
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING,
            f"{name} field {field}: changed after the document timestamp "
            f"({_change_name(status.modification_level)}; allowed: {allowed.value})")
    if not status.trusted:
        raise ValidationFailure(
            Reason.PDF_SIGNER_UNTRUSTED,
            f"{name} field {field}: timestamp authority not trusted "
            f"({status.trust_problem_indic})",
            evidence={"pdf_timestamp_authority": status.signing_cert.sha256.hex()})


def _refuse_signatures_after_seal(embedded: Sequence[Any], seal: int, name: str) -> None:
    later = [s.field_name or "?" for s in embedded if s.signed_revision > seal]
    if later:
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING,
            f"{name}: signed again after the organization's seal (field {', '.join(later)})")


class _PdfCheck:
    """One envelope's PDF check: its inputs, and what the signatures checked so far established
    (the roles found on the main document, the changes recorded before the seal, the first
    failure left pending). Built per envelope, never shared."""

    def __init__(
        self,
        envelope: Envelope,
        *,
        policy: TrustPolicy,
        crls: CrlSnapshot,
        directory: SignerDirectory,
        at: datetime,
        ocsp: OcspSnapshot | None,
        wanted: list[OcspQuery] | None,
        require_signatures: bool | None,
        reference: bool,
    ) -> None:
        self.reference = reference
        certs = _CmsCertificates()
        self.check: _SignatureCheck = (
            check_signature_reference if reference
            else functools.partial(_check_signature, certs_of=certs))
        self.signer_of: Callable[[Any], Any] = _pyhanko_signer if reference else certs.signer
        self.policy = policy
        self.directory = directory
        self.at = at
        self.require = (policy.require_pdf_signatures if require_signatures is None
                        else require_signatures)
        self.changes = policy.pdf_changes
        self.revocation = _Revocation(crls, ocsp, wanted)
        self.sender = envelope.sender.organ_id
        self.pdfs = [a for a in envelope.attachments if _is_pdf_attachment(a)]
        self.main = _main_document(envelope, self.pdfs)
        self.evidence: dict[str, str] = {"pdfs": str(len(self.pdfs))}
        self.roles_on_main: dict[str, str] = {}
        """Directory role → fingerprint of the first valid signer in that role on the main PDF."""
        self.certs_on_main: dict[str, x509.Certificate] = {}
        """Directory role → that signer's certificate (its names go into the evidence)."""
        self.recorded: list[str] = []
        """What changed between a signature and the seal (``changed_before_seal``)."""
        self.pending: ValidationFailure | None = None
        """The first INDETERMINATE failure (revocation data missing), raised last."""

    def attachment(self, attachment: Attachment) -> None:
        """Check every signature of one PDF, in the order they were made."""
        name = attachment.attachment_name or attachment.content_id
        embedded = _signatures(attachment.data, name)
        if embedded is None:
            if self.require:
                raise ValidationFailure(Reason.PDF_MALFORMED, f"{name}: not a readable PDF")
            self.evidence[f"skipped:{name}"] = "unreadable"
            return
        if not self.reference:
            _seed_digests(attachment.data, embedded)
        # Document timestamps are no signatures of anyone: not the seal, nor a signature
        # after it; each is checked on its own (check_timestamp).
        signatures = [s for s in embedded if not _is_timestamp(s)]
        seal = _seal_revision(signatures, self.sender, self.directory, self.at, self.signer_of)
        if seal is not None and not self.changes.signatures_after_seal:
            _refuse_signatures_after_seal(signatures, seal, name)
        last = signatures[-1].signed_revision if signatures else None
        for signature in embedded:
            if _is_timestamp(signature):
                revision = signature.signed_revision
                sealed = last is None or revision >= last or (seal is not None and revision >= seal)
                check_timestamp(signature, name, self.policy, self.at,
                                self.changes.after_seal if sealed else self.changes.before_seal)
                continue
            self.signature(signature, embedded, name, seal=seal, last=last,
                           on_main=attachment is self.main)
        if attachment is self.main:
            self.evidence["main"] = name
            self.evidence["main_signatures"] = str(len(signatures))
            if len(signatures) < len(embedded):
                self.evidence["main_timestamps"] = str(len(embedded) - len(signatures))

    def signature(
        self, signature: Any, embedded: Sequence[Any], name: str, *, seal: int | None,
        last: int | None, on_main: bool,
    ) -> None:
        """Check one signature against what may change after it (``after_seal`` for the seal,
        what follows it and the file's last signature; ``before_seal`` for the others)."""
        revision = signature.signed_revision
        sealed = revision == last or (seal is not None and revision >= seal)
        checked = self.check(signature, name, self.policy, self.revocation, self.at,
                             self.changes.after_seal if sealed else self.changes.before_seal)
        self.pending = self.pending or checked.pending
        if not sealed:
            later_fields = {s.field_name for s in embedded if s.signed_revision > revision}
            filled = sorted(checked.changed - later_fields)
            if filled:
                self.recorded.append(
                    f"{name} field {signature.field_name or '?'}, then "
                    f"{_change_name(checked.level)}: {', '.join(filled)}")
        if on_main:
            signer = self.directory.signer_for(self.sender, checked.cert, self.at)
            if signer is not None:
                self.roles_on_main.setdefault(str(signer.role), fingerprint(checked.cert))
                self.certs_on_main.setdefault(str(signer.role), checked.cert)

    def verdict(self) -> dict[str, str]:
        """The evidence, once every PDF was checked; raises for what the main document lacks,
        then for the failure left pending."""
        if self.require and self.main is not None:
            if "person" not in self.roles_on_main:
                raise ValidationFailure(
                    Reason.PDF_PERSON_SIGNATURE_MISSING,
                    f"no valid signature of a person signer of {self.sender}")
            if "organization" not in self.roles_on_main:
                raise ValidationFailure(
                    Reason.PDF_ORGANIZATION_SIGNATURE_MISSING,
                    f"no valid signature of the organization {self.sender}")
        if self.pending is not None:
            raise self.pending
        for role in ("person", "organization"):
            if role in self.roles_on_main:
                self.evidence[f"main_{role}"] = self.roles_on_main[role]
                self.evidence.update(_certificate_names(f"main_{role}", self.certs_on_main[role]))
        if self.recorded:
            self.evidence["changed_before_seal"] = "; ".join(self.recorded)
        return self.evidence

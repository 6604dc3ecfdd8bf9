"""Direct verification of the hub's one enveloped XMLDSig profile on a parsed tree (pure).

Called by :func:`hub.validators.xmldsig.check_xml_signature` only after every structural check
of the profile passed (one ``ds:Signature`` at the agreed position, one ``Reference URI=""``,
transforms exactly enveloped-signature + exclusive c14n, allowed algorithms, RSA key size,
certificate from KeyInfo, strict base64 values). The profile then leaves exactly one way to
compute each value (W3C XMLDSig 1.0 §4.3.3.3 same-document reference, §6.6.4 enveloped
signature transform; Exclusive XML Canonicalization 1.0):

1. ``SignedInfo`` in exclusive c14n without comments, as it sits in the document (the profile
   has no ``InclusiveNamespaces``: the schema check before refuses them);
2. ``SignatureValue`` verified with the leaf's RSA key — PKCS#1 v1.5, or PSS with MGF1 and a
   salt as long as the hash (RFC 6931 §2.3.10) — with the declared hash;
3. the document element with the Signature element removed (its tail text stays, joined to the
   preceding node), in exclusive c14n without comments, hashed and compared in constant time
   with ``DigestValue``.

signxml computes the same values but re-parses and re-serializes the document several times
(~1.5 ms against ~0.15 ms for a 10 KB envelope). ``tests/unit/validators/
test_xmldsig_fast_path.py`` proves the two give the same verdict on the whole signature vector
corpus, on the EDXML corpus signed by :func:`hub.trust.signing.sign_xml` and on mutated packets.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from hub.reasons import Reason
from hub.validators.outcome import ValidationFailure

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS = f"{{{DS_NS}}}"
_SIGNED_INFO = f"{DS}SignedInfo"

_PKCS1 = "pkcs1"
_PSS = "pss"
SIGNATURE_METHODS: dict[str, tuple[str, Callable[[], hashes.HashAlgorithm]]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": (_PKCS1, hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": (_PKCS1, hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": (_PKCS1, hashes.SHA512),
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1": (_PSS, hashes.SHA256),
    "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1": (_PSS, hashes.SHA384),
    "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1": (_PSS, hashes.SHA512),
}
"""The signature methods verified directly (the profile's whole set except legacy rsa-sha1)."""
DIGEST_METHODS: dict[str, Callable[[bytes], Any]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashlib.sha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashlib.sha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashlib.sha512,
}
"""The digest methods computed directly (the profile's whole set except legacy SHA-1)."""


def handles(method: str, digest: str) -> bool:
    """Whether the direct verifier computes this algorithm pair (not SHA-1: signxml does)."""
    return method in SIGNATURE_METHODS and digest in DIGEST_METHODS


def _padding(kind: str, algorithm: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if kind == _PSS:
        return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    return padding.PKCS1v15()


def _verifier(method: str) -> tuple[hashes.HashAlgorithm, padding.AsymmetricPadding]:
    kind, hash_factory = SIGNATURE_METHODS[method]
    algorithm = hash_factory()
    return algorithm, _padding(kind, algorithm)


_VERIFIERS = {method: _verifier(method) for method in SIGNATURE_METHODS}
"""The hash and padding objects of each method, built once (they are immutable parameters)."""


def document_c14n(root: etree._Element, signature: etree._Element) -> tuple[bytes, bool]:
    """Exclusive c14n (no comments) of ``root`` without ``signature``; and whether a comment
    remains in what was canonicalized (URI="" drops comments: they would travel unsigned).

    The enveloped-signature transform removes the element but not the text after it: the tail
    is joined to the preceding sibling's tail (or the parent's text) while the element is out.
    The tree is restored exactly before returning, even on error: it may be reused.
    """
    parent = signature.getparent()
    if parent is None:  # excluded by the position check
        raise ValidationFailure(Reason.SIGNATURE_WRAPPING_SUSPECTED, "ds:Signature is the root")
    index = parent.index(signature)
    previous = signature.getprevious()
    tail = signature.tail
    saved = parent.text if previous is None else previous.tail
    parent.remove(signature)  # lxml keeps the tail on the removed element
    try:
        if tail:
            if previous is None:
                parent.text = (parent.text or "") + tail
            else:
                previous.tail = (previous.tail or "") + tail
        data = etree.tostring(root, method="c14n", exclusive=True, with_comments=False)
        commented = next(root.iter(etree.Comment), None) is not None
    finally:
        if previous is None:
            parent.text = saved
        else:
            previous.tail = saved
        parent.insert(index, signature)
        signature.tail = tail
    return data, commented


def verify_enveloped(
    root: etree._Element,
    signature: etree._Element,
    key: rsa.RSAPublicKey,
    *,
    method: str,
    digest: str,
    digest_value: bytes,
    signature_value: bytes,
) -> None:
    """Verify the profile's signature on the tree; raise :class:`ValidationFailure` if not.

    SIGNATURE_INVALID when ``SignatureValue`` does not verify over ``SignedInfo`` (checked
    first, as signxml does, so an edited ``SignedInfo`` — ``DigestValue`` included — is
    SIGNATURE_INVALID on both paths), SIGNATURE_DIGEST_MISMATCH when the document's digest
    differs from ``DigestValue``, SIGNATURE_WRAPPING_SUSPECTED when the document holds a
    comment (unsigned content; signxml's signed content then differs from the document).
    ``root`` and ``signature`` are left exactly as they were.
    """
    signed_info = next(signature.iterchildren(_SIGNED_INFO), None)  # signature.find
    if signed_info is None:  # excluded by the structural checks
        raise ValidationFailure(Reason.SIGNATURE_INVALID, "no SignedInfo")
    signed_info_c14n = etree.tostring(signed_info, method="c14n", exclusive=True,
                                      with_comments=False)
    algorithm, pad = _VERIFIERS[method]
    try:
        key.verify(signature_value, signed_info_c14n, pad, algorithm)
    except InvalidSignature:
        raise ValidationFailure(Reason.SIGNATURE_INVALID,
                                "SignatureValue does not verify with the signer's key") from None
    data, commented = document_c14n(root, signature)
    computed = DIGEST_METHODS[digest](data).digest()
    if not hmac.compare_digest(computed, digest_value):
        raise ValidationFailure(Reason.SIGNATURE_DIGEST_MISMATCH,
                                "the digest of the document does not match DigestValue")
    if commented:
        raise ValidationFailure(Reason.SIGNATURE_WRAPPING_SUSPECTED,
                                "signed content is not the whole document (comment)")

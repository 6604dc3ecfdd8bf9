"""Judging an accepted mutant without trusting the hub's own code.

- :func:`xmlsec1_verify`: stock xmlsec1 (the C reference implementation of XML-DSig) must verify
  every packet the hub accepts, under the same root. Nothing with a DTD or an entity is ever
  handed to it (its Debian build crashes on an entity bomb): :func:`safe_for_xmlsec1` refuses
  those first, in every encoding the mutators produce.
- :func:`rule_violations`: issue 16's "only signed bytes travel" rules, checked independently —
  nothing outside the root element but the XML declaration and whitespace; UTF-8 only; base64
  in signatures, certificates and attachments holds only base64 characters and ``" \\t\\r\\n"``.
- :func:`pdf_reference_verdict`: every PDF in an accepted envelope — found by its content, not
  its declared type — passes pyHanko's reference validation
  (:func:`hub.validators.pdf.check_pdf_attachments` with ``reference=True``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from lxml import etree

from hub.edxml import Envelope, Reference
from hub.validators.outcome import ValidationFailure
from hub.validators.pdf import check_pdf_attachments
from tests.fuzz.corpus import Corpus
from tests.pki_fixtures import AT, DIRECTORY

AT_TEXT = AT.strftime("%Y-%m-%d %H:%M:%S")
"""xmlsec1 judges certificates at the fuzzer's pinned time, as the hub does."""
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")
_XML_WS = " \t\r\n"
_B64_ELEMENTS = frozenset({
    "{http://www.w3.org/2000/09/xmldsig#}SignatureValue",
    "{http://www.w3.org/2000/09/xmldsig#}X509Certificate",
    "{http://www.w3.org/2000/09/xmldsig#}DigestValue",
    "{http://www.mic.gov.vn/TBT/QCVN_102_2016}ContentTransferEncoded",
})
_DECODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "latin-1")
_MARKUP_DECLARATION = re.compile(r"<\s*!(?!--|\[CDATA\[)")


def safe_for_xmlsec1(raw: bytes) -> bool:
    """No DTD, no entity declaration, no ``<!`` other than comments and CDATA, in any reading."""
    for codec in _DECODINGS:
        for shift in range(4 if "32" in codec else 2 if "16" in codec else 1):
            text = raw[shift:].decode(codec, errors="ignore").replace("\x00", "")
            if _MARKUP_DECLARATION.search(text):
                return False
    return True


@dataclasses.dataclass(frozen=True)
class Xmlsec1Verdict:
    verified: bool
    detail: str


def xmlsec1_verify(raw: bytes, xmlsec1: str, root: Path, ca: Path) -> Xmlsec1Verdict:
    """``xmlsec1 --verify`` under ``root`` (trusted) and ``ca`` (untrusted), at :data:`AT`."""
    assert safe_for_xmlsec1(raw), "never hand xmlsec1 a DTD"
    with tempfile.NamedTemporaryFile(suffix=".xml") as fh:
        fh.write(raw)
        fh.flush()
        try:
            result = subprocess.run(
                [xmlsec1, "--verify", "--verification-gmt-time", AT_TEXT, "--trusted-pem",
                 str(root), "--untrusted-pem", str(ca), fh.name],
                capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return Xmlsec1Verdict(False, "xmlsec1 timed out")
    errors = [ln.split(":error=", 1)[1] for ln in result.stderr.splitlines() if ":error=" in ln]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    detail = errors[0] if errors else (lines[-1] if lines else "")
    return Xmlsec1Verdict(result.returncode == 0, detail.replace(fh.name, "FILE")[:300])


def rule_violations(raw: bytes) -> tuple[str, ...]:
    """Which of issue 16's byte rules an (accepted) packet breaks: ``non_utf8``,
    ``outside_root`` (a PI, comment or DOCTYPE outside the root element), ``base64_charset``."""
    found: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    declared = re.match(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*encoding\s*=\s*[\"']([^\"']*)", raw)
    if (text is None or "\x00" in text
            or (declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"))):
        found.append("non_utf8")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True, remove_comments=False, remove_pis=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError:
        return (*found, "unparseable")
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    siblings = [*root.itersiblings(preceding=True), *root.itersiblings()]
    if siblings or docinfo.internalDTD is not None or docinfo.doctype:
        found.append("outside_root")
    for el in root.iter(*_B64_ELEMENTS):
        value = "".join(str(t) for t in el.itertext())
        if not _BASE64.fullmatch(value.translate({ord(c): None for c in _XML_WS})):
            found.append("base64_charset")
            break
    return tuple(found)


_REFERENCE_VERDICTS: dict[tuple[object, ...], str | None] = {}
"""Verdicts by what they depend on (the sender, the manifest's order, each attachment's bytes):
most accepted mutants carry the seed's PDF unchanged, and the reference costs ~0.1 s."""


def pdf_reference_verdict(corpus: Corpus, envelope: Envelope) -> str | None:
    """None if every PDF in ``envelope`` (by content) passes pyHanko's reference path and the
    hub's PDF rules; otherwise the reason the reference refuses it."""
    if not any(a.data.startswith(b"%PDF") for a in envelope.attachments):
        return None
    key = (envelope.sender.organ_id, tuple(r.content_id for r in envelope.manifest),
           tuple((a.content_id, a.data.startswith(b"%PDF"), a.content_type,
                  hashlib.sha256(a.data).digest()) for a in envelope.attachments))
    if key not in _REFERENCE_VERDICTS:
        if len(_REFERENCE_VERDICTS) > 4096:
            _REFERENCE_VERDICTS.clear()
        _REFERENCE_VERDICTS[key] = _pdf_reference_verdict(corpus, envelope)
    return _REFERENCE_VERDICTS[key]


def _pdf_reference_verdict(corpus: Corpus, envelope: Envelope) -> str | None:

    def as_pdf(content_type: str, data: bytes) -> str:
        return "application/pdf" if data.startswith(b"%PDF") else content_type

    data_by_id = {a.content_id: a.data for a in envelope.attachments}
    attachments = tuple(dataclasses.replace(a, content_type=as_pdf(a.content_type, a.data))
                        for a in envelope.attachments)
    manifest = tuple(
        Reference(r.content_id, r.attachment_name,
                  as_pdf(r.content_type, data_by_id.get(r.content_id, b"")), r.description)
        for r in envelope.manifest)
    judged = dataclasses.replace(envelope, attachments=attachments, manifest=manifest)
    try:
        check_pdf_attachments(judged, policy=corpus.policy, crls=corpus.crls,
                              directory=DIRECTORY, at=AT, reference=True)
    except ValidationFailure as failure:
        return f"{failure.reason.value}: {failure.detail}"[:300]
    except Exception as exc:  # the reference path shares code with the hub's (L4): say so
        return f"the reference raised {type(exc).__name__}: {exc}"[:300]
    return None

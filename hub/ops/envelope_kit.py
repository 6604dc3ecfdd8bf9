"""The integrator kit behind ``hub envelope …`` and ``hub status …``: build, sign, check.

- :func:`build_document` / :func:`build_status_packet`: a small TOML or JSON description (and the
  attachment files it names) → unsigned EDXML bytes with the signature placeholder, written by
  :mod:`hub.edxml.build` (the same builder the hub uses for its own receipts).
- :func:`load_signer`: a key + certificate PEM pair, or a key on a PKCS#11 token
  (:mod:`hub.trust.token`), as an :class:`~hub.trust.keystore.OrgSigner`;
  :func:`hub.trust.signing.sign_xml` then fills the placeholder.
- :func:`check_packet`: what the hub decides about a packet, offline: the hardened parser, the
  trust service (XMLDSig, chain to the configured roots, revocation, signer bound to ``From``,
  PDF signatures) and routing (recipients known to the directory). The result says what is
  signed and through which chain, and what the offline check cannot see (the publishing broker
  account, duplicates in the ledger, the document a status answers).

Descriptions are strict: an unknown key is an error naming it (like the hub's settings).
Dates are TOML dates or ``YYYY-MM-DD`` / ``YYYY/MM/DD`` strings; times are TOML date-times or
ISO 8601 strings (Vietnam time when no offset is given).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from hub.config import Settings
from hub.edxml import (
    DS_NS,
    NS,
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentId,
    DocumentType,
    Envelope,
    EnvelopeRefused,
    Limits,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
    build_envelope,
    build_status,
    parse_packet,
)
from hub.edxml.build import DOCUMENT_TYPES, response_for
from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.token import TokenKeySpec

__all__ = [
    "CheckResult",
    "DescriptionError",
    "build_document",
    "build_status_packet",
    "check_packet",
    "load_description",
    "load_signer",
    "status_answering",
]


class DescriptionError(Exception):
    """The description or a file it names is unusable (one line for the user)."""


# -- descriptions ------------------------------------------------------------------------------


def load_description(path: Path) -> dict[str, Any]:
    """A TOML (``.toml``) or JSON (anything else) description, as a dict."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DescriptionError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # TOML and JSON (RFC 8259 §8.1) are UTF-8
        raise DescriptionError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                               ) from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise DescriptionError(f"{path}: {exc}") from None
    except RecursionError:  # both readers recurse once per nested array or table
        raise DescriptionError(f"{path}: nested too deeply to read") from None
    if not isinstance(data, dict):
        raise DescriptionError(f"{path}: the description must be a table/object")
    return data


class _Fields:
    """One table of a description, read strictly: every key used once, unknown keys refused."""

    def __init__(self, raw: Any, where: str, allowed: set[str]) -> None:
        if not isinstance(raw, Mapping):
            raise DescriptionError(f"{where}: expected a table")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise DescriptionError(f"{where}: unknown key {unknown[0]!r}")
        self.raw = raw
        self.where = where

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise DescriptionError(f"{self.where}: {key} is required")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise DescriptionError(f"{self.where}: {key} must be text")
        return str(value)

    def optional(self, key: str) -> str | None:
        return self.text(key) if key in self.raw else None

    def number(self, key: str, default: int | None = None) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise DescriptionError(f"{self.where}: {key} must be a number")
        try:
            return int(value)
        except ValueError:
            raise DescriptionError(f"{self.where}: {key} must be a number") from None

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DescriptionError(f"{self.where}: {key} must be a list of texts")
        return tuple(value)

    def day(self, key: str, default: date | None = None) -> date:
        value = self.raw.get(key, default)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.replace("/", "-"))
            except ValueError:
                pass
        if value is None:
            raise DescriptionError(f"{self.where}: {key} is required")
        raise DescriptionError(f"{self.where}: {key} must be a date (YYYY-MM-DD)")

    def instant(self, key: str, default: datetime) -> datetime:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise DescriptionError(f"{self.where}: {key} must be an ISO 8601 time") from None
        if not isinstance(value, datetime):
            raise DescriptionError(f"{self.where}: {key} must be a date and time")
        return value if value.tzinfo is not None else value.replace(tzinfo=VIETNAM_TZ)


_ORG_KEYS = {"organ_id", "organ_name", "organization_in_charge", "organ_add", "email",
             "telephone", "fax", "website"}


def _organization(raw: Any, where: str) -> Organization:
    f = _Fields(raw, where, _ORG_KEYS)
    return Organization(organ_id=f.text("organ_id"), **{
        k: f.text(k) for k in _ORG_KEYS - {"organ_id"} if k in f.raw})


def _response_for(raw: Any, where: str) -> ResponseFor:
    f = _Fields(raw, where, {"organ_id", "code", "promulgation_date", "document_id"})
    return ResponseFor(organ_id=f.text("organ_id"), code=f.text("code"),
                       promulgation_date=f.day("promulgation_date"),
                       document_id=f.text("document_id"))


def _staff(raw: Any, where: str) -> StaffInfo:
    f = _Fields(raw, where, {"department", "staff", "mobile", "email"})
    return StaffInfo(f.text("department", ""), f.text("staff", ""), f.text("mobile", ""),
                     f.text("email", ""))


def _attachment(raw: Any, where: str, base: Path, document_id: str, n: int) -> Attachment:
    f = _Fields(raw, where, {"file", "name", "content_type", "description", "content_id"})
    path = base / f.text("file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DescriptionError(f"{where}: {path}: {exc.strerror}") from None
    name = f.text("name", path.name)
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # A content id derived from the document and the file: the same description builds the
    # same bytes (reviewable diffs, reproducible tests).
    content_id = f.optional("content_id") or str(uuid.uuid5(
        uuid.NAMESPACE_URL, f"edxml:{document_id}/{n}/{hashlib.sha256(data).hexdigest()}"))
    return Attachment(content_id=content_id, attachment_name=name,
                      content_type=f.text("content_type", guessed),
                      description=f.text("description", ""), data=data)


_DOC_KINDS = {"new": BusinessDocType.NEW, "revocation": BusinessDocType.REVOCATION,
              "update": BusinessDocType.UPDATE, "replacement": BusinessDocType.REPLACEMENT}


def _document_type(f: _Fields) -> DocumentType:
    kind = f.optional("kind")
    if kind is not None:
        if kind not in DOCUMENT_TYPES:
            raise DescriptionError(f"{f.where}: kind must be one of {sorted(DOCUMENT_TYPES)}")
        return DOCUMENT_TYPES[kind]
    type_ = f.number("type", 18)
    assert type_ is not None
    return DocumentType(type_, f.text("type_name", ""), f.optional("type_detail"))


def _trace(raw: Any, sender: str, now: datetime) -> TraceHeaderList:
    f = _Fields(raw, "[trace]", {"timestamp", "kind", "reason", "paper", "replaces",
                                 "staff"})
    kind = f.text("kind", "new")
    if kind not in _DOC_KINDS:
        raise DescriptionError(f"[trace]: kind must be one of {sorted(_DOC_KINDS)}")
    return TraceHeaderList(
        trace_headers=(TraceHeader(sender, f.instant("timestamp", now)),),
        business=Business(doc_type=_DOC_KINDS[kind], reason=f.text("reason", ""),
                          document_id=f.optional("replaces"),
                          staff_info=_staff(f.raw["staff"], "[trace.staff]")
                          if "staff" in f.raw else None,
                          paper=f.number("paper", 0) or 0))


_DOCUMENT_TOP = {"from", "to", "document", "signer", "other", "trace", "response_for",
                 "attachments"}
_DOCUMENT_KEYS = {"number", "notation", "date", "place", "kind", "type", "type_name",
                  "type_detail", "subject", "content", "due_date", "to_places", "steering_type",
                  "document_id"}


def build_document(description: Mapping[str, Any], base: Path, *,
                   now: datetime | None = None) -> bytes:
    """Unsigned EDXML document bytes (with the signature placeholder) from a description."""
    now = now or datetime.now(UTC)
    _Fields(description, "description", _DOCUMENT_TOP)
    sender = _organization(description.get("from"), "[from]")
    to = description.get("to")
    if not isinstance(to, list) or not to:
        raise DescriptionError("[[to]]: at least one recipient is required")
    recipients = tuple(_organization(r, "[[to]]") for r in to)
    d = _Fields(description.get("document"), "[document]", _DOCUMENT_KEYS)
    number, notation = d.text("number"), d.text("notation")
    day = d.day("date")
    document_id = d.text("document_id", str(DocumentId(sender.organ_id, day, number, notation)))
    signer = None
    if "signer" in description:
        s = _Fields(description["signer"], "[signer]", {"competence", "position", "full_name"})
        signer = SignerInfo(s.text("competence", ""), s.text("position", ""),
                            s.text("full_name", ""))
    o = _Fields(description.get("other", {}), "[other]", {
        "priority", "sphere_of_promulgation", "typer_notation", "promulgation_amount",
        "page_amount", "appendixes"})
    other = OtherInfo(priority=o.number("priority", 0) or 0,
                      sphere_of_promulgation=o.text("sphere_of_promulgation", ""),
                      typer_notation=o.text("typer_notation", ""),
                      promulgation_amount=o.number("promulgation_amount"),
                      page_amount=o.number("page_amount"), appendixes=o.texts("appendixes"))
    answers = description.get("response_for", [])
    if not isinstance(answers, list):
        raise DescriptionError("[[response_for]]: expected a list of tables")
    header = MessageHeader(
        sender=sender, recipients=recipients, code=Code(number, notation),
        promulgation_info=PromulgationInfo(d.text("place", ""), day),
        document_type=_document_type(d), subject=d.text("subject"), document_id=document_id,
        content=d.text("content", ""), signer_info=signer,
        due_date=d.day("due_date") if "due_date" in d.raw else None,
        to_places=d.texts("to_places"), other_info=other,
        response_for=tuple(_response_for(r, "[[response_for]]") for r in answers),
        steering_type=d.number("steering_type", 0) or 0)
    files = description.get("attachments", [])
    if not isinstance(files, list):
        raise DescriptionError("[[attachments]]: expected a list of tables")
    attachments = [_attachment(a, f"[[attachments]] #{n + 1}", base, document_id, n)
                   for n, a in enumerate(files)]
    return build_envelope(header, trace=_trace(description.get("trace", {}), sender.organ_id,
                                               now),
                          attachments=attachments)


def build_status_packet(description: Mapping[str, Any], *, now: datetime | None = None) -> bytes:
    """Unsigned EDXML status packet bytes from a description (``[status]``, ``[from]``,
    ``[response_for]``, optional ``[staff]``)."""
    _Fields(description, "description", {"status", "from", "response_for", "staff"})
    s = _Fields(description.get("status"), "[status]", {"code", "description", "timestamp"})
    code = s.text("code")
    if code not in {c.value for c in StatusCode}:
        raise DescriptionError(
            f"[status]: code {code!r} is not a QCVN 102 status code "
            f"({', '.join(c.value for c in StatusCode)})")
    return build_status(
        response_for=_response_for(description.get("response_for"), "[response_for]"),
        sender=_organization(description.get("from"), "[from]"), status_code=code,
        timestamp=s.instant("timestamp", now or datetime.now(UTC)),
        description=s.text("description", ""),
        staff_info=_staff(description["staff"], "[staff]") if "staff" in description else None)


def status_answering(envelope: bytes, code: str, reporter: str | None, *,
                     description: str = "", now: datetime | None = None,
                     limits: Limits | None = None) -> bytes:
    """An unsigned status packet answering the document ``envelope`` (``--answer``)."""
    try:
        packet = parse_packet(envelope, limits or Limits())
    except EnvelopeRefused as exc:
        raise DescriptionError(f"the answered file is not an EDXML packet: {exc.reason.value}"
                               ) from None
    if not isinstance(packet, Envelope):
        raise DescriptionError("the answered file is a status packet, not a document")
    recipients = [r.organ_id for r in packet.header.recipients]
    if reporter is None:
        if len(recipients) != 1:
            raise DescriptionError("the document has several recipients: say which one "
                                   "answers with --from")
        reporter = recipients[0]
    me = next((r for r in packet.header.recipients if r.organ_id == reporter),
              Organization(reporter))
    return build_status_packet({
        "status": {"code": code, "description": description},
        "from": {k: v for k, v in {
            "organ_id": me.organ_id, "organ_name": me.organ_name}.items() if v},
        "response_for": _response_for_dict(response_for(packet))}, now=now)


def _response_for_dict(rf: ResponseFor) -> dict[str, Any]:
    return {"organ_id": rf.organ_id, "code": rf.code,
            "promulgation_date": rf.promulgation_date, "document_id": rf.document_id}


# -- signing -----------------------------------------------------------------------------------


def load_signer(organ_id: str, *, key: Path | None = None, cert: Path | None = None,
                passphrase: bytes | None = None, token: TokenKeySpec | None = None
                ) -> OrgSigner:
    """A key file + certificate chain file, or a token key (certificates from ``cert`` or the
    token). Raises :class:`~hub.errors.ConfigurationError` naming what is wrong."""
    if token is not None:
        return OrgSigner.from_token(organ_id, token)
    if key is None or cert is None:
        raise DescriptionError("give --key and --cert, or a PKCS#11 token (--pkcs11-module …)")
    return OrgSigner.from_files(organ_id, key, cert, passphrase)


# -- checking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """What ``hub envelope check`` reports (``to_dict`` is the ``--json`` form)."""

    verdict: str
    """``ACCEPTED``, ``REFUSED`` or ``INDETERMINATE`` (the hub would retry, never refuse)."""
    reason: Reason
    kind: str
    """``document``, ``status`` or ``unreadable``."""
    at: datetime
    digest: str
    packet: dict[str, Any] = field(default_factory=dict)
    signed: dict[str, Any] = field(default_factory=dict)
    chain: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    not_checked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "reason": self.reason.value, "text_vi": self.reason.vi,
            "text_en": self.reason.en, "detail": self.detail, "kind": self.kind,
            "checked_at": self.at.isoformat(), "digest": self.digest, "packet": self.packet,
            "signed": self.signed, "chain": self.chain, "routes": self.routes,
            "checks": self.checks, "not_checked_offline": list(self.not_checked),
        }

    def lines(self) -> list[str]:
        r = self.reason
        out = [f"verdict:   {self.verdict}",
               f"reason:    {r.value}" + (f" ({self.detail})" if self.detail else ""),
               f"           vi: {r.vi}", f"           en: {r.en}",
               f"packet:    {self.kind}, sha256 {self.digest}"]
        for key, value in self.packet.items():
            out.append(f"  {key}: {value}")
        if self.signed:
            out.append(f"signed:    {self.signed['scope']}")
            out.append(f"  signature at: {self.signed['placement']}")
            for part in self.signed.get("attachments", []):
                out.append(f"  attachment {part['name']} ({part['content_type']}, "
                           f"{part['bytes']} bytes, sha256 {part['sha256']})")
        if self.chain:
            out.append("chain:")
            for n, c in enumerate(self.chain, start=1):
                out.append(f"  {n}. {c['subject']} [{c['role']}]")
                out.append(f"     issuer {c['issuer']}; valid {c['not_before']} → "
                           f"{c['not_after']}; sha256 {c['fingerprint']}")
        for route in self.routes:
            out.append(f"route:     {route['organ_id']} via {route['via']}")
        if self.checks:
            out.append("checks:")
            for c in self.checks:
                detail = c["evidence"].get("detail", "")
                out.append(f"  [{c['indication']:<13}] {c['check']}: {c['reason']}"
                           + (f" ({detail})" if detail else ""))
        if self.not_checked:
            out.append("not checked offline: " + "; ".join(self.not_checked))
        return out


_OFFLINE_GAPS_DOCUMENT = (
    "the publishing broker account (user_id) must belong to From",
    "duplicates and DocumentId reuse (the hub's ledger)",
    "a recall/update/replacement must name a document the hub delivered",
)
_OFFLINE_GAPS_STATUS = (
    "the publishing broker account (user_id) must belong to From",
    "the answered document must be in the hub's ledger, and From one of its recipients",
)


def check_packet(data: bytes, settings: Settings, *, at: datetime | None = None,
                 kind: str | None = None) -> CheckResult:
    """The hub's verdict on ``data``, offline, with ``settings`` (trust anchors, CRLs, the
    directory, limits). ``kind`` (``document``/``status``) refuses the other kind of packet."""
    from hub.app import load_directory
    from hub.routing import route
    from hub.trust.revocation import RevocationCache
    from hub.trust.service import TrustService
    from hub.trust.store import load_policy

    at = at or datetime.now(UTC)
    digest = hashlib.sha256(data).hexdigest()
    try:
        packet = parse_packet(data, Limits.from_settings(settings.limits))
    except EnvelopeRefused as exc:
        return CheckResult("REFUSED", exc.reason, "unreadable", at, digest, detail=exc.detail)
    this_kind = "status" if isinstance(packet, StatusPacket) else "document"
    if kind is not None and kind != this_kind:
        raise DescriptionError(f"this is a {this_kind} packet; use "
                               f"`hub {'status' if this_kind == 'status' else 'envelope'} check`")
    directory = load_directory(settings)
    policy = load_policy(settings)
    revocation = RevocationCache(settings, certificates=policy.intermediates)
    trust = TrustService(policy, directory, revocation, fetch_crls=settings.trust.fetch_crls)
    report = trust(packet, at)
    reason, detail = report.reason, ""
    problem = report.first_problem
    if problem is not None:
        detail = problem.evidence.get("detail", "")
    routes: list[dict[str, str]] = []
    if isinstance(packet, Envelope) and not any(
            c.indication.value == "FAILED" for c in report.checks):
        plan = route(packet, directory, at=at, province=settings.hub.province)
        if plan.rejection is not None:
            reason, detail = plan.rejection, plan.detail
        elif report.accepted:
            routes = [{"organ_id": d.organ_id, "via": d.via}
                      for d in plan.deliveries]
    if reason is Reason.OK:
        verdict = "ACCEPTED"
    elif report.indeterminate and reason is report.reason:
        verdict = "INDETERMINATE"
    else:
        verdict = "REFUSED"
    return CheckResult(
        verdict, reason, this_kind, at, digest, packet=_packet_facts(packet),
        signed=_signed_facts(packet), chain=_chain(packet, report, policy), routes=routes,
        checks=[c.to_dict() for c in report.checks], detail=detail,
        not_checked=_OFFLINE_GAPS_STATUS if this_kind == "status" else _OFFLINE_GAPS_DOCUMENT)


def _packet_facts(packet: Envelope | StatusPacket) -> dict[str, Any]:
    if isinstance(packet, StatusPacket):
        return {"from": packet.sender.organ_id, "status_code": packet.status_code,
                "answers": packet.response_for.document_id,
                "description": packet.description}
    h = packet.header
    return {"from": h.sender.organ_id, "to": ", ".join(r.organ_id for r in h.recipients),
            "document_id": h.document_id, "code": h.code.text, "subject": h.subject,
            "business": packet.business_kind.name.lower()}


def _signatures(packet: Envelope | StatusPacket) -> list[Any]:
    return [e for e in packet.tree.iter(f"{{{DS_NS}}}Signature")] if packet.tree is not None \
        else []


def _signed_facts(packet: Envelope | StatusPacket) -> dict[str, Any]:
    """Where the signature is and what its references cover (read from the parsed tree)."""
    signatures = _signatures(packet)
    if len(signatures) != 1:
        return {"scope": f"{len(signatures)} ds:Signature elements (exactly one is required)",
                "placement": "-"}
    sig = signatures[0]
    parent = sig.getparent()
    placement = "?"
    if parent is not None:
        where = etree.QName(parent).localname
        if where == "edXMLHeader":
            placement = "edXMLHeader (its last child)" if sig.getnext() is None \
                else "edXMLHeader (not the last child)"
        elif where == "DigitalSignature" and etree.QName(parent).namespace == NS:
            placement = "edXMLHeader/edXML:DigitalSignature (the QCVN 102 slot)"
        else:
            placement = f"inside {where}"
    uris = [r.get("URI") for r in sig.iter(f"{{{DS_NS}}}Reference")]
    facts: dict[str, Any] = {"placement": placement, "references": uris}
    if uris == [""]:
        facts["scope"] = "the whole document (Reference URI=\"\"): header, trace, body" + (
            f" and {len(packet.attachments)} attachment(s)" if isinstance(packet, Envelope)
            else "")
    else:
        facts["scope"] = f"references {uris} (the hub requires one, URI=\"\")"
    if isinstance(packet, Envelope):
        facts["attachments"] = [
            {"name": a.attachment_name, "content_type": a.content_type, "bytes": len(a.data),
             "sha256": hashlib.sha256(a.data).hexdigest()} for a in packet.attachments]
    return facts


def _chain(packet: Envelope | StatusPacket, report: Any, policy: Any) -> list[dict[str, Any]]:
    """The certificates of the path the trust check built (else those the signature offers)."""
    offered: list[x509.Certificate] = []
    for sig in _signatures(packet)[:1]:
        for el in sig.iter(f"{{{DS_NS}}}X509Certificate"):
            try:
                offered.append(x509.load_der_x509_certificate(
                    base64.b64decode("".join((el.text or "").split()))))
            except ValueError:
                continue
    known = {_fp(c): c for c in (*offered, *policy.intermediates, *policy.roots)}
    path_text = next((c.evidence.get("path", "") for c in report.checks if c.check == "trust"),
                     "")
    chain: list[x509.Certificate] = []
    for prefix in path_text.split(" > ") if path_text else []:
        match = next((c for fp, c in known.items() if fp.startswith(prefix)), None)
        if match is not None:
            chain.append(match)
    if not chain:
        chain = offered
    roots = {_fp(r) for r in policy.roots}
    out = []
    for n, cert in enumerate(chain):
        role = "trust anchor" if _fp(cert) in roots else "signer" if n == 0 else "issuing CA"
        out.append({"role": role, "subject": cert.subject.rfc4514_string(),
                    "issuer": cert.issuer.rfc4514_string(), "fingerprint": _fp(cert),
                    "serial": format(cert.serial_number, "x"),
                    "not_before": cert.not_valid_before_utc.isoformat(),
                    "not_after": cert.not_valid_after_utc.isoformat()})
    return out


def _fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

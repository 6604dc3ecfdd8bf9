"""The national axis' operations as the hub speaks them: names, words, answers (pure).

The national document exchange axis (Trục liên thông văn bản quốc gia, Decision 28/2018/QĐ-TTg)
is reached by document systems through the Government Office's SDK (``VPCPXRoadSdk``; VNPT's
``SDKVXP``, class ``KnobstickServiceImp``), whose calls integrators' public code shows
(DOMAIN.md §6, unofficial): ``sendEdoc`` (JSON header ``from``, ``servicetype = eDoc``,
``messagetype`` = ``edoc`` / ``update`` / ``replacement`` / ``revocation`` / ``status``; the
edXML file; answer ``DocID``), ``getReceivedEdocList`` (entries ``id``, ``from``, ``to``,
``messagetype``, ``servicetype``), ``getEdoc`` (by ``docId``: the edXML bytes),
``updateStatus`` (``docId`` and one of ``inbox``, ``acceptance``, ``rejection``, ``processing``,
``done``, ``fail``) and ``getAgencies`` (``id``, ``code``, ``code102``, ``name``, ``pcode``).
Every answer carries ``status`` (``OK`` / ``FAIL``), ``ErrorCode`` and ``ErrorDesc``; each
connected system authenticates with a **system id and a secret key**.

What the SDK puts on the wire behind X-Road is not public. This module fixes our
reconstruction, shared by the connector (:mod:`hub.axis.client`) and the simulator
(:mod:`hub.testing.axis_sim`): one ``POST /<operation>`` per call, the SDK's JSON header fields
as the JSON body (``sendEdoc``: as HTTP headers, the edXML bytes as the body, with their SHA-256
in ``X-Content-SHA256`` — DOMAIN.md §6), and the secret never sent: each request carries
``systemId``, ``timestamp`` and ``signature`` = base64 HMAC-SHA256(secret, the canonical request
of :func:`canonical_request`). Swapping this for the real SDK's transport touches only the
client.

How an answer is judged (:func:`judge_send`) decides what the connector does with a document:

=====================================  =============  ===========================================
answer                                  verdict        what happens
=====================================  =============  ===========================================
2xx ``OK`` with a ``DocID``             ACCEPTED       recorded (``axis_sent``), then settled
2xx/409 ``DUPLICATE`` with a ``DocID``  DUPLICATE      the axis already has these bytes: the
                                                       same, recorded as a duplicate answer
401 / 403                               UNAUTHORIZED   the connector's credentials: nothing is
                                                       refused, the circuit opens, an operator
                                                       must act (never dead-letters documents)
408 / 429 / 5xx, timeout, refused       TRANSIENT      retried with backoff (AXIS_UNAVAILABLE)
other 4xx in the axis' words            REFUSED        dead-lettered AXIS_REFUSED with the
(``status: FAIL`` or an ``ErrorCode``),                axis' own code and text
or 2xx ``FAIL``
any other answer: a 4xx page of a       TRANSIENT      retried: the axis never judged the
proxy (nginx 404/400/413), a 3xx, a                    document (and a redirect is never
2xx that is no acceptance                              followed, :mod:`hub.axis.client`)
=====================================  =============  ===========================================

Answers are read defensively: a body that is not JSON — an HTML page, or valid JSON nested too
deeply to decode — keeps only its HTTP status and a note saying why (:attr:`Answer.note`); an
answer field that is not text is not read as text; an entry of ``getReceivedEdocList`` whose
fields have the wrong JSON type, hold control characters or are longer than their bound is read
as unusable, with the reason (:attr:`Listed.problem`).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.edxml.model import BusinessDocType, Envelope, StatusPacket
from hub.messages import UNFIT_CHAR

__all__ = [
    "DUPLICATE_CODE",
    "MAX_CODE_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_WORD_LENGTH",
    "SERVICE_TYPE",
    "Agency",
    "Answer",
    "Listed",
    "MessageType",
    "Op",
    "StatusWord",
    "Verdict",
    "auth_headers",
    "canonical_request",
    "json_type",
    "judge_send",
    "message_type_of",
    "request_signature",
    "sha256_hex",
    "unfit_text",
]

SERVICE_TYPE = "eDoc"
"""``servicetype`` of every document and status call (the SDK's only service type)."""
DUPLICATE_CODE = "DUPLICATE"
"""``ErrorCode`` of the axis' answer to bytes it already holds (with the first ``DocID``)."""
CONTENT_SHA256 = "X-Content-SHA256"
"""Header with the hex SHA-256 of the edXML bytes sent or fetched (DOMAIN.md §6)."""
MAX_CLOCK_SKEW_S = 300
"""A signed request older or newer than this is refused (replay protection)."""


class Op(enum.StrEnum):
    """The axis operations (the SDK's method names)."""

    SEND = "sendEdoc"
    LIST = "getReceivedEdocList"
    GET = "getEdoc"
    UPDATE_STATUS = "updateStatus"
    AGENCIES = "getAgencies"

    @property
    def path(self) -> str:
        return f"/{self.value}"


class MessageType(enum.StrEnum):
    """``messagetype`` of ``sendEdoc``: the business kind of an edXML packet."""

    EDOC = "edoc"
    UPDATE = "update"
    REPLACEMENT = "replacement"
    REVOCATION = "revocation"
    STATUS = "status"


_BY_BUSINESS = {
    BusinessDocType.NEW: MessageType.EDOC,
    BusinessDocType.REVOCATION: MessageType.REVOCATION,
    BusinessDocType.UPDATE: MessageType.UPDATE,
    BusinessDocType.REPLACEMENT: MessageType.REPLACEMENT,
}


def message_type_of(packet: Envelope | StatusPacket) -> MessageType:
    """The ``messagetype`` of a packet: ``status`` for a status packet, else its
    ``Bussiness/BussinessDocType`` (QCVN 102: 0 new, 1 revocation, 2 update, 3 replacement)."""
    if isinstance(packet, StatusPacket):
        return MessageType.STATUS
    return _BY_BUSINESS[packet.business_kind]


class StatusWord(enum.StrEnum):
    """``updateStatus`` words and the QCVN 102 status codes they stand for (DOMAIN.md §6)."""

    INBOX = "inbox"
    ACCEPTANCE = "acceptance"
    REJECTION = "rejection"
    PROCESSING = "processing"
    DONE = "done"
    FAIL = "fail"

    @property
    def qcvn_code(self) -> str | None:
        """The QCVN 102 status code of the word (``fail`` has none: a transfer failure)."""
        return _CODE_OF[self]

    @classmethod
    def for_code(cls, code: str) -> StatusWord | None:
        """The word for a QCVN 102 status code (04 and 05 are both ``processing``)."""
        return _WORD_OF.get(code)


_CODE_OF: dict[StatusWord, str | None] = {
    StatusWord.INBOX: "01", StatusWord.ACCEPTANCE: "03", StatusWord.REJECTION: "02",
    StatusWord.PROCESSING: "05", StatusWord.DONE: "06", StatusWord.FAIL: None,
}
_WORD_OF: dict[str, StatusWord] = {
    "01": StatusWord.INBOX, "02": StatusWord.REJECTION, "03": StatusWord.ACCEPTANCE,
    "04": StatusWord.PROCESSING, "05": StatusWord.PROCESSING, "06": StatusWord.DONE,
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_request(system_id: str, timestamp: str, method: str, path: str,
                      body: bytes) -> bytes:
    """What the request signature covers: who, when, which operation, which exact body."""
    return "\n".join((system_id, timestamp, method.upper(), path, sha256_hex(body))).encode()


def request_signature(secret: str, system_id: str, timestamp: str, method: str, path: str,
                      body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"),
                   canonical_request(system_id, timestamp, method, path, body), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def auth_headers(system_id: str, secret: str, timestamp: str, method: str, path: str,
                 body: bytes) -> dict[str, str]:
    """The headers that authenticate one request (the secret itself never travels)."""
    return {"systemId": system_id, "timestamp": timestamp,
            "signature": request_signature(secret, system_id, timestamp, method, path, body)}


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    TRANSIENT = "transient"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the axis, as plain data."""

    http_status: int
    status: str = ""
    """``OK`` or ``FAIL`` (empty when the body was not the axis' JSON)."""
    error_code: str = ""
    error_desc: str = ""
    doc_id: str = ""
    data: Any = None
    note: str = ""
    """Why the body was not read (``the body is not JSON (RecursionError)``), for the summary;
    empty when it was decoded."""

    @classmethod
    def from_json(cls, http_status: int, body: Any) -> Answer:
        """Read the SDK's answer fields (``status``, ``ErrorCode``, ``ErrorDesc``, ``DocID``,
        ``data``); anything else (an HTML error page, a proxy's text) keeps only the status.
        A field that is not a JSON string or number is not read (never ``str()`` of a list
        or an object: it is no answer of the axis)."""
        if not isinstance(body, Mapping):
            return cls(http_status)

        def text(*names: str) -> str:
            for name in names:
                value = body.get(name)
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    return str(value)[:1000]
            return ""

        return cls(http_status, text("status").upper(), text("ErrorCode", "errorCode"),
                   text("ErrorDesc", "errorDesc"), text("DocID", "docId", "docID"),
                   body.get("data"))

    @property
    def summary(self) -> str:
        """For the ledger and the dead letter: the axis' own words, bounded."""
        parts = [f"HTTP {self.http_status}"]
        if self.status:
            parts.append(self.status)
        if self.error_code:
            parts.append(self.error_code)
        if self.error_desc:
            parts.append(self.error_desc[:300])
        text = " ".join(parts)
        return f"{text}, {self.note[:200]}" if self.note else text

    @property
    def axis_refusal(self) -> bool:
        """The axis' own refusal: its JSON answer saying ``FAIL``, or naming an ``ErrorCode``
        (without claiming ``OK``). A proxy's or a gateway's error page (nginx' HTML, a JSON
        ``{"status": 404, "error": …}``) carries neither: the axis never judged the request."""
        return self.status == "FAIL" or (bool(self.error_code) and self.status != "OK")


def judge_send(answer: Answer) -> Verdict:
    """The verdict on a ``sendEdoc`` answer (table in the module docstring)."""
    code = answer.http_status
    if code in (401, 403):
        return Verdict.UNAUTHORIZED
    if code in (408, 429) or code >= 500:
        return Verdict.TRANSIENT
    if answer.error_code.upper() == DUPLICATE_CODE and answer.doc_id and code in (200, 201, 409):
        return Verdict.DUPLICATE
    if 200 <= code < 300:
        if answer.status == "OK" and answer.doc_id:
            return Verdict.ACCEPTED
        if answer.status == "FAIL":
            return Verdict.REFUSED
        return Verdict.TRANSIENT  # a 2xx that is not the axis' answer: a proxy, try again
    if 400 <= code < 500 and answer.axis_refusal:
        return Verdict.REFUSED
    # Any other 4xx is no judgement of the axis on the document — a proxy's 404 or 400 page, a
    # load balancer's 413 — and neither is a 3xx (never followed): keep it, try again later.
    return Verdict.TRANSIENT


MAX_ID_LENGTH = 200
"""Longest axis document id the hub accepts (a longer one is no id of the axis')."""
MAX_CODE_LENGTH = 64
"""Longest body code (``from``, each of ``to``) a listed entry may carry: QCVN 102 codes
(``000.00.00.H27``) and Decision 20/2020 identifiers are far shorter."""
MAX_WORD_LENGTH = 32
"""Longest ``messagetype`` / ``servicetype`` a listed entry may carry."""



def unfit_text(value: str, limit: int) -> str:
    """Why ``value`` — text of the axis' answer — cannot be used as an id or a code: longer
    than ``limit``, or holding a character of :data:`~hub.messages.UNFIT_CHAR` (named by its code point,
    never repeated). Empty when it can be used."""
    if len(value) > limit:
        return f"is longer than {limit} characters"
    found = UNFIT_CHAR.search(value)
    if found is None:
        return ""
    kind = "a lone surrogate" if "\ud800" <= found.group() <= "\udfff" else "a control character"
    return f"holds {kind} (U+{ord(found.group()):04X}) at position {found.start() + 1}"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, for a reason text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of ``getReceivedEdocList``."""

    id: str
    """The axis' document id (``getEdoc``, ``updateStatus``); empty when the entry has no
    usable one."""
    sender: str = ""
    to: tuple[str, ...] = ()
    message_type: str = ""
    service_type: str = SERVICE_TYPE
    problem: str = ""
    """Why the entry cannot be used as listed (a field of the wrong JSON type, holding a control
    character or too long; no id); empty when it can. The connector refuses such an entry back
    to the axis (``updateStatus fail``) when it has an id, and logs it either way. The text
    names fields, JSON types and code points, never the offending characters themselves."""

    @property
    def usable(self) -> bool:
        return not self.problem

    @classmethod
    def from_json(cls, item: Any) -> Listed:
        """Read one entry, checking each field: ``id`` a non-empty string (or a number) of at
        most :data:`MAX_ID_LENGTH` characters; ``from`` and each of ``to`` (a comma-separated
        string or a list of strings) at most :data:`MAX_CODE_LENGTH`, ``messagetype`` and
        ``servicetype`` strings of at most :data:`MAX_WORD_LENGTH`; no field holding a control
        character (C0 with NUL, DEL, C1) or a lone surrogate (:func:`unfit_text`). Absent or
        null fields are empty. An entry that breaks this is returned with :attr:`problem`
        naming the field and what is wrong, without the offending field's value (and without an
        id when the id is the problem: it could name nothing in the ledger)."""
        if not isinstance(item, Mapping):
            return cls("", problem=f"the entry is not an object but {json_type(item)}")
        raw_id = item.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            return cls("", problem=f'"id" is {json_type(raw_id)}, not a string')
        doc_id = str(raw_id)
        if not doc_id.strip():
            return cls("", problem='"id" is empty')
        if why := unfit_text(doc_id, MAX_ID_LENGTH):
            return cls("", problem=f'"id" {why}')
        problems: list[str] = []

        def text(name: str, *aliases: str, limit: int, default: str = "") -> str:
            for key in (name, *aliases):
                value = item.get(key)
                if value is None:
                    continue
                if not isinstance(value, str):
                    problems.append(f'"{name}" is {json_type(value)}, not a string')
                elif why := unfit_text(value, limit):
                    problems.append(f'"{name}" {why}')
                else:
                    return value or default
                return default
            return default

        sender = text("from", limit=MAX_CODE_LENGTH)
        message_type = text("messagetype", "messageType", limit=MAX_WORD_LENGTH)
        service_type = text("servicetype", limit=MAX_WORD_LENGTH, default=SERVICE_TYPE)
        raw_to = item.get("to")
        listed_to: list[str] = []
        if isinstance(raw_to, str):
            listed_to = raw_to.split(",")
        elif isinstance(raw_to, list) and all(isinstance(t, str) for t in raw_to):
            listed_to = raw_to
        elif isinstance(raw_to, list):
            odd = next(t for t in raw_to if not isinstance(t, str))
            problems.append(f'"to" holds {json_type(odd)}, not only strings')
        elif raw_to is not None:
            problems.append(f'"to" is {json_type(raw_to)}, not a string or a list of strings')
        to = tuple(t.strip() for t in listed_to if t.strip())[:1000]
        bad_to = next((why for why in (unfit_text(t, MAX_CODE_LENGTH) for t in to) if why), "")
        if bad_to:
            problems.append(f'a code of "to" {bad_to}')
            to = ()
        return cls(doc_id, sender, to, message_type, service_type, "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Agency:
    """One body of the axis' directory (``getAgencies``): its QCVN 102 code and/or its
    Decision 20/2020 identifier, name and parent."""

    code: str
    name: str
    code102: str = ""
    parent: str = ""
    id: str = ""

    @classmethod
    def from_json(cls, item: Any) -> Agency | None:
        if not isinstance(item, Mapping):
            return None

        def text(name: str) -> str:  # only JSON strings and numbers are read as text
            value = item.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value).strip()
            return ""

        code, name = text("code"), text("name")
        if not code or not name:
            return None
        return cls(code[:64], name[:500], text("code102")[:64], text("pcode")[:64],
                   text("id")[:200])

    @property
    def codes(self) -> tuple[str, ...]:
        """The legacy QCVN 102 code first when known (the directory's primary code), then the
        other; each once."""
        ordered = (self.code102, self.code) if self.code102 else (self.code,)
        return tuple(dict.fromkeys(c for c in ordered if c))

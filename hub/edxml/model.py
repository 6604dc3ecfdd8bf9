"""Typed, immutable model of EDXML packets (QCVN 102:2016/BTTTT).

Field names follow the element names of the standard (section numbers 1.1–1.14 of the message
header, 2.x of the trace list). Free text (subjects, names, descriptions) is kept exactly as
received, in Unicode; identifiers, numbers and dates are trimmed of surrounding whitespace.

Dates are ``YYYY/MM/DD`` on the wire and :class:`datetime.date` here. Timestamps are
``yyyy/MM/dd HH:mm:ss`` in Vietnam time on the wire and timezone-aware :class:`datetime.datetime`
(UTC+07:00, :data:`VIETNAM_TZ`) here.

:class:`Envelope` and :class:`StatusPacket` keep ``raw``, the exact bytes received: the hub never
re-serializes signed XML, it stores and routes these bytes. ``raw`` and attachment ``data`` are
excluded from ``repr`` so that a logged object never carries a document body.
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""The EDXML namespace of QCVN 102:2016/BTTTT."""
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""W3C XML-DSig namespace (the envelope signature)."""
XLINK_NS = "http://www.w3.org/1999/xlink"

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
"""Vietnam has no daylight saving time: wire timestamps are read in this fixed offset."""


@dataclass(frozen=True, slots=True)
class Organization:
    """``From`` / ``To`` (QCVN 102 §1.1, §1.2): an organization taking part in the exchange."""

    organ_id: str
    """Mã định danh: the routing key (either code format, kept as received)."""
    organ_name: str = ""
    organization_in_charge: str = ""
    """The parent body (cơ quan chủ quản)."""
    organ_add: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@dataclass(frozen=True, slots=True)
class Code:
    """``Code`` (§1.3): số và ký hiệu văn bản."""

    code_number: str
    code_notation: str

    @property
    def text(self) -> str:
        """The printed form ``number/notation`` (used in ``ResponseFor/Code`` and DocumentId)."""
        return f"{self.code_number}/{self.code_notation}"


@dataclass(frozen=True, slots=True)
class PromulgationInfo:
    """``PromulgationInfo`` (§1.4): place and date of issue."""

    place: str
    promulgation_date: date


@dataclass(frozen=True, slots=True)
class DocumentType:
    """``DocumentType`` (§1.5). The code list differs between vendors (18 or 1 = công văn), so
    ``type`` is not checked against a list."""

    type: int
    type_name: str = ""
    type_detail: str | None = None


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """``SignerInfo`` (§1.8): who signed, as printed on the document."""

    competence: str = ""
    """Thẩm quyền ký, e.g. ``TM. UBND`` or ``KT. Giám đốc``."""
    position: str = ""
    full_name: str = ""


CLASSIFIED_NOT = frozenset({"", "thường", "không mật", "không", "0"})
"""Security-level values that mean *not* classified; anything else counts as classified."""


@dataclass(frozen=True, slots=True)
class OtherInfo:
    """``OtherInfo`` (§1.11)."""

    priority: int = 0
    """0 = normal; higher values are urgent (khẩn, thượng khẩn, hỏa tốc)."""
    sphere_of_promulgation: str = ""
    typer_notation: str = ""
    promulgation_amount: int | None = None
    page_amount: int | None = None
    appendixes: tuple[str, ...] = ()
    security_level: str | None = None
    """Hub extension ``OtherInfo/SecurityLevel`` (độ mật: "Mật", "Tối mật", "Tuyệt mật").

    Decision 28/2018/QĐ-TTg excludes documents containing state secrets from electronic exchange;
    QCVN 102 has no element for the marking, so the hub defines this optional one."""

    @property
    def is_classified(self) -> bool:
        """True for any marking other than an explicit "not secret" value (fail closed)."""
        if self.security_level is None:
            return False
        value = unicodedata.normalize("NFC", self.security_level).strip().casefold()
        return value not in CLASSIFIED_NOT


@dataclass(frozen=True, slots=True)
class ResponseFor:
    """``ResponseFor`` (§1.12 and status packets): identifies an earlier document."""

    organ_id: str
    """The organization that *sent* the earlier document."""
    code: str
    """Its ``number/notation``."""
    promulgation_date: date
    document_id: str


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """``MessageHeader`` (§1.1–1.14). Emitted in the documented order, accepted in any."""

    sender: Organization
    """``From`` (§1.1)."""
    recipients: tuple[Organization, ...]
    """``To`` (§1.2), one per recipient: the routing targets."""
    code: Code
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str
    document_id: str
    """``DocumentId`` (§1.14): ``{senderOrganId},{YYYY/MM/DD},{number}/{notation}``."""
    content: str = ""
    signer_info: SignerInfo | None = None
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    """``ToPlaces`` (§1.10): the printed "Nơi nhận" list; never used for routing."""
    other_info: OtherInfo = field(default_factory=OtherInfo)
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int = 0
    """0 = not a steering (chỉ đạo) document."""


class BusinessDocType(enum.IntEnum):
    """``Bussiness/BussinessDocType`` (§2.2.1): what this packet does to a document."""

    NEW = 0
    REVOCATION = 1
    """Thu hồi: the sender recalls an earlier document."""
    UPDATE = 2
    REPLACEMENT = 3


@dataclass(frozen=True, slots=True)
class StaffInfo:
    """``StaffInfo``: the clerk who handled the packet."""

    department: str = ""
    staff: str = ""
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class ReplacementInfo:
    """``ReplacementInfoList/ReplacementInfo``: which document is replaced, for whom."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Business:
    """``Bussiness`` [sic] (§2.2)."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str = ""
    """``BussinessDocReason``."""
    document_id: str | None = None
    staff_info: StaffInfo | None = None
    paper: int = 0
    """0 = no paper copy follows, 1 = a paper copy follows."""
    replacements: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """``TraceHeader``: one hop (organization and time)."""

    organ_id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class TraceHeaderList:
    """``TraceHeaderList`` (§2). Covered by the sender's signature: the hub never appends to it."""

    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """``edXMLManifest/Reference``: one declared attachment."""

    content_id: str
    """Without the ``cid:`` prefix (it is added on the wire)."""
    attachment_name: str
    content_type: str = "application/pdf"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """``AttachmentEncoded/Attachment``: a file, decoded from base64."""

    content_id: str
    """Without the ``cid:`` prefix."""
    attachment_name: str
    content_type: str = "application/pdf"
    description: str = ""
    data: bytes = field(default=b"", repr=False)

    @property
    def reference(self) -> Reference:
        """The manifest entry that declares this attachment."""
        return Reference(self.content_id, self.attachment_name, self.content_type, self.description)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class _ExactBytes:
    """What both packet kinds keep of their exact bytes: the digest, computed once."""

    __slots__ = ()
    raw: bytes
    _digest: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_digest", hashlib.sha256(self.raw).hexdigest())

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the exact bytes: the document's identity in the ledger."""
        return self._digest


@dataclass(frozen=True, slots=True)
class Envelope(_ExactBytes):
    """A document packet: header, trace list, manifest, attachments and the exact bytes."""

    header: MessageHeader
    trace: TraceHeaderList | None
    manifest: tuple[Reference, ...]
    attachments: tuple[Attachment, ...]
    raw: bytes = field(repr=False)
    signature_count: int = 0
    """How many ``ds:Signature`` elements exist anywhere in the document (for the validators)."""
    tree: Any = field(default=None, init=False, repr=False, compare=False)
    """The root element the hardened parser built from exactly ``raw``; None otherwise.
    Read-only by contract: validators and receipts read it instead of parsing ``raw`` again;
    nothing modifies or re-serializes it (the hub routes and stores ``raw``). Only the parser
    sets it, and ``dataclasses.replace`` drops it, so a copy with other ``raw`` bytes can never
    carry the tree of the original."""
    _digest: str = field(init=False, repr=False, compare=False)

    @property
    def sender(self) -> Organization:
        return self.header.sender

    @property
    def recipients(self) -> tuple[Organization, ...]:
        return self.header.recipients

    @property
    def document_id(self) -> str:
        return self.header.document_id

    @property
    def business_kind(self) -> BusinessDocType:
        """NEW when the trace list or its ``Bussiness`` element is absent."""
        if self.trace is None or self.trace.business is None:
            return BusinessDocType.NEW
        return self.trace.business.doc_type

    @property
    def is_classified(self) -> bool:
        """True when the hub extension ``OtherInfo/SecurityLevel`` marks a state secret."""
        return self.header.other_info.is_classified


class StatusCode(enum.StrEnum):
    """Status codes of QCVN 102 status packets (as used by the national axis SDK samples)."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    IN_PROGRESS = "05"
    FINISHED = "06"
    RECALLED = "13"
    CHANGE_AGREED = "15"
    CHANGE_REFUSED = "16"

    @property
    def vi(self) -> str:
        return _STATUS_TEXT[self][0]

    @property
    def en(self) -> str:
        return _STATUS_TEXT[self][1]


_STATUS_TEXT: dict[StatusCode, tuple[str, str]] = {
    StatusCode.ARRIVED: ("Đã đến", "Arrived in the recipient's system"),
    StatusCode.REJECTED: ("Từ chối (trả lại)", "Rejected / returned"),
    StatusCode.ACCEPTED: ("Đã tiếp nhận (vào sổ)", "Accepted / registered"),
    StatusCode.ASSIGNED: ("Phân công xử lý", "Assigned for handling"),
    StatusCode.IN_PROGRESS: ("Đang xử lý", "In progress"),
    StatusCode.FINISHED: ("Hoàn thành", "Finished"),
    StatusCode.RECALLED: ("Lấy lại / thu hồi", "The sender recalls the document"),
    StatusCode.CHANGE_AGREED: (
        "Đồng ý cập nhật / thu hồi",
        "The recipient agrees to the recall/update",
    ),
    StatusCode.CHANGE_REFUSED: (
        "Từ chối cập nhật / thu hồi",
        "The recipient refuses the recall/update",
    ),
}


@dataclass(frozen=True, slots=True)
class StatusPacket(_ExactBytes):
    """A status packet (``edXML:Status`` in ``edXMLHeader``, empty body)."""

    response_for: ResponseFor
    sender: Organization
    """The organization that reports the status (``From``)."""
    status_code: str
    """Two digits, kept as received: codes 07–12 and 14 are unused but passed through."""
    description: str
    timestamp: datetime
    staff_info: StaffInfo | None
    raw: bytes = field(repr=False)
    signature_count: int = 0
    tree: Any = field(default=None, init=False, repr=False, compare=False)
    """As :attr:`Envelope.tree`: the parsed root of exactly ``raw``, read-only, or None."""
    _digest: str = field(init=False, repr=False, compare=False)

    @property
    def code(self) -> StatusCode | None:
        """The known status code, or None for a reserved one."""
        try:
            return StatusCode(self.status_code)
        except ValueError:
            return None

    @property
    def document_id(self) -> str:
        """The DocumentId of the document this status is about."""
        return self.response_for.document_id


Packet = Envelope | StatusPacket

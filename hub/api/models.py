"""What the API answers, as pydantic models: they are the OpenAPI document's schemas.

Field names follow the national axis' operations where it has one (``docId``, ``from``, ``to``,
``messageType``, ``serviceType``, ``status``/``errorCode``/``errorDesc``), so an agency system
written for the axis reads them unchanged; docs/API.md maps each one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MessageType = Literal["edoc", "update", "replacement", "revocation", "status"]
"""The axis' ``messageType``: a new document (QCVN 102 BussinessDocType 0), an update (2), a
replacement (3), a recall (1, "revocation"), or a status packet."""

StatusWord = Literal["inbox", "acceptance", "rejection", "assignment", "processing", "done",
                     "fail"]
"""The axis' ``updateStatus`` words (``assignment`` is the hub's name for QCVN 102's 04)."""


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class ReasonText(_Model):
    vi: str
    en: str


class ErrorBody(_Model):
    """Every error: the stable reason code (hub/reasons.py) and its Vietnamese/English texts."""

    status: Literal["FAIL"] = "FAIL"
    errorCode: str = Field(description="The reason code (stable; README's reason table).")
    errorDesc: str = Field(description="The reason in English (the axis' field).")
    message: ReasonText
    detail: str = ""
    docId: str | None = None


class SendResult(_Model):
    """``sendEdoc``: where the packet went and, when waited for, the intake's verdict."""

    status: Literal["OK"] = "OK"
    docId: str = Field(description="SHA-256 (hex) of the exact bytes: the id of this packet.")
    messageId: str
    verdict: Literal["accepted", "duplicate", "pending"]
    """accepted: validated and routed; duplicate: the same bytes were accepted before; pending:
    not judged yet within the wait (the signed receipt will follow in the status list)."""


class ReceivedItem(_Model):
    """One entry of ``getReceivedEdocList``."""

    docId: str
    messageId: str | None
    messageType: MessageType | Literal["unknown"]
    serviceType: Literal["eDoc"] = "eDoc"
    from_: str = Field(alias="from")
    to: list[str]
    documentId: str | None = None
    code: str | None = Field(default=None, description="Số và ký hiệu (CodeNumber/CodeNotation).")
    subject: str | None = None
    promulgationDate: date | None = None
    statusCode: str | None = Field(default=None, description="For a status packet: QCVN 102 code.")
    receipt: str | None = Field(default=None, description="For a hub receipt: its kind.")
    reason: str | None = Field(default=None, description="For a refusal: the reason code.")
    responseFor: str | None = Field(default=None, description="For a status: the DocumentId.")
    receivedAt: datetime
    state: Literal["new", "fetched"]
    redelivered: bool
    size: int


class ReceivedList(_Model):
    status: Literal["OK"] = "OK"
    total: int
    page: int
    pageSize: int
    items: list[ReceivedItem]


class Receipt(_Model):
    """A signed packet about a document, exactly as stored (``hub receipt verify`` checks it)."""

    docId: str
    kind: str = Field(description="accepted, received, rejected (hub receipts) or status.")
    issuer: str
    statusCode: str = ""
    receivedAt: datetime
    content: str = Field(description="The exact signed bytes, base64.")


class Edoc(_Model):
    """``getEdoc``: the exact bytes and the hub's receipts for them."""

    status: Literal["OK"] = "OK"
    item: ReceivedItem
    content: str = Field(description="The exact bytes, base64 (never re-serialized).")
    contentSha256: str
    receipts: list[Receipt]


DocIdText = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AckRequest(_Model):
    docIds: list[DocIdText] = Field(min_length=1, max_length=1000)


class AckResult(_Model):
    status: Literal["OK"] = "OK"
    acknowledged: list[str]
    alreadyAcknowledged: list[str]


class StaffModel(_Model):
    department: str = Field(default="", max_length=256)
    staff: str = Field(default="", max_length=256)
    email: str = Field(default="", max_length=256)
    mobile: str = Field(default="", max_length=64)


class StatusRequest(_Model):
    """``updateStatus`` by word (the axis') or by QCVN 102 code; the hub signs as the agency."""

    status: StatusWord | Literal["01", "02", "03", "04", "05", "06", "15", "16"]
    description: str = Field(default="", max_length=2000)
    staff: StaffModel | None = None


class Agency(_Model):
    """One body of the directory, with both code formats and its validity dates."""

    code: str = Field(description="The code the hub uses (the directory's first).")
    legacyCode: str | None = Field(description="QCVN 102:2016 form, e.g. 000.00.01.H27.")
    electronicCode: str | None = Field(description="Decision 20/2020/QĐ-TTg form, e.g. H27.01.")
    codes: list[str]
    name: str
    level: int
    parent: str | None
    province: str
    reach: Literal["direct", "axis"]
    validFrom: date | None
    validTo: date | None = Field(description="Last valid day (inclusive); null while it exists.")
    successor: str | None


class AgencyList(_Model):
    status: Literal["OK"] = "OK"
    total: int
    page: int
    pageSize: int
    items: list[Agency]


class SentItem(_Model):
    docId: str
    documentId: str
    code: str
    to: list[str]
    receivedAt: datetime
    deliveredTo: list[str]


class SentList(_Model):
    status: Literal["OK"] = "OK"
    total: int = Field(description=(
        "Documents sent in the period (from any code of the organization), on every page."))
    hasMore: bool = Field(description="Whether a next page has documents.")
    page: int
    pageSize: int
    items: list[SentItem]


class TimelineEvent(_Model):
    seq: int
    kind: str
    at: datetime
    organization: str | None
    reason: str | None


class Evidence(_Model):
    """The evidence of a sent document: its receipts and statuses (exact signed bytes) and the
    ledger's timeline for it."""

    status: Literal["OK"] = "OK"
    docId: str
    documentId: str
    receipts: list[Receipt]
    statuses: list[Receipt]
    timeline: list[TimelineEvent]
    verify: str = Field(description="How to check a receipt offline.")

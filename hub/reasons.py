"""The reason catalogue: every stable reason code the hub can give, with its texts.

A reason code's *string value never changes once released*: it goes into the ledger, into
dead-letter headers and into signed status packets that other agencies keep. Add codes; never
rename or reuse one. Each code has a Vietnamese and an English text (what the sender or operator
reads), the operator action it calls for, and whether the hub retries it by itself.

``tests/unit/test_reasons.py`` fails if a code lacks a text; the README table is rendered from
:func:`render_markdown`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Disposition(enum.Enum):
    """What the pipeline does with a delivery that carries this reason."""

    ACCEPT = "accept"
    """The check passed; no action."""
    REJECT = "reject"
    """Permanent: dead-letter at once and tell the sender."""
    RETRY = "retry"
    """Transient: retry with bounded backoff; dead-letter only when attempts run out."""


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    vi: str
    """Text for Vietnamese readers (the sender's clerk, the operator)."""
    en: str
    """The same in English."""
    action: str
    """What an operator should do about it."""
    disposition: Disposition


class Reason(enum.StrEnum):
    """Stable reason codes. The value is what is stored and sent; never change one."""

    OK = "OK"

    # -- envelope parsing (QCVN 102:2016 packet format) ---------------------------------------
    ENVELOPE_MALFORMED = "ENVELOPE_MALFORMED"
    ENVELOPE_TOO_LARGE = "ENVELOPE_TOO_LARGE"
    ENVELOPE_TOO_DEEP = "ENVELOPE_TOO_DEEP"
    ENVELOPE_TOO_MANY_ELEMENTS = "ENVELOPE_TOO_MANY_ELEMENTS"
    ENVELOPE_TOO_MANY_ATTRIBUTES = "ENVELOPE_TOO_MANY_ATTRIBUTES"
    """Too many attributes or namespace declarations on one element or in the packet
    (:class:`hub.edxml.Limits`): bounded before any signature check, which they made
    super-linear."""
    ENVELOPE_DTD_FORBIDDEN = "ENVELOPE_DTD_FORBIDDEN"
    ENVELOPE_SCHEMA_INVALID = "ENVELOPE_SCHEMA_INVALID"
    ENVELOPE_NOT_EDXML = "ENVELOPE_NOT_EDXML"
    ENVELOPE_ENCODING_INVALID = "ENVELOPE_ENCODING_INVALID"
    ATTACHMENT_TOO_LARGE = "ATTACHMENT_TOO_LARGE"
    ATTACHMENT_ENCODING_INVALID = "ATTACHMENT_ENCODING_INVALID"
    ATTACHMENT_NOT_IN_MANIFEST = "ATTACHMENT_NOT_IN_MANIFEST"
    ORGAN_ID_INVALID = "ORGAN_ID_INVALID"
    DOCUMENT_ID_INVALID = "DOCUMENT_ID_INVALID"
    DATE_INVALID = "DATE_INVALID"
    STATUS_CODE_INVALID = "STATUS_CODE_INVALID"

    # -- XML signature ------------------------------------------------------------------------
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_MULTIPLE = "SIGNATURE_MULTIPLE"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_DIGEST_MISMATCH = "SIGNATURE_DIGEST_MISMATCH"
    SIGNATURE_SCOPE_INCOMPLETE = "SIGNATURE_SCOPE_INCOMPLETE"
    SIGNATURE_ALGORITHM_FORBIDDEN = "SIGNATURE_ALGORITHM_FORBIDDEN"
    SIGNATURE_KEY_TOO_WEAK = "SIGNATURE_KEY_TOO_WEAK"
    SIGNATURE_WRAPPING_SUSPECTED = "SIGNATURE_WRAPPING_SUSPECTED"
    SIGNATURE_CERTIFICATE_MISSING = "SIGNATURE_CERTIFICATE_MISSING"

    # -- certificate trust (Circular 08/2016/TT-BQP, Decree 130/2018) -------------------------
    CERT_UNTRUSTED_ROOT = "CERT_UNTRUSTED_ROOT"
    CERT_PUBLIC_CA = "CERT_PUBLIC_CA"
    CERT_SELF_SIGNED = "CERT_SELF_SIGNED"
    CERT_PATH_INVALID = "CERT_PATH_INVALID"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
    CERT_REVOKED = "CERT_REVOKED"
    CERT_KEY_USAGE_INVALID = "CERT_KEY_USAGE_INVALID"
    CERT_POLICY_MISSING = "CERT_POLICY_MISSING"
    REVOCATION_UNAVAILABLE = "REVOCATION_UNAVAILABLE"
    CERT_MALFORMED = "CERT_MALFORMED"

    # -- who may sign -------------------------------------------------------------------------
    SIGNER_NOT_AUTHORIZED_FOR_SENDER = "SIGNER_NOT_AUTHORIZED_FOR_SENDER"
    SENDER_UNKNOWN = "SENDER_UNKNOWN"
    SENDER_ACCOUNT_MISMATCH = "SENDER_ACCOUNT_MISMATCH"

    # -- PDF attachments (Circular 41/2017, Decree 30/2020 Art. 5) ----------------------------
    PDF_SIGNATURE_INVALID = "PDF_SIGNATURE_INVALID"
    PDF_MODIFIED_AFTER_SIGNING = "PDF_MODIFIED_AFTER_SIGNING"
    PDF_SIGNER_UNTRUSTED = "PDF_SIGNER_UNTRUSTED"
    PDF_PERSON_SIGNATURE_MISSING = "PDF_PERSON_SIGNATURE_MISSING"
    PDF_ORGANIZATION_SIGNATURE_MISSING = "PDF_ORGANIZATION_SIGNATURE_MISSING"
    PDF_MALFORMED = "PDF_MALFORMED"

    # -- routing (Decision 28/2018/QĐ-TTg) ----------------------------------------------------
    RECIPIENT_UNKNOWN = "RECIPIENT_UNKNOWN"
    RECIPIENT_MISSING = "RECIPIENT_MISSING"
    DOCUMENT_CLASSIFIED = "DOCUMENT_CLASSIFIED"
    DOCUMENT_ID_REUSED = "DOCUMENT_ID_REUSED"
    DUPLICATE = "DUPLICATE"
    ORIGINAL_UNKNOWN = "ORIGINAL_UNKNOWN"
    NOT_ORIGINAL_SENDER = "NOT_ORIGINAL_SENDER"
    STATUS_ORPHAN = "STATUS_ORPHAN"
    STATUS_REPORTER_NOT_RECIPIENT = "STATUS_REPORTER_NOT_RECIPIENT"

    # -- infrastructure (transient) -----------------------------------------------------------
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    LEDGER_UNAVAILABLE = "LEDGER_UNAVAILABLE"
    LEDGER_ROW_REJECTED = "LEDGER_ROW_REJECTED"
    DELIVERY_LIMIT_EXCEEDED = "DELIVERY_LIMIT_EXCEEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    # -- operator actions ---------------------------------------------------------------------
    OPERATOR_DISCARDED = "OPERATOR_DISCARDED"

    # -- hardening (issue 16): only signed bytes travel, bounded fields -------------------------
    ENVELOPE_CONTENT_OUTSIDE_ROOT = "ENVELOPE_CONTENT_OUTSIDE_ROOT"
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    SIGNATURE_KEY_INFO_TOO_LARGE = "SIGNATURE_KEY_INFO_TOO_LARGE"

    # -- the national document axis (issue 19; Decision 28/2018/QĐ-TTg) ----------------------
    AXIS_REFUSED = "AXIS_REFUSED"
    """The national axis answered a document with a refusal (4xx and a reason of its own)."""
    AXIS_UNAVAILABLE = "AXIS_UNAVAILABLE"
    """The national axis did not answer usefully (timeout, 5xx, connection refused)."""
    # -- the HTTP API for agency systems (issue 18): answers to a request, never a packet's fate
    API_AUTH_REQUIRED = "API_AUTH_REQUIRED"
    API_CREDENTIALS_INVALID = "API_CREDENTIALS_INVALID"
    API_CLIENT_CERT_UNKNOWN = "API_CLIENT_CERT_UNKNOWN"
    API_RATE_LIMITED = "API_RATE_LIMITED"
    API_REQUEST_INVALID = "API_REQUEST_INVALID"
    API_DOCUMENT_NOT_FOUND = "API_DOCUMENT_NOT_FOUND"
    API_KEY_NOT_HELD = "API_KEY_NOT_HELD"
    API_CLIENT_CERT_REVOKED = "API_CLIENT_CERT_REVOKED"
    """The client certificate is revoked by the hub's own CRLs or OCSP answers (``[trust]``):
    Decree 130/2018/NĐ-CP, a revoked certificate proves nothing."""
    API_CLIENT_CERT_INVALID = "API_CLIENT_CERT_INVALID"
    """The client certificate is not one for TLS client authentication (no clientAuth extended
    key usage, RFC 5280 §4.2.1.12) or has no path to a CA of ``[api] tls_client_ca``."""
    API_CLIENT_CERT_STATUS_UNKNOWN = "API_CLIENT_CERT_STATUS_UNKNOWN"
    """The client certificate's revocation status cannot be known now (no fresh CRL or OCSP
    answer): refused for now (503), as the intake never lets REVOCATION_UNAVAILABLE pass."""

    @property
    def info(self) -> ReasonInfo:
        return CATALOGUE[self]

    @property
    def vi(self) -> str:
        return CATALOGUE[self].vi

    @property
    def en(self) -> str:
        return CATALOGUE[self].en

    @property
    def retries(self) -> bool:
        return CATALOGUE[self].disposition is Disposition.RETRY


_A, _R, _T = Disposition.ACCEPT, Disposition.REJECT, Disposition.RETRY
_FIX_SENDER = "Tell the sending agency to fix and resend; nothing to do on the hub."
_CHECK_DIR = "Check the organization directory; replay once it is corrected."

CATALOGUE: dict[Reason, ReasonInfo] = {
    Reason.OK: ReasonInfo("Hợp lệ", "Valid", "None.", _A),
    Reason.ENVELOPE_MALFORMED: ReasonInfo(
        "Gói tin không phải XML hợp lệ", "The packet is not well-formed XML", _FIX_SENDER, _R),
    Reason.ENVELOPE_TOO_LARGE: ReasonInfo(
        "Gói tin vượt quá dung lượng cho phép", "The packet exceeds the size limit",
        "Raise limits.max_envelope_bytes only if the document is legitimate.", _R),
    Reason.ENVELOPE_TOO_DEEP: ReasonInfo(
        "Cấu trúc XML lồng nhau quá sâu", "The XML nesting is too deep", _FIX_SENDER, _R),
    Reason.ENVELOPE_TOO_MANY_ELEMENTS: ReasonInfo(
        "Gói tin có quá nhiều phần tử XML", "The packet has too many XML elements", _FIX_SENDER, _R),
    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES: ReasonInfo(
        "Gói tin có quá nhiều thuộc tính hoặc khai báo không gian tên XML",
        "The packet has too many XML attributes or namespace declarations",
        "Possible attack (the limits are far above any real document): review the sender's "
        "system.", _R),
    Reason.ENVELOPE_DTD_FORBIDDEN: ReasonInfo(
        "Gói tin chứa DTD hoặc thực thể XML (bị cấm)",
        "The packet contains a DTD or XML entities (forbidden)",
        "Possible attack: review the sender's system.", _R),
    Reason.ENVELOPE_SCHEMA_INVALID: ReasonInfo(
        "Gói tin không đúng cấu trúc QCVN 102:2016/BTTTT",
        "The packet does not follow the QCVN 102:2016/BTTTT schema", _FIX_SENDER, _R),
    Reason.ENVELOPE_NOT_EDXML: ReasonInfo(
        "Gói tin không phải edXML", "The packet is not an edXML document", _FIX_SENDER, _R),
    Reason.ENVELOPE_ENCODING_INVALID: ReasonInfo(
        "Mã hóa ký tự không hợp lệ (yêu cầu UTF-8)", "Invalid character encoding (UTF-8 required)",
        _FIX_SENDER, _R),
    Reason.ATTACHMENT_TOO_LARGE: ReasonInfo(
        "Tệp đính kèm vượt quá dung lượng cho phép", "An attachment exceeds the size limit",
        "Raise limits.max_attachment_bytes only if the document is legitimate.", _R),
    Reason.ATTACHMENT_ENCODING_INVALID: ReasonInfo(
        "Tệp đính kèm không được mã hóa base64 hợp lệ", "An attachment is not valid base64",
        _FIX_SENDER, _R),
    Reason.ATTACHMENT_NOT_IN_MANIFEST: ReasonInfo(
        "Tệp đính kèm không khớp danh mục (manifest)",
        "Attachments and the manifest do not match", _FIX_SENDER, _R),
    Reason.ORGAN_ID_INVALID: ReasonInfo(
        "Mã định danh cơ quan không hợp lệ", "Malformed organization code", _FIX_SENDER, _R),
    Reason.DOCUMENT_ID_INVALID: ReasonInfo(
        "Mã văn bản (DocumentId) không hợp lệ", "Malformed DocumentId", _FIX_SENDER, _R),
    Reason.DATE_INVALID: ReasonInfo(
        "Ngày tháng không hợp lệ (yêu cầu YYYY/MM/DD)", "Invalid date (YYYY/MM/DD required)",
        _FIX_SENDER, _R),
    Reason.STATUS_CODE_INVALID: ReasonInfo(
        "Mã trạng thái không hợp lệ", "Invalid status code", _FIX_SENDER, _R),
    Reason.SIGNATURE_MISSING: ReasonInfo(
        "Gói tin không có chữ ký số", "The packet carries no digital signature", _FIX_SENDER, _R),
    Reason.SIGNATURE_MULTIPLE: ReasonInfo(
        "Gói tin có nhiều hơn một chữ ký XML ở cấp gói tin",
        "The packet carries more than one envelope-level XML signature", _FIX_SENDER, _R),
    Reason.SIGNATURE_INVALID: ReasonInfo(
        "Chữ ký số không hợp lệ", "The digital signature does not verify", _FIX_SENDER, _R),
    Reason.SIGNATURE_DIGEST_MISMATCH: ReasonInfo(
        "Nội dung đã bị thay đổi sau khi ký", "The content was changed after signing",
        "Possible tampering in transit: keep the evidence.", _R),
    Reason.SIGNATURE_SCOPE_INCOMPLETE: ReasonInfo(
        "Chữ ký không bao phủ toàn bộ gói tin (kể cả tệp đính kèm)",
        "The signature does not cover the whole packet (attachments included)", _FIX_SENDER, _R),
    Reason.SIGNATURE_ALGORITHM_FORBIDDEN: ReasonInfo(
        "Thuật toán ký hoặc băm không được phép (ví dụ SHA-1)",
        "Forbidden signature or digest algorithm (e.g. SHA-1)", _FIX_SENDER, _R),
    Reason.SIGNATURE_KEY_TOO_WEAK: ReasonInfo(
        "Khóa ký quá yếu (RSA dưới 2048 bit)", "The signing key is too weak (RSA below 2048 bits)",
        _FIX_SENDER, _R),
    Reason.SIGNATURE_WRAPPING_SUSPECTED: ReasonInfo(
        "Cấu trúc chữ ký bất thường (nghi tấn công bọc chữ ký)",
        "Unusual signature structure (suspected signature wrapping)",
        "Possible attack: keep the evidence and review the sender's system.", _R),
    Reason.SIGNATURE_CERTIFICATE_MISSING: ReasonInfo(
        "Chữ ký không kèm chứng thư số của người ký",
        "The signature does not carry the signer's certificate", _FIX_SENDER, _R),
    Reason.CERT_UNTRUSTED_ROOT: ReasonInfo(
        "Chứng thư số không thuộc hệ thống chứng thực chuyên dùng Chính phủ",
        "The certificate does not chain to a configured specialized root", _FIX_SENDER, _R),
    Reason.CERT_PUBLIC_CA: ReasonInfo(
        "Chứng thư số công cộng không được dùng để trao đổi văn bản giữa các cơ quan nhà nước",
        "A public-CA certificate may not be used for exchange between state bodies",
        "Tell the sender to sign with its specialized (Ban Cơ yếu) certificate.", _R),
    Reason.CERT_SELF_SIGNED: ReasonInfo(
        "Chứng thư số tự ký", "The certificate is self-signed", _FIX_SENDER, _R),
    Reason.CERT_PATH_INVALID: ReasonInfo(
        "Không xây dựng được chuỗi chứng thực hợp lệ", "No valid certification path",
        _FIX_SENDER, _R),
    Reason.CERT_EXPIRED: ReasonInfo(
        "Chứng thư số đã hết hạn", "The certificate has expired", _FIX_SENDER, _R),
    Reason.CERT_NOT_YET_VALID: ReasonInfo(
        "Chứng thư số chưa có hiệu lực", "The certificate is not yet valid",
        "Check the clocks of the sender and of the hub.", _R),
    Reason.CERT_REVOKED: ReasonInfo(
        "Chứng thư số đã bị thu hồi", "The certificate has been revoked", _FIX_SENDER, _R),
    Reason.CERT_KEY_USAGE_INVALID: ReasonInfo(
        "Chứng thư số không được phép dùng để ký", "The certificate's key usage does not allow signing",
        _FIX_SENDER, _R),
    Reason.CERT_POLICY_MISSING: ReasonInfo(
        "Chứng thư số không mang chính sách chứng thư chuyên dùng",
        "The certificate lacks the specialized certificate policy", _FIX_SENDER, _R),
    Reason.REVOCATION_UNAVAILABLE: ReasonInfo(
        "Chưa kiểm tra được tình trạng thu hồi chứng thư (CRL/OCSP); sẽ thử lại",
        "Revocation status (CRL/OCSP) could not be checked; will retry",
        "Refresh the CRLs (hub doctor names every CA without fresh data); deliveries resume by "
        "themselves. After the last attempt the delivery is parked in the dead-letter queue under "
        "this reason and the sender is not told: replay it once revocation data is back.", _T),
    Reason.CERT_MALFORMED: ReasonInfo(
        "Chứng thư số bị lỗi cấu trúc (không đọc được một trường hoặc phần mở rộng)",
        "A certificate is malformed (a field or extension cannot be read)", _FIX_SENDER, _R),
    Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER: ReasonInfo(
        "Người ký không thuộc cơ quan gửi", "The signer may not sign for the sending organization",
        _CHECK_DIR, _R),
    Reason.SENDER_UNKNOWN: ReasonInfo(
        "Cơ quan gửi không có trong danh bạ", "The sending organization is not in the directory",
        _CHECK_DIR, _R),
    Reason.SENDER_ACCOUNT_MISMATCH: ReasonInfo(
        "Tài khoản gửi không thuộc cơ quan gửi",
        "The broker account that published does not belong to the sending organization",
        "Possible impersonation: review broker accounts.", _R),
    Reason.PDF_SIGNATURE_INVALID: ReasonInfo(
        "Chữ ký trên tệp PDF không hợp lệ", "A PDF signature does not verify", _FIX_SENDER, _R),
    Reason.PDF_MODIFIED_AFTER_SIGNING: ReasonInfo(
        "Tệp PDF bị sửa đổi sau khi ký", "The PDF was modified after signing", _FIX_SENDER, _R),
    Reason.PDF_SIGNER_UNTRUSTED: ReasonInfo(
        "Chữ ký PDF không thuộc hệ thống chứng thực chuyên dùng",
        "A PDF signature was not made with a trusted specialized certificate", _FIX_SENDER, _R),
    Reason.PDF_PERSON_SIGNATURE_MISSING: ReasonInfo(
        "Văn bản chính thiếu chữ ký của người có thẩm quyền",
        "The main document lacks the competent person's signature", _FIX_SENDER, _R),
    Reason.PDF_ORGANIZATION_SIGNATURE_MISSING: ReasonInfo(
        "Văn bản chính thiếu chữ ký số của cơ quan, tổ chức",
        "The main document lacks the organization's signature", _FIX_SENDER, _R),
    Reason.PDF_MALFORMED: ReasonInfo(
        "Tệp PDF bị lỗi cấu trúc", "A PDF attachment is malformed", _FIX_SENDER, _R),
    Reason.RECIPIENT_UNKNOWN: ReasonInfo(
        "Cơ quan nhận không có trong danh bạ", "A recipient is not in the directory", _CHECK_DIR, _R),
    Reason.RECIPIENT_MISSING: ReasonInfo(
        "Gói tin không có cơ quan nhận", "The packet names no recipient", _FIX_SENDER, _R),
    Reason.DOCUMENT_CLASSIFIED: ReasonInfo(
        "Văn bản mật không được gửi qua hệ thống (Quyết định 28/2018/QĐ-TTg)",
        "Classified documents may not be sent through the system (Decision 28/2018/QĐ-TTg)",
        "Tell the sender to use the channel for classified documents.", _R),
    Reason.DOCUMENT_ID_REUSED: ReasonInfo(
        "Mã văn bản đã được dùng cho một văn bản khác",
        "The DocumentId was already used for a different document", _FIX_SENDER, _R),
    Reason.DUPLICATE: ReasonInfo(
        "Văn bản đã được nhận trước đó (bỏ qua bản trùng)",
        "This document was already received (duplicate ignored)", "None.", _A),
    Reason.ORIGINAL_UNKNOWN: ReasonInfo(
        "Không tìm thấy văn bản gốc được tham chiếu", "The referenced original document is unknown",
        _FIX_SENDER, _R),
    Reason.NOT_ORIGINAL_SENDER: ReasonInfo(
        "Chỉ cơ quan gửi văn bản gốc mới được thu hồi hoặc cập nhật",
        "Only the original sender may recall or update a document", _FIX_SENDER, _R),
    Reason.STATUS_ORPHAN: ReasonInfo(
        "Trạng thái tham chiếu văn bản không tồn tại",
        "The status refers to a document the hub never delivered", _FIX_SENDER, _R),
    Reason.STATUS_REPORTER_NOT_RECIPIENT: ReasonInfo(
        "Cơ quan báo trạng thái không phải là nơi nhận văn bản",
        "The reporting organization was not a recipient of the document", _FIX_SENDER, _R),
    Reason.BROKER_UNAVAILABLE: ReasonInfo(
        "Máy chủ trao đổi thông điệp tạm thời không sẵn sàng", "The message broker is unavailable",
        "Check RabbitMQ; the hub reconnects by itself.", _T),
    Reason.LEDGER_UNAVAILABLE: ReasonInfo(
        "Sổ nhật ký giao nhận tạm thời không sẵn sàng", "The delivery ledger is unavailable",
        "Check the database; the hub stops acknowledging until it is back.", _T),
    Reason.LEDGER_ROW_REJECTED: ReasonInfo(
        "Sổ nhật ký giao nhận không ghi nhận được bản ghi của gói tin này",
        "The delivery ledger refused this packet's record",
        "A bug or a database constraint: the packet's deliveries went out but its ledger rows "
        "were refused; the hub recorded this refusal and went on. Fix the cause, then replay.",
        _R),
    Reason.DELIVERY_LIMIT_EXCEEDED: ReasonInfo(
        "Đã thử lại quá số lần cho phép", "Retried more than the allowed number of times",
        "Fix the cause shown in the first-failure reason, then replay.", _R),
    Reason.INTERNAL_ERROR: ReasonInfo(
        "Lỗi nội bộ của hệ thống trung gian", "Internal error in the hub",
        "File a bug with the ledger row and the log event; replay once fixed (after the last "
        "attempt it is parked as DELIVERY_LIMIT_EXCEEDED; the sender is not told).", _T),
    Reason.OPERATOR_DISCARDED: ReasonInfo(
        "Cán bộ vận hành đã hủy thông điệp", "An operator discarded the message", "None.", _R),
    Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT: ReasonInfo(
        "Gói tin có nội dung nằm ngoài phần tử gốc (chỉ dẫn xử lý hoặc chú thích XML), "
        "không được chữ ký số bảo vệ",
        "The packet carries content outside its root element (an XML processing instruction "
        "or comment) that no signature covers",
        "Possible tampering in transit: keep the evidence; tell the sender to send only the "
        "signed document.", _R),
    Reason.FIELD_TOO_LONG: ReasonInfo(
        "Trường dữ liệu vượt quá độ dài cho phép", "A field exceeds its maximum length",
        _FIX_SENDER, _R),
    Reason.SIGNATURE_KEY_INFO_TOO_LARGE: ReasonInfo(
        "Chữ ký kèm quá nhiều hoặc quá lớn chứng thư số (KeyInfo)",
        "The signature's KeyInfo carries too many or too large certificates", _FIX_SENDER, _R),
    Reason.AXIS_REFUSED: ReasonInfo(
        "Trục liên thông văn bản quốc gia từ chối văn bản",
        "The national document exchange axis refused the document",
        "The axis' own code and text are in the detail (e.g. a recipient not registered on the "
        "axis): fix the directory or tell the sender; the sender got a signed refusal.", _R),
    Reason.AXIS_UNAVAILABLE: ReasonInfo(
        "Trục liên thông văn bản quốc gia tạm thời không sẵn sàng",
        "The national document exchange axis is unavailable",
        "Documents wait in the gateway queue and the connector retries with backoff (circuit "
        "breaker); check the axis endpoint and the connector's credentials. A letter the axis "
        "kept failing while it answered other calls is parked in the dead-letter queue under "
        "this reason after its attempts (the sender is not told): replay it once the axis "
        "takes it.", _T),
    Reason.API_AUTH_REQUIRED: ReasonInfo(
        "Yêu cầu chưa được xác thực (cần chứng thư số của hệ thống hoặc mã hệ thống và khóa bí mật)",
        "The request is not authenticated (a client certificate or a system id and secret is "
        "required)", "Tell the agency to configure its system's certificate or credentials.", _R),
    Reason.API_CREDENTIALS_INVALID: ReasonInfo(
        "Mã hệ thống hoặc khóa bí mật không đúng", "Unknown system id or wrong secret",
        "Check the system's entry with `hub api credentials ls`; rotate its secret if it was "
        "lost.", _R),
    Reason.API_CLIENT_CERT_UNKNOWN: ReasonInfo(
        "Chứng thư số của hệ thống không thuộc cơ quan nào trong danh bạ",
        "The client certificate belongs to no organization of the directory",
        "Add the certificate's uid or fingerprint as an organization signer in the directory.",
        _R),
    Reason.API_RATE_LIMITED: ReasonInfo(
        "Vượt quá số yêu cầu cho phép, vui lòng thử lại sau",
        "Too many requests; try again later",
        "The agency exceeded its request rate ([api] rate_per_s / rate_burst), its waiting "
        "requests (waits_per_org), or failed sign-ins from its address or system id "
        "(signin_failure_burst), or secret checks were at their cap (signin_concurrency): "
        "raise a limit only if the traffic is legitimate; the answer's Retry-After says when "
        "to try again.", _R),
    Reason.API_REQUEST_INVALID: ReasonInfo(
        "Yêu cầu không hợp lệ", "The request is invalid",
        "Tell the agency to check its request against the API description (docs/API.md).", _R),
    Reason.API_DOCUMENT_NOT_FOUND: ReasonInfo(
        "Không tìm thấy văn bản của cơ quan với mã này",
        "No document of this organization has this id", "None.", _R),
    Reason.API_KEY_NOT_HELD: ReasonInfo(
        "Hệ thống trung gian không giữ khóa của cơ quan: cơ quan phải tự ký và gửi gói tin trạng thái",
        "The hub holds no key of this organization: send a status packet signed by the agency",
        "None, or add the organization's key to the keystore if the hub is to sign for it.", _R),
    Reason.API_CLIENT_CERT_REVOKED: ReasonInfo(
        "Chứng thư số của hệ thống đã bị thu hồi",
        "The client certificate has been revoked",
        "None on the hub (its CRLs or OCSP say so): the agency needs a new certificate for its "
        "system, listed as an organization signer in the directory.", _R),
    Reason.API_CLIENT_CERT_INVALID: ReasonInfo(
        "Chứng thư số của hệ thống không dùng được để xác thực máy khách (thiếu mục đích "
        "clientAuth hoặc không có đường dẫn tới CA được tin cậy)",
        "The client certificate cannot authenticate a client (no clientAuth extended key usage, "
        "or no path to a trusted CA)",
        "Tell the agency to use a certificate issued for TLS client authentication; put its "
        "issuing CA and root in [api] tls_client_ca.", _R),
    Reason.API_CLIENT_CERT_STATUS_UNKNOWN: ReasonInfo(
        "Chưa kiểm tra được tình trạng thu hồi chứng thư số của hệ thống (CRL/OCSP), vui lòng "
        "thử lại sau",
        "The client certificate's revocation status (CRL/OCSP) could not be checked; try again "
        "later",
        "Refresh the CRLs ([trust] crls, fetch_crls; hub doctor names every CA without fresh "
        "data); requests are accepted again by themselves.", _R),
}


def render_markdown() -> str:
    """The reason table for the README and for operators."""
    lines = [
        "| code | tiếng Việt | English | retried | operator action |",
        "|---|---|---|---|---|",
    ]
    for reason in Reason:
        info = reason.info
        retried = "yes" if info.disposition is Disposition.RETRY else "no"
        lines.append(f"| `{reason.value}` | {info.vi} | {info.en} | {retried} | {info.action} |")
    return "\n".join(lines)

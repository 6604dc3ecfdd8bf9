"""The console's words, in Vietnamese (the default) and English.

One table, key → (vi, en). Reason texts come from the catalogue (:mod:`hub.reasons`), never
from here; event kinds and roles have their own entries so a clerk reads "Đã chuyển" rather
than ``delivered``. The catalogue's operator actions are English only: :data:`ACTIONS_VI` gives
each its Vietnamese text (a test checks every reason's action has one).
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("vi", "en")
DEFAULT = "vi"

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Bảng điều khiển EDXML hub", "EDXML hub console"),
    "nav.dlq": ("Thư lỗi", "Dead letters"),
    "nav.ledger": ("Sổ cái", "Ledger"),
    "nav.report": ("Báo cáo sử dụng", "Adoption report"),
    "nav.health": ("Tình trạng", "Health"),
    "nav.users": ("Người dùng", "Users"),
    "nav.signout": ("Đăng xuất", "Sign out"),
    "lang.other": ("English", "Tiếng Việt"),
    "signin.title": ("Đăng nhập", "Sign in"),
    "signin.name": ("Tên đăng nhập", "Login name"),
    "signin.password": ("Mật khẩu", "Password"),
    "signin.submit": ("Đăng nhập", "Sign in"),
    "signin.failed": ("Tên đăng nhập hoặc mật khẩu không đúng, hoặc tài khoản đang bị khóa.",
                      "Wrong login name or password, or the account is locked."),
    "signin.throttled": ("Quá nhiều lần đăng nhập sai từ địa chỉ này. Hãy thử lại sau ít phút.",
                         "Too many failed sign-ins from this address. Try again in a few"
                         " minutes."),
    "role.operator": ("Vận hành", "Operator"),
    "role.auditor": ("Kiểm toán", "Auditor"),
    "role.admin": ("Quản trị", "Administrator"),
    "filter": ("Lọc", "Filter"),
    "clear": ("Bỏ lọc", "Clear"),
    "reason": ("Lý do", "Reason"),
    "sender": ("Nơi gửi", "Sender"),
    "recipient": ("Nơi nhận", "Recipient"),
    "older_than": ("Cũ hơn", "Older than"),
    "older_than.hint": ("vd. 30m, 2h, 1d", "e.g. 30m, 2h, 1d"),
    "any": ("(tất cả)", "(any)"),
    "first_failure": ("Lỗi lần đầu", "First failure"),
    "attempts": ("Số lần thử", "Attempts"),
    "size": ("Kích thước", "Size"),
    "age": ("Tuổi", "Age"),
    "id": ("Mã", "Id"),
    "count": ("Số lượng", "Count"),
    "dlq.title": ("Thư lỗi (hàng đợi thư chết)", "Dead letters"),
    "dlq.by_reason": ("Theo lý do", "By reason"),
    "dlq.none": ("Không có thư lỗi nào khớp bộ lọc.", "No dead letter matches the filter."),
    "dlq.total": ("thư lỗi", "dead letter(s)"),
    "dlq.matching": ("khớp bộ lọc", "match the filter"),
    "dlq.bulk": ("Gửi lại tất cả thư khớp bộ lọc", "Replay every dead letter matching the filter"),
    "dlq.gone": ("Thư lỗi này không còn trong hàng đợi (đã được gửi lại hoặc hủy).",
                 "This dead letter is no longer in the queue (replayed or discarded)."),
    "letter.title": ("Thư lỗi", "Dead letter"),
    "letter.reason_vi": ("Lý do (tiếng Việt)", "Reason (Vietnamese)"),
    "letter.reason_en": ("Lý do (tiếng Anh)", "Reason (English)"),
    "letter.action": ("Việc cần làm", "What to do"),
    "letter.detail": ("Chi tiết", "Detail"),
    "letter.was_going": ("Đang được chuyển tới", "Was going to"),
    "letter.report": ("Báo cáo kiểm tra", "Validation report"),
    "letter.no_report": ("Không có báo cáo kiểm tra (gói tin không đọc được hoặc chưa được kiểm "
                         "tra).", "No validation report (the packet could not be read or was not "
                         "checked)."),
    "letter.header": ("Thông tin văn bản", "Document header"),
    "letter.attachments": ("Tệp đính kèm", "Attachments"),
    "letter.unreadable": ("Không đọc được gói tin", "The packet cannot be read"),
    "letter.download": ("Tải các byte gốc", "Download the exact bytes"),
    "letter.timeline": ("Xem dòng thời gian trong sổ cái", "See its ledger timeline"),
    "check": ("Kiểm tra", "Check"),
    "indication": ("Kết luận", "Indication"),
    "evidence": ("Bằng chứng", "Evidence"),
    "signer": ("Người ký", "Signer"),
    "subject": ("Trích yếu", "Subject"),
    "code": ("Số, ký hiệu", "Number/symbol"),
    "document_id": ("Mã văn bản (DocumentId)", "DocumentId"),
    "doc_type": ("Loại văn bản", "Document type"),
    "promulgation": ("Nơi, ngày ban hành", "Place, date"),
    "signer_info": ("Người ký văn bản", "Signed by"),
    "attachment.name": ("Tên tệp", "File name"),
    "attachment.type": ("Kiểu", "Type"),
    "note": ("Ghi chú (bắt buộc)", "Note (required)"),
    "note.required": ("Cần ghi chú lý do.", "A note saying why is required."),
    "replay": ("Gửi lại", "Replay"),
    "discard": ("Hủy", "Discard"),
    "confirm.replay": ("Xác nhận gửi lại", "Confirm the replay"),
    "confirm.discard": ("Xác nhận hủy", "Confirm the discard"),
    "confirm.bulk": ("Xác nhận gửi lại hàng loạt", "Confirm the bulk replay"),
    "confirm.intro_replay_intake": (
        "Thư được gửi trở lại hàng đợi tiếp nhận, nơi nó bị từ chối: được kiểm tra lại toàn bộ "
        "như khi nơi gửi gửi nó, rồi chuyển đi nếu hợp lệ. Thao tác được ghi vào sổ cái với tên "
        "của bạn.",
        "It goes back to the intake, where it was refused: through full validation again, as "
        "its publisher sent it, and delivered if valid. Recorded in the ledger under your name."),
    "confirm.intro_replay_queue": (
        "Thư được gửi nguyên vẹn trở lại hàng đợi mà nó bị chuyển ra, không kiểm tra lại; hệ "
        "thống của đơn vị bỏ qua bản đã có. Thao tác được ghi vào sổ cái với tên của bạn.",
        "It goes back, untouched, to the queue it came from, without validation again; the "
        "organization's system drops a copy it already has. Recorded in the ledger under your "
        "name."),
    "confirm.no_way_back": ("Không gửi lại được thư này: không xác định được nơi nó đến từ. Thư "
                            "vẫn nằm trong hàng đợi lỗi.",
                            "This letter cannot be replayed: where it came from cannot be "
                            "established. It stays in the dead-letter queue."),
    "letter.goes_to": ("Gửi lại tới", "A replay sends it to"),
    "confirm.intro_discard": ("Thư sẽ bị xóa khỏi hàng đợi vĩnh viễn. Thao tác được ghi vào sổ "
                              "cái với tên của bạn.",
                              "It is removed from the queue for good. Recorded in the ledger "
                              "under your name."),
    "confirm.bulk_intro": ("Các thư lỗi sau sẽ được gửi trở lại nơi chúng đến từ:",
                           "These dead letters go back where they came from:"),
    "confirm.bulk_ways": (
        "Thư bị từ chối tại hàng đợi tiếp nhận được kiểm tra lại toàn bộ; thư đã chuyển mà hệ "
        "thống của đơn vị từ chối được gửi nguyên vẹn trở lại hàng đợi của đơn vị; thư không "
        "xác định được nơi đến từ vẫn nằm lại trong hàng đợi lỗi. Thao tác được ghi vào sổ cái "
        "với tên của bạn.",
        "What the intake refused goes through full validation again; a delivery an "
        "organization's system rejected goes back, untouched, to that organization's queue; a "
        "letter whose way back cannot be established stays in the dead-letter queue. Recorded "
        "in the ledger under your name."),
    "cancel": ("Quay lại", "Back"),
    "done.replayed": ("Đã gửi lại", "Replayed"),
    "done.returned_to": ("Gửi trở lại", "Sent back to"),
    "done.validated_again": ("tiếp nhận: kiểm tra lại toàn bộ", "the intake: full validation again"),
    "done.untouched": ("nguyên vẹn", "untouched"),
    "done.none": ("Không gửi lại thư nào.", "Nothing was replayed."),
    "done.left": ("Vẫn nằm trong hàng đợi lỗi (không xác định được nơi đến từ)",
                  "Left in the dead-letter queue (no way back)"),
    "done.discarded": ("Đã hủy", "Discarded"),
    "job.title": ("Gửi lại hàng loạt", "Bulk replay"),
    "job.progress": ("Tiến độ", "Progress"),
    "job.done": ("Xong", "Done"),
    "job.running": ("Đang chạy…", "Running…"),
    "job.failed": ("Lỗi", "Failed"),
    "job.partly": ("Xong một phần", "Partly done"),
    "job.none": ("Không gửi lại thư nào", "Nothing replayed"),
    "job.to_intake": ("kiểm tra lại tại hàng đợi tiếp nhận", "judged again at the intake"),
    "job.to_queue": ("gửi nguyên vẹn trở lại hàng đợi của đơn vị",
                     "sent back untouched to their queue"),
    "ledger.title": ("Sổ cái", "Ledger"),
    "ledger.search": ("Tìm văn bản", "Search documents"),
    "ledger.since": ("Từ ngày", "From"),
    "ledger.until": ("Đến trước ngày", "Until (exclusive)"),
    "ledger.outcome": ("Kết quả", "Outcome"),
    "ledger.received": ("Thời điểm nhận", "Received"),
    "ledger.kind": ("Loại", "Kind"),
    "ledger.none": ("Không tìm thấy văn bản nào.", "No document found."),
    "ledger.more": ("Trang sau", "Next page"),
    "ledger.chain": ("Chuỗi băm", "Hash chain"),
    "ledger.chain_ok": ("Nguyên vẹn", "Intact"),
    "ledger.chain_bad": ("HỎNG", "BROKEN"),
    "ledger.chain_unknown": ("Chưa kiểm tra", "Not checked yet"),
    "ledger.chain_running": ("Đang kiểm tra…", "Checking…"),
    "ledger.verify_now": ("Kiểm tra lại chuỗi", "Check the chain now"),
    "ledger.checked_at": ("kiểm tra lúc", "checked at"),
    "ledger.rows": ("dòng", "rows"),
    "ledger.checkpoint": ("Điểm kiểm soát có chữ ký gần nhất", "Last signed checkpoint"),
    "ledger.no_checkpoint": ("Chưa có điểm kiểm soát", "No checkpoint yet"),
    "ledger.unsigned": ("không có chữ ký", "unsigned"),
    "ledger.behind": ("dòng chưa được bao phủ", "rows not covered yet"),
    "ledger.signers_untrusted": ("chữ ký chưa đối chiếu với gốc tin cậy của đơn vị vận hành",
                                 "signers not checked against the operator's trust anchors"),
    "outcome.accepted": ("Đã nhận", "Accepted"),
    "outcome.refused": ("Bị từ chối", "Refused"),
    "outcome.status": ("Gói trạng thái", "Status packet"),
    "outcome.receipt": ("Biên nhận", "Receipt"),
    "outcome.envelope": ("Đã nhận", "Accepted"),
    "doc.title": ("Văn bản", "Document"),
    "doc.timeline": ("Dòng thời gian", "Timeline"),
    "doc.evidence": ("Tải gói bằng chứng", "Download the evidence bundle"),
    "doc.records": ("Bản ghi", "Records"),
    "doc.packets": ("Biên nhận và trạng thái", "Receipts and statuses"),
    "doc.verifies": ("Xác minh", "Verifies"),
    "doc.valid": ("hợp lệ", "valid"),
    "doc.invalid": ("KHÔNG hợp lệ", "NOT valid"),
    "doc.delivered_to": ("Đã chuyển tới", "Delivered to"),
    "doc.unknown": ("Không có văn bản này trong sổ cái.", "No such document in the ledger."),
    "event.at": ("Thời điểm", "At"),
    "event.kind": ("Sự kiện", "Event"),
    "event.organ": ("Đơn vị", "Organization"),
    "event.actor": ("Người/hệ thống", "Actor"),
    "event.detail": ("Chi tiết", "Detail"),
    "kind.received": ("Đã nhận gói tin", "Received"),
    "kind.validated": ("Đã kiểm tra hợp lệ", "Validated"),
    "kind.rejected": ("Bị từ chối", "Rejected"),
    "kind.routed": ("Đã định tuyến", "Routed"),
    "kind.delivered": ("Đã chuyển", "Delivered"),
    "kind.receipt_issued": ("Đã gửi biên nhận", "Receipt issued"),
    "kind.status_received": ("Nhận trạng thái", "Status received"),
    "kind.recalled": ("Thu hồi", "Recalled"),
    "kind.dead_lettered": ("Vào hàng đợi lỗi", "Dead-lettered"),
    "kind.replayed": ("Gửi lại", "Replayed"),
    "kind.discarded": ("Đã hủy", "Discarded"),
    "kind.duplicate": ("Trùng lặp", "Duplicate"),
    "kind.retry_scheduled": ("Hẹn thử lại", "Retry scheduled"),
    "kind.axis_sent": ("Đã gửi lên trục liên thông", "Sent to the national axis"),
    "kind.axis_skipped": ("Không gửi lên trục (không cần)", "Not sent to the axis (not needed)"),
    "kind.axis_received": ("Nhận từ trục liên thông", "Received from the national axis"),
    "kind.axis_acknowledged": ("Đã báo nhận cho trục liên thông",
                               "Acknowledged to the national axis"),
    "kind.operator_action": ("Thao tác của người dùng", "Operator action"),
    "report.title": ("Báo cáo sử dụng chữ ký số", "Signature adoption report"),
    "report.period": ("Kỳ", "Period"),
    "report.period.day": ("Ngày", "Day"),
    "report.period.month": ("Tháng", "Month"),
    "report.period.year": ("Năm", "Year"),
    "report.csv": ("Tải CSV", "Download CSV"),
    "report.organization": ("Đơn vị", "Organization"),
    "report.sent": ("Gửi", "Sent"),
    "report.accepted": ("Nhận", "Accepted"),
    "report.refused": ("Từ chối", "Refused"),
    "report.valid": ("Ký hợp lệ", "Valid signatures"),
    "report.pdf_both": ("PDF đủ 2 chữ ký", "PDF: both signatures"),
    "report.by_class": ("Từ chối theo nhóm", "Refused by class"),
    "report.none": ("Không có dữ liệu trong khoảng thời gian này.", "No data for this period."),
    "report.computing": ("Đang tính báo cáo…", "Computing the report…"),
    "health.title": ("Tình trạng hệ thống", "Health"),
    "health.freshness": ("Độ mới yêu cầu", "Required freshness"),
    "health.crls": ("Danh sách thu hồi (CRL)", "Revocation lists (CRL)"),
    "health.ca": ("Tổ chức cấp chứng thư", "Certification authority"),
    "health.issued": ("Phát hành", "Issued"),
    "health.next": ("Cập nhật tiếp theo", "Next update"),
    "health.fresh": ("Còn hiệu lực", "Fresh"),
    "health.stale": ("QUÁ HẠN", "STALE"),
    "health.missing": ("THIẾU", "MISSING"),
    "health.certs": ("Hạn chứng thư số", "Certificate expiry"),
    "health.cert_kind": ("Loại", "Kind"),
    "health.cert_subject": ("Chủ thể", "Subject"),
    "health.expires": ("Hết hạn", "Expires"),
    "health.days_left": ("Còn (ngày)", "Days left"),
    "health.anchor": ("Gốc tin cậy", "Trust anchor"),
    "health.intermediate": ("CA trung gian", "Issuing CA"),
    "health.operator": ("Đơn vị vận hành hub", "Hub operator"),
    "health.hosted": ("Đơn vị được lưu khóa", "Hosted organization"),
    "health.queues": ("Hàng đợi", "Queues"),
    "health.queue": ("Hàng đợi", "Queue"),
    "health.waiting": ("Đang chờ", "Waiting"),
    "health.consumers": ("Kết nối tiêu thụ", "Consumers"),
    "health.intake": ("Tiếp nhận", "Intake"),
    "health.axis": ("Trục liên thông quốc gia", "National axis"),
    "health.dlq": ("Thư lỗi", "Dead letters"),
    "health.broker_down": ("Không kết nối được RabbitMQ", "RabbitMQ cannot be reached"),
    "health.agencies": ("Hộp thư của các đơn vị", "Agency inboxes"),
    "users.title": ("Người dùng bảng điều khiển", "Console users"),
    "users.name": ("Tên đăng nhập", "Login"),
    "users.full_name": ("Họ tên", "Full name"),
    "users.role": ("Vai trò", "Role"),
    "users.active": ("Hoạt động", "Active"),
    "users.add": ("Thêm người dùng", "Add a user"),
    "users.disable": ("Khóa", "Disable"),
    "users.enable": ("Mở khóa", "Enable"),
    "users.password": ("Mật khẩu ban đầu (≥ 10 ký tự)", "Initial password (≥ 10 characters)"),
    "yes": ("có", "yes"),
    "no": ("không", "no"),
    "error.title": ("Không thực hiện được", "Not done"),
    "error.forbidden": ("Vai trò của bạn không được phép làm việc này.",
                        "Your role does not allow this."),
    "error.csrf": ("Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang rồi thử lại.",
                   "The form expired or is not valid. Reload the page and try again."),
    "error.not_found": ("Không tìm thấy.", "Not found."),
    "error.unavailable": ("Dịch vụ tạm thời không sẵn sàng", "A service is unavailable"),
    "error.bad_input": ("Dữ liệu nhập không hợp lệ", "Bad input"),
    "error.control_chars": ("Dữ liệu nhập chứa ký tự điều khiển", "The input holds a control "
                            "character"),
    "error.method": ("Trang này không nhận yêu cầu kiểu này.",
                     "This page does not take this kind of request."),
    "error.replay_refused": ("Không gửi lại được: thư không xác định được nơi đến từ, vẫn nằm "
                             "trong hàng đợi lỗi.", "Not replayed: the letter has no way back and "
                             "stays in the dead-letter queue."),
    "report.gone": ("Số liệu của báo cáo đã thay đổi từ khi trang được hiển thị: hãy tải lại "
                    "trang báo cáo.", "The report's figures changed since the page was shown: "
                    "reload the report page."),
    "user.bad_name": ("{name} không phải tên đăng nhập dùng được: 1 đến 64 ký tự a-z, 0-9, '.', "
                      "'-', '_', '@'", "{name} is not a usable login name: 1 to 64 characters "
                      "of a-z, 0-9, '.', '-', '_', '@'"),
    "user.short_password": ("Mật khẩu cần ít nhất {n} ký tự",
                            "a password needs at least {n} characters"),
    "user.long_password": ("Mật khẩu có nhiều nhất {n} ký tự",
                           "a password has at most {n} characters"),
    "user.exists": ("Đã có tài khoản {name}", "there is already an account {name}"),
    "user.unknown": ("Không có tài khoản {name}", "no account {name}"),
    "user.bad_role": ("{role} không phải là vai trò: operator, auditor hoặc admin",
                      "{role} is not a role: operator, auditor or admin"),
    "user.self_disable": ("Quản trị viên không thể tự khóa tài khoản của chính mình",
                          "an administrator cannot disable themself"),
    "signed_in_as": ("Đăng nhập:", "Signed in:"),
    "back": ("Quay lại", "Back"),
}


ACTIONS_VI: dict[str, str] = {
    "A bug or a database constraint: the packet's deliveries went out but its ledger rows were "
    "refused; the hub recorded this refusal and went on. Fix the cause, then replay.":
        "Lỗi phần mềm hoặc ràng buộc cơ sở dữ liệu: gói tin đã được chuyển đi nhưng sổ cái từ "
        "chối ghi; hub đã ghi lại việc từ chối này và tiếp tục. Khắc phục nguyên nhân rồi gửi "
        "lại.",
    "Add the certificate's uid or fingerprint as an organization signer in the directory.":
        "Thêm uid hoặc dấu vân tay của chứng thư vào danh bạ như một người ký của đơn vị.",
    "Check RabbitMQ; the hub reconnects by itself.":
        "Kiểm tra RabbitMQ; hub tự kết nối lại.",
    "Check the clocks of the sender and of the hub.":
        "Kiểm tra đồng hồ của nơi gửi và của hub.",
    "Check the database; the hub stops acknowledging until it is back.":
        "Kiểm tra cơ sở dữ liệu; hub ngừng xác nhận thư cho tới khi cơ sở dữ liệu hoạt động "
        "trở lại.",
    "Check the organization directory; replay once it is corrected.":
        "Kiểm tra danh bạ đơn vị; gửi lại khi danh bạ đã được sửa.",
    "Check the system's entry with `hub api credentials ls`; rotate its secret if it was lost.":
        "Kiểm tra mục của hệ thống bằng `hub api credentials ls`; đổi khóa bí mật nếu đã bị "
        "mất.",
    "Documents wait in the gateway queue and the connector retries with backoff (circuit "
    "breaker); check the axis endpoint and the connector's credentials. A letter the axis kept "
    "failing while it answered other calls is parked in the dead-letter queue under this reason "
    "after its attempts (the sender is not told): replay it once the axis takes it.":
        "Văn bản chờ trong hàng đợi cổng trục và bộ kết nối tự thử lại với thời gian giãn dần "
        "(ngắt mạch); kiểm tra địa chỉ trục và thông tin xác thực của bộ kết nối. Thư mà trục "
        "liên tục từ chối trong khi vẫn trả lời các yêu cầu khác được chuyển vào hàng đợi lỗi "
        "với lý do này sau các lần thử (nơi gửi không được báo): gửi lại khi trục nhận.",
    "File a bug with the ledger row and the log event; replay once fixed (after the last attempt "
    "it is parked as DELIVERY_LIMIT_EXCEEDED; the sender is not told).":
        "Báo lỗi kèm dòng sổ cái và sự kiện nhật ký; gửi lại khi đã sửa (sau lần thử cuối thư "
        "được chuyển vào hàng đợi lỗi với lý do DELIVERY_LIMIT_EXCEEDED; nơi gửi không được "
        "báo).",
    "Fix the cause shown in the first-failure reason, then replay.":
        "Khắc phục nguyên nhân ghi ở lý do lỗi lần đầu rồi gửi lại.",
    "None on the hub (its CRLs or OCSP say so): the agency needs a new certificate for its "
    "system, listed as an organization signer in the directory.":
        "Không cần làm gì trên hub (CRL hoặc OCSP đã xác nhận): đơn vị cần chứng thư mới cho hệ "
        "thống của mình, được khai báo là người ký của đơn vị trong danh bạ.",
    "None, or add the organization's key to the keystore if the hub is to sign for it.":
        "Không cần, hoặc thêm khóa của đơn vị vào kho khóa nếu hub ký thay cho đơn vị.",
    "None.": "Không cần làm gì.",
    "Possible attack (the limits are far above any real document): review the sender's system.":
        "Có thể là tấn công (giới hạn cao hơn nhiều so với mọi văn bản thật): rà soát hệ thống "
        "của nơi gửi.",
    "Possible attack: keep the evidence and review the sender's system.":
        "Có thể là tấn công: giữ bằng chứng và rà soát hệ thống của nơi gửi.",
    "Possible attack: review the sender's system.":
        "Có thể là tấn công: rà soát hệ thống của nơi gửi.",
    "Possible impersonation: review broker accounts.":
        "Có thể bị mạo danh: rà soát các tài khoản RabbitMQ.",
    "Possible tampering in transit: keep the evidence.":
        "Có thể bị sửa đổi trên đường truyền: giữ bằng chứng.",
    "Possible tampering in transit: keep the evidence; tell the sender to send only the signed "
    "document.":
        "Có thể bị sửa đổi trên đường truyền: giữ bằng chứng; đề nghị nơi gửi chỉ gửi văn bản "
        "đã ký.",
    "Raise limits.max_attachment_bytes only if the document is legitimate.":
        "Chỉ tăng limits.max_attachment_bytes nếu văn bản là hợp lệ.",
    "Raise limits.max_envelope_bytes only if the document is legitimate.":
        "Chỉ tăng limits.max_envelope_bytes nếu văn bản là hợp lệ.",
    "Refresh the CRLs ([trust] crls, fetch_crls; hub doctor names every CA without fresh data); "
    "requests are accepted again by themselves.":
        "Cập nhật CRL ([trust] crls, fetch_crls; hub doctor nêu mọi CA thiếu dữ liệu mới); các "
        "yêu cầu tự được nhận lại.",
    "Refresh the CRLs (hub doctor names every CA without fresh data); deliveries resume by "
    "themselves. After the last attempt the delivery is parked in the dead-letter queue under "
    "this reason and the sender is not told: replay it once revocation data is back.":
        "Cập nhật CRL (hub doctor nêu mọi CA thiếu dữ liệu mới); việc chuyển thư tự tiếp tục. "
        "Sau lần thử cuối, thư được chuyển vào hàng đợi lỗi với lý do này và nơi gửi không được "
        "báo: gửi lại khi đã có dữ liệu thu hồi.",
    "Tell the agency to check its request against the API description (docs/API.md).":
        "Đề nghị đơn vị đối chiếu yêu cầu của mình với mô tả API (docs/API.md).",
    "Tell the agency to configure its system's certificate or credentials.":
        "Đề nghị đơn vị cấu hình chứng thư hoặc thông tin xác thực cho hệ thống của mình.",
    "Tell the agency to use a certificate issued for TLS client authentication; put its issuing "
    "CA and root in [api] tls_client_ca.":
        "Đề nghị đơn vị dùng chứng thư cấp cho xác thực máy khách TLS; đưa CA cấp và CA gốc của "
        "chứng thư vào [api] tls_client_ca.",
    "Tell the sender to sign with its specialized (Ban Cơ yếu) certificate.":
        "Đề nghị nơi gửi ký bằng chứng thư số chuyên dùng (Ban Cơ yếu Chính phủ).",
    "Tell the sender to use the channel for classified documents.":
        "Đề nghị nơi gửi dùng kênh dành cho văn bản mật.",
    "Tell the sending agency to fix and resend; nothing to do on the hub.":
        "Đề nghị đơn vị gửi sửa rồi gửi lại; không cần làm gì trên hub.",
    "The agency exceeded its request rate ([api] rate_per_s / rate_burst), its waiting requests "
    "(waits_per_org), or failed sign-ins from its address or system id (signin_failure_burst), "
    "or secret checks were at their cap (signin_concurrency): raise a limit only if the traffic "
    "is legitimate; the answer's Retry-After says when to try again.":
        "Đơn vị vượt tốc độ yêu cầu ([api] rate_per_s / rate_burst), số yêu cầu chờ "
        "(waits_per_org), hoặc số lần đăng nhập sai từ địa chỉ hay mã hệ thống của mình "
        "(signin_failure_burst), hoặc việc kiểm tra khóa bí mật đã ở mức tối đa "
        "(signin_concurrency): chỉ tăng giới hạn nếu lưu lượng là hợp lệ; Retry-After trong câu "
        "trả lời cho biết khi nào thử lại.",
    "The axis' own code and text are in the detail (e.g. a recipient not registered on the axis): "
    "fix the directory or tell the sender; the sender got a signed refusal.":
        "Mã và nội dung lỗi của trục nằm trong phần chi tiết (ví dụ nơi nhận chưa đăng ký trên "
        "trục): sửa danh bạ hoặc báo nơi gửi; nơi gửi đã nhận thông báo từ chối có chữ ký.",
    "hub dlq replay sends it back to the queue it came from (an intake letter is judged again, "
    "as its publisher); otherwise discard it with a note.":
        "Gửi lại (hoặc hub dlq replay) đưa thư trở lại hàng đợi nó đến từ (thư của hàng đợi tiếp "
        "nhận được kiểm tra lại như khi nơi gửi gửi); nếu không, hủy thư kèm ghi chú.",
    "Unknown reason code: look at the headers.":
        "Mã lý do không xác định: xem các trường tiêu đề của thư.",
}
"""The catalogue's operator actions (:attr:`hub.reasons.ReasonInfo.action`, English) and the
dead-letter tool's own, in Vietnamese."""


def action_text(action: str, lang: str) -> str:
    """An operator action in ``lang`` (the English text when no translation is known)."""
    return ACTIONS_VI.get(action, action) if lang == "vi" else action


def translator(lang: str) -> Callable[[str], str]:
    """``t(key)`` in ``lang`` (the key itself when a text is missing: visible, not fatal)."""
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        pair = TEXTS.get(key)
        return pair[index] if pair else key

    return t

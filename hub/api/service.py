"""The operations, with the axis' semantics, behind the HTTP layer (no HTTP in here).

Every operation takes an authenticated :class:`~hub.api.auth.Caller`. What each one may touch:

* **send** publishes the exact request bytes to the inbound exchange, as the AMQP client does,
  under the API's broker login with the caller's broker account in ``x-hub-original-user``:
  the plan binds *that* account to ``From`` (``hub.consumers.plan.effective_user``). The API
  judges nothing; it may wait for the intake's verdict in the ledger.
* **list / fetch / acknowledge** read the caller's own mailbox (its two queues) and, for a
  document it already acknowledged, the ledger — only documents delivered to it or sent by it.
* **status** signs a QCVN 102 status packet as the caller (when the hub's keystore holds its
  key) and sends it like any other packet; the document is settled once the status is
  confirmed by the broker. The same update asked again (a client's retry) is answered with the
  packet signed the first time, never a second one (:meth:`ApiContext.update_status`).
* **sent / evidence** read the ledger for documents the caller sent.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from hub.api.auth import ApiError, Caller, CertificateMap, RateLimiter
from hub.api.bridge import BrokerBridge, Held, Mailbox
from hub.api.credentials import CredentialStore
from hub.api.models import (
    Agency,
    Receipt,
    ReceivedItem,
    SentItem,
    TimelineEvent,
)
from hub.consumers.plan import message_id_for
from hub.directory import Directory, OrgEntry
from hub.edxml import EnvelopeRefused, Limits, parse_packet
from hub.edxml.build import build_status, response_for
from hub.edxml.model import BusinessDocType, Envelope, Organization, StaffInfo, StatusPacket
from hub.edxml.orgcode import OrgCode, OrgCodeFormat
from hub.errors import TransientError
from hub.ledger import EventKind, Ledger, StoredDocument, StoredEvent
from hub.messages import Headers, Outgoing
from hub.reasons import Reason
from hub.topology import ENVELOPE_KEY, STATUS_KEY, Names, last_day
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml

__all__ = ["STATUS_WORDS", "ApiContext", "Verdict"]

STATUS_WORDS: dict[str, str | None] = {
    "inbox": "01", "rejection": "02", "acceptance": "03", "assignment": "04",
    "processing": "05", "done": "06", "fail": None,
}
"""The axis' status words → QCVN 102:2016 status codes (DOMAIN §3, §6). ``fail`` has no QCVN
code: an agency reports a document it cannot handle as a rejection (02) with a description."""

_KINDS = {BusinessDocType.NEW: "edoc", BusinessDocType.REVOCATION: "revocation",
          BusinessDocType.UPDATE: "update", BusinessDocType.REPLACEMENT: "replacement"}


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str
    """accepted, duplicate, refused or pending."""
    reason: Reason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a status update reports, as its packet reads back (QCVN 102:2016 ``Status``): the
    fields that make two updates the same one. ``Timestamp`` is not among them — the hub
    stamps it — nor is the signature."""

    code: str
    description: str
    staff: StaffInfo | None

    @classmethod
    def of(cls, packet: StatusPacket) -> _Asked:
        return cls(packet.status_code, packet.description, packet.staff_info)


@dataclass(frozen=True, slots=True)
class _Reported:
    """A status packet the caller sent about a document: the latest one, for a retry."""

    asked: _Asked
    packet: bytes
    digest: str
    taken: bool
    """The intake took it in (the ledger holds it): nothing is published again."""


_REMEMBERED = 4096
"""Status packets the API remembers having signed (the latest per organization and document),
for retries that come before the intake has recorded the first one; older ones are found in
the ledger."""

_STRIPES = 64
"""Locks over (organization, document): two identical updates at once get one packet."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ledger_down(exc: TransientError) -> ApiError:
    return ApiError(exc.reason, 503, "the delivery ledger is unavailable; try again")


@dataclass
class ApiContext:
    """Every long-lived object of the API, built once (``hub.api.app.build_context``)."""

    directory: Directory
    keystore: Keystore
    ledger: Ledger
    bridge: BrokerBridge
    credentials: CredentialStore
    certificates: CertificateMap
    limiter: RateLimiter
    names: Names
    limits: Limits
    api_user: str
    operator: str
    max_body_bytes: int
    verdict_wait_s: float
    max_wait_s: float
    sign_statuses: bool
    require_client_cert: bool
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _signed: OrderedDict[tuple[str, str], _Reported] = field(
        default_factory=OrderedDict, init=False, repr=False)
    """(organization, docId) → the status packet this process last signed or sent for it."""
    _signed_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stripes: tuple[threading.Lock, ...] = field(
        default_factory=lambda: tuple(threading.Lock() for _ in range(_STRIPES)), init=False,
        repr=False)

    # -- send -----------------------------------------------------------------------------------
    def send(self, caller: Caller, body: bytes, message_type: str, sender: str | None,
             wait: float) -> tuple[str, str, Verdict]:
        """Publish ``body`` for ``caller``; returns (docId, messageId, verdict)."""
        wait = min(wait, self.max_wait_s)
        if sender is not None and self._entry(caller).codes.count(sender) == 0:
            raise ApiError(Reason.SENDER_ACCOUNT_MISMATCH, 403,
                           f"from={sender} is not the calling organization {caller.organization}")
        digest = hashlib.sha256(body).hexdigest()
        mid = message_id_for(body)
        start = self._head() if wait > 0 else None
        self._publish(caller, body, status=message_type == "status", message_id=mid)
        if start is None:
            return digest, mid, Verdict("pending")
        return digest, mid, self.verdict(digest, start, wait)

    def _publish(self, caller: Caller, body: bytes, *, status: bool, message_id: str) -> None:
        message = Outgoing(self.names.inbound, STATUS_KEY if status else ENVELOPE_KEY, body,
                           {Headers.ORIGINAL_USER: caller.broker_user}, message_id=message_id,
                           user_id=self.api_user)
        try:
            self.bridge.publish((message,)).result(timeout=60)
        except TransientError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "the broker did not take the packet; "
                           "send it again (the same bytes are recognised)") from exc
        except TimeoutError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "no confirm from the broker") from exc

    def _head(self) -> int | None:
        try:
            return self.ledger.head()[0]
        except TransientError:
            return None

    def verdict(self, digest: str, after_seq: int | None, wait: float) -> Verdict:
        """The intake's verdict on ``digest`` from ledger events after ``after_seq``, waiting up
        to ``wait`` seconds. Whole deliveries commit at once, so a RECEIVED event comes with
        its outcome; a retry scheduled means the hub is still trying."""
        if after_seq is None:
            return Verdict("pending")
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            try:
                events = [e for e in self.ledger.events(digest=digest) if e.seq > after_seq]
            except TransientError:
                events = []
            state: Verdict | None = None
            for e in events:
                if e.kind is EventKind.REJECTED:
                    reason = Reason(str(e.reason)) if e.reason in Reason.__members__ else None
                    # (an unknown code would come from a newer hub: say so, do not crash)
                    state = Verdict("refused", reason or Reason.INTERNAL_ERROR,
                                    str(e.detail.get("detail", ""))[:300])
                elif e.kind is EventKind.RETRY_SCHEDULED:
                    state = None
                elif e.kind is EventKind.DUPLICATE:
                    state = Verdict("duplicate")
                elif e.kind in (EventKind.RECEIVED, EventKind.VALIDATED):
                    state = Verdict("accepted")
            if state is not None:
                return state
            if time.monotonic() >= deadline:
                return Verdict("pending")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    # -- receive --------------------------------------------------------------------------------
    def mailbox(self, caller: Caller) -> Mailbox:
        try:
            return self.bridge.mailbox(caller.organization)
        except TransientError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "the broker is unavailable") from exc
        except TimeoutError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "the broker did not answer") from exc

    def received(self, caller: Caller, *, since: datetime | None, until: datetime | None,
                 sender: str | None, state: str | None, message_type: str | None,
                 page: int, page_size: int, wait: float) -> tuple[int, list[ReceivedItem]]:
        box = self.mailbox(caller)
        wait = min(wait, self.max_wait_s)

        def matching() -> list[Held]:
            # Filter on the cached fields; build response items for the page only.
            out: list[Held] = []
            for h in box.snapshot():
                info = self._held_info(h)
                if ((since is None or info["receivedAt"] >= since)
                        and (until is None or info["receivedAt"] < until)
                        and (sender is None or info["from"] == sender)
                        and (state is None or state == ("fetched" if h.fetched else "new"))
                        and (message_type is None or info["messageType"] == message_type)):
                    out.append(h)
            return out

        found = matching()
        deadline = time.monotonic() + wait
        while not found and time.monotonic() < deadline:
            with box.arrived:
                box.arrived.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            found = matching()
        start = (page - 1) * page_size
        return len(found), [self.describe(h) for h in found[start:start + page_size]]

    def _held_info(self, held: Held) -> dict[str, Any]:
        """The listing fields of a held message, read once from its bytes and kept."""
        if held.info is None:
            # When the hub published it (the AMQP timestamp), which survives an API restart.
            stamp = held.delivery.timestamp
            sent = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) else held.arrived
            held.info = self._info(held.delivery.body, held.delivery.headers, sent)
        return held.info

    def describe(self, held: Held) -> ReceivedItem:
        return ReceivedItem(docId=held.key, messageId=held.delivery.message_id,
                            state="fetched" if held.fetched else "new",
                            redelivered=held.delivery.redelivered, size=len(held.delivery.body),
                            **self._held_info(held))

    def _info(self, body: bytes, headers: Any, received_at: datetime) -> dict[str, Any]:
        info: dict[str, Any] = {"receivedAt": received_at, "from": "", "to": [],
                                "messageType": "unknown"}
        receipt, issuer, reason = (_header(headers, h) for h in (
            Headers.RECEIPT, Headers.ISSUER, Headers.REASON))
        if receipt:
            info.update({"messageType": "status", "receipt": receipt, "from": issuer or "",
                         "reason": reason})
        try:
            packet = parse_packet(body, self.limits)
        except EnvelopeRefused:
            return info  # (a hub receipt about bytes nobody could read names no document)
        if isinstance(packet, Envelope):
            h = packet.header
            info.update({"messageType": _KINDS.get(packet.business_kind, "edoc"),
                         "from": packet.sender.organ_id,
                         "to": [r.organ_id for r in h.recipients],
                         "documentId": packet.document_id, "code": h.code.text,
                         "subject": h.subject,
                         "promulgationDate": h.promulgation_info.promulgation_date})
        elif isinstance(packet, StatusPacket):
            info.update({"messageType": "status", "from": packet.sender.organ_id,
                         "to": [packet.response_for.organ_id],
                         "statusCode": packet.status_code,
                         "responseFor": packet.response_for.document_id or None})
        return info

    def fetch(self, caller: Caller, key: str) -> tuple[bytes, ReceivedItem, list[Receipt]]:
        """A document of the caller's: held for it, or in the ledger delivered to or sent by it."""
        box = self.mailbox(caller)
        held = box.get(key)
        if held is not None:
            held.fetched = True
            item = self.describe(held)
            return held.delivery.body, item, self._receipts(caller, key, item.from_)
        stored = self._stored_for(caller, key)
        raw = self._ledger(lambda: self.ledger.raw(key))
        if raw is None:
            raise ApiError(Reason.API_DOCUMENT_NOT_FOUND, 404, f"docId {key}")
        info = self._info(raw, {}, stored.received_at)
        item = ReceivedItem(docId=key, messageId=None, state="fetched", redelivered=False,
                            size=len(raw), **info)
        return raw, item, self._receipts(caller, key, stored.sender)

    def _stored_for(self, caller: Caller, key: str) -> StoredDocument:
        stored: StoredDocument | None = self._ledger(lambda: self.ledger.document_by_digest(key))
        # Another organization's document is "not found": the answer says nothing about
        # whether it exists.
        codes = self._codes(caller)
        if stored is None or (codes.isdisjoint(stored.recipients) and stored.sender not in codes):
            raise ApiError(Reason.API_DOCUMENT_NOT_FOUND, 404, f"docId {key}")
        return stored

    def _ledger(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except TransientError as exc:
            raise _ledger_down(exc) from exc

    def _receipts(self, caller: Caller, digest: str, sender: str) -> list[Receipt]:
        """The hub's receipts about ``digest`` the caller may see: those addressed to it; for a
        recipient also the hub operator's and its own addressed to the sender.

        Never another organization's: a recipient that publishes the bytes it received again is
        refused, and that signed ``02`` is linked to the same digest but addressed to the
        recipient — it is not the sender's evidence, nor other recipients' business."""
        codes = self._codes(caller)
        docs: list[StoredDocument] = self._ledger(
            lambda: self.ledger.documents(links_to=digest, kind="receipt"))
        issuers = codes | {self.operator}
        return self._packets(d for d in docs if not codes.isdisjoint(d.recipients) or (
            sender not in codes and d.sender in issuers and sender in d.recipients))

    def _packets(self, docs: Iterable[StoredDocument]) -> list[Receipt]:
        out: list[Receipt] = []
        for d in docs:
            raw: bytes | None = self._ledger(partial(self.ledger.raw, d.digest))
            if raw is None:
                continue
            kind = d.code if d.kind == "receipt" else "status"
            out.append(Receipt(docId=d.digest, kind=kind, issuer=d.sender,
                               statusCode=d.code if d.kind == "status" else "",
                               receivedAt=d.received_at, content=_b64(raw)))
        return out

    def acknowledge(self, caller: Caller, keys: list[str]) -> tuple[list[str], list[str]]:
        box = self.mailbox(caller)
        held: list[Held] = []
        already: list[str] = []
        for key in dict.fromkeys(keys):
            h = box.get(key)
            if h is not None:
                held.append(h)
            elif key in box.acknowledged:
                already.append(key)
            else:
                raise ApiError(Reason.API_DOCUMENT_NOT_FOUND, 404,
                               f"docId {key} is not waiting for this organization")
        done = self._settle(box, held)
        # A hold another request acknowledged between our look-up and the broker thread (a
        # client's retry racing its first attempt): already acknowledged, as the contract says.
        already.extend(h.key for h in held if h.key not in done)
        return [h.key for h in held if h.key in done], already

    def _settle(self, box: Mailbox, held: list[Held]) -> set[str]:
        """``basic.ack`` ``held``; the keys this call acknowledged (the rest were already)."""
        if not held:
            return set()
        try:
            return set(self.bridge.acknowledge(box, held))
        except TransientError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "the broker is unavailable; the "
                           "documents will be offered again") from exc
        except TimeoutError as exc:
            raise ApiError(Reason.BROKER_UNAVAILABLE, 503, "the broker did not answer") from exc

    # -- status ---------------------------------------------------------------------------------
    def update_status(self, caller: Caller, key: str, status: str, description: str,
                      staff: StaffInfo | None, wait: float) -> tuple[str, str, Verdict]:
        """Sign and send a status about ``key`` as the caller.

        A retry is not a new status: when the caller's latest status about the document reports
        the same code, description and staff, the answer is that packet (same docId, same
        messageId) and no second one is signed — its ``Timestamp`` would make other bytes, which
        the intake could not recognise, and the sender would get the status twice. A packet the
        ledger holds is not published again; one still on its way is published again as it was
        (the intake recognises the bytes)."""
        code = STATUS_WORDS.get(status, status)
        if code is None:
            raise ApiError(Reason.API_REQUEST_INVALID, 422, "'fail' has no QCVN 102 status code: "
                           "report 'rejection' (02) with a description")
        raw, item, _ = self.fetch(caller, key)
        if item.messageType in ("status", "unknown"):
            raise ApiError(Reason.API_REQUEST_INVALID, 422, "a status is reported about a "
                           "document, not about a status packet")
        _xml_text("description", description)
        for name, value in (dataclasses.asdict(staff).items() if staff is not None else ()):
            _xml_text(f"staff.{name}", value)
        signer = self.keystore.signer(caller.organization) if self.sign_statuses else None
        if signer is None:
            raise ApiError(Reason.API_KEY_NOT_HELD, 409, f"post a status packet signed by "
                           f"{caller.organization} to /api/v1/edocs/{key}/status as XML")
        envelope = parse_packet(raw, self.limits)
        assert isinstance(envelope, Envelope)
        entry = self._entry(caller)
        reporter = entry.codes[0]
        draft = build_status(
            response_for=response_for(envelope), sender=Organization(reporter, entry.name),
            status_code=code, timestamp=self.clock(), description=description,
            staff_info=staff)
        asked = self._read_back(draft)
        with self._stripe(caller, key):
            latest = self._latest_status(caller, key, envelope, reporter)
            if latest is None or latest.asked != asked:
                packet = sign_xml(draft, signer)
                latest = _Reported(asked, packet, hashlib.sha256(packet).hexdigest(), False)
                self._remember(caller, key, latest)
        return self._send_status(caller, key, latest.packet, wait, taken=latest.taken)

    def send_status(self, caller: Caller, key: str, packet: bytes, wait: float
                    ) -> tuple[str, str, Verdict]:
        """Send the caller's own status packet about ``key``, then settle ``key`` if the API
        holds it. (The same bytes again are recognised by the intake.)"""
        with self._stripe(caller, key), self._signed_lock:
            # It may be the caller's latest status now: the ledger will say.
            self._signed.pop((caller.organization, key), None)
        return self._send_status(caller, key, packet, wait)

    def _send_status(self, caller: Caller, key: str, packet: bytes, wait: float, *,
                     taken: bool = False) -> tuple[str, str, Verdict]:
        box = self.mailbox(caller)
        held = box.get(key)
        if held is None:
            self._stored_for(caller, key)  # a document of the caller's, or 404
        if taken:
            # The intake took this very packet in: the first attempt's answer, nothing published.
            digest, mid = hashlib.sha256(packet).hexdigest(), message_id_for(packet)
            verdict = Verdict("accepted")
        else:
            digest, mid, verdict = self.send(caller, packet, "status", None, wait)
        if held is not None and box.get(key) is held:
            self._settle(box, [held])
        return digest, mid, verdict

    def _read_back(self, draft: bytes) -> _Asked:
        """What the status packet the hub would sign reports, as the intake will read it."""
        try:
            packet = parse_packet(draft, self.limits)
        except EnvelopeRefused as exc:
            raise ApiError(exc.reason, 422, exc.detail) from None
        assert isinstance(packet, StatusPacket)
        return _Asked.of(packet)

    def _stripe(self, caller: Caller, key: str) -> threading.Lock:
        return self._stripes[hash((caller.organization, key)) % len(self._stripes)]

    def _remember(self, caller: Caller, key: str, reported: _Reported) -> None:
        with self._signed_lock:
            self._signed[(caller.organization, key)] = reported
            self._signed.move_to_end((caller.organization, key))
            while len(self._signed) > _REMEMBERED:
                self._signed.popitem(last=False)

    def _latest_status(self, caller: Caller, key: str, envelope: Envelope, reporter: str
                       ) -> _Reported | None:
        """The caller's latest status about ``envelope``: the one this process last signed
        while the intake has not recorded it, else the last the ledger holds from ``reporter``
        about the document (found as the intake finds it: by its sender and DocumentId)."""
        with self._signed_lock:
            mine = self._signed.get((caller.organization, key))
        about = response_for(envelope)
        original: StoredDocument | None = self._ledger(
            lambda: self.ledger.find_document(about.organ_id, about.document_id))
        stored: list[StoredDocument] = [] if original is None else self._ledger(
            lambda: self.ledger.documents(sender=reporter, kind="status",
                                          links_to=original.digest))
        if mine is not None:
            taken = [d.digest for d in stored]
            if mine.digest not in taken:
                return mine  # still on its way (or refused: the same bytes get the same answer)
            if taken[-1] == mine.digest:
                return dataclasses.replace(mine, taken=True)
        if not stored:
            return None
        last = stored[-1]
        raw: bytes | None = self._ledger(partial(self.ledger.raw, last.digest))
        try:
            packet = parse_packet(raw, self.limits) if raw is not None else None
        except EnvelopeRefused:
            packet = None  # (read under other limits when it came in: not comparable)
        if raw is None or not isinstance(packet, StatusPacket):
            return None
        return _Reported(_Asked.of(packet), raw, last.digest, True)

    # -- directory, sent, evidence --------------------------------------------------------------
    def _entry(self, caller: Caller) -> OrgEntry:
        entry = self.directory.find(caller.organization)
        assert entry is not None  # authentication found it
        return entry

    def _codes(self, caller: Caller) -> frozenset[str]:
        """Every code of the caller's organization: QCVN 102:2016 (``000.00.03.H27``) and
        Decision 20/2020/QĐ-TTg (``H27.03``). A packet may name it by either (``send`` accepts
        both as ``from``) and the ledger keeps a ``From`` or a recipient as written."""
        return frozenset(self._entry(caller).codes) | {caller.organization}

    def agencies(self, *, at: datetime | None, query: str | None, reach: str | None
                 ) -> list[Agency]:
        out: list[Agency] = []
        needle = (query or "").casefold()
        for e in self.directory.entries:
            if at is not None and not e.valid_at(at):
                continue
            if reach is not None and e.reach != reach:
                continue
            if needle and needle not in e.name.casefold() and not any(
                    needle in c.casefold() for c in e.codes):
                continue
            out.append(_agency(e))
        return out

    def sent(self, caller: Caller, *, since: datetime | None, until: datetime | None,
             limit: int) -> tuple[int, list[SentItem]]:
        """How many documents the caller sent in the period, and the first ``limit``."""
        docs: list[StoredDocument] = []
        total = 0
        for code in sorted(self._codes(caller)):
            docs += self._ledger(partial(self.ledger.documents, sender=code, kind="envelope",
                                         since=since, until=until, limit=limit))
            total += self._ledger(partial(self.ledger.count_documents, sender=code,
                                          kind="envelope", since=since, until=until))
        # (each code's first ``limit`` in ledger order hold the first ``limit`` of them all)
        docs = sorted(docs, key=lambda d: d.seq)[:limit]
        delivered = self._ledger(lambda: self.ledger.delivered_to_many(d.digest for d in docs))
        return total, [SentItem(docId=d.digest, documentId=d.document_id, code=d.code,
                                to=list(d.recipients), receivedAt=d.received_at,
                                deliveredTo=sorted(delivered.get(d.digest, ()))) for d in docs]

    def evidence(self, caller: Caller, key: str) -> tuple[StoredDocument, list[Receipt],
                                                        list[Receipt], list[TimelineEvent]]:
        codes = self._codes(caller)
        stored = self._ledger(lambda: self.ledger.document_by_digest(key))
        if stored is None or stored.sender not in codes:
            raise ApiError(Reason.API_DOCUMENT_NOT_FOUND, 404, f"no document {key} sent by "
                           f"{caller.organization}")
        receipts = self._receipts(caller, key, stored.sender)
        statuses = self._packets(self._ledger(
            lambda: self.ledger.documents(links_to=key, kind="status")))
        events = _own_events(self._ledger(lambda: self.ledger.events(digest=key)), codes)
        timeline = [TimelineEvent(seq=e.seq, kind=e.kind.value, at=e.at, organization=e.organ_id,
                                  reason=e.reason) for e in events]
        return stored, receipts, statuses, timeline


def _own_events(events: list[StoredEvent], codes: frozenset[str]) -> list[StoredEvent]:
    """The ledger's events about a document, less those of another publisher's attempt at its
    bytes, for the sender's evidence.

    The ledger keys events by digest, so a recipient that publishes the exact bytes it received
    adds its attempt to the document's events: received, then rejected and dead-lettered
    ``SENDER_ACCOUNT_MISMATCH`` (its account does not speak for the ``From``: by the intake's
    own judgement, not the sender's act), then the signed ``02`` issued *to that recipient*
    (``detail.to``). The intake writes one delivery's events in a row (``hub.consumers.plan``),
    so the attempt's ``received`` is the event just before its ``rejected``."""
    foreign: set[int] = set()
    for i, e in enumerate(events):
        if e.kind is EventKind.RECEIPT_ISSUED:
            to = e.detail.get("to")
            if to is not None and str(to) not in codes:
                foreign.add(i)
        elif (e.kind in (EventKind.REJECTED, EventKind.DEAD_LETTERED)
              and e.reason == Reason.SENDER_ACCOUNT_MISMATCH.value):
            foreign.add(i)
            before = events[i - 1] if i > 0 else None
            if (e.kind is EventKind.REJECTED and before is not None
                    and before.kind is EventKind.RECEIVED and before.message_id == e.message_id):
                foreign.add(i - 1)
    return [e for i, e in enumerate(events) if i not in foreign]


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value else None


def _agency(e: OrgEntry) -> Agency:
    legacy = electronic = None
    for code in e.codes:
        try:
            parsed = OrgCode.parse(code)
        except EnvelopeRefused:
            continue
        if parsed.format is OrgCodeFormat.EID:
            electronic = electronic or code
        else:
            legacy = legacy or code
    return Agency(code=e.codes[0], legacyCode=legacy, electronicCode=electronic,
                  codes=list(e.codes), name=e.name, level=e.level, parent=e.parent,
                  province=e.province, reach=e.reach,
                  validFrom=e.valid_from.date() if e.valid_from is not None else None,
                  validTo=last_day(e), successor=e.successor)


_NOT_XML_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry (control characters, NUL, lone surrogates, U+FFFE/FFFF)."""


def _xml_text(field: str, value: str) -> None:
    """A value the hub writes into a status packet must be XML text: a clear 422, not a 500."""
    found = _NOT_XML_TEXT.search(value)
    if found is not None:
        raise ApiError(Reason.API_REQUEST_INVALID, 422,
                       f"{field} holds a character XML cannot carry "
                       f"(U+{ord(found.group()):04X} at {found.start()})")

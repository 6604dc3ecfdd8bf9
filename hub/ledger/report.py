"""Adoption report: per organization and period, what each unit sent and how much of it carried
valid specialized signatures — the periodic figure Hà Tĩnh's plan asks every unit to report to
the Department of Information and Communications (issue 17 item 2).

Counted from ledger documents, refused packets included (every refused packet is a document of
kind ``refused``, so an organization that only had refusals appears):

- ``sent``: envelopes the hub took in plus packets it refused. The same bytes refused and later
  accepted (an operator replay) count once, as accepted;
- ``accepted`` and ``refused`` by reason class (:data:`REASON_CLASSES`: signature, certificate,
  format, routing, duplicate, other), with the reason codes kept too;
- ``signed_valid``: accepted envelopes whose validation report passed without the national-axis
  interop waiver (the signatures are valid specialized signatures);
- ``pdf_both``: accepted envelopes whose main PDF carries both a person's and the organization's
  valid signature (Circular 41/2017; the report's ``pdf`` check names both).

Shares are over ``sent``. A refused packet whose organization is unknown is counted under its
broker account. Rendered as a table, CSV or JSON here; :mod:`hub.ledger.chart` draws it.

The figures come from ``ledger_adoption``, a per-day rollup every ledger write keeps (migration
r0005, :mod:`hub.ledger.adoption`, where the counting rules live); only the hours of a window
before its first and after its last midnight UTC are counted from their documents.
:func:`adoption_report_scan` counts a whole window from the documents: the reference.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from hub.ledger import adoption
from hub.ledger.models import Document
from hub.ledger.records import REFUSED
from hub.ledger.store import Ledger
from hub.reasons import Reason

PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}

REASON_CLASSES: Mapping[str, frozenset[Reason]] = {
    "signature": frozenset({
        Reason.SIGNATURE_MISSING, Reason.SIGNATURE_MULTIPLE, Reason.SIGNATURE_INVALID,
        Reason.SIGNATURE_DIGEST_MISMATCH, Reason.SIGNATURE_SCOPE_INCOMPLETE,
        Reason.SIGNATURE_ALGORITHM_FORBIDDEN, Reason.SIGNATURE_KEY_TOO_WEAK,
        Reason.SIGNATURE_WRAPPING_SUSPECTED, Reason.SIGNATURE_CERTIFICATE_MISSING,
        Reason.SIGNATURE_KEY_INFO_TOO_LARGE,
        Reason.PDF_SIGNATURE_INVALID, Reason.PDF_MODIFIED_AFTER_SIGNING,
        Reason.PDF_PERSON_SIGNATURE_MISSING, Reason.PDF_ORGANIZATION_SIGNATURE_MISSING,
    }),
    "certificate": frozenset({
        Reason.CERT_UNTRUSTED_ROOT, Reason.CERT_PUBLIC_CA, Reason.CERT_SELF_SIGNED,
        Reason.CERT_PATH_INVALID, Reason.CERT_EXPIRED, Reason.CERT_NOT_YET_VALID,
        Reason.CERT_REVOKED, Reason.CERT_KEY_USAGE_INVALID, Reason.CERT_POLICY_MISSING,
        Reason.REVOCATION_UNAVAILABLE, Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER,
        Reason.PDF_SIGNER_UNTRUSTED, Reason.CERT_MALFORMED,
    }),
    "format": frozenset({
        Reason.ENVELOPE_MALFORMED, Reason.ENVELOPE_TOO_LARGE, Reason.ENVELOPE_TOO_DEEP,
        Reason.ENVELOPE_TOO_MANY_ELEMENTS, Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
        Reason.ENVELOPE_DTD_FORBIDDEN,
        Reason.ENVELOPE_SCHEMA_INVALID, Reason.ENVELOPE_NOT_EDXML,
        Reason.ENVELOPE_ENCODING_INVALID, Reason.ATTACHMENT_TOO_LARGE,
        Reason.ATTACHMENT_ENCODING_INVALID, Reason.ATTACHMENT_NOT_IN_MANIFEST,
        Reason.ORGAN_ID_INVALID, Reason.DOCUMENT_ID_INVALID, Reason.DATE_INVALID,
        Reason.STATUS_CODE_INVALID, Reason.PDF_MALFORMED, Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT,
        Reason.FIELD_TOO_LONG,
    }),
    "routing": frozenset({
        Reason.SENDER_UNKNOWN, Reason.SENDER_ACCOUNT_MISMATCH, Reason.RECIPIENT_UNKNOWN,
        Reason.RECIPIENT_MISSING, Reason.DOCUMENT_CLASSIFIED, Reason.ORIGINAL_UNKNOWN,
        Reason.NOT_ORIGINAL_SENDER, Reason.STATUS_ORPHAN, Reason.STATUS_REPORTER_NOT_RECIPIENT,
        Reason.AXIS_REFUSED,
    }),
    "duplicate": frozenset({Reason.DUPLICATE, Reason.DOCUMENT_ID_REUSED}),
}
"""The reason classes of the adoption report; any other code (an outage that ran out of
retries, an internal error, an operator discard) is ``other``."""

CLASSES = (*REASON_CLASSES, "other")

CLASS_LABELS_VI = {"signature": "chữ ký", "certificate": "chứng thư số", "format": "định dạng",
                   "routing": "định tuyến", "duplicate": "trùng lặp", "other": "khác"}
"""Vietnamese labels of the classes (table headers and the chart's legend)."""

_CLASS_OF = {reason.value: name for name, members in REASON_CLASSES.items()
             for reason in members}


def reason_class(code: str | None) -> str:
    """The report class of a reason code (``other`` for anything unclassified)."""
    return _CLASS_OF.get(code or "", "other")


@dataclass(frozen=True)
class AdoptionRow:
    organ_id: str
    """The organization's code, or ``account:<broker account>`` when a refused packet named
    none (``account:?`` when it had no account either)."""
    period: str
    sent: int
    accepted: int
    signed_valid: int
    pdf_both: int
    refused: Mapping[str, int] = field(default_factory=dict)
    """Refused packets by class (every class present, zero included)."""
    reasons: Mapping[str, int] = field(default_factory=dict)
    """Refused packets by reason code."""

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def share_valid(self) -> float:
        return self.signed_valid / self.sent if self.sent else 0.0

    @property
    def share_pdf_both(self) -> float:
        return self.pdf_both / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"organ_id": self.organ_id, "period": self.period, "sent": self.sent,
                "accepted": self.accepted, "refused": dict(self.refused),
                "refused_total": self.refused_total, "reasons": dict(self.reasons),
                "signed_valid": self.signed_valid, "share_valid": round(self.share_valid, 4),
                "pdf_both": self.pdf_both, "share_pdf_both": round(self.share_pdf_both, 4)}


def adoption_report(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "month",
) -> list[AdoptionRow]:
    """The report rows, sorted by organization then period (see the module docstring).

    The whole UTC days of the window are read from the daily rollup (``ledger_adoption``,
    :mod:`hub.ledger.adoption`: a few thousand rows, whatever the ledger's size); the hours
    before its first midnight UTC and after its last one (a window of Vietnam days starts and
    ends at 17:00 UTC) are counted from their documents. Every document counts in its own
    period and a replay is recognized across the whole ledger, so the parts add up to what
    :func:`adoption_report_scan` counts over the whole window."""
    fmt = PERIODS[period]
    if _naive(since) or _naive(until):
        return adoption_report_scan(ledger, since=since, until=until, period=period)  # refuses
    first = _midnight_from(since)
    last = _midnight_before(until)
    tally = _Tally()
    with ledger._reading() as conn:
        if first is not None and last is not None and first > last:  # within one UTC day
            _count_documents(conn, tally, since, until, fmt)
            return tally.rows()
        if since is not None and first is not None and since < first:
            _count_documents(conn, tally, since, first, fmt)
        _count_rollup(conn, tally, first, last, period)
        if until is not None and last is not None and last < until:
            _count_documents(conn, tally, last, until, fmt)
    return tally.rows()


def adoption_report_scan(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "month",
) -> list[AdoptionRow]:
    """The report counted from the documents alone: every envelope and refused packet of the
    window read and its stored validation report parsed (seconds for a month of a
    1,000,000-row ledger). The reference :func:`adoption_report` is tested against."""
    fmt = PERIODS[period]
    tally = _Tally()
    with ledger._reading() as conn:
        _count_documents(conn, tally, since, until, fmt)
    return tally.rows()


def _naive(at: datetime | None) -> bool:
    return at is not None and (at.tzinfo is None or at.utcoffset() is None)


def _midnight_from(at: datetime | None) -> datetime | None:
    """The first midnight UTC at or after ``at``."""
    if at is None:
        return None
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if day == at else day + timedelta(days=1)


def _midnight_before(at: datetime | None) -> datetime | None:
    """The last midnight UTC at or before ``at``."""
    if at is None:
        return None
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _count_rollup(conn: Connection, tally: _Tally, since: datetime | None,
                  until: datetime | None, period: str) -> None:
    """Add the rollup's days in [since, until) (midnights UTC, or None: unbounded)."""
    for r in adoption.read(conn, since_day=None if since is None else f"{since:%Y-%m-%d}",
                           until_day=None if until is None else f"{until:%Y-%m-%d}",
                           period=period):
        key = (r.organ_id, r.period)
        tally.sent[key] += r.accepted + r.refused
        tally.accepted[key] += r.accepted
        tally.valid[key] += r.signed_valid
        tally.both[key] += r.pdf_both
        if r.refused:
            tally.classes.setdefault(key, Counter())[reason_class(r.reason)] += r.refused
            tally.reasons.setdefault(key, Counter())[r.reason] += r.refused


def _count_documents(conn: Connection, tally: _Tally, since: datetime | None,
                     until: datetime | None, fmt: str) -> None:
    """Add the envelopes and refused packets received in [since, until), read one by one."""
    stmt = select(Document.digest, Document.kind, Document.sender, Document.received_at,
                  Document.report, Document.refusal).where(
        Document.kind.in_(["envelope", REFUSED])).order_by(Document.seq)
    if since is not None:
        stmt = stmt.where(Document.received_at >= since)
    if until is not None:
        stmt = stmt.where(Document.received_at < until)
    rows = list(conn.execute(stmt))
    accepted_digests = {r.digest for r in rows if r.kind == "envelope"}
    # Bytes refused in the window and accepted outside it count once too, as accepted (where
    # the envelope was received), as the rollup counts them: one look-up per 500 refusals.
    outside = sorted({r.digest for r in rows
                      if r.kind == REFUSED and r.digest not in accepted_digests})
    for start in range(0, len(outside), 500):
        accepted_digests.update(conn.scalars(select(Document.digest).where(
            Document.kind == "envelope", Document.digest.in_(outside[start:start + 500]))))
    for row in rows:
        if row.kind == REFUSED:
            if row.digest in accepted_digests:
                continue  # refused, then accepted on a replay: counted once, as accepted
            refusal = json.loads(row.refusal) if row.refusal is not None else {}
            key = (adoption.refused_organ(row.sender, refusal.get("account")),
                   row.received_at.strftime(fmt))
            code = adoption.refusal_reason(refusal.get("reason"))
            tally.classes.setdefault(key, Counter())[reason_class(code)] += 1
            tally.reasons.setdefault(key, Counter())[code] += 1
        else:
            key = (row.sender, row.received_at.strftime(fmt))
            tally.accepted[key] += 1
            is_valid, has_both = adoption.report_facts(
                json.loads(row.report) if row.report is not None else None)
            tally.valid[key] += int(is_valid)
            tally.both[key] += int(has_both)
        tally.sent[key] += 1


@dataclass
class _Tally:
    """The report's counters per (organization, period)."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    accepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    valid: Counter[tuple[str, str]] = field(default_factory=Counter)
    both: Counter[tuple[str, str]] = field(default_factory=Counter)
    classes: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    reasons: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def rows(self) -> list[AdoptionRow]:
        return [
            AdoptionRow(
                organ, when, self.sent[(organ, when)], self.accepted[(organ, when)],
                self.valid[(organ, when)], self.both[(organ, when)],
                {c: self.classes.get((organ, when), Counter())[c] for c in CLASSES},
                dict(sorted(self.reasons.get((organ, when), Counter()).items())))
            for organ, when in sorted(k for k, n in self.sent.items() if n)]


def render_table(rows: Sequence[AdoptionRow]) -> str:
    header = ("Đơn vị / Organization", "Kỳ / Period", "Gửi / Sent", "Nhận / Accepted",
              "Từ chối / Refused", "Ký hợp lệ / Valid", "PDF cá nhân+tổ chức",
              "Lý do từ chối / Refusals by class")
    lines = [header] + [
        (r.organ_id, r.period, str(r.sent), str(r.accepted), str(r.refused_total),
         f"{r.signed_valid} ({r.share_valid:.1%})", f"{r.pdf_both} ({r.share_pdf_both:.1%})",
         ", ".join(f"{c}={n}" for c, n in r.refused.items() if n) or "-")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def render_csv(rows: Sequence[AdoptionRow]) -> str:
    """One line per organization and period; one column per refusal class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["organ_id", "period", "sent", "accepted", "refused",
                     *(f"refused_{c}" for c in CLASSES), "signed_valid", "share_valid",
                     "pdf_both", "share_pdf_both", "reasons"])
    for r in rows:
        writer.writerow([r.organ_id, r.period, r.sent, r.accepted, r.refused_total,
                         *(r.refused.get(c, 0) for c in CLASSES), r.signed_valid,
                         f"{r.share_valid:.4f}", r.pdf_both, f"{r.share_pdf_both:.4f}",
                         " ".join(f"{k}={v}" for k, v in r.reasons.items())])
    return buffer.getvalue()


def render_json(rows: Sequence[AdoptionRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2) + "\n"

"""Adoption report: per organization and period, documents sent, the share carrying valid
specialized signatures, and rejections by reason (the periodic report Hà Tĩnh's plan asks the
Department of Information and Communications for). Rendered as a table, CSV or a hand-written SVG.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from sqlalchemy import select

from hub.ledger.models import Document, Event
from hub.ledger.records import EventKind
from hub.ledger.store import Ledger

PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


@dataclass(frozen=True)
class AdoptionRow:
    organ_id: str
    period: str
    sent: int
    signed_valid: int
    rejections: Mapping[str, int] = field(default_factory=dict)

    @property
    def share_valid(self) -> float:
        return self.signed_valid / self.sent if self.sent else 0.0


def adoption_report(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "month",
) -> list[AdoptionRow]:
    """Envelopes sent per sender and period; ``signed_valid`` counts those with a VALIDATED
    event (signature and certificate accepted), rejections count REJECTED events by reason."""
    fmt = PERIODS[period]
    docs = select(Document.digest, Document.sender, Document.received_at).where(
        Document.kind == "envelope")
    if since is not None:
        docs = docs.where(Document.received_at >= since)
    if until is not None:
        docs = docs.where(Document.received_at < until)
    verdicts = select(Event.digest, Event.kind, Event.reason).where(
        Event.kind.in_([EventKind.VALIDATED.value, EventKind.REJECTED.value]),
        Event.digest.in_(docs.with_only_columns(Document.digest).scalar_subquery()))
    with ledger.engine.connect() as conn:
        documents = list(conn.execute(docs))
        outcome: dict[str, tuple[bool, list[str]]] = {}
        for row in conn.execute(verdicts):
            valid, reasons = outcome.get(row.digest, (False, []))
            if row.kind == EventKind.VALIDATED.value:
                valid = True
            else:
                reasons.append(row.reason or "UNKNOWN")
            outcome[row.digest] = (valid, reasons)
    sent: Counter[tuple[str, str]] = Counter()
    valid_count: Counter[tuple[str, str]] = Counter()
    rejections: dict[tuple[str, str], Counter[str]] = {}
    for doc in documents:
        key = (doc.sender, doc.received_at.strftime(fmt))
        sent[key] += 1
        valid, reasons = outcome.get(doc.digest, (False, []))
        valid_count[key] += int(valid)
        rejections.setdefault(key, Counter()).update(reasons)
    return [AdoptionRow(organ, when, sent[(organ, when)], valid_count[(organ, when)],
                        dict(sorted(rejections[(organ, when)].items())))
            for organ, when in sorted(sent)]


def render_table(rows: Sequence[AdoptionRow]) -> str:
    header = ("Organization", "Period", "Sent", "Valid signed", "Share", "Rejections by reason")
    lines = [header] + [
        (r.organ_id, r.period, str(r.sent), str(r.signed_valid), f"{r.share_valid:.1%}",
         ", ".join(f"{k}={v}" for k, v in r.rejections.items()) or "-")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def render_csv(rows: Sequence[AdoptionRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["organ_id", "period", "sent", "signed_valid", "share_valid", "reason",
                     "rejections"])
    for r in rows:
        if not r.rejections:
            writer.writerow([r.organ_id, r.period, r.sent, r.signed_valid,
                             f"{r.share_valid:.4f}", "", 0])
        for reason, count in r.rejections.items():
            writer.writerow([r.organ_id, r.period, r.sent, r.signed_valid,
                             f"{r.share_valid:.4f}", reason, count])
    return buffer.getvalue()


def render_svg(rows: Sequence[AdoptionRow], *, title: str = "Văn bản gửi / Documents sent") -> str:
    """A horizontal bar per organization and period: the full bar is documents sent, the dark
    part those with a valid specialized signature."""
    bar_h, gap, left, width, top = 18, 6, 260, 420, 40
    height = top + len(rows) * (bar_h + gap) + 30
    peak = max((r.sent for r in rows), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, r in enumerate(rows):
        y = top + i * (bar_h + gap)
        full = round(width * r.sent / peak)
        valid = round(width * r.signed_valid / peak)
        parts += [
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">'
            f"{escape(r.organ_id)} {escape(r.period)}</text>",
            f'<rect x="{left}" y="{y}" width="{full}" height="{bar_h}" fill="#c6dbef"/>',
            f'<rect x="{left}" y="{y}" width="{valid}" height="{bar_h}" fill="#2171b5"/>',
            f'<text x="{left + full + 6}" y="{y + 13}">{r.sent} ({r.share_valid:.0%})</text>',
        ]
    legend_y = height - 12
    parts += [
        f'<rect x="10" y="{legend_y - 10}" width="12" height="12" fill="#2171b5"/>',
        f'<text x="28" y="{legend_y}">ký số chuyên dùng hợp lệ / valid specialized signature'
        "</text>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"

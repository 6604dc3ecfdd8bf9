"""The plan's figures, measured from the signatures the hub saw (issue 21).

Hà Tĩnh's plan (2019, under Decision 28/2018/QĐ-TTg; DOMAIN.md §1) sets the targets, and asks
every unit to report periodically on its use of certificates and signatures:

- **heads and deputies** of departments, district and commune People's Committees sign
  electronically with their personal specialized signature: 100 % by the end of 2020
  (:data:`LEADERS`);
- **division heads and specialists**: every one by 2025 (:data:`STAFF`);
- about **3,000** certificates issued over 2019–2025 (:data:`CERTIFICATES_TARGET`).

Per organization (and for the whole registry, organization ``*``) and per calendar period
(month, quarter or year, in Vietnam time): how many of each group the registry lists, how many
held a certificate during the period (issued or handed over, valid on some day of it, not
revoked before it began), how many **signed at least one document** — a validated person
signature on the main PDF of an accepted envelope, matched to them by certificate serial +
issuer or by the identifier in the subject — and the shares against the target.

Then, for the whole registry: certificates issued per year (by the year their validity starts)
against the plan's 3,000; open requests; active certificates **never used** (no signature seen
in any role, ever); active certificates **expiring** within 30/60/90 days of the report's day;
**revoked certificates still seen signing** on or after the day of their revocation (an alarm:
the token is in someone's hands and the CA's revocation has not reached the hub, or was
recorded late); and the **signatures from certificates the registry does not know**, for the
office to review — those whose subject identifier names a known subscriber (a certificate the
office has not recorded yet) and those of nobody it knows.

:func:`notices` is the daily job's list: per organization, certificates expiring soon and
subscribers holding a valid certificate who never signed anything through the hub.

Rendered as a table, CSV (sections, one header row each) or JSON here; a chart in
:mod:`hub.ledger.subscribers_chart`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.directory import Directory
from hub.ledger.store import Ledger
from hub.ledger.subscribers import (
    BodyCodes,
    CertificateRecord,
    Registry,
    SubscriberRecord,
    day_start,
    describe_certificates,
    indexed_up_to,
    load_registry,
    observed_certificates,
    pending_observations,
    signatures_since,
    sync_observations,
    vietnam_day,
)

PERIODS = ("month", "quarter", "year")
ALL = "*"
"""The organization code of the rows that total the whole registry."""


@dataclass(frozen=True, slots=True)
class Target:
    """One of the plan's targets for a group of positions."""

    name: str
    label: str
    positions: frozenset[str]
    share: float
    due: date


LEADERS = Target("leaders", "Thủ trưởng, cấp phó / heads and deputies",
                 frozenset({"head", "deputy"}), 1.0, date(2020, 12, 31))
STAFF = Target("staff", "Trưởng phòng, chuyên viên / division heads and specialists",
               frozenset({"division_head", "specialist"}), 1.0, date(2025, 12, 31))
TARGETS = (LEADERS, STAFF)
CERTIFICATES_TARGET = 3000
"""Certificates the plan expects over :data:`PLAN_YEARS`."""
PLAN_YEARS = (2019, 2025)
EXPIRY_WINDOWS = (30, 60, 90)


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: date
    end: date
    """First day after the period."""

    @property
    def months(self) -> frozenset[str]:
        out: set[str] = set()
        day = self.start.replace(day=1)
        while day < self.end:
            out.add(f"{day.year:04d}-{day.month:02d}")
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        return frozenset(out)


def _period_of(day: date, kind: str) -> Period:
    if kind == "year":
        return Period(f"{day.year}", date(day.year, 1, 1), date(day.year + 1, 1, 1))
    if kind == "quarter":
        q = (day.month - 1) // 3
        start = date(day.year, 3 * q + 1, 1)
        end = date(day.year + 1, 1, 1) if q == 3 else date(day.year, 3 * q + 4, 1)
        return Period(f"{day.year}-Q{q + 1}", start, end)
    if kind == "month":
        start = day.replace(day=1)
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return Period(f"{day.year:04d}-{day.month:02d}", start, end)
    raise ValueError(f"period is one of {', '.join(PERIODS)}")


def periods(since: date, until: date, kind: str) -> list[Period]:
    """The whole calendar periods from the one holding ``since`` to the one before ``until``."""
    if until <= since:
        raise ValueError(f"until ({until}) must be after since ({since})")
    out = [_period_of(since, kind)]
    while out[-1].end < until:
        out.append(_period_of(out[-1].end, kind))
    return out


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One target group of one organization in one period."""

    target: Target
    total: int
    certified: int
    signed: int

    @property
    def share_certified(self) -> float:
        return self.certified / self.total if self.total else 0.0

    @property
    def share_signed(self) -> float:
        return self.signed / self.total if self.total else 0.0

    @property
    def met(self) -> bool:
        return self.total > 0 and self.share_signed >= self.target.share

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "with_certificate": self.certified, "signed": self.signed,
                "share_with_certificate": round(self.share_certified, 4),
                "share_signed": round(self.share_signed, 4), "target": self.target.share,
                "due": self.target.due.isoformat(), "met": self.met}


@dataclass(frozen=True, slots=True)
class OrganizationRow:
    organ_id: str
    """The organization's primary code in the directory (as written when the directory does
    not know it), or :data:`ALL` for the whole registry."""
    period: str
    leaders: GroupFigures
    staff: GroupFigures
    written_as: tuple[str, ...] = ()
    """The other codes of the body the registry writes (``H27.02`` for ``000.00.02.H27``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"organ_id": self.organ_id, "period": self.period,
                "written_as": list(self.written_as),
                "leaders": self.leaders.to_dict(), "staff": self.staff.to_dict()}


@dataclass(frozen=True, slots=True)
class CertificateItem:
    """A registry certificate in one of the report's lists."""

    identifier: str
    name: str
    kind: str
    position: str | None
    organ_id: str
    serial: str | None
    issuer: str
    valid_from: date | None
    valid_to: date | None
    status: str
    days_left: int | None = None
    """Days from the report's day to the last valid day (expiring list)."""

    @classmethod
    def of(cls, cert: CertificateRecord, owner: SubscriberRecord | None,
           days_left: int | None = None) -> CertificateItem:
        return cls(cert.identifier, owner.name if owner else "", owner.kind if owner else "",
                   owner.position if owner else None, owner.organ_id if owner else "",
                   cert.serial, cert.issuer, cert.valid_from, cert.valid_to, cert.status,
                   days_left)

    def to_dict(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "name": self.name, "kind": self.kind,
                "position": self.position, "organ_id": self.organ_id, "serial": self.serial,
                "issuer": self.issuer,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_to": self.valid_to.isoformat() if self.valid_to else None,
                "status": self.status, "days_left": self.days_left}


@dataclass(frozen=True, slots=True)
class RevokedAlarm:
    """A certificate the registry says is revoked, seen signing on or after that day."""

    certificate: CertificateItem
    revoked_from: date
    signatures: int
    first_seen: datetime
    last_seen: datetime
    documents: tuple[str, ...]
    """Digests of the envelopes (the first ten), for ``hub ledger query --digest``."""
    senders: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.certificate.to_dict(), "revoked_from": self.revoked_from.isoformat(),
                "signatures": self.signatures, "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "documents": list(self.documents),
                "senders": list(self.senders)}


@dataclass(frozen=True, slots=True)
class UnknownSignature:
    """A certificate seen signing that the registry does not list."""

    serial: str
    issuer: str
    subject: str
    uid: str | None
    roles: tuple[str, ...]
    senders: tuple[str, ...]
    signatures: int
    first_seen: datetime
    last_seen: datetime
    subscriber: str | None
    """The known subscriber the subject's identifier names (the office has not recorded this
    certificate of theirs), or None: nobody the registry knows."""

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "issuer": self.issuer, "subject": self.subject,
                "uid": self.uid, "roles": list(self.roles), "senders": list(self.senders),
                "signatures": self.signatures, "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "subscriber": self.subscriber}


@dataclass(frozen=True)
class PlanReport:
    """Every figure of ``hub subscribers report``."""

    at: datetime
    period: str
    since: date
    until: date
    indexed_up_to: int
    """The last ledger position read (signatures of envelopes after it were read in memory)."""
    organizations: tuple[OrganizationRow, ...]
    issued_per_year: Mapping[int, int]
    requested_open: int
    never_used: tuple[CertificateItem, ...]
    expiring: tuple[CertificateItem, ...]
    revoked_signing: tuple[RevokedAlarm, ...]
    unknown: tuple[UnknownSignature, ...]
    subscribers: int = 0
    certificates: int = 0
    targets: tuple[Target, ...] = field(default=TARGETS)

    @property
    def issued_in_plan(self) -> int:
        first, last = PLAN_YEARS
        return sum(n for year, n in self.issued_per_year.items() if first <= year <= last)

    @property
    def share_of_certificate_target(self) -> float:
        return self.issued_in_plan / CERTIFICATES_TARGET

    def expiring_within(self, days: int) -> int:
        return sum(1 for c in self.expiring if c.days_left is not None and c.days_left <= days)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "period": self.period, "since": self.since.isoformat(),
            "until": self.until.isoformat(), "indexed_up_to": self.indexed_up_to,
            "subscribers": self.subscribers, "certificates": self.certificates,
            "targets": {t.name: {"positions": sorted(t.positions), "share": t.share,
                                 "due": t.due.isoformat()} for t in self.targets},
            "organizations": [r.to_dict() for r in self.organizations],
            "issued": {"per_year": {str(y): n for y, n in sorted(self.issued_per_year.items())},
                       "plan_years": list(PLAN_YEARS), "in_plan_years": self.issued_in_plan,
                       "target": CERTIFICATES_TARGET,
                       "share": round(self.share_of_certificate_target, 4),
                       "requested_open": self.requested_open},
            "never_used": [c.to_dict() for c in self.never_used],
            "expiring": {**{f"within_{d}": self.expiring_within(d) for d in EXPIRY_WINDOWS},
                         "certificates": [c.to_dict() for c in self.expiring]},
            "revoked_signing": [a.to_dict() for a in self.revoked_signing],
            "unknown_signatures": [u.to_dict() for u in self.unknown],
        }


def _held_in(cert: CertificateRecord, period: Period) -> bool:
    """Held during ``period``: issued (not a request), valid on some day of it, not revoked
    before it began."""
    if cert.status == "requested" or cert.valid_from is None:
        return False
    if cert.valid_from >= period.end:
        return False
    if cert.valid_to is not None and cert.valid_to < period.start:
        return False
    revoked = cert.revoked_from
    return revoked is None or revoked >= period.start


@dataclass
class _Linked:
    """The registry joined with what the hub saw."""

    registry: Registry
    signed_months: dict[str, set[str]]
    """Subscriber → months with a person signature on a main PDF."""
    used: set[str]
    """Subscribers seen signing in any role."""
    used_certificates: set[tuple[str, str]]
    unknown: list[UnknownSignature]
    alarms: list[RevokedAlarm]
    indexed: int


def _link(ledger: Ledger, sync: bool, bodies: BodyCodes) -> _Linked:
    if sync and not ledger.read_only:
        sync_observations(ledger)
    with ledger._reading() as conn:
        reg = load_registry(conn)
        indexed = indexed_up_to(conn)
        pending = pending_observations(conn)
        seen = observed_certificates(conn, pending)
        by_cert = reg.by_certificate()
        describe_certificates(conn, seen, (k for k in seen if k not in by_cert), pending)
        revoked = [(c, c.revoked_from) for c in reg.certificates
                   if c.revoked_from is not None and c.serial is not None]
        hits = signatures_since(conn, {(c.issuer_key, c.serial or ""): day_start(day)
                                       for c, day in revoked}, pending)
    signed_months: dict[str, set[str]] = {}
    used: set[str] = set()
    unknown: list[UnknownSignature] = []
    for key, obs in seen.items():
        cert = by_cert.get(key)
        owner = cert.identifier if cert is not None else (
            bodies.subscriber_of_uid(obs.uid, reg.subscribers, obs.last_seen))
        if owner is not None:
            used.add(owner)
            if obs.person_months:
                signed_months.setdefault(owner, set()).update(obs.person_months)
        if cert is None:
            assert obs.first_seen is not None
            assert obs.last_seen is not None
            unknown.append(UnknownSignature(
                obs.serial, obs.issuer, obs.subject, obs.uid, tuple(sorted(obs.roles)),
                tuple(sorted(obs.senders)), obs.count, obs.first_seen, obs.last_seen, owner))
    unknown.sort(key=lambda u: (u.subscriber is not None, u.senders, u.serial))
    alarms = []
    for cert, day in revoked:
        rows = hits[(cert.issuer_key, cert.serial or "")]
        if rows:
            alarms.append(RevokedAlarm(
                CertificateItem.of(cert, reg.subscribers.get(cert.identifier)), day, len(rows),
                min(r.received_at for r in rows), max(r.received_at for r in rows),
                tuple(dict.fromkeys(r.digest for r in rows))[:10],
                tuple(sorted({r.sender for r in rows}))))
    return _Linked(reg, signed_months, used, set(seen), unknown, alarms, indexed)


def _group(target: Target, members: Sequence[SubscriberRecord],
           held: Mapping[str, Sequence[CertificateRecord]], signed: Mapping[str, set[str]],
           period: Period, months: frozenset[str]) -> GroupFigures:
    chosen = [s for s in members if s.position in target.positions]
    return GroupFigures(
        target, len(chosen),
        sum(1 for s in chosen if any(_held_in(c, period) for c in held.get(s.identifier, ()))),
        sum(1 for s in chosen if not months.isdisjoint(signed.get(s.identifier, ()))))


def _total(organ: str, rows: Sequence[OrganizationRow], period: str) -> OrganizationRow:
    """The whole registry's row: each person belongs to one organization, so the sums."""

    def add(target: Target, groups: Sequence[GroupFigures]) -> GroupFigures:
        return GroupFigures(target, sum(g.total for g in groups),
                            sum(g.certified for g in groups), sum(g.signed for g in groups))

    return OrganizationRow(organ, period, add(LEADERS, [r.leaders for r in rows]),
                           add(STAFF, [r.staff for r in rows]))


def plan_report(
    ledger: Ledger,
    *,
    at: datetime | None = None,
    since: date | None = None,
    until: date | None = None,
    period: str = "year",
    sync: bool = True,
    directory: Directory | None = None,
) -> PlanReport:
    """Every figure (see the module docstring). ``since`` / ``until`` (exclusive) default to
    the calendar year of ``at`` (default: now); periods are whole calendar periods in Vietnam
    time. With ``sync`` (and a writable ledger) the signature index is brought up to date
    first; otherwise what it has not read yet is read in memory. With the ``directory``, the
    codes of one body are one organization (:class:`~hub.ledger.subscribers.BodyCodes`);
    without it, codes are compared as written."""
    at = at or datetime.now(UTC)
    today = vietnam_day(at)
    since = since or date(today.year, 1, 1)
    until = until or date(since.year + 1, 1, 1)
    spans = periods(since, until, period)
    bodies = BodyCodes(directory, at)
    linked = _link(ledger, sync, bodies)
    reg = linked.registry
    held = {k: [c for c in v if c.status != "requested"]
            for k, v in reg.certificates_of().items()}
    by_org: dict[str, list[SubscriberRecord]] = {}
    written: dict[str, set[str]] = {}
    for s in reg.subscribers.values():
        organ = bodies.primary(s.organ_id)
        by_org.setdefault(organ, [])
        written.setdefault(organ, set()).add(s.organ_id)
        if s.kind == "person":
            by_org[organ].append(s)
    rows: list[OrganizationRow] = []
    for span in spans:
        months = span.months
        these = [OrganizationRow(
            organ, span.label,
            _group(LEADERS, members, held, linked.signed_months, span, months),
            _group(STAFF, members, held, linked.signed_months, span, months),
            written_as=tuple(sorted(written[organ] - {organ})))
            for organ, members in sorted(by_org.items())]
        rows.extend(these)
        rows.append(_total(ALL, these, span.label))
    rows.sort(key=lambda r: (r.organ_id == ALL, r.organ_id, r.period))
    issued: dict[int, int] = {}
    for c in reg.certificates:
        if c.status != "requested" and c.valid_from is not None:
            issued[c.valid_from.year] = issued.get(c.valid_from.year, 0) + 1
    never_used, expiring = [], []
    for c in reg.certificates:
        owner = reg.subscribers.get(c.identifier)
        if not c.active or c.serial is None:
            continue
        if (c.issuer_key, c.serial) not in linked.used_certificates:
            never_used.append(CertificateItem.of(c, owner))
        if c.valid_to is not None and 0 <= (c.valid_to - today).days <= max(EXPIRY_WINDOWS):
            expiring.append(CertificateItem.of(c, owner, (c.valid_to - today).days))
    never_used.sort(key=lambda c: (c.organ_id, c.identifier))
    expiring.sort(key=lambda c: (c.days_left or 0, c.organ_id, c.identifier))
    return PlanReport(
        at, period, spans[0].start, spans[-1].end, linked.indexed, tuple(rows),
        dict(sorted(issued.items())), sum(1 for c in reg.certificates if c.status == "requested"),
        tuple(never_used), tuple(expiring), tuple(linked.alarms), tuple(linked.unknown),
        subscribers=len(reg.subscribers), certificates=len(reg.certificates))


# -- notices ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """One line of an organization's daily notice."""

    organ_id: str
    notice: str
    """``expiring`` (a certificate to renew) or ``never_signed`` (a subscriber holding a valid
    certificate who never signed anything through the hub)."""
    certificate: CertificateItem


NOTICE_KINDS = {"expiring": "sắp hết hạn", "never_signed": "chưa từng ký số"}


def notices(ledger: Ledger, *, at: datetime | None = None, within_days: int = 30,
            sync: bool = True, directory: Directory | None = None) -> dict[str, list[Notice]]:
    """Per organization (its primary code with the ``directory``, as :func:`plan_report`):
    active certificates whose last valid day is within ``within_days`` of the day of ``at``,
    and subscribers holding a certificate valid that day who were never seen signing (in any
    role). Organizations with nothing to say are left out."""
    if within_days < 0:
        raise ValueError("within_days must not be negative")
    at = at or datetime.now(UTC)
    today = vietnam_day(at)
    bodies = BodyCodes(directory, at)
    linked = _link(ledger, sync, bodies)
    reg = linked.registry
    out: dict[str, list[Notice]] = {}
    for c in reg.certificates:
        owner = reg.subscribers.get(c.identifier)
        if owner is None or not c.active or c.valid_to is None or c.valid_to < today:
            continue
        days = (c.valid_to - today).days
        organ = bodies.primary(owner.organ_id)
        if days <= within_days:
            out.setdefault(organ, []).append(
                Notice(organ, "expiring", CertificateItem.of(c, owner, days)))
        valid_now = c.valid_from is not None and c.valid_from <= today
        if valid_now and c.identifier not in linked.used:
            out.setdefault(organ, []).append(
                Notice(organ, "never_signed", CertificateItem.of(c, owner, days)))
    for items in out.values():
        items.sort(key=lambda n: (n.notice, n.certificate.days_left or 0,
                                  n.certificate.identifier))
    return dict(sorted(out.items()))


NOTICE_COLUMNS = ("organ_id", "notice", "notice_vi", "identifier", "name", "kind", "position",
                  "serial", "issuer", "valid_to", "days_left")


def notices_csv(items: Sequence[Notice]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NOTICE_COLUMNS)
    for n in items:
        c = n.certificate
        writer.writerow([n.organ_id, n.notice, NOTICE_KINDS[n.notice], c.identifier, c.name,
                         c.kind, c.position or "", c.serial or "", c.issuer,
                         c.valid_to.isoformat() if c.valid_to else "", c.days_left])
    return buffer.getvalue()


# -- rendering ----------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _organization_lines(report: PlanReport) -> list[list[Any]]:
    return [[r.organ_id, r.period, g.target.name, g.total, g.certified, g.signed,
             f"{g.share_certified:.4f}", f"{g.share_signed:.4f}", g.target.share,
             g.target.due.isoformat(), "yes" if g.met else "no"]
            for r in report.organizations for g in (r.leaders, r.staff)]


_ORG_HEADER = ["organ_id", "period", "group", "total", "with_certificate", "signed",
               "share_with_certificate", "share_signed", "target", "due", "met"]
_CERT_HEADER = ["identifier", "name", "kind", "position", "organ_id", "serial", "issuer",
                "valid_from", "valid_to", "status", "days_left"]


def _cert_cells(c: CertificateItem) -> list[Any]:
    return [c.identifier, c.name, c.kind, c.position or "", c.organ_id, c.serial or "",
            c.issuer, c.valid_from.isoformat() if c.valid_from else "",
            c.valid_to.isoformat() if c.valid_to else "", c.status,
            "" if c.days_left is None else c.days_left]


def csv_sections(report: PlanReport) -> dict[str, list[list[Any]]]:
    """Each section as rows (its header first): what the CSV output and files hold."""
    first, last = PLAN_YEARS
    years = sorted(set(report.issued_per_year) | set(range(first, last + 1)))
    return {
        "organizations": [_ORG_HEADER, *_organization_lines(report)],
        "issued": [["year", "issued", "in_plan_years", "plan_target", "requested_open"],
                   *([y, report.issued_per_year.get(y, 0), "yes" if first <= y <= last else "no",
                      CERTIFICATES_TARGET, report.requested_open] for y in years),
                   ["total_2019_2025", report.issued_in_plan, "yes", CERTIFICATES_TARGET,
                    report.requested_open]],
        "never_used": [_CERT_HEADER, *(_cert_cells(c) for c in report.never_used)],
        "expiring": [_CERT_HEADER, *(_cert_cells(c) for c in report.expiring)],
        "revoked_signing": [[*_CERT_HEADER, "revoked_from", "signatures", "first_seen",
                             "last_seen", "senders", "documents"],
                            *([*_cert_cells(a.certificate), a.revoked_from.isoformat(),
                               a.signatures, a.first_seen.isoformat(), a.last_seen.isoformat(),
                               " ".join(a.senders), " ".join(a.documents)]
                              for a in report.revoked_signing)],
        "unknown_signatures": [["serial", "issuer", "subject", "uid", "roles", "senders",
                                "signatures", "first_seen", "last_seen", "subscriber"],
                               *([u.serial, u.issuer, u.subject, u.uid or "", " ".join(u.roles),
                                  " ".join(u.senders), u.signatures, u.first_seen.isoformat(),
                                  u.last_seen.isoformat(), u.subscriber or ""]
                                 for u in report.unknown)],
    }


def render_csv(report: PlanReport) -> str:
    """Every section in one file: a ``section`` column first, a header row per section, a
    blank line between sections (:func:`csv_sections` for one file per section)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for n, (name, rows) in enumerate(csv_sections(report).items()):
        if n:
            buffer.write("\n")
        writer.writerow(["section", *rows[0]])
        for row in rows[1:]:
            writer.writerow([name, *row])
    return buffer.getvalue()


def section_csv(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def render_json(report: PlanReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [list(map(str, header))] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_table(report: PlanReport) -> str:
    """The report for a terminal: Vietnamese first, English after."""
    out = [f"Chữ ký số chuyên dùng theo kế hoạch / The plan's figures — ngày {vietnam_day(report.at)}"
           f", kỳ {report.since} → {report.until} ({report.period}); {report.subscribers}"
           f" thuê bao / subscribers, {report.certificates} chứng thư / certificates", ""]
    header = ("Đơn vị / Organization", "Kỳ / Period",
              "Lãnh đạo có CTS / ký (mục tiêu 100 % 2020)",
              "TP, chuyên viên có CTS / ký (mục tiêu 2025)")
    rows = [(("Toàn tỉnh / all" if r.organ_id == ALL else " ".join((r.organ_id, *r.written_as))),
             r.period,
             f"{r.leaders.certified}/{r.leaders.total} · ký {r.leaders.signed}"
             f" ({_pct(r.leaders.share_signed)})",
             f"{r.staff.certified}/{r.staff.total} · ký {r.staff.signed}"
             f" ({_pct(r.staff.share_signed)})") for r in report.organizations]
    out += _table(header, rows)
    first, last = PLAN_YEARS
    out += ["", "Chứng thư cấp theo năm / issued per year: "
            + (", ".join(f"{y}: {n}" for y, n in report.issued_per_year.items()) or "-")
            + f"; {first}–{last}: {report.issued_in_plan} / {CERTIFICATES_TARGET}"
            f" ({report.share_of_certificate_target:.1%}); đề nghị chưa cấp / open requests:"
            f" {report.requested_open}",
            "Sắp hết hạn / expiring: " + ", ".join(
                f"≤ {d} ngày: {report.expiring_within(d)}" for d in EXPIRY_WINDOWS)]
    sections: list[tuple[str, list[str], list[list[Any]]]] = [
        ("Chưa từng sử dụng / never used", ["identifier", "name", "organ_id", "serial"],
         [[c.identifier, c.name, c.organ_id, c.serial] for c in report.never_used]),
        ("Sắp hết hạn / expiring", ["identifier", "name", "organ_id", "serial", "valid_to",
                                     "days_left"],
         [[c.identifier, c.name, c.organ_id, c.serial, c.valid_to, c.days_left]
          for c in report.expiring]),
        ("CẢNH BÁO: chứng thư đã thu hồi vẫn ký / ALARM: revoked certificates still signing",
         ["identifier", "name", "organ_id", "serial", "revoked_from", "signatures",
          "last_seen"],
         [[a.certificate.identifier, a.certificate.name, a.certificate.organ_id,
           a.certificate.serial, a.revoked_from, a.signatures, a.last_seen.isoformat()]
          for a in report.revoked_signing]),
        ("Chữ ký của chứng thư chưa đăng ký / signatures from certificates not in the registry",
         ["serial", "uid", "subject", "senders", "signatures", "subscriber"],
         [[u.serial, u.uid, u.subject, " ".join(u.senders), u.signatures,
           u.subscriber or "(không rõ / unknown)"] for u in report.unknown]),
    ]
    for title, head, body in sections:
        out += ["", f"{title}: {len(body)}"]
        if body:
            out += ["  " + line for line in _table(head, body)]
    return "\n".join(out) + "\n"

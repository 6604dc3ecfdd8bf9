"""The adoption report's rollup, ``ledger_adoption`` (migration r0005, issue 20).

One row per organization, UTC day (``YYYY-MM-DD`` of ``received_at``) and refusal reason (``""``
for accepted envelopes) with four counters: ``accepted``, ``refused``, ``signed_valid`` and
``pdf_both``. :meth:`hub.ledger.Ledger.write` adds a batch's documents to it in the batch's own
transaction (one ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` per batch), so the
report reads a few thousand rows instead of parsing the validation report of every envelope.

The counting rules are the report's (:mod:`hub.ledger.report`) and live here once:

- an accepted envelope counts under its sender, with the facts :func:`report_facts` reads from
  its validation report — at write time from the report the pipeline hands over, when rebuilt
  from the stored JSON;
- a refused packet counts under its organization, or ``account:<broker account>`` when it named
  none (:func:`refused_organ`), by reason code;
- the same bytes refused and accepted as an envelope (an operator replay) count once, as
  accepted, whatever the order they were written in: a refused packet whose bytes already have
  an envelope is not counted, and an envelope whose bytes were refused before takes that
  refusal back (read from its row: the only case that reads a document back).

Derived and recomputable, like ``ledger_deliveries``: not part of the hash chain. The migration
fills it with :func:`rebuild`, a restore rebuilds it, and ``hub ledger verify`` compares it with
:func:`recompute` (:func:`differences`); ``hub ledger migrate --rebuild-adoption`` rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, func, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.ledger import chain
from hub.ledger.models import AdoptionDay, Document
from hub.ledger.records import REFUSED

ENVELOPE = "envelope"
ACCEPTED = ""
"""The ``reason`` of the row that counts accepted envelopes."""
COUNTERS = ("accepted", "refused", "signed_valid", "pdf_both")
PERIOD_WIDTH = {"day": 10, "month": 7, "year": 4}
"""How many characters of the ``YYYY-MM-DD`` day name a report period (the report's
``PERIODS`` formats)."""

Key = tuple[str, str, str]
"""(organization, day, reason)."""

_CHUNK = 500
_table: Table = AdoptionDay.__table__  # type: ignore[assignment]


# -- the rules (shared with the report's reference scan) -----------------------------------------

def _scalar(value: Any) -> Any:
    """A value as the stored canonical JSON holds it (enums as their value, floats as text)."""
    return value if type(value) is str else chain.normalize(value)


def report_facts(report: Any) -> tuple[bool, bool]:
    """(valid specialized signatures, main PDF signed by person and organization) of a
    validation report: ``ValidationReport.to_dict()`` as the pipeline hands it over, or the
    ledger's stored JSON parsed back (the same answer for both). Never raises: anything that is
    not a report says (False, False).

    Valid: the report PASSED without the national-axis interop waiver (a passed
    ``axis_legacy_policy`` check). Both: the ``pdf`` check PASSED and its evidence names the main
    PDF's person and organization signers (Circular 41/2017)."""
    if not isinstance(report, Mapping):
        return False, False
    raw_checks = report.get("checks")
    checks = ([c for c in raw_checks if isinstance(c, Mapping)]
              if isinstance(raw_checks, list | tuple) else [])
    waived = any(_scalar(c.get("check")) == "axis_legacy_policy"
                 and _scalar(c.get("indication")) == "PASSED" for c in checks)
    valid = _scalar(report.get("indication")) == "PASSED" and not waived
    pdf = next((c for c in checks if _scalar(c.get("check")) == "pdf"), None)
    if pdf is None or _scalar(pdf.get("indication")) != "PASSED":
        return valid, False
    evidence = pdf.get("evidence")
    if not isinstance(evidence, Mapping):
        return valid, False
    both = (bool(_scalar(evidence.get("main_person")))
            and bool(_scalar(evidence.get("main_organization"))))
    return valid, both


def _clean(text: str) -> str:
    # PostgreSQL text holds no NUL character; an AMQP account name could.
    return text.replace("\x00", "\ufffd")


def refused_organ(sender: str, account: Any) -> str:
    """Whom a refused packet counts under: its organization, else its broker account."""
    return _clean(sender or f"account:{account or '?'}")


def refusal_reason(reason: Any) -> str:
    """The reason code a refused packet counts under (from its stored refusal)."""
    return _clean(str(reason or ""))


def day_of(at: datetime) -> str:
    """The UTC day of a timestamp, ``YYYY-MM-DD`` (as :func:`hub.ledger.chain.utc_text`
    begins)."""
    if at.tzinfo is UTC and at.year >= 1000:  # as the ledger reads them: the same text
        return at.date().isoformat()
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def stored_report(text: str | None) -> Any:
    """A stored validation report's JSON, parsed for :func:`report_facts` (None stays None).

    orjson where it reads the text, else the standard library (NaN, a lone surrogate: texts the
    hub never stores, parsed as before). The one reading they differ on, an integer beyond 64
    bits (orjson gives a float), gives the same facts: no rule looks at a number beyond its
    truth, which the two share."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one document adds to the rollup when it is inserted."""

    kind: str
    """``envelope`` or ``refused``."""
    digest: str
    key: Key
    signed_valid: bool = False
    pdf_both: bool = False


def contribution(kind: str, digest: str, sender: str, received_text: str,
                 report: Mapping[str, Any] | None,
                 refusal: Mapping[str, Any] | None) -> Contribution | None:
    """The contribution of a document as :meth:`Ledger.write` prepares it (``received_text``:
    its canonical UTC time; ``refusal``: its refusal record); None for other kinds."""
    if kind == ENVELOPE:
        valid, both = report_facts(report)
        return Contribution(kind, digest, (sender, received_text[:10], ACCEPTED), valid, both)
    if kind == REFUSED and refusal is not None:
        return Contribution(kind, digest, (refused_organ(sender, refusal.get("account")),
                                           received_text[:10],
                                           refusal_reason(refusal.get("reason"))))
    return None


class Tally:
    """Counter deltas per (organization, day, reason)."""

    def __init__(self) -> None:
        self.counts: dict[Key, list[int]] = {}

    def add(self, key: Key, accepted: int = 0, refused: int = 0, signed_valid: int = 0,
            pdf_both: int = 0) -> None:
        row = self.counts.get(key)
        if row is None:
            row = self.counts[key] = [0, 0, 0, 0]
        row[0] += accepted
        row[1] += refused
        row[2] += signed_valid
        row[3] += pdf_both

    def add_envelope(self, key: Key, valid: bool, both: bool, sign: int = 1) -> None:
        self.add(key, accepted=sign, signed_valid=sign * valid, pdf_both=sign * both)

    def rows(self) -> list[dict[str, Any]]:
        """The non-zero rows, in key order."""
        return [{"organ_id": k[0], "day": k[1], "reason": k[2],
                 **dict(zip(COUNTERS, v, strict=True))}
                for k, v in sorted(self.counts.items()) if any(v)]


# -- the write path ----------------------------------------------------------------------------

def record(conn: Connection, inserted: Sequence[Contribution],
           stored: Set[tuple[str, str]]) -> None:
    """Add the documents a batch inserts (in order) to the rollup, in the batch's transaction.

    ``stored``: the (digest, kind) pairs of the batch's digests that were in the ledger before
    it (what :meth:`Ledger._append` read to skip stored documents)."""
    tally = Tally()
    envelopes = {c.digest for c in inserted if c.kind == ENVELOPE}
    envelopes.update(d for d, k in stored if k == ENVELOPE)
    take_back: list[str] = []
    for c in inserted:
        if c.kind == ENVELOPE:
            tally.add_envelope(c.key, c.signed_valid, c.pdf_both)
            if (c.digest, REFUSED) in stored:
                take_back.append(c.digest)  # refused in an earlier batch: counted then
        elif c.digest not in envelopes:
            tally.add(c.key, refused=1)
    if take_back:
        _take_back(conn, tally, take_back)
    rows = tally.rows()
    if rows:
        conn.execute(_upsert(conn.dialect.name), rows)


def _take_back(conn: Connection, tally: Tally, digests: list[str]) -> None:
    """Uncount the earlier refusals of bytes now accepted (rare: an operator replay)."""
    for start in range(0, len(digests), _CHUNK):
        for row in conn.execute(select(
                Document.sender, Document.received_at, Document.refusal).where(
                    Document.kind == REFUSED,
                    Document.digest.in_(digests[start:start + _CHUNK]))):
            tally.add(_refused_key(row), refused=-1)


def _refused_key(row: Any) -> Key:
    refusal = json.loads(row.refusal) if row.refusal is not None else {}
    return (refused_organ(row.sender, refusal.get("account")), day_of(row.received_at),
            refusal_reason(refusal.get("reason")))


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        base = postgresql.insert(_table) if dialect == "postgresql" else sqlite.insert(_table)
        stmt = _UPSERTS[dialect] = base.on_conflict_do_update(
            index_elements=["organ_id", "day", "reason"],
            set_={c: _table.c[c] + base.excluded[c] for c in COUNTERS})
    return stmt


# -- recomputing -------------------------------------------------------------------------------

def recompute(conn: Connection) -> Tally:
    """The rollup from the documents themselves (every envelope's stored report parsed)."""
    tally = Tally()
    replayed = set(conn.scalars(select(Document.digest).where(
        Document.kind == ENVELOPE,
        Document.digest.in_(select(Document.digest).where(Document.kind == REFUSED)))))
    for refused in conn.execute(select(Document.digest, Document.sender, Document.received_at,
                                       Document.refusal).where(Document.kind == REFUSED)):
        if refused.digest not in replayed:
            tally.add(_refused_key(refused), refused=1)
    for row in conn.execute(select(Document.sender, Document.received_at, Document.report)
                            .where(Document.kind == ENVELOPE)
                            .execution_options(yield_per=2000)):
        valid, both = report_facts(stored_report(row.report))
        tally.add_envelope((row.sender, day_of(row.received_at), ACCEPTED), valid, both)
    return tally


def rebuild(conn: Connection) -> int:
    """Replace the rollup with :func:`recompute` (in the caller's transaction); returns rows."""
    rows = recompute(conn).rows()
    conn.execute(delete(AdoptionDay))
    for start in range(0, len(rows), 5000):
        conn.execute(insert(AdoptionDay), rows[start:start + 5000])
    return len(rows)


def stored_rows(conn: Connection) -> dict[Key, tuple[int, ...]]:
    """The rollup as stored (rows whose counters are all zero left out)."""
    out: dict[Key, tuple[int, ...]] = {}
    for row in conn.execute(select(_table)):
        counts = tuple(int(getattr(row, c)) for c in COUNTERS)
        if any(counts):
            out[(row.organ_id, row.day, row.reason)] = counts
    return out


def differences(conn: Connection) -> list[str]:
    """Where the stored rollup differs from :func:`recompute`: one line per (organization,
    day, reason), empty when they agree."""
    expected = {(r["organ_id"], r["day"], r["reason"]): tuple(r[c] for c in COUNTERS)
                for r in recompute(conn).rows()}
    found = stored_rows(conn)
    zero = (0, 0, 0, 0)
    out = []
    for key in sorted(set(expected) | set(found)):
        have, want = found.get(key, zero), expected.get(key, zero)
        if have != want:
            organ, day, reason = key
            out.append(f"{organ} {day} {reason or 'accepted'}: stored {have}, the documents"
                       f" give {want} ({', '.join(COUNTERS)})")
    return out


# -- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PeriodRow:
    organ_id: str
    period: str
    reason: str
    accepted: int
    refused: int
    signed_valid: int
    pdf_both: int


def read(conn: Connection, *, since_day: str | None, until_day: str | None,
         period: str) -> Iterable[PeriodRow]:
    """The rollup summed per organization, period and reason over the days in
    [``since_day``, ``until_day``) (``YYYY-MM-DD``; None: unbounded)."""
    width = PERIOD_WIDTH[period]
    # Literal arguments: PostgreSQL matches the GROUP BY expression to the selected one only
    # when both are the same text (two bind parameters would not be).
    when = func.substr(AdoptionDay.day, literal_column("1"), literal_column(str(width)))
    stmt = select(AdoptionDay.organ_id, when.label("period"), AdoptionDay.reason,
                  *(func.sum(_table.c[c]).label(c) for c in COUNTERS)).group_by(
        AdoptionDay.organ_id, when, AdoptionDay.reason)
    if since_day is not None:
        stmt = stmt.where(AdoptionDay.day >= since_day)
    if until_day is not None:
        stmt = stmt.where(AdoptionDay.day < until_day)
    for row in conn.execute(stmt):
        yield PeriodRow(row.organ_id, row.period, row.reason,
                        *(int(getattr(row, c) or 0) for c in COUNTERS))

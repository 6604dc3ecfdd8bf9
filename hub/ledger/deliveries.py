"""The per-recipient delivery state, ``ledger_deliveries``: derived from the chain, and checked.

One row per (document digest, recipient): the state its latest entry gave it. The rule lives
here once, and :meth:`hub.ledger.Ledger.write` and :func:`recompute` both follow it:

- an accepted envelope (a document of kind ``envelope``) makes each of its recipients
  ``pending``, at its ``received_at`` and its position;
- an event of a kind in :data:`DELIVERY_KINDS` that names a digest and an organization moves
  that pair to the event's kind, at its ``at`` and its position;
- the entry latest in the chain wins (the ledger is written in ``seq`` order).

The table is not chained: a search by recipient reads it (the console's document search,
:mod:`hub.ledger.search`; :meth:`hub.ledger.Ledger.documents` for an organization), and
:meth:`hub.ledger.Ledger.deliveries` answers from it. So a row deleted,
added or edited by hand would hide a document from its recipient's search, or show it delivered
when it was not, while every chained entry still verifies. ``hub ledger verify`` therefore
compares it with :func:`recompute` (:func:`differences`), as it does the adoption rollup, and
``hub ledger migrate --rebuild-deliveries`` rebuilds it (:func:`rebuild`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from hub.ledger.models import Delivery, Document, Event
from hub.ledger.records import EventKind

DELIVERY_KINDS = frozenset({
    EventKind.ROUTED, EventKind.DELIVERED, EventKind.STATUS_RECEIVED, EventKind.RECALLED,
    EventKind.DEAD_LETTERED, EventKind.REPLAYED, EventKind.DISCARDED, EventKind.RETRY_SCHEDULED,
    EventKind.AXIS_SENT,
})
"""Event kinds that move one recipient's delivery state (the others concern the whole
document)."""

PENDING = "pending"
ENVELOPE = "envelope"

State = tuple[int, str, datetime | Any]
"""(position, state, time) of the entry that set a pair's state (the time as stored, when read
``raw``)."""


def recompute(conn: Connection, *, raw: bool = False) -> dict[tuple[str, str], State]:
    """Every (digest, recipient) pair's state as the chain gives it, from the chained rows
    themselves (each envelope's recipient list, each delivery event).

    ``raw``: times as the driver returns the stored values, without the column type's
    conversion (a SQLite text, a PostgreSQL timestamp) — what :func:`differences` compares
    with :func:`stored` read the same way: the writer stores the very same value in both
    places, and a million rows' conversions cost seconds of ``hub ledger verify``."""
    out: dict[tuple[str, str], State] = {}
    kinds = ", ".join(f"'{k}'" for k in sorted(str(k) for k in DELIVERY_KINDS))
    if raw:
        docs: Any = conn.exec_driver_sql(
            f"SELECT seq, digest, recipients, received_at FROM ledger_documents"  # noqa: S608
            f" WHERE kind = '{ENVELOPE}'")
        events: Any = conn.exec_driver_sql(
            f"SELECT seq, kind, digest, organ_id, at FROM ledger_events"  # noqa: S608
            f" WHERE kind IN ({kinds}) AND digest IS NOT NULL AND organ_id IS NOT NULL")
    else:
        docs = conn.execute(select(Document.seq, Document.digest, Document.recipients,
                                   Document.received_at).where(Document.kind == ENVELOPE)
                            .execution_options(yield_per=5000))
        events = conn.execute(select(Event.seq, Event.kind, Event.digest, Event.organ_id,
                                     Event.at)
                              .where(Event.kind.in_(list(DELIVERY_KINDS)),
                                     Event.digest.is_not(None), Event.organ_id.is_not(None))
                              .execution_options(yield_per=5000))
    get = out.get
    for seq, digest, text, received_at in docs:
        recipients = orjson.loads(text)
        if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
            raise ValueError("a recipient list the hub never writes")
        seq = int(seq)
        for organ in recipients:
            key = (digest, organ)
            have = get(key)
            if have is None or have[0] < seq:
                out[key] = (seq, PENDING, received_at)
    for seq, kind, digest, organ, at in events:
        if digest and organ:  # the writer skips empty ones as well
            seq = int(seq)
            key = (digest, organ)
            have = get(key)
            if have is None or have[0] < seq:
                out[key] = (seq, kind, at)
    return out


def stored(conn: Connection, *, raw: bool = False) -> dict[tuple[str, str], State]:
    """The table as stored (``raw``: as :func:`recompute` reads it)."""
    rows: Any = (conn.exec_driver_sql(
        "SELECT digest, organ_id, state, updated_at, updated_seq FROM ledger_deliveries")
        if raw else conn.execute(select(Delivery.digest, Delivery.organ_id, Delivery.state,
                                        Delivery.updated_at, Delivery.updated_seq)
                                 .execution_options(yield_per=5000)))
    return {(digest, organ): (int(seq), state, at) for digest, organ, state, at, seq in rows}


def differences(conn: Connection) -> tuple[int, str]:
    """How many pairs the stored table holds otherwise than :func:`recompute` gives them, and
    the first of them described; ``(0, "")`` when they agree."""
    expected = recompute(conn, raw=True)
    found = stored(conn, raw=True)
    differ = [key for key in expected.keys() | found.keys()
              if found.get(key) != expected.get(key)]
    if not differ:
        return 0, ""
    digest, organ = min(differ)
    return len(differ), (f"{digest[:16]}… for {organ}: stored {_shown(found.get((digest, organ)))},"
                         f" the chain gives {_shown(expected.get((digest, organ)))}")


def _shown(state: State | None) -> str:
    if state is None:
        return "no row"
    seq, name, _at = state
    return f"{name!r} from row {seq}"


def rebuild(conn: Connection) -> int:
    """Replace the table with :func:`recompute` (in the caller's transaction); returns rows."""
    rows: list[dict[str, Any]] = [
        {"digest": digest, "organ_id": organ, "state": state, "updated_at": at,
         "updated_seq": seq}
        for (digest, organ), (seq, state, at) in sorted(recompute(conn).items())]
    conn.execute(delete(Delivery))
    for start in range(0, len(rows), 5000):
        conn.execute(insert(Delivery), rows[start:start + 5000])
    return len(rows)

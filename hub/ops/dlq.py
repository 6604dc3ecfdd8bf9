"""Dead-letter tooling for operators: list, show, replay, discard.

The dead-letter queue holds the exact bytes the hub refused, with the reason in headers
(``x-hub-reason``, Vietnamese and English texts, first-failure time, attempts, where it was
going). Listing does not consume: messages are taken without acknowledgement and given back
when the listing channel closes. Replay republishes to the intake queue through the full
validation again, marked with who replayed it; discard requires a note. Both are recorded in
the ledger with the operator's name (Circulars 01/2019 and 02/2019/TT-BNV: the clerk's actions
on incoming documents are part of the record).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.broker import Connection, Delivery, Outgoing, connect
from hub.messages import Headers
from hub.reasons import Reason

H_REPLAYED_BY = Headers.REPLAYED_BY
H_REPLAY_NOTE = Headers.REPLAY_NOTE


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message as operators see it."""

    id: str
    reason: str
    sender: str
    recipient: str
    first_failure: str
    attempts: int
    routing: str
    size: int
    headers: dict[str, Any]

    @classmethod
    def of(cls, d: Delivery) -> DeadLetter:
        h = dict(d.headers)
        death = h.get("x-death")
        reason = str(h.get(Headers.REASON) or "")
        if not reason and death:
            reason = f"BROKER_{str(death[0].get('reason', 'dead-lettered')).upper()}"
        return cls(
            id=str(d.message_id or h.get(Headers.DIGEST) or d.tag),
            reason=reason,
            sender=str(h.get(Headers.SENDER) or ""),
            recipient=str(h.get(Headers.RECIPIENT) or ""),
            first_failure=str(h.get(Headers.FIRST_FAILURE) or ""),
            attempts=int(h.get(Headers.ATTEMPTS) or 0),
            routing=str(h.get(Headers.ORIGINAL_ROUTING) or f"{d.exchange}/{d.routing_key}"),
            size=len(d.body),
            headers={k: v for k, v in h.items() if isinstance(v, str | int | float | bool)},
        )

    def age(self, now: datetime) -> timedelta | None:
        try:
            return now - datetime.fromisoformat(self.first_failure)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters an operator means (all given conditions must hold)."""

    ids: tuple[str, ...] = ()
    reason: str | None = None
    sender: str | None = None
    recipient: str | None = None
    older_than: timedelta | None = None

    def matches(self, dl: DeadLetter, now: datetime) -> bool:
        if self.ids and not any(dl.id == i or dl.id.startswith(i) for i in self.ids):
            return False
        if self.reason and dl.reason != self.reason and dl.headers.get(Headers.FIRST_REASON) != self.reason:
            return False
        if self.sender and dl.sender != self.sender:
            return False
        if self.recipient and self.recipient not in (dl.recipient, dl.routing):
            return False
        if self.older_than is not None:
            age = dl.age(now)
            if age is None or age < self.older_than:
                return False
        return True


def parse_age(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"age {text!r}: use a number followed by s, m, h or d") from None


def browse(conn: Connection, queue: str) -> list[tuple[Delivery, DeadLetter]]:
    """Every message in ``queue``, unacknowledged (given back when the channel closes)."""
    out = []
    while (d := conn.get(queue)) is not None:
        out.append((d, DeadLetter.of(d)))
    return out


def replay(conn: Connection, queue: str, intake: str, flt: Filter, *, actor: str, note: str,
           user: str | None,
           record: Callable[[list[DeadLetter], str, str], None],
           progress: Callable[[int, int], None] | None = None,
           now: datetime | None = None) -> list[DeadLetter]:
    """Republish matching dead letters to the intake (full validation again), then ack them.

    Order: publish and confirm, record in the ledger, then ack — a crash leaves them in the
    dead-letter queue, never lost (a replay twice is caught as a duplicate by the pipeline).
    """
    at = now or datetime.now(UTC)
    items = browse(conn, queue)
    chosen = [(d, dl) for d, dl in items if flt.matches(dl, at)]
    settler = conn.settler()
    done: list[DeadLetter] = []
    for start in range(0, len(chosen), 100):
        part = chosen[start:start + 100]
        msgs = []
        for d, _dl in part:
            headers = {k: v for k, v in d.headers.items()
                       if not k.startswith(("x-death", "x-first-death", "x-last-death",
                                            "x-delivery-count", Headers.ATTEMPTS,
                                            Headers.FIRST_FAILURE, Headers.REASON))}
            headers[H_REPLAYED_BY] = actor
            headers[H_REPLAY_NOTE] = note[:500]
            # Republished under the operator tool's login (a trusted one): the original
            # publisher stays in x-hub-original-user and is checked again by the pipeline.
            msgs.append(Outgoing("", intake, d.body, headers, message_id=d.message_id,
                                 content_type="application/xml", user_id=user))
        conn.publish(msgs)
        record([dl for _d, dl in part], actor, note)
        settler.ack([d.tag for d, _dl in part])
        done.extend(dl for _d, dl in part)
        if progress is not None:
            progress(len(done), len(chosen))
    return done


def discard(conn: Connection, queue: str, flt: Filter, *, actor: str, note: str,
            record: Callable[[list[DeadLetter], str, str], None],
            now: datetime | None = None) -> list[DeadLetter]:
    if not note.strip():
        raise ValueError("discarding needs a note saying why")
    at = now or datetime.now(UTC)
    chosen = [(d, dl) for d, dl in browse(conn, queue) if flt.matches(dl, at)]
    if chosen:
        record([dl for _d, dl in chosen], actor, note)
        conn.settler().ack([d.tag for d, _dl in chosen])
    return [dl for _d, dl in chosen]


# -- CLI ------------------------------------------------------------------------------------
def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        ids=tuple(getattr(args, "ids", ()) or ()),
        reason=args.reason, sender=args.sender, recipient=args.recipient,
        older_than=parse_age(args.older_than) if args.older_than else None,
    )


def _context(args: argparse.Namespace) -> tuple[Any, Any, Connection]:
    from hub.app import load_directory, topology_for
    from hub.config import load_settings

    settings = load_settings(args.config)
    b = settings.broker
    topo = topology_for(settings, load_directory(settings))
    return settings, topo, connect(b.url, "edxml-hub dlq")


def _recorder(settings: Any, kind: str) -> Callable[[list[DeadLetter], str, str], None]:
    from hub.app import load_keystore, open_ledger
    from hub.ledger import EventIn, EventKind

    def record(items: list[DeadLetter], actor: str, note: str) -> None:
        ledger = open_ledger(settings, load_keystore(settings).signer(settings.hub.operator_organ_id))
        at = datetime.now(UTC)
        try:
            ledger.write([], [
                EventIn(EventKind(kind), dl.id, at, digest=str(dl.headers.get(Headers.DIGEST) or "")
                        or None, organ_id=dl.sender or None, reason=dl.reason or None, actor=actor,
                        detail={"note": note[:500], "reason": dl.reason})
                for dl in items])
        finally:
            ledger.close()

    return record


def _print_table(rows: Iterable[DeadLetter], as_json: bool) -> None:
    rows = list(rows)
    if as_json:
        print(json.dumps([{"id": r.id, "reason": r.reason, "sender": r.sender,
                           "recipient": r.recipient, "first_failure": r.first_failure,
                           "attempts": r.attempts, "routing": r.routing, "bytes": r.size}
                          for r in rows], ensure_ascii=False, indent=2))
        return
    print(f"{'id':28} {'reason':34} {'sender':16} {'attempts':>8}  first failure")
    for r in rows:
        print(f"{r.id[:28]:28} {r.reason[:34]:34} {r.sender[:16]:16} {r.attempts:>8}  {r.first_failure}")
    print(f"{len(rows)} dead letter(s)")


def cmd_ls(args: argparse.Namespace) -> int:
    _settings, topo, conn = _context(args)
    try:
        flt, now = _filter(args), datetime.now(UTC)
        _print_table((dl for _d, dl in browse(conn, topo.names.dlq) if flt.matches(dl, now)),
                     args.json)
    finally:
        conn.close()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    settings, topo, conn = _context(args)
    try:
        flt = Filter(ids=(args.id,))
        found = [dl for _d, dl in browse(conn, topo.names.dlq) if flt.matches(dl, datetime.now(UTC))]
    finally:
        conn.close()
    if not found:
        print(f"hub: no dead letter with id {args.id}", file=sys.stderr)
        return 1
    dl = found[0]
    try:
        reason = Reason(dl.reason)
        vi, en, action = reason.vi, reason.en, reason.info.action
    except ValueError:
        vi = str(dl.headers.get(Headers.REASON_TEXT_VI, ""))
        en = str(dl.headers.get(Headers.REASON_TEXT_EN, ""))
        action = "Unknown reason code: look at the headers."
    print(f"id:            {dl.id}")
    print(f"reason:        {dl.reason}")
    print(f"  tiếng Việt:  {vi}")
    print(f"  English:     {en}")
    print(f"  action:      {action}")
    print(f"detail:        {dl.headers.get('x-hub-detail', '')}")
    print(f"sender:        {dl.sender}")
    print(f"was going to:  {dl.routing}")
    print(f"first failure: {dl.first_failure}  attempts: {dl.attempts}  size: {dl.size} bytes")
    digest = dl.headers.get(Headers.DIGEST)
    if digest:
        from hub.app import open_ledger

        ledger = open_ledger(settings, None)
        try:
            print("ledger:")
            for e in ledger.events(digest=str(digest)):
                print(f"  {e.at}  {e.kind.value:16} {e.organ_id or '':16} {e.reason or ''}")
        finally:
            ledger.close()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not (flt.ids or flt.reason or flt.sender or flt.recipient or flt.older_than or args.all):
        print("hub: say which dead letters to replay (ids, a filter, or --all)", file=sys.stderr)
        return 2
    settings, topo, conn = _context(args)

    def bar(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        print(f"\rreplaying [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
              file=sys.stderr, flush=True)

    try:
        from hub.app import broker_user

        done = replay(conn, topo.names.dlq, topo.names.intake, flt, actor=args.actor,
                      user=broker_user(settings.broker.url),
                      note=args.note or "", record=_recorder(settings, "replayed"), progress=bar)
    finally:
        conn.close()
    print(file=sys.stderr)
    print(f"replayed {len(done)} message(s) through full validation, as {args.actor}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not flt.ids and not flt.reason:
        print("hub: say which dead letters to discard (ids or --reason)", file=sys.stderr)
        return 2
    settings, topo, conn = _context(args)
    try:
        done = discard(conn, topo.names.dlq, flt, actor=args.actor, note=args.note,
                       record=_recorder(settings, "discarded"))
    finally:
        conn.close()
    print(f"discarded {len(done)} message(s), recorded as {args.actor}: {args.note}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("dlq", help="dead letters: list, show, replay, discard")
    dsub = p.add_subparsers(dest="dlq_command", required=True)

    def filters(q: argparse.ArgumentParser) -> None:
        q.add_argument("--reason", default=None)
        q.add_argument("--sender", default=None)
        q.add_argument("--recipient", default=None)
        q.add_argument("--older-than", default=None, help="e.g. 30m, 2h, 1d")

    q = dsub.add_parser("ls", help="list dead letters (does not consume them)")
    filters(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_ls)
    q = dsub.add_parser("show", help="one dead letter: reason, detail, ledger history")
    q.add_argument("id")
    q.set_defaults(func=cmd_show)
    q = dsub.add_parser("replay", help="send dead letters through full validation again")
    q.add_argument("ids", nargs="*")
    filters(q)
    q.add_argument("--all", action="store_true")
    q.add_argument("--actor", default=getpass.getuser())
    q.add_argument("--note", default="")
    q.set_defaults(func=cmd_replay)
    q = dsub.add_parser("discard", help="drop dead letters for good (a note is required)")
    q.add_argument("ids", nargs="*")
    filters(q)
    q.add_argument("--actor", default=getpass.getuser())
    q.add_argument("--note", required=True)
    q.set_defaults(func=cmd_discard)

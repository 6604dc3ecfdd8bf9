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
from collections.abc import Callable, Iterable, Sequence
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
            attempts=_count(h.get(Headers.ATTEMPTS)),
            routing=str(h.get(Headers.ORIGINAL_ROUTING) or f"{d.exchange}/{d.routing_key}"),
            size=len(d.body),
            headers={k: v for k, v in h.items() if isinstance(v, str | int | float | bool)},
        )

    def age(self, now: datetime) -> timedelta | None:
        """How long ago it first failed (None: no time the hub can read). Headers are data
        from the broker: a time without a zone is read as UTC, anything else unreadable or
        out of range is no age, never an error."""
        try:
            first = datetime.fromisoformat(self.first_failure)
            if first.tzinfo is None:
                first = first.replace(tzinfo=UTC)
            return now - first
        except (ValueError, TypeError, OverflowError):
            return None


def _count(value: Any) -> int:
    """A header's count (attempts), 0 when it is not a whole number."""
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters an operator means (all given conditions must hold)."""

    ids: tuple[str, ...] = ()
    """Dead-letter ids, or leading parts of them (see :meth:`prefix_only`) unless
    :attr:`exact`."""
    reason: str | None = None
    sender: str | None = None
    recipient: str | None = None
    older_than: timedelta | None = None
    exact: bool = False
    """Only whole ids: ``doc-1`` names ``doc-1`` and never ``doc-10``. The console acts on the
    one letter a person looked at; ``hub dlq`` takes leading parts (confirmed with ``--yes``)."""

    def matches(self, dl: DeadLetter, now: datetime) -> bool:
        if self.ids and not (dl.id in self.ids if self.exact else
                             any(dl.id.startswith(i) for i in self.ids)):
            return False
        if self.reason and dl.reason != self.reason and dl.headers.get(Headers.FIRST_REASON) != self.reason:
            return False
        if self.sender and dl.sender != self.sender:
            return False
        if self.recipient and self.recipient not in (*dl.recipient.split(","), dl.routing):
            return False
        if self.older_than is not None:
            age = dl.age(now)
            if age is None or age < self.older_than:
                return False
        return True

    def prefix_only(self, chosen: Iterable[DeadLetter]) -> list[DeadLetter]:
        """The chosen dead letters that no given id names exactly (matched by a prefix only)."""
        exact = set(self.ids)
        return [dl for dl in chosen if dl.id not in exact] if self.ids else []


def parse_age(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1h30m`` (see :func:`hub.ops.args.parse_duration`)."""
    from hub.ops.args import parse_duration

    return parse_duration(text)


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
           now: datetime | None = None,
           confirm: Callable[[list[DeadLetter]], bool] | None = None) -> list[DeadLetter]:
    """Republish matching dead letters to the intake (full validation again), then ack them.

    Order: publish and confirm, record in the ledger, then ack — a crash leaves them in the
    dead-letter queue, never lost (a replay twice is caught as a duplicate by the pipeline).
    """
    at = now or datetime.now(UTC)
    items = browse(conn, queue)
    chosen = [(d, dl) for d, dl in items if flt.matches(dl, at)]
    if confirm is not None and chosen and not confirm([dl for _d, dl in chosen]):
        return []
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
            now: datetime | None = None,
            confirm: Callable[[list[DeadLetter]], bool] | None = None) -> list[DeadLetter]:
    if not note.strip():
        raise ValueError("discarding needs a note saying why")
    at = now or datetime.now(UTC)
    chosen = [(d, dl) for d, dl in browse(conn, queue) if flt.matches(dl, at)]
    if confirm is not None and chosen and not confirm([dl for _d, dl in chosen]):
        return []
    if chosen:
        record([dl for _d, dl in chosen], actor, note)
        conn.settler().ack([d.tag for d, _dl in chosen])
    return [dl for _d, dl in chosen]


# -- CLI ------------------------------------------------------------------------------------
_SHORT_OPTIONS = frozenset({"-h", "-y"})


def protect_ids(argv: Sequence[str]) -> list[str]:
    """``argv`` with the dead-letter ids that begin with ``-`` passed as ``--id=…``.

    Ids are message ids, URL-safe base64: one in 64 begins with ``-``, which argparse takes
    for an option ("the following arguments are required: id"). After ``dlq show``,
    ``replay`` or ``discard``, a token that begins with one ``-``, is at least three characters
    long and is none of their short options is such an id (up to a literal ``--``)."""
    out = list(argv)
    try:
        start = out.index("dlq") + 2
    except ValueError:
        return out
    if start - 1 >= len(out) or out[start - 1] not in ("show", "replay", "discard"):
        return out
    for i in range(start, len(out)):
        word = out[i]
        if word == "--":
            break
        if (word.startswith("-") and not word.startswith("--") and len(word) >= 3
                and word not in _SHORT_OPTIONS and "=" not in word):
            out[i] = f"--id={word}"
    return out


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        ids=(*(getattr(args, "ids", ()) or ()), *(getattr(args, "dash_ids", ()) or ())),
        reason=args.reason, sender=args.sender, recipient=args.recipient,
        older_than=args.older_than,
    )


def _context(args: argparse.Namespace) -> tuple[Any, Any, Connection]:
    from hub.app import load_directory, topology_for
    from hub.config import load_settings

    settings = load_settings(args.config)
    b = settings.broker
    topo = topology_for(settings, load_directory(settings))
    return settings, topo, connect(b.url, "edxml-hub dlq")


def action_recorder(settings: Any, kind: str) -> Callable[[list[DeadLetter], str, str], None]:
    """Records an operator's replay or discard (``kind``) of dead letters in the ledger, with
    the person as actor: the CLI and the console keep one audit trail."""
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


def _as_dict(dl: DeadLetter) -> dict[str, Any]:
    return {"id": dl.id, "reason": dl.reason, "sender": dl.sender, "recipient": dl.recipient,
            "first_failure": dl.first_failure, "attempts": dl.attempts, "routing": dl.routing,
            "bytes": dl.size}


def _print_table(rows: Iterable[DeadLetter], as_json: bool) -> None:
    rows = list(rows)
    if as_json:
        print(json.dumps([_as_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("id", "left"), ("reason", "left"), ("sender", "left"),
                            ("attempts", "right"), ("first failure", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r.id, r.reason, r.sender, str(r.attempts), r.first_failure)
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    console.print(f"{len(rows)} dead letter(s)", highlight=False)


def _confirmer(flt: Filter, verb: str, assume_yes: bool) -> Callable[[list[DeadLetter]], bool]:
    """Ids matched only by a prefix act on nothing until confirmed (``--yes`` or a "y" typed
    on a terminal); full ids and filters need no confirmation."""

    def confirm(chosen: list[DeadLetter]) -> bool:
        loose = flt.prefix_only(chosen)
        if not loose or assume_yes:
            return True
        shown = ", ".join(dl.id for dl in loose[:3]) + (" …" if len(loose) > 3 else "")
        if not sys.stdin.isatty():
            raise DlqUsageError(f"{len(loose)} dead letter(s) matched by an id prefix only "
                                f"({shown}): give the full ids or add --yes")
        answer = input(f"{verb} {len(chosen)} dead letter(s), {len(loose)} matched by an id "
                       f"prefix only ({shown})? [y/N] ")
        return answer.strip().lower() in {"y", "yes"}

    return confirm


class DlqUsageError(Exception):
    """A dead-letter command that cannot go on as asked (printed as one line, exit 2)."""


def _usage(message: str) -> int:
    print(f"hub: {message}", file=sys.stderr)
    return 2


def cmd_ls(args: argparse.Namespace) -> int:
    _settings, topo, conn = _context(args)
    try:
        flt, now = _filter(args), datetime.now(UTC)
        _print_table((dl for _d, dl in browse(conn, topo.names.dlq) if flt.matches(dl, now)),
                     args.json)
    finally:
        conn.close()
    return 0


def _reason_texts(dl: DeadLetter) -> tuple[str, str, str]:
    try:
        reason = Reason(dl.reason)
        return reason.vi, reason.en, reason.info.action
    except ValueError:
        return (str(dl.headers.get(Headers.REASON_TEXT_VI, "")),
                str(dl.headers.get(Headers.REASON_TEXT_EN, "")),
                "Unknown reason code: look at the headers.")


def cmd_show(args: argparse.Namespace) -> int:
    args.id = args.id or args.dash_id
    if not args.id:
        return _usage("dlq show: give the dead letter's id (from hub dlq ls)")
    settings, topo, conn = _context(args)
    try:
        flt = Filter(ids=(args.id,))
        found = [dl for _d, dl in browse(conn, topo.names.dlq) if flt.matches(dl, datetime.now(UTC))]
    finally:
        conn.close()
    if not found:
        print(f"hub: no dead letter with id {args.id}", file=sys.stderr)
        return 1
    exact = [dl for dl in found if dl.id == args.id]
    if not exact and len(found) > 1:
        shown = ", ".join(dl.id for dl in found[:3]) + (" …" if len(found) > 3 else "")
        return _usage(f"id prefix {args.id!r} matches {len(found)} dead letters ({shown}): "
                      "give more of the id")
    dl = (exact or found)[0]
    vi, en, action = _reason_texts(dl)
    digest = dl.headers.get(Headers.DIGEST)
    events: list[Any] = []
    if digest:
        from hub.app import open_ledger

        ledger = open_ledger(settings, None)
        try:
            events = list(ledger.events(digest=str(digest)))
        finally:
            ledger.close()
    if args.json:
        print(json.dumps({**_as_dict(dl), "reason_vi": vi, "reason_en": en, "action": action,
                          "detail": str(dl.headers.get(Headers.DETAIL, "")),
                          "ledger": [{"at": str(e.at), "kind": e.kind.value, "organ_id": e.organ_id,
                                      "reason": e.reason} for e in events]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"id:            {dl.id}")
    print(f"reason:        {dl.reason}")
    print(f"  tiếng Việt:  {vi}")
    print(f"  English:     {en}")
    print(f"  action:      {action}")
    print(f"detail:        {dl.headers.get(Headers.DETAIL, '')}")
    print(f"sender:        {dl.sender}")
    print(f"was going to:  {dl.routing}")
    print(f"first failure: {dl.first_failure}  attempts: {dl.attempts}  size: {dl.size} bytes")
    if digest:
        print("ledger:")
        for e in events:
            print(f"  {e.at}  {e.kind.value:16} {e.organ_id or '':16} {e.reason or ''}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not (flt.ids or flt.reason or flt.sender or flt.recipient or flt.older_than or args.all):
        return _usage("say which dead letters to replay (ids, a filter, or --all)")
    settings, topo, conn = _context(args)
    from rich.progress import Progress

    try:
        from hub.app import broker_user

        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("replaying", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            done = replay(conn, topo.names.dlq, topo.names.intake, flt, actor=args.actor,
                          user=broker_user(settings.broker.url), note=args.note or "",
                          record=action_recorder(settings, "replayed"), progress=progress,
                          confirm=_confirmer(flt, "replay", args.yes))
    except DlqUsageError as exc:
        return _usage(str(exc))
    finally:
        conn.close()
    print(f"replayed {len(done)} message(s) through full validation, as {args.actor}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not flt.ids and not flt.reason:
        return _usage("say which dead letters to discard (ids or --reason)")
    settings, topo, conn = _context(args)
    try:
        done = discard(conn, topo.names.dlq, flt, actor=args.actor, note=args.note,
                       record=action_recorder(settings, "discarded"),
                       confirm=_confirmer(flt, "discard", args.yes))
    except DlqUsageError as exc:
        return _usage(str(exc))
    finally:
        conn.close()
    print(f"discarded {len(done)} message(s), recorded as {args.actor}: {args.note}")
    return 0


def register(sub: Any) -> None:
    from hub.ops.args import duration, nonblank, reason_code

    p = sub.add_parser("dlq", help="dead letters: list, show, replay, discard")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    def filters(q: argparse.ArgumentParser) -> None:
        q.add_argument("--reason", type=reason_code, default=None,
                       help="reason code of the catalogue (e.g. CERT_REVOKED) or BROKER_*")
        q.add_argument("--sender", default=None, help="organization code of the sender")
        q.add_argument("--recipient", default=None, help="organization code it was going to")
        q.add_argument("--older-than", type=duration, default=None,
                       help="first failure at least this long ago: 30m, 2h, 1d, 1h30m")

    def ids(q: argparse.ArgumentParser) -> None:
        q.add_argument("ids", nargs="*",
                       help="dead-letter ids (from dlq ls); a leading part needs --yes")
        q.add_argument("--id", dest="dash_ids", action="append", default=[],
                       help=argparse.SUPPRESS)  # an id beginning with "-" (protect_ids)
        q.add_argument("--yes", "-y", action="store_true",
                       help="act on ids matched by a prefix without asking")
        q.add_argument("--actor", default=getpass.getuser(),
                       help="operator recorded in the ledger (default: your login)")

    q = dsub.add_parser("ls", help="list dead letters (does not consume them)")
    filters(q)
    q.add_argument("--json", action="store_true", help="print the list as JSON")
    q.set_defaults(func=cmd_ls)
    q = dsub.add_parser("show", help="one dead letter: reason, detail, ledger history")
    q.add_argument("id", nargs="?",
                   help="the dead letter's id, or enough of its beginning to be unique")
    q.add_argument("--id", dest="dash_id", default=None,
                   help=argparse.SUPPRESS)  # an id beginning with "-" (protect_ids)
    q.add_argument("--json", action="store_true", help="print it as JSON")
    q.set_defaults(func=cmd_show)
    q = dsub.add_parser("replay", help="send dead letters through full validation again")
    ids(q)
    filters(q)
    q.add_argument("--all", action="store_true", help="every dead letter")
    q.add_argument("--note", default="", help="why, recorded in the ledger")
    q.set_defaults(func=cmd_replay)
    q = dsub.add_parser("discard", help="drop dead letters for good (a note is required)")
    ids(q)
    filters(q)
    q.add_argument("--note", required=True, type=nonblank, help="why, recorded in the ledger")
    q.set_defaults(func=cmd_discard)

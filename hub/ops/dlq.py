"""Dead-letter tooling for operators: list, show, replay, discard.

The dead-letter queue holds the exact bytes the hub refused, with the reason in headers
(``x-hub-reason``, Vietnamese and English texts, first-failure time, attempts, where it was
going), and what the broker dead-lettered itself (``x-death``: an agency's system rejected a
delivery, a message expired, a queue's delivery limit). Listing does not consume: messages are
taken without acknowledgement and given back when the listing channel closes (on a quorum queue
each listing counts as a delivery: docs/OPERATIONS.md, "Dead letters", for RabbitMQ 4's default
delivery limit).

Replay sends each letter back to the queue it was dead-lettered from, the only place where it
means what it meant (:func:`send_back`): what the intake refused goes through full validation
again, as published by the account that published it; a delivery an organization's system
rejected goes back to its inbox or status queue, a letter the axis connector parked back to the
gateway queue, untouched. A letter whose way back cannot be established stays in the queue and
is named. Discard requires a note. Both are recorded in the ledger with the operator's name
(Circulars 01/2019 and 02/2019/TT-BNV: the clerk's actions on incoming documents are part of
the record), the ledger being checked before the first letter goes out.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.broker import Connection, Delivery, Outgoing, connect
from hub.errors import ConfigurationError, HubError
from hub.messages import Headers
from hub.reasons import Reason
from hub.topology import AXIS_INBOX_KEY, AXIS_STATUS_KEY, ENVELOPE_KEY, STATUS_KEY, Names

EXIT_UNAVAILABLE = 4
"""The ledger went away after letters went out (the hub CLI's code for an unavailable service)."""

H_REPLAYED_BY = Headers.REPLAYED_BY
H_REPLAY_NOTE = Headers.REPLAY_NOTE

_HUB_HEADER = "x-hub-"
_BROKER_HEADERS = ("x-death", "x-first-death", "x-last-death", "x-delivery-count")
"""What RabbitMQ writes on a message it dead-letters or delivers from a quorum queue."""
_DEAD_LETTER_HEADERS = frozenset({
    Headers.REASON, Headers.REASON_TEXT_VI, Headers.REASON_TEXT_EN, Headers.DETAIL,
    Headers.FIRST_REASON, Headers.FIRST_FAILURE, Headers.ATTEMPTS, Headers.ORIGINAL_ROUTING})
"""What the hub adds when it dead-letters a message itself (the pipeline, the axis connector)."""
_DELIVERY_QUEUE = re.compile(r"\.(?:org\.[0-9A-Z][0-9A-Z.]{0,34}\.(?:inbox|status)|gateway\.axis)\Z")
"""Queues only the hub publishes to (agencies may not write to the deliver exchange): a letter
the broker dead-lettered from one of them carries the hub's own delivery headers."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _deaths(headers: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The broker's ``x-death`` entries, the death that brought the letter here first; None
    when there are none: the letter was published to the dead-letter exchange by the hub itself
    (only the hub's login may write there; the hub drops ``x-death`` from what it dead-letters).
    """
    if "x-death" not in headers:
        return None
    value = headers["x-death"]
    if not isinstance(value, list | tuple):
        return []
    return [e for e in value if isinstance(e, Mapping)]


def _when(value: Any) -> str:
    """An ``x-death`` time (pika gives a naive UTC datetime) as ISO 8601, or ""."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return ""


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

    by_broker: bool = False
    """RabbitMQ dead-lettered it (``x-death``); otherwise the hub did."""
    returned_to: str = ""
    """The queue a replay sent it back to (set by :func:`replay`, recorded in the ledger)."""
    key: str = ""
    """This letter among the others (:func:`letter_key`): message ids are chosen by whoever
    published, so two letters may share one; the key tells them apart."""

    @classmethod
    def of(cls, d: Delivery) -> DeadLetter:
        """As operators see it: the hub's own headers, or, for what the broker dead-lettered,
        the broker's facts (``BROKER_<REASON>``, its time and count). A letter the broker
        dead-lettered from the intake keeps whatever ``x-hub-*`` headers its publisher wrote:
        claims, not the hub's word, so none of them is shown (nor matched by a filter)."""
        h = dict(d.headers)
        deaths = _deaths(h)
        if deaths is None:
            reason = str(h.get(Headers.REASON) or "")
            first_failure = str(h.get(Headers.FIRST_FAILURE) or "")
            attempts = _count(h.get(Headers.ATTEMPTS))
            routing = str(h.get(Headers.ORIGINAL_ROUTING) or f"{d.exchange}/{d.routing_key}")
        else:
            death = deaths[0] if deaths else {}
            queue = _text(death.get("queue"))
            if not _DELIVERY_QUEUE.search(queue):
                h = {k: v for k, v in h.items() if not k.startswith(_HUB_HEADER)}
            reason = f"BROKER_{_text(death.get('reason')) or 'dead_lettered'}".upper()
            first_failure = _when(death.get("time"))
            attempts = _count(death.get("count"))
            keys = death.get("routing-keys")
            routing = (f"{_text(death.get('exchange'))}/{_text(keys[0])}"
                       if isinstance(keys, list | tuple) and keys else queue)
        return cls(
            id=str(d.message_id or h.get(Headers.DIGEST) or d.tag),
            key=letter_key(d.message_id or "", d.body, reason, first_failure),
            reason=reason,
            sender=str(h.get(Headers.SENDER) or ""),
            recipient=str(h.get(Headers.RECIPIENT) or ""),
            first_failure=first_failure,
            attempts=attempts,
            routing=routing,
            size=len(d.body),
            headers={k: v for k, v in h.items() if isinstance(v, str | int | float | bool)},
            by_broker=deaths is not None,
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


def letter_key(message_id: str, body: bytes, reason: str, first_failure: str) -> str:
    """An opaque name for one dead letter, the same at every browse: its message id, the
    SHA-256 of its exact bytes and the facts of its death (reason, first failure), hashed.
    Two letters under one message id (an agency's software reused it, or sent junk under it)
    get two keys; a key holds only hex digits, so it survives a form (a browser turns a line
    feed in a hidden field into CRLF) and a URL. Letters identical in all of these are the
    same letter twice: :func:`replay` and :func:`discard` take ``most=1`` to act on one."""
    facts = json.dumps([message_id, hashlib.sha256(body).hexdigest(), reason, first_failure],
                       ensure_ascii=True)
    return hashlib.sha256(facts.encode("ascii")).hexdigest()[:32]


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
    """Only whole ids: ``doc-1`` names ``doc-1`` and never ``doc-10``; ``hub dlq`` takes
    leading parts (confirmed with ``--yes``)."""
    keys: tuple[str, ...] = ()
    """Letter keys (:attr:`DeadLetter.key`): the console acts on the one letter a person looked
    at, never on another that shares its message id."""

    def matches(self, dl: DeadLetter, now: datetime) -> bool:
        if self.keys and dl.key not in self.keys:
            return False
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

    def unmatched(self, chosen: Iterable[DeadLetter]) -> list[str]:
        """The given ids that name none of the chosen dead letters (gone, or mistyped)."""
        ids = [dl.id for dl in chosen]
        return [i for i in self.ids
                if not any(x == i if self.exact else x.startswith(i) for x in ids)]


def parse_age(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1h30m`` (see :func:`hub.ops.args.parse_duration`)."""
    from hub.ops.args import parse_duration

    return parse_duration(text)


def browse(conn: Connection, queue: str) -> Iterator[tuple[Delivery, DeadLetter]]:
    """Every message in ``queue``, one at a time, unacknowledged (given back when the channel
    closes): a caller that keeps only what it needs of each (a listing its row, a discard its
    delivery tag) holds one letter's body at a time, whatever the queue holds.

    Giving a message back counts as a delivery on a quorum queue (``x-delivery-count``): under
    a delivery limit every browse brings each letter closer to being dropped. The hub's
    dead-letter queue has none; RabbitMQ 4 applies one by default (docs/OPERATIONS.md)."""
    while (d := conn.get(queue)) is not None:
        yield d, DeadLetter.of(d)


Recorder = Callable[[list[DeadLetter], str, str], None]
"""Records an operator's action on dead letters ``(letters, actor, note)`` in the ledger.
Called with no letters before anything is published or acknowledged: it then only checks
that the ledger can record (and raises when it cannot)."""


class NoWayBack(Exception):
    """Where a dead letter came from, or as whose, cannot be established: it is not replayed."""


class DlqError(HubError):
    """A dead-letter action that did part of what was asked: one line, and what was done."""

    def __init__(self, message: str, done: list[DeadLetter]) -> None:
        super().__init__(" ".join(message.split()))  # ids come from the broker: one line
        self.done = done


class ReplayRefused(DlqError):
    """Letters left in the dead-letter queue because their way back cannot be established
    (:class:`NoWayBack`); the others were replayed (:attr:`done`)."""

    def __init__(self, message: str, done: list[DeadLetter],
                 left: Sequence[tuple[DeadLetter, str]] = ()) -> None:
        super().__init__(message, done)
        self.left = tuple(left)
        """Each letter left, with why it has no way back."""


class ReplayNotRecorded(DlqError):
    """Letters that went out but that the ledger failed to record."""


def _shown(items: Sequence[str], most: int = 3) -> str:
    return "; ".join(items[:most]) + (" …" if len(items) > most else "")


def names_for(intake: str) -> Names:
    """The hub's names, from the name of its intake queue (``<prefix>.intake``)."""
    prefix, dot, last = intake.rpartition(".")
    if not dot or last != "intake":
        raise ValueError(f"{intake!r} is not the name of a hub's intake queue")
    return Names(prefix)


def _routed(routing: str, names: Names) -> str | None:
    """The queue that ``exchange/routing key`` reaches in the hub's topology, if one."""
    exchange, _, key = routing.partition("/")
    if exchange == names.inbound:
        return names.intake if key in (ENVELOPE_KEY, STATUS_KEY) else None
    if exchange == "":
        return key  # the default exchange: the queue by name (the retries' way back)
    if exchange == names.deliver:
        if key in (AXIS_INBOX_KEY, AXIS_STATUS_KEY):
            return names.gateway
        kind, _, code = key.partition(".")
        try:
            if kind == "inbox":
                return names.inbox(code)
            if kind == "status":
                return names.status(code)
        except ConfigurationError:
            return None
    return None


def _hub_queue(queue: str, names: Names) -> bool:
    """Whether ``queue`` is one a dead letter may go back to: the intake, the gateway queue,
    an organization's inbox or status queue (never the dead-letter or a retry queue)."""
    if queue in (names.intake, names.gateway):
        return True
    start = f"{names.prefix}.org."
    for kind, name in (("inbox", names.inbox), ("status", names.status)):
        end = f".{kind}"
        if queue.startswith(start) and queue.endswith(end):
            try:
                return name(queue[len(start):-len(end)]) == queue
            except ConfigurationError:
                return False
    return False


def origin(d: Delivery, names: Names) -> str:
    """The queue dead letter ``d`` was dead-lettered from: the broker's word (``x-death``, the
    death that brought it here) when the broker dead-lettered it, otherwise where the hub
    recorded it was going (``x-hub-original-routing``: the pipeline's intake, the connector's
    gateway queue). Raises :class:`NoWayBack` when neither names a queue of the hub."""
    deaths = _deaths(d.headers)
    if deaths is not None:
        queue = _text(deaths[0].get("queue")) if deaths else ""
        if not queue:
            raise NoWayBack("the broker dead-lettered it without naming the queue")
        said = f"the broker dead-lettered it from {queue}"
    else:
        routing = _text(d.headers.get(Headers.ORIGINAL_ROUTING))
        if not routing:
            raise NoWayBack("nothing says where it was going (no x-hub-original-routing)")
        said = f"it was going to {routing}"
        found = _routed(routing, names)
        if found is None:
            raise NoWayBack(f"{said}, which reaches none of the hub's queues")
        queue = found
    if not _hub_queue(queue, names):
        raise NoWayBack(f"{said}, not the intake, the gateway or an organization's queue")
    return queue


def _as_published(d: Delivery, headers: dict[str, Any], *, by_hub: bool, user: str | None,
                  trusted: frozenset[str] | None) -> dict[str, Any]:
    """The headers under which the intake judges a replayed letter as it judged (or would have
    judged) it when its publisher sent it. The replay is published under the operator tool's
    login, a trusted one that may speak for any body: the publisher must be named in
    ``x-hub-original-user`` (the pipeline checks it against the From organization), and only
    what the hub wrote may be believed.

    - The hub dead-lettered it (no ``x-death``): its headers are the hub's; the pipeline
      always records the publisher.
    - The broker did, and a trusted login had published it (the hub's retries, a replay, the
      API, the axis connector): its ``x-hub-*`` headers are that login's word, as the pipeline
      believed them; without a named publisher the login spoke for itself.
    - The broker did, and anyone else had published it (an agency's expired letter): its
      ``x-hub-*`` headers are claims and dropped; the publisher is the AMQP ``user_id`` the
      broker checked against the login (none: "", refused as the intake refuses it).
    """
    if by_hub:
        if Headers.ORIGINAL_USER not in headers:
            raise NoWayBack("its publisher is not recorded (no x-hub-original-user)")
        return headers
    publisher = d.user_id or None
    known = trusted if trusted is not None else frozenset({user} if user else ())
    if publisher is not None and publisher in known:
        headers.setdefault(Headers.ORIGINAL_USER, publisher)
        return headers
    if trusted is None and Headers.ORIGINAL_USER in headers:
        raise NoWayBack(f"published by {publisher!r} for "
                        f"{_text(headers[Headers.ORIGINAL_USER])!r}, and this replay does not "
                        "know whether that login is trusted: replay it with hub dlq replay")
    claims = {k: v for k, v in headers.items() if not k.startswith(_HUB_HEADER)}
    claims[Headers.ORIGINAL_USER] = publisher or ""
    return claims


def send_back(d: Delivery, names: Names, *, actor: str, note: str, user: str | None,
              trusted: frozenset[str] | None, queues: Collection[str] | None = None) -> Outgoing:
    """The message that sends dead letter ``d`` back to the queue it came from (:func:`origin`),
    through the default exchange (the queue by name: exactly that queue), under ``user``.

    Only what goes back to the intake is judged again, as its publisher (:func:`_as_published`);
    a delivery goes back to its organization's queue (or the gateway) with the hub's headers
    it was delivered with, and an organization's system drops a copy it has by message id.
    ``queues``: the queues of the hub's topology (one that is gone is no way back); ``trusted``:
    the logins the pipeline trusts (None: only ``user`` is known to be). Raises
    :class:`NoWayBack`."""
    queue = origin(d, names)
    if queues is not None and queue not in queues:
        raise NoWayBack(f"it came from {queue}, which the hub's topology no longer holds")
    by_hub = _deaths(d.headers) is None
    headers = {k: v for k, v in d.headers.items() if not k.startswith(_BROKER_HEADERS)}
    if by_hub or queue == names.intake:
        # The dead-letter facts are written afresh by whoever dead-letters it again; a
        # delivery the broker dead-lettered keeps its own (a receipt's x-hub-reason).
        headers = {k: v for k, v in headers.items() if k not in _DEAD_LETTER_HEADERS}
    if queue == names.intake:
        headers = _as_published(d, headers, by_hub=by_hub, user=user, trusted=trusted)
    headers[H_REPLAYED_BY] = actor
    headers[H_REPLAY_NOTE] = note[:500]
    return Outgoing("", queue, d.body, headers, message_id=d.message_id,
                    content_type="application/xml", user_id=user)


def replay(conn: Connection, queue: str, intake: str, flt: Filter, *, actor: str, note: str,
           user: str | None,
           record: Recorder,
           progress: Callable[[int, int], None] | None = None,
           now: datetime | None = None,
           confirm: Callable[[list[DeadLetter]], bool] | None = None,
           trusted: frozenset[str] | None = None,
           queues: Collection[str] | None = None,
           most: int | None = None) -> list[DeadLetter]:
    """Send matching dead letters back where they came from (:func:`send_back`), then ack them
    (at most ``most`` of them, the first in the queue).

    Order: check the ledger, then per batch publish and confirm, record in the ledger, ack — a
    crash leaves them in the dead-letter queue, never lost (a replay twice is caught as a
    duplicate by the pipeline, or dropped by the organization's system by message id).
    Letters with no way back stay in the queue: :class:`ReplayRefused`, after the others.
    The ledger failing after a batch went out: :class:`ReplayNotRecorded` (the batch is
    acknowledged: it went out, and a second replay would send it again).
    """
    names = names_for(intake)
    at = now or datetime.now(UTC)
    # at most `most`: browsing stops there (the letters after it are not even taken)
    chosen = list(itertools.islice(((d, dl) for d, dl in browse(conn, queue)
                                    if flt.matches(dl, at)), most))
    if confirm is not None and chosen and not confirm([dl for _d, dl in chosen]):
        return []
    ways: list[tuple[Delivery, DeadLetter, Outgoing]] = []
    refused: list[tuple[DeadLetter, str]] = []
    for d, dl in chosen:
        try:
            out = send_back(d, names, actor=actor, note=note, user=user, trusted=trusted,
                            queues=queues)
        except NoWayBack as exc:
            refused.append((dl, str(exc)))
            continue
        ways.append((d, dataclasses.replace(dl, returned_to=out.routing_key), out))
    if ways:
        record([], actor, note)  # the ledger can record: checked before anything goes out
    settler = conn.settler()
    done: list[DeadLetter] = []
    for start in range(0, len(ways), 100):
        part = ways[start:start + 100]
        conn.publish([out for _d, _dl, out in part])
        letters = [dl for _d, dl, _out in part]
        try:
            record(letters, actor, note)
        except Exception as exc:
            raise _not_recorded(settler, part, done, exc) from None
        settler.ack([d.tag for d, _dl, _out in part])
        done.extend(letters)
        if progress is not None:
            progress(len(done), len(chosen))
    if refused:
        raise ReplayRefused(f"{len(refused)} dead letter(s) not replayed, left in the queue: "
                            f"{_shown([f'{dl.id}: {why}' for dl, why in refused])}", done,
                            refused)
    return done


def _not_recorded(settler: Any, part: list[tuple[Delivery, DeadLetter, Outgoing]],
                  done: list[DeadLetter], exc: Exception) -> ReplayNotRecorded:
    """The one line for letters that went out and that the ledger did not record. They are
    acknowledged (they are in their queues: a second replay would send them again); if even
    that fails they are still in the dead-letter queue, and the line says so."""
    letters = [dl for _d, dl, _out in part]
    where = "taken from the dead-letter queue"
    try:
        settler.ack([d.tag for d, _dl, _out in part])
    except HubError:
        where = "still in the dead-letter queue too: do not replay them again"
    why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    before = f"; {len(done)} before them were replayed and recorded" if done else ""
    return ReplayNotRecorded(
        f"{len(letters)} dead letter(s) went out but are not recorded in the ledger "
        f"({why}): {_shown([dl.id for dl in letters], 10)} — {where}{before}",
        [*done, *letters])


def discard(conn: Connection, queue: str, flt: Filter, *, actor: str, note: str,
            record: Recorder,
            now: datetime | None = None,
            confirm: Callable[[list[DeadLetter]], bool] | None = None,
            most: int | None = None) -> list[DeadLetter]:
    """Drop matching dead letters (at most ``most``, the first in the queue) for good, recorded
    in the ledger first."""
    if not note.strip():
        raise ValueError("discarding needs a note saying why")
    at = now or datetime.now(UTC)
    chosen = list(itertools.islice(((d.tag, dl) for d, dl in browse(conn, queue)
                                    if flt.matches(dl, at)), most))
    if confirm is not None and chosen and not confirm([dl for _tag, dl in chosen]):
        return []
    if chosen:
        record([dl for _tag, dl in chosen], actor, note)
        conn.settler().ack([tag for tag, _dl in chosen])
    return [dl for _tag, dl in chosen]


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


def trusted_logins(settings: Any) -> frozenset[str]:
    """The logins the pipeline trusts to speak for others: ``[broker] trusted_publishers`` and
    the hub's own login (``PipelineConfig.trusted``)."""
    from hub.app import broker_user

    hub = broker_user(settings.broker.url)
    return frozenset(settings.broker.trusted_publishers) | ({hub} if hub else set())


def action_recorder(settings: Any, kind: str) -> Recorder:
    """Records an operator's replay or discard (``kind``) of dead letters in the ledger, with
    the person as actor: the CLI and the console keep one audit trail. Called with no letters,
    it opens the ledger and reads its head: the check before anything goes out."""
    from hub.app import load_keystore, open_ledger
    from hub.ledger import EventIn, EventKind

    def record(items: list[DeadLetter], actor: str, note: str) -> None:
        ledger = open_ledger(settings, load_keystore(settings).signer(settings.hub.operator_organ_id))
        at = datetime.now(UTC)
        try:
            if not items:
                ledger.head()
                return
            ledger.write([], [
                EventIn(EventKind(kind), dl.id, at, digest=str(dl.headers.get(Headers.DIGEST) or "")
                        or None, organ_id=dl.sender or None, reason=dl.reason or None, actor=actor,
                        detail={"note": note[:500], "reason": dl.reason,
                                **({"to": dl.returned_to} if dl.returned_to else {})})
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


_BROKER_TEXTS = {
    "BROKER_REJECTED": ("Hệ thống nhận đã từ chối thư, không nhận lại",
                        "the consuming system rejected it without requeueing it"),
    "BROKER_EXPIRED": ("Thư hết thời hạn (TTL) trước khi được xử lý",
                       "it expired (TTL) before it was taken"),
    "BROKER_DELIVERY_LIMIT": ("Thư bị trả lại hàng đợi quá số lần cho phép",
                              "it was returned to its queue more times than its limit allows"),
    "BROKER_MAXLEN": ("Hàng đợi đã đầy", "its queue was full"),
}


BROKER_ACTION = ("hub dlq replay sends it back to the queue it came from (an intake letter is "
                 "judged again, as its publisher); otherwise discard it with a note.")
"""What to do about a letter the broker dead-lettered itself."""
UNKNOWN_ACTION = "Unknown reason code: look at the headers."


def reason_texts(dl: DeadLetter) -> tuple[str, str, str]:
    """Why ``dl`` is here, in Vietnamese and English, and what an operator should do (English):
    the catalogue's texts (:class:`hub.reasons.Reason`), the broker's own reasons
    (``BROKER_*``), or the texts the hub wrote with a code this version does not know. Shared by
    ``hub dlq show`` and the console."""
    if dl.by_broker:
        vi, en = _BROKER_TEXTS.get(dl.reason, ("Máy chủ RabbitMQ đã chuyển thư vào hàng đợi lỗi",
                                               "the broker dead-lettered it"))
        return vi, en, BROKER_ACTION
    try:
        reason = Reason(dl.reason)
        return reason.vi, reason.en, reason.info.action
    except ValueError:
        return (str(dl.headers.get(Headers.REASON_TEXT_VI, "")),
                str(dl.headers.get(Headers.REASON_TEXT_EN, "")), UNKNOWN_ACTION)


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
    vi, en, action = reason_texts(dl)
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


def _seen_by(confirm: Callable[[list[DeadLetter]], bool],
             seen: list[DeadLetter]) -> Callable[[list[DeadLetter]], bool]:
    """``confirm``, keeping the letters it was asked about (the ones the ids matched)."""

    def keep(chosen: list[DeadLetter]) -> bool:
        seen.extend(chosen)
        return confirm(chosen)

    return keep


def _missing(flt: Filter, seen: list[DeadLetter]) -> str:
    """The one-line problem of ids that named no dead letter, or ""."""
    missing = flt.unmatched(seen)
    return (f"no dead letter with id {', '.join(missing)} (gone, or not matching the filters)"
            if missing else "")


def cmd_replay(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not (flt.ids or flt.reason or flt.sender or flt.recipient or flt.older_than or args.all):
        return _usage("say which dead letters to replay (ids, a filter, or --all)")
    settings, topo, conn = _context(args)
    from rich.progress import Progress

    seen: list[DeadLetter] = []
    problems: list[str] = []
    try:
        from hub.app import broker_user

        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("replaying", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                done = replay(conn, topo.names.dlq, topo.names.intake, flt, actor=args.actor,
                              user=broker_user(settings.broker.url), note=args.note or "",
                              record=action_recorder(settings, "replayed"), progress=progress,
                              confirm=_seen_by(_confirmer(flt, "replay", args.yes), seen),
                              trusted=trusted_logins(settings),
                              queues=frozenset(q.name for q in topo.queues))
            except ReplayRefused as exc:
                done = exc.done
                problems.append(str(exc))
    except ReplayNotRecorded as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE  # the ledger
    except DlqUsageError as exc:
        return _usage(str(exc))
    finally:
        conn.close()
    to_intake = sum(1 for dl in done if dl.returned_to == topo.names.intake)
    print(f"replayed {len(done)} message(s) as {args.actor}: {to_intake} through full validation "
          f"again, {len(done) - to_intake} back to the queue they came from")
    problems.append(_missing(flt, seen))
    if any(problems):
        print(f"hub: {'; '.join(p for p in problems if p)}", file=sys.stderr)
        return 1
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if not flt.ids and not flt.reason:
        return _usage("say which dead letters to discard (ids or --reason)")
    settings, topo, conn = _context(args)
    seen: list[DeadLetter] = []
    try:
        done = discard(conn, topo.names.dlq, flt, actor=args.actor, note=args.note,
                       record=action_recorder(settings, "discarded"),
                       confirm=_seen_by(_confirmer(flt, "discard", args.yes), seen))
    except DlqUsageError as exc:
        return _usage(str(exc))
    finally:
        conn.close()
    print(f"discarded {len(done)} message(s), recorded as {args.actor}: {args.note}")
    if missing := _missing(flt, seen):
        print(f"hub: {missing}", file=sys.stderr)
        return 1
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
    q = dsub.add_parser("replay", help="send dead letters back where they came from (the "
                        "intake's through full validation again)")
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

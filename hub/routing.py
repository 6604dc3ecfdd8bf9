"""Routing under Decision 28/2018/QĐ-TTg: where an accepted packet goes, as a pure function.

:func:`route` turns an envelope into a :class:`RoutingPlan` — deliveries or one refusal with a
stable :class:`~hub.reasons.Reason` — from the envelope, the organization directory, the time and
the province this hub serves. It does no I/O: the pipeline publishes the plan (``hub.broker``)
and records it (``hub.ledger``).

Rules, and where they come from:

- *Classified documents are refused first* (Decision 28/2018/QĐ-TTg: documents containing state
  secrets are not sent through the system). Nothing else is looked at, so a secret document's
  recipients never appear in a delivery.
- *The sender must be in the directory and valid at the time* (the hub checks that the signer
  may sign for it; an unknown body cannot be authorized).
- *Recipients are the* ``To`` *elements* (QCVN 102 §1.2). ``ToPlaces`` is the printed list and is
  never used for routing. Codes are resolved through the directory, so ``000.00.01.H27`` and its
  Decision 20/2020 identifier ``H27.01`` — the same body — collapse into **one** delivery, named
  after the body's primary code (the one its queues are named after); the code as written is
  kept in :attr:`Delivery.written_as` for the ledger ("the ledger keeps the code as received").
- *A body of this province reached directly* gets the envelope in its inbox; *every other body*
  (another province, a ministry, or an entry marked ``reach = "axis"``) goes through the national
  document exchange axis (Decision 28/2018: bodies are connected through the axis run by the
  Government Office). The plan lists one :class:`Delivery` per recipient, each with the
  gateway's routing key, and the pipeline publishes one copy per remote recipient (message id
  ``<digest>:<recipient>``, recorded as delivered to that recipient); the connector sends the
  packet to the axis once per digest — the axis fans out by ``To`` itself — and settles the
  other copies without sending them again.
- *All or nothing.* If any recipient is malformed (ORGAN_ID_INVALID), unknown or abolished
  (RECIPIENT_UNKNOWN), the whole envelope is refused: a partial delivery would leave the sender
  unsure who got an official document, and its clerk would have to resend to a subset under
  the same DocumentId. The refusal's detail names every offending code.
- *Abolished or merged bodies* (``valid_to`` at or before the time, e.g. the district level
  abolished on 1 July 2025) are RECIPIENT_UNKNOWN with a detail that says so.
- *Replies, recalls, updates and replacements are ordinary envelopes*: a ``ResponseFor`` reply or
  a ``Bussiness`` revocation is routed to its own ``To`` like any other envelope; checking that
  only the original sender recalls (NOT_ORIGINAL_SENDER) needs the ledger and happens there.
  A recall, update or replacement also reaches the original's recipients its ``To`` left out
  (:func:`route_former`): a body abolished since gets it in the inbox kept for draining when
  this hub delivers to it, and is otherwise named as not reached — never a reason to skip the
  others.
- *One body, several codes.* Wherever two codes are compared (a reporter and the document's
  recipients, a recall's sender and the original's), they are compared as bodies
  (:func:`body_of`): the primary code of the entry holding each at the time.
- *Statuses* (:func:`route_status`) go back to the original sender's ``.status`` queue, or to the
  gateway when that sender is behind the national axis.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from hub.edxml.errors import EnvelopeRefused
from hub.edxml.model import Envelope, Organization, StatusPacket
from hub.edxml.orgcode import OrgCode
from hub.reasons import Reason
from hub.topology import (
    AXIS_INBOX_KEY,
    AXIS_STATUS_KEY,
    VIETNAM_TZ,
    DirectoryEntry,
    inbox_key,
    instant,
    last_day,
    status_key,
)

__all__ = [
    "Delivery",
    "DirectoryLookup",
    "FormerRecipients",
    "RoutingPlan",
    "Via",
    "body_of",
    "entry_of",
    "route",
    "route_former",
    "route_status",
]

Via = Literal["direct", "axis"]

_MAX_LISTED = 5
"""How many offending codes a refusal's detail names (a To list can be long)."""


class DirectoryLookup(Protocol):
    """What routing reads of ``hub.directory.Directory``."""

    def find(self, code: str, at: date | datetime | None = None) -> DirectoryEntry | None:
        """The body holding ``code`` valid on the day of ``at``; without ``at`` the most recent
        entry holding it, abolished or not (to tell "abolished" from "never existed")."""
        ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of a packet and the deliver-exchange routing key that reaches it."""

    organ_id: str
    """The recipient: its primary code when the directory knows it, else the code as written."""
    via: Via
    """``direct``: its own queue on this hub; ``axis``: the national-axis gateway."""
    routing_key: str
    """Key on the deliver exchange (``hub.topology``: ``inbox.<code>``, ``axis.inbox``, …)."""
    written_as: str = ""
    """The code as the packet wrote it (kept in the ledger)."""
    kept: bool = False
    """The inbox of a body abolished since, kept for draining (:func:`route_former`): the
    packet lies there for whoever drains it, and nobody answers "01 đã đến" in its name."""


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    """Where a packet goes, or why it goes nowhere. Exactly one of the two is non-empty."""

    deliveries: tuple[Delivery, ...] = ()
    rejection: Reason | None = None
    detail: str = ""
    """For operators and the negative receipt: which codes, why. Never document content."""

    @property
    def accepted(self) -> bool:
        return self.rejection is None

    @property
    def routing_keys(self) -> tuple[str, ...]:
        """Distinct routing keys in delivery order (the gateway's once, however many remote
        recipients share it). The pipeline publishes one copy per :class:`Delivery`, not per
        key: each recipient's copy has its own message id and ledger events."""
        return tuple(dict.fromkeys(d.routing_key for d in self.deliveries))

    @classmethod
    def refuse(cls, reason: Reason, detail: str) -> RoutingPlan:
        return cls(rejection=reason, detail=detail)


@dataclass(frozen=True, slots=True)
class FormerRecipients:
    """Where a recall, update or replacement reaches the original's recipients."""

    deliveries: tuple[Delivery, ...] = ()
    unreached: tuple[str, ...] = ()
    """Why each recipient that cannot be reached is not (``<code> was abolished …``)."""


@dataclass(frozen=True, slots=True)
class _Resolved:
    entry: DirectoryEntry | None
    reason: Reason | None = None
    why: str = ""


@functools.lru_cache(maxsize=1024)
def _normal_form(written: str) -> str | None:
    """``OrgCode.parse(written).normalized``, or None for a malformed code. Worked out once per
    code (a pure function of the text; the same few codes are routed again and again)."""
    try:
        return OrgCode.parse(written).normalized
    except EnvelopeRefused:
        return None


def _resolve(
    directory: DirectoryLookup, written: str, at: datetime, unknown: Reason
) -> _Resolved:
    code = _normal_form(written)
    if code is None:
        return _Resolved(None, Reason.ORGAN_ID_INVALID, f"{written[:40]!r} is malformed")
    entry = directory.find(code, at)
    if entry is not None:
        return _Resolved(entry)
    known = directory.find(code)
    if known is None:
        return _Resolved(None, unknown, f"{code} is not in the directory")
    moment = instant(at)
    until = last_day(known)
    if known.valid_to is not None and until is not None and known.valid_to <= moment:
        # The 2025 reorganization (district level abolished, provinces merged): abolished
        # bodies keep their codes in the directory for history; say so, name the successor.
        successor = f" into {known.successor}" if known.successor else ""
        return _Resolved(
            None, unknown,
            f"{code} was abolished or merged{successor}; its last day was {until.isoformat()}",
        )
    if known.valid_from is not None and moment < known.valid_from:
        first = known.valid_from.astimezone(VIETNAM_TZ).date().isoformat()
        return _Resolved(None, unknown, f"{code} exists only from {first}")
    return _Resolved(None, unknown, f"{code} is not valid at {moment.isoformat()}")


def _primary(entry: DirectoryEntry) -> str:
    return entry.codes[0]


def entry_of(code: str, directory: DirectoryLookup, at: datetime) -> DirectoryEntry | None:
    """The body holding ``code`` at ``at``; when none holds it then, the last one that did
    (an abolished body is still the body it was), else None. ``code`` may be written with
    surrounding whitespace, as a packet may write it."""
    normal = _normalized(code)
    entry = directory.find(normal, at)
    return entry if entry is not None else directory.find(normal)


def body_of(code: str, directory: DirectoryLookup, at: datetime) -> str:
    """What two organization codes are compared by: the primary code of :func:`entry_of`, else
    the code itself (normalized). ``000.00.02.H27`` and its Decision 20/2020 identifier
    ``H27.02`` are one body; a code that passed from one body to another names, at each time,
    the body holding it then."""
    entry = entry_of(code, directory, at)
    return _primary(entry) if entry is not None else _normalized(code)


def _is_direct(entry: DirectoryEntry, province: str) -> bool:
    return entry.reach == "direct" and entry.province == province


def _inbox_delivery(entry: DirectoryEntry, written: str, province: str, *,
                    kept: bool = False) -> Delivery:
    """A document's delivery to the body ``entry`` (written ``written``): its inbox when this
    hub reaches it directly (``kept``: an abolished body's, kept for draining), else the
    national-axis gateway."""
    primary = _primary(entry)
    if _is_direct(entry, province):
        return Delivery(primary, "direct", inbox_key(primary), written, kept=kept)
    return Delivery(primary, "axis", AXIS_INBOX_KEY, written)


def route(
    envelope: Envelope, directory: DirectoryLookup, *, at: datetime, province: str
) -> RoutingPlan:
    """Deliveries for ``envelope`` at time ``at`` on the hub serving ``province`` (e.g. ``H27``).

    Refusals: DOCUMENT_CLASSIFIED, ORGAN_ID_INVALID, SENDER_UNKNOWN, RECIPIENT_MISSING,
    RECIPIENT_UNKNOWN (see the module docstring for the rules and their sources).
    """
    if envelope.is_classified:
        return RoutingPlan.refuse(
            Reason.DOCUMENT_CLASSIFIED, "OtherInfo/SecurityLevel marks a state secret"
        )

    sender = _resolve(directory, envelope.sender.organ_id, at, Reason.SENDER_UNKNOWN)
    if sender.reason is not None:
        return RoutingPlan.refuse(sender.reason, f"sender {sender.why}")

    if not envelope.recipients:
        return RoutingPlan.refuse(Reason.RECIPIENT_MISSING, "the envelope has no To element")
    return _plan(envelope.recipients, directory, at, province)


def _plan(
    recipients: Sequence[Organization],
    directory: DirectoryLookup,
    at: datetime,
    province: str,
) -> RoutingPlan:
    deliveries: dict[str, Delivery] = {}
    problems: list[tuple[Reason, str]] = []
    for recipient in recipients:
        written = recipient.organ_id
        resolved = _resolve(directory, written, at, Reason.RECIPIENT_UNKNOWN)
        if resolved.entry is None:
            assert resolved.reason is not None
            problems.append((resolved.reason, f"recipient {resolved.why}"))
            continue
        # the same body written twice, or under both of its codes: one delivery
        deliveries.setdefault(_primary(resolved.entry),
                              _inbox_delivery(resolved.entry, written, province))
    if problems:
        # Malformed codes outrank unknown ones: the sender's system is broken, not the directory.
        reasons = [reason for reason, _ in problems]
        reason = Reason.ORGAN_ID_INVALID if Reason.ORGAN_ID_INVALID in reasons else reasons[0]
        listed = "; ".join(why for _, why in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        return RoutingPlan.refuse(reason, listed + (f"; and {more} more" if more > 0 else ""))
    return RoutingPlan(deliveries=tuple(deliveries.values()))


def route_former(
    recipients: Sequence[str], directory: DirectoryLookup, *, at: datetime, province: str
) -> FormerRecipients:
    """Where a recall, update or replacement reaches ``recipients`` of the original, one by one.

    A body valid at ``at`` is reached as :func:`route` reaches it. One abolished since (the
    2025 reorganization) keeps its inbox for draining when this hub delivers to it directly
    (:func:`hub.topology.direct_entries`): the packet goes there (:attr:`Delivery.kept`), next
    to the document it withdraws. Any other is named in :attr:`FormerRecipients.unreached`.
    Unlike the envelope's own ``To``, nothing here refuses the packet: every recipient that
    can be reached gets it, whatever became of the others.
    """
    deliveries: dict[str, Delivery] = {}
    unreached: list[str] = []
    for written in recipients:
        resolved = _resolve(directory, written, at, Reason.RECIPIENT_UNKNOWN)
        entry = resolved.entry
        if entry is None:
            gone = directory.find(_normalized(written))
            abolished = (gone is not None and gone.valid_to is not None
                         and gone.valid_to <= instant(at))
            if gone is None or not abolished or not _is_direct(gone, province):
                unreached.append(resolved.why)
                continue
            deliveries.setdefault(_primary(gone),
                                  _inbox_delivery(gone, written, province, kept=True))
            continue
        deliveries.setdefault(_primary(entry), _inbox_delivery(entry, written, province))
    return FormerRecipients(tuple(deliveries.values()), tuple(unreached))


def route_status(
    status: StatusPacket | None,
    original_sender: str,
    directory: DirectoryLookup,
    *,
    at: datetime,
    province: str,
) -> RoutingPlan:
    """Where a status about a document goes: back to that document's original sender.

    ``original_sender`` is the sender the ledger recorded for the document (never only the
    status's own claim). ``status`` is the packet being forwarded, or None for the hub's own
    receipts. A status whose ``ResponseFor/OrganId`` names another body than the recorded
    sender refers to a document the hub did not deliver: STATUS_ORPHAN. A sender that has
    been abolished since still gets its statuses: its queues are kept for draining.
    """
    if status is not None:
        claimed = status.response_for.organ_id
        if body_of(claimed, directory, at) != body_of(original_sender, directory, at):
            return RoutingPlan.refuse(
                Reason.STATUS_ORPHAN,
                f"ResponseFor names {claimed[:40]!r}, "
                f"the document was sent by {original_sender[:40]!r}",
            )
    resolved = _resolve(directory, original_sender, at, Reason.RECIPIENT_UNKNOWN)
    entry = resolved.entry
    if entry is None and resolved.reason is Reason.RECIPIENT_UNKNOWN:
        entry = directory.find(_normalized(original_sender))
    if entry is None:
        assert resolved.reason is not None
        return RoutingPlan.refuse(resolved.reason, f"original sender {resolved.why}")
    primary = _primary(entry)
    if _is_direct(entry, province):
        delivery = Delivery(primary, "direct", status_key(primary), original_sender)
    else:
        delivery = Delivery(primary, "axis", AXIS_STATUS_KEY, original_sender)
    return RoutingPlan(deliveries=(delivery,))


def _normalized(code: str) -> str:
    normal = _normal_form(code)
    return code.strip() if normal is None else normal

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
  Government Office). All remote recipients share **one** publication to the gateway — the axis
  fans out by ``To`` itself — while the plan still lists one :class:`Delivery` per recipient.
- *All or nothing.* If any recipient is malformed (ORGAN_ID_INVALID), unknown or abolished
  (RECIPIENT_UNKNOWN), the whole envelope is refused: a partial delivery would leave the sender
  unsure who got an official document, and its clerk would have to resend to a subset under
  the same DocumentId. The refusal's detail names every offending code.
- *Abolished or merged bodies* (``valid_to`` at or before the time, e.g. the district level
  abolished on 1 July 2025) are RECIPIENT_UNKNOWN with a detail that says so.
- *Replies, recalls, updates and replacements are ordinary envelopes*: a ``ResponseFor`` reply or
  a ``Bussiness`` revocation is routed to its own ``To`` like any other envelope; checking that
  only the original sender recalls (NOT_ORIGINAL_SENDER) needs the ledger and happens there.
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
    "RoutingPlan",
    "Via",
    "route",
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
        """Distinct routing keys in delivery order: publish the packet once per key."""
        return tuple(dict.fromkeys(d.routing_key for d in self.deliveries))

    @classmethod
    def refuse(cls, reason: Reason, detail: str) -> RoutingPlan:
        return cls(rejection=reason, detail=detail)


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


def _is_direct(entry: DirectoryEntry, province: str) -> bool:
    return entry.reach == "direct" and entry.province == province


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
        primary = _primary(resolved.entry)
        if primary in deliveries:
            continue  # the same body written twice, or under both of its codes
        if _is_direct(resolved.entry, province):
            deliveries[primary] = Delivery(primary, "direct", inbox_key(primary), written)
        else:
            deliveries[primary] = Delivery(primary, "axis", AXIS_INBOX_KEY, written)
    if problems:
        # Malformed codes outrank unknown ones: the sender's system is broken, not the directory.
        reasons = [reason for reason, _ in problems]
        reason = Reason.ORGAN_ID_INVALID if Reason.ORGAN_ID_INVALID in reasons else reasons[0]
        listed = "; ".join(why for _, why in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        return RoutingPlan.refuse(reason, listed + (f"; and {more} more" if more > 0 else ""))
    return RoutingPlan(deliveries=tuple(deliveries.values()))


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
        claimed = _resolve(directory, status.response_for.organ_id, at, Reason.STATUS_ORPHAN)
        recorded = _resolve(directory, original_sender, at, Reason.STATUS_ORPHAN)
        same = (
            claimed.entry is not None
            and recorded.entry is not None
            and _primary(claimed.entry) == _primary(recorded.entry)
        ) or _normalized(status.response_for.organ_id) == _normalized(original_sender)
        if not same:
            return RoutingPlan.refuse(
                Reason.STATUS_ORPHAN,
                f"ResponseFor names {status.response_for.organ_id[:40]!r}, "
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

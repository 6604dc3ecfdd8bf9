"""The hub's RabbitMQ topology as code: frozen specs, names from pure functions.

Nothing here talks to a broker. :func:`build_topology` turns the organization directory into
frozen :class:`ExchangeSpec` / :class:`QueueSpec` / :class:`BindingSpec` values; ``hub.broker``
(the only pika import) declares them, and :func:`definitions` exports the same specs as a
RabbitMQ ``definitions.json`` for operators, with one least-privilege broker account per agency.
The idea comes from dramatiq (``dramatiq/common.py``: ``q_name``/``dq_name``/``xq_name``, and
``_build_queue_arguments`` in its RabbitMQ broker): names are computed, never typed twice.

The flow (``P`` = prefix, default ``edxml``)::

    agency ──publish──▶ P.inbound (direct) ──"envelope" | "status"──▶ P.intake (quorum)
                                                                        │ hub pipeline
          ┌──────────────────────────────┬──────────────────────────────┤
          ▼                              ▼                              ▼
    P.deliver (direct)            P.retry.<ms> (TTL) ─expired─▶ P.intake     P.dlx (fanout) ─▶ P.dlq
      "inbox.<code>"  ─▶ P.org.<code>.inbox
      "status.<code>" ─▶ P.org.<code>.status
      "axis.inbox" | "axis.status" ─▶ P.gateway.axis  (national axis, Decision 28/2018)

Decisions recorded here (why, not what):

- *One intake for envelopes and statuses.* Agencies publish both to ``P.inbound`` with routing
  key ``envelope`` or ``status``; the pipeline parses the bytes anyway (``parse_packet``), so the
  key is a hint for metrics, never trusted for dispatch.
- *Deliver keys carry a kind prefix* (``inbox.<code>`` / ``status.<code>``): each organization
  has two queues behind one direct exchange, so the organization code alone cannot tell them
  apart. Organization codes are ``[0-9A-Z.]`` (QCVN 102:2016 and Decision 20/2020/QĐ-TTg), so
  the lower-case kind prefixes and ``axis`` can never collide with a code.
- *Quorum queues* (RabbitMQ ≥ 3.10, Debian bookworm ships 3.10.8) are replicated and support
  ``x-delivery-limit`` (poison messages are dead-lettered instead of looping),
  ``x-message-ttl`` and ``x-dead-letter-strategy=at-least-once``, which RabbitMQ accepts only
  with ``x-overflow=reject-publish``: a dead-lettered or expired message is kept until the
  target queue confirms it, so a retry hop or a dead-letter never loses a document.
- *Organization queues dead-letter too.* RabbitMQ 4 gives quorum queues a default delivery
  limit of 20; with a DLX configured a document an agency's client keeps rejecting lands in
  ``P.dlq`` (where an operator sees it) instead of being dropped.
- *Retries go through the default exchange*: the hub publishes a failed delivery to
  ``P.retry.<ms>`` (routing key = queue name); its TTL expires it back into ``P.intake``.
  :meth:`Topology.retry_queue_for` gives bounded exponential backoff.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal, Protocol

from hub.errors import ConfigurationError

__all__ = [
    "AXIS_INBOX_KEY",
    "AXIS_STATUS_KEY",
    "DEFAULT_RETRY_DELAYS_MS",
    "ENVELOPE_KEY",
    "MAX_NAME_BYTES",
    "STATUS_KEY",
    "BindingSpec",
    "DirectoryEntry",
    "DirectorySource",
    "ExchangeSpec",
    "Handover",
    "Names",
    "QueueSpec",
    "Topology",
    "agency_permissions",
    "all_names",
    "build_topology",
    "definitions",
    "direct_entries",
    "gateway_permissions",
    "handovers",
    "inbox_key",
    "instant",
    "last_day",
    "permission_matches",
    "rabbit_password_hash",
    "status_key",
    "valid_at",
]

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
"""Same as ``hub.edxml.model.VIETNAM_TZ`` (no daylight saving time); kept here so that the
topology needs nothing from the EDXML package."""

ExchangeType = Literal["direct", "topic", "fanout", "headers"]

MAX_NAME_BYTES = 255
"""AMQP 0-9-1 ``shortstr``: exchange and queue names are at most 255 bytes."""

ENVELOPE_KEY = "envelope"
"""Routing key agencies use on the inbound exchange for a document envelope."""
STATUS_KEY = "status"
"""Routing key agencies use on the inbound exchange for a status packet."""
AXIS_INBOX_KEY = "axis.inbox"
"""Deliver-exchange key of documents for the national axis gateway."""
AXIS_STATUS_KEY = "axis.status"
"""Deliver-exchange key of statuses/receipts for senders behind the national axis."""

DEFAULT_RETRY_DELAYS_MS: tuple[int, ...] = (1000, 2000, 4000, 8000, 16000, 32000, 60000)

# Decision 20/2020/QĐ-TTg: electronic identifiers are at most 35 characters of '.', 0-9, A-Z;
# the legacy QCVN 102:2016 codes use the same alphabet. Anything else in a queue name would be
# a directory error (and could smuggle regex or name syntax into permissions).
_ORG_CODE = re.compile(r"[0-9A-Z][0-9A-Z.]{0,34}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class DirectoryEntry(Protocol):
    """What topology and routing read of a directory entry (``hub.directory.OrgEntry``)."""

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code of the body; the first is its primary code (names its queues)."""
        ...

    @property
    def name(self) -> str: ...

    @property
    def broker_user(self) -> str | None: ...

    @property
    def reach(self) -> str:
        """``"direct"`` (queues on this hub) or ``"axis"`` (through the national axis)."""
        ...

    @property
    def province(self) -> str: ...

    @property
    def valid_from(self) -> datetime | None:
        """First instant the entry is valid (aware; 00:00 Vietnam time of its first day)."""
        ...

    @property
    def valid_to(self) -> datetime | None:
        """First instant it is no longer valid (exclusive); None while the body exists."""
        ...

    @property
    def successor(self) -> str | None:
        """The body that took over after a merger, if the directory knows it."""
        ...


class DirectorySource(Protocol):
    """The part of ``hub.directory.Directory`` topology needs: every entry, past ones included."""

    @property
    def entries(self) -> Sequence[DirectoryEntry]: ...


def instant(at: date | datetime) -> datetime:
    """An aware instant: a date is its first moment in Vietnam time, a naive time is Vietnam
    time (the directory's validity bounds are Vietnam days)."""
    if isinstance(at, datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=VIETNAM_TZ)
    return datetime.combine(at, time.min, VIETNAM_TZ)


def last_day(entry: DirectoryEntry) -> date | None:
    """The last day (Vietnam time) an entry is valid, as the directory file writes it."""
    if entry.valid_to is None:
        return None
    return (entry.valid_to.astimezone(VIETNAM_TZ) - timedelta(microseconds=1)).date()


def _check_code(code: str) -> str:
    if not _ORG_CODE.fullmatch(code):
        raise ConfigurationError(
            f"organization code {code!r} cannot name a queue: expected 1-35 of [0-9A-Z.]"
        )
    return code


def _check_name(name: str) -> str:
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigurationError(f"name {name[:40]!r}… exceeds {MAX_NAME_BYTES} bytes")
    return name


def inbox_key(code: str) -> str:
    """Deliver-exchange routing key of an organization's document inbox."""
    return f"inbox.{_check_code(code)}"


def status_key(code: str) -> str:
    """Deliver-exchange routing key of an organization's status queue."""
    return f"status.{_check_code(code)}"


@dataclass(frozen=True, slots=True)
class Names:
    """Every exchange and queue name, derived from one prefix (dramatiq's ``q_name`` idea)."""

    prefix: str = "edxml"
    """Lets several hubs (or test runs) share a vhost without clashing."""

    def __post_init__(self) -> None:
        # "amq." is reserved by the broker (AMQP 0-9-1 §exchange.declare / queue.declare).
        if not _PREFIX.fullmatch(self.prefix) or self.prefix.startswith("amq."):
            raise ConfigurationError(
                f"broker prefix {self.prefix!r} must be 1-64 of [A-Za-z0-9_.-] and not start 'amq.'"
            )

    @property
    def inbound(self) -> str:
        """The only exchange agencies may publish to."""
        return f"{self.prefix}.inbound"

    @property
    def intake(self) -> str:
        return f"{self.prefix}.intake"

    @property
    def deliver(self) -> str:
        return f"{self.prefix}.deliver"

    @property
    def gateway(self) -> str:
        """Queue the national-axis gateway consumes (documents and statuses to remote bodies)."""
        return f"{self.prefix}.gateway.axis"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    def inbox(self, code: str) -> str:
        """The queue an organization consumes documents from."""
        return _check_name(f"{self.prefix}.org.{_check_code(code)}.inbox")

    def status(self, code: str) -> str:
        """The queue an organization consumes statuses and hub receipts from."""
        return _check_name(f"{self.prefix}.org.{_check_code(code)}.status")

    def retry(self, delay_ms: int) -> str:
        return f"{self.prefix}.retry.{delay_ms}"


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: ExchangeType
    durable: bool = True
    arguments: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    durable: bool = True
    arguments: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    """Declared as given (``x-queue-type``, dead-lettering, limits, TTL)."""


@dataclass(frozen=True, slots=True)
class BindingSpec:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Topology:
    """Everything the broker must hold, in declaration order (exchanges, queues, bindings)."""

    names: Names
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    delivery_limit: int = 5
    """Deliveries of one message from the intake before RabbitMQ dead-letters it."""

    def queue(self, name: str) -> QueueSpec:
        """The spec of queue ``name`` (``KeyError`` if it is not part of this topology)."""
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _frozen(arguments: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(arguments))


def _queue_arguments(
    *,
    quorum: bool,
    dead_letter_exchange: str | None = None,
    dead_letter_routing_key: str | None = None,
    delivery_limit: int | None = None,
    message_ttl_ms: int | None = None,
) -> Mapping[str, Any]:
    """dramatiq's ``_build_queue_arguments``, for quorum or classic queues."""
    arguments: dict[str, Any] = {"x-queue-type": "quorum" if quorum else "classic"}
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
        if dead_letter_routing_key is not None:
            arguments["x-dead-letter-routing-key"] = dead_letter_routing_key
        if quorum:
            # at-least-once dead-lettering is refused by RabbitMQ unless overflow is
            # reject-publish; both exist for quorum queues since 3.10.
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    if delivery_limit is not None and quorum:
        # Classic queues have no delivery counter; there the hub's x-hub-attempts header bounds
        # the retries instead.
        arguments["x-delivery-limit"] = delivery_limit
    if message_ttl_ms is not None:
        arguments["x-message-ttl"] = message_ttl_ms
    return _frozen(arguments)


def _primary_code(entry: DirectoryEntry) -> str:
    if not entry.codes:
        raise ConfigurationError(f"directory entry {entry.name!r} has no organization code")
    return entry.codes[0]


def valid_at(entry: DirectoryEntry, at: date | datetime) -> bool:
    """Whether ``entry`` exists at ``at`` (``valid_from`` inclusive, ``valid_to`` exclusive)."""
    moment = instant(at)
    if entry.valid_from is not None and moment < entry.valid_from:
        return False
    return entry.valid_to is None or moment < entry.valid_to


def direct_entries(
    directory: DirectorySource, at: date | datetime | None = None
) -> list[DirectoryEntry]:
    """Entries the hub delivers to itself, in directory order; ``at`` drops bodies not valid then.

    Without ``at`` abolished bodies keep their queues, so documents already delivered to them
    can still be drained after a merger (the 2025 reorganization abolished whole levels).
    A code held by two bodies in succession names one pair of queues: the first holder stands
    for it here; :func:`definitions` decides which account reads them on a given day.
    """
    seen: set[str] = set()
    result: list[DirectoryEntry] = []
    for entry in directory.entries:
        if entry.reach != "direct" or (at is not None and not valid_at(entry, at)):
            continue
        code = _primary_code(entry)
        if code not in seen:
            seen.add(code)
            result.append(entry)
    return result


def _queue_holders(directory: DirectorySource) -> dict[str, list[DirectoryEntry]]:
    """Entries reached directly, grouped by the code naming their queues, oldest first.

    A code may pass from one body to another (its periods never overlap: the directory loader
    checks it), so one pair of queues can have several holders in succession."""
    holders: dict[str, list[DirectoryEntry]] = {}
    for entry in directory.entries:
        if entry.reach == "direct":
            holders.setdefault(_primary_code(entry), []).append(entry)
    for entries in holders.values():
        entries.sort(key=lambda e: e.valid_from or _EARLIEST)
    return holders


_EARLIEST = datetime.min.replace(tzinfo=VIETNAM_TZ)


def _holder_at(holders: Sequence[DirectoryEntry], at: datetime) -> DirectoryEntry:
    """Who reads a code's queues at ``at``: the last holder whose period began by then (still
    valid, or abolished since and draining what it was sent); before any began, the first."""
    began = [e for e in holders if e.valid_from is None or e.valid_from <= at]
    return began[-1] if began else holders[0]


@dataclass(frozen=True, slots=True)
class Handover:
    """A day on which an organization code, and so its two queues, passes to another account."""

    code: str
    day: date
    """The first day (Vietnam time) the new holder reads the queues."""
    before: str
    """The broker account reading them until the day before."""
    after: str
    before_name: str
    after_name: str

    def describe(self) -> str:
        return (f"on {self.day.isoformat()} the queues of {self.code} pass from broker account "
                f"{self.before!r} ({self.before_name}) to {self.after!r} ({self.after_name})")


def handovers(
    directory: DirectorySource, *, after: date | datetime | None = None
) -> list[Handover]:
    """Every change of the account reading a code's queues, in order of day; with ``after``,
    only those taking effect after that moment (what an operator still has to do)."""
    found: list[Handover] = []
    for code, holders in _queue_holders(directory).items():
        for before, then in itertools.pairwise(holders):
            if before.broker_user == then.broker_user or then.valid_from is None:
                continue
            if after is not None and then.valid_from <= instant(after):
                continue
            found.append(Handover(
                code, then.valid_from.astimezone(VIETNAM_TZ).date(), before.broker_user or "",
                then.broker_user or "", before.name, then.name))
    return sorted(found, key=lambda h: (h.day, h.code))


def build_topology(
    directory: DirectorySource,
    *,
    prefix: str = "edxml",
    quorum: bool = True,
    delivery_limit: int = 5,
    retry_delays_ms: Sequence[int] = DEFAULT_RETRY_DELAYS_MS,
    at: date | datetime | None = None,
) -> Topology:
    """The hub's exchanges, queues and bindings for ``directory`` (see the module diagram)."""
    names = Names(prefix)
    if delivery_limit < 1:
        raise ConfigurationError(f"delivery_limit must be >= 1, got {delivery_limit}")
    delays = tuple(retry_delays_ms)
    if not delays or any(d < 1 for d in delays) or list(delays) != sorted(set(delays)):
        raise ConfigurationError(
            f"retry delays must be positive and strictly increasing, got {delays}"
        )

    exchanges = (
        ExchangeSpec(names.inbound, "direct"),
        ExchangeSpec(names.deliver, "direct"),
        # fanout: whatever key a message was dead-lettered with, it lands in the DLQ; the hub's
        # x-hub-original-routing header keeps where it was going.
        ExchangeSpec(names.dlx, "fanout"),
    )

    def delivery_queue(name: str) -> QueueSpec:
        return QueueSpec(
            name,
            arguments=_queue_arguments(
                quorum=quorum, dead_letter_exchange=names.dlx, dead_letter_routing_key=name
            ),
        )

    queues: list[QueueSpec] = [
        QueueSpec(
            names.intake,
            arguments=_queue_arguments(
                quorum=quorum,
                dead_letter_exchange=names.dlx,
                dead_letter_routing_key=names.intake,
                delivery_limit=delivery_limit,
            ),
        ),
        QueueSpec(names.dlq, arguments=_queue_arguments(quorum=quorum)),
        delivery_queue(names.gateway),
    ]
    bindings: list[BindingSpec] = [
        BindingSpec(names.inbound, names.intake, ENVELOPE_KEY),
        BindingSpec(names.inbound, names.intake, STATUS_KEY),
        BindingSpec(names.dlx, names.dlq, ""),
        BindingSpec(names.deliver, names.gateway, AXIS_INBOX_KEY),
        BindingSpec(names.deliver, names.gateway, AXIS_STATUS_KEY),
    ]
    for delay in delays:
        queues.append(
            QueueSpec(
                names.retry(delay),
                arguments=_queue_arguments(
                    quorum=quorum,
                    # "" is the default exchange: the expired message goes straight back to
                    # the intake queue by name.
                    dead_letter_exchange="",
                    dead_letter_routing_key=names.intake,
                    message_ttl_ms=delay,
                ),
            )
        )
    for entry in direct_entries(directory, at):
        code = _primary_code(entry)
        queues.append(delivery_queue(names.inbox(code)))
        queues.append(delivery_queue(names.status(code)))
        bindings.append(BindingSpec(names.deliver, names.inbox(code), inbox_key(code)))
        bindings.append(BindingSpec(names.deliver, names.status(code), status_key(code)))

    return Topology(
        names=names,
        exchanges=exchanges,
        queues=tuple(queues),
        bindings=tuple(bindings),
        retry_delays_ms=delays,
        delivery_limit=delivery_limit,
    )


# -- broker accounts -------------------------------------------------------------------------


def _anchored(*alternatives: str) -> str:
    # RabbitMQ runs permission regexes unanchored (Erlang re:run), so "edxml.inbound" would also
    # match "edxml.inbound.evil" and an unescaped '.' matches any character: always anchor and
    # escape.
    body = "|".join(re.escape(a) for a in alternatives)
    return f"^(?:{body})$"


def agency_permissions(entry: DirectoryEntry, prefix: str = "edxml") -> tuple[str, str, str]:
    """``(configure, write, read)`` regexes of an agency's broker account.

    AMQP 0-9-1 access control in RabbitMQ: ``basic.publish`` needs *write* on the exchange,
    ``basic.consume`` / ``basic.get`` need *read* on the queue, passive declares need nothing.
    So an agency configures nothing (``""`` means "no resource" to RabbitMQ), writes only to
    the inbound exchange and reads only its own two queues (which also lets it purge them —
    they are its own). It can neither publish to the deliver exchange (impersonating the hub)
    nor to the default exchange (straight into another agency's queue).
    """
    return _agency_grant(prefix, (_primary_code(entry),))


def _agency_grant(prefix: str, codes: Sequence[str]) -> tuple[str, str, str]:
    """An agency's grant reading the queues of ``codes`` (none: ``""``, no queue at all)."""
    names = Names(prefix)
    queues = [name for code in codes for name in (names.inbox(code), names.status(code))]
    return "", _anchored(names.inbound), _anchored(*queues) if queues else ""


def gateway_permissions(prefix: str = "edxml") -> tuple[str, str, str]:
    """``(configure, write, read)`` of the national-axis gateway's account.

    It publishes what arrives from the axis into the inbound exchange (for every remote body:
    the pipeline lists it among the trusted publishers) and consumes the gateway queue.
    """
    names = Names(prefix)
    return "", _anchored(names.inbound), _anchored(names.gateway)


def permission_matches(regex: str, resource: str) -> bool:
    """Whether RabbitMQ grants ``resource`` under permission ``regex`` (for tests and doctor).

    RabbitMQ's semantics: ``""`` is a synonym of ``^$`` and grants nothing (the default
    exchange is checked as ``amq.default``); otherwise an unanchored regex search.
    """
    if regex == "":
        return False
    return re.search(regex, resource) is not None


def rabbit_password_hash(password: str, *, salt: bytes) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt ‖ SHA-256(salt ‖ password)).

    For operators who want hashes in ``definitions.json``; the caller supplies the password and
    a 4-byte random salt (``os.urandom(4)``) — this module never invents secrets.
    """
    if len(salt) != 4:
        raise ValueError("RabbitMQ password salts are 4 bytes")
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def _user(name: str, password_hashes: Mapping[str, str] | None) -> dict[str, Any]:
    # Without a supplied hash the account gets password_hash "": RabbitMQ then refuses password
    # log-in for it (x509/EXTERNAL still works) until an operator runs
    # `rabbitmqctl change_password`. Nothing secret is generated into the file. Re-importing
    # such a file clears passwords set since: pass hashes, or import users once.
    user: dict[str, Any] = {
        "name": name,
        "password_hash": (password_hashes or {}).get(name, ""),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": [],
    }
    return user


def definitions(
    topology: Topology,
    directory: DirectorySource,
    *,
    vhost: str = "/",
    hub_user: str = "edxml-hub",
    password_hashes: Mapping[str, str] | None = None,
    at: date | datetime | None = None,
) -> dict[str, Any]:
    """RabbitMQ ``definitions.json`` content for ``topology`` plus one account per agency.

    Every body reached directly gets an account (past bodies keep theirs to drain their
    queues; a body that does not exist yet gets its account ahead, so its credentials can be
    handed out before its first day), with the least-privilege permissions of
    :func:`agency_permissions`; the hub's own account has full rights in ``vhost``.

    A code held by two bodies in succession (:func:`handovers`) names one pair of queues, which
    one account at a time may read: the body holding the code at ``at`` (the moment the
    definitions are for; the other account keeps only its right to publish). Without ``at``
    such a directory is refused, naming the code, the accounts and the day.
    ``password_hashes`` maps account names to ``rabbit_password_hashing_sha256`` hashes.
    """
    users: list[dict[str, Any]] = [_user(hub_user, password_hashes)]
    permissions: list[dict[str, Any]] = [
        {"user": hub_user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    ]
    accounts: dict[str, str] = {hub_user: "the hub"}

    def add(user: str, owner: str, grant: tuple[str, str, str]) -> None:
        if user in accounts:
            # One account per agency: a shared account would let one body read another's
            # inbox and defeat the AMQP user_id check on the sender.
            raise ConfigurationError(
                f"broker user {user!r} is used by {accounts[user]} and {owner}"
            )
        accounts[user] = owner
        users.append(_user(user, password_hashes))
        configure, write, read = grant
        permissions.append(
            {"user": user, "vhost": vhost, "configure": configure, "write": write, "read": read}
        )

    prefix = topology.names.prefix
    holders = _queue_holders(directory)
    if at is None:
        moving = handovers(directory)
        if moving:
            raise ConfigurationError(
                f"{moving[0].describe()}: one account at a time may read them, so give the "
                "moment the definitions are for (hub topology export --at DAY)"
            )
    # Who reads each code's queues at `at` (without `at` every code has one account).
    reader = {
        code: _holder_at(entries, instant(at)).broker_user if at is not None
        else entries[-1].broker_user
        for code, entries in holders.items()
    }
    # One account per broker user: a body in several periods (renamed) under one account and
    # code is one agency; one account for two codes is refused by add().
    by_user: dict[str, DirectoryEntry] = {}
    for entry in directory.entries:
        if entry.reach != "direct" or not entry.broker_user:
            continue
        first = by_user.setdefault(entry.broker_user, entry)
        if _primary_code(first) != _primary_code(entry):
            raise ConfigurationError(
                f"broker user {entry.broker_user!r} is used by {first.name!r} and {entry.name!r}"
            )
    for user, entry in by_user.items():
        code = _primary_code(entry)
        add(user, repr(entry.name), _agency_grant(prefix, (code,) if reader[code] == user else ()))
    # Bodies behind the national axis share the gateway's account (the sample directory calls
    # it "axis-gateway"); it is created once.
    gateways = dict.fromkeys(
        e.broker_user for e in directory.entries
        if e.reach == "axis" and e.broker_user and (at is None or valid_at(e, at))
    )
    for user in gateways:
        if user:
            add(user, "the national-axis gateway", gateway_permissions(prefix))
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "exchanges": [
            {
                "name": spec.name,
                "vhost": vhost,
                "type": spec.type,
                "durable": spec.durable,
                "auto_delete": False,
                "internal": False,
                "arguments": dict(spec.arguments),
            }
            for spec in topology.exchanges
        ],
        "queues": [
            {
                "name": spec.name,
                "vhost": vhost,
                "durable": spec.durable,
                "auto_delete": False,
                "arguments": dict(spec.arguments),
            }
            for spec in topology.queues
        ],
        "bindings": [
            {
                "source": spec.exchange,
                "vhost": vhost,
                "destination": spec.queue,
                "destination_type": "queue",
                "routing_key": spec.routing_key,
                "arguments": {},
            }
            for spec in topology.bindings
        ],
    }


def all_names(topology: Topology) -> Iterable[str]:
    """Every exchange and queue name of ``topology`` (for cleanup in tests and tooling)."""
    yield from (e.name for e in topology.exchanges)
    yield from (q.name for q in topology.queues)

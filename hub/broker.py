"""The RabbitMQ adapter: the only module that imports pika.

Everything pika-specific stays here (dramatiq's ``brokers/rabbitmq.py`` is the model): pika's
exceptions become :class:`BrokerUnavailable` (a :class:`~hub.errors.TransientError`) and never
leak; deliveries and outgoing messages are plain frozen values; settlement (``basic_ack`` /
``basic_nack``) happens in :class:`Settler` and nowhere else, and settling a delivery twice raises.

Publishing uses publisher confirms *pipelined*: a batch is written without waiting, then the
connection's I/O loop runs until every sequence number is confirmed (``basic.ack``) — or one is
nacked or returned as unroutable (``mandatory``), which fails the whole batch. Waiting for each
confirm in turn (what ``BlockingChannel.basic_publish`` does in confirm mode) costs a round trip
per message (~0.7 ms measured); pipelining costs ~0.06 ms.

pika 1.x ``BlockingConnection`` is not thread-safe: one connection per consumer thread, and the
connection's own ``sleep``/``process_data_events`` keep heartbeats alive while waiting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import functools
import hashlib
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import pika
import pika.data
import pika.exceptions
import pika.spec

from hub.errors import TransientError
from hub.logs import get_logger
from hub.messages import UNFIT_CHAR, Delivery, Outgoing
from hub.reasons import Reason

log = get_logger("hub.broker")

__all__ = ["BrokerRefused", "BrokerUnavailable", "Connection", "Delivery", "Outgoing", "SettledTwice",
           "Settler", "connect"]


class BrokerUnavailable(TransientError):
    """The broker cannot be reached or refused an operation; retry with backoff."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.BROKER_UNAVAILABLE, detail)


class BrokerRefused(BrokerUnavailable):
    """The broker answered and said no: a refused login (wrong user or password, no access to
    the vhost), a missing permission, an unknown exchange, or a ``user_id`` that is not the
    login. Retrying does not help until the configuration changes; the CLI reports it as a
    configuration error. A subclass of :class:`BrokerUnavailable` so that a long-running
    consumer still backs off and retries (an operator may fix the account meanwhile)."""

    def __init__(self, detail: str, reply_code: int | None = None, reply_text: str = "") -> None:
        super().__init__(detail)
        self.reply_code = reply_code
        self.reply_text = reply_text


_LOGIN_REFUSED = (pika.exceptions.ProbableAuthenticationError,
                  pika.exceptions.AuthenticationError,
                  pika.exceptions.ProbableAccessDeniedError)


class SettledTwice(RuntimeError):
    """A delivery was acknowledged or rejected twice: a bug, never a runtime condition."""


class TopologyLike(Protocol):
    @property
    def exchanges(self) -> Sequence[Any]: ...
    @property
    def queues(self) -> Sequence[Any]: ...
    @property
    def bindings(self) -> Sequence[Any]: ...


def _noop() -> None:
    return None


def _params(url: str, name: str, heartbeat: int = 15) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name[:200], "product": "edxml-hub"}
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.stack_timeout = 10
    return params



# -- what a publisher sent, made into values the hub can write back ---------------------------
# The hub copies a publisher's message id and headers onto the messages it publishes about a
# delivery (its dead letter, its retries): anything taken from a delivery must be something
# pika can encode again, in a content-header frame the broker accepts. Otherwise one crafted
# message fails the publish, the connection drops, the delivery comes back — a loop that also
# takes the messages delivered beside it to the quorum queue's delivery limit.

SHORT_MAX = 255
"""Bytes of an AMQP short string (AMQP 0-9-1 §4.2.5.3): a message id, a header name."""

HEADERS_MAX = 32 * 1024
"""Most bytes of a publisher's own headers (encoded) a delivery keeps — less on a broker that
negotiated a ``frame_max`` under 128 KB (a quarter of it). The dead letter carries them with
the hub's ``x-hub-*`` headers in one content-header frame, which must fit ``frame_max``."""

HEADER_VALUE_MAX = 8 * 1024
"""Most bytes of one text header value the hub publishes: a longer list (``x-hub-recipient``
of an envelope to thousands of bodies) ends in ``… and N more``."""

DROPPED_HEADERS = "x-edxml-hub-dropped-headers"
"""Set on a delivery whose publisher headers went over :data:`HEADERS_MAX`: how many were
dropped and how many bytes. Not an ``x-hub-`` name: the hub drops those from publishers that
are not trusted (``Pipeline._believed``), and this one must reach the dead letter."""

_KEPT_PREFIXES = ("x-hub-", "x-death", "x-delivery-count", "x-first-death")
"""Headers outside the publisher budget: the hub's own facts (dropped before planning when a
publisher that is not trusted sends them) and the broker's (never copied onto what the hub
publishes). The budget counts only what the hub copies."""

_NESTING_MAX = 16
"""Deepest table or array inside a header the adapter decodes; deeper ones become text
(pika's decoder recurses: a deep enough value raises while reading the frame)."""

_UNENCODABLE = (pika.exceptions.ShortStringTooLong, pika.exceptions.UnsupportedAMQPFieldException,
                struct.error, ValueError, OverflowError, TypeError, RecursionError)
"""What pika's marshalling raises for a value it cannot write (a short string over 255 bytes,
an integer over 64 bits, a float, text that is not Unicode scalar values)."""




def _short_text(value: Any) -> Any:
    """A short string (message id, user id, app id, header name) as text that can be written
    back: UTF-8 of at most :data:`SHORT_MAX` bytes, no control character (PostgreSQL text
    cannot hold NUL). pika hands over ``bytes`` when it was not UTF-8; such a value, or one
    with a control character, becomes its printable part followed by ``~`` and 16 hex digits
    of the SHA-256 of the original bytes, so that two different ids stay different."""
    if value is None:
        return None
    if (type(value) is str and UNFIT_CHAR.search(value) is None
            and (len(value) <= SHORT_MAX // 4 or len(value.encode()) <= SHORT_MAX)):
        return value
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    clean = UNFIT_CHAR.sub("", raw.decode("utf-8", "replace"))
    tag = "~" + hashlib.sha256(raw).hexdigest()[:16]
    head = clean.encode()[:SHORT_MAX - len(tag)].decode("utf-8", "ignore")
    return head + tag


def _header_value(value: Any, depth: int = 0) -> Any:
    """A header value as something pika encodes again: a number no AMQP integer holds, a
    float, a table nested too deep — anything it would refuse — becomes text."""
    if value is None or isinstance(value, str | bytes | bool | datetime.datetime):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**63 else str(value)
    if depth >= _NESTING_MAX:
        return "(nested too deep)"
    if isinstance(value, dict):
        return {_short_text(k): _header_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_header_value(v, depth + 1) for v in value]
    if isinstance(value, decimal.Decimal):
        try:
            pika.data.encode_value([], value)
        except _UNENCODABLE:
            return str(value)
        return value
    return str(value)


def _entry_size(name: str, value: Any) -> int:
    """Bytes of one header in a table (pika's encoding); over any budget when unencodable."""
    try:
        if type(value) is str:  # the common case, counted as pika writes it: 'S', length, UTF-8
            return 6 + len(name.encode()) + len(value.encode())
        return 1 + len(name.encode()) + int(pika.data.encode_value([], value))
    except (*_UNENCODABLE, UnicodeError):
        return 2**31


def _headers(raw: Mapping[Any, Any] | None, budget: int) -> dict[str, Any]:
    """A delivery's headers as plain data the hub can publish again (:func:`_short_text` names,
    :func:`_header_value` values), the publisher's own kept in order while they fit ``budget``
    bytes; the rest are dropped and counted in :data:`DROPPED_HEADERS`."""
    headers: dict[str, Any] = {}
    used = dropped = dropped_bytes = 0
    room = budget - 128  # what the DROPPED_HEADERS note takes
    for key, value in (raw or {}).items():
        name = _short_text(key)
        value = _header_value(value)
        if name.startswith(_KEPT_PREFIXES):
            headers[name] = value
            continue
        size = _entry_size(name, value)
        if used + size > room:
            dropped += 1
            dropped_bytes += size if size < 2**31 else 0
            continue
        used += size
        headers[name] = value
    if dropped:
        headers[DROPPED_HEADERS] = (f"{dropped} header(s), {dropped_bytes} bytes, over the "
                                    f"hub's {budget}-byte limit")
    return headers


def _count(value: Any) -> int:
    """``x-delivery-count``: RabbitMQ's own on a redelivery, but on a first delivery whatever
    the publisher put there (0 when that is not a whole number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _delivery(method: Any, props: Any, body: bytes, headers_max: int = HEADERS_MAX) -> Delivery:
    """A message as plain data. What came from the publisher is data, never trusted to have
    the shape AMQP suggests: header names, message id, user id and app id become text that can
    be written back (:func:`_short_text`), header values something pika encodes again, and the
    publisher's headers are bounded (:func:`_headers`)."""
    headers = _headers(props.headers, headers_max)
    return Delivery(
        tag=method.delivery_tag, body=body, routing_key=_short_text(method.routing_key),
        exchange=_short_text(method.exchange), redelivered=method.redelivered, headers=headers,
        message_id=_short_text(props.message_id), user_id=_short_text(props.user_id),
        app_id=_short_text(props.app_id), delivery_count=_count(headers.get("x-delivery-count")),
        timestamp=props.timestamp if isinstance(props.timestamp, int) else None,
    )


_PIKA_DECODE_VALUE: Callable[[bytes, int], tuple[Any, int]] = pika.data.decode_value
_SIZED = struct.Struct(">I")
_decoding = threading.local()


def _decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    """pika's field-value decoder, but a value pika cannot turn into Python does not raise:
    pika raises while reading the message's content header, drops the connection and the
    broker delivers the message again — a requeue loop any publisher could start (RabbitMQ
    passes any such value), and one that also takes the messages delivered beside it to the
    delivery limit. A timestamp (``T``) no ``datetime`` holds stays its number of seconds; a
    float (``f``, ``d``) that is no integer (NaN, infinity) becomes its text; a table or array
    nested deeper than :data:`_NESTING_MAX` (pika recurses) becomes a note, skipped whole."""
    kind = encoded[offset:offset + 1]
    depth = getattr(_decoding, "depth", 0)
    if kind in (b"F", b"A") and depth >= _NESTING_MAX:
        size: int = _SIZED.unpack_from(encoded, offset + 1)[0]
        return "(nested too deep)", offset + 5 + size
    _decoding.depth = depth + 1
    try:
        return _PIKA_DECODE_VALUE(encoded, offset)
    except (ValueError, OverflowError, OSError):
        if kind == b"T":
            seconds: int = struct.unpack_from(">Q", encoded, offset + 1)[0]
            return seconds, offset + 9
        if kind == b"d":
            return str(struct.unpack_from(">d", encoded, offset + 1)[0]), offset + 9
        if kind == b"f":
            return str(struct.unpack_from(">f", encoded, offset + 1)[0]), offset + 5
        raise
    finally:
        _decoding.depth = depth


pika.data.decode_value = _decode_value  # pika's own decode_table looks it up by this name


class Connection:
    """A blocking AMQP connection with a consuming channel and a confirming publish channel."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        try:
            self._conn = pika.BlockingConnection(_params(url, name))
            self.channel = self._conn.channel()
            self._pub = self._conn.channel()
        except _LOGIN_REFUSED as exc:
            user = params_user(url)
            raise BrokerRefused(f"the broker refused the login of {user!r}: wrong user name or "
                                f"password, or no access to the vhost ({exc!r})", 403) from None
        except Exception as exc:
            # pika's connection workflow raises its own classes besides AMQPError (a frozen
            # node gives AMQPConnectorStackTimeout): none of them may leak out of the adapter.
            raise BrokerUnavailable(f"cannot connect: {exc!r}") from None
        self._pending: dict[int, str | None] = {}
        self._failed: list[str] = []
        self._seq = 0
        self._failed_through = 0
        """Every batch whose first message was sent at or before this sequence number has
        failed: set when a nack or a return *arrives* (not when someone waits), so a batch in
        flight with a failed one can never be reported confirmed, whatever is sent meanwhile."""
        self._select_ok = False
        self._pub_closed: tuple[int, str] | None = None
        """Why the broker closed the publishing channel (reply code and text), if it did."""
        _larger_reads(self._conn._impl)
        self._headers_max = min(HEADERS_MAX, self._conn._impl._body_max_length // 4)
        """The publisher headers a delivery keeps (:func:`_headers`): a quarter of the
        content-header frame this connection negotiated, at most :data:`HEADERS_MAX`."""
        impl = self._pub._impl
        impl.add_on_return_callback(self._on_return)
        impl.add_on_close_callback(self._on_pub_closed)
        impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select_ok)
        self._wait(lambda: self._select_ok, 10, "confirm.select")

    # -- publisher confirms ------------------------------------------------------------------
    def _on_select_ok(self, _frame: Any) -> None:
        self._select_ok = True

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._pending if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        nack = isinstance(method, pika.spec.Basic.Nack)
        for tag in tags:
            if tag not in self._pending:
                continue  # a late answer about a batch already given up on
            mid = self._pending.pop(tag)
            if nack:
                self._failed.append(f"nacked by broker: {mid}")
                self._failed_through = self._seq
        # Wake whoever waits: with batches in flight at once, any confirm may finish one.
        self._wake()

    def wake(self) -> None:
        """Make a :meth:`pump` in progress return at once; callable from any thread (the HTTP
        API's request threads hand work to the thread that owns the connection). A closed
        connection has nothing to wake: then it does nothing."""
        with contextlib.suppress(Exception):
            self._wake()

    def _wake(self) -> None:
        # process_data_events(time_limit) returns early only for events of the blocking
        # layer; a confirm handled on the impl channel is not one. Scheduling a no-op callback
        # is: without it every publish waited out its whole time slice (50 ms measured).
        self._conn.add_callback_threadsafe(_noop)

    def _on_return(self, _ch: Any, method: Any, props: Any, _body: bytes) -> None:
        self._failed.append(
            f"unroutable: exchange={method.exchange!r} key={method.routing_key!r}"
            f" id={props.message_id!r} ({method.reply_text})"
        )
        # The broker returns a message before it confirms it: every batch sent so far is
        # suspect (the returned one is among them).
        self._failed_through = self._seq
        self._wake()

    def _on_pub_closed(self, _channel: Any, reason: Exception) -> None:
        # The broker closes the channel instead of confirming when it refuses a publish: a
        # user_id that is not the login (406 PRECONDITION_FAILED), an unknown exchange (404),
        # no write permission (403). Nothing in flight will be confirmed any more: fail every
        # wait at once with the broker's own words instead of letting it time out.
        code = getattr(reason, "reply_code", 0)
        text = str(getattr(reason, "reply_text", "") or reason)
        self._pub_closed = (int(code or 0), text)
        self._failed_through = self._seq
        self._wake()

    def _raise_if_refused(self) -> None:
        if self._pub_closed is not None and self._pub_closed[0] >= 400:
            code, text = self._pub_closed
            raise BrokerRefused(f"the broker refused the publish: {code} {text}", code, text)

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        try:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable(f"timed out waiting for {what}")
                self._conn.process_data_events(time_limit=min(left, 0.05))
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"{what}: {exc!r}") from None

    def publish(self, messages: Iterable[Outgoing], timeout: float = 30.0) -> int:
        """Publish durably and return once the broker confirmed every message.

        Raises :class:`BrokerUnavailable` if any message is nacked, returned or unconfirmed: the
        caller must then not settle the deliveries that caused them (they will be redelivered and
        republished under the same message id, which recipients deduplicate).
        """
        sent = self.send(messages)
        self.wait(sent, timeout)
        return len(sent)

    def send(self, messages: Iterable[Outgoing]) -> range:
        """Write ``messages`` without waiting; the returned publish sequence numbers go to
        :meth:`wait`. Several sends may be in flight: a consumer writes the next batch while
        the broker still confirms the previous one. Any nack or return fails every wait until
        the connection is given up (the caller then settles nothing it has in flight)."""
        self._raise_if_refused()
        impl = self._pub._impl
        del self._failed[:-10]  # texts for the message only: which batches failed is
        # _failed_through; the last few are kept so a late waiter can say why
        first = self._seq + 1
        frames = _FrameBatch(self._conn._impl)
        channel, body_max = impl.channel_number, self._conn._impl._body_max_length
        try:
            for msg in messages:
                self._seq += 1
                self._pending[self._seq] = msg.message_id
                # The checks pika's Channel.basic_publish makes (its connection makes none
                # before marshalling a message): the channel is open.
                if impl._state != impl.OPEN:
                    impl._raise_if_not_open()
                frames.add(*_frames_that_fit(channel, body_max, msg, int(time.time())))
                frames.flush_if_full()
            frames.close()
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"publish: {exc!r}") from None
        finally:
            frames.release()
        return range(first, self._seq + 1)

    def wait(self, sent: range, timeout: float = 30.0) -> None:
        """Return once the broker confirmed every message of ``sent`` (from :meth:`send`);
        raise :class:`BrokerUnavailable` if any batch in flight with it was nacked or returned."""
        pending = self._pending

        def failed() -> bool:
            return bool(sent) and sent[0] <= self._failed_through

        def done() -> bool:
            return failed() or not any(seq in pending for seq in sent)

        try:
            self._wait(done, timeout, "publisher confirms")
        except BrokerUnavailable:
            self._failed_through = self._seq
            self._raise_if_refused()
            raise
        if failed():
            self._raise_if_refused()
            problems = "; ".join(self._failed[-3:]) or "a batch in flight with it failed"
            raise BrokerUnavailable(f"publisher confirms: not accepted: {problems}")

    # -- topology ------------------------------------------------------------------------------
    def declare(self, topology: TopologyLike) -> None:
        """Declare exchanges, queues and bindings (idempotent)."""
        ch = self.channel
        try:
            for ex in topology.exchanges:
                ch.exchange_declare(ex.name, exchange_type=ex.type, durable=ex.durable,
                                    arguments=dict(getattr(ex, "arguments", {}) or {}) or None)
            for q in topology.queues:
                ch.queue_declare(q.name, durable=q.durable, arguments=dict(q.arguments) or None)
            for b in topology.bindings:
                ch.queue_bind(b.queue, b.exchange, routing_key=b.routing_key)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _channel_error("declare", exc) from None

    def delete(self, topology: TopologyLike) -> None:
        """Remove a topology (tests and ``hub topology delete``)."""
        ch = self.channel
        with contextlib.suppress(pika.exceptions.AMQPError):
            for q in topology.queues:
                ch.queue_delete(q.name)
            for ex in topology.exchanges:
                ch.exchange_delete(ex.name)

    def queue_depth(self, queue: str) -> int:
        try:
            ok = self.channel.queue_declare(queue, passive=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _channel_error(f"queue {queue}", exc) from None
        return int(ok.method.message_count)

    def queue_stats(self, queue: str) -> tuple[int, int] | None:
        """``(ready messages, consumers)`` of ``queue``, or ``None`` when it does not exist.

        A passive declare of a missing queue makes the broker close the channel (404): the
        channel is reopened so that the next question can still be asked (metrics ask one per
        agency queue)."""
        try:
            ok = self.channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise _channel_error(f"queue {queue}", exc) from None
            try:
                self.channel = self._conn.channel()
            except (pika.exceptions.AMQPError, OSError) as again:
                raise BrokerUnavailable(f"reopen channel: {again!r}") from None
            return None
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _channel_error(f"queue {queue}", exc) from None
        return int(ok.method.message_count), int(ok.method.consumer_count)

    # -- consuming -----------------------------------------------------------------------------
    def consume(self, queue: str, prefetch: int, on_delivery: Callable[[Delivery], None]) -> str:
        """Start consuming; ``on_delivery`` runs inside :meth:`pump`."""

        headers_max = self._headers_max

        def _cb(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            on_delivery(_delivery(method, props, body, headers_max))

        try:
            self.channel.basic_qos(prefetch_count=prefetch)
            return str(self.channel.basic_consume(queue, _cb, auto_ack=False))
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _channel_error(f"consume {queue}", exc) from None

    def cancel(self, consumer_tag: str) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            self.channel.basic_cancel(consumer_tag)

    def pump(self, time_limit: float) -> None:
        """Run the I/O loop for up to ``time_limit`` seconds (delivers, heartbeats)."""
        try:
            self._conn.process_data_events(time_limit=time_limit)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"connection lost: {exc!r}") from None

    def sleep(self, seconds: float) -> None:
        """Wait while keeping the connection alive (heartbeats keep flowing)."""
        try:
            self._conn.sleep(seconds)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"connection lost: {exc!r}") from None

    def get(self, queue: str) -> Delivery | None:
        """Take one message (``basic.get``) without acknowledging it."""
        try:
            method, props, body = self.channel.basic_get(queue, auto_ack=False)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _channel_error(f"get {queue}", exc) from None
        if method is None:
            return None
        return _delivery(method, props, body, self._headers_max)

    def settler(self) -> Settler:
        return Settler(self.channel)

    @property
    def is_open(self) -> bool:
        return bool(self._conn.is_open)

    def close(self, timeout: float = 5.0) -> None:
        """Close, waiting at most ``timeout`` seconds.

        pika's close waits for the broker's close-ok; from a frozen or half-failed node it never
        comes (measured: a test hung 12 minutes). The connection is no longer used by anyone
        when this is called, so the close runs in a daemon thread and is abandoned after the
        timeout: the caller (a reconnecting consumer) must not hang on a dead node.
        """
        if not self._conn.is_open:
            return

        def _close() -> None:
            with contextlib.suppress(Exception):
                self._conn.close()

        closer = threading.Thread(target=_close, name="amqp-close", daemon=True)
        closer.start()
        closer.join(timeout)


class Settler:
    """The only place deliveries are settled. Settling a delivery twice raises."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._floor = 0
        """Every delivery tag up to here is settled (tags count from 1 on a channel)."""
        self._settled: set[int] = set()
        """Settled tags above the floor (kept small: the floor moves up past them)."""

    def _mark(self, tag: int) -> None:
        if tag <= self._floor or tag in self._settled:
            raise SettledTwice(f"delivery {tag} settled twice")
        self._settled.add(tag)

    def _advance(self) -> None:
        while self._floor + 1 in self._settled:
            self._floor += 1
            self._settled.discard(self._floor)

    def ack(self, tags: Sequence[int]) -> None:
        """Acknowledge: the delivery's effects are durable (ledger committed, publishes confirmed).

        When ``tags`` are exactly the next unsettled tags of the channel (a consumer's batch),
        one ``basic.ack`` with ``multiple`` covers them all; otherwise one per tag."""
        if not tags:
            return
        ordered = sorted(tags)
        next_unsettled = self._floor + 1
        for tag in tags:
            self._mark(tag)
        contiguous = ordered[0] == next_unsettled and ordered[-1] - ordered[0] + 1 == len(ordered)
        try:
            if contiguous:
                self._channel.basic_ack(ordered[-1], multiple=True)
            else:
                for tag in ordered:
                    self._channel.basic_ack(tag)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"ack: {exc!r}") from None
        finally:
            self._advance()

    def requeue(self, tags: Sequence[int]) -> None:
        """Give deliveries back to the queue (only at shutdown for work not started)."""
        for tag in tags:
            self._mark(tag)
        try:
            for tag in sorted(tags):
                self._channel.basic_nack(tag, requeue=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"nack: {exc!r}") from None
        finally:
            self._advance()


RECV_BYTES = 128 * 1024
"""Bytes asked of each socket read, one ``frame_max`` body frame. pika asks 4 KB
(``_MAX_RECV_BYTES``): a 1 MB message took 256 reads, each a pass of pika's I/O loop that also
copies its growing frame buffer (pika's Python alone, fed in process: 1.55 ms per 1 MB message
in 4 KB reads, 0.48 ms in 128 KB reads; 0.021 vs 0.023 ms per 10 KB message)."""


def _larger_reads(conn_impl: Any) -> None:
    """Set :data:`RECV_BYTES` on this connection's transport only (pika's classes keep 4 KB)."""
    transport = getattr(conn_impl, "_transport", None)
    if transport is not None:
        transport._MAX_RECV_BYTES = RECV_BYTES


class _FrameBatch:
    """Hands pika's transport a batch's frames in few large writes.

    pika writes every frame (method, header, body) of every message separately: a batch of
    128 small messages is ~384 buffered chunks and as many ``send`` calls. While a batch is
    being published, its messages' frames (:func:`_publish_frames`) and any other output of
    the connection are collected here, in order, and written in chunks of about
    :data:`CHUNK` bytes. Only frames are joined: bytes on the wire are the same, and a
    message's frames are always written whole (all of them are marshalled before any is
    added, as pika does)."""

    CHUNK = 256 * 1024

    def __init__(self, conn_impl: Any) -> None:
        self._impl = conn_impl
        self._emit = conn_impl._adapter_emit_data
        self._parts: list[bytes] = []
        self._size = 0
        conn_impl._adapter_emit_data = self._collect  # this instance only, until release()

    def _collect(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)

    def add(self, frames: list[bytes], count: int, size: int) -> None:
        """Take one message's ``count`` marshalled frames (``size`` bytes in all) and count
        them as pika's ``_output_marshaled_frames`` does: its heartbeat checker sends a
        heartbeat only when ``bytes_sent`` did not move."""
        impl = self._impl
        impl.bytes_sent += size
        impl.frames_sent += count
        self._parts += frames
        self._size += size

    def flush_if_full(self) -> None:
        if self._size >= self.CHUNK:
            self.close()

    def close(self) -> None:
        """Write what was collected (in order)."""
        if self._parts:
            data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts, self._size = [], 0
            self._emit(data)

    def release(self) -> None:
        """Give pika its own output back; frames not yet written (an error) are dropped with
        the connection they were meant for."""
        self._impl.__dict__.pop("_adapter_emit_data", None)


# -- Basic.Publish marshalled without pika's per-frame objects ---------------------------------
# pika 1.4 builds a BasicProperties, three frame objects and a struct.pack per field for every
# message (~9 µs); the frames below are the same bytes (tests/unit/test_broker_publish.py
# compares them with pika's own marshalling) from a few precompiled structs. AMQP 0-9-1 §4.2.3
# (frames), §4.2.6 (content header), §4.2.5.3 (short strings); the field order and property
# flags are those of pika.spec.Basic.Publish and pika.spec.BasicProperties.
_FRAME_END = b"\xce"
_BODY_FRAME = struct.Struct(">BHI")
"""Type 3 (body), channel, payload size."""
_METHOD_FRAME = struct.Struct(">BHIIH")
"""Type 1 (method), channel, payload size, Basic.Publish (60, 40), ticket 0."""
_HEADER_FRAME = struct.Struct(">BHIHxxQH")
"""Type 2 (content header), channel, payload size, class 60 (basic), weight 0, body size,
property flags (one word: no property past bit 1 is used)."""
_U32 = struct.Struct(">I")
_TIMESTAMP = struct.Struct(">Q")
_STR_VALUE = struct.Struct(">cI")
_SHORT_LEN = [bytes((n,)) for n in range(256)]
_APP_ID = b"\x09edxml-hub"
_PERSISTENT = b"\x02"
_FLAGS = (1 << 12) | (1 << 6) | (1 << 3)
"""delivery_mode, timestamp and app_id: set on every message."""
_CONTENT_TYPE, _HEADERS, _EXPIRATION, _MESSAGE_ID, _USER_ID = 1 << 15, 1 << 13, 1 << 8, 1 << 7, 1 << 4


def _short(value: str | bytes) -> bytes:
    """An AMQP short string, as ``pika.data.encode_short_string`` writes it (and refuses it)."""
    data = value if isinstance(value, bytes) else value.encode("UTF-8")
    if len(data) > 255:
        raise pika.exceptions.ShortStringTooLong(data)
    return _SHORT_LEN[len(data)] + data


def _table(headers: Mapping[str, Any]) -> bytes:
    """A headers table, as ``pika.data.encode_table`` writes it. Tables of plain ``str`` keys
    and values (every header the hub writes itself) take the short way; anything else
    (numbers, booleans, nested tables a replayed delivery carries) is encoded by pika."""
    parts: list[bytes] = []
    for key, value in headers.items():
        if type(key) is not str or type(value) is not str:
            return _pika_table(headers)
        k, v = key.encode("UTF-8"), value.encode("UTF-8")
        if len(k) > 255:
            return _pika_table(headers)  # pika raises ShortStringTooLong
        parts += (_SHORT_LEN[len(k)], k, _STR_VALUE.pack(b"S", len(v)), v)
    table = b"".join(parts)
    return _U32.pack(len(table)) + table


def _pika_table(headers: Mapping[str, Any]) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, dict(headers))
    return b"".join(pieces)


@functools.lru_cache(maxsize=1024)
def _publish_method(channel: int, exchange: str, routing_key: str) -> bytes:
    """The Basic.Publish method frame (mandatory, not immediate): the same for every message
    to one exchange and routing key."""
    args = _short(exchange) + _short(routing_key) + b"\x01"
    return _METHOD_FRAME.pack(1, channel, 6 + len(args), 0x003C0028, 0) + args + _FRAME_END


def _publish_frames(channel: int, body_max: int, msg: Outgoing,
                    timestamp: int) -> tuple[list[bytes], int, int]:
    """The frames pika's ``Channel.basic_publish`` writes for ``msg`` with the properties
    :meth:`Connection.send` gives it, body frames split at ``body_max`` bytes: ``(pieces,
    frame count, bytes)``. Raises what pika raises for a message it cannot marshal (a short
    string over 255 bytes, a header value of no AMQP type)."""
    method = _publish_method(channel, msg.exchange, msg.routing_key)
    flags = _FLAGS
    props: list[bytes] = []
    if msg.content_type is not None:
        flags |= _CONTENT_TYPE
        props.append(_short(msg.content_type))
    if msg.headers:
        flags |= _HEADERS
        props.append(_table(msg.headers))
    props.append(_PERSISTENT)
    if msg.expiration_ms is not None:
        flags |= _EXPIRATION
        props.append(_short(str(msg.expiration_ms)))
    if msg.message_id is not None:
        flags |= _MESSAGE_ID
        props.append(_short(msg.message_id))
    props.append(_TIMESTAMP.pack(timestamp))
    if msg.user_id is not None:
        flags |= _USER_ID
        props.append(_short(msg.user_id))
    props.append(_APP_ID)
    encoded = b"".join(props)
    body = msg.body
    if not isinstance(body, bytes):
        body = body.encode("UTF-8")  # pika's as_bytes
    length = len(body)
    header = _HEADER_FRAME.pack(2, channel, 14 + len(encoded), 60, length, flags) + encoded + _FRAME_END
    if not length:
        return [method, header], 2, len(method) + len(header)
    if length <= body_max:
        return ([method, header, _BODY_FRAME.pack(3, channel, length), body, _FRAME_END], 3,
                len(method) + len(header) + length + 8)
    frames = [method, header]
    for start in range(0, length, body_max):
        chunk = body[start:start + body_max]
        frames += (_BODY_FRAME.pack(3, channel, len(chunk)), chunk, _FRAME_END)
    count = 2 + (length + body_max - 1) // body_max
    return frames, count, len(method) + len(header) + length + 8 * (count - 2)


def _frames_that_fit(channel: int, body_max: int, msg: Outgoing,
                     timestamp: int) -> tuple[list[bytes], int, int]:
    """:func:`_publish_frames` of ``msg`` — or, when pika could not marshal its properties or
    their content-header frame would be over the negotiated ``frame_max`` (the broker closes
    the connection: the delivery that caused it comes back, a loop), of ``msg`` made to fit
    (:func:`_fitted`). Either way the message is written: a publisher's odd header never fails
    a publish. A text header value over :data:`HEADER_VALUE_MAX` bytes is always cut."""
    # The other properties (exchange, routing key, message id, content type, user id) are not
    # made to fit: a delivery's are (:func:`_delivery`), the rest are the hub's own.
    try:
        if any(type(v) is str and len(v) > HEADER_VALUE_MAX // 4
               and len(v.encode("utf-8", "surrogatepass")) > HEADER_VALUE_MAX
               for v in msg.headers.values()):
            raise _FrameTooLarge("a header value")
        built = _publish_frames(channel, body_max, msg, timestamp)
        if len(built[0][1]) - 8 <= body_max:  # the content-header frame: 7 octets, payload, end
            return built
        raise _FrameTooLarge("the content header")
    except (*_UNENCODABLE, _FrameTooLarge) as exc:
        fitted = _fitted(msg, body_max)
        log.warning("outgoing_properties_cut", message_id=fitted.message_id,
                    exchange=msg.exchange, routing_key=msg.routing_key,
                    error=type(exc).__name__, headers=len(msg.headers),
                    headers_kept=len(fitted.headers))
        return _publish_frames(channel, body_max, fitted, timestamp)


class _FrameTooLarge(Exception):
    """Properties pika would write but the broker would refuse (over ``frame_max``)."""


def _capped(text: str, limit: int = HEADER_VALUE_MAX) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes: a comma-separated list keeps its first items
    and says how many more there were, any other text its first bytes."""
    data = text.encode("utf-8", "replace")  # a lone surrogate (no UTF-8 for it) becomes "?"
    if len(data) <= limit:
        return data.decode()
    room = limit - 48  # the tail
    items = data.decode().split(",")
    if len(items) > 1:
        kept: list[str] = []
        size = 0
        for item in items:
            size += len(item.encode()) + 1
            if size > room:
                break
            kept.append(item)
        return ",".join([*kept, f"… and {len(items) - len(kept)} more"])
    head = data[:room].decode("utf-8", "ignore")
    return f"{head}… and {len(data) - len(head.encode())} more bytes"


def _fitted(msg: Outgoing, body_max: int) -> Outgoing:
    """``msg`` with headers pika can marshal in one content-header frame of ``body_max``
    bytes: names made short (:func:`_short_text`), values made encodable
    (:func:`_header_value`) and text values cut (:func:`_capped`); then the hub's own
    ``x-hub-*`` headers first and the others in order, while they fit. Its other properties
    are the hub's own (a delivery's message id is made short when it is taken,
    :func:`_delivery`): one pika refuses is a bug of the hub, and still fails the batch."""
    headers: dict[str, Any] = {}
    for key, value in msg.headers.items():
        value = _header_value(value)
        headers[_short_text(key)] = _capped(value) if isinstance(value, str) else value
    room = body_max - 14 - 4 * (SHORT_MAX + 1) - 64  # the other properties, at their longest
    used, kept = 4, set()
    for name in sorted(headers, key=lambda k: not k.startswith("x-hub-")):
        size = _entry_size(name, headers[name])
        if used + size <= room:
            used += size
            kept.add(name)
    return dataclasses.replace(msg, headers={k: v for k, v in headers.items() if k in kept})


def _channel_error(what: str, exc: Exception) -> BrokerUnavailable:
    """A channel operation failed: refused by the broker (no permission 403, not found 404,
    precondition 406) or the connection is gone."""
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code in (403, 404, 406):
        return BrokerRefused(f"{what}: {exc.reply_code} {exc.reply_text}", exc.reply_code,
                             exc.reply_text)
    return BrokerUnavailable(f"{what}: {exc!r}")


def params_user(url: str) -> str:
    """The user name of an AMQP URL (never the password), for messages."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).username or "guest")


def connect(url: str, name: str) -> Connection:
    return Connection(url, name)

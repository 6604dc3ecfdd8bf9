"""HTTP client of the national axis (``requests``, already a dependency of the hub).

Every call is signed with the system's secret (:func:`hub.axis.protocol.auth_headers`); TLS
certificates are verified unless the settings say otherwise (a local simulator). Network
failures become :class:`AxisUnavailable` (a :class:`~hub.errors.TransientError`,
AXIS_UNAVAILABLE) naming their kind — ``timeout``, ``connection``, ``http_5xx`` … — and never
leak ``requests``' own exceptions. ``send`` returns the axis' :class:`Answer` for the connector
to judge; the other calls raise on anything but a usable answer — an ``OK`` JSON answer (a body
that is not JSON, even valid JSON too deeply nested to decode, or that carries no ``status``, is
``AxisUnavailable("answer")``: a proxy's page or a misbehaving peer, try again later). Nothing
here logs a secret or a document body.

What answers at the axis' URL is held to three bounds, whatever it is:

- **No redirect is followed** (``requests`` would re-send the signed bytes and the signature
  headers to the ``Location``, even over plain http, and take that host's ``OK`` for the
  axis'): a 3xx is ``AxisUnavailable("redirect")`` naming where it pointed.
- **One call ends within** ``timeout_s``: connecting, sending the request, waiting for and
  reading the whole answer. Each network wait is bounded by ``timeout_s`` as well, but a peer
  dripping its answer (or reading the document) a byte at a time never waits that long; so the
  call has a deadline, at which the connection's socket is shut down: ``AxisUnavailable
  ("timeout")``. A document that cannot cross the link in ``timeout_s`` needs a larger one.
- **An answer is read up to** ``max_answer_bytes`` (:func:`answer_limit` of ``[limits]
  max_envelope_bytes``: room for the largest envelope the hub accepts, even base64-encoded in
  the SDK's JSON). A larger answer is abandoned as soon as it declares or passes that size,
  never held whole: ``AxisUnavailable("too_large")``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hub.axis.protocol import (
    CONTENT_SHA256,
    SERVICE_TYPE,
    Agency,
    Answer,
    Listed,
    MessageType,
    Op,
    StatusWord,
    auth_headers,
    json_type,
    sha256_hex,
)
from hub.config import Settings
from hub.errors import ConfigurationError, TransientError
from hub.reasons import Reason

if TYPE_CHECKING:  # a typing Protocol of urllib3's, absent at run time
    from urllib3._base_connection import BaseHTTPConnection

__all__ = ["DEFAULT_MAX_ANSWER_BYTES", "AxisClient", "AxisUnauthorized", "AxisUnavailable",
           "answer_limit", "client_from_settings", "load_secret"]


def answer_limit(max_envelope_bytes: int) -> int:
    """The largest answer read when envelopes may be ``max_envelope_bytes``: the document
    itself, or base64-encoded (4/3) inside the SDK's JSON, with room for escaped characters
    and the JSON around it (3/2, plus 1 MiB)."""
    return max_envelope_bytes * 3 // 2 + 1024 * 1024


DEFAULT_MAX_ANSWER_BYTES = answer_limit(50 * 1024 * 1024)
"""For the default ``[limits] max_envelope_bytes`` (50 MiB): 76 MiB."""


class AxisUnavailable(TransientError):
    """The axis gave no usable answer; try again later (``kind`` says how it failed)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(Reason.AXIS_UNAVAILABLE, detail)
        self.kind = kind


class AxisUnauthorized(AxisUnavailable):
    """The axis refused the connector's system id or secret (401/403): an operator's matter,
    never a document's. Still transient for the documents: they wait, queued."""

    def __init__(self, detail: str) -> None:
        super().__init__("unauthorized", detail)


def load_secret(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The axis secret from ``[axis] secret_file`` or the variable ``[axis] secret_env``.

    Raises :class:`ConfigurationError` naming where it looked (never the value)."""
    axis = settings.axis
    env = os.environ if environ is None else environ
    if axis.secret_file:
        path = settings.path(axis.secret_file)
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"[axis] secret_file {path}: "
                                     f"{getattr(exc, 'strerror', None) or exc}") from None
        if not secret:
            raise ConfigurationError(f"[axis] secret_file {path} is empty")
        return secret
    secret = (env.get(axis.secret_env) or "").strip()
    if not secret:
        raise ConfigurationError(f"no axis secret: set [axis] secret_file, or the environment "
                                 f"variable {axis.secret_env}")
    return secret


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the deadline of one call ---------------------------------------------------------------------
# ``requests``' timeouts bound each wait of the socket, never a whole call: a peer that sends (or
# reads) one byte a second keeps every wait short and the call alive for as long as it likes,
# and with it the connector's only thread (its broker heartbeats, its SIGTERM). So each call
# arms a timer; the connection pool hands every connection it gives out during the call to it
# (``_WatchedHTTPPool``), and when the time is up the timer shuts the connection's socket down:
# whatever the call was doing — the TLS handshake, sending, waiting, reading — fails at once.
_CURRENT_CALL: ContextVar[_Deadline | None] = ContextVar("axis_call_deadline", default=None)
_RECHECK_S = 0.05
"""How soon the expired deadline looks again for a socket still being connected."""


class _Deadline:
    """The end of one call, ``seconds`` after it entered (a context manager, one use)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._connections: list[BaseHTTPConnection] = []
        self._timer: threading.Timer | None = None
        self._token: Token[_Deadline | None] | None = None

    def __enter__(self) -> _Deadline:
        self._token = _CURRENT_CALL.set(self)
        self._arm(self.seconds)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
        if self._token is not None:
            _CURRENT_CALL.reset(self._token)

    def watch(self, conn: BaseHTTPConnection) -> None:
        with self._lock:
            self._connections.append(conn)
            if self.expired:  # a connection taken after the deadline: no time left for it
                _shut(conn)

    def _arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            connecting = [c for c in self._connections if not _shut(c)]
            if connecting:  # its socket does not exist yet (resolving, connecting): again soon
                self._arm(_RECHECK_S)


def _shut(conn: BaseHTTPConnection) -> bool:
    """Shut ``conn``'s socket down for both directions (a blocked ``recv``/``send`` in another
    thread returns at once); ``False`` when it has no socket yet. ``socket.socket.shutdown``
    even on a TLS socket: the file descriptor, without touching the TLS object in use."""
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    return True


def _watch(conn: BaseHTTPConnection) -> BaseHTTPConnection:
    deadline = _CURRENT_CALL.get()
    if deadline is not None:
        deadline.watch(conn)
    return conn


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        return _watch(super()._get_conn(timeout))


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        return _watch(super()._get_conn(timeout))


class _WatchedAdapter(HTTPAdapter):
    """``requests``' adapter whose pools show each connection to the current call's deadline."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


@dataclass(frozen=True, slots=True)
class _Reply:
    """One HTTP answer, read whole (within the deadline and the size cap)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


_READ_CHUNK = 64 * 1024
_DIGITS = re.compile(r"[0-9]{1,19}")


class AxisClient:
    """One system's connection to the axis (a ``requests`` session)."""

    def __init__(self, url: str, system_id: str, secret: str, *, verify: bool | str = True,
                 timeout_s: float = 10.0, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 clock: Callable[[], str] = _now_text) -> None:
        self.url = url.rstrip("/")
        self.system_id = system_id
        self._secret = secret
        self.timeout_s = timeout_s
        """The longest one call may take, from connecting to the answer's last byte."""
        self.max_answer_bytes = max_answer_bytes
        """The largest answer read (:func:`answer_limit`); a larger one is abandoned."""
        self._clock = clock
        self._session = requests.Session()
        self._session.verify = verify
        self._session.trust_env = False  # no proxy or netrc from the environment by surprise
        adapter = _WatchedAdapter()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:  # never the secret
        return f"AxisClient({self.url!r}, system_id={self.system_id!r})"

    def close(self) -> None:
        self._session.close()

    # -- one call ---------------------------------------------------------------------------
    def _post(self, op: Op, body: bytes, headers: Mapping[str, str]) -> _Reply:
        """One ``POST``, its answer read whole — or :class:`AxisUnavailable` naming how it
        failed: no answer, a redirect (never followed), past the deadline, too large."""
        signed = auth_headers(self.system_id, self._secret, self._clock(), "POST", op.path, body)
        deadline = _Deadline(self.timeout_s)
        try:
            with deadline:
                response = self._session.post(self.url + op.path, data=body,
                                              headers={**headers, **signed},
                                              timeout=(self.timeout_s, self.timeout_s),
                                              allow_redirects=False, stream=True)
                try:
                    if 300 <= response.status_code < 400:
                        raise AxisUnavailable("redirect", f"{op.value}: HTTP "
                                              f"{response.status_code} to "
                                              f"{_where(response.headers.get('Location'))}, "
                                              "not followed")
                    content = self._read(op, response)
                except BaseException:
                    response.close()  # the connection with an unread answer goes, not reused
                    raise
                return _Reply(response.status_code, response.headers, content)
        except (requests.RequestException, urllib3.exceptions.HTTPError, HTTPException,
                OSError) as exc:
            raise _unavailable(op, exc, deadline) from None

    def _read(self, op: Op, response: requests.Response) -> bytes:
        """The answer's body, up to :attr:`max_answer_bytes` (the deadline bounds the time)."""
        limit = self.max_answer_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if _DIGITS.fullmatch(declared) and int(declared) > limit:
            raise AxisUnavailable("too_large", f"{op.value}: the answer declares {declared} "
                                  f"bytes, more than the {limit} read at most")
        content = io.BytesIO()
        for chunk in response.iter_content(_READ_CHUNK):
            if content.tell() + len(chunk) > limit:
                raise AxisUnavailable("too_large", f"{op.value}: the answer passed the {limit} "
                                      "bytes read at most; abandoned")
            content.write(chunk)
        return content.getvalue()

    def _json_call(self, op: Op, payload: Mapping[str, Any]) -> Answer:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        answer = _answer(self._post(op, body, {"Content-Type": "application/json"}))
        _raise_unless_usable(op, answer)
        return answer

    # -- the operations ---------------------------------------------------------------------
    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer:
        """``sendEdoc``: the exact bytes; returns the axis' answer (judged by the caller).
        Raises :class:`AxisUnavailable` when no answer to judge came back: none at all, a
        redirect (the bytes are never sent on), past the deadline, or too large."""
        headers = {"Content-Type": "application/xml", "from": sender,
                   "servicetype": SERVICE_TYPE, "messagetype": message_type.value,
                   CONTENT_SHA256: digest or sha256_hex(raw)}
        return _answer(self._post(Op.SEND, raw, headers))

    def received(self, limit: int) -> list[Listed]:
        """``getReceivedEdocList``: documents and statuses waiting for this system, each entry
        as listed — an unusable one says why (:attr:`Listed.problem`) for the connector to
        refuse or report; none is dropped here."""
        answer = self._json_call(Op.LIST, {"servicetype": SERVICE_TYPE, "limit": limit})
        if answer.data is None:
            return []
        if not isinstance(answer.data, list):
            raise AxisUnavailable("answer", f"{Op.LIST.value}: \"data\" is "
                                  f"{json_type(answer.data)}, not a list ({answer.summary})")
        return [Listed.from_json(i) for i in answer.data]

    def fetch(self, doc_id: str) -> bytes:
        """``getEdoc``: the exact bytes; a body whose SHA-256 differs from the axis'
        ``X-Content-SHA256`` is a transfer error (transient)."""
        body = json.dumps({"docId": doc_id}).encode("utf-8")
        reply = self._post(Op.GET, body, {"Content-Type": "application/json"})
        if reply.status != 200 or "json" in reply.headers.get("Content-Type", ""):
            answer = _answer(reply)
            _raise_unless_usable(Op.GET, answer)
            raise AxisUnavailable("answer", f"getEdoc {doc_id}: {answer.summary}")
        raw = reply.body
        declared = reply.headers.get(CONTENT_SHA256, "").strip().lower()
        if declared and declared != sha256_hex(raw):
            raise AxisUnavailable("integrity", f"getEdoc {doc_id}: the bytes do not match "
                                  "the axis' SHA-256")
        return raw

    def update_status(self, doc_id: str, word: StatusWord) -> Answer:
        """``updateStatus``: tell the axis what became of a document it handed over."""
        return self._json_call(Op.UPDATE_STATUS, {"docId": doc_id, "status": word.value})

    def agencies(self) -> list[Agency]:
        """``getAgencies``: the axis' directory of bodies."""
        answer = self._json_call(Op.AGENCIES, {})
        items = answer.data if isinstance(answer.data, list) else []
        return [a for a in (Agency.from_json(i) for i in items) if a is not None]


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _unavailable(op: Op, exc: BaseException, deadline: _Deadline) -> AxisUnavailable:
    """What a failed call is, by kind (``requests``' exceptions never leave this module)."""
    if deadline.expired:
        return AxisUnavailable("timeout", f"{op.value}: no complete answer within "
                               f"{deadline.seconds:g} s")
    if isinstance(exc, requests.Timeout) or any(
            isinstance(a, urllib3.exceptions.TimeoutError) for a in exc.args):
        return AxisUnavailable("timeout", f"{op.value}: no answer within "
                               f"{deadline.seconds:g} s")
    if isinstance(exc, requests.exceptions.SSLError):
        return AxisUnavailable("tls", f"{op.value}: TLS: {_first_line(exc)}")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError) or (
            isinstance(exc, OSError) and not isinstance(exc, requests.RequestException)):
        return AxisUnavailable("connection", f"{op.value}: {_first_line(exc)}")
    return AxisUnavailable("request", f"{op.value}: {type(exc).__name__}")


def _where(location: str | None) -> str:
    """Where a redirect pointed, for the log: scheme, host and port only (never a path or a
    query, which may carry anything), in printable characters."""
    if not location:
        return "no Location"
    try:
        parts = urlsplit(location.strip())
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "an unreadable Location"
    if not host:
        return "a path of the same host"
    shown = re.sub(r"[^A-Za-z0-9.:\[\]-]", "?", host)[:100]
    scheme = re.sub(r"[^A-Za-z0-9+.-]", "?", parts.scheme)[:10]
    return f"{scheme}://{shown}" + (f":{port}" if port else "")


def _answer(reply: _Reply) -> Answer:
    """The answer in ``reply``. A body that does not decode as JSON keeps only its status
    and a note: ``ValueError`` for text that is not JSON (or not UTF-8), ``RecursionError``
    for valid JSON nested deeper than the decoder recurses (a hostile or broken peer)."""
    try:
        body = json.loads(reply.body)
    except (ValueError, RecursionError) as exc:
        return Answer(reply.status, note=f"the body is not JSON ({type(exc).__name__})")
    return Answer.from_json(reply.status, body)


def _raise_unless_usable(op: Op, answer: Answer) -> None:
    code = answer.http_status
    if code == 404 and answer.axis_refusal:
        # The axis' own answer that it has no such document; a proxy's 404 page is no such
        # statement (the connector refuses an entry back to the axis on not_found).
        raise AxisUnavailable("not_found", f"{op.value}: {answer.summary}")
    if code in (401, 403):
        raise AxisUnauthorized(f"{op.value}: the axis refused system credentials "
                               f"({answer.summary})")
    if code in (408, 429) or code >= 500:
        raise AxisUnavailable(f"http_{code}", f"{op.value}: {answer.summary}")
    if code >= 400 or answer.status == "FAIL":
        # A refused list/fetch/acknowledge is no document's fault: retry later, say why.
        raise AxisUnavailable("refused_call", f"{op.value}: {answer.summary}")
    if answer.status != "OK":
        # Not the axis' answer (no JSON, no status): a proxy's page or a misbehaving peer.
        raise AxisUnavailable("answer", f"{op.value}: not the axis' answer: {answer.summary}")


def client_from_settings(settings: Settings, environ: Mapping[str, str] | None = None
                         ) -> AxisClient:
    """The client the settings describe; :class:`ConfigurationError` when incomplete."""
    axis = settings.axis
    if not axis.url:
        raise ConfigurationError("[axis] url is not set: the national-axis connector has "
                                 "nowhere to connect")
    if not axis.system_id:
        raise ConfigurationError("[axis] system_id is not set")
    if not axis.url.startswith(("https://", "http://")):
        raise ConfigurationError(f"[axis] url must be http(s)://…, got {axis.url[:60]!r}")
    secret = load_secret(settings, environ)
    verify: bool | str = axis.verify_tls
    if axis.verify_tls and axis.ca_file:
        ca = settings.path(axis.ca_file)
        if not ca.is_file():
            raise ConfigurationError(f"[axis] ca_file {ca}: not found")
        verify = str(ca)
    return AxisClient(axis.url, axis.system_id, secret, verify=verify, timeout_s=axis.timeout_s,
                      max_answer_bytes=answer_limit(settings.limits.max_envelope_bytes))

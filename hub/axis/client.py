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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

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

__all__ = ["AxisClient", "AxisUnauthorized", "AxisUnavailable", "client_from_settings",
           "load_secret"]


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


class AxisClient:
    """One system's connection to the axis (a ``requests`` session)."""

    def __init__(self, url: str, system_id: str, secret: str, *, verify: bool | str = True,
                 timeout_s: float = 10.0, clock: Callable[[], str] = _now_text) -> None:
        self.url = url.rstrip("/")
        self.system_id = system_id
        self._secret = secret
        self.timeout_s = timeout_s
        self._clock = clock
        self._session = requests.Session()
        self._session.verify = verify
        self._session.trust_env = False  # no proxy or netrc from the environment by surprise

    def __repr__(self) -> str:  # never the secret
        return f"AxisClient({self.url!r}, system_id={self.system_id!r})"

    def close(self) -> None:
        self._session.close()

    # -- one call ---------------------------------------------------------------------------
    def _post(self, op: Op, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        signed = auth_headers(self.system_id, self._secret, self._clock(), "POST", op.path, body)
        try:
            return self._session.post(self.url + op.path, data=body,
                                      headers={**headers, **signed},
                                      timeout=(self.timeout_s, self.timeout_s))
        except requests.Timeout:
            raise AxisUnavailable("timeout", f"{op.value}: no answer within "
                                  f"{self.timeout_s:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise AxisUnavailable("tls", f"{op.value}: TLS: {_first_line(exc)}") from None
        except requests.ConnectionError as exc:
            raise AxisUnavailable("connection", f"{op.value}: {_first_line(exc)}") from None
        except requests.RequestException as exc:
            raise AxisUnavailable("request", f"{op.value}: {type(exc).__name__}") from None

    def _json_call(self, op: Op, payload: Mapping[str, Any]) -> Answer:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        response = self._post(op, body, {"Content-Type": "application/json"})
        answer = _answer(response)
        _raise_unless_usable(op, answer)
        return answer

    # -- the operations ---------------------------------------------------------------------
    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer:
        """``sendEdoc``: the exact bytes; returns the axis' answer (judged by the caller).
        Raises :class:`AxisUnavailable` only when no HTTP answer came back."""
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
        response = self._post(Op.GET, body, {"Content-Type": "application/json"})
        if response.status_code != 200 or "json" in response.headers.get("Content-Type", ""):
            answer = _answer(response)
            _raise_unless_usable(Op.GET, answer)
            raise AxisUnavailable("answer", f"getEdoc {doc_id}: {answer.summary}")
        raw = response.content
        declared = response.headers.get(CONTENT_SHA256, "").strip().lower()
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


def _answer(response: requests.Response) -> Answer:
    """The answer in ``response``. A body that does not decode as JSON keeps only its status
    and a note: ``ValueError`` for text that is not JSON (or not UTF-8), ``RecursionError``
    for valid JSON nested deeper than the decoder recurses (a hostile or broken peer)."""
    try:
        body = response.json()
    except (ValueError, RecursionError) as exc:
        return Answer(response.status_code, note=f"the body is not JSON ({type(exc).__name__})")
    return Answer.from_json(response.status_code, body)


def _raise_unless_usable(op: Op, answer: Answer) -> None:
    code = answer.http_status
    if code == 404:
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
    return AxisClient(axis.url, axis.system_id, secret, verify=verify, timeout_s=axis.timeout_s)

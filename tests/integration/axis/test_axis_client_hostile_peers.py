"""The axis client against a real HTTP peer at the axis' URL that is not the axis' simulator: a
proxy's page, a redirect, a peer that drips its answer or reads the document slowly, answers too
large to hold. Real sockets on loopback (no broker, no mocks of ``requests``); each failure must
be transient of its kind, bounded in time and memory, and nothing may leave for another host.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hub.axis.client import AxisClient, AxisUnavailable, answer_limit, client_from_settings
from hub.axis.protocol import MessageType, Verdict, judge_send
from hub.config import load_settings

SENDER = "000.00.00.H27"
LETTER = b"<edXML>confidential official letter body</edXML>"
OK_LIST = json.dumps({"status": "OK", "data": []}).encode()

Behaviour = Callable[[BaseHTTPRequestHandler, bytes], None]


@dataclass
class Peer:
    """A threaded HTTP server on loopback whose answer to every POST is ``behaviour``; it keeps
    what it was sent (path, headers, body) and how many answer bytes it managed to write."""

    host: str = "127.0.0.1"
    behaviour: Behaviour = lambda handler, body: None
    read_body: bool = True
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    written: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self) -> Peer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if peer.read_body else b""
                peer.received.append((self.path, dict(self.headers.items()), body))
                try:
                    peer.behaviour(self, body)
                except OSError:  # the client hung up on us: what these tests want
                    self.close_connection = True

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def write(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.written += len(data)


@pytest.fixture
def peer() -> Iterator[Peer]:
    running = Peer().start()
    yield running
    running.close()


@pytest.fixture
def elsewhere() -> Iterator[Peer]:
    """Another host (127.0.0.2) that would take anything sent to it and say OK."""
    def accept(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        _reply(handler, 200, json.dumps({"status": "OK", "DocID": "elsewhere-1",
                                         "data": []}).encode())
    running = Peer(host="127.0.0.2", behaviour=accept).start()
    yield running
    running.close()


def _reply(handler: BaseHTTPRequestHandler, code: int, data: bytes,
           content_type: str = "application/json") -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _client(peer: Peer, **kwargs: Any) -> AxisClient:
    return AxisClient(peer.url, "hub-h27", "s3cret", verify=False, **kwargs)


def _calls(client: AxisClient) -> dict[str, Callable[[], object]]:
    return {
        "sendEdoc": lambda: client.send(LETTER, sender=SENDER, message_type=MessageType.EDOC),
        "getReceivedEdocList": lambda: client.received(10),
        "getEdoc": lambda: client.fetch("doc-1"),
        "getAgencies": lambda: client.agencies(),
    }


# -- A2: redirects ------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("operation", ["sendEdoc", "getReceivedEdocList", "getEdoc",
                                       "getAgencies"])
def test_a_redirect_is_not_followed_and_is_transient(
    peer: Peer, elsewhere: Peer, code: int, operation: str
) -> None:
    # Given whatever answers at the axis' URL redirecting every call to another host, over http
    def redirect(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(code)
        handler.send_header("Location", f"{elsewhere.url}/collect")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    peer.behaviour = redirect
    client = _client(peer, timeout_s=10.0)
    try:
        # When the client makes the call
        with pytest.raises(AxisUnavailable) as caught:
            _calls(client)[operation]()
    finally:
        client.close()
    # Then it is a transient failure of kind "redirect" naming where it pointed, and nothing —
    # neither the signed bytes nor the signature headers — went to the other host
    assert caught.value.kind == "redirect"
    assert f"127.0.0.2:{elsewhere.url.rsplit(':', 1)[1]}" in caught.value.detail
    assert str(code) in caught.value.detail
    assert elsewhere.received == []
    assert len(peer.received) == 1


# -- A4: a proxy's 4xx page is no refusal -------------------------------------------------------
@pytest.mark.parametrize(("code", "content_type", "error_page"), [
    pytest.param(404, "text/html", b"<html><body><h1>404 Not Found</h1>nginx</body></html>",
                 id="nginx 404 page"),
    pytest.param(400, "text/html", b"<html><body><h1>400 Bad Request</h1>nginx</body></html>",
                 id="nginx 400 page"),
    pytest.param(413, "text/html", b"<html><h1>413 Request Entity Too Large</h1></html>",
                 id="nginx 413 page"),
    pytest.param(404, "application/json",
                 json.dumps({"timestamp": "2026-01-01T00:00:00Z", "status": 404,
                             "error": "Not Found", "path": "/sendEdoc"}).encode(),
                 id="a gateway's JSON error without the axis' status"),
    pytest.param(400, "text/plain", b"", id="an empty 400"),
])
def test_a_4xx_page_that_is_not_the_axis_answer_is_transient_never_a_refusal(
    peer: Peer, code: int, content_type: str, error_page: bytes
) -> None:
    # Given a proxy in front of the axis answering sendEdoc with its own error page
    peer.behaviour = lambda handler, body: _reply(handler, code, error_page, content_type)
    client = _client(peer, timeout_s=10.0)
    try:
        # When the document is sent
        answer = client.send(LETTER, sender=SENDER, message_type=MessageType.EDOC)
    finally:
        client.close()
    # Then the verdict keeps the document for a retry: the axis never refused it
    assert answer.http_status == code
    assert judge_send(answer) is Verdict.TRANSIENT


def test_the_axis_own_4xx_refusal_is_still_a_refusal(peer: Peer) -> None:
    refusal = json.dumps({"status": "FAIL", "ErrorCode": "AGENCY_NOT_FOUND",
                          "ErrorDesc": "no such agency"}).encode()
    peer.behaviour = lambda handler, body: _reply(handler, 400, refusal)
    client = _client(peer, timeout_s=10.0)
    try:
        answer = client.send(LETTER, sender=SENDER, message_type=MessageType.EDOC)
    finally:
        client.close()
    assert judge_send(answer) is Verdict.REFUSED
    assert answer.error_code == "AGENCY_NOT_FOUND"


@pytest.mark.parametrize("operation", ["getEdoc", "getReceivedEdocList", "getAgencies"])
def test_a_proxy_404_page_is_no_not_found_of_the_axis(peer: Peer, operation: str) -> None:
    # Given a proxy answering 404 with its own page: the axis never said it lacks the document
    # (the connector refuses an entry back to the axis after three not_found rounds)
    page = b"<html><body><h1>404 Not Found</h1>nginx</body></html>"
    peer.behaviour = lambda handler, body: _reply(handler, 404, page, "text/html")
    client = _client(peer, timeout_s=10.0)
    try:
        with pytest.raises(AxisUnavailable) as caught:
            _calls(client)[operation]()
    finally:
        client.close()
    assert caught.value.kind != "not_found"


def test_the_axis_own_404_is_not_found(peer: Peer) -> None:
    refusal = json.dumps({"status": "FAIL", "ErrorCode": "NOT_FOUND",
                          "ErrorDesc": "no such document"}).encode()
    peer.behaviour = lambda handler, body: _reply(handler, 404, refusal)
    client = _client(peer, timeout_s=10.0)
    try:
        with pytest.raises(AxisUnavailable) as caught:
            client.fetch("doc-1")
    finally:
        client.close()
    assert caught.value.kind == "not_found"


# -- A6: one call is bounded in time ------------------------------------------------------------
TIMEOUT_S = 1.0
BOUND_S = TIMEOUT_S + 1.5
"""How long a call with ``timeout_s = 1`` may take at most on a busy two-core machine."""


def _drip_body(handler: BaseHTTPRequestHandler, stop: threading.Event, peer: Peer) -> None:
    data = OK_LIST + b" " * 100
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.flush()
    for i in range(len(data)):  # one byte each 0.2 s: every read well within timeout_s
        if stop.wait(0.2):
            return
        peer.write(handler, data[i:i + 1])


def _drip_headers(handler: BaseHTTPRequestHandler, stop: threading.Event, peer: Peer) -> None:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
            + b"a" * 100 + b"\r\nContent-Length: " + str(len(OK_LIST)).encode() + b"\r\n\r\n")
    for i in range(len(head)):
        if stop.wait(0.2):
            return
        peer.write(handler, head[i:i + 1])
    peer.write(handler, OK_LIST)


@pytest.mark.parametrize("drip", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_an_answer_dripped_byte_by_byte_ends_the_call_within_its_timeout(
    peer: Peer, drip: Callable[[BaseHTTPRequestHandler, threading.Event, Peer], None]
) -> None:
    # Given a peer that answers one byte every 0.2 s (never idle for timeout_s)
    peer.behaviour = lambda handler, body: drip(handler, peer.stop, peer)
    client = _client(peer, timeout_s=TIMEOUT_S)
    try:
        # When the connector lists what waits for it
        started = time.monotonic()
        with pytest.raises(AxisUnavailable) as caught:
            client.received(10)
        took = time.monotonic() - started
    finally:
        client.close()
    # Then the call ends as a timeout within its deadline, not when the peer pleases
    assert caught.value.kind == "timeout"
    assert took < BOUND_S, f"the call took {took:.1f} s with timeout_s = {TIMEOUT_S}"


def test_a_peer_reading_the_document_slowly_ends_the_send_within_its_timeout(peer: Peer) -> None:
    # Given a peer that takes in the document 2 KiB every 20 ms (never idle for timeout_s)
    def slow_reader(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        left = int(handler.headers.get("Content-Length") or 0)
        while left > 0 and not peer.stop.wait(0.02):
            chunk = handler.rfile.read(min(2048, left))
            if not chunk:
                return
            left -= len(chunk)
        if left == 0:
            _reply(handler, 200, json.dumps({"status": "OK", "DocID": "d1"}).encode())
    peer.behaviour = slow_reader
    peer.read_body = False
    big = b"<edXML>" + b"x" * (24 * 1024 * 1024) + b"</edXML>"
    client = _client(peer, timeout_s=TIMEOUT_S)
    try:
        # When a large document is sent
        started = time.monotonic()
        with pytest.raises(AxisUnavailable) as caught:
            client.send(big, sender=SENDER, message_type=MessageType.EDOC)
        took = time.monotonic() - started
    finally:
        client.close()
    # Then the call ends within its deadline
    assert caught.value.kind == "timeout"
    assert took < BOUND_S, f"the call took {took:.1f} s with timeout_s = {TIMEOUT_S}"


def test_a_prompt_axis_is_answered_normally_and_calls_go_on_after_a_deadline(peer: Peer) -> None:
    # Given a peer that drips its first answer, then answers promptly
    answers: Iterator[Callable[[BaseHTTPRequestHandler], None]] = iter([
        lambda h: _drip_body(h, peer.stop, peer), lambda h: _reply(h, 200, OK_LIST)])
    peer.behaviour = lambda handler, body: next(answers)(handler)
    client = _client(peer, timeout_s=TIMEOUT_S)
    try:
        with pytest.raises(AxisUnavailable):
            client.received(10)
        # Then the next call works on the same client
        assert client.received(10) == []
    finally:
        client.close()


# -- A6: answers are bounded in size ------------------------------------------------------------
CAP = 1024 * 1024
HUGE = 64 * 1024 * 1024


def _stream(peer: Peer, declare: bool, content_type: str) -> Behaviour:
    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if declare:
            handler.send_header("Content-Length", str(HUGE))
        else:
            handler.send_header("Connection", "close")  # the body ends when the peer closes
            handler.close_connection = True
        handler.end_headers()
        chunk = b"A" * 65536
        for _ in range(HUGE // len(chunk)):
            if peer.stop.is_set():
                return
            peer.write(handler, chunk)
    return answer


@pytest.mark.parametrize("declare", [True, False], ids=["declared length", "until close"])
@pytest.mark.parametrize(("operation", "content_type"), [
    ("getEdoc", "application/xml"), ("getReceivedEdocList", "application/json"),
    ("sendEdoc", "application/json"),
])
def test_an_answer_larger_than_the_cap_is_abandoned_without_being_read_whole(
    peer: Peer, declare: bool, operation: str, content_type: str
) -> None:
    # Given a peer answering 64 MiB, and a client whose answers may be 1 MiB at most
    peer.behaviour = _stream(peer, declare, content_type)
    client = _client(peer, timeout_s=30.0, max_answer_bytes=CAP)
    try:
        # When the call is made
        with pytest.raises(AxisUnavailable) as caught:
            _calls(client)[operation]()
    finally:
        client.close()
    # Then it fails as too large, and the client stopped reading long before the end
    assert caught.value.kind == "too_large"
    assert peer.written < HUGE // 2


def test_the_answer_cap_follows_the_configured_envelope_limit(peer: Peer) -> None:
    # Given settings whose envelopes may be 256 KiB at most
    env = {"HUB_AXIS__URL": peer.url, "HUB_AXIS__SYSTEM_ID": "hub-h27", "HUB_AXIS_SECRET": "x",
           "HUB_LIMITS__MAX_ENVELOPE_BYTES": str(256 * 1024), "HUB_AXIS__TIMEOUT_S": "30"}
    client = client_from_settings(load_settings(None, env), env)
    assert client.max_answer_bytes == answer_limit(256 * 1024)
    assert 256 * 1024 * 4 // 3 < client.max_answer_bytes < 2 * 1024 * 1024
    # When the axis answers getEdoc with 64 MiB
    peer.behaviour = _stream(peer, False, "application/xml")
    try:
        with pytest.raises(AxisUnavailable) as caught:
            client.fetch("doc-1")
    finally:
        client.close()
    # Then the fetch is abandoned as too large
    assert caught.value.kind == "too_large"
    assert peer.written < HUGE // 2


def test_a_document_within_the_cap_is_fetched_byte_for_byte(peer: Peer) -> None:
    document = b"<edXML>" + bytes(range(256)) * 1000 + b"</edXML>"
    peer.behaviour = lambda handler, body: _reply(handler, 200, document, "application/xml")
    client = _client(peer, timeout_s=10.0, max_answer_bytes=CAP)
    try:
        assert client.fetch("doc-1") == document
        assert client.fetch("doc-1") == document  # the connection is reused after a full read
    finally:
        client.close()

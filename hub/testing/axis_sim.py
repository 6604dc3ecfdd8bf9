"""A national-axis simulator for tests and the demo: a separate process, HTTP, its own store.

It answers the operations of :mod:`hub.axis.protocol` (``sendEdoc``, ``getReceivedEdocList``,
``getEdoc``, ``updateStatus``, ``getAgencies``) for the systems it is given (system id, secret,
and the provinces — level-1 codes — whose bodies each system serves), with requests signed as
the protocol says. A document sent to a body no system serves lands in the *outside* mailbox:
the rest of the country, which a test reads (``GET /_sim/outside``) and answers for
(``POST /_sim/inject``, e.g. a ministry's signed ``03``).

The store is an SQLite file, so the process can be killed and started again on the same port
and keep what it held (a real outage: connections refused). The axis keeps one copy per exact
bytes (SHA-256, its document identity): bytes sent again get ``ErrorCode = DUPLICATE`` and the
first ``DocID``.

Faults (``POST /_sim/faults``, JSON; deterministic from ``seed``):

``latency_ms``            every answer waits this long;
``error_rate``            share of calls answered 503 before doing anything;
``timeout_rate``          share of calls that hang ``hang_s`` and close without an answer;
``accept_then_fail_rate`` share of sends stored, then answered 503 (the retry must get, and
                          the connector recognise, the duplicate answer);
``accept_then_fail_next`` the next so many sends are stored, then answered 503;
``duplicate_list_rate``   share of acknowledged documents listed again anyway;
``outage_s``              from now, for this long, every call fails (``outage_mode``: ``503``
                          or ``drop``, a closed connection without an answer);
``refuse_recipients``     codes whose documents are refused (400 ``AGENCY_NOT_FOUND``) even
                          when listed among the agencies;
``answers``               ``{operation: [body, …]}``: the next calls of that operation (e.g.
                          ``getReceivedEdocList``) get these bodies verbatim, one each, as a
                          200 ``application/json`` answer, and do nothing else — odd answers
                          of the axis or of a proxy in front of it (a deeply nested body, a
                          ``data`` that is not a list);
``listing_patch``         ``{doc id: {field: value}}``: fields laid over that document's entry
                          in ``getReceivedEdocList`` (e.g. ``{"to": 7}``).

Control endpoints (``/_sim/…``) take no credentials: bind the simulator to loopback.
Run: ``python -m hub.testing.axis_sim --systems FILE.json [--store FILE] [--port N]``; it prints
``listening <port>`` on stdout once it answers. :class:`AxisSimulator` does that for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from urllib.request import Request, urlopen

from hub.axis.protocol import (
    CONTENT_SHA256,
    DUPLICATE_CODE,
    MAX_CLOCK_SKEW_S,
    MessageType,
    Op,
    StatusWord,
    request_signature,
    sha256_hex,
)
from hub.edxml import EnvelopeRefused, Limits, parse_packet
from hub.edxml.model import Envelope
from hub.edxml.orgcode import OrgCode

OUTSIDE = "_outside"
"""The mailbox of every body no simulated system serves."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
  id TEXT PRIMARY KEY, sender_system TEXT, sender TEXT, recipients TEXT, message_type TEXT,
  sha256 TEXT, document_id TEXT, body BLOB, created REAL);
CREATE INDEX IF NOT EXISTS docs_sha ON docs(sha256);
CREATE TABLE IF NOT EXISTS inbox (
  system TEXT, doc_id TEXT, state TEXT, status TEXT, fetched INTEGER DEFAULT 0,
  PRIMARY KEY (system, doc_id));
CREATE TABLE IF NOT EXISTS sends (sha256 TEXT, outcome TEXT, at REAL);
CREATE TABLE IF NOT EXISTS agencies (code TEXT PRIMARY KEY, json TEXT);
"""


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 3.0
    accept_then_fail_rate: float = 0.0
    accept_then_fail_next: int = 0
    duplicate_list_rate: float = 0.0
    outage_until: float = 0.0
    outage_mode: str = "503"
    refuse_recipients: frozenset[str] = frozenset()
    answers: dict[str, deque[bytes]] = field(default_factory=dict)
    listing_patch: dict[str, dict[str, Any]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def scripted(self, operation: str) -> bytes | None:
        """The next scripted answer of ``operation``, if any (each is given once)."""
        try:
            return self.answers[operation].popleft()
        except (KeyError, IndexError):
            return None


@dataclass(frozen=True)
class System:
    system_id: str
    secret: str
    provinces: tuple[str, ...]


class _Drop(Exception):
    """Close the connection without an answer (a timeout or an outage as the client sees it)."""


class Simulator:
    """The axis' state: systems, store, faults (shared by the handler threads)."""

    def __init__(self, systems: Sequence[System], store: Path | str) -> None:
        self.systems = {s.system_id: s for s in systems}
        self._db = sqlite3.connect(str(store), check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: survives the process being killed (the outage tests do that), and a
        # commit costs no fsync of its own.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.faults = Faults()

    # -- routing ------------------------------------------------------------------------------
    def system_for(self, code: str) -> str:
        try:
            level1 = OrgCode.parse(code).level1
        except EnvelopeRefused:
            return OUTSIDE
        for system in self.systems.values():
            if level1 in system.provinces:
                return system.system_id
        return OUTSIDE

    def known_agency(self, code: str) -> bool:
        with self._lock:
            rows = self._db.execute("SELECT COUNT(*) FROM agencies").fetchone()[0]
            if rows == 0:
                return True  # no agency list loaded: every code is known
            found = self._db.execute("SELECT json FROM agencies").fetchall()
        for (text,) in found:
            item = json.loads(text)
            if code in (item.get("code"), item.get("code102")):
                return True
        return False

    # -- operations ---------------------------------------------------------------------------
    def send(self, system: str, headers: Any, body: bytes) -> tuple[int, Any]:
        digest = sha256_hex(body)
        declared = (headers.get(CONTENT_SHA256) or "").strip().lower()
        if declared and declared != digest:
            return 400, _fail("CHECKSUM_MISMATCH", "X-Content-SHA256 does not match the file")
        try:
            packet = parse_packet(body, Limits())
        except EnvelopeRefused as exc:
            return 400, _fail("INVALID_EDXML", f"{exc.reason.value}: {exc.detail[:200]}")
        sender = packet.sender.organ_id
        if (headers.get("from") or sender) != sender:
            return 400, _fail("FROM_MISMATCH", "'from' is not the packet's sender")
        try:
            message_type = MessageType(headers.get("messagetype") or "edoc")
        except ValueError:
            return 400, _fail("MESSAGE_TYPE_INVALID", "unknown messagetype")
        if isinstance(packet, Envelope):
            recipients = [r.organ_id for r in packet.header.recipients]
            document_id = packet.document_id
        else:
            recipients = [packet.response_for.organ_id]
            document_id = f"status:{digest[:32]}"
        with self._lock:
            row = self._db.execute("SELECT id FROM docs WHERE sha256 = ? AND sender_system = ?",
                                   (digest, system)).fetchone()
        if row is not None:
            self._log_send(digest, "duplicate")
            return 200, {"status": "OK", "ErrorCode": DUPLICATE_CODE,
                         "ErrorDesc": "Văn bản đã được gửi trước đó", "DocID": row[0]}
        refused = [r for r in recipients
                   if r in self.faults.refuse_recipients or not self.known_agency(r)]
        if refused:
            self._log_send(digest, "refused")
            return 400, _fail("AGENCY_NOT_FOUND",
                              f"Đơn vị nhận chưa đăng ký trên trục: {', '.join(refused[:5])}")
        doc_id = self.store(system, sender, recipients, message_type.value, document_id, body)
        self._log_send(digest, "stored")
        if self.faults.accept_then_fail_next > 0 or self.faults.roll(
                self.faults.accept_then_fail_rate):
            self.faults.accept_then_fail_next = max(0, self.faults.accept_then_fail_next - 1)
            return 503, _fail("INTERNAL", "stored, but the answer was lost")
        return 200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocID": doc_id}

    def store(self, sender_system: str, sender: str, recipients: Sequence[str],
              message_type: str, document_id: str, body: bytes,
              to_system: str | None = None) -> str:
        doc_id = str(uuid.uuid4())
        targets = ([to_system] if to_system else
                   list(dict.fromkeys(self.system_for(r) for r in recipients)))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?)",
                (doc_id, sender_system, sender, json.dumps(list(recipients)), message_type,
                 sha256_hex(body), document_id, body, time.time()))
            for target in targets:
                self._db.execute("INSERT INTO inbox (system, doc_id, state) VALUES (?,?,?)",
                                 (target, doc_id, "new"))
            self._db.execute("COMMIT")
        return doc_id

    def _log_send(self, digest: str, outcome: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO sends VALUES (?,?,?)", (digest, outcome, time.time()))

    def listing(self, system: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.sender, d.recipients, d.message_type, i.state FROM inbox i "
                "JOIN docs d ON d.id = i.doc_id WHERE i.system = ? ORDER BY d.created, d.id",
                (system,)).fetchall()
        out = []
        for doc_id, sender, recipients, message_type, state in rows:
            if state != "new" and not self.faults.roll(self.faults.duplicate_list_rate):
                continue
            entry = {"id": doc_id, "from": sender, "to": json.loads(recipients),
                     "messagetype": message_type, "servicetype": "eDoc"}
            entry.update(self.faults.listing_patch.get(doc_id, {}))
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def document(self, system: str | None, doc_id: str) -> bytes | None:
        with self._lock:
            if system is None:
                row = self._db.execute("SELECT body FROM docs WHERE id = ?", (doc_id,)).fetchone()
            else:
                row = self._db.execute(
                    "SELECT d.body FROM inbox i JOIN docs d ON d.id = i.doc_id "
                    "WHERE i.system = ? AND i.doc_id = ?", (system, doc_id)).fetchone()
                if row is not None:
                    self._db.execute("UPDATE inbox SET fetched = fetched + 1 WHERE system = ? "
                                     "AND doc_id = ?", (system, doc_id))
        return bytes(row[0]) if row is not None else None

    def update_status(self, system: str, doc_id: str, word: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE inbox SET state = 'taken', status = ? "
                                   "WHERE system = ? AND doc_id = ?", (word, system, doc_id))
        return cur.rowcount > 0

    def agencies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(t) for (t,) in
                    self._db.execute("SELECT json FROM agencies ORDER BY code").fetchall()]

    def set_agencies(self, items: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM agencies")
            for item in items:
                self._db.execute("INSERT OR REPLACE INTO agencies VALUES (?,?)",
                                 (str(item["code"]), json.dumps(dict(item), ensure_ascii=False)))
            self._db.execute("COMMIT")

    def outside(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.sender, d.recipients, d.message_type, d.sha256, d.document_id "
                "FROM inbox i JOIN docs d ON d.id = i.doc_id WHERE i.system = ? "
                "ORDER BY d.created, d.id", (OUTSIDE,)).fetchall()
        return [{"id": r[0], "from": r[1], "to": json.loads(r[2]), "messagetype": r[3],
                 "sha256": r[4], "document_id": r[5]} for r in rows]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            sends = dict(self._db.execute(
                "SELECT outcome, COUNT(*) FROM sends GROUP BY outcome").fetchall())
            twice = self._db.execute(
                "SELECT COUNT(*) FROM (SELECT sha256 FROM docs WHERE sender_system != ? "
                "GROUP BY sha256 HAVING COUNT(*) > 1)", (OUTSIDE,)).fetchone()[0]
            twice_by_id = self._db.execute(
                "SELECT COUNT(*) FROM (SELECT sender, document_id FROM docs "
                "WHERE sender_system != ? GROUP BY sender, document_id HAVING COUNT(*) > 1)",
                (OUTSIDE,)).fetchone()[0]
            inbox: dict[str, dict[str, int]] = {}
            for system, state, n in self._db.execute(
                    "SELECT system, state, COUNT(*) FROM inbox GROUP BY system, state"):
                inbox.setdefault(system, {})[state] = n
            statuses: dict[str, dict[str, str]] = {}
            for system, doc_id, status in self._db.execute(
                    "SELECT system, doc_id, status FROM inbox WHERE status IS NOT NULL"):
                statuses.setdefault(system, {})[doc_id] = status
            docs = self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        return {"send_outcomes": sends, "documents": docs, "stored_twice": twice,
                "stored_twice_by_document_id": twice_by_id, "inbox": inbox,
                "statuses": statuses}


def _fail(code: str, desc: str) -> dict[str, str]:
    return {"status": "FAIL", "ErrorCode": code, "ErrorDesc": desc}


def _authenticate(sim: Simulator, method: str, path: str, headers: Any,
                  body: bytes) -> str | None:
    system = sim.systems.get(headers.get("systemId") or "")
    stamp = headers.get("timestamp") or ""
    if system is None:
        return None
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    if abs((datetime.now(UTC) - when).total_seconds()) > MAX_CLOCK_SKEW_S:
        return None
    expected = request_signature(system.secret, system.system_id, stamp, method, path, body)
    if not hmac.compare_digest(expected, headers.get("signature") or ""):
        return None
    return system.system_id


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, code: int, payload: Any, content_type: str = "application/json",
               extra: Mapping[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(
            payload, ensure_ascii=False).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        sim = self.sim
        if url.path == "/_sim/outside":
            self._reply(200, sim.outside())
        elif url.path == "/_sim/stats":
            self._reply(200, sim.stats())
        elif url.path == "/_sim/doc":
            raw = sim.document(None, query.get("id", ""))
            if raw is None:
                self._reply(404, _fail("NOT_FOUND", "no such document"))
            else:
                self._reply(200, raw, "application/xml")
        elif url.path == "/_sim/ping":
            self._reply(200, {"status": "OK"})
        else:
            self._reply(404, _fail("NOT_FOUND", url.path))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        body = self._body()
        try:
            if url.path.startswith("/_sim/"):
                self._control(url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, body)
            else:
                self._operation(url.path, body)
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)

    def _control(self, path: str, query: Mapping[str, str], body: bytes) -> None:
        sim = self.sim
        if path == "/_sim/inject":
            recipients = [r for r in (query.get("to") or "").split(",") if r]
            to_system = query.get("system") or None
            if to_system is None:
                to_system = next((sim.system_for(r) for r in recipients
                                  if sim.system_for(r) != OUTSIDE), None)
            if to_system is None:
                self._reply(400, _fail("NO_SYSTEM", "no simulated system serves the recipients"))
                return
            doc_id = sim.store(OUTSIDE, query.get("from", ""), recipients,
                               query.get("messagetype", "edoc"),
                               query.get("document_id", ""), body, to_system=to_system)
            self._reply(200, {"status": "OK", "DocID": doc_id})
        elif path == "/_sim/faults":
            self._set_faults(json.loads(body or b"{}"))
            self._reply(200, {"status": "OK"})
        elif path == "/_sim/agencies":
            sim.set_agencies(json.loads(body or b"[]"))
            self._reply(200, {"status": "OK"})
        else:
            self._reply(404, _fail("NOT_FOUND", path))

    def _set_faults(self, spec: Mapping[str, Any]) -> None:
        f = Faults(rng=random.Random(int(spec.get("seed", 1))))
        for name in ("latency_ms",):
            setattr(f, name, int(spec.get(name, 0)))
        for name in ("error_rate", "timeout_rate", "accept_then_fail_rate",
                     "duplicate_list_rate"):
            setattr(f, name, float(spec.get(name, 0.0)))
        f.hang_s = float(spec.get("hang_s", 3.0))
        f.accept_then_fail_next = int(spec.get("accept_then_fail_next", 0))
        if spec.get("outage_s"):
            f.outage_until = time.monotonic() + float(spec["outage_s"])
        f.outage_mode = str(spec.get("outage_mode", "503"))
        f.refuse_recipients = frozenset(spec.get("refuse_recipients", ()))
        f.answers = {str(op): deque(str(b).encode("utf-8") for b in bodies)
                     for op, bodies in dict(spec.get("answers", {})).items()}
        f.listing_patch = {str(k): dict(v) for k, v in dict(spec.get("listing_patch", {})).items()}
        self.sim.faults = f

    def _operation(self, path: str, body: bytes) -> None:
        sim, faults = self.sim, self.sim.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if time.monotonic() < faults.outage_until:
            if faults.outage_mode == "drop":
                raise _Drop
            self._reply(503, _fail("UNAVAILABLE", "the axis is down (simulated outage)"))
            return
        if faults.roll(faults.error_rate):
            self._reply(503, _fail("UNAVAILABLE", "simulated 503"))
            return
        if faults.roll(faults.timeout_rate):
            time.sleep(faults.hang_s)
            raise _Drop
        system = _authenticate(sim, "POST", path, self.headers, body)
        if system is None:
            self._reply(401, _fail("UNAUTHORIZED", "systemId, timestamp or signature refused"))
            return
        scripted = faults.scripted(path.lstrip("/"))
        if scripted is not None:
            self._reply(200, scripted)
            return
        if path == Op.SEND.path:
            code, answer = sim.send(system, self.headers, body)
            self._reply(code, answer)
        else:
            self._json_operation(system, path, body)

    def _json_operation(self, system: str, path: str, body: bytes) -> None:
        sim = self.sim
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._reply(400, _fail("BAD_REQUEST", "the body is not JSON"))
            return
        if path == Op.LIST.path:
            limit = max(1, min(1000, int(request.get("limit") or 100)))
            self._reply(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "",
                              "data": sim.listing(system, limit)})
        elif path == Op.GET.path:
            raw = sim.document(system, str(request.get("docId") or ""))
            if raw is None:
                self._reply(404, _fail("NOT_FOUND", "no such document for this system"))
            else:
                self._reply(200, raw, "application/xml", {CONTENT_SHA256: sha256_hex(raw)})
        elif path == Op.UPDATE_STATUS.path:
            word = str(request.get("status") or "")
            if word not in {w.value for w in StatusWord}:
                self._reply(400, _fail("STATUS_INVALID", "unknown status word"))
            elif not sim.update_status(system, str(request.get("docId") or ""), word):
                self._reply(404, _fail("NOT_FOUND", "no such document for this system"))
            else:
                self._reply(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": ""})
        elif path == Op.AGENCIES.path:
            self._reply(200, {"status": "OK", "ErrorCode": "0", "data": sim.agencies()})
        else:
            self._reply(404, _fail("NOT_FOUND", path))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout it gave up on, a killed connector) is no event.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(sim: Simulator, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"sim": sim})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.testing.axis_sim",
                                     description="national-axis simulator (tests, demo)")
    parser.add_argument("--systems", required=True, type=Path,
                        help='JSON: [{"system_id", "secret", "provinces": ["H27"]}]')
    parser.add_argument("--store", type=Path, default=Path("axis-sim.sqlite3"),
                        help="SQLite file of the simulator's store (kept across restarts)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    args = parser.parse_args(argv)
    systems = [System(s["system_id"], s["secret"], tuple(s.get("provinces", ())))
               for s in json.loads(args.systems.read_text(encoding="utf-8"))]
    server = serve(Simulator(systems, args.store), args.host, args.port)
    print(f"listening {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


class AxisSimulator:
    """Runs the simulator as a child process and drives its control endpoints (tests, demo)."""

    def __init__(self, workdir: Path, systems: Sequence[System], *, port: int = 0) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.systems_file = workdir / "axis-systems.json"
        self.systems_file.write_text(json.dumps(
            [{"system_id": s.system_id, "secret": s.secret, "provinces": list(s.provinces)}
             for s in systems]), encoding="utf-8")
        self.store = workdir / "axis-sim.sqlite3"
        self.port = port
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AxisSimulator:
        import os

        import hub

        # The child imports the same hub package as this process, wherever that one came from.
        root = str(Path(hub.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.testing.axis_sim", "--systems", str(self.systems_file),
             "--store", str(self.store), "--port", str(self.port)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until it listens (or dies)
        if not line.startswith("listening "):
            self.process.wait(timeout=10)
            raise RuntimeError(f"the axis simulator did not start (exit {self.process.returncode})")
        self.port = int(line.split()[1])
        return self

    def kill(self) -> None:
        """Stop it abruptly (connections are refused until :meth:`start` again)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    stop = kill

    # -- control --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: bytes | None = None,
              query: Mapping[str, str] | None = None) -> bytes:
        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        with urlopen(Request(url, data=body, method=method), timeout=30) as response:  # noqa: S310
            return bytes(response.read())

    def faults(self, **spec: Any) -> None:
        self._call("POST", "/_sim/faults", json.dumps(spec).encode())

    def set_agencies(self, items: Sequence[Mapping[str, Any]]) -> None:
        self._call("POST", "/_sim/agencies", json.dumps(list(items)).encode())

    def inject(self, raw: bytes, *, sender: str, to: Sequence[str], message_type: str = "edoc",
               system: str | None = None) -> str:
        query = {"from": sender, "to": ",".join(to), "messagetype": message_type}
        if system:
            query["system"] = system
        return str(json.loads(self._call("POST", "/_sim/inject", raw, query))["DocID"])

    def outside(self) -> list[dict[str, Any]]:
        return list(json.loads(self._call("GET", "/_sim/outside")))

    def document(self, doc_id: str) -> bytes:
        return self._call("GET", "/_sim/doc", query={"id": doc_id})

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self._call("GET", "/_sim/stats")))


if __name__ == "__main__":
    sys.exit(main())

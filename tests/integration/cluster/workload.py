"""The cluster workload: signed envelopes, ``hub run`` processes, a ledger schema, counters.

Shared by the cluster fault tests and the throughput script (``throughput.py``). Every piece
is real: a PKI issued now, consumers started as ``python -m hub.ops.cli run`` with ``HUB_*``
variables (the way the systemd units and the compose file start them), the ledger in a fresh
PostgreSQL schema, the broker a three-node cluster from :mod:`hub.testing.cluster`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from hub.app import topology_for
from hub.broker import BrokerUnavailable, Connection, Delivery, Outgoing, connect
from hub.config import Settings, with_overrides
from hub.directory import Directory
from hub.edxml.build import build_envelope, sample_header
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY, Topology
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests import pg

PROVINCE = "000.00.00.H27"
"""The sender: Ủy ban nhân dân tỉnh Hà Tĩnh (sample directory)."""
FINANCE = "000.00.03.H27"
"""The recipient: Sở Tài chính."""
REPO_ROOT = Path(__file__).resolve().parents[3]


postgres_reachable = pg.reachable
pg_schema = pg.schema
"""The test machine's PostgreSQL (tests/pg.py): one schema per run."""


def live_pki(base: Path) -> PkiPaths:
    """A test PKI issued now: ``hub run`` processes validate on the real clock."""
    return init_pki(base, Directory.sample(), keys=KeyCache())


def operator_keystore(pki: PkiPaths, dest: Path, operator: str = "000.00.01.H27") -> Path:
    """A keystore holding only the hub operator's key, as in production: the hub signs its own
    receipts and checkpoints; agencies sign their "received" statuses themselves."""
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (".key.pem", ".pem"):
        shutil.copyfile(pki.keystore / f"{operator}{suffix}", dest / f"{operator}{suffix}")
    return dest


def signed_envelopes(pki: PkiPaths, n: int, tag: str) -> list[bytes]:
    """``n`` distinct envelopes from the province to the finance department, signed."""
    signer = Keystore.load(pki.keystore).signer(PROVINCE)
    assert signer is not None
    today = dt.datetime.now(dt.UTC).date()
    return [sign_xml(build_envelope(sample_header(PROVINCE, (FINANCE,), number=f"{tag}{i}",
                                                  promulgation_date=today)), signer)
            for i in range(n)]


def hub_settings(pki: PkiPaths, tmp: Path, *, url: str, prefix: str, ledger_url: str,
                 batch_max: int = 64) -> Settings:
    return with_overrides(
        Settings(base_dir=str(tmp)),
        broker={"url": url, "prefix": prefix, "trusted_publishers": ["guest"],
                "batch_max": batch_max, "reconnect_max_s": 2.0},
        trust={"roots": [str(pki.root_cert)], "intermediates": [str(pki.issuing_ca_cert)],
               "crls": [str(pki.crl_der), str(pki.root_crl_der)], "fetch_crls": False,
               "policy_oids": [pki.policy_oid], "require_pdf_signatures": False},
        hub={"keystore": str(operator_keystore(pki, tmp / "keystore"))},
        ledger={"url": ledger_url, "blob_dir": str(tmp / "blobs")},
    )


def topology_of(settings: Settings) -> Topology:
    """The topology every ``hub run`` of these settings declares (identical arguments)."""
    return topology_for(settings, Directory.sample())


def hub_env(settings: Settings, url: str) -> dict[str, str]:
    """The environment of one ``hub run`` process connected to ``url``."""
    b, t = settings.broker, settings.trust
    env = dict(os.environ)
    env.update({
        "HUB_BROKER__URL": url, "HUB_BROKER__PREFIX": b.prefix,
        "HUB_BROKER__TRUSTED_PUBLISHERS": ",".join(b.trusted_publishers),
        "HUB_BROKER__BATCH_MAX": str(b.batch_max),
        "HUB_BROKER__RECONNECT_MAX_S": str(b.reconnect_max_s),
        "HUB_TRUST__ROOTS": ",".join(t.roots), "HUB_TRUST__INTERMEDIATES": ",".join(t.intermediates),
        "HUB_TRUST__CRLS": ",".join(t.crls), "HUB_TRUST__FETCH_CRLS": "false",
        "HUB_TRUST__POLICY_OIDS": ",".join(t.policy_oids),
        "HUB_TRUST__REQUIRE_PDF_SIGNATURES": "false",
        "HUB_HUB__KEYSTORE": settings.hub.keystore, "HUB_LEDGER__URL": settings.ledger.url,
        "HUB_LEDGER__BLOB_DIR": settings.ledger.blob_dir, "HUB_LOG__LEVEL": "warning",
        "HUB_LOG__FORMAT": "json",
    })
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Consumers:
    """Several ``python -m hub.ops.cli run`` processes, each connected to its own broker URL."""

    settings: Settings
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, urls: Sequence[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for i, url in enumerate(urls, start=len(self.procs) + 1):
            with (self.logs / f"consumer-{i}.log").open("ab") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "hub.ops.cli", "run", "--name",
                     f"{self.settings.broker.prefix} consumer {i}"],
                    env={**hub_env(self.settings, url),
                         # the other nodes, in turn, when this one is lost
                         "HUB_BROKER__FAILOVER_URLS": ",".join(u for u in urls if u != url)},
                    cwd=self.logs, stdout=out, stderr=out))

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 30) -> list[int | None]:
        """SIGTERM each (finish the batch in hand, exit 0); SIGKILL what does not exit."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                codes.append(None)
        return codes

    def tail(self, lines: int = 5) -> str:
        out = []
        for f in sorted(self.logs.glob("consumer-*.log")):
            out.append(f"{f.name}: " + " | ".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def wait_until(check: Callable[[], bool], timeout: float, poll: Callable[[float], None]) -> bool:
    """Poll ``check`` until true or ``timeout``: other processes change the state we watch (the
    ledger, a queue), and no event crosses the process boundary. ``poll`` waits between checks
    (a broker connection's ``sleep`` keeps its heartbeats flowing)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        poll(0.1)
    return True


def envelope_count(ledger_url: str) -> int:
    """Envelope documents in the ledger (a COUNT: cheap to poll while consumers write)."""
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM ledger_documents WHERE kind = 'envelope'")).scalar_one())
    finally:
        engine.dispose()


class Watch:
    """An observer's broker connection that survives its node going away.

    Measured: when a cut node comes back, autoheal may pick the *majority* side as the loser and
    restart its nodes, so any node's clients can be disconnected while the cluster heals. The
    watch then reconnects to the next node that answers.
    """

    def __init__(self, urls: Sequence[str], name: str) -> None:
        self.urls = list(urls)
        self.name = name
        self._which = 0
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        deadline = time.monotonic() + 120
        while self._conn is None:
            url = self.urls[self._which % len(self.urls)]
            try:
                self._conn = connect(url, self.name)
            except BrokerUnavailable:
                self._which += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # between connection attempts to a restarting cluster
        return self._conn

    def _lost(self) -> None:
        if self._conn is not None:
            abandon(self._conn)
        self._conn = None
        self._which += 1

    def sleep(self, seconds: float) -> None:
        """Wait while keeping the connection alive; reconnect if it was lost."""
        try:
            self.conn.sleep(seconds)
        except BrokerUnavailable:
            self._lost()

    def consumers(self, queue: str) -> int:
        try:
            ok = self.conn.channel.queue_declare(queue, passive=True)
        except Exception:  # pika's channel errors: reconnect and report nothing seen yet
            self._lost()
            return 0
        return int(ok.method.consumer_count)

    def depth(self, queue: str) -> int:
        return self.conn.queue_depth(queue)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


@dataclass
class PublishReport:
    published: int = 0
    reopened: int = 0
    problems: list[str] = field(default_factory=list)


def publish_reliably(urls: Sequence[str], exchange: str, items: Sequence[tuple[str, bytes]],
                     *, batch: int = 200, timeout: float = 120) -> PublishReport:
    """Publish ``(message_id, body)`` pairs with confirms, surviving a node's loss.

    On a nack, a timeout or a dead connection the channel is *reopened* (a new connection, the
    next node) and the whole unconfirmed batch is published again under the same message ids:
    after a quorum leader is lost a channel may keep nacking (measured on RabbitMQ 3.10), and the hub's
    ledger recognises a document it has already recorded (same digest), so a republished copy is
    never delivered twice.
    """
    report = PublishReport()
    deadline = time.monotonic() + timeout
    conn: Connection | None = None
    which = 0
    i = 0
    try:
        while i < len(items):
            chunk = items[i:i + batch]
            try:
                if conn is None:
                    conn = connect(urls[which % len(urls)], "cluster test publisher")
                conn.publish([Outgoing(exchange, ENVELOPE_KEY, body, message_id=mid,
                                       user_id="guest") for mid, body in chunk], timeout=15)
                i += len(chunk)
                report.published += len(chunk)
            except BrokerUnavailable as exc:
                report.reopened += 1
                report.problems.append(exc.detail[:120])
                if conn is not None:
                    abandon(conn)
                conn = None
                which += 1
                if time.monotonic() > deadline:
                    raise
    finally:
        if conn is not None:
            conn.close()
    return report


def abandon(conn: Connection, timeout: float = 5.0) -> None:
    """Close a connection that just failed, without waiting on it for more than ``timeout``.

    Measured: after a publish timed out on a node whose queue leader was paused, pika's
    ``BlockingConnection.close()`` waited for a ``channel.close-ok`` that never came, for good.
    The close runs in a daemon thread; a connection that does not close in time is left to the
    broker's heartbeat check. (``hub.broker.Connection`` has no bounded close yet.)
    """
    closer = threading.Thread(target=conn.close, daemon=True, name="abandon connection")
    closer.start()
    closer.join(timeout)


def drain(url: str, queue: str) -> list[Delivery]:
    """Take and acknowledge every message in ``queue`` (the recipient reading its inbox)."""
    conn = connect(url, f"drain {queue}")
    try:
        settler = conn.settler()
        out: list[Delivery] = []
        while (d := conn.get(queue)) is not None:
            settler.ack([d.tag])
            out.append(d)
        return out
    finally:
        conn.close()

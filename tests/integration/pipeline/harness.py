"""A running hub against the real test broker, for pipeline tests.

Each test gets its own topology prefix, its own SQLite ledger, a PKI generated for a pinned
instant (before the district level was abolished on 1 July 2025, so district bodies still
exist), and an intake consumer in a thread that the test stops and joins.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.app import Hub, build_hub
from hub.broker import Connection, Delivery, connect
from hub.client import AgencyClient
from hub.config import Settings, with_overrides
from hub.consumers.intake import IntakeConsumer
from hub.directory import Directory
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType
from hub.testing import devbroker
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import sign_xml

PKI_AT = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
"""When the pipeline tests' PKI is issued: districts and communes of 2025 still exist."""
NOW = PKI_AT + dt.timedelta(minutes=5)

PROVINCE = "000.00.00.H27"
OFFICE = "000.00.01.H27"
HOME_AFFAIRS = "000.00.02.H27"
FINANCE = "000.00.03.H27"
DISTRICT = "000.00.36.H27"
COMMUNE = "000.01.36.H27"
MINISTRY = "000.00.00.G09"

_KEYS = KeyCache()


def make_pki(base: Path) -> PkiPaths:
    return init_pki(base, Directory.sample(), now=PKI_AT, keys=_KEYS)


def hub_settings(pki: PkiPaths, tmp: Path, url: str, prefix: str, *, ledger_url: str | None = None,
                 **broker: Any) -> Settings:
    return with_overrides(
        Settings(base_dir=str(tmp)),
        broker={"url": url, "prefix": prefix, "trusted_publishers": ["guest"],
                "batch_wait_ms": 2, "retry_base_ms": 50, "retry_max_ms": 200, **broker},
        trust={"roots": [str(pki.root_cert)], "intermediates": [str(pki.issuing_ca_cert)],
               "crls": [str(pki.crl_der), str(pki.root_crl_der)], "fetch_crls": False,
               "public_roots": [str(pki.public_root_cert)], "policy_oids": [pki.policy_oid],
               "require_pdf_signatures": False},
        hub={"keystore": str(pki.keystore)},
        ledger={"url": ledger_url or f"sqlite:///{tmp / 'ledger.sqlite3'}",
                "blob_dir": str(tmp / "blobs")},
    )


@dataclass
class RunningHub:
    hub: Hub
    consumer: IntakeConsumer
    thread: threading.Thread
    url: str
    clients: dict[str, AgencyClient] = field(default_factory=dict)

    @property
    def names(self) -> Any:
        return self.hub.topology.names

    def client(self, org: str) -> AgencyClient:
        if org not in self.clients:
            self.clients[org] = AgencyClient(self.url, org, prefix=self.names.prefix)
        return self.clients[org]

    def wait_acked(self, n: int, timeout: float = 30.0) -> None:
        """Wait until the consumer settled ``n`` deliveries (a condition, not a sleep)."""
        ok = self.consumer.stats.wait_for(lambda st: st.acked >= n, timeout)
        assert ok, (f"only {self.consumer.stats.acked} of {n} deliveries settled in {timeout}s; "
                    f"outcomes {self.consumer.stats.by_outcome}")

    def drain(self, queue: str, timeout: float = 0.0) -> list[Delivery]:
        """Take every message in ``queue``. Everything the hub acked is already confirmed in
        its queue, so after :meth:`wait_acked` no waiting is needed (``timeout`` 0)."""
        conn = connect(self.url, f"drain {queue}")
        try:
            out: list[Delivery] = []
            settler = conn.settler()
            waited = 0.0
            while True:
                d = conn.get(queue)
                if d is None:
                    if waited >= timeout:
                        return out
                    conn.sleep(0.05)
                    waited += 0.05
                    continue
                settler.ack([d.tag])
                out.append(d)
        finally:
            conn.close()


@contextmanager
def running_hub(settings: Settings, clock: Callable[[], dt.datetime] = lambda: NOW,
                *, keep_topology: bool = False, ledger: Any = None,
                url: str | None = None) -> Iterator[RunningHub]:
    """``url``: where the harness itself connects (default: the hub's broker URL)."""
    url = url or settings.broker.url
    hub = build_hub(settings, clock=clock, ledger=ledger)
    conn: Connection = connect(url, "harness declare")
    conn.declare(hub.topology)
    conn.close()
    consumer = hub.consumer(name=f"intake {settings.broker.prefix}")
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    running = RunningHub(hub, consumer, thread, url)
    try:
        yield running
    finally:
        consumer.stop.set()
        thread.join(timeout=30)
        for c in running.clients.values():
            c.close()
        if not keep_topology:
            conn = connect(url, "harness cleanup")
            conn.delete(hub.topology)
            conn.close()
        hub.close()


def signed_envelope(keystore: Keystore, sender: str, recipients: tuple[str, ...],
                    number: str = "1", subject: str = "Về việc triển khai chữ ký số",
                    **kw: Any) -> bytes:
    signer: OrgSigner | None = keystore.signer(sender)
    assert signer is not None, sender
    header = sample_header(sender, recipients, number=number, subject=subject,
                           promulgation_date=NOW.date(), **kw)
    return sign_xml(build_envelope(header), signer)


@contextmanager
def hub_in_process(pki: PkiPaths, tmp: Path, ledger_url: str, prefix: str) -> Iterator[Hub]:
    """The hub's objects without a broker (planning and the ledger commit run in process,
    :func:`plan_and_write`), its clock at :data:`NOW`."""
    settings = hub_settings(pki, tmp, "amqp://unused:unused@127.0.0.1:1/", prefix,
                            ledger_url=ledger_url)
    built = build_hub(settings, clock=lambda: NOW)
    try:
        yield built
    finally:
        built.close()


def plan_and_write(hub: Hub, bodies: list[tuple[bytes, bool]], start: int) -> None:
    """One batch through the real pipeline and the ledger commit, in process (no broker):
    ``(body, is_status)`` pairs, delivery tags and message ids from ``start``."""
    deliveries = [Delivery(start + i, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound",
                           False, {}, f"m{start + i}", "guest", None, 0)
                  for i, (body, status) in enumerate(bodies)]
    hub.write_ledger(hub.pipeline.process_batch(deliveries))


def every_kind_of_packet(keystore: Keystore) -> list[list[tuple[bytes, bool]]]:
    """Two batches for :func:`plan_and_write` that make every kind of ledger row: accepted
    envelopes to several recipients, a redelivery, a reused DocumentId, a packet edited after
    signing, a body that is not XML, a recall and a recipient's status."""
    province = keystore.signer(PROVINCE)
    finance = keystore.signer(FINANCE)
    assert province is not None
    assert finance is not None
    first = signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS, DISTRICT), number="801",
                            subject="Về việc “chuyển đổi số” — năm 2025 \u2028 𝒜")
    second = signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="802")
    reused = signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="802", subject="Khác")
    edited = first.replace("chuyển đổi số".encode(), b"chuyen doi so")
    assert edited != first
    original_header = sample_header(PROVINCE, (FINANCE,), number="803",
                                    promulgation_date=NOW.date())
    original = sign_xml(build_envelope(original_header), province)
    recall = sign_xml(build_envelope(
        sample_header(PROVINCE, (FINANCE,), number="804", promulgation_date=NOW.date()),
        trace=sample_trace(PROVINCE, NOW, kind=BusinessDocType.REVOCATION, reason="Sai sót",
                           replaced_document_id=original_header.document_id)), province)
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(first)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ \"văn bản\" \\ đến"), finance)
    return [[(first, False), (second, False), (original, False), (b"not xml \xff", False)],
            [(first, False), (reused, False), (edited, False), (recall, False), (status, True)]]


def settings_toml(settings: Settings) -> str:
    """The settings as a TOML file (for driving the CLI as an operator would)."""
    import json as _json

    lines: list[str] = []
    for section in ("broker", "ledger", "trust", "limits", "hub", "log", "metrics"):
        lines.append(f"[{section}]")
        values = getattr(settings, section)
        for name in type(values).model_fields:
            value = getattr(values, name)
            if isinstance(value, bool):
                lines.append(f"{name} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{name} = {value}")
            elif isinstance(value, tuple):
                lines.append(f"{name} = {_json.dumps(list(value), ensure_ascii=False)}")
            else:
                lines.append(f"{name} = {_json.dumps(value, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


def agency_account(rabbitmq: devbroker.RunningBroker, org: str, password: str) -> str:
    """A broker account of the organization's own (created, or its password set again: tests
    on one broker may create the same account), allowed to publish; its URL."""
    with contextlib.suppress(devbroker.BrokerUnavailable):
        rabbitmq.exec("rabbitmqctl", "add_user", org, password)
    rabbitmq.exec("rabbitmqctl", "change_password", org, password)
    rabbitmq.exec("rabbitmqctl", "set_permissions", "-p", "/", org, "^$", ".*", ".*")
    return f"amqp://{org}:{password}@{rabbitmq.host}:{rabbitmq.port}/"

"""``hub demo``: start the hub on embedded defaults and exchange a few documents.

What it shows, in plain words: a commune sends a signed document to the provincial People's
Committee and a department (delivered to both, receipts back); the province writes to a
ministry: the letter leaves through the national-axis connector (``hub axis run``, against the
axis simulator of ``hub.testing.axis_sim``) and the ministry's signed ``03`` comes back to the
province; a document edited after signing is refused; a resend is recognised as a duplicate; a
letter to a district abolished on 1 July 2025 is refused.

It uses the local RabbitMQ at ``broker.url`` when one answers, otherwise starts one the same
way the tests do; a generated test PKI and an SQLite ledger under ``.hub-demo/``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.config import load_settings, with_overrides
from hub.messages import Headers
from hub.testing.devbroker import broker_for

PROVINCE = "000.00.00.H27"
HOME_AFFAIRS = "000.00.02.H27"
FINANCE = "000.00.03.H27"
COMMUNE = "H27.102"
ABOLISHED_DISTRICT = "000.00.36.H27"
MINISTRY = "000.00.00.G09"


_AXIS_SYSTEM = "hub-h27-demo"


def _start_axis(state: Path) -> Any:
    """The national-axis simulator (a process of its own), serving this hub's province."""
    import secrets

    from hub.testing.axis_sim import AxisSimulator, System

    secret = secrets.token_urlsafe(24)
    (state / "axis.secret").write_text(secret + "\n", encoding="utf-8")
    store = state / "axis-sim"
    for old in store.glob("axis-sim.sqlite3*") if store.is_dir() else ():
        old.unlink()
    return AxisSimulator(store, [System(_AXIS_SYSTEM, secret, ("H27",))]).start()


def _ministry_answers(axis_sim: Any, paths: Any, province: Any, name: dict[str, str]) -> bool:
    """Wait for the province's letter at the axis, answer it as the ministry with a signed 03,
    and wait for that 03 in the province's status queue."""
    from hub.edxml import parse_packet
    from hub.edxml.build import build_status, response_for
    from hub.edxml.model import Organization
    from hub.trust.keystore import OrgSigner
    from hub.trust.signing import sign_xml

    deadline = time.monotonic() + 30
    letters: list[Any] = []
    while not letters and time.monotonic() < deadline:
        letters = [d for d in axis_sim.outside() if d["messagetype"] == "edoc"]
        if not letters:
            time.sleep(0.2)
    if not letters:
        _say("  national axis: the letter to the ministry did not arrive")
        return False
    letter = axis_sim.document(letters[0]["id"])
    _say(f"  national axis: the province's letter arrived for {name.get(MINISTRY, MINISTRY)} "
         f"(axis document id {letters[0]['id'][:8]}…)")
    ministry = paths.axis_organizations[MINISTRY]
    signer = OrgSigner.from_files(MINISTRY, ministry.key, ministry.cert)
    answer = sign_xml(build_status(
        response_for=response_for(parse_packet(letter)),  # type: ignore[arg-type]
        sender=Organization(MINISTRY), status_code="03", timestamp=datetime.now(UTC),
        description="Đã tiếp nhận (vào sổ)"), signer)
    axis_sim.inject(answer, sender=MINISTRY, to=[PROVINCE], message_type="status")
    while time.monotonic() < deadline + 30:
        for status in province.statuses(timeout=0.5):
            if status.headers.get(Headers.STATUS) == "03" and Headers.RECEIPT not in status.headers:
                _say(f"  {name[PROVINCE]} received the ministry's signed 03 (đã tiếp nhận) "
                     "through the axis")
                return True
    return False


@dataclass
class Scene:
    title: str
    sender: str
    recipients: tuple[str, ...]
    expect: str


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(config: str | None, *, state_dir: Path | None = None) -> int:
    from hub import logs

    logs.configure("json", "error")  # the demo prints its own story; errors still show
    state = (state_dir or Path.cwd() / ".hub-demo").resolve()
    state.mkdir(parents=True, exist_ok=True)
    settings = load_settings(config)
    with broker_for(settings.broker.url, log=_say) as (url, started):
        if started is not None:
            _say(f"started a private RabbitMQ ({started.kind}) at {started.host}:{started.port}")
        else:
            _say(f"using the RabbitMQ at {url.split('@')[-1]}")
        return _run(settings, url, state)


def _run(settings: object, url: str, state: Path) -> int:
    from hub.app import build_hub
    from hub.client import AgencyClient
    from hub.directory import Directory
    from hub.edxml.build import build_envelope, sample_attachment, sample_header
    from hub.testing.pki import init_pki
    from hub.trust.keystore import OrgSigner
    from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml

    pki_dir = state / "pki"
    _say(f"generating a test PKI shaped like the specialized one in {pki_dir}")
    paths = init_pki(pki_dir, Directory.sample(), include_axis=True)
    axis_sim = _start_axis(state)
    prefix = f"edxml-demo-{os.getpid()}"
    settings = with_overrides(
        settings,  # type: ignore[arg-type]
        broker={"url": url, "prefix": prefix, "trusted_publishers": ["guest"],
                "batch_wait_ms": 5},
        trust={"roots": [str(paths.root_cert)], "intermediates": [str(paths.issuing_ca_cert)],
               "crls": [str(paths.crl_der), str(paths.root_crl_der)], "fetch_crls": False,
               "public_roots": [str(paths.public_root_cert)],
               "policy_oids": [paths.policy_oid]},
        hub={"keystore": str(paths.keystore)},
        ledger={"url": f"sqlite:///{state / 'ledger.sqlite3'}",
                "blob_dir": str(state / "blobs")},
        axis={"url": axis_sim.url, "system_id": _AXIS_SYSTEM,
              "secret_file": str(state / "axis.secret"), "verify_tls": False,
              "poll_interval_s": 0.3, "timeout_s": 5.0},
    )
    hub = build_hub(settings)  # type: ignore[arg-type]
    from hub.axis import build_connector

    axis = build_connector(settings)  # type: ignore[arg-type]
    axis_thread = threading.Thread(target=axis.connector.run, name="axis", daemon=True)
    axis_thread.start()
    consumer = hub.consumer(name="edxml-hub demo intake")
    thread = threading.Thread(target=consumer.run, name="intake", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while consumer.stats.batches == 0 and consumer.stats.reconnects == 0:
        # The consumer declares the topology on connect; wait for that (no event to wait on).
        if time.monotonic() > deadline:
            break
        try:
            probe = AgencyClient(url, PROVINCE, prefix=prefix)
            probe.conn.queue_depth(hub.topology.names.intake)
            probe.close()
            break
        except Exception:
            time.sleep(0.1)

    clients = {org: AgencyClient(url, org, prefix=prefix, name=f"demo agency {org}")
               for org in (PROVINCE, HOME_AFFAIRS, FINANCE, COMMUNE)}
    name = {e.codes[0]: e.name for e in hub.directory.entries()}

    def signer(org: str) -> OrgSigner:
        s = hub.keystore.signer(org)
        assert s is not None, org
        return s

    def person(org: str) -> OrgSigner | None:
        entry = hub.directory.find(org)
        for sg in entry.signers if entry is not None else ():
            if sg.role == "person" and sg.uid is not None and sg.uid in paths.signers:
                ip = paths.signers[sg.uid]
                return OrgSigner.from_files(org, ip.key, ip.cert)
        return None

    def envelope(sender: str, recipients: tuple[str, ...], number: str, subject: str,
                 *, pdf: bool = True) -> bytes:
        attachments = []
        if pdf:
            doc = minimal_pdf(subject)
            p = person(sender)
            if p is not None:
                doc = sign_pdf(doc, p, field_name="NguoiKy", reason="Ký ban hành")
            doc = sign_pdf(doc, signer(sender), field_name="CoQuan", reason="Đóng dấu số")
            attachments.append(sample_attachment(doc, name=f"{number}.pdf"))
        header = sample_header(sender, recipients, number=number, subject=subject,
                               promulgation_date=datetime.now(UTC).date())
        return sign_xml(build_envelope(header, attachments=attachments), signer(sender))

    _say("")
    _say("== Sending")
    first = envelope(COMMUNE, (PROVINCE, HOME_AFFAIRS), "15",
                     "Báo cáo kết quả triển khai chữ ký số chuyên dùng năm 2026")
    scenes: list[tuple[str, str]] = []
    clients[COMMUNE].send(first)
    scenes.append(("1", f"{name.get(COMMUNE, COMMUNE)} → {name[PROVINCE]} and "
                        f"{name[HOME_AFFAIRS]}"))
    clients[PROVINCE].send(envelope(PROVINCE, (MINISTRY,), "88",
                                    "Báo cáo tình hình sử dụng chữ ký số"))
    scenes.append(("2", f"{name[PROVINCE]} → {name.get(MINISTRY, MINISTRY)} (another level 1 body)"))
    tampered = envelope(FINANCE, (PROVINCE,), "42", "Tờ trình phân bổ kinh phí")
    tampered = tampered.replace("Tờ trình phân bổ kinh phí".encode(),
                                "Tờ trình phân bổ kinh phí bổ sung".encode())
    clients[FINANCE].send(tampered)
    scenes.append(("3", f"{name[FINANCE]} → {name[PROVINCE]}, subject edited after signing"))
    clients[COMMUNE].send(first)
    scenes.append(("4", "the commune's first document sent again"))
    clients[HOME_AFFAIRS].send(envelope(HOME_AFFAIRS, (ABOLISHED_DISTRICT,), "7",
                                        "Hướng dẫn sắp xếp tổ chức", pdf=False))
    scenes.append(("5", f"{name[HOME_AFFAIRS]} → {name.get(ABOLISHED_DISTRICT)} "
                        "(district level abolished on 1 July 2025)"))
    for number, text in scenes:
        _say(f"  [{number}] {text}")

    # Wait for the hub to settle five packets (the stats are updated after each ack).
    consumer.stats.wait_for(lambda st: st.acked >= 5, 60)

    _say("")
    _say("== What each body received")
    for org, client in clients.items():
        docs = client.documents(timeout=1.0)
        statuses = client.statuses(timeout=0.5)
        kinds = [str(s.headers.get(Headers.RECEIPT, "status")) for s in statuses]
        _say(f"  {name.get(org, org)} ({org}): {len(docs)} document(s); "
             f"receipts: {', '.join(kinds) or 'none'}")
    from hub.broker import connect

    conn = connect(url, "demo inspector")
    gateway = conn.queue_depth(hub.topology.names.gateway)
    dlq = []
    while True:
        d = conn.get(hub.topology.names.dlq)
        if d is None:
            break
        dlq.append(d)
    _say(f"  national-axis gateway queue: {gateway} document(s) waiting for the axis")
    came_back = _ministry_answers(axis_sim, paths, clients[PROVINCE], name)
    _say("")
    _say("== Dead-letter queue (refused, with reasons)")
    for d in dlq:
        reason = str(d.headers.get(Headers.REASON))
        _say(f"  {d.headers.get(Headers.SENDER)}: {reason}")
        _say(f"      vi: {d.headers.get(Headers.REASON_TEXT_VI)}")
        _say(f"      en: {d.headers.get(Headers.REASON_TEXT_EN)}")
        if d.headers.get(Headers.DETAIL):
            _say(f"      detail: {d.headers.get(Headers.DETAIL)}")
    conn.close()

    stats = consumer.stats
    _say("")
    _say("== In plain words")
    _say("  [1] delivered to both recipients, byte for byte as signed; each recipient")
    _say("      organization signed a '01 đã đến' receipt and the hub signed 'accepted'")
    _say("  [2] the ministry is outside the province: the letter left through the national")
    _say("      document axis, and the ministry's signed 03 (đã tiếp nhận) came back"
         + ("" if came_back else " — NOT SEEN"))
    _say("  [3] refused at once (no retries): the signature no longer matches the content")
    _say(f"  [4] recognised as a duplicate: delivered once only "
         f"({stats.by_outcome.get('duplicate', 0)} duplicate ignored)")
    _say("  [5] refused: the district no longer exists, and its sender was told so")
    _say("")
    _say("== Hub")
    _say(f"  outcomes: {dict(sorted(stats.by_outcome.items()))}")
    axis.connector.stop.set()
    axis_thread.join(timeout=30)
    axis.close()
    axis_sim.kill()
    consumer.stop.set()
    thread.join(timeout=30)
    hub.ledger.checkpoint()
    result = hub.ledger.verify()
    _say(f"  ledger: {result.rows} rows, hash chain {'verified' if result.ok else 'BROKEN'},"
         f" head signed by the hub operator ({state / 'ledger.sqlite3'})")
    _say("  auditors: hub --config … ledger verify | ledger query --json | evidence export")
    for c in clients.values():
        c.close()
    cleanup = connect(url, "demo cleanup")
    cleanup.delete(hub.topology)
    cleanup.close()
    hub.close()
    ok = (stats.by_outcome.get("deliver", 0) == 3 and stats.by_outcome.get("duplicate", 0) == 1
          and len(dlq) == 2 and result.ok and came_back)
    _say("")
    _say("demo finished: " + ("everything as expected" if ok else "UNEXPECTED outcome, see above"))
    return 0 if ok else 1

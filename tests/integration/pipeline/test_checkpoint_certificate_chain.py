"""The checkpoints ``hub run`` signs verify with the operator CA root alone (review r1).

Each checkpoint stores the certificate that signed it followed by its issuing chain
(docs/OPERATIONS.md, "Rotate an organization key"), as ``hub ledger`` commands already did: an
auditor who holds only the operator CA root, and no copy of the issuing CA, checks every
checkpoint of the hub's own consumer. SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import create_engine, text

from hub.app import build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.ops.ledger_cli import EXIT_OK
from hub.ops.ledger_cli import main as ledger_main
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    hub_settings,
    signed_envelope,
)


def test_checkpoints_the_hub_signs_verify_with_the_operator_root_ca_alone(
        pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Given a hub whose consumer records an envelope and signs checkpoints as `hub run` does
    settings = hub_settings(pipeline_pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "chain",
                            ledger_url=ledger_url)
    hub = build_hub(settings, clock=lambda: NOW)
    try:
        stop = threading.Event()
        conn = FakeConnection(on_idle=lambda c: stop.set() if c.channel.acked_tags() else None)
        conn.put(signed_envelope(Keystore.load(pipeline_pki.keystore), HOME_AFFAIRS, (FINANCE,)),
                 message_id="m0", user_id="guest")
        IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                       hub.ledger, topology=hub.topology, stop=stop,
                       connector=lambda _url, _name: conn).run()
        assert conn.channel.acked_tags() == {1}
    finally:
        hub.close()  # signs the chain head
    # Then each checkpoint stores the operator certificate followed by its issuing CA
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as db:
            stored = [bytes(pem) for pem in db.execute(text(
                "SELECT cert_pem FROM ledger_checkpoints WHERE signature IS NOT NULL")).scalars()]
    finally:
        engine.dispose()
    assert stored
    issuing = x509.load_pem_x509_certificate(pipeline_pki.issuing_ca_cert.read_bytes())
    for pem in stored:
        chain = x509.load_pem_x509_certificates(pem)
        assert [c.subject for c in chain[1:]] == [issuing.subject]
    # And an auditor with only the operator CA root verifies every one of them
    empty = tmp_path / "auditor.toml"
    empty.write_text("")
    code = ledger_main(["ledger", "verify", "--config", str(empty), "--url", ledger_url,
                        "--operator-ca", str(pipeline_pki.root_cert), "--operator-id", OFFICE])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.out + out.err
    assert "forged" not in out.out + out.err

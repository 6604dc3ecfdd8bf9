"""``examples/node`` end to end on the real broker: a Node.js agency sends, receives, dedups and
answers with status 03 through a running hub (issue 15 item 6).

Two agencies run the same Node program (``agency.js``) with their own keys: the Department of
Finance sends a signed document with an attachment; the Department of Home Affairs receives it,
verifies it again with xmlsec1, stores the exact bytes, and answers 03; a copy the hub would
republish after a crash (same message id) is then dropped by its seen-set; Finance reads its
status queue and finds the hub's receipts and the 03, each verified with xmlsec1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.broker import Outgoing, connect
from hub.directory import Directory
from hub.messages import Headers
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.topology import inbox_key
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    RunningHub,
    hub_settings,
    running_hub,
)
from tests.node_example import EXAMPLE, require_node, run_node

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    """Issued now: the Node program and xmlsec1 judge certificates at the wall clock."""
    return init_pki(tmp_path_factory.mktemp("node-e2e-pki"), Directory.sample(), keys=KeyCache())


@pytest.fixture
def hub(pki: PkiPaths, broker_url: str, names: str, tmp_path: Path) -> Iterator[RunningHub]:
    settings = hub_settings(pki, tmp_path / "hub", broker_url, names)
    with running_hub(settings, clock=lambda: datetime.now(UTC)) as running:
        yield running


def _agency(pki: PkiPaths, url: str, prefix: str, organ_id: str, store: Path) -> dict[str, str]:
    org = pki.organizations[organ_id]
    return {"AMQP_URL": url, "HUB_PREFIX": prefix, "ORGAN_ID": organ_id, "KEY_PEM": str(org.key),
            "CERT_PEM": str(org.cert), "ROOT_PEM": str(pki.root_cert),
            "CA_PEM": str(pki.issuing_ca_cert), "STORE_DIR": str(store)}


def _one(lines: list[dict[str, Any]], key: str) -> Any:
    found = [line[key] for line in lines if key in line]
    assert len(found) == 1, lines
    return found[0]


def test_a_node_agency_sends_receives_dedups_and_answers_03_through_the_hub(
        pki: PkiPaths, hub: RunningHub, broker_url: str, tmp_path: Path) -> None:
    node = require_node()
    agency = str(EXAMPLE / "agency.js")
    prefix = hub.names.prefix
    finance = _agency(pki, broker_url, prefix, FINANCE, tmp_path / "finance")
    home = _agency(pki, broker_url, prefix, HOME_AFFAIRS, tmp_path / "home-affairs")
    (tmp_path / "cong-van.pdf").write_bytes(b"%PDF-1.7\n% cong van 31\n%%EOF\n")

    # Given Finance sends a signed document with an attachment
    sent = run_node(node, [agency, "send", "--to", HOME_AFFAIRS, "--number", "31",
                           "--notation", "STC-KH", "--subject", "V/v kinh phí năm 2027",
                           "--attach", "cong-van.pdf"], finance, tmp_path)
    document_id = _one(sent, "sent")
    hub.wait_acked(1)

    # When Home Affairs receives it: verified, stored byte for byte, answered with 03
    received = run_node(node, [agency, "receive", "--count", "1", "--idle-ms", "20000"], home,
                        tmp_path)
    assert _one(received, "received") == document_id
    assert _one(received, "answered") == "03"
    stored = (tmp_path / "home-affairs").glob("*.edxml")
    body = next(stored).read_bytes()
    assert hashlib.sha256(body).digest()[:18] == _message_id_bytes(_one(sent, "messageId"))

    # And a copy republished under the same message id (the hub after a crash) is dropped
    digest = hashlib.sha256(body).hexdigest()
    conn = connect(broker_url, "republish")
    try:
        conn.publish([Outgoing(hub.names.deliver, inbox_key(HOME_AFFAIRS), body,
                               {Headers.DIGEST: digest, Headers.SENDER: FINANCE,
                                Headers.RECIPIENT: HOME_AFFAIRS,
                                Headers.DOCUMENT_ID: document_id, Headers.VIA: "direct"},
                               message_id=f"{digest}:{HOME_AFFAIRS}")])
    finally:
        conn.close()
    again = run_node(node, [agency, "receive", "--count", "1", "--idle-ms", "20000"], home,
                     tmp_path)
    assert _one(again, "receive") == {"taken": 1, "handled": 0, "duplicates": 1, "failed": 0}

    # Then the hub validated and routed the 03, and Finance finds it with the hub's receipts
    hub.wait_acked(2)
    statuses = run_node(node, [agency, "statuses", "--count", "4", "--idle-ms", "20000"],
                        finance, tmp_path)
    seen = {(s["receipt"], s["status"], s["reporter"]) for s in statuses if "messageId" in s}
    assert (None, "03", HOME_AFFAIRS) in seen
    assert ("countersigned", "03", HOME_AFFAIRS) in seen
    assert any(receipt == "accepted" for receipt, _s, _r in seen)
    assert _one(statuses, "statuses")["handled"] == 4


def _message_id_bytes(message_id: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(message_id + "=" * (-len(message_id) % 4))

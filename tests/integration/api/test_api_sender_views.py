"""What a sender sees of its own documents: all of them, and only what concerns it.

* An organization has two codes (QCVN 102:2016 ``000.00.03.H27`` and Decision 20/2020/QĐ-TTg
  ``H27.03``); a document sent with either as ``From`` is the sender's, in ``GET /sent``, in its
  evidence and in ``GET /edocs/{docId}``.
* A recipient that publishes again the exact bytes it received is refused
  (``SENDER_ACCOUNT_MISMATCH``, the signed ``02`` goes to that recipient): nothing of that
  attempt — the refusal receipt addressed to the recipient, the rejection events — enters the
  sender's evidence, and another recipient does not see it either.

Real broker, real intake, real HTTP; the ledger on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hub.api.server import build_context, running_api
from hub.config import with_overrides
from hub.edxml.build import build_envelope, sample_header
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.api.conftest import CHEAP, Api, api_settings, register_systems
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    running_hub,
    signed_envelope,
)
from tests.pg import fresh_schema

pytestmark = pytest.mark.broker

V1 = "/api/v1"
FINANCE_ELECTRONIC = "H27.03"
"""Finance's Decision 20/2020/QĐ-TTg code (the sample directory lists both of its codes)."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema("hub_api") as url:
        yield url


@pytest.fixture
def api(api_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
        ) -> Iterator[Api]:
    """The hub and its API (clock at NOW) over ``ledger_url``."""
    settings = with_overrides(api_settings(api_pki, tmp_path, broker_url, names),
                              ledger={"url": ledger_url})
    secrets = register_systems(settings)
    with ExitStack() as stack:
        hub = stack.enter_context(running_hub(settings))
        running = stack.enter_context(running_api(settings, build_context(
            settings, hasher=CHEAP, clock=lambda: NOW)))
        made = Api(hub, running, settings, secrets)
        try:
            yield made
        finally:
            for client in made.clients.values():
                client.close()


def _post(api: Api, org: str, body: bytes, **params: Any) -> Any:
    return api.client(org).post(f"{V1}/edocs", content=body, params=params,
                                headers={"Content-Type": "application/xml"})


def test_a_document_sent_with_the_electronic_code_is_in_the_senders_sent_list_evidence_and_fetch(
    api: Api, keystore: Keystore
) -> None:
    # Given Finance sends one document with each of its codes as From
    signer = keystore.signer(FINANCE)
    assert signer is not None
    sent: dict[str, str] = {}
    for code, number in ((FINANCE, "4101"), (FINANCE_ELECTRONIC, "4102")):
        header = sample_header(code, (PROVINCE,), number=number, promulgation_date=NOW.date())
        answer = _post(api, FINANCE, sign_xml(build_envelope(header), signer), **{"from": code})
        assert answer.status_code == 200, answer.text
        assert answer.json()["verdict"] == "accepted"
        sent[code] = answer.json()["docId"]

    # Then both are in its sent list
    listed = {i["docId"] for i in api.client(FINANCE).get(f"{V1}/sent").json()["items"]}
    assert listed == set(sent.values())
    # and both have their evidence: the operator's "accepted" and the recipient's "received"
    for code, doc in sent.items():
        evidence = api.client(FINANCE).get(f"{V1}/sent/{doc}/evidence")
        assert evidence.status_code == 200, (code, evidence.text)
        assert {r["kind"] for r in evidence.json()["receipts"]} == {"accepted", "received"}
        assert "receipt_issued" in [e["kind"] for e in evidence.json()["timeline"]]

    # When the recipient acknowledges both, the sender still fetches each from the ledger
    acked = api.client(PROVINCE).post(f"{V1}/acks", json={"docIds": list(sent.values())})
    assert acked.status_code == 200, acked.text
    for code, doc in sent.items():
        fetched = api.client(FINANCE).get(f"{V1}/edocs/{doc}")
        assert fetched.status_code == 200, (code, fetched.text)
        assert fetched.json()["item"]["from"] == code
        assert {r["kind"] for r in fetched.json()["receipts"]} == {"accepted", "received"}


def test_a_recipient_replaying_a_document_it_received_plants_nothing_in_the_senders_evidence(
    api: Api, keystore: Keystore
) -> None:
    # Given the Province sent a document to Finance and Home Affairs
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number="4201")
    first = _post(api, PROVINCE, envelope)
    assert first.json()["verdict"] == "accepted", first.text
    doc = first.json()["docId"]
    before = api.client(PROVINCE).get(f"{V1}/sent/{doc}/evidence").json()
    seen_by_home_affairs = api.client(HOME_AFFAIRS).get(f"{V1}/edocs/{doc}").json()["receipts"]

    # When Finance publishes the exact bytes it received, as if it were their sender
    replay = _post(api, FINANCE, api.client(FINANCE).get(f"{V1}/edocs/{doc}/content").content)

    # Then it is refused (the signed 02 goes to Finance)
    assert replay.status_code == 422, replay.text
    assert replay.json()["errorCode"] == "SENDER_ACCOUNT_MISMATCH"
    # and the sender's evidence is what it was: no receipt addressed to Finance, no event of
    # Finance's attempt
    after = api.client(PROVINCE).get(f"{V1}/sent/{doc}/evidence").json()
    assert [r["docId"] for r in after["receipts"]] == [r["docId"] for r in before["receipts"]]
    assert [(e["seq"], e["kind"]) for e in after["timeline"]] == [
        (e["seq"], e["kind"]) for e in before["timeline"]]
    assert "rejected" not in {r["kind"] for r in after["receipts"]}
    assert not {"rejected", "dead_lettered"} & {e["kind"] for e in after["timeline"]}
    # and the sender's own fetch of its document shows no such receipt either
    own = api.client(PROVINCE).get(f"{V1}/edocs/{doc}").json()["receipts"]
    assert [r["docId"] for r in own] == [r["docId"] for r in before["receipts"]]
    # and the other recipient does not see Finance's refusal
    now_seen = api.client(HOME_AFFAIRS).get(f"{V1}/edocs/{doc}").json()["receipts"]
    assert [r["docId"] for r in now_seen] == [r["docId"] for r in seen_by_home_affairs]

"""``GET /sent`` pages: ``hasMore`` says whether to ask for the next page; ``total`` counts
every document sent in the period, on every page (a client paging by it sees them all).

Real broker, real intake, real HTTP; the ledger on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hub.api.server import build_context, running_api
from hub.config import with_overrides
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import CHEAP, Api, api_settings, register_systems
from tests.integration.pipeline.harness import FINANCE, NOW, PROVINCE, running_hub, signed_envelope
from tests.pg import fresh_schema

pytestmark = pytest.mark.broker

V1 = "/api/v1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema("hub_api_sent") as url:
        yield url


@pytest.fixture
def api(api_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
        ) -> Iterator[Api]:
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


def test_a_client_paging_the_sent_list_by_has_more_sees_every_document_it_sent(
    api: Api, api_pki: PkiPaths
) -> None:
    province = api.client(PROVINCE)
    keystore = Keystore.load(api_pki.keystore)
    sent = set()
    for n in range(5):
        envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number=str(4700 + n))
        answer = province.post(f"{V1}/edocs", content=envelope,
                               headers={"Content-Type": "application/xml"})
        assert answer.json()["verdict"] == "accepted"
        sent.add(answer.json()["docId"])
    # Paging two at a time until hasMore is false
    seen, pages, page = [], [], 1
    while True:
        body = province.get(f"{V1}/sent", params={"pageSize": 2, "page": page}).json()
        pages.append((body["total"], body["hasMore"], len(body["items"])))
        seen += [i["docId"] for i in body["items"]]
        if not body["hasMore"]:
            break
        page += 1
    assert len(seen) == 5
    assert set(seen) == sent
    # total counts them all on every page
    assert pages == [(5, True, 2), (5, True, 2), (5, False, 1)]
    # One page holding everything: exact, nothing more
    one = province.get(f"{V1}/sent", params={"pageSize": 100}).json()
    assert (one["total"], one["hasMore"], len(one["items"])) == (5, False, 5)
    beyond = province.get(f"{V1}/sent", params={"pageSize": 2, "page": 9}).json()
    assert (beyond["total"], beyond["hasMore"], beyond["items"]) == (5, False, [])

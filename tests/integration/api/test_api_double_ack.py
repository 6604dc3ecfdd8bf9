"""Two acknowledgements of one document at once settle it once, and never cost anyone else.

A client that retries an acknowledgement whose answer it lost, or two systems of one agency,
may acknowledge the same document at the same moment: both requests find the same held
delivery. The broker thread must ``basic.ack`` it once (a second ``basic.ack`` of one tag is a
channel error; the hub's :class:`~hub.broker.Settler` refuses it), answer the second request as
the API's contract says for an acknowledged document (``alreadyAcknowledged``), and keep its
connection: dropping it would requeue every other agency's held deliveries.
Real broker, real intake, real ledger, real HTTP.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future
from typing import Any, cast

import httpx
import pytest

from hub.api.bridge import _Command
from hub.errors import TransientError
from hub.messages import Outgoing
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import Api
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, PROVINCE, signed_envelope

pytestmark = pytest.mark.broker

V1 = "/api/v1"


def _send(api: Api, org: str, body: bytes) -> str:
    answer = api.client(org).post(f"{V1}/edocs", content=body,
                                  headers={"Content-Type": "application/xml"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "accepted"
    doc: str = answer.json()["docId"]
    return doc


def _held_until(api: Api, org: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """What the API lists for ``org``, once it holds ``count`` documents (waits on the mailbox's
    arrivals, never on a sleep)."""
    box = api.api.ctx.bridge.mailbox(org)
    deadline = time.monotonic() + timeout
    while True:
        answer = api.client(org).get(f"{V1}/edocs")
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        if len(items) >= count or time.monotonic() >= deadline:
            return items
        with box.arrived:
            box.arrived.wait(timeout=0.5)


def test_the_same_document_acknowledged_by_six_requests_at_once_is_acknowledged_once_and_the_connection_stays(
    make_api: Any, keystore: Keystore
) -> None:
    api: Api = make_api()
    # Given Home Affairs fetched a document and has not acknowledged it yet
    other = _send(api, PROVINCE, signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="3100"))
    assert [i["docId"] for i in _held_until(api, HOME_AFFAIRS, 1)] == [other]
    assert api.client(HOME_AFFAIRS).get(f"{V1}/edocs/{other}").status_code == 200
    # and Finance holds five documents
    docs = [_send(api, PROVINCE, signed_envelope(keystore, PROVINCE, (FINANCE,),
                                                  number=str(3110 + n))) for n in range(5)]
    assert sorted(i["docId"] for i in _held_until(api, FINANCE, 5)) == sorted(docs)

    # When six requests of Finance's acknowledge each document at the same moment (both forms)
    headers = dict(api.client(FINANCE).headers)
    for doc in docs:
        start = threading.Barrier(6)
        answers: list[httpx.Response] = []

        def ack(form: int, doc: str = doc, start: threading.Barrier = start,
                answers: list[httpx.Response] = answers) -> None:
            with httpx.Client(base_url=api.api.base_url, timeout=30.0, headers=headers) as c:
                start.wait(timeout=10)
                answers.append(c.post(f"{V1}/edocs/{doc}/ack") if form
                               else c.post(f"{V1}/acks", json={"docIds": [doc]}))

        threads = [threading.Thread(target=ack, args=(n % 2,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)

        # Then every answer is a 200: one acknowledged it, the others were told it already is
        assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
        assert sum(a.json()["acknowledged"] == [doc] for a in answers) == 1
        assert sum(a.json()["alreadyAcknowledged"] == [doc] for a in answers) == 5

    # and Finance holds nothing more, while Home Affairs' document is still held by the same
    # connection: fetched, not offered again as a redelivery
    assert api.client(FINANCE).get(f"{V1}/edocs").json()["items"] == []
    held = [(i["docId"], i["state"], i["redelivered"]) for i in _held_until(api, HOME_AFFAIRS, 1)]
    assert held == [(other, "fetched", False)]


def test_a_hold_two_requests_took_is_acknowledged_once_and_the_second_learns_it_was_already(
    make_api: Any, keystore: Keystore
) -> None:
    # (the race above, made deterministic: both requests found the hold before either
    # acknowledgement reached the broker thread)
    api: Api = make_api()
    bridge = api.api.ctx.bridge
    doc = _send(api, PROVINCE, signed_envelope(keystore, PROVINCE, (FINANCE,), number="3201"))
    other = _send(api, PROVINCE, signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="3202"))
    assert len(_held_until(api, FINANCE, 1)) == 1
    assert len(_held_until(api, HOME_AFFAIRS, 1)) == 1
    box = bridge.mailbox(FINANCE)
    held = box.get(doc)
    assert held is not None

    # When the same hold is acknowledged twice
    first = bridge.acknowledge(box, [held], timeout=10)
    second = bridge.acknowledge(box, [held], timeout=10)

    # Then the first acknowledged it, the second took nothing, and nobody lost a hold
    assert (first, second) == ([doc], [])
    assert box.get(doc) is None
    assert doc in box.acknowledged
    assert bridge.connected
    assert bridge.mailbox(HOME_AFFAIRS).get(other) is not None
    ack = api.client(FINANCE).post(f"{V1}/edocs/{doc}/ack")
    assert ack.status_code == 200, ack.text
    assert (ack.json()["acknowledged"], ack.json()["alreadyAcknowledged"]) == ([], [doc])


def test_a_command_the_broker_thread_fails_on_is_answered_with_a_transient_error_not_left_waiting(
    make_api: Any, keystore: Keystore
) -> None:
    api: Api = make_api()
    bridge = api.api.ctx.bridge
    names = api.api.ctx.names
    good = signed_envelope(keystore, PROVINCE, (FINANCE,), number="3301")
    # Given a message the broker thread cannot marshal (a bug, not a broker failure)
    broken = Outgoing(names.inbound, ENVELOPE_KEY, cast(bytes, None), message_id="broken")

    # When it is handed to the broker thread, alone and with a good publish
    futures: list[Future[Any]] = [
        bridge.submit(_Command("publish", Future(), messages=(broken,))),
        bridge.submit(_Command("publish", Future(), messages=(
            broken, Outgoing(names.inbound, ENVELOPE_KEY, good,
                             message_id=hashlib.sha256(good).hexdigest()[:24])))),
    ]

    # Then every future completes at once with a transient error (the API answers 503 and the
    # client sends again), none waits for its timeout
    for future in futures:
        error = future.exception(timeout=10)
        assert isinstance(error, TransientError), repr(error)
    # and the bridge connects again and serves the next request (a request that came while
    # the connection was being given up was told 503: its client sends again, as told)
    answers = []
    for _ in range(3):
        answers.append(api.client(PROVINCE).post(f"{V1}/edocs", content=good,
                                                 headers={"Content-Type": "application/xml"}))
        if answers[-1].status_code != 503:
            break
    assert answers[-1].status_code == 200, [a.text for a in answers]
    assert answers[-1].json()["docId"] == hashlib.sha256(good).hexdigest()

"""A status update retried by its client is reported once; a new status still goes through.

The API signs a status packet for the caller, stamped with the API's clock. With a clock that
moves on, as a real one does, a retry must not become a second, different packet: the sender
would receive the same status twice, each countersigned, and the ledger would hold both.
Real broker, real intake, real ledger, real HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from hub.trust.keystore import Keystore
from tests.integration.api.conftest import Api
from tests.integration.pipeline.harness import FINANCE, NOW, PROVINCE, signed_envelope

pytestmark = pytest.mark.broker

V1 = "/api/v1"


def _ticking() -> Callable[[], dt.datetime]:
    """A clock that moves one second on every reading."""
    ticks = itertools.count()
    return lambda: NOW + dt.timedelta(seconds=next(ticks))


def _plain_statuses_until(api: Api, org: str, done: Callable[[list[dict[str, Any]]], bool],
                          timeout: float = 20.0) -> list[dict[str, Any]]:
    """The agencies' statuses (not the hub's receipts) held for ``org``, once ``done`` holds;
    waits on the API's mailbox, never on a sleep."""
    box = api.api.ctx.bridge.mailbox(org)
    deadline = time.monotonic() + timeout
    while True:
        answer = api.client(org).get(f"{V1}/edocs", params={"messageType": "status"})
        assert answer.status_code == 200, answer.text
        plain = [i for i in answer.json()["items"] if i["receipt"] is None]
        if done(plain) or time.monotonic() >= deadline:
            return plain
        with box.arrived:
            box.arrived.wait(timeout=0.5)


def test_a_status_update_sent_twice_is_reported_once_and_a_new_status_still_goes_through(
    make_api: Any, keystore: Keystore
) -> None:
    # Given the API's clock moves on between requests, as a real clock does
    api: Api = make_api(clock=_ticking())
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number="2101")
    digest = hashlib.sha256(envelope).hexdigest()
    sent = api.client(PROVINCE).post(f"{V1}/edocs", content=envelope,
                                     params={"from": PROVINCE},
                                     headers={"Content-Type": "application/xml"})
    assert sent.json()["verdict"] == "accepted", sent.text
    ledger = api.hub.hub.ledger

    # When Finance reports "acceptance" and its client, having lost the answer, sends the very
    # same request again
    body = {"status": "acceptance", "description": "Đã vào sổ văn bản đến"}
    first, again = (api.client(FINANCE).post(f"{V1}/edocs/{digest}/status", json=body)
                    for _ in range(2))

    # Then both answers are 200 and name the same packet
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert first.json()["verdict"] == "accepted"
    assert again.json()["messageId"] == first.json()["messageId"]
    assert again.json()["docId"] == first.json()["docId"]

    # When Finance then reports a new status (04) and a new description under the same code
    assignment = api.client(FINANCE).post(f"{V1}/edocs/{digest}/status",
                                          json={"status": "assignment", "description": "Giao"})
    reworded = api.client(FINANCE).post(f"{V1}/edocs/{digest}/status",
                                        json={"status": "04", "description": "Giao lại"})

    # Then each is a packet of its own, accepted
    for answer in (assignment, reworded):
        assert answer.status_code == 200, answer.text
        assert answer.json()["verdict"] == "accepted"
    assert len({a.json()["docId"] for a in (first, assignment, reworded)}) == 3

    # And the province receives one 03 and the two 04s (in order: a second 03 would come first)
    plain = _plain_statuses_until(api, PROVINCE, lambda items: len(items) >= 3)
    assert [(s["from"], s["statusCode"]) for s in plain] == [
        (FINANCE, "03"), (FINANCE, "04"), (FINANCE, "04")]
    assert plain[0]["docId"] == first.json()["docId"]
    # and the ledger, and the evidence of its document, hold each status once, countersigned once
    assert [(d.sender, d.code) for d in ledger.documents(kind="status")] == [
        (FINANCE, "03"), (FINANCE, "04"), (FINANCE, "04")]
    assert len(ledger.documents(kind="receipt", code="countersigned")) == 3
    evidence = api.client(PROVINCE).get(f"{V1}/sent/{digest}/evidence").json()
    assert [s["statusCode"] for s in evidence["statuses"]] == ["03", "04", "04"]

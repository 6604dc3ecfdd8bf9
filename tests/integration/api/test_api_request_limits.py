"""Limits that keep one client from starving the others, over real HTTP: failed sign-ins are
throttled before any secret is checked, secret checks run a few at a time, and one agency's
long polls cannot hold every request thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher

from hub.api.server import build_context, running_api
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import SYSTEMS, Api, api_settings, register_systems
from tests.integration.pipeline.harness import FINANCE, NOW, PROVINCE, running_hub, signed_envelope

pytestmark = pytest.mark.broker

V1 = "/api/v1"


class GatedHasher(PasswordHasher):
    """Real argon2id (cheap parameters) that counts its verifications and, while ``gate`` is
    closed, holds each one until it is opened (to have a secret check in progress)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.verified += 1
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return super().verify(hash, password)


@pytest.fixture
def start(api_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path
          ) -> Iterator[Callable[..., tuple[Api, GatedHasher]]]:
    with ExitStack() as stack:
        def run(**api: Any) -> tuple[Api, GatedHasher]:
            settings = api_settings(api_pki, tmp_path, broker_url, names, **api)
            secrets = register_systems(settings)
            hub = stack.enter_context(running_hub(settings))
            hasher = GatedHasher()
            ctx = build_context(settings, hasher=hasher, clock=lambda: NOW)
            running = stack.enter_context(running_api(settings, ctx))
            made = Api(hub, running, settings, secrets)

            def close_clients() -> None:
                for c in made.clients.values():
                    c.close()

            stack.callback(close_clients)
            return made, hasher

        yield run


def _as(api: Api, system: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=api.api.base_url, timeout=30.0,
                        headers={"X-System-Id": system, "X-System-Secret": secret})


def test_failed_sign_ins_from_one_address_are_refused_before_any_secret_is_checked(
    start: Callable[..., tuple[Api, GatedHasher]]
) -> None:
    api, hasher = start(signin_failure_burst=3, signin_failure_per_s=0.001)
    province = api.client(PROVINCE)
    assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200
    checked = hasher.verified
    # When one address sends wrong secrets, for a real system and for made-up ones
    answers = []
    with _as(api, SYSTEMS[FINANCE], "guess") as guesser:
        answers += [guesser.get(f"{V1}/edocs") for _ in range(4)]
    with _as(api, "nobody", "guess") as guesser:
        answers.append(guesser.get(f"{V1}/edocs"))
    # Then after three refusals it is answered 429 without a secret being checked
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert hasher.verified == checked + 3
    limited = answers[-1]
    assert limited.json()["errorCode"] == "API_RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1
    # And a system that signed in before, from the same address, is not locked out
    assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200


def test_a_secret_check_beyond_the_concurrency_cap_is_refused_at_once_not_queued(
    start: Callable[..., tuple[Api, GatedHasher]]
) -> None:
    api, hasher = start(signin_concurrency=1)
    province = api.client(PROVINCE)
    assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200
    # Given one secret check in progress (held inside argon2)
    hasher.gate.clear()
    hasher.entered.clear()
    held: list[int] = []

    def slow() -> None:
        with _as(api, "nobody-a", "guess") as client:
            held.append(client.get(f"{V1}/edocs").status_code)

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert hasher.entered.wait(30)
        checked = hasher.verified
        # When another unknown system signs in, it is answered at once, without a check
        with _as(api, "nobody-b", "guess") as client:
            refused = client.get(f"{V1}/edocs")
        assert refused.status_code == 429
        assert refused.json()["errorCode"] == "API_RATE_LIMITED"
        assert refused.headers["Retry-After"] == "1"
        assert hasher.verified == checked
        # And a system whose secret was verified before needs no check: it is served
        assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200
    finally:
        hasher.gate.set()
        thread.join(30)
    assert held == [401]


def test_one_agency_cannot_hold_more_long_polls_than_its_share_of_request_threads(
    start: Callable[..., tuple[Api, GatedHasher]], api_pki: PkiPaths
) -> None:
    api, _ = start(waits_per_org=2)
    finance, province = api.client(FINANCE), api.client(PROVINCE)
    assert finance.get(f"{V1}/edocs").status_code == 200  # signed in: its secret is known
    waits = api.api.guard.waits
    polled: list[httpx.Response] = []

    def poll() -> None:
        with _as(api, SYSTEMS[FINANCE], api.secrets[FINANCE]) as client:
            polled.append(client.get(f"{V1}/edocs", params={"wait": 30}))

    # Given Finance's two long polls waiting on an empty inbox
    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert waits.wait_for(FINANCE, 2, timeout=30)
        # When Finance asks for a third, it is refused at once; a plain list is still served
        third = finance.get(f"{V1}/edocs", params={"wait": 30})
        assert third.status_code == 429, third.text
        assert third.json()["errorCode"] == "API_RATE_LIMITED"
        assert int(third.headers["Retry-After"]) >= 1
        assert finance.get(f"{V1}/edocs").status_code == 200
        # And the province's requests are served, and its send waits for its verdict
        assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200
        envelope = signed_envelope(Keystore.load(api_pki.keystore), PROVINCE, (FINANCE,),
                                   number="4401")
        sent = province.post(f"{V1}/edocs", content=envelope,
                             headers={"Content-Type": "application/xml"})
        assert sent.status_code == 200
        assert sent.json()["verdict"] == "accepted"
    finally:
        for t in threads:
            t.join(60)
    # Then the document ended both polls
    assert [r.status_code for r in polled] == [200, 200]
    assert all(r.json()["total"] == 1 for r in polled)
    assert waits.held(FINANCE) == 0


def test_a_send_beyond_the_agencys_waiting_requests_is_answered_pending_at_once(
    start: Callable[..., tuple[Api, GatedHasher]], api_pki: PkiPaths
) -> None:
    api, _ = start(waits_per_org=1)
    province = api.client(PROVINCE)
    assert province.get(f"{V1}/agencies", params={"pageSize": 1}).status_code == 200
    waits = api.api.guard.waits
    polled: list[httpx.Response] = []

    def poll() -> None:
        with _as(api, SYSTEMS[PROVINCE], api.secrets[PROVINCE]) as client:
            polled.append(client.get(f"{V1}/edocs", params={"wait": 30}))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert waits.wait_for(PROVINCE, 1, timeout=30)
        envelope = signed_envelope(Keystore.load(api_pki.keystore), PROVINCE, (FINANCE,),
                                   number="4402")
        # The province's one waiting request is its long poll: this send does not wait
        sent = province.post(f"{V1}/edocs", content=envelope, params={"wait": 20},
                             headers={"Content-Type": "application/xml"})
        assert sent.status_code == 202, sent.text
        assert sent.json()["verdict"] == "pending"
        # The receipt the hub signs for the province ends its long poll
    finally:
        thread.join(60)
    assert [r.status_code for r in polled] == [200]

"""The API's guards as pure logic (no HTTP): the sign-in throttle, the secret-check slots, the
per-agency waiting slots, the clientAuth rule; and the TLS settings refused at start-up."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.api.auth import (
    ApiError,
    BoundedHasher,
    SignInBusy,
    SignInThrottle,
    WaitSlots,
    require_client_auth,
)
from hub.api.server import uvicorn_config
from hub.config import Settings, with_overrides
from hub.errors import ConfigurationError
from hub.ops.cli import EXIT_CONFIG, main


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failures_spend_an_address_and_a_system_allowance_and_a_success_gives_it_back() -> None:
    clock = Clock()
    throttle = SignInThrottle(rate=0.5, burst=2, clock=clock)
    assert throttle.reserve("10.0.0.1", "stc") == 0.0
    throttle.succeeded("10.0.0.1", "stc")  # given back
    assert throttle.reserve("10.0.0.1", "stc") == 0.0  # a failure: spent
    assert throttle.reserve("10.0.0.1", "other") == 0.0  # another system, same address
    assert throttle.reserve("10.0.0.1", "third") == pytest.approx(2.0)  # the address is out
    assert throttle.reserve("10.0.0.2", "stc") == 0.0  # another address, stc has one left
    assert throttle.reserve("10.0.0.3", "stc") == pytest.approx(2.0)  # stc is out
    clock.now += 2.0
    assert throttle.reserve("10.0.0.1", "third") == 0.0


def test_a_secret_verified_before_skips_the_throttle_until_it_fails() -> None:
    throttle = SignInThrottle(rate=0.001, burst=1, clock=Clock())
    throttle.remember("stc", "right")
    assert throttle.reserve("10.0.0.1", "x") == 0.0
    assert throttle.reserve("10.0.0.1", "x") > 0
    assert throttle.known("stc", "right")
    assert not throttle.known("stc", "wrong")
    throttle.forget("stc", "right")
    assert not throttle.known("stc", "right")


def test_the_throttle_forgets_allowances_that_are_whole_again() -> None:
    clock = Clock()
    throttle = SignInThrottle(rate=1.0, burst=1, clock=clock, max_keys=10)
    for n in range(30):
        throttle.reserve(f"10.0.0.{n}", f"system-{n}")
        clock.now += 5.0
    assert throttle.size() <= 12


class _Gate(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.entered = threading.Event()
        self.go = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.entered.set()
        self.go.wait(10)
        return super().verify(hash, password)


def test_a_secret_check_beyond_the_slots_is_refused_at_once() -> None:
    inner = _Gate()
    hasher = BoundedHasher(inner, slots=1)
    hashed = hasher.hash("secret")
    done: list[bool] = []
    thread = threading.Thread(target=lambda: done.append(hasher.verify(hashed, "secret")))
    thread.start()
    assert inner.entered.wait(10)
    with pytest.raises(SignInBusy):
        hasher.verify(hashed, "secret")
    inner.go.set()
    thread.join(10)
    assert done == [True]
    assert hasher.verify(hashed, "secret")  # the slot is free again


def test_an_agency_holds_at_most_its_share_of_waiting_requests() -> None:
    slots = WaitSlots(per_key=2)
    with slots.holding("A") as first, slots.holding("A") as second:
        with slots.holding("A") as third, slots.holding("B") as other:
            assert (first, second, third, other) == (True, True, False, True)
        assert slots.held("A") == 2
        assert slots.wait_for("A", 2, timeout=0)
    assert slots.held("A") == 0


def _cert(ekus: list[x509.ObjectIdentifier] | None) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system")])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=1)))
    if ekus is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(("ekus", "ok"), [
    ([ExtendedKeyUsageOID.CLIENT_AUTH], True),
    ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], True),
    (None, False),
    ([ExtendedKeyUsageOID.SERVER_AUTH], False),
    ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], False),
], ids=["clientAuth", "server and client", "no EKU", "serverAuth only", "anyEKU only"])
def test_a_client_certificate_needs_the_client_auth_extended_key_usage(
    ekus: list[x509.ObjectIdentifier] | None, ok: bool
) -> None:
    cert = _cert(ekus)
    if ok:
        require_client_auth(cert)
        return
    with pytest.raises(ApiError) as refused:
        require_client_auth(cert)
    assert refused.value.status == 403
    assert refused.value.reason.value == "API_CLIENT_CERT_INVALID"


def _mtls_without_client_ca(tmp_path: Path) -> Settings:
    return with_overrides(Settings(base_dir=str(tmp_path)), api={
        "tls_cert": "server.pem", "tls_key": "server.key", "require_client_cert": True})


def test_requiring_client_certificates_without_their_cas_is_a_configuration_error(
    tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="tls_client_ca"):
        uvicorn_config(_mtls_without_client_ca(tmp_path), app=None)


def test_hub_api_serve_refuses_that_configuration_in_one_line_with_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "hub.toml"
    cfg.write_text("[api]\ntls_cert = 'server.pem'\ntls_key = 'server.key'\n"
                   "require_client_cert = true\n", encoding="utf-8")
    assert main(["--config", str(cfg), "api", "serve"]) == EXIT_CONFIG == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "tls_client_ca" in err[0]

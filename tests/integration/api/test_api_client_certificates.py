"""What the TLS layer does not check about a client certificate, checked by the API over real
mutual TLS: revocation (the hub's own ``[trust]`` CRLs, the rule the intake applies to
signers) and the clientAuth extended key usage docs/API.md promises.

The certificates are issued here under the test PKI's issuing CA (its real key), and the CRL
that revokes one is signed by that CA: nothing is mocked, the API reads the CRL file the hub
is configured with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.api.server import build_context, running_api
from hub.config import with_overrides
from hub.testing.pki import PkiPaths, make_crl
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import CHEAP, Api, api_settings, register_systems
from tests.integration.pipeline.harness import FINANCE, NOW, PROVINCE, running_hub, signed_envelope

pytestmark = pytest.mark.broker

V1 = "/api/v1"


def _issue(pki: PkiPaths, out: Path, name: str, uid: str,
           ekus: tuple[x509.ObjectIdentifier, ...] | None,
           san: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, Path, Path]:
    """A certificate of the test PKI's issuing CA, valid now (the TLS layer judges the real
    time); ``ekus`` None: no extendedKeyUsage extension at all."""
    ca = x509.load_pem_x509_certificate(pki.issuing_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.issuing_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, name),
                                 x509.NameAttribute(NameOID.USER_ID, uid)]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                     False), critical=True))
    if ekus is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    (out / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, out / f"{name}.pem", out / f"{name}.key"


def _crl(pki: PkiPaths, path: Path, revoked: list[int]) -> Path:
    """The issuing CA's CRL, signed by its key, fresh at the API's clock (NOW)."""
    ca = x509.load_pem_x509_certificate(pki.issuing_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.issuing_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    crl = make_crl(ca, ca_key, revoked=[(s, NOW - dt.timedelta(hours=1)) for s in revoked],
                   this_update=NOW - dt.timedelta(hours=1), next_update=NOW + dt.timedelta(days=7),
                   number=7)
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return path


@pytest.fixture
def tls(api_pki: PkiPaths, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "tls"
    out.mkdir()
    client = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    files: dict[str, Any] = {
        "server": _issue(api_pki, out, "server", "hub", (ExtendedKeyUsageOID.SERVER_AUTH,),
                         [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])[1:],
        "good": _issue(api_pki, out, "stc-eoffice", FINANCE, client)[1:],
        "no-eku": _issue(api_pki, out, "stc-no-eku", FINANCE, None)[1:],
        "server-only": _issue(api_pki, out, "stc-server-eku", FINANCE,
                              (ExtendedKeyUsageOID.SERVER_AUTH,))[1:],
    }
    stolen, *files["revoked"] = _issue(api_pki, out, "stc-stolen-laptop", FINANCE, client)
    files["crl"] = _crl(api_pki, tmp_path / "issuing-ca-revoking.crl", [stolen.serial_number])
    cas = out / "client-cas.pem"
    cas.write_bytes(api_pki.issuing_ca_cert.read_bytes() + api_pki.root_cert.read_bytes())
    files["cas"] = cas
    return files


@pytest.fixture
def start(api_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path, tls: dict[str, Any]
          ) -> Iterator[Callable[..., Api]]:
    """The hub and its API over mutual TLS; ``crls`` replaces the hub's ``[trust] crls``."""
    with ExitStack() as stack:
        def run(crls: list[str], **api: Any) -> Api:
            cert, key = tls["server"]
            settings = api_settings(api_pki, tmp_path, broker_url, names, tls_cert=str(cert),
                                    tls_key=str(key), tls_client_ca=str(tls["cas"]), **api)
            settings = with_overrides(settings, trust={"crls": crls})
            secrets = register_systems(settings)
            hub = stack.enter_context(running_hub(settings))
            ctx = build_context(settings, hasher=CHEAP, clock=lambda: NOW)
            running = stack.enter_context(running_api(settings, ctx))
            return Api(hub, running, settings, secrets)

        yield run


def _client(api: Api, tls: dict[str, Any], who: str) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(tls["cas"]))
    cert, key = tls[who]
    context.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=api.api.base_url, verify=context, timeout=30.0)


def test_a_client_certificate_the_hubs_own_crl_revokes_reads_nothing_and_settles_nothing(
    start: Callable[..., Api], tls: dict[str, Any], api_pki: PkiPaths
) -> None:
    # Given the hub's [trust] crls: the issuing CA's CRL listing the stolen laptop's
    # certificate (whose subject names Finance, as the good one does)
    api = start([str(tls["crl"]), str(api_pki.root_crl_der)])
    envelope = signed_envelope(Keystore.load(api_pki.keystore), PROVINCE, (FINANCE,),
                               number="4101")
    context = ssl.create_default_context(cafile=str(tls["cas"]))
    with httpx.Client(base_url=api.api.base_url, verify=context, timeout=30.0,
                      headers={"X-System-Id": "ubnd-eoffice",
                               "X-System-Secret": api.secrets[PROVINCE]}) as province:
        sent = province.post(f"{V1}/edocs", content=envelope,
                             headers={"Content-Type": "application/xml"})
        assert sent.status_code == 200, sent.text
    doc_id = hashlib.sha256(envelope).hexdigest()
    # When the revoked certificate lists and acknowledges Finance's inbox
    with _client(api, tls, "revoked") as stolen:
        listed = stolen.get(f"{V1}/edocs")
        acked = stolen.post(f"{V1}/edocs/{doc_id}/ack")
    # Then both are refused with the stable reason, in both languages
    for answer in (listed, acked):
        assert answer.status_code == 403, answer.text
        body = answer.json()
        assert body["errorCode"] == "API_CLIENT_CERT_REVOKED"
        assert body["message"]["vi"] == "Chứng thư số của hệ thống đã bị thu hồi"
    # And Finance's good certificate still finds the document waiting, unsettled
    with _client(api, tls, "good") as finance:
        items = finance.get(f"{V1}/edocs").json()["items"]
        assert [i["docId"] for i in items] == [doc_id]
        assert finance.post(f"{V1}/edocs/{doc_id}/ack").json()["acknowledged"] == [doc_id]


def test_a_client_certificate_whose_revocation_status_is_unknown_is_refused_for_now(
    start: Callable[..., Api], tls: dict[str, Any], api_pki: PkiPaths
) -> None:
    # Given no CRL of the issuing CA at all (only the root's) and no fetching: the status of
    # every certificate it issued is unknown, as REVOCATION_UNAVAILABLE is for the intake
    api = start([str(api_pki.root_crl_der)])
    with _client(api, tls, "good") as finance:
        answer = finance.get(f"{V1}/edocs")
    assert answer.status_code == 503, answer.text
    assert answer.json()["errorCode"] == "API_CLIENT_CERT_STATUS_UNKNOWN"
    assert int(answer.headers["Retry-After"]) > 0


@pytest.mark.parametrize("who", ["no-eku", "server-only"])
def test_a_client_certificate_without_the_client_auth_extended_key_usage_is_refused(
    start: Callable[..., Api], tls: dict[str, Any], api_pki: PkiPaths, who: str
) -> None:
    # Given certificates the directory maps to Finance, valid and not revoked, but one has no
    # extendedKeyUsage at all (OpenSSL lets it through) and one only serverAuth
    api = start([str(tls["crl"]), str(api_pki.root_crl_der)])
    try:
        with _client(api, tls, who) as finance:
            answer = finance.get(f"{V1}/edocs")
    except httpx.TransportError:
        assert who == "server-only"  # OpenSSL's purpose check refused it in the handshake
        return
    assert answer.status_code == 403, answer.text
    assert answer.json()["errorCode"] == "API_CLIENT_CERT_INVALID"
    assert "clientAuth" in answer.json()["detail"]

"""Mutual TLS for real: certificates made by ``openssl`` under the test PKI's issuing CA.

The API's TLS server verifies the client certificate's chain ([api] tls_client_ca); the
application maps the certificate to an organization through the directory (an organization
signer's subject UID). uvicorn puts no TLS data in the ASGI scope: these tests prove that the
protocol subclass (hub/api/tls.py) carries the certificate through.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import Api
from tests.integration.pipeline.harness import FINANCE, PROVINCE, signed_envelope

pytestmark = pytest.mark.broker

UNKNOWN = "000.00.98.H27"
"""An organization code the directory does not have."""


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    assert exe is not None, "openssl (Debian package openssl) is required"
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(pki: PkiPaths, out: Path, name: str, subject: str, extensions: str, *,
           ca_cert: Path | None = None, ca_key: Path | None = None) -> tuple[Path, Path]:
    """A key and a certificate signed by the issuing CA (or ``ca_cert``), made by openssl."""
    (out / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-subj", subject, "-out", f"{name}.csr", cwd=out)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca_cert or pki.issuing_ca_cert),
             "-CAkey", str(ca_key or pki.issuing_ca_key), "-set_serial",
             str(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)), "-days", "30",
             "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=out)
    return out / f"{name}.pem", out / f"{name}.key"


@pytest.fixture
def tls_files(api_pki: PkiPaths, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "tls"
    out.mkdir()
    client_ext = "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    server = _issue(api_pki, out, "server", "/C=VN/O=edxml-hub (TEST)/CN=127.0.0.1",
                    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    finance = _issue(api_pki, out, "finance", f"/C=VN/O=So Tai chinh (TEST)/CN=stc-eoffice"
                                              f"/UID={FINANCE}", client_ext)
    unknown = _issue(api_pki, out, "unknown", f"/C=VN/O=Unknown (TEST)/CN=unknown/UID={UNKNOWN}",
                     client_ext)
    # A CA of its own: a certificate the API's TLS layer never accepts
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue-ca.key",
             "-subj", "/CN=Rogue CA (TEST)", "-days", "30", "-out", "rogue-ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=out)
    rogue = _issue(api_pki, out, "rogue", f"/C=VN/CN=rogue/UID={FINANCE}", client_ext,
                   ca_cert=out / "rogue-ca.pem", ca_key=out / "rogue-ca.key")
    cas = out / "client-cas.pem"
    cas.write_bytes(api_pki.issuing_ca_cert.read_bytes() + api_pki.root_cert.read_bytes())
    return {"server": server, "finance": finance, "unknown": unknown, "rogue": rogue, "cas": cas}


def _client(api: Api, files: dict[str, Any], pki: PkiPaths, who: str) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(files["cas"]))
    cert, key = files[who]
    context.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=api.api.base_url, verify=context, timeout=30.0)


def test_a_client_certificate_the_directory_maps_to_finance_reads_finances_documents(
    make_api: Any, tls_files: dict[str, Any], api_pki: PkiPaths, keystore: Keystore
) -> None:
    cert, key = tls_files["server"]
    api: Api = make_api(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(tls_files["cas"]))
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number="1811")
    # The province still uses its system id + secret (over TLS, without a certificate)
    context = ssl.create_default_context(cafile=str(tls_files["cas"]))
    with httpx.Client(base_url=api.api.base_url, verify=context, timeout=30.0,
                      headers={"X-System-Id": "ubnd-eoffice",
                               "X-System-Secret": api.secrets[PROVINCE]}) as province:
        sent = province.post("/api/v1/edocs", content=envelope,
                             headers={"Content-Type": "application/xml"})
        assert sent.status_code == 200, sent.text
    with _client(api, tls_files, api_pki, "finance") as finance:
        items = finance.get("/api/v1/edocs").json()["items"]
        assert [i["docId"] for i in items] == [hashlib.sha256(envelope).hexdigest()]
        assert finance.get(f"/api/v1/edocs/{items[0]['docId']}/content").content == envelope


def test_an_unknown_client_certificate_is_refused_with_its_reason(
    make_api: Any, tls_files: dict[str, Any], api_pki: PkiPaths
) -> None:
    cert, key = tls_files["server"]
    api: Api = make_api(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(tls_files["cas"]))
    with _client(api, tls_files, api_pki, "unknown") as unknown:
        answer = unknown.get("/api/v1/edocs")
    assert answer.status_code == 403
    assert answer.json()["errorCode"] == "API_CLIENT_CERT_UNKNOWN"
    # A certificate under a CA the API does not trust never gets past the handshake, even
    # though its subject names Finance
    with _client(api, tls_files, api_pki, "rogue") as rogue, pytest.raises(httpx.TransportError):
        rogue.get("/api/v1/edocs")


def test_a_hub_that_requires_client_certificates_refuses_a_secret(
    make_api: Any, tls_files: dict[str, Any]
) -> None:
    cert, key = tls_files["server"]
    api: Api = make_api(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(tls_files["cas"]),
                        require_client_cert=True)
    context = ssl.create_default_context(cafile=str(tls_files["cas"]))
    with httpx.Client(base_url=api.api.base_url, verify=context, timeout=30.0,
                      headers={"X-System-Id": "stc-eoffice",
                               "X-System-Secret": api.secrets[FINANCE]}) as finance, \
            pytest.raises(httpx.TransportError):
        # No certificate: the TLS layer hangs up (a bare disconnect, TESTING.md)
        finance.get("/api/v1/edocs")

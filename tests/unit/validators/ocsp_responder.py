"""A tiny but real RFC 6960 OCSP responder for tests: cryptography's builder behind http.server.

It answers POSTed DER requests (Appendix A.1) on 127.0.0.1 at a random port. What it answers is
set by the test through plain attributes: which serials are revoked or unknown, the
thisUpdate/nextUpdate it puts in answers, whether a delegated responder signs, and a wrong key
to sign with (a forged answer). :meth:`OcspResponder.respond` is the pure part — the signature
vectors call it directly to build answers without HTTP.

Use it as a context manager (``with OcspResponder(now) as responder: ...``): the server thread
is started on enter and shut down and joined on exit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from hub.validators.ocsp import CertId

MAX_REQUEST = 16 * 1024


def _hashes(ca: x509.Certificate) -> tuple[bytes, bytes]:
    """SHA-256 of the CA's name and of its subjectPublicKey BIT STRING (RFC 6960 §4.1.1)."""
    from asn1crypto import keys

    spki = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bits = keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]  # past the unused-bits byte
    return hashlib.sha256(ca.subject.public_bytes()).digest(), hashlib.sha256(bits).digest()


def _impostor(
    ca: x509.Certificate, key: rsa.RSAPrivateKey, now: dt.datetime
) -> x509.Certificate:
    """A self-signed certificate with the CA's name and another key."""
    return (
        x509.CertificateBuilder().subject_name(ca.subject).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Issuer:
    """A CA the responder answers for, with the key that signs its answers."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass
class OcspResponder:
    """Answers for the certificates of ``issuers`` (set after construction if need be)."""

    now: dt.datetime
    issuers: list[Issuer] = field(default_factory=list)
    revoked: dict[int, dt.datetime] = field(default_factory=dict)
    """serial → revocation time."""
    unknown: set[int] = field(default_factory=set)
    this_update: dt.datetime | None = None
    """Default: ``now``."""
    next_update: dt.timedelta | None = dt.timedelta(days=1)
    """After thisUpdate; None: no nextUpdate in answers."""
    delegate: Issuer | None = None
    """A delegated responder certificate and key: signs instead of the CA when set."""
    forge_with: rsa.RSAPrivateKey | None = None
    """Sign with this key instead, as an impostor CA of the same name (a forged answer)."""
    status: ocsp.OCSPResponseStatus = ocsp.OCSPResponseStatus.SUCCESSFUL
    oversize: bool = False
    """Answer with 100 KB of padding (over the hub's limit)."""
    rewrite: Callable[[bytes], bytes] | None = None
    """Applied to each DER answer before it is sent (an answer carrying an OID cryptography
    does not know, say)."""
    requests: list[CertId] = field(default_factory=list)
    """CertIDs asked over HTTP, in order."""
    _server: http.server.ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def reset(self, issuers: list[Issuer]) -> None:
        """Answer "good" for everything ``issuers`` issued, as a fresh responder would."""
        self.issuers = list(issuers)
        self.revoked, self.unknown = {}, set()
        self.this_update, self.next_update = None, dt.timedelta(days=1)
        self.delegate, self.forge_with = None, None
        self.status, self.oversize = ocsp.OCSPResponseStatus.SUCCESSFUL, False
        self.rewrite = None
        self.requests.clear()

    # -- the pure part --------------------------------------------------------------------

    def _issuer(self, request: ocsp.OCSPRequest) -> Issuer | None:
        for issuer in self.issuers:
            if (request.issuer_name_hash, request.issuer_key_hash) == _hashes(issuer.cert):
                return issuer
        return None

    def respond(self, request_der: bytes) -> bytes:
        """The DER OCSPResponse to a DER OCSPRequest."""
        if self.status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(self.status).public_bytes(
                serialization.Encoding.DER)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        issuer = self._issuer(request)
        if issuer is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        serial = request.serial_number
        this_update = self.this_update or self.now
        next_update = this_update + self.next_update if self.next_update is not None else None
        status, when, reason = ocsp.OCSPCertStatus.GOOD, None, None
        if serial in self.revoked:
            status, when = ocsp.OCSPCertStatus.REVOKED, self.revoked[serial]
            reason = x509.ReasonFlags.key_compromise
        elif serial in self.unknown:
            status = ocsp.OCSPCertStatus.UNKNOWN
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, serial, hashes.SHA256(),
            status, this_update, next_update, when, reason)
        signer = self.delegate or issuer
        if self.forge_with is not None:
            signer = Issuer(_impostor(issuer.cert, self.forge_with, self.now), self.forge_with)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
        if self.delegate is not None:
            builder = builder.certificates([self.delegate.cert])
        response = builder.sign(signer.key, hashes.SHA256())
        der = response.public_bytes(serialization.Encoding.DER)
        return der if self.rewrite is None else self.rewrite(der)

    def answer(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """The DER answer about ``cert`` (no HTTP)."""
        return self.respond(CertId.of(cert, issuer).request())

    # -- the HTTP part --------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/ocsp"

    def __enter__(self) -> OcspResponder:
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST:
                    self.send_error(413)
                    return
                data = self.rfile.read(length)
                try:
                    asked = ocsp.load_der_ocsp_request(data)
                    responder.requests.append(CertId(
                        asked.issuer_name_hash, asked.issuer_key_hash, asked.serial_number))
                except ValueError:
                    pass  # respond() answers malformedRequest
                body = responder.respond(data)
                if responder.oversize:
                    body += b"\0" * 100_000
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

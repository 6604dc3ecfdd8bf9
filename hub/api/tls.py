"""Mutual TLS under uvicorn: the client certificate reaches the application.

uvicorn verifies client certificates (``ssl_ca_certs`` + ``ssl_cert_reqs``) but puts no TLS data
in the ASGI scope (nor does hypercorn; TESTING.md "HTTP stack"). Of the two ways that work —
this small protocol subclass, or TLS terminated by a reverse proxy forwarding the verified
certificate in a header trusted only from that proxy — the hub implements the subclass: one
process, nothing else to deploy, and the certificate the API maps to an organization is the one
*this* process verified.

The subclass relies on one uvicorn internal: ``H11Protocol`` builds each request's scope by
assigning ``self.scope``. A property intercepts that assignment and adds the ASGI TLS extension
(``scope["extensions"]["tls"]``, asgiref's TLS extension: ``client_cert_chain`` as PEM strings,
``tls_version``, ``cipher_suite``). The certificate is read once per connection, after the
handshake (asyncio calls ``connection_made`` only then). uvicorn is pinned in pyproject for this
reason; ``tests/unit/api/test_tls_protocol.py`` fails if an upgrade moves the assignment.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["TlsH11Protocol", "client_certificate"]


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the peer certificate in every request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            der = ssl_object.getpeercert(binary_form=True)
            cipher = ssl_object.cipher()
            self._tls = {
                "server_cert": None,
                "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": None,
                "cipher_suite": None,
                "hub_tls_version_text": ssl_object.version(),
                "hub_cipher": cipher[0] if cipher else None,
            }
        super().connection_made(transport)

    @property  # type: ignore[override]
    def scope(self) -> Any:
        return self.__dict__.get("_scope")

    @scope.setter
    def scope(self, value: Any) -> None:
        if isinstance(value, dict) and self._tls is not None:
            value.setdefault("extensions", {})["tls"] = self._tls
        self.__dict__["_scope"] = value


def client_certificate(scope: Any) -> bytes | None:
    """The DER of the client certificate of this request's connection, if one was presented."""
    tls = (scope.get("extensions") or {}).get("tls") if isinstance(scope, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain:
        return None
    return ssl.PEM_cert_to_DER_cert(chain[0])

"""Trust: what the hub trusts and the keys it holds.

- :mod:`hub.trust.store` — the trust policy (configured specialized roots only) from settings;
- :mod:`hub.trust.revocation` — CRL and OCSP fetching and caching;
- :mod:`hub.trust.service` — :class:`TrustService` (validate; on INDETERMINATE refresh once);
- :mod:`hub.trust.keystore` — organization keys held by the hub (operator, hosted bodies);
- :mod:`hub.trust.signing` — the hub's XMLDSig and PDF signer.
"""

"""``hub api``: the HTTP API for agency document systems (issue 18, docs/API.md).

The national document axis' operations (send, list received, fetch, acknowledge, update status,
agencies, sent documents and their evidence) in front of the same broker and ledger as the AMQP
path, with the same rules: a send is an intake publish under the caller's identity, a receive
reads the caller's own queues and settles only on the agency's acknowledgement.

Modules: :mod:`~hub.api.app` (routes, errors, OpenAPI), :mod:`~hub.api.service` (the operations),
:mod:`~hub.api.bridge` (the broker thread and the mailboxes), :mod:`~hub.api.auth` (callers,
certificates, rate limits), :mod:`~hub.api.credentials` (system ids and argon2-hashed secrets),
:mod:`~hub.api.tls` (the client certificate under uvicorn), :mod:`~hub.api.server` (wiring and
running), :mod:`~hub.api.cli` (``hub api``).
"""

"""``hub console``: the web console for operators and auditors (issue 20), a layer-5 surface.

Server-rendered pages (FastAPI + Jinja2, plain forms, no script, Vietnamese by default with
English switchable) over the same ledger and broker as ``hub dlq`` and ``hub ledger``:

- :mod:`hub.console.users` — accounts, roles, argon2 hashes, sessions (a SQLite file of its own);
- :mod:`hub.console.services` — what the pages read and do, through :mod:`hub.ops.dlq`,
  :mod:`hub.ledger` and :mod:`hub.ops.receipt_verify`; every action audited in the ledger;
- :mod:`hub.console.web` — routes, CSRF, roles, security headers;
- :mod:`hub.console.i18n` — the words, VI and EN;
- :mod:`hub.console.cli` — ``hub console serve`` and ``hub console user …``.
"""

__all__ = ["create_app"]


def create_app(*args: object, **kwargs: object) -> object:
    """:func:`hub.console.web.create_app` (imported on first use: FastAPI is heavy)."""
    from hub.console.web import create_app as build

    return build(*args, **kwargs)  # type: ignore[arg-type]

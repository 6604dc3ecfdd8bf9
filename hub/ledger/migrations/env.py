"""Alembic environment for the ledger: runs on the connection :mod:`hub.ledger.migrate` hands in."""

from __future__ import annotations

from alembic import context

from hub.ledger.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table="ledger_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

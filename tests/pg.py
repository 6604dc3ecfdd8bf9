"""The PostgreSQL server of the test machine (127.0.0.1:5432, database ``test``).

Each test that asks for it gets a schema of its own, dropped afterwards. When the server is
unreachable the PostgreSQL cases skip on a laptop and fail in CI (``CI=true``), as dramatiq's
``check_rabbitmq`` does for its broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

PG_BASE = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

_state: dict[str, bool] = {}


def reachable() -> bool:
    if "ok" not in _state:
        try:
            engine = create_engine(PG_BASE, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _state["ok"] = True
        except Exception:
            _state["ok"] = False
    return _state["ok"]


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose search path is a new, empty schema (dropped on exit)."""
    if not reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable (CI=true)")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    schema = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

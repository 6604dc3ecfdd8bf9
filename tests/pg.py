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
def schema(stem: str = "hub_test") -> Iterator[str]:
    """A URL whose search path is a new, empty schema named after ``stem`` (dropped on exit).
    No reachability check: scripts (the cluster throughput run) use it as well as tests."""
    name = f"{stem}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@contextmanager
def fresh_schema(stem: str = "hub_test") -> Iterator[str]:
    """:func:`schema`, for a test: skipped on a laptop without the server, failed in CI."""
    if not reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable (CI=true)")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    with schema(stem) as url:
        yield url

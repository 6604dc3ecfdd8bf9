"""Bring a ledger database to the newest schema with Alembic (migrations ship as package data).

A new migration moves :data:`hub.ledger.models.SCHEMA_REVISION` with it: a read-only open checks
the stored revision against that constant without importing Alembic (a unit test holds the two
equal)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hub.ledger.models import VERSION_TABLE

MIGRATIONS = Path(__file__).with_name("migrations")
__all__ = ["VERSION_TABLE", "alembic_config", "current_revision", "head_revision", "upgrade"]


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine`` (a no-op when already at head)."""
    if current_revision(engine) == head_revision():
        return
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

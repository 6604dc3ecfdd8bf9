"""The ledger's schema revision, and bringing a database to the newest schema with Alembic
(migrations ship as package data).

Alembic is imported only where a schema changes: the revision a database records is read here
without it (:func:`stored_revisions`), and a database at :data:`SCHEMA_REVISION` — every open of
a ledger this hub already wrote — is left as ``alembic upgrade head`` would leave it. A new
migration moves :data:`hub.ledger.models.SCHEMA_REVISION` with it (a unit test holds it equal to
Alembic's head)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect

from hub.ledger.models import SCHEMA_REVISION, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def stored_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions Alembic recorded in the database, sorted (none: no version table or no
    row), read as ``alembic.runtime.migration.MigrationContext`` reads them, without importing
    Alembic."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return ()
        return tuple(sorted(str(v) for v in conn.exec_driver_sql(
            f"SELECT version_num FROM {VERSION_TABLE}").scalars()))  # noqa: S608


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine`` (a no-op when already at head; without importing
    Alembic when the database records exactly :data:`SCHEMA_REVISION`)."""
    if stored_revisions(engine) == (SCHEMA_REVISION,):
        return
    if current_revision(engine) == head_revision():  # Alembic's own reading of anything else
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

"""The schema revision a read-only open checks against is Alembic's newest migration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hub.ledger.migrate import head_revision
from hub.ledger.models import SCHEMA_REVISION


def test_the_revision_this_hub_reads_is_the_newest_migration() -> None:
    # A new migration must move SCHEMA_REVISION with it: a read-only open refuses other ledgers.
    assert head_revision() == SCHEMA_REVISION


def test_opening_a_ledger_at_this_schema_does_not_import_alembic(tmp_path: Path) -> None:
    # A consumer restarting on its ledger, an auditor's command, each verify helper: Alembic's
    # modules and scripts (~0.3 s) only where the schema changes.
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    probe = ("import sys; from hub.ledger.store import Ledger;"
             f" Ledger.open({url!r}).close(); Ledger.open({url!r}, read_only=True).close();"
             " print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    first = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True,
                           check=True, timeout=60)
    assert first.stdout.strip() != "[]", "a new ledger is created by Alembic's migrations"
    again = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True,
                           check=True, timeout=60)
    assert again.stdout.strip() == "[]", again.stdout


def test_importing_what_reads_a_ledger_does_not_import_alembic() -> None:
    # An auditor's command and each `hub ledger verify` helper start without Alembic's
    # modules and scripts (~0.3 s each); migrating imports them where the schema changes.
    probe = ("import sys, hub.ledger.store, hub.ledger.verify_helper;"
             " print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout

"""A ledger that cannot be opened says why, and whose fault it is.

The settings' fault — a PostgreSQL database or role that does not exist, an authentication
the server refuses, a SQLite path that is a directory or that this user cannot write — is a
:class:`ConfigurationError` (exit 3: systemd does not restart a hub that cannot start until an
operator changes something). A server that does not answer is LEDGER_UNAVAILABLE (exit 4:
restarted, it may be back) and says why too ("Connection refused"), as does the
``ledger_unavailable`` event of a running consumer. Against the machine's real PostgreSQL:
psycopg2 gives a connection's errors no SQLSTATE, so the server's own words are what is judged.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc

from hub.errors import ConfigurationError, TransientError
from hub.ledger import Ledger
from hub.ledger.store import is_misconfigured, unavailable
from hub.ops.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE, main
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import sample_batch
from tests.integration.pipeline.harness import make_pki
from tests.pg import reachable

PG_HOST = "127.0.0.1:5432"
NO_DATABASE = f"postgresql+psycopg2://postgres@{PG_HOST}/hub_no_such_db_{uuid.uuid4().hex[:8]}"
NO_ROLE = f"postgresql+psycopg2://hub_no_such_role_{uuid.uuid4().hex[:8]}@{PG_HOST}/test"
NOTHING_LISTENS = "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:1/test"

needs_pg = pytest.mark.skipif(
    not reachable() and os.environ.get("CI", "").lower() != "true",
    reason="PostgreSQL at 127.0.0.1:5432 is not reachable")


@needs_pg
@pytest.mark.postgres
@pytest.mark.parametrize(("url", "cause"), [
    (NO_DATABASE, f'database "{NO_DATABASE.rsplit("/", 1)[1]}" does not exist'),
    (NO_ROLE, f'role "{NO_ROLE.split("//")[1].split("@")[0]}" does not exist'),
], ids=["database", "role"])
@pytest.mark.parametrize("read_only", [False, True], ids=["hub run", "auditor"])
def test_a_postgresql_database_or_role_that_does_not_exist_is_a_configuration_error(
    url: str, cause: str, read_only: bool,
) -> None:
    # Given a URL naming a database or a role the server does not have
    # When the ledger is opened (to write, as `hub run`; read-only, as `hub ledger verify`)
    with pytest.raises(ConfigurationError) as caught:
        Ledger.open(url, read_only=read_only)
    # Then it is the settings' fault, in the server's words, the URL named
    assert cause in str(caught.value)
    assert "postgres" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_postgresql_server_that_does_not_answer_is_unavailable_and_says_why() -> None:
    # Given a URL of a server where nothing listens
    # When the ledger is opened
    with pytest.raises(TransientError) as caught:
        Ledger.open(NOTHING_LISTENS)
    # Then it is unavailable (it may be back), with the driver's reason, never the password
    assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
    assert "Connection refused" in caught.value.detail
    assert "port 1 failed" in caught.value.detail
    assert "s3cret-pw" not in str(caught.value)


def test_a_locked_sqlite_ledger_says_it_is_locked() -> None:
    # Given a database error a running consumer retries (what its ledger_unavailable logs)
    engine = create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(exc.OperationalError) as caught:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    engine.dispose()
    # When it is made LEDGER_UNAVAILABLE
    error = unavailable(caught.value)
    # Then the detail says what the driver said, on one line
    assert error.detail == "OperationalError: no such table: no_such_table"


def test_the_server_s_words_decide_when_the_driver_gives_no_sqlstate() -> None:
    # Given connection errors as psycopg2 raises them: no pgcode, the server's message
    class DriverError(Exception):
        pgcode = None

    def error(message: str) -> exc.OperationalError:
        return exc.OperationalError("connect", {}, DriverError(message))

    server = 'connection to server at "db", port 5432 failed: FATAL:  '
    # Then a database, a role or an authentication is the settings' fault, not a server down,
    # starting up or out of connections
    assert is_misconfigured(error(server + 'database "x" does not exist\n'))
    assert is_misconfigured(error(server + 'role "x" does not exist\n'))
    assert is_misconfigured(error(server + 'password authentication failed for user "x"\n'))
    assert is_misconfigured(error(server + 'no pg_hba.conf entry for host "10.0.0.1", user '
                                  '"x", database "y", no encryption\n'))
    assert is_misconfigured(error('connection to server at "db", port 5432 failed: '
                                  "fe_sendauth: no password supplied\n"))
    assert not is_misconfigured(error('connection to server at "db", port 5432 failed: '
                                      "Connection refused\n\tIs the server running?\n"))
    assert not is_misconfigured(error(server + "the database system is starting up\n"))
    assert not is_misconfigured(error(server + "sorry, too many clients already\n"))


@pytest.mark.parametrize("read_only", [False, True], ids=["hub run", "auditor"])
def test_a_sqlite_path_that_is_a_directory_is_a_configuration_error(
    tmp_path: Path, read_only: bool,
) -> None:
    # Given a SQLite URL naming a directory
    # When the ledger is opened
    with pytest.raises(ConfigurationError) as caught:
        Ledger.open(f"sqlite:///{tmp_path}", read_only=read_only)
    # Then the settings are at fault, the path named
    assert f"{tmp_path} is a directory" in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
@pytest.mark.parametrize("exists", [False, True], ids=["to create", "existing"])
def test_a_sqlite_ledger_this_user_cannot_write_is_a_configuration_error(
    tmp_path: Path, exists: bool,
) -> None:
    # Given a SQLite ledger (or none yet) in a directory this user may not write
    folder = tmp_path / "ledger"
    folder.mkdir()
    db = folder / "hub.sqlite3"
    if exists:
        with Ledger.open(f"sqlite:///{db}") as ledger:
            ledger.write(*sample_batch(0, 1))
    folder.chmod(0o500)
    try:
        # When the hub opens it to write
        with pytest.raises(ConfigurationError) as caught:
            Ledger.open(f"sqlite:///{db}")
    finally:
        folder.chmod(0o700)
    # Then the settings (or the files' owner) are at fault, the path named
    assert str(folder) in str(caught.value)
    assert "not writable" in str(caught.value)


def _config(tmp_path: Path, url: str) -> Path:
    pki = make_pki(tmp_path / "pki")
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        "[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
        f"[ledger]\nurl = '{url}'\n"
        f"[trust]\nroots = ['{pki.root_cert}']\nintermediates = ['{pki.issuing_ca_cert}']\n"
        f"crls = ['{pki.crl_der}', '{pki.root_crl_der}']\nfetch_crls = false\n"
        f"public_roots = ['{pki.public_root_cert}']\npolicy_oids = ['{pki.policy_oid}']\n"
        f"[hub]\nkeystore = '{pki.keystore}'\n", encoding="utf-8")
    return cfg


@pytest.mark.parametrize(("url", "code", "cause"), [
    pytest.param(NO_DATABASE, EXIT_CONFIG, "does not exist", id="no database",
                 marks=[needs_pg, pytest.mark.postgres]),
    pytest.param(NOTHING_LISTENS, EXIT_UNAVAILABLE, "Connection refused", id="nothing listens"),
    pytest.param("sqlite:////tmp", EXIT_CONFIG, "/tmp is a directory", id="a directory"),
])
@pytest.mark.parametrize("command", [["run"], ["ledger", "verify"]], ids=" ".join)
def test_hub_commands_say_why_the_ledger_cannot_be_opened_with_the_fitting_exit_code(
    url: str, code: int, cause: str, command: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import signal

    # Given settings whose ledger cannot be opened
    cfg = _config(tmp_path, url)
    # When a command opens it (`hub run` takes SIGTERM and SIGINT: given back to pytest after)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        got = main(["--config", str(cfg), *command])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    # Then it exits with the code of whose fault it is, in one line that says why
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.startswith("hub: ")]
    assert got == code, captured.err
    assert len(err) == 1, err
    assert cause in err[0]
    assert "s3cret-pw" not in captured.err
    assert "Traceback" not in captured.err


@needs_pg
@pytest.mark.postgres
def test_hub_doctor_names_the_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given settings naming a database that does not exist
    cfg = _config(tmp_path, NO_DATABASE)
    # When `hub doctor` checks them
    assert main(["--config", str(cfg), "doctor"]) == EXIT_FAILURE
    # Then its ledger line says so, as a configuration problem
    ledger = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("FAIL ledger")]
    assert len(ledger) == 1
    assert "does not exist" in ledger[0]


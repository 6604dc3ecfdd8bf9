"""Auditors' commands (issue 17 item 4, issue 16 L5): they never create or migrate a database,
work on a read-only SQLite copy and with a read-only PostgreSQL role, and refuse to call
signatures ok without the operator's trust anchors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.ledger import Ledger
from hub.ops.cli import main as hub_main
from hub.ops.ledger_cli import EXIT_OK, EXIT_USAGE, main
from tests.integration.ledger.ledger_samples import sample_batch
from tests.integration.ledger.operator_certs import OPERATOR, Operator, from_signer, rotated
from tests.pg import PG_BASE
from tests.pki_fixtures import GeneratedPki

REPO = Path(__file__).resolve().parents[3]


def _fill(url: str, old: Operator, new: Operator) -> None:
    """Rows 1-20 under the operator's first certificate, 21-40 after a rotation."""
    for operator, starts in ((old, (0, 2)), (new, (4, 6))):
        with Ledger.open(url, checkpoint_every=8, checkpoint_signer=operator.sign,
                         checkpoint_cert_pem=operator.pem) as ledger:
            for start in starts:
                ledger.write(*sample_batch(start, 2))


@pytest.fixture
def audit(tmp_path: Path, pki: GeneratedPki) -> tuple[Path, list[str]]:
    """A rotated SQLite ledger and the trust arguments an auditor gives."""
    db = tmp_path / "ledger.sqlite3"
    _fill(f"sqlite:///{db}", from_signer(pki.org(OPERATOR)), rotated(pki))
    anchors = ["--operator-ca", str(pki.paths.root_cert), "--operator-intermediate",
               str(pki.paths.issuing_ca_cert), "--operator-id", OPERATOR]
    return db, anchors


def test_ledger_verify_passes_across_a_rotation_with_the_operator_ca(
    audit: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
) -> None:
    db, anchors = audit
    assert main(["ledger", "verify", "--url", f"sqlite:///{db}", *anchors, "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert (result["rows"], result["signed_checkpoints"]) == (40, 4)
    assert result["signers_trusted"] is True
    assert len(result["signers"]) == 2


def test_ledger_verify_prints_the_head_to_note_and_fails_when_a_noted_row_is_gone(
    audit: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
) -> None:
    db, anchors = audit
    url = f"sqlite:///{db}"
    # Given the auditor's verify, which prints the head to note outside the database
    assert main(["ledger", "verify", "--url", url, *anchors]) == EXIT_OK
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("head "))
    noted = head.split()[1].rstrip(";")
    assert noted.startswith("40:")
    # When the same head is given back, Then it passes
    assert main(["ledger", "verify", "--url", url, *anchors, "--expect", noted]) == EXIT_OK
    capsys.readouterr()
    # and when the chain no longer holds it (a row of another hash), it fails in one line
    other = noted[:-1] + ("0" if noted[-1] != "0" else "1")
    assert main(["ledger", "verify", "--url", url, *anchors, "--expect", other]) == 1
    assert capsys.readouterr().out.startswith("FAILED at row 40:")
    # and a witness that is not SEQ:HASH is a usage error naming the option
    with pytest.raises(SystemExit) as usage:
        main(["ledger", "verify", "--url", url, *anchors, "--expect", "40"])
    assert usage.value.code == EXIT_USAGE
    assert "--expect" in capsys.readouterr().err


def test_ledger_verify_without_trust_anchors_refuses_to_say_ok(
    audit: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db, _anchors = audit
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert main(["ledger", "verify", "--config", str(config), "--url",
                 f"sqlite:///{db}"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert captured.err.count("\n") == 1
    assert "no operator trust anchor" in captured.err


def test_self_signed_ok_is_a_loud_explicit_choice(
    audit: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db, _anchors = audit
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert main(["ledger", "verify", "--config", str(config), "--url", f"sqlite:///{db}",
                 "--self-signed-ok"]) == EXIT_OK
    captured = capsys.readouterr()
    assert "WARNING: --self-signed-ok" in captured.err
    assert "UNVERIFIED" in captured.out


@pytest.mark.parametrize("command", [
    ["ledger", "verify", "--self-signed-ok"], ["ledger", "query"], ["ledger", "report"],
    ["ledger", "backup", "b.zip"], ["evidence", "export", "nothing"],
])
def test_a_mistyped_ledger_path_is_one_line_of_error_and_creates_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo" / "ledgr.sqlite3"
    config = tmp_path / "hub.toml"
    config.write_text("")
    code = main([*command[:2], "--config", str(config), "--url", f"sqlite:///{missing}",
                 *command[2:]])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no ledger at" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.toml"]


def test_a_ledger_at_an_older_schema_is_not_migrated_by_a_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from alembic import command

    from hub.ledger.migrate import alembic_config

    db = tmp_path / "old.sqlite3"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "r0001")
    engine.dispose()
    before = db.read_bytes()
    assert main(["ledger", "query", "--url", f"sqlite:///{db}"]) == EXIT_USAGE
    assert "has schema r0001" in capsys.readouterr().err
    assert db.read_bytes() == before


def test_a_ledger_recording_two_schema_revisions_is_refused_without_advice_to_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "two.sqlite3"
    Ledger.open(f"sqlite:///{db}").close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ledger_alembic_version VALUES ('r0004')"))
    engine.dispose()
    assert main(["ledger", "query", "--url", f"sqlite:///{db}"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "records 2 schema revisions (r0004, r0005)" in err, err
    assert "upgrade" not in err


def _run_as_nobody(args: list[str], cwd: Path,
                   module: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI (or, ``module`` False, Python with ``args``) as an unprivileged user (root
    ignores file modes), in a fresh interpreter."""
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if (
        os.geteuid() == 0) else []
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(cwd)}
    command = ["-m", "hub.ops.ledger_cli"] if module else []
    return subprocess.run([*prefix, sys.executable, *command, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def _enterable_by_others(paths: list[Path]) -> Iterator[None]:
    """Let other users pass through ``paths`` and their ancestors (search, not listing) while
    the unprivileged child runs: it imports the hub and its packages from this checkout, which
    may sit in a directory only its owner may enter (``mktemp -d``, mode 700). Each mode is put
    back afterwards."""
    changed: dict[Path, int] = {}
    for path in paths:
        for directory in (path, *path.parents):
            mode = directory.stat().st_mode
            if directory not in changed and not mode & 0o001 and os.geteuid() == 0:
                changed[directory] = mode
                directory.chmod((mode | 0o001) & 0o7777)
    try:
        yield
    finally:
        for directory, mode in changed.items():
            directory.chmod(mode & 0o7777)


@pytest.fixture
def read_only_copy(audit: tuple[Path, list[str]]) -> Iterator[tuple[Path, list[str]]]:
    """The ledger copied into a directory nobody may write, the file mode 444."""
    db, anchors = audit
    base = Path(tempfile.mkdtemp(prefix="ledger-ro-"))
    try:
        shared = base / "audit"
        shared.mkdir()
        copy = shared / "ledger.sqlite3"
        shutil.copy(db, copy)
        readable = []
        for arg in anchors:  # the auditor's own copies of the anchors, readable by them
            if arg.endswith(".pem"):
                arg = str(shutil.copy(arg, base / Path(arg).name))
                Path(arg).chmod(0o444)
            readable.append(arg)
        copy.chmod(0o444)
        shared.chmod(0o555)
        base.chmod(0o755)
        with _enterable_by_others([REPO, Path(sys.prefix)]):
            yield copy, readable
    finally:
        shared.chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="needs setpriv to drop root")
def test_a_read_only_copy_verifies_queries_and_reports(
    read_only_copy: tuple[Path, list[str]], tmp_path: Path,
) -> None:
    copy, anchors = read_only_copy
    work = copy.parent.parent
    before = sorted(p.name for p in copy.parent.iterdir())
    for url in (f"sqlite:///{copy}", f"sqlite:///file:{copy}?mode=ro&uri=true"):
        result = _run_as_nobody(["ledger", "verify", "--url", url, *anchors], work)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok: 40 rows"), result.stdout
        result = _run_as_nobody(["ledger", "report", "--url", url, "--format", "json"], work)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["sent"] == 8
        result = _run_as_nobody(["ledger", "query", "--url", url, "--documents"], work)
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in copy.parent.iterdir()) == before


HELPERS_WALK = """
import os, sys
from hub.ledger import Ledger
from hub.ledger.verify import plan_segments
from hub.ledger.verify_parallel import Helpers
with Ledger.open(sys.argv[1], read_only=True) as ledger:
    helpers = Helpers.of(ledger.engine, None, 2, 2)
    with ledger.engine.connect() as conn, conn.begin():
        walks = helpers.walk(conn, None, plan_segments(40, (), helpers.segments(40)),
                                check_bytes=True, progress=None, meanwhile=lambda: None)
print(len(walks), all(w.problem is None for _, w in walks),
      all(w.walker != os.getpid() for _, w in walks))
"""


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="needs setpriv to drop root")
def test_helper_processes_walk_a_read_only_copy_or_leave_it_to_the_caller(
    read_only_copy: tuple[Path, list[str]],
) -> None:
    copy, _anchors = read_only_copy
    result = _run_as_nobody(["-c", HELPERS_WALK, f"sqlite:///{copy}"], copy.parent.parent,
                            module=False)
    assert result.returncode == 0, result.stderr
    *said, walked = (result.stderr + result.stdout).splitlines()
    warned = [line for line in said if "[warning" in line]
    assert len(said) == len(warned) + 1, said  # and the count of segments walked, by whom
    if walked == "8 True False":
        # A user who may not start this Python again (on this machine the interpreter lies
        # under /root, which nobody may enter): no helper, one warning, the same walk.
        assert len(warned) == 1, said
        assert "ledger.verify.helper_not_started error=PermissionError" in warned[0]
        assert "by_caller=8" in said[1]
    else:
        assert (warned, walked) == ([], "8 True True")


def test_ledger_verify_takes_a_number_of_processes_and_refuses_nonsense(
    audit: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
) -> None:
    db, anchors = audit
    assert main(["ledger", "verify", "--url", f"sqlite:///{db}", *anchors, "--jobs", "2"]) == (
        EXIT_OK)
    assert capsys.readouterr().out.startswith("ok: 40 rows")
    for bad in ("0", "-1", "many", "65"):
        with pytest.raises(SystemExit) as stopped:
            main(["ledger", "verify", "--url", f"sqlite:///{db}", *anchors, "--jobs", bad])
        assert stopped.value.code == EXIT_USAGE
        assert "--jobs: " in capsys.readouterr().err.splitlines()[-1]
    for bad in ("0", "many"):  # the hub's command line: one line, the cause
        assert hub_main(["ledger", "verify", "--url", f"sqlite:///{db}", "--jobs", bad]) == (
            EXIT_USAGE)
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"'{bad}' is not a number of processes (1 to 64)" in err


@pytest.mark.postgres
def test_a_read_only_postgresql_role_verifies_queries_and_reports(
    postgres_url: str, pki: GeneratedPki, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a rotated ledger and a role that may only read it
    _fill(postgres_url, from_signer(pki.org(OPERATOR)), rotated(pki))
    schema = postgres_url.rsplit("%3D", 1)[1]
    role = f"ledger_auditor_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
    auditor = postgres_url.replace("postgres@", f"{role}@")
    anchors = ["--operator-ca", str(pki.paths.root_cert), "--operator-intermediate",
               str(pki.paths.issuing_ca_cert), "--operator-id", OPERATOR]
    try:
        # When the auditor's commands run as that role, Then they work
        assert main(["ledger", "verify", "--url", auditor, *anchors]) == EXIT_OK
        assert capsys.readouterr().out.startswith("ok: 40 rows")
        assert main(["ledger", "report", "--url", auditor, "--format", "csv"]) == EXIT_OK
        assert main(["ledger", "query", "--url", auditor, "--documents"]) == EXIT_OK
        # and helper processes walking the chain in segments open it as that role too
        with Ledger.open(auditor, read_only=True) as ledger:
            by_helpers = ledger.verify(jobs=2, min_segment_rows=2)
        assert (by_helpers.ok, by_helpers.rows) == (True, 40)
        # and the role really cannot write (what the commands did not need)
        engine = create_engine(auditor)
        with pytest.raises(Exception, match="permission denied"), engine.begin() as conn:
            conn.execute(text("UPDATE ledger_head SET seq = seq"))
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()

"""``hub ledger restore`` of a damaged or crafted backup: one line naming what is wrong, exit 2
(``EXIT_USAGE``, what :class:`~hub.ledger.backup.BackupError` maps to), and the target exactly as
it was — no row, no blob, nothing half-restored. On SQLite and on PostgreSQL.

The backup is a real one, taken from a real ledger (chained documents and events, signed
checkpoints, a packet in the blob store, the subscriber registry); each vector damages one thing
in it, the way a truncated copy, a hand edit or a crafted file would.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.ledger import DocumentIn, Ledger
from hub.ledger.backup import backup
from hub.ledger.models import Base
from hub.ledger.subscribers import import_registry
from hub.ops.cli import EXIT_USAGE, main
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import (
    T0,
    envelope_bytes,
    make_operator_key,
    refused_packet,
    sample_batch,
)
from tests.integration.ledger.test_subscribers_registry import AN, BINH, SEAL, sheet

Files = dict[str, bytes]

BIG = envelope_bytes(99, size=1_200_000)
"""A packet above the blob threshold: kept in the blob store, its row's ``raw`` NULL."""
BIG_DIGEST = hashlib.sha256(BIG).hexdigest()


@pytest.fixture(scope="module")
def good_backup(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """The entries of a real backup of a signed SQLite ledger, by name."""
    key = make_operator_key()
    root = tmp_path_factory.mktemp("source")
    with Ledger.open(f"sqlite:///{root / 'ledger.sqlite3'}", blob_dir=root / "blobs",
                     checkpoint_every=8, checkpoint_signer=key.sign,
                     checkpoint_cert_pem=key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        ledger.write([DocumentIn("A", "big", BIG_DIGEST, "envelope", BIG, T0)], [])
        import_registry(ledger, sheet(AN, BINH, SEAL), source="thang-1.csv")
        backup(ledger, root / "backup.zip")
    with zipfile.ZipFile(root / "backup.zip") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


# -- damaging a backup ------------------------------------------------------------------------

def _lines(data: bytes) -> list[bytes]:
    return data.splitlines()


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _edit_row(table: str, change: Callable[[dict[str, Any]], None], index: int = 0
              ) -> Callable[[Files], None]:
    """Rewrite row ``index`` of ``<table>.jsonl`` with ``change``."""
    def damage(files: Files) -> None:
        lines = _lines(files[f"{table}.jsonl"])
        row = json.loads(lines[index])
        change(row)
        lines[index] = json.dumps(row).encode()
        files[f"{table}.jsonl"] = _join(lines)
    return damage


def _set(table: str, column: str, value: object, index: int = 0) -> Callable[[Files], None]:
    return _edit_row(table, lambda row: row.__setitem__(column, value), index)


def _replace(name: str, data: bytes | None) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        if data is None:
            del files[name]
        else:
            files[name] = data
    return damage


def _meta(change: Callable[[dict[str, Any]], None]) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        meta = json.loads(files["backup.json"])
        change(meta)
        files["backup.json"] = json.dumps(meta).encode()
    return damage


def _first_line_twice(table: str) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        lines = _lines(files[f"{table}.jsonl"])
        files[f"{table}.jsonl"] = _join([lines[0], *lines])
    return damage


def _prepend(table: str, line: bytes) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        files[f"{table}.jsonl"] = line + b"\n" + files[f"{table}.jsonl"]
    return damage


def _drop_last_line(table: str) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        files[f"{table}.jsonl"] = _join(_lines(files[f"{table}.jsonl"])[:-1])
    return damage


def _naive(files: Files) -> None:
    _set("ledger_events", "at", "2024-03-01T08:00:00")(files)


def _both(*damages: Callable[[Files], None]) -> Callable[[Files], None]:
    def damage(files: Files) -> None:
        for one in damages:
            one(files)
    return damage


def _drop_column(table: str, column: str) -> Callable[[Files], None]:
    return _edit_row(table, lambda row: row.pop(column))


@dataclass(frozen=True)
class Damage:
    name: str
    damage: Callable[[Files], None]
    says: str
    """A fragment of the one error line: what is wrong and where."""


DAMAGES = [
    # backup.json
    Damage("backup.json is a list", _replace("backup.json", b"[1]"), "backup.json: not a JSON object"),
    Damage("backup.json is not JSON", _replace("backup.json", b"{"), "not a ledger backup"),
    Damage("an unknown format", _meta(lambda m: m.__setitem__("format", "x/9")),
           "unknown backup format 'x/9'"),
    Damage("backup.json has no head", _meta(lambda m: m.pop("head")), "backup.json: head"),
    Damage("the head's seq is text", _meta(lambda m: m["head"].__setitem__("seq", "30")),
           "backup.json: head"),
    Damage("the counts are a list", _meta(lambda m: m.__setitem__("counts", [1])),
           "backup.json: counts"),
    Damage("the head differs from ledger_head", _meta(
        lambda m: m["head"].__setitem__("chain_hash", "0" * 64)),
           "is not the one backup.json names"),
    # a line of a table
    Damage("a line is a list", _prepend("ledger_events", b"[1,2]"),
           "ledger_events.jsonl line 1: not a JSON object"),
    Damage("a line is not JSON", _prepend("ledger_events", b"{"),
           "ledger_events.jsonl line 1: not JSON"),
    Damage("an unknown column", _set("ledger_events", "colour", "red"),
           "ledger_events.jsonl line 1: unknown column 'colour'"),
    Damage("a required column is missing", _drop_column("ledger_events", "entry_hash"),
           "ledger_events.jsonl line 1: entry_hash is missing"),
    Damage("a required column is null", _set("ledger_documents", "sender", None),
           "ledger_documents.jsonl line 1: sender is missing"),
    Damage("a row holds only its key", _replace("ledger_events.jsonl", b'{"seq": 1}\n'),
           "ledger_events.jsonl line 1"),
    # values
    Damage("a timestamp is an integer", _set("ledger_events", "at", 5),
           "ledger_events.jsonl line 1: at"),
    Damage("a timestamp has no time zone", _naive, "ledger_events.jsonl line 1: at"),
    Damage("a timestamp is not a date", _set("ledger_events", "at", "yesterday"),
           "ledger_events.jsonl line 1: at"),
    Damage("a date is an integer", _set("subscriber_certificates", "valid_to", 20270101),
           "subscriber_certificates.jsonl line 1: valid_to"),
    Damage("a binary column holds an integer", _set("ledger_checkpoints", "signature", 5),
           "ledger_checkpoints.jsonl line 1: signature"),
    Damage("a binary column is not base64", _set("ledger_checkpoints", "signature", "!!!AAAA"),
           "ledger_checkpoints.jsonl line 1: signature"),
    Damage("a number is text", _set("ledger_events", "seq", "1"), "ledger_events.jsonl line 1: seq"),
    Damage("a number is a boolean", _set("ledger_events", "seq", True),
           "ledger_events.jsonl line 1: seq"),
    Damage("a number is out of range", _set("ledger_events", "seq", 2**70),
           "ledger_events.jsonl line 1: seq"),
    Damage("a text is a number", _set("ledger_events", "message_id", 7),
           "ledger_events.jsonl line 1: message_id"),
    Damage("a text is longer than its column", _set("ledger_events", "entry_hash", "a" * 65),
           "ledger_events.jsonl line 1: entry_hash"),
    Damage("a text holds a NUL", _set("ledger_events", "actor", "a\x00b"),
           "ledger_events.jsonl line 1: actor"),
    Damage("a boolean is an integer", _replace(
        "ledger_evidence_blobs.jsonl", json.dumps({
            "digest": "0" * 64, "kind": "crl", "data": base64.b64encode(b"x").decode(),
            "first_seen": "2024-03-01T08:00:00Z", "kept": 1}).encode() + b"\n"),
           "ledger_evidence_blobs.jsonl line 1: kept"),
    # rows the database refuses, rows that are not there
    Damage("a row is there twice", _first_line_twice("ledger_events"),
           "ledger_events.jsonl line 2: the database refused the row"),
    Damage("a late table's row is there twice", _first_line_twice("subscriber_history"),
           "subscriber_history.jsonl line 2: the database refused the row"),
    Damage("a table lost its last line", _drop_last_line("ledger_events"), "ledger_events.jsonl"),
    Damage("a table's file is missing", _replace("ledger_documents.jsonl", None),
           "ledger_documents.jsonl"),
    Damage("no head row", _replace("ledger_head.jsonl", b""), "ledger_head.jsonl"),
    Damage("no head row, and counted so", _both(
        _replace("ledger_head.jsonl", b""),
        _meta(lambda m: m["counts"].__setitem__("ledger_head", 0))),
           "ledger_head.jsonl holds 0 chain head rows"),
    Damage("the head row's id is not 1", _set("ledger_head", "id", 2), "id is 2, not 1"),
    Damage("no head file", _replace("ledger_head.jsonl", None), "ledger_head.jsonl is missing"),
    Damage("an unknown table", _replace("ledger_future.jsonl", b"{}\n"), "ledger_future.jsonl"),
    Damage("two head rows", _first_line_twice("ledger_head"), "ledger_head.jsonl line 2"),
    # the blob store's part
    Damage("a blob name is not a digest", _replace("blobs/abc", b"x"), "blobs/abc"),
    Damage("a blob name climbs out", _replace("blobs/../../x", b"x"), "blobs/../../x"),
    Damage("a blob's bytes are not its digest", _replace(f"blobs/{BIG_DIGEST}", b"other bytes"),
           f"blobs/{BIG_DIGEST}"),
    Damage("a second blob's bytes are not its digest, after the first was stored",
           _replace(f"blobs/{hashlib.sha256(b'a').hexdigest()}", b"b"),
           f"blobs/{hashlib.sha256(b'a').hexdigest()}"),
    Damage("a document's blob is missing", _replace(f"blobs/{BIG_DIGEST}", None), BIG_DIGEST),
]


def _zip(files: Files) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _snapshot(url: str, blob_dir: Path) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
    """Every row of every ledger table, and every file under the blob directory."""
    with Ledger.open(url) as ledger, ledger.engine.connect() as conn:
        rows = {t.name: sorted(tuple(map(repr, r)) for r in conn.execute(select(t)))
                for t in Base.metadata.sorted_tables}
    files = sorted(str(p.relative_to(blob_dir)) for p in blob_dir.rglob("*")) if (
        blob_dir.exists()) else []
    return rows, files


def _restore(url: str, tmp_path: Path, data: bytes,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    config = tmp_path / "hub.toml"
    config.write_text(f'[ledger]\nblob_dir = "{tmp_path / "blobs"}"\n')
    (tmp_path / "b.zip").write_bytes(data)
    capsys.readouterr()
    code = main(["ledger", "restore", "--url", url, "--config", str(config),
                 str(tmp_path / "b.zip")])
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def test_the_undamaged_backup_restores_and_verifies(
    good_backup: Files, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The control for the vectors below: without damage, the same backup restores.
    code, err, out = _restore(ledger_url, tmp_path, _zip(good_backup), capsys)
    assert code == 0, err
    assert "chain: ok" in out
    with Ledger.open(ledger_url, blob_dir=tmp_path / "blobs") as target:
        assert target.raw(BIG_DIGEST) == BIG


@pytest.mark.parametrize("case", DAMAGES, ids=[d.name for d in DAMAGES])
def test_a_damaged_backup_is_refused_in_one_line_and_leaves_the_target_untouched(
    case: Damage, good_backup: Files, ledger_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an empty target ledger and a backup damaged in one way
    Ledger.open(ledger_url).close()
    before = _snapshot(ledger_url, tmp_path / "blobs")
    files = dict(good_backup)
    case.damage(files)
    # When it is restored through the command line
    code, err, out = _restore(ledger_url, tmp_path, _zip(files), capsys)
    # Then one line names what is wrong, with the usage exit code, and no traceback
    assert code == EXIT_USAGE, err
    assert len(err) == 1, err
    assert err[0].startswith("hub: "), err
    assert "internal error" not in err[0], err
    assert case.says in err[0], err
    assert out == ""
    # and the target holds exactly what it held: nothing half-restored
    assert _snapshot(ledger_url, tmp_path / "blobs") == before


def test_a_restore_into_a_ledger_holding_only_a_registry_is_refused_and_keeps_it(
    good_backup: Files, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a target whose chain is empty but whose subscriber registry is not
    with Ledger.open(ledger_url) as target:
        import_registry(target, sheet(AN), source="khac.csv")
        assert target.head()[0] == 0
    before = _snapshot(ledger_url, tmp_path / "blobs")
    # When a good backup is restored on top of it
    code, err, _out = _restore(ledger_url, tmp_path, _zip(good_backup), capsys)
    # Then it is refused and the registry is as it was
    assert code == EXIT_USAGE, err
    assert len(err) == 1, err
    assert "not empty" in err[0], err
    assert _snapshot(ledger_url, tmp_path / "blobs") == before


def test_a_restore_into_a_ledger_with_entries_is_refused_and_keeps_them(
    good_backup: Files, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger.open(ledger_url) as target:
        target.write(*sample_batch(10, 1))
    before = _snapshot(ledger_url, tmp_path / "blobs")
    code, err, _out = _restore(ledger_url, tmp_path, _zip(good_backup), capsys)
    assert code == EXIT_USAGE, err
    assert len(err) == 1, err
    assert "not empty" in err[0], err
    assert _snapshot(ledger_url, tmp_path / "blobs") == before


def test_the_vectors_damage_a_backup_that_holds_every_part(good_backup: Files) -> None:
    # The vectors above rewrite line 1 of these tables: each must have rows to damage.
    counts = json.loads(good_backup["backup.json"])["counts"]
    for table in ("ledger_events", "ledger_documents", "ledger_checkpoints", "ledger_head",
                  "subscriber_certificates", "subscriber_history"):
        assert counts[table] >= 1, table
    assert f"blobs/{BIG_DIGEST}" in good_backup
    assert json.loads(_lines(good_backup["ledger_checkpoints.jsonl"])[0])["signature"]
    # A blob a vector adds goes after the good one in the zip: the good one is stored first,
    # so "the target holds what it held" proves it is removed again.
    names = list(good_backup)
    assert names.index(f"blobs/{BIG_DIGEST}") == max(
        i for i, n in enumerate(names) if n.startswith("blobs/"))


def test_a_refused_packet_whose_bytes_were_never_kept_backs_up_and_restores(
    ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ledger holding a refused packet over the cap (its row has no bytes, and no blob)
    big = envelope_bytes(1, size=5000)
    document, events = refused_packet(big, Reason.ENVELOPE_TOO_LARGE, organization=None,
                                      account="unknown-account")
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    with Ledger.open(source, blob_dir=tmp_path / "source-blobs", refused_bytes_cap=1000) as ledger:
        ledger.write([document], events)
        # When it is backed up (the missing bytes are not a missing blob) and restored
        backup(ledger, tmp_path / "b.zip")
    code, err, out = _restore(ledger_url, tmp_path, (tmp_path / "b.zip").read_bytes(), capsys)
    # Then the restore takes it as it was, and the chain verifies
    assert code == 0, err
    assert "chain: ok" in out

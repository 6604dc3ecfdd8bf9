"""``hub ledger verify`` trusts nothing it reads, on SQLite and on PostgreSQL.

What the acceptance mutations (``test_ledger_mutations``) do not reach: rows no signature
covers (every checkpoint removed, or the latest ones), rows stored outside the chain the head
records, a timestamp stored as another text of the same instant (SQLite keeps text; period
queries compare it), and columns holding values of a type the hub never writes. Each is built
through the real write path (fixture ``signed_ledger``: 30 rows, signed checkpoints at 10, 20
and 30), then tampered with by SQL as an operator with database access could, and judged by the
auditors' command, ``hub ledger verify --operator-cert``: a verdict (exit 1, one line naming the
first bad row), never an internal error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, text

from hub.ledger import Ledger
from hub.ledger.verify import LedgerVerdict
from hub.ops.cli import EXIT_FAILURE, EXIT_OK
from hub.ops.cli import main as hub_main
from tests.integration.ledger.ledger_samples import OperatorKey, sample_batch
from tests.integration.ledger.test_ledger_mutations import (
    edit_a_document,
    edit_an_event,
    rehash_from,
)


@dataclass(frozen=True)
class Verdict:
    code: int
    out: str
    err: str


@pytest.fixture
def audit(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Verdict]:
    """Run ``hub ledger verify --operator-cert`` (the hub's own entry point) on the fixture's
    ledger, as an auditor with the operator's certificate and no settings would."""
    cert = tmp_path / "operator.pem"
    cert.write_bytes(operator_key.cert_pem)
    config = tmp_path / "auditor.toml"
    config.write_text("")
    url = signed_ledger.engine.url.render_as_string(hide_password=False)

    def run(*extra: str) -> Verdict:
        capsys.readouterr()
        code = hub_main(["ledger", "verify", "--config", str(config), "--url", url,
                         "--operator-cert", str(cert), "--jobs", "1", *extra])
        captured = capsys.readouterr()
        return Verdict(code, captured.out, captured.err)

    return run


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def tamper(ledger: Ledger, *statements: str) -> None:
    with ledger.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def is_sqlite(ledger: Ledger) -> bool:
    return ledger.engine.dialect.name == "sqlite"


# -- what no signature covers ----------------------------------------------------------------


def strip_the_checkpoints_and_rewrite(conn: Connection) -> None:
    """Every checkpoint deleted, rows edited, the chain recomputed, the head told it never had
    a checkpoint: every link holds, only a signature could tell."""
    conn.execute(text("DELETE FROM ledger_checkpoints"))
    edit_a_document(conn)
    edit_an_event(conn)
    rehash_from(conn, 1)
    conn.execute(text("UPDATE ledger_head SET checkpoint_seq = 0, checkpoint_at = NULL"))


def test_a_ledger_stripped_of_its_checkpoints_and_rewritten_fails_the_auditors_check(
    signed_ledger: Ledger, operator_key: OperatorKey, audit: Callable[..., Verdict]
) -> None:
    with signed_ledger.engine.begin() as conn:
        strip_the_checkpoints_and_rewrite(conn)
    signed_ledger.rebuild_adoption()  # the derived rollup, recomputed as migrate does
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert not result.ok
    assert "no signed checkpoint" in (result.problem or "")
    verdict = audit()
    assert verdict.code == EXIT_FAILURE, verdict
    assert verdict.out.startswith("FAILED")
    assert "no signed checkpoint" in verdict.out
    assert verdict.err == ""


def test_a_stripped_ledger_checked_without_required_signatures_says_no_row_is_signed(
    signed_ledger: Ledger, audit: Callable[..., Verdict]
) -> None:
    with signed_ledger.engine.begin() as conn:
        strip_the_checkpoints_and_rewrite(conn)
    signed_ledger.rebuild_adoption()
    verdict = audit("--allow-unsigned")
    assert verdict.code == EXIT_OK, verdict
    assert "rows 1-30 (30) come after the last signed checkpoint (none)" in verdict.out


def test_checkpoints_removed_behind_a_head_that_still_records_one_are_detected(
    signed_ledger: Ledger,
) -> None:
    tamper(signed_ledger, "DELETE FROM ledger_checkpoints")
    result = signed_ledger.verify()
    assert not result.ok
    assert result.first_bad_row == 30
    assert "checkpoints were removed" in (result.problem or "")


def test_rows_rewritten_after_the_last_kept_checkpoint_are_reported_as_signed_by_nobody(
    signed_ledger: Ledger, operator_key: OperatorKey, audit: Callable[..., Verdict]
) -> None:
    # Given the checkpoints after row 10 removed, row 11 edited, rows 11-30 rehashed and the
    # head told its latest checkpoint is row 10's
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_checkpoints WHERE seq > 10"))
        edit_a_document(conn)
        rehash_from(conn, 11)
        conn.execute(text("UPDATE ledger_head SET checkpoint_seq = 10, checkpoint_at ="
                          " (SELECT at FROM ledger_checkpoints WHERE seq = 10)"))
    signed_ledger.rebuild_adoption()
    # When verified: an honest ledger between two checkpoints looks the same (the hub signs
    # every checkpoint_every rows, a crash leaves the rows since unsigned), so the chain passes
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert result.ok, result.problem
    # Then the verdict says which rows no signature covers
    assert isinstance(result, LedgerVerdict)
    assert (result.signed_through, result.unsigned_rows) == (10, 20)
    verdict = audit()
    assert verdict.code == EXIT_OK, verdict
    assert "rows 11-30 (20) come after the last signed checkpoint (row 10)" in verdict.out
    assert json.loads(audit("--json").out)["unsigned_rows"] == 20


def test_an_honest_ledger_says_which_rows_its_signatures_cover(
    signed_ledger: Ledger, operator_key: OperatorKey, audit: Callable[..., Verdict]
) -> None:
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert isinstance(result, LedgerVerdict)
    assert (result.ok, result.signed_through, result.unsigned_rows) == (True, 30, 0)
    assert "after the last signed checkpoint" not in audit().out
    # one document and its 4 events: fewer rows than checkpoint_every (8), no checkpoint due
    signed_ledger.write(*sample_batch(6, 1))
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert isinstance(result, LedgerVerdict)
    assert (result.ok, result.signed_through, result.unsigned_rows) == (True, 30, 5)
    verdict = audit()
    assert verdict.code == EXIT_OK, verdict
    assert "rows 31-35 (5) come after the last signed checkpoint (row 30)" in verdict.out


def test_the_hubs_first_write_is_signed_so_an_honest_ledger_never_lacks_a_checkpoint(
    ledger_url: str, operator_key: OperatorKey
) -> None:
    # the hub opens its ledger with a checkpoint interval (hub.app): the first write is due
    with Ledger.open(ledger_url, checkpoint_every=1000, checkpoint_interval_s=60,
                     checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        ledger.write(*sample_batch(0, 1))
        result = ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert result.ok, result.problem
    assert (result.rows, result.signed_checkpoints) == (5, 1)


# -- rows outside the chain ------------------------------------------------------------------

FORGED_RAW = b"<edXMLEnvelope n='forged'/>"


def add_an_event_beyond_the_head(conn: Connection) -> None:
    digest = conn.execute(text("SELECT digest FROM ledger_documents WHERE seq = 1")).scalar_one()
    conn.execute(text(
        "INSERT INTO ledger_events (seq, entry_hash, chain_hash, kind, message_id, at, digest,"
        " organ_id, reason, actor, detail) VALUES (1000, :h, :h, 'delivered', 'm0',"
        " '2024-03-01 08:00:00.000000', :d, '000.77.77.H27', NULL, 'hub', '{}')"),
        {"h": "ab" * 32, "d": digest})


def add_a_document_beyond_the_head(conn: Connection) -> None:
    conn.execute(text(
        "INSERT INTO ledger_documents (digest, kind, seq, entry_hash, chain_hash, sender,"
        " document_id, code, subject_digest, recipients, received_at, links_to, size, raw,"
        " report, refusal, revocation) VALUES (:fd, 'envelope', 1001, :h, :h, '000.00.00.H27',"
        " 'forged-1', '99/UBND-VP', :h, '[\"000.01.01.H27\"]', '2024-03-01 09:00:00.000000',"
        " NULL, :n, :raw, :rep, NULL, NULL)"),
        {"fd": hashlib.sha256(FORGED_RAW).hexdigest(), "h": "ab" * 32, "n": len(FORGED_RAW),
         "raw": FORGED_RAW, "rep": '{"accepted":true}'})


@dataclass(frozen=True)
class Case:
    name: str
    statements: tuple[str, ...]
    first_bad_row: int | None
    words: str
    sqlite_only: bool = False


def apply(ledger: Ledger, case: Case) -> None:
    if case.sqlite_only and not is_sqlite(ledger):
        pytest.skip("a PostgreSQL column holds only values of its type")
    tamper(ledger, *case.statements)


OUTSIDE = [
    Case("an event in a position with a fraction",
         ("UPDATE ledger_events SET seq = 14.5 WHERE seq = 14",), 14, "not a whole number",
         sqlite_only=True),
    Case("a copy of an event in a position that is text",
         ("INSERT INTO ledger_events SELECT 'x', entry_hash, chain_hash, kind, message_id, at,"
          " digest, organ_id, reason, actor, detail FROM ledger_events WHERE seq = 30",), None,
         "not a whole number", sqlite_only=True),
    Case("a checkpoint in a position with a fraction",
         ("UPDATE ledger_checkpoints SET seq = 20.5 WHERE seq = 20",), None,
         "not at a row", sqlite_only=True),
    Case("a checkpoint in a position that is text",
         ("UPDATE ledger_checkpoints SET seq = 'x' WHERE seq = 20",), None,
         "not at a row", sqlite_only=True),
    Case("a checkpoint before the first row",
         ("INSERT INTO ledger_checkpoints SELECT -5, head, at, signature, cert_pem"
          " FROM ledger_checkpoints WHERE seq = 10",), None, "not at a row"),
    Case("an extra head row", ("INSERT INTO ledger_head (id, seq, chain_hash, checkpoint_seq)"
                               " VALUES (2, 1, 'x', 0)",), None, "head"),
]


@pytest.mark.parametrize("add", [add_an_event_beyond_the_head, add_a_document_beyond_the_head],
                         ids=["an event", "a document"])
def test_a_row_stored_beyond_the_recorded_head_fails_the_auditors_check(
    signed_ledger: Ledger, audit: Callable[..., Verdict], add: Callable[[Connection], None]
) -> None:
    with signed_ledger.engine.begin() as conn:
        add(conn)
    signed_ledger.rebuild_adoption()
    verdict = audit()
    assert verdict.code == EXIT_FAILURE, verdict
    assert verdict.out.startswith("FAILED at row 100"), verdict.out
    assert "beyond the end of the chain" in verdict.out
    assert verdict.err == ""


@pytest.mark.parametrize("case", OUTSIDE, ids=[c.name for c in OUTSIDE])
def test_a_row_stored_outside_the_chains_positions_fails_the_auditors_check(
    signed_ledger: Ledger, audit: Callable[..., Verdict], case: Case
) -> None:
    apply(signed_ledger, case)
    verdict = audit()
    assert verdict.code == EXIT_FAILURE, verdict
    at = "" if case.first_bad_row is None else f" at row {case.first_bad_row}"
    assert verdict.out.startswith(f"FAILED{at}:"), verdict.out
    assert case.words in verdict.out
    assert verdict.err == ""


# -- timestamps in other texts (SQLite) ------------------------------------------------------

OTHER_TEXTS = {
    "the basic format": "20240301T080200",
    "the T separator": "2024-03-01T08:02:00.000000",
    "no fraction": "2024-03-01 08:02:00",
    "an offset": "2024-03-01 08:02:00.000000+00:00",
    "a Z": "2024-03-01 08:02:00Z",
}


@pytest.mark.parametrize("stored", OTHER_TEXTS.values(), ids=OTHER_TEXTS.keys())
def test_a_time_stored_as_another_text_of_the_same_instant_is_a_modified_row(
    signed_ledger: Ledger, audit: Callable[..., Verdict], stored: str
) -> None:
    if not is_sqlite(signed_ledger):
        pytest.skip("PostgreSQL stores a timestamp, not a text")
    # Given row 11's document and its events moved, by their stored text, out of March 2024
    # (a period query compares the text) while every entry still hashes the same
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_documents SET received_at = :t WHERE seq = 11"),
                     {"t": stored})
        conn.execute(text("UPDATE ledger_events SET at = :t WHERE seq BETWEEN 13 AND 16"),
                     {"t": stored})
    verdict = audit()
    assert verdict.code == EXIT_FAILURE, verdict
    assert verdict.out.startswith("FAILED at row 11: row 11 (document) was modified"), verdict.out


def test_an_event_time_stored_as_another_text_is_a_modified_row(
    signed_ledger: Ledger, audit: Callable[..., Verdict]
) -> None:
    if not is_sqlite(signed_ledger):
        pytest.skip("PostgreSQL stores a timestamp, not a text")
    tamper(signed_ledger, "UPDATE ledger_events SET at = '20240301T080200' WHERE seq = 14")
    verdict = audit()
    assert verdict.code == EXIT_FAILURE, verdict
    assert verdict.out.startswith("FAILED at row 14: row 14 (event) was modified"), verdict.out


# -- values the hub never writes -------------------------------------------------------------

UNREADABLE = [
    # JSON texts of the wrong shape (either database)
    Case("recipients that are a number",
         ("UPDATE ledger_documents SET recipients = '5' WHERE seq = 11",), 11, "modified"),
    Case("recipients that are not JSON",
         ("UPDATE ledger_documents SET recipients = '[' WHERE seq = 11",), 11, "modified"),
    Case("a refusal that is a list",
         ("UPDATE ledger_documents SET refusal = '[1,2]' WHERE seq = 11",), 11, "modified"),
    Case("a refusal that is a string",
         ("UPDATE ledger_documents SET refusal = '\"x\"' WHERE seq = 11",), 11, "modified"),
    Case("a revocation list of numbers",
         ("UPDATE ledger_documents SET revocation = '[1]' WHERE seq = 11",), 11, "modified"),
    Case("a revocation that is an object",
         ("UPDATE ledger_documents SET revocation = '{\"a\": 1}' WHERE seq = 11",), 11,
         "modified"),
    Case("a revocation list of strings",
         ("UPDATE ledger_documents SET revocation = '[\"abc\"]' WHERE seq = 11",), 11,
         "modified"),
    Case("the head row deleted", ("DELETE FROM ledger_head",), None, "no chain head"),
    Case("a time before the common era",
         ("UPDATE ledger_events SET at = '0005-01-01 00:00:00 BC' WHERE seq = 14",), 14,
         "modified"),
    # values of another type than the column's (SQLite keeps what it is given)
    Case("a receipt time that is a number",
         ("UPDATE ledger_documents SET received_at = 12345 WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a receipt time that is a word",
         ("UPDATE ledger_documents SET received_at = 'junk' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a receipt time as bytes",
         ("UPDATE ledger_documents SET received_at = x'00ff' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("an event time that is a number",
         ("UPDATE ledger_events SET at = 1.5 WHERE seq = 14",), 14, "modified",
         sqlite_only=True),
    Case("a size that is a word",
         ("UPDATE ledger_documents SET size = 'abc' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a size with a fraction that rounds to the stored one",
         ("UPDATE ledger_documents SET size = size + 0.5 WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a digest as bytes",
         ("UPDATE ledger_events SET digest = x'00ff' WHERE seq = 14",), 14, "modified",
         sqlite_only=True),
    Case("a detail as bytes",
         ("UPDATE ledger_events SET detail = x'00ff' WHERE seq = 14",), 14, "modified",
         sqlite_only=True),
    Case("a detail that is not UTF-8",
         ("UPDATE ledger_events SET detail = CAST(x'7bff7d' AS TEXT) WHERE seq = 14",), 14,
         "modified", sqlite_only=True),
    Case("a sender that is not UTF-8",
         ("UPDATE ledger_documents SET sender = CAST(x'ff' AS TEXT) WHERE seq = 12",), 12,
         "modified", sqlite_only=True),
    Case("a report as bytes",
         ("UPDATE ledger_documents SET report = x'00ff' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("recipients as bytes of the same JSON",
         ("UPDATE ledger_documents SET recipients = CAST(recipients AS BLOB) WHERE seq = 11",),
         11, "modified", sqlite_only=True),
    Case("envelope bytes stored as text",
         ("UPDATE ledger_documents SET raw = 'hello' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a sender as bytes",
         ("UPDATE ledger_documents SET sender = x'4142' WHERE seq = 11",), 11, "modified",
         sqlite_only=True),
    Case("a checkpoint signature as text",
         ("UPDATE ledger_checkpoints SET signature = 'abc' WHERE seq = 20",), 20,
         "checkpoint at row 20 was modified", sqlite_only=True),
    Case("a checkpoint certificate as text",
         ("UPDATE ledger_checkpoints SET cert_pem = '-----BEGIN CERTIFICATE-----' WHERE"
          " seq = 20",), 20, "checkpoint at row 20 was modified", sqlite_only=True),
    Case("a checkpoint time that is a word",
         ("UPDATE ledger_checkpoints SET at = 'junk' WHERE seq = 20",), 20,
         "checkpoint at row 20 was modified", sqlite_only=True),
    Case("a checkpoint time in another text",
         ("UPDATE ledger_checkpoints SET at = replace(at, ' ', 'T') WHERE seq = 20",), 20,
         "checkpoint at row 20 was modified", sqlite_only=True),
    Case("a head position that is a word",
         ("UPDATE ledger_head SET seq = 'x'",), None, "head", sqlite_only=True),
    Case("a head checkpoint position that is a word",
         ("UPDATE ledger_head SET checkpoint_seq = 'x'",), None, "head", sqlite_only=True),
    Case("a rollup count that is a word",
         ("UPDATE ledger_adoption SET accepted = 'x'",), None, "rollup", sqlite_only=True),
]


@pytest.mark.parametrize("case", UNREADABLE, ids=[c.name for c in UNREADABLE])
def test_a_value_the_hub_never_writes_fails_the_auditors_check_without_an_internal_error(
    signed_ledger: Ledger, audit: Callable[..., Verdict], case: Case
) -> None:
    apply(signed_ledger, case)
    verdict = audit()
    assert (verdict.code, verdict.err) == (EXIT_FAILURE, ""), verdict
    at = "" if case.first_bad_row is None else f" at row {case.first_bad_row}"
    assert verdict.out.startswith(f"FAILED{at}:"), verdict.out
    assert case.words in verdict.out
    assert verdict.out.count("\n") == 1


def test_junk_stored_beside_a_signature_the_callers_own_check_accepts_is_no_error(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    # the signature is checked against the operator's key the caller holds: the certificate
    # stored beside it proves nothing, and junk there must not break the check
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_checkpoints SET cert_pem = :c WHERE seq = 20"),
                     {"c": b"\x00"})
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert result.ok, result.problem
    assert result.signers == (hashlib.sha256(_der(operator_key.cert_pem)).hexdigest(),)

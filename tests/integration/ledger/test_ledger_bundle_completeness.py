"""A chain proof shows that a bundle's entries are in the chain, not that they are all the
entries concerning its document: a bundle stripped of the document's deliveries (entries
removed, the unsigned manifest and SHA256SUMS regenerated) still proves the rest. The exporter
therefore puts the list of the concerned entries under the operator's signature
(``ledger/statement.json``), and the verifier wants exactly those; a bundle without that list
verifies saying what it does not prove."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.evidence import export_evidence, statement_payload, verify_bundle
from hub.ops.cli import EXIT_FAILURE, EXIT_OK, main
from tests.integration.ledger.ledger_samples import OperatorKey, make_operator_key, sample_batch
from tests.integration.ledger.test_ledger_bundle_binding import (
    DIGEST,
    Members,
    _entries,
    _read,
    _set_entries,
    _write,
)

STATEMENT = "ledger/statement.json"


@pytest.fixture(scope="module")
def key() -> OperatorKey:
    return make_operator_key()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, key: OperatorKey) -> tuple[Path, Path]:
    """The bundle of document 2 (row 11: received, validated, delivered to two recipients)
    from a signed ledger of 30 rows, and the operator certificate."""
    tmp = tmp_path_factory.mktemp("completeness")
    with Ledger.open(f"sqlite:///{tmp / 'ledger.sqlite3'}", checkpoint_every=8,
                     checkpoint_signer=key.sign, checkpoint_cert_pem=key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        bundle = export_evidence(ledger, DIGEST, tmp / "evidence.zip")
    cert = tmp / "operator.pem"
    cert.write_bytes(key.cert_pem)
    return bundle, cert


def _strip_deliveries(members: Members) -> list[int]:
    """The reviewer's stripping: the 'delivered' entries out; the rows they were at."""
    entries = _entries(members)
    removed = [e["seq"] for e in entries if e.get("kind") == "delivered"]
    _set_entries(members, [e for e in entries if e.get("kind") != "delivered"])
    return removed


def _verify(bundle: Path, cert: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["evidence", "verify", str(bundle), "--operator-cert", str(cert)])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_an_intact_bundle_says_its_entries_are_every_one_concerning_the_document(
    exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, cert = exported
    code, out = _verify(bundle, cert, capsys)
    assert code == EXIT_OK, out
    assert "note: proven: these 5 entries are in the chain that the signed checkpoint at row 30" \
           " covers, and they are every entry concerning the document up to row 30" in out, out
    listed = json.loads(_read(bundle)[STATEMENT])
    assert [seq for seq, _h in listed["entries"]] == [11, 13, 14, 15, 16]


def test_a_bundle_stripped_of_the_document_deliveries_fails_naming_each_entry_removed(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the bundle without its delivered entries, manifest and SHA256SUMS regenerated
    bundle, cert = exported
    members = _read(bundle)
    removed = _strip_deliveries(members)
    assert removed == [15, 16]
    stripped = _write(members, DIGEST, tmp_path / "stripped.zip")
    # When an auditor verifies it
    code, out = _verify(stripped, cert, capsys)
    # Then it fails, naming each entry the operator's signed list holds and the bundle lacks
    assert code == EXIT_FAILURE, out
    for seq in removed:
        assert (f"  - entry {seq} concerns the document, as the operator signed, but is not in"
                " the bundle (removed)") in out, out


def test_a_bundle_stripped_with_its_signed_list_verifies_saying_completeness_is_not_proven(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the stripped bundle without the signed list either (as an older bundle is)
    bundle, cert = exported
    members = _read(bundle)
    _strip_deliveries(members)
    for suffix in (".json", ".sig", ".pem"):
        del members[f"ledger/statement{suffix}"]
    stripped = _write(members, DIGEST, tmp_path / "stripped.zip")
    # When it is verified, Then what remains is proven, and the output says what is not
    code, out = _verify(stripped, cert, capsys)
    assert code == EXIT_OK, out
    assert "these 3 entries are in the chain that the signed checkpoint at row 30 covers;" \
           " NOT proven: that no other entry concerns the document" in out, out
    assert verify_bundle(stripped, trusted_cert_pem=cert.read_bytes()).complete is False


def test_a_signed_list_of_the_stripped_entries_under_another_key_is_forged(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given the stripped bundle whose list was rewritten to match and signed by another key
    bundle, cert = exported
    members = _read(bundle)
    _strip_deliveries(members)
    old = json.loads(members[STATEMENT])
    kept = [[s, h] for s, h in old["entries"] if s not in (15, 16)]
    intruder = make_operator_key()
    members[STATEMENT] = statement_payload(DIGEST, old["through"], old["at"],
                                           [(s, h) for s, h in kept])
    members["ledger/statement.sig"] = intruder.sign(members[STATEMENT])
    members["ledger/statement.pem"] = intruder.cert_pem
    forged = _write(members, DIGEST, tmp_path / "forged.zip")
    # When it is verified against the operator certificate, Then the list is forged
    result = verify_bundle(forged, trusted_cert_pem=cert.read_bytes())
    assert not result.ok
    assert any(p.startswith("the signed list of the entries concerning the document"
                            f" ({STATEMENT}) is not signed by the hub operator (forged)")
               for p in result.problems), result.problems


def test_a_bundle_made_without_the_operator_key_holds_no_list_and_says_so(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given a signed ledger exported by a command that has no operator key
    bundle, cert = exported
    source = bundle.parent / "ledger.sqlite3"
    with Ledger.open(f"sqlite:///{source}", read_only=True, must_exist=True) as ledger:
        unsigned = export_evidence(ledger, DIGEST, tmp_path / "no-key.zip")
    # Then its signed checkpoints prove the entries, and it claims no more than that
    assert STATEMENT not in _read(unsigned)
    result = verify_bundle(unsigned, trusted_cert_pem=cert.read_bytes())
    assert result.ok, result.problems
    assert not result.complete
    assert any("NOT proven" in note for note in result.notes)
    assert "it does NOT prove that no other entry concerns the" in \
           _read(unsigned)["README.txt"].decode("utf-8")


def test_the_readme_list_check_passes_on_the_bundle_and_fails_on_a_stripped_one(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, _cert = exported
    readme = _read(bundle)["README.txt"].decode("utf-8")
    check = readme.split("$ python3 - <<'EOF'\n")[2].split("\nEOF\n", 1)[0]
    for name, strip in (("intact", False), ("stripped", True)):
        members = _read(bundle)
        if strip:
            _strip_deliveries(members)
        folder = tmp_path / name
        with zipfile.ZipFile(_write(members, DIGEST, tmp_path / f"{name}.zip")) as zf:
            zf.extractall(folder)
        result = subprocess.run([sys.executable, "-"], input=check, cwd=folder,
                                capture_output=True, text=True, timeout=60, check=False)
        assert (result.returncode == 0) is not strip, result.stdout + result.stderr
        assert ("entries complete" in result.stdout) is not strip

"""Evidence bundles whose content is structurally malformed: a verification problem, never a bug.

Each vector takes a real exported bundle, damages one member's *structure* (a missing key, a
value of the wrong type, a line that is not an object) and runs ``hub evidence verify`` as a
user does: the verdict is FAILED with exit code 1, and the problem is one line naming the file
and what is wrong. The first five vectors are the reviewer's reproductions.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.ledger import Ledger
from hub.ledger.evidence import export_evidence, verify_bundle
from hub.ops.cli import EXIT_FAILURE, main
from tests.integration.ledger.ledger_samples import OperatorKey, envelope_bytes, sample_batch

DIGEST = hashlib.sha256(envelope_bytes(2)).hexdigest()
PROOF = "ledger/proof.json"
ENTRIES = "ledger/entries.jsonl"
MANIFEST = "manifest.json"

Members = dict[str, bytes]


@dataclass(frozen=True)
class Damage:
    """One structural damage to a bundle and the problem it must be reported as."""

    name: str
    edit: Callable[[Members], None]
    problem: str
    """A fragment of the one-line problem ``verify`` must report."""
    zipped: bool = False
    """Hand the damaged bundle over as a zip (else as an unpacked folder)."""


def _json_member(member: str, change: Callable[[Any], Any]) -> Callable[[Members], None]:
    def edit(members: Members) -> None:
        members[member] = json.dumps(change(json.loads(members[member]))).encode()
    return edit


def _without(key: str) -> Callable[[Any], Any]:
    def change(value: Any) -> Any:
        del value[key]
        return value
    return change


def _setting(key: str, new: Any) -> Callable[[Any], Any]:
    def change(value: Any) -> Any:
        value[key] = new
        return value
    return change


def _append_line(line: bytes) -> Callable[[Members], None]:
    def edit(members: Members) -> None:
        members[ENTRIES] += line + b"\n"
    return edit


def _replace(member: str, body: bytes) -> Callable[[Members], None]:
    def edit(members: Members) -> None:
        members[member] = body
    return edit


LATEST_CHECKPOINT = "ledger/checkpoints/30.json"  # 30 entries, a checkpoint every 8 and one at export


def _checkpoint_not_an_object(members: Members) -> None:
    assert LATEST_CHECKPOINT in members
    members[LATEST_CHECKPOINT] = b"[1]"


def _checkpoint_without_a_row_number(members: Members) -> None:
    for suffix in (".json", ".sig", ".pem"):
        members[f"ledger/checkpoints/latest{suffix}"] = b"{}"
    manifest = json.loads(members[MANIFEST])
    manifest["files"]["ledger/checkpoints/latest.json"] = hashlib.sha256(b"{}").hexdigest()
    members[MANIFEST] = json.dumps(manifest).encode()


def _entry_seq_as_text(members: Members) -> None:
    lines = members[ENTRIES].splitlines()
    entry = json.loads(lines[0])
    entry["seq"] = str(entry["seq"])
    lines[0] = json.dumps(entry).encode()
    members[ENTRIES] = b"\n".join(lines) + b"\n"


DAMAGES = [
    # the reviewer's reproductions
    Damage("proof without hashes", _json_member(PROOF, _without("hashes")),
           'ledger/proof.json: "hashes" is missing'),
    Damage("entries with a line that is a list", _append_line(b"[1]"),
           "ledger/entries.jsonl line 6: not a JSON object"),
    Damage("manifest files as a list", _json_member(MANIFEST, _setting("files", [1])),
           'manifest.json: "files" is not an object'),
    Damage("proof start as text", _json_member(PROOF, _setting("start", "x")),
           'ledger/proof.json: "start" is not an integer'),
    Damage("manifest as a list in a zip", _replace(MANIFEST, b"[1,2]"),
           "manifest.json: not a JSON object", zipped=True),
    # the other structures verify reads
    Damage("manifest not JSON", _replace(MANIFEST, b"{nope"), "manifest.json: not JSON"),
    Damage("manifest document as a number", _json_member(MANIFEST, _setting("document", 5)),
           'manifest.json: "document" is not a string'),
    Damage("manifest digest as a number",
           _json_member(MANIFEST, lambda m: {**m, "files": {**m["files"], PROOF: 1}}),
           'manifest.json: "files" is not an object'),
    Damage("proof as a list", _replace(PROOF, b"[]"), "ledger/proof.json: not a JSON object"),
    Damage("proof not JSON", _replace(PROOF, b"\xff"), "ledger/proof.json: not JSON"),
    Damage("proof hashes as pairs of text",
           _json_member(PROOF, _setting("hashes", [["1", "x"]])),
           'ledger/proof.json: "hashes" is not a list of [row, SHA-256] pairs'),
    Damage("proof hash not hex",
           _json_member(PROOF, lambda p: {**p, "hashes": [[s, "zz"] for s, _h in p["hashes"]]}),
           'ledger/proof.json: "hashes" is not a list of [row, SHA-256] pairs'),
    Damage("proof prev not hex", _json_member(PROOF, _setting("prev", "not hex")),
           'ledger/proof.json: "prev" is not a SHA-256 hex digest'),
    Damage("proof head as a list", _json_member(PROOF, _setting("head", [])),
           'ledger/proof.json: "head" is not a JSON object'),
    Damage("proof head without seq",
           _json_member(PROOF, lambda p: {**p, "head": {"chain_hash": "00" * 32}}),
           'ledger/proof.json: "head"."seq" is missing'),
    Damage("proof checkpoint row as text",
           _json_member(PROOF, lambda p: {**p, "head": {**p["head"], "checkpoint_seq": "30"}}),
           'ledger/proof.json: "head"."checkpoint_seq" is not an integer'),
    Damage("entries with a line that is not JSON", _append_line(b"{oops"),
           "ledger/entries.jsonl line 6: not JSON"),
    Damage("entries with a blank line", _replace(ENTRIES, b"\n"),
           "ledger/entries.jsonl line 1: not JSON"),
    Damage("entries with NaN", _append_line(b'{"seq":NaN}'),
           "ledger/entries.jsonl line 6: not JSON"),
    Damage("entry with seq as text", _entry_seq_as_text,
           'ledger/entries.jsonl line 1: "seq" is not an integer'),
    Damage("document entry without digest", _append_line(b'{"seq":99,"type":"document"}'),
           'ledger/entries.jsonl line 6: "digest" is missing'),
    Damage("document entry with revocation as text",
           _append_line(b'{"digest":"ab","revocation":"crl","seq":99,"type":"document"}'),
           'ledger/entries.jsonl line 6: "revocation" is not a list of objects'),
    Damage("document entry with a revocation reference without digest",
           _append_line(b'{"digest":"ab","revocation":[{"kind":"crl"}],"seq":99,'
                        b'"type":"document"}'),
           'ledger/entries.jsonl line 6: "revocation"[0]."digest" is missing'),
    Damage("checkpoint as a list", _checkpoint_not_an_object,
           f"{LATEST_CHECKPOINT}: not a JSON object"),
    Damage("checkpoint named without a row number", _checkpoint_without_a_row_number,
           "ledger/checkpoints/latest.json: not named by its row number"),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real bundle of document 2, exported from a signed ledger, and its operator cert."""
    from tests.integration.ledger.ledger_samples import make_operator_key

    tmp = tmp_path_factory.mktemp("bundle")
    key: OperatorKey = make_operator_key()
    with Ledger.open(f"sqlite:///{tmp / 'ledger.sqlite3'}", blob_dir=tmp / "blobs",
                     checkpoint_every=8, checkpoint_signer=key.sign,
                     checkpoint_cert_pem=key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        path = export_evidence(ledger, DIGEST, tmp / "evidence.zip")
    cert = tmp / "operator.pem"
    cert.write_bytes(key.cert_pem)
    return path, cert


def _damaged(exported: tuple[Path, Path], damage: Damage, tmp_path: Path) -> Path:
    with zipfile.ZipFile(exported[0]) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    damage.edit(members)
    if damage.zipped:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, body in members.items():
                zf.writestr(name, body)
        path = tmp_path / "damaged.zip"
        path.write_bytes(out.getvalue())
        return path
    folder = tmp_path / "damaged"
    for name, body in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    return folder


def test_the_undamaged_bundle_verifies(
    exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, cert = exported
    assert main(["evidence", "verify", str(path), "--operator-cert", str(cert)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: document {DIGEST}")


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.name for d in DAMAGES])
def test_a_malformed_bundle_fails_verification_with_a_one_line_problem(
    exported: tuple[Path, Path], damage: Damage, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a real bundle whose content was damaged in its structure
    bundle = _damaged(exported, damage, tmp_path)
    # When an auditor verifies it
    code = main(["evidence", "verify", str(bundle), "--operator-cert", str(exported[1])])
    out, err = capsys.readouterr()
    # Then the verdict is FAILED (exit 1), with the problem on one line, and nothing on stderr
    assert code == EXIT_FAILURE, (out, err)
    assert err == ""
    assert out.startswith("FAILED:\n")
    problems = [line for line in out.splitlines()[1:] if line.strip()]
    assert all(line.startswith("  - ") for line in problems), out
    assert any(damage.problem in line for line in problems), out
    assert "Traceback" not in out
    assert "internal error" not in out


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.name for d in DAMAGES])
def test_verify_bundle_returns_a_failed_result_for_a_malformed_bundle(
    exported: tuple[Path, Path], damage: Damage, tmp_path: Path,
) -> None:
    bundle = _damaged(exported, damage, tmp_path)
    result = verify_bundle(bundle, trusted_cert_pem=exported[1].read_bytes())
    assert not result.ok
    assert any(damage.problem in p for p in result.problems), result.problems
    assert all("\n" not in p for p in result.problems)
    json.dumps(result.to_dict())  # the --json output stays serializable


def test_the_json_verdict_of_a_malformed_bundle_is_failed(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _damaged(exported, DAMAGES[0], tmp_path)
    code = main(["evidence", "verify", str(bundle), "--operator-cert", str(exported[1]),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_FAILURE
    assert report["ok"] is False
    assert any(DAMAGES[0].problem in p for p in report["problems"])

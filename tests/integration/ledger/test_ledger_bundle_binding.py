"""Every entry an evidence bundle presents must be bound by the chain to a signed checkpoint.

``ledger/proof.json`` ("start", "prev", "hashes", "head") and ``manifest.json`` are not signed:
whoever holds a bundle can rewrite them. Only the checkpoints are signed, so an entry is evidence
only when the chain, walked from "start", reproduces a signed checkpoint's head at or after the
entry's row. Each vector takes a real bundle from the real exporter, forges it as the adversarial
reviewer did (the manifest and SHA256SUMS regenerated to match), and runs ``hub evidence verify``
as an auditor does: FAILED, exit 1, and a one-line problem saying what is not bound. The first
three vectors are the reviewer's reproductions (r3, r3b, r3c).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.ledger import Ledger, chain
from hub.ledger.evidence import FORMAT, export_evidence
from hub.ops.cli import EXIT_FAILURE, EXIT_OK, main
from tests.integration.ledger.ledger_samples import (
    OperatorKey,
    envelope_bytes,
    make_operator_key,
    sample_batch,
)

DIGEST = hashlib.sha256(envelope_bytes(2)).hexdigest()  # the document at row 11
PROOF = "ledger/proof.json"
ENTRIES = "ledger/entries.jsonl"

Members = dict[str, bytes]


@dataclass(frozen=True)
class Bundles:
    """Two real bundles of document 2 from one signed ledger, and the operator certificate."""

    at_head: Path
    """Exported when the head (row 30) was the last signed checkpoint."""
    past_checkpoint: Path
    """Exported after rows 31-35 were written: the head lies past the last checkpoint (30)."""
    cert: Path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    tmp = tmp_path_factory.mktemp("binding")
    key: OperatorKey = make_operator_key()
    with Ledger.open(f"sqlite:///{tmp / 'ledger.sqlite3'}", blob_dir=tmp / "blobs",
                     checkpoint_every=8, checkpoint_signer=key.sign,
                     checkpoint_cert_pem=key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        at_head = export_evidence(ledger, DIGEST, tmp / "at-head.zip")
        ledger.write(*sample_batch(6, 1))
        past = export_evidence(ledger, DIGEST, tmp / "past-checkpoint.zip")
    cert = tmp / "operator.pem"
    cert.write_bytes(key.cert_pem)
    return Bundles(at_head, past, cert)


# -- forging, as the reviewer did: edit members, then regenerate the unsigned manifest ----------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> Members:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


UNLISTED = "unlisted:"
"""A member named with this prefix goes into the zip under the rest of its name, unlisted."""


def _write(members: Members, document: str, path: Path) -> Path:
    """A bundle of ``members`` whose manifest and SHA256SUMS list them with their digests."""
    files = {n: b for n, b in members.items() if n not in ("manifest.json", "SHA256SUMS")}
    listed = {name: _sha256(body) for name, body in sorted(files.items())
              if not name.startswith(UNLISTED)}
    manifest = chain.canonical_json({"format": FORMAT, "document": document, "files": listed})
    sums = "".join(f"{digest}  {name}\n" for name, digest in listed.items()).encode()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", manifest)
        zf.writestr("SHA256SUMS", sums)
        for name, body in sorted(files.items()):
            zf.writestr(name.removeprefix(UNLISTED), body)
    return path


def _proof(members: Members) -> dict[str, Any]:
    proof: dict[str, Any] = json.loads(members[PROOF])
    return proof


def _entries(members: Members) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members[ENTRIES].splitlines()]


def _set_entries(members: Members, entries: list[dict[str, Any]]) -> None:
    members[ENTRIES] = b"".join(chain.canonical_json(e) + b"\n" for e in entries)


def _swap_the_envelope_and_move_start_past_its_entry(members: Members) -> str:
    """r3: another envelope in place of the real one, its entry rewritten, and the proof's
    start and prev moved one row past it so the chain walk never meets it."""
    proof, entries = _proof(members), _entries(members)
    document = next(e for e in entries if e["type"] == "document" and e["digest"] == DIGEST)
    assert document["seq"] == proof["start"] == 11
    raw = b"<edXMLEnvelope n='FORGED: a different document, sent by someone else'/>"
    forged = {**document, "digest": _sha256(raw), "sender": "000.99.99.H27",
              "code": "666/FORGED"}
    hashes = dict(proof["hashes"])
    proof["prev"] = chain.link(proof["prev"], hashes[11])
    proof["start"] = 12
    proof["hashes"] = [[s, h] for s, h in proof["hashes"] if s != 11] + [
        [11, _sha256(chain.canonical_json(forged))]]
    members[PROOF] = chain.canonical_json(proof)
    _set_entries(members, [forged] + [e for e in entries if e["seq"] != 11])
    del members[f"documents/{DIGEST}.xml"]
    members[f"documents/{forged['digest']}.xml"] = raw
    members[f"reports/{forged['digest']}.json"] = members.pop(f"reports/{DIGEST}.json")
    return str(forged["digest"])


def _add_a_delivery_after_the_head(members: Members) -> str:
    """r3b: a 'delivered' event to an organization that never got the document, at head+1."""
    proof, entries = _proof(members), _entries(members)
    delivered = next(e for e in entries if e.get("kind") == "delivered")
    forged = {**delivered, "seq": proof["head"]["seq"] + 1, "organ_id": "000.77.77.H27",
              "at": "2024-03-01T08:02:00.000000Z"}
    proof["hashes"].append([forged["seq"], _sha256(chain.canonical_json(forged))])
    members[PROOF] = chain.canonical_json(proof)
    _set_entries(members, [*entries, forged])
    return DIGEST


def _fabricate_all_but_a_genuine_checkpoint(members: Members) -> str:
    """r3c: keep only the genuine signed checkpoint at row 30; fabricate a document nobody
    sent, its entries at rows 7 and 8, and a proof starting at row 31 with its head at 30."""
    genuine = {n: b for n, b in members.items() if n.startswith("ledger/checkpoints/30.")}
    raw = b"<edXMLEnvelope n='never sent: fabricated'/>"
    report = b'{"accepted":true,"reason":"OK"}'
    digest = _sha256(raw)
    document = chain.document_entry(
        seq=7, digest=digest, sender="000.00.00.H27", document_id="X,1", kind="envelope",
        code="1/FAKE", subject_digest="00" * 32, recipients=["000.01.01.H27"],
        received_at="2024-03-01T08:00:00.000000Z", links_to=None, size=len(raw),
        report_digest=_sha256(report))
    event = chain.event_entry(
        seq=8, kind="delivered", message_id="m", at="2024-03-01T08:00:00.000000Z",
        digest=digest, organ_id="000.01.01.H27", reason=None, actor="hub", detail="{}")
    lines = [chain.canonical_json(document), chain.canonical_json(event)]
    proof = {"start": 31, "prev": "00" * 32,
             "hashes": [[7, _sha256(lines[0])], [8, _sha256(lines[1])]],
             "head": {"seq": 30, "chain_hash": "00" * 32, "checkpoint_seq": 30}}
    members.clear()
    members.update(genuine)
    members.update({
        f"documents/{digest}.xml": raw, f"reports/{digest}.json": report,
        ENTRIES: b"".join(line + b"\n" for line in lines), PROOF: chain.canonical_json(proof),
        "ledger/checkpoint.json": genuine["ledger/checkpoints/30.json"],
        "ledger/checkpoint.sig": genuine["ledger/checkpoints/30.sig"]})
    return digest


def _forge_a_delivery_between_the_last_checkpoint_and_the_head(members: Members) -> str:
    """In the rows after the last signed checkpoint (31-35) only the unsigned head vouches
    for the chain: put a 'delivered' event there and recompute that head."""
    proof, entries = _proof(members), _entries(members)
    assert proof["head"]["seq"] == 35
    assert proof["head"]["checkpoint_seq"] == 30
    delivered = next(e for e in entries if e.get("kind") == "delivered")
    forged = {**delivered, "seq": 33, "organ_id": "000.77.77.H27"}
    proof["hashes"] = [[s, _sha256(chain.canonical_json(forged)) if s == 33 else h]
                       for s, h in proof["hashes"]]
    link = proof["prev"]
    for _seq, entry_hash in proof["hashes"]:
        link = chain.link(link, entry_hash)
    proof["head"]["chain_hash"] = link
    members[PROOF] = chain.canonical_json(proof)
    _set_entries(members, [*entries, forged])
    return DIGEST


def _list_a_row_twice(members: Members) -> str:
    proof = _proof(members)
    proof["hashes"].insert(1, proof["hashes"][0])
    members[PROOF] = chain.canonical_json(proof)
    return DIGEST


def _unlist_a_checkpoint_signature(members: Members) -> str:
    """The signature stays in the zip, but the manifest no longer vouches for it: the
    verifier must not rely on it (it says it ignores what the manifest does not list)."""
    members[UNLISTED + "ledger/checkpoints/30.sig"] = members.pop("ledger/checkpoints/30.sig")
    return DIGEST


def _latest_checkpoint_alias_an_older_one(members: Members) -> str:
    members["ledger/checkpoint.json"] = members["ledger/checkpoints/20.json"]
    members["ledger/checkpoint.sig"] = members["ledger/checkpoints/20.sig"]
    return DIGEST


def _add_an_envelope_no_entry_names(members: Members) -> str:
    raw = b"<edXMLEnvelope n='slipped in'/>"
    members[f"documents/{_sha256(raw)}.xml"] = raw
    return DIGEST


@dataclass(frozen=True)
class Forgery:
    """One forgery of a real bundle and the problems it must be reported with."""

    name: str
    forge: Callable[[Members], str]
    """Edits the members; returns the document the forged manifest names."""
    problems: tuple[str, ...]
    """Fragments, each of which must be in one of the one-line problems."""
    past_checkpoint: bool = False
    """Forge the bundle exported with its head past the last checkpoint."""


FORGERIES = [
    Forgery("r3 entry moved before the proof start with its envelope swapped",
            _swap_the_envelope_and_move_start_past_its_entry,
            ("entry 11 lies before the chain proof's start at row 12",
             "the chain proof lists row 11, outside its rows 12 to 30")),
    Forgery("r3b delivery added after the head", _add_a_delivery_after_the_head,
            ("entry 31 lies after the last signed checkpoint (row 30)",
             "the chain proof lists row 31, outside its rows 11 to 30")),
    Forgery("r3c everything fabricated but a genuine checkpoint",
            _fabricate_all_but_a_genuine_checkpoint,
            ("the chain proof starts at row 31, after its head at row 30",
             "entry 7 lies before the chain proof's start at row 31",
             "the signed checkpoint at row 30 lies before the chain proof's start at row 31")),
    Forgery("delivery forged between the last checkpoint and the head",
            _forge_a_delivery_between_the_last_checkpoint_and_the_head,
            ("entry 33 lies after the last signed checkpoint (row 30)",),
            past_checkpoint=True),
    Forgery("proof listing a row twice", _list_a_row_twice,
            ("the chain proof lists row 11 twice or out of order",)),
    Forgery("checkpoint signature left out of the manifest", _unlist_a_checkpoint_signature,
            ("ledger/checkpoints/30.sig is missing or not listed in the manifest",)),
    Forgery("latest checkpoint alias pointing at an older checkpoint",
            _latest_checkpoint_alias_an_older_one,
            ("ledger/checkpoint.json is not the latest signed checkpoint (row 30)",)),
    Forgery("envelope no ledger entry names", _add_an_envelope_no_entry_names,
            ("is not named by any ledger entry in the bundle",)),
]


def _verify(bundle: Path, cert: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["evidence", "verify", str(bundle), "--operator-cert", str(cert)])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_bundles_from_the_real_exporter_verify_with_or_without_rows_past_the_checkpoint(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    for bundle in (bundles.at_head, bundles.past_checkpoint):
        code, out = _verify(bundle, bundles.cert, capsys)
        assert code == EXIT_OK, out
        assert out.startswith(f"ok: document {DIGEST}, 5 ledger entries, signed checkpoint at"
                              " row 30"), out


def test_a_bundle_regenerated_with_its_own_members_still_verifies(
    bundles: Bundles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the forging harness itself changes nothing a verifier cares about
    for bundle in (bundles.at_head, bundles.past_checkpoint):
        again = _write(_read(bundle), DIGEST, tmp_path / bundle.name)
        code, out = _verify(again, bundles.cert, capsys)
        assert code == EXIT_OK, out


@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.name for f in FORGERIES])
def test_an_entry_or_member_not_bound_to_a_signed_checkpoint_fails_verification(
    bundles: Bundles, forgery: Forgery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a real bundle, forged with its manifest and SHA256SUMS regenerated to match
    members = _read(bundles.past_checkpoint if forgery.past_checkpoint else bundles.at_head)
    document = forgery.forge(members)
    forged = _write(members, document, tmp_path / "forged.zip")
    # When an auditor verifies it against the operator certificate
    code, out = _verify(forged, bundles.cert, capsys)
    # Then the verdict is FAILED (exit 1), each problem on one line, naming what is unbound
    assert code == EXIT_FAILURE, out
    assert out.startswith("FAILED:\n"), out
    problems = [line for line in out.splitlines()[1:] if line.strip()]
    assert all(line.startswith("  - ") for line in problems), out
    for fragment in forgery.problems:
        assert any(fragment in line for line in problems), (fragment, out)


def _readme_chain_check(readme: str) -> str:
    """The README's python3 heredoc (step 5), literally."""
    body = readme.split("$ python3 - <<'EOF'\n", 1)[1]
    return body.split("\nEOF\n", 1)[0]


@pytest.mark.parametrize("forgery", FORGERIES[:3], ids=[f.name for f in FORGERIES[:3]])
def test_the_readme_chain_check_rejects_the_reviewer_forgeries(
    bundles: Bundles, forgery: Forgery, tmp_path: Path
) -> None:
    # Given the reviewer's forgery unpacked, and the chain check from the README the exporter
    # writes (an auditor's own copy: the forged bundle's README could say anything)
    members = _read(bundles.at_head)
    check = _readme_chain_check(members["README.txt"].decode("utf-8"))
    forgery.forge(members)
    folder = tmp_path / "forged"
    for name, body in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    # When it runs there, Then it fails
    result = subprocess.run([sys.executable, "-"], input=check, cwd=folder, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0, result.stdout
    assert "chain ok" not in result.stdout


def test_the_readme_chain_check_accepts_bundles_from_the_real_exporter(
    bundles: Bundles, tmp_path: Path
) -> None:
    for bundle in (bundles.at_head, bundles.past_checkpoint):
        folder = tmp_path / bundle.stem
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(folder)
        check = _readme_chain_check((folder / "README.txt").read_text("utf-8"))
        result = subprocess.run([sys.executable, "-"], input=check, cwd=folder,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "chain ok" in result.stdout

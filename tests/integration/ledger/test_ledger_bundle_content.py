"""Evidence bundles (issue 17 item 5): checked by content, not zip bytes; the exact revocation
data used is inside; the README's commands run with Debian's stock xmlsec1 and openssl."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.evidence import TrustMaterial, export_evidence, verify_bundle
from hub.ledger.verify import OperatorTrust
from tests.integration.ledger.ledger_samples import refused_packet
from tests.integration.ledger.operator_certs import OPERATOR, from_signer, rotated, self_made
from tests.integration.ledger.real_packets import record, signed_envelope
from tests.pki_fixtures import GeneratedPki

TOOLS = all(shutil.which(t) for t in ("xmlsec1", "openssl", "sha256sum", "python3"))


@pytest.fixture(scope="module")
def bundle(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle of a real accepted envelope (with the CRL its validation used), whose
    checkpoints were signed before and after an operator certificate rotation."""
    tmp = tmp_path_factory.mktemp("bundle")
    url = f"sqlite:///{tmp / 'ledger.sqlite3'}"
    accepted = record(pki, signed_envelope(pki, "42"), account="vp-ubnd")
    assert accepted.reason == "OK"
    old, new = from_signer(pki.org(OPERATOR)), rotated(pki)
    with Ledger.open(url, checkpoint_every=2, checkpoint_signer=old.sign,
                     checkpoint_cert_pem=old.pem) as ledger:
        ledger.write([accepted.document], accepted.events)
    with Ledger.open(url, checkpoint_every=2, checkpoint_signer=new.sign,
                     checkpoint_cert_pem=new.pem) as ledger:
        status, events = refused_packet(b"<later/>", "STATUS_ORPHAN", organization="X",
                                        account="x")
        ledger.write([status], events)
        path = export_evidence(ledger, accepted.document.digest, tmp / "evidence.zip",
                               trust=TrustMaterial(
                                   roots={"root-ca.pem": pki.paths.root_cert.read_bytes()},
                                   intermediates={"issuing-ca.pem":
                                                  pki.paths.issuing_ca_cert.read_bytes()}))
    return path


@pytest.fixture(scope="module")
def trust(pki: GeneratedPki) -> OperatorTrust:
    return OperatorTrust(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                         operator_id=OPERATOR)


def test_the_bundle_verifies_across_the_rotation_and_carries_the_crl_used(
    bundle: Path, trust: OperatorTrust,
) -> None:
    result = verify_bundle(bundle, trust=trust)
    assert result.ok, result.problems
    assert result.signer_trusted
    assert len(result.signers) == 2
    names = zipfile.ZipFile(bundle).namelist()
    assert sum(n.startswith("revocation/") and n.endswith(".crl") for n in names) == 1
    assert sum(n.startswith("revocation/certs/") for n in names) == 2


def test_without_a_trust_anchor_a_bundle_is_not_ok(bundle: Path) -> None:
    result = verify_bundle(bundle)
    assert not result.ok
    assert any("no operator trust anchor" in p for p in result.problems)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_a_bundle_unzipped_and_zipped_again_verifies(
    bundle: Path, trust: OperatorTrust, tmp_path: Path,
) -> None:
    # Given the bundle unpacked into a folder and zipped with the zip tool's defaults
    # (directory entries, another order, a top folder, stored instead of deflated)
    folder = tmp_path / "evidence-x"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    rezipped = io.BytesIO()
    with zipfile.ZipFile(rezipped, "w", compression=zipfile.ZIP_STORED) as out:
        out.writestr("evidence-x/", b"")
        for name in sorted(p.relative_to(tmp_path).as_posix() for p in folder.rglob("*")):
            if (tmp_path / name).is_dir():
                out.writestr(name + "/", b"")
            else:
                out.write(tmp_path / name, name)
    assert rezipped.getvalue() != bundle.read_bytes()
    # Then it verifies, as does the unpacked folder itself
    assert verify_bundle(rezipped.getvalue(), trust=trust).ok
    assert verify_bundle(folder, trust=trust).ok


def test_a_changed_byte_in_any_member_fails(bundle: Path, trust: OperatorTrust) -> None:
    members = _members(bundle)
    for name in members:
        changed = dict(members)
        data = bytearray(changed[name])
        data[len(data) // 2] ^= 0x01
        changed[name] = bytes(data)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for n, body in changed.items():
                zf.writestr(n, body)
        assert not verify_bundle(out.getvalue(), trust=trust).ok, name


def test_a_bundle_re_signed_under_a_self_made_certificate_is_forged(
    bundle: Path, trust: OperatorTrust,
) -> None:
    attacker = self_made()
    members = _members(bundle)
    for name in [n for n in members if re.fullmatch(r"ledger/checkpoints/\d+\.json", n)]:
        stem = name[:-5]
        members[f"{stem}.sig"] = attacker.sign(members[name])
        members[f"{stem}.pem"] = attacker.pem
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, body in members.items():
            zf.writestr(n, body)
    result = verify_bundle(out.getvalue(), trust=trust)
    assert not result.ok
    assert any("forged" in p and "does not chain" in p for p in result.problems)


def _readme_script(readme: str) -> str:
    """The README's commands, literally: "$ " lines, and a heredoc's body up to its marker."""
    lines: list[str] = []
    marker: str | None = None
    for line in readme.splitlines():
        if marker is not None:
            lines.append(line)
            if line == marker:
                marker = None
        elif line.startswith("$ "):
            lines.append(line[2:])
            match = re.search(r"<<'(\w+)'$", line)
            marker = match.group(1) if match else None
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


@pytest.mark.skipif(not TOOLS, reason="needs xmlsec1, openssl, sha256sum and python3")
def test_the_readme_commands_run_with_stock_xmlsec1_and_openssl(
    bundle: Path, tmp_path: Path,
) -> None:
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    script = _readme_script((folder / "README.txt").read_text("utf-8"))
    # every kind of check is there
    for command in ("sha256sum -c", "xmlsec1 --verify", "openssl verify -attime",
                    "-crl_check -CRLfile", "openssl dgst -sha256 -verify", "python3 -"):
        assert command in script, command
    result = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chain ok" in result.stdout
    # and the same commands fail when the envelope's bytes were changed
    envelope = next((folder / "documents").glob("*.xml"))
    envelope.write_bytes(envelope.read_bytes().replace(b"UBND", b"UBNX", 1))
    result = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode != 0

"""``hub envelope|status build|sign|check``: the integrator kit, driven as a user runs it.

Every command goes through ``hub.ops.cli.main`` with real files: descriptions, attachment
files, the test PKI's keys, a SoftHSM2 token, and a settings file like the one an operator hands
to an agency. ``check`` must give the hub's own verdict, so its cases are the hub's reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.config import with_overrides
from hub.edxml import Envelope, StatusPacket, parse_packet
from hub.ops.cli import main
from hub.ops.envelope_cli import EXIT_CONFIG, EXIT_INDETERMINATE, EXIT_OK, EXIT_REFUSED
from hub.testing.pki import PkiPaths
from hub.trust.signing import minimal_pdf
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    hub_settings,
    make_pki,
    settings_toml,
)
from tests.softhsm import MODULE, softhsm

AT = NOW.isoformat()

LETTER = f"""
[from]
organ_id = "{FINANCE}"
organ_name = "Sở Tài chính tỉnh Hà Tĩnh"

[[to]]
organ_id = "{HOME_AFFAIRS}"
organ_name = "Sở Nội vụ tỉnh Hà Tĩnh"

[document]
number = "215"
notation = "STC-NS"
date = {NOW.date().isoformat()}
place = "Hà Tĩnh"
kind = "cong_van"
subject = "V/v bố trí kinh phí chữ ký số chuyên dùng"
to_places = ["Như trên", "Lưu: VT"]

[signer]
competence = "KT. GIÁM ĐỐC"
position = "Phó Giám đốc"
full_name = "Lê Văn C"

[trace]
timestamp = "{NOW.isoformat()}"

[[attachments]]
file = "cong-van.pdf"
description = "Văn bản chính"
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("kit-pki"))


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cong-van.pdf").write_bytes(minimal_pdf("cong van 215"))
    (tmp_path / "letter.toml").write_text(LETTER, encoding="utf-8")
    return tmp_path


@pytest.fixture
def config(pki: PkiPaths, work: Path) -> Path:
    path = work / "hub.toml"
    path.write_text(settings_toml(hub_settings(pki, work, "amqp://x:x@127.0.0.1:1/", "kit")),
                    encoding="utf-8")
    return path


def _key_args(pki: PkiPaths, organ_id: str) -> list[str]:
    org = pki.organizations[organ_id]
    return ["--key", str(org.key), "--cert", str(org.cert)]


def _check(config: Path, file: str, capsys: pytest.CaptureFixture[str], group: str = "envelope",
           *extra: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["--config", str(config), group, "check", file, "--json", "--at", AT, *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _signed_letter(pki: PkiPaths) -> bytes:
    assert main(["envelope", "build", "letter.toml", "-o", "letter.xml"]) == EXIT_OK
    assert main(["envelope", "sign", "letter.xml", "-o", "letter.signed.xml",
                 *_key_args(pki, FINANCE)]) == EXIT_OK
    return Path("letter.signed.xml").read_bytes()


def test_build_turns_a_toml_description_and_its_files_into_the_envelope_it_describes(
        work: Path) -> None:
    assert main(["envelope", "build", "letter.toml", "-o", "letter.xml"]) == EXIT_OK
    packet = parse_packet((work / "letter.xml").read_bytes())
    assert isinstance(packet, Envelope)
    h = packet.header
    assert h.sender.organ_id == FINANCE
    assert [r.organ_id for r in h.recipients] == [HOME_AFFAIRS]
    assert h.document_id == f"{FINANCE},{NOW:%Y/%m/%d},215/STC-NS"
    assert h.document_type.type == 18
    assert [(a.attachment_name, a.content_type, a.data) for a in packet.attachments] == [
        ("cong-van.pdf", "application/pdf", (work / "cong-van.pdf").read_bytes())]
    # the same description builds the same bytes (content ids are derived, not random)
    assert main(["envelope", "build", "letter.toml", "-o", "again.xml"]) == EXIT_OK
    assert (work / "again.xml").read_bytes() == (work / "letter.xml").read_bytes()


def test_build_reads_the_same_description_written_as_json(work: Path) -> None:
    import tomllib

    (work / "letter.json").write_text(json.dumps(tomllib.loads(LETTER), default=str),
                                      encoding="utf-8")
    assert main(["envelope", "build", "letter.json", "-o", "from-json.xml"]) == EXIT_OK
    assert main(["envelope", "build", "letter.toml", "-o", "from-toml.xml"]) == EXIT_OK
    assert (work / "from-json.xml").read_bytes() == (work / "from-toml.xml").read_bytes()


def test_an_unknown_key_in_a_description_is_one_line_naming_it(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "typo.toml").write_text(LETTER.replace("subject =", "subjet ="), encoding="utf-8")
    assert main(["envelope", "build", "typo.toml", "-o", "x.xml"]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.strip() == "hub: [document]: unknown key 'subjet'"
    assert not (work / "x.xml").exists()


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("latin1.toml", b"\xff", "not UTF-8"),
    ("latin1.json", b'{"from": "S\xf4 T\xe0i ch\xednh"}', "not UTF-8"),
    ("deep.json", b"[" * 100_000, "nested too deeply"),
    ("deep.toml", b"a = " + b"[" * 100_000, "nested too deeply"),
], ids=["TOML not UTF-8", "JSON not UTF-8", "JSON nested too deeply", "TOML nested too deeply"])
def test_a_description_that_cannot_be_read_as_text_is_one_line_naming_it(
        name: str, content: bytes, fragment: str, work: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (work / name).write_bytes(content)
    assert main(["envelope", "build", name, "-o", "x.xml"]) == EXIT_REFUSED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"hub: {name}: ")
    assert fragment in err[0]
    assert "internal error" not in err[0]
    assert not (work / "x.xml").exists()


def test_a_signed_envelope_is_accepted_and_check_shows_what_is_signed_and_the_chain(
        pki: PkiPaths, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    code, report = _check(config, "letter.signed.xml", capsys)
    assert code == EXIT_OK
    assert report["verdict"] == "ACCEPTED"
    assert report["reason"] == "OK"
    assert report["routes"] == [{"organ_id": HOME_AFFAIRS, "via": "direct"}]
    signed = report["signed"]
    assert isinstance(signed, dict)
    assert signed["references"] == [""]
    assert signed["attachments"][0]["name"] == "cong-van.pdf"
    chain = report["chain"]
    assert isinstance(chain, list)
    assert [c["role"] for c in chain] == ["signer", "issuing CA", "trust anchor"]
    assert [c["fingerprint"] for c in chain] == [
        _fingerprint(pki.organizations[FINANCE].cert), _fingerprint(pki.issuing_ca_cert),
        _fingerprint(pki.root_cert)]


def _fingerprint(pem: Path) -> str:
    import hashlib

    from cryptography import x509

    cert = x509.load_pem_x509_certificates(pem.read_bytes())[0]
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_the_text_report_gives_the_verdict_and_the_reason_in_vietnamese_and_english(
        pki: PkiPaths, config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signed = _signed_letter(pki)
    (work / "edited.xml").write_bytes(signed.replace("bố trí".encode(), "cắt giảm".encode()))
    capsys.readouterr()
    code = main(["--config", str(config), "envelope", "check", "edited.xml", "--at", AT])
    out = capsys.readouterr().out
    assert code == EXIT_REFUSED
    from hub.reasons import Reason

    lines = out.splitlines()
    assert lines[0] == "verdict:   REFUSED"
    assert lines[1].startswith("reason:    SIGNATURE_DIGEST_MISMATCH")
    assert Reason.SIGNATURE_DIGEST_MISMATCH.vi in out
    assert Reason.SIGNATURE_DIGEST_MISMATCH.en in out


def test_an_envelope_signed_by_another_organization_s_key_is_refused_for_its_signer(
        pki: PkiPaths, config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envelope", "build", "letter.toml", "-o", "letter.xml"]) == EXIT_OK
    assert main(["envelope", "sign", "letter.xml", "-o", "wrong.xml",
                 *_key_args(pki, HOME_AFFAIRS)]) == EXIT_OK
    code, report = _check(config, "wrong.xml", capsys)
    assert (code, report["reason"]) == (EXIT_REFUSED, "SIGNER_NOT_AUTHORIZED_FOR_SENDER")


def test_a_document_to_a_body_the_directory_does_not_know_is_refused_as_the_hub_would(
        pki: PkiPaths, config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "letter.toml").write_text(LETTER.replace(f'organ_id = "{HOME_AFFAIRS}"',
                                                     'organ_id = "000.00.77.H27"'))
    _signed_letter(pki)
    code, report = _check(config, "letter.signed.xml", capsys)
    assert (code, report["reason"]) == (EXIT_REFUSED, "RECIPIENT_UNKNOWN")


def test_a_file_that_is_not_edxml_is_refused_with_the_parser_s_reason(
        config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "note.xml").write_bytes(b"<?xml version='1.0'?><note>hello</note>")
    code, report = _check(config, "note.xml", capsys)
    assert code == EXIT_REFUSED
    assert report["kind"] == "unreadable"
    assert report["reason"] == "ENVELOPE_NOT_EDXML"


def test_without_revocation_data_the_verdict_is_indeterminate_not_refused(
        pki: PkiPaths, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    no_crls = with_overrides(hub_settings(pki, work, "amqp://x:x@127.0.0.1:1/", "kit"),
                             trust={"crls": []})
    config = work / "no-crls.toml"
    config.write_text(settings_toml(no_crls), encoding="utf-8")
    code, report = _check(config, "letter.signed.xml", capsys)
    assert code == EXIT_INDETERMINATE
    assert report["verdict"] == "INDETERMINATE"
    assert report["reason"] == "REVOCATION_UNAVAILABLE"


def test_signing_twice_is_a_one_line_error(pki: PkiPaths, work: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    capsys.readouterr()
    code = main(["envelope", "sign", "letter.signed.xml", "-o", "twice.xml",
                 *_key_args(pki, FINANCE)])
    err = capsys.readouterr().err
    assert code == EXIT_REFUSED
    assert len(err.strip().splitlines()) == 1
    assert "placeholder" in err


def test_a_status_answering_a_document_is_built_signed_and_accepted(
        pki: PkiPaths, config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    assert main(["status", "build", "--answer", "letter.signed.xml", "--code", "03",
                 "-o", "status.xml"]) == EXIT_OK
    status = parse_packet((work / "status.xml").read_bytes())
    assert isinstance(status, StatusPacket)
    assert status.sender.organ_id == HOME_AFFAIRS
    assert status.status_code == "03"
    assert status.response_for.document_id == f"{FINANCE},{NOW:%Y/%m/%d},215/STC-NS"
    assert main(["status", "sign", "status.xml", "-o", "status.signed.xml",
                 *_key_args(pki, HOME_AFFAIRS)]) == EXIT_OK
    code, report = _check(config, "status.signed.xml", capsys, "status")
    assert (code, report["verdict"], report["kind"]) == (EXIT_OK, "ACCEPTED", "status")


def test_a_status_code_outside_qcvn_102_cannot_be_built(
        pki: PkiPaths, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    code = main(["status", "build", "--answer", "letter.signed.xml", "--code", "00",
                 "-o", "status.xml"])
    assert code == EXIT_REFUSED
    assert "not a QCVN 102 status code" in capsys.readouterr().err


def test_each_command_group_refuses_the_other_kind_of_packet(
        pki: PkiPaths, config: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _signed_letter(pki)
    capsys.readouterr()
    assert main(["--config", str(config), "status", "check", "letter.signed.xml"]) \
        == EXIT_REFUSED
    assert "use `hub envelope check`" in capsys.readouterr().err
    assert main(["status", "sign", "letter.xml", "-o", "x.xml",
                 *_key_args(pki, FINANCE)]) == EXIT_REFUSED
    assert "is a document packet: use `hub envelope …`" in capsys.readouterr().err


@pytest.fixture
def finance_token(pki: PkiPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[str]:
    """FINANCE's seal key on a SoftHSM2 token (its certificates on the token too)."""
    org = pki.organizations[FINANCE]
    key = serialization.load_pem_private_key(org.key.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    from cryptography import x509

    certs = x509.load_pem_x509_certificates(org.cert.read_bytes())
    with softhsm(tmp_path / "hsm") as hsm:
        hsm.add_token("so-tai-chinh", "135790", key, "seal", certificates=certs)
        hsm.ready()
        monkeypatch.setenv("TOKEN_PIN", "135790")
        yield "so-tai-chinh"


def test_sign_with_a_pkcs11_token_gives_the_same_bytes_as_the_key_file(
        pki: PkiPaths, config: Path, work: Path, finance_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    with_file = _signed_letter(pki)
    assert main(["envelope", "sign", "letter.xml", "-o", "token.xml", "--pkcs11-module", MODULE,
                 "--token-label", finance_token, "--key-label", "seal",
                 "--pin-env", "TOKEN_PIN"]) == EXIT_OK
    assert (work / "token.xml").read_bytes() == with_file
    code, report = _check(config, "token.xml", capsys)
    assert (code, report["verdict"]) == (EXIT_OK, "ACCEPTED")


def test_a_wrong_token_pin_is_a_configuration_error_that_does_not_echo_it(
        work: Path, finance_token: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["envelope", "build", "letter.toml", "-o", "letter.xml"]) == EXIT_OK
    monkeypatch.setenv("TOKEN_PIN", "000000")
    capsys.readouterr()
    code = main(["envelope", "sign", "letter.xml", "-o", "token.xml", "--pkcs11-module", MODULE,
                 "--token-label", finance_token, "--key-label", "seal", "--pin-env",
                 "TOKEN_PIN"])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert "PIN was refused" in err
    assert "000000" not in err

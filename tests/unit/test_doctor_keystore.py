"""``hub doctor`` judges the hub's own signing certificates as receivers judge them (review r2).

The hub signs every receipt and ledger checkpoint with its operator key, and "01" receipts
with the keys of the bodies it hosts. A key whose certificate receivers refuse (revoked, not yet
valid, outside the specialized roots, another body's, carrying a foreign chain) made every one
of those refused — and the keystore check said "ok". The check now signs a probe status packet
with each key and runs it through the hub's own trust service (the envelope path's
validators); the reason code of a refusal is in the check's one line. Real test PKI, real
keys, real signatures, the configured CRLs.
"""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

import pytest
import structlog.testing

from hub.app import build_hub
from hub.config import Settings, load_settings, with_overrides
from hub.directory import Directory
from hub.ops.cli import EXIT_CONFIG, EXIT_FAILURE, _judge_keys
from hub.ops.cli import main as hub_main
from hub.ops.health import check_keystore
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.trust import signing
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("doctor-pki"))


@pytest.fixture(autouse=True)
def _one_keystore_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test stands for a hub process of its own: the KeyInfo texts signing memoizes per
    leaf certificate start empty (two tests here hold the same leaf with other chains)."""
    monkeypatch.setattr(signing, "_CERT_TEXTS", {})


def _settings(pki: PkiPaths, tmp: Path, keystore: Path, **hub: str) -> Settings:
    return with_overrides(hub_settings(pki, tmp, "amqp://guest:guest@127.0.0.1:1/", "doctor"),
                          hub={"keystore": str(keystore), "operator_organ_id": PROVINCE, **hub})


def _keystore(tmp: Path, pairs: dict[str, tuple[bytes, Path]]) -> Path:
    """A keystore directory: organization → (certificate file bytes, key file)."""
    directory = tmp / "keystore"
    directory.mkdir()
    for organ_id, (cert, key) in pairs.items():
        (directory / f"{organ_id}.pem").write_bytes(cert)
        shutil.copy(key, directory / f"{organ_id}.key.pem")
    return directory


def _operator(pki: PkiPaths, tmp: Path, case: str) -> Path:
    """A keystore whose operator pair is the case's (always a key matching its certificate)."""
    genuine = pki.organizations[PROVINCE]
    if case == "foreign chain":  # the genuine leaf, then a public CA instead of its issuer
        leaf = genuine.cert.read_bytes().split(b"-----END CERTIFICATE-----")[0]
        chain = leaf + b"-----END CERTIFICATE-----\n" + pki.public_ca_cert.read_bytes()
        return _keystore(tmp, {PROVINCE: (chain, genuine.key)})
    issued = {"self-signed": pki.self_signed,
              "another body's": pki.organizations[HOME_AFFAIRS]}.get(case)
    if issued is None:
        issued = pki.special[case]
    return _keystore(tmp, {PROVINCE: (issued.cert.read_bytes(), issued.key)})


def test_a_keystore_whose_certificates_receivers_accept_is_healthy(
        pki: PkiPaths, tmp_path: Path) -> None:
    # Given the test PKI's keystore: the operator's key and the hosted bodies' keys
    settings = _settings(pki, tmp_path, pki.keystore)
    # When doctor checks it at a time its certificates and CRLs are valid
    line = check_keystore(settings, now=NOW)
    # Then every key is judged as receivers judge it, and passes — but for those of bodies the
    # directory does not list on that day (merged on 1 March 2025, or communes from 1 July
    # 2025), named as keys the hub never signs with
    unused = ["000.00.14.H27", "H27.101", "H27.102"]
    assert line.startswith(f"{len(pki.organizations) - len(unused)} organization key(s) "
                           "accepted as receivers judge them"), line
    assert "operator certificate valid" in line
    assert line.endswith(f"not in the directory now (never signed for): {', '.join(unused)}")


CASES = {
    "revoked": "CERT_REVOKED",
    "not_yet_valid": "CERT_NOT_YET_VALID",
    "expired": "CERT_EXPIRED",
    "wrong_key_usage": "CERT_KEY_USAGE_INVALID",
    "no_policy": "CERT_POLICY_MISSING",
    "rsa1024": "SIGNATURE_KEY_TOO_WEAK",
    "self-signed": "CERT_SELF_SIGNED",
    "another body's": "SIGNER_NOT_AUTHORIZED_FOR_SENDER",
    "foreign chain": "CERT_PATH_INVALID",
}


@pytest.mark.parametrize(("case", "reason"), list(CASES.items()), ids=list(CASES))
def test_an_operator_certificate_receivers_refuse_fails_the_check_with_their_reason(
        pki: PkiPaths, tmp_path: Path, case: str, reason: str) -> None:
    # Given an operator key whose certificate receivers refuse
    settings = _settings(pki, tmp_path, _operator(pki, tmp_path, case))
    # When doctor checks the keystore
    with pytest.raises(ValueError, match="receivers would not accept") as refused:
        check_keystore(settings, now=NOW)
    # Then the check fails with the validators' own reason, naming the operator
    line = str(refused.value)
    assert f"{PROVINCE} (operator): {reason}" in line, line
    assert "\n" not in line


def test_a_hosted_body_s_key_is_judged_too(pki: PkiPaths, tmp_path: Path) -> None:
    # Given the genuine operator pair, and under the Department of Finance's name the pair of
    # the Department of Home Affairs (its "01" receipts would be refused)
    operator = pki.organizations[PROVINCE]
    other = pki.organizations[HOME_AFFAIRS]
    keystore = _keystore(tmp_path, {PROVINCE: (operator.cert.read_bytes(), operator.key),
                                    FINANCE: (other.cert.read_bytes(), other.key)})
    # When doctor checks the keystore, Then it names that body and the reason
    with pytest.raises(ValueError, match="receivers would not accept") as refused:
        check_keystore(_settings(pki, tmp_path, keystore), now=NOW)
    assert f"{FINANCE}: SIGNER_NOT_AUTHORIZED_FOR_SENDER" in str(refused.value)
    assert f"{PROVINCE} (operator)" not in str(refused.value)


def test_a_key_of_a_body_the_directory_does_not_list_is_named_not_failed(
        pki: PkiPaths, tmp_path: Path) -> None:
    # Given a directory listing the province alone, and a keystore with the province's key and
    # the Department of Finance's (a body the hub never signs for, then)
    sample = (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text(
        encoding="utf-8")
    province_only = sample.split("[[org]]")[1]
    directory = tmp_path / "directory.toml"
    directory.write_text("[[org]]" + province_only, encoding="utf-8")
    operator = pki.organizations[PROVINCE]
    finance = pki.organizations[FINANCE]
    keystore = _keystore(tmp_path, {PROVINCE: (operator.cert.read_bytes(), operator.key),
                                    FINANCE: (finance.cert.read_bytes(), finance.key)})
    settings = _settings(pki, tmp_path, keystore, directory=str(directory))
    # When doctor checks the keystore, Then it passes and says which key is not used
    line = check_keystore(settings, now=NOW)
    assert line.startswith("1 organization key(s) accepted"), line
    assert line.endswith(f"not in the directory now (never signed for): {FINANCE}"), line


def test_doctor_prints_the_refusal_in_the_keystore_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a configuration whose operator certificate is revoked (a PKI issued now: the
    # command judges at the time it runs)
    pki = init_pki(tmp_path / "pki", Directory.sample(), keys=KeyCache())
    keystore = _operator(pki, tmp_path, "revoked")
    config = tmp_path / "hub.toml"
    config.write_text(
        "[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
        f"[hub]\nkeystore = '{keystore}'\noperator_organ_id = '{PROVINCE}'\n"
        f"[trust]\nroots = ['{pki.root_cert}']\nintermediates = ['{pki.issuing_ca_cert}']\n"
        f"crls = ['{pki.crl_der}', '{pki.root_crl_der}']\nfetch_crls = false\n"
        f"policy_oids = ['{pki.policy_oid}']\n", encoding="utf-8")
    # When the operator runs hub doctor
    assert hub_main(["--config", str(config), "doctor"]) == EXIT_FAILURE
    # Then the keystore line fails with the reason code, in one line
    lines = capsys.readouterr().out.splitlines()
    keystore_lines = [line for line in lines if line[5:].startswith("keystore:")]
    assert len(keystore_lines) == 1, lines
    assert keystore_lines[0].startswith("FAIL keystore: receivers would not accept")
    assert f"{PROVINCE} (operator): CERT_REVOKED" in keystore_lines[0]


def _run_config(pki: PkiPaths, tmp: Path, keystore: Path) -> Path:
    """A configuration for ``hub run`` whose broker never answers (port 1): a run that gets
    past its start-up checks ends at the broker, unavailable."""
    config = tmp / "hub.toml"
    config.write_text(
        "[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
        f"[hub]\nkeystore = '{keystore}'\noperator_organ_id = '{PROVINCE}'\n"
        "signer_processes = 0\n"
        f"[trust]\nroots = ['{pki.root_cert}']\nintermediates = ['{pki.issuing_ca_cert}']\n"
        f"crls = ['{pki.crl_der}', '{pki.root_crl_der}']\nfetch_crls = false\n"
        f"policy_oids = ['{pki.policy_oid}']\n"
        f"[ledger]\nurl = 'sqlite:///{tmp / 'ledger.sqlite3'}'\n", encoding="utf-8")
    return config


def test_hub_run_refuses_to_start_with_an_operator_certificate_receivers_refuse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a configuration whose operator certificate is revoked (a PKI issued now)
    pki = init_pki(tmp_path / "pki", Directory.sample(), keys=KeyCache())
    config = _run_config(pki, tmp_path, _operator(pki, tmp_path, "revoked"))
    # When the operator starts the hub
    code = hub_main(["--config", str(config), "run"])
    # Then it stays down as for any unusable configuration (systemd does not restart it): it
    # would have signed every receipt and checkpoint with a certificate receivers refuse
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("hub: configuration: receivers would not accept")
    assert f"{PROVINCE} (operator): CERT_REVOKED" in err


def test_hub_run_starts_with_a_hosted_body_s_refused_key_and_names_it(
        tmp_path: Path) -> None:
    # Given the genuine operator pair, and under the Department of Finance's name the pair of
    # the Department of Home Affairs (its "01" receipts would be refused; every other body's
    # documents still flow)
    pki = init_pki(tmp_path / "pki", Directory.sample(), keys=KeyCache())
    operator = pki.organizations[PROVINCE]
    other = pki.organizations[HOME_AFFAIRS]
    keystore = _keystore(tmp_path, {PROVINCE: (operator.cert.read_bytes(), operator.key),
                                    FINANCE: (other.cert.read_bytes(), other.key)})
    hub = build_hub(load_settings(_run_config(pki, tmp_path, keystore)))
    try:
        # When `hub run` judges its keys at start
        with structlog.testing.capture_logs() as logs:
            _judge_keys(hub)
    finally:
        hub.close()
    # Then it starts, and has said which key receivers refuse, and why
    refused = [e for e in logs if e["event"] == "keystore_key_refused"]
    assert [(e["organ_id"], e["reason"], e["operator"]) for e in refused] == [
        (FINANCE, "SIGNER_NOT_AUTHORIZED_FOR_SENDER", False)]

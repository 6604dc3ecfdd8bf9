"""The subscriber report counts one body once, whichever of its codes the registry writes.

The office's spreadsheet may write an organization's legacy QCVN 102:2016 code
(``000.00.02.H27``) or its Decision 20/2020/QĐ-TTg code (``H27.02``) — the registry's docs say
either. The directory knows both are one body, and the certificates of its seal carry the
legacy code in their subject UID. The real pipeline writes the ledger (in process, real PKI);
the report, the notices and the CLI are checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from hub.app import Hub
from hub.directory import Directory
from hub.ledger import Ledger
from hub.ledger.subscribers import import_registry
from hub.ledger.subscribers_report import ALL, notices, plan_report
from hub.ops.cli import main
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    hub_in_process,
    hub_settings,
    plan_and_write,
    settings_toml,
    signed_envelope,
)

CA = "CA phục vụ các cơ quan Nhà nước G2 (TEST)"


def _serial(pki: PkiPaths, organ: str) -> str:
    cert = x509.load_pem_x509_certificates(pki.organizations[organ].cert.read_bytes())[0]
    return f"{cert.serial_number:x}"


def _registry(pki: PkiPaths) -> bytes:
    """Home Affairs under its new code (its seal's certificate not recorded), its head under
    the legacy code and a deputy under the new one; Finance's people under both codes."""
    return ("identifier,kind,name,position,organ_id,serial,issuer,valid_from,valid_to,status\n"
            "H27.02,organization,Sở Nội vụ,,H27.02,,,,,requested\n"
            f"CCCD:042080000004,person,Phạm Thị Dung,head,{HOME_AFFAIRS},,,,,\n"
            "CCCD:042080000012,person,Trần Văn C,deputy,H27.02,,,,,\n"
            f"H27.03,organization,Sở Tài chính,,H27.03,{_serial(pki, FINANCE)},{CA},"
            "2025-01-01,2025-03-20,issued\n"
            "CCCD:042080000005,person,Hoàng Văn Em,head,H27.03,,,,,\n"
            f"CCCD:042080000099,person,Nguyễn Văn B,deputy,{FINANCE},,,,,\n").encode()


@pytest.fixture
def ledger_url_with_mix(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path
                        ) -> tuple[str, Path]:
    """Home Affairs' seal signs an accepted envelope; Finance's certificate is recorded but
    never used; the registry imported. (ledger URL, settings file)."""
    keystore = Keystore.load(pipeline_pki.keystore)
    hub: Hub
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "subscriber-codes") as hub:
        plan_and_write(hub, [(signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,)), False)], 1)
        import_registry(hub.ledger, _registry(pipeline_pki), source="thue-bao.csv", now=NOW)
    settings = hub_settings(pipeline_pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/",
                            "subscriber-codes", ledger_url=ledger_url)
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    return ledger_url, config


def test_one_body_is_one_organization_row_whichever_code_the_registry_writes(
    ledger_url_with_mix: tuple[str, Path],
) -> None:
    url, _ = ledger_url_with_mix
    # When the report is computed with the directory
    with Ledger.open(url) as ledger:
        report = plan_report(ledger, at=NOW, directory=Directory.sample())
    # Then each body is one row under its primary code, naming the codes the registry wrote
    rows = {r.organ_id: r for r in report.organizations}
    assert set(rows) == {HOME_AFFAIRS, FINANCE, ALL}
    assert rows[HOME_AFFAIRS].leaders.total == 2
    assert rows[FINANCE].leaders.total == 2
    assert rows[HOME_AFFAIRS].written_as == ("H27.02",)
    assert rows[ALL].leaders.total == 4
    # and the certificates keep the code as the office wrote it
    assert [(c.identifier, c.organ_id) for c in report.never_used] == [("H27.03", "H27.03")]


def test_a_seal_signing_under_the_legacy_code_is_the_subscriber_registered_under_the_new_one(
    ledger_url_with_mix: tuple[str, Path],
) -> None:
    url, _ = ledger_url_with_mix
    with Ledger.open(url) as ledger:
        report = plan_report(ledger, at=NOW, directory=Directory.sample())
    # The seal's certificate is not recorded: listed for review, under the body that signed
    [seal] = [u for u in report.unknown if u.uid == HOME_AFFAIRS]
    assert seal.subscriber == "H27.02"


def test_the_daily_notices_of_one_body_are_one_list(
    ledger_url_with_mix: tuple[str, Path],
) -> None:
    url, _ = ledger_url_with_mix
    with Ledger.open(url) as ledger:
        found = notices(ledger, at=NOW, within_days=30, directory=Directory.sample())
    # Finance's certificate (written under H27.03) expires in 17 days and was never used
    assert list(found) == [FINANCE]
    assert sorted(n.notice for n in found[FINANCE]) == ["expiring", "never_signed"]
    assert {n.certificate.organ_id for n in found[FINANCE]} == {"H27.03"}


def test_the_cli_report_reads_the_configured_directory(
    ledger_url_with_mix: tuple[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    url, config = ledger_url_with_mix
    assert main(["--config", str(config), "subscribers", "report", "--at", NOW.isoformat(),
                 "--format", "json", "--no-sync"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with Ledger.open(url, read_only=True) as ledger:
        library = plan_report(ledger, at=NOW, sync=False, directory=Directory.sample())
    assert printed == library.to_dict()
    assert {r["organ_id"] for r in printed["organizations"]} == {HOME_AFFAIRS, FINANCE, ALL}

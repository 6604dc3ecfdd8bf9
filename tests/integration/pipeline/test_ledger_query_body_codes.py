"""``hub ledger query --organ`` finds a body's documents by any of its codes.

A body has two codes in the directory (QCVN 102:2016 ``000.00.02.H27`` and Decision
20/2020/QĐ-TTg ``H27.02``). The ledger records a recipient under its primary code and a sender as
its envelope writes it, so a clerk searching by either code must be answered through the
directory. The real pipeline writes the ledger (in process), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.app import Hub
from hub.ledger.search import organ_codes
from hub.ops.cli import EXIT_OK
from hub.ops.cli import main as hub_main
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    hub_in_process,
    hub_settings,
    plan_and_write,
    settings_toml,
    signed_envelope,
)


@pytest.fixture
def config(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Path:
    """A ledger holding a document from Finance to Home Affairs, addressed as ``H27.02``, and a
    document Home Affairs sent writing its own code as ``H27.02``; the settings file for it."""
    keystore = Keystore.load(pipeline_pki.keystore)
    hub: Hub
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "query-codes") as hub:
        to_alias = signed_envelope(keystore, FINANCE, ("H27.02",), number="77")
        from_alias = sign_as(keystore, "H27.02", HOME_AFFAIRS, FINANCE, "78")
        plan_and_write(hub, [(to_alias, False), (from_alias, False)], 1)
        kinds = {(d.sender, d.kind) for d in hub.ledger.documents()}
        assert ("H27.02", "envelope") in kinds, kinds  # accepted, its sender as written
    settings = hub_settings(pipeline_pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/",
                            "query-codes", ledger_url=ledger_url)
    path = tmp_path / "hub.toml"
    path.write_text(settings_toml(settings), encoding="utf-8")
    return path


def sign_as(keystore: Keystore, written: str, organ: str, to: str, number: str) -> bytes:
    """An envelope whose From is ``written`` (another code of ``organ``), signed by ``organ``."""
    from hub.edxml.build import build_envelope, sample_header
    from hub.trust.signing import sign_xml
    from tests.integration.pipeline.harness import NOW

    signer = keystore.signer(organ)
    assert signer is not None
    header = sample_header(written, (to,), number=number, promulgation_date=NOW.date())
    return sign_xml(build_envelope(header), signer)


def _query(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, str]]:
    assert hub_main(["ledger", "query", "--config", str(config), "--json", *args]) == EXIT_OK
    rows: list[dict[str, str]] = json.loads(capsys.readouterr().out)
    return rows


@pytest.mark.parametrize("organ", [HOME_AFFAIRS, "H27.02"])
def test_either_code_of_a_body_lists_the_documents_it_sent_and_received(
    config: Path, capsys: pytest.CaptureFixture[str], organ: str,
) -> None:
    # Given a document to Home Affairs written "H27.02" and one from it written "H27.02"
    # When a clerk searches the documents by one of its two codes
    rows = _query(config, capsys, "--documents", "--organ", organ)
    # Then both documents are listed, each once
    envelopes = sorted(r["document_id"].split(",")[-1] for r in rows if r["kind"] == "envelope")
    assert envelopes == ["77/UBND-VP", "78/UBND-VP"]


def test_either_code_of_a_body_lists_the_same_events(
    config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # When the events are searched by each code of Home Affairs
    legacy = _query(config, capsys, "--organ", HOME_AFFAIRS)
    electronic = _query(config, capsys, "--organ", "H27.02")
    # Then both list the same events, the delivery to it (recorded under its primary code) too
    assert legacy == electronic
    assert ("delivered", HOME_AFFAIRS) in {(r["kind"], r["organ_id"]) for r in legacy}
    assert [r["seq"] for r in legacy] == sorted(r["seq"] for r in legacy)


def test_a_code_the_directory_does_not_know_is_searched_as_written(
    config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert _query(config, capsys, "--documents", "--organ", "H27.999") == []


def test_a_code_resolves_to_every_code_of_the_bodies_that_held_it() -> None:
    from hub.directory import Directory

    directory = Directory.sample()
    assert organ_codes(directory, "H27.02") == (HOME_AFFAIRS, "H27.02")
    assert organ_codes(directory, HOME_AFFAIRS) == (HOME_AFFAIRS, "H27.02")
    assert organ_codes(directory, "H27.999") == ("H27.999",)


@pytest.mark.parametrize(("field", "organ", "number"), [
    ("recipient", "H27.02", "77"), ("sender", HOME_AFFAIRS, "78")])
def test_the_consoles_ledger_search_finds_a_body_by_either_code(
    config: Path, tmp_path: Path, field: str, organ: str, number: str,
) -> None:
    from hub.config import load_settings
    from hub.console.web import create_app
    from tests.unit.console.conftest import TestClient, open_console, sign_in

    # Given the console on that ledger, an auditor signed in
    services, users = open_console(load_settings(config), tmp_path)
    try:
        with TestClient(create_app(services, users), base_url="https://console.test") as client:
            sign_in(client, "kiemtoan")
            # When the auditor searches by the other code of the body the ledger recorded
            page = client.get(f"/ledger?{field}={organ}")
            # Then the document is listed
            assert page.status_code == 200
            assert f"{number}/UBND-VP" in page.text
    finally:
        services.close()
        users.close()

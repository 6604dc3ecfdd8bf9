"""The subscriber registry in the ledger's database, on SQLite and PostgreSQL (issue 21):
an import applies every row or none, records every change with its source, and keeps a
revoked certificate revoked; the CLI lists the problems and changes nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.subscribers import (
    RegistryError,
    export_registry,
    history,
    import_registry,
    registry,
)
from hub.ops.cli import main

CA = "CA phục vụ các cơ quan Nhà nước G2 (TEST)"
HEADER = ("Số định danh,Loại thuê bao,Họ và tên,Chức vụ,Mã đơn vị,Số hiệu chứng thư,Tổ chức cấp,"
          "Hiệu lực từ ngày,Hiệu lực đến ngày,Trạng thái,Ngày trạng thái")
AN = (f"CCCD:042080000001,cá nhân,Nguyễn Văn An,thủ trưởng,000.00.00.H27,0A 1B,{CA},01/02/2025,"
      "01/02/2027,đã bàn giao,")
BINH = "CCCD:042080000002,cá nhân,Trần Thị Bình,cấp phó,000.00.00.H27,,,,,đề nghị cấp,"
SEAL = (f"000.00.00.H27,tổ chức,UBND tỉnh Hà Tĩnh,,000.00.00.H27,FF 01,{CA},01/01/2025,"
        "01/01/2027,đã cấp,")


def sheet(*rows: str) -> bytes:
    return ("\r\n".join((HEADER, *rows)) + "\r\n").encode("utf-8-sig")


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    opened = Ledger.open(ledger_url)
    import_registry(opened, sheet(AN, BINH, SEAL), source="thang-1.csv")
    return opened


def _state(ledger: Ledger) -> tuple[bytes, list[dict[str, object]]]:
    return export_registry(ledger, headers="en"), [h.to_dict() for h in history(ledger)]


def test_a_malformed_sheet_names_row_and_column_and_changes_nothing(ledger: Ledger) -> None:
    before = _state(ledger)
    # Given a sheet whose row 2 is a valid change and row 4 has a date that does not exist
    bad = sheet(AN.replace("thủ trưởng", "cấp phó"), BINH,
                SEAL.replace("01/01/2027", "31/02/2027"))
    with pytest.raises(RegistryError) as caught:
        import_registry(ledger, bad, source="thang-2.csv")
    # Then the error names the row and the column as the office wrote it
    [problem] = caught.value.errors
    assert (problem.row, problem.column) == (4, "Hiệu lực đến ngày")
    assert "thang-2.csv: 1 error, nothing imported; first: row 4" in str(caught.value)
    # And nothing was written, not even row 2's change
    assert _state(ledger) == before
    ledger.close()


def test_a_conflict_with_the_stored_registry_rolls_back_the_rows_already_applied(
    ledger: Ledger,
) -> None:
    before = _state(ledger)
    # Row 2 adds a subscriber (applied inside the transaction); row 3 claims An's certificate
    newcomer = "CCCD:042080000009,cá nhân,Lê Chín,chuyên viên,000.00.00.H27,,,,,,"
    thief = (f"CCCD:042080000008,cá nhân,Đỗ Tám,văn thư,000.00.00.H27,0a1b,{CA},01/02/2025,"
             "01/02/2027,đã cấp,")
    with pytest.raises(RegistryError) as caught:
        import_registry(ledger, sheet(newcomer, thief), source="thang-3.csv")
    [problem] = caught.value.errors
    assert (problem.row, problem.column) == (3, "Số hiệu chứng thư")
    assert "registered to CCCD:042080000001" in problem.message
    assert _state(ledger) == before
    assert "CCCD:042080000009" not in registry(ledger).subscribers
    ledger.close()


def test_every_change_is_recorded_with_its_file_and_the_day_it_took_effect(
    ledger: Ledger,
) -> None:
    result = import_registry(ledger, sheet(
        AN.replace("thủ trưởng", "cấp phó").replace("đã bàn giao,", "đã thu hồi,15/03/2025"),
        BINH, SEAL), source="thang-4.csv")
    assert (result.subscribers_updated, result.certificates_updated, result.changes) == (1, 1, 3)
    changes = [(h.field, h.old, h.new, h.effective) for h in history(ledger, "CCCD:042080000001")
               if h.source.startswith("import thang-4.csv sha256:")]
    assert changes == [("position", "head", "deputy", None),
                       ("status", "handed_over", "revoked", date(2025, 3, 15)),
                       ("status_date", None, "2025-03-15", None)]
    # The first import's entries come first, in the order they were made
    first = history(ledger, "CCCD:042080000001")[0]
    assert (first.field, first.new) == ("created", "person head 000.00.00.H27")
    ledger.close()


def test_a_revoked_certificate_stays_revoked(ledger: Ledger) -> None:
    import_registry(ledger, sheet(AN.replace("đã bàn giao,", "đã thu hồi,15/03/2025")),
                    source="thu-hoi.csv")
    with pytest.raises(RegistryError) as caught:
        import_registry(ledger, sheet(AN), source="nham.csv")
    [problem] = caught.value.errors
    assert (problem.row, problem.column) == (2, "Trạng thái")
    assert "was revoked on 2025-03-15" in problem.message
    [cert] = [c for c in registry(ledger).certificates if c.identifier == "CCCD:042080000001"]
    assert cert.status == "revoked"
    ledger.close()


def test_a_request_becomes_the_certificate_issued_for_it(ledger: Ledger) -> None:
    [request] = [c for c in registry(ledger).certificates if c.identifier == "CCCD:042080000002"]
    assert (request.serial, request.status) == (None, "requested")
    issued = BINH.replace(",,,,,đề nghị cấp,", f",0C 0D,{CA},10/03/2025,10/03/2027,đã cấp,")
    import_registry(ledger, sheet(issued), source="cap-moi.csv")
    [cert] = [c for c in registry(ledger).certificates if c.identifier == "CCCD:042080000002"]
    assert (cert.id, cert.serial, cert.status, cert.valid_to) == (
        request.id, "c0d", "issued", date(2027, 3, 10))
    ledger.close()


def test_the_cli_lists_every_problem_and_says_nothing_was_imported_in_one_line(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    before = _state(ledger)
    bad = tmp_path / "sai.csv"
    bad.write_bytes(sheet(AN.replace("thủ trưởng", "giám đốc"), BINH.replace("000.00.00.H27", "X")))
    code = main(["subscribers", "import", str(bad), "--url", ledger_url])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        "row 2, column 'Chức vụ': 'giám đốc' is not one of: head (thủ trưởng), deputy (cấp phó),"
        " division_head (trưởng phòng), specialist (chuyên viên), clerk (văn thư)",
        "row 3, column 'Mã đơn vị': 'X' is not an organization code (e.g. 000.00.01.H27 or"
        " H27.01)"]
    [line] = err.splitlines()
    assert line.startswith("hub: sai.csv: 2 errors, nothing imported; first: row 2")
    assert _state(ledger) == before
    # --dry-run checks a good sheet without importing it
    good = tmp_path / "dung.csv"
    good.write_bytes(sheet("CCCD:042080000007,cá nhân,Đặng Văn Hải,thủ trưởng,000.00.15.H27"
                           ",,,,,,"))
    assert main(["subscribers", "import", str(good), "--dry-run", "--url", ledger_url]) == 0
    assert "1 rows, no error" in capsys.readouterr().out
    assert _state(ledger) == before
    ledger.close()


def test_the_registry_commands_never_create_a_ledger(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    assert main(["subscribers", "report", "--url", f"sqlite:///{missing}"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "no ledger at" in line
    assert not missing.exists()


def test_a_request_and_its_certificate_in_one_sheet_become_one_certificate(
    ledger_url: str,
) -> None:
    request = "CCCD:042080000005,cá nhân,Hoàng Văn Em,thủ trưởng,000.00.03.H27,,,,,đề nghị cấp,"
    issued = request.replace(",,,,,đề nghị cấp,", f",0E 0F,{CA},10/03/2025,10/03/2027,đã cấp,")
    with Ledger.open(ledger_url) as fresh:
        result = import_registry(fresh, sheet(request, AN, SEAL, issued), source="mot-lan.csv")
        assert result.certificates_created == 3
        [cert] = [c for c in registry(fresh).certificates if c.identifier == "CCCD:042080000005"]
        assert (cert.serial, cert.status) == ("e0f", "issued")

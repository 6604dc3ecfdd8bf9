"""The office's subscriber spreadsheet (issue 21): what is accepted, and every problem named by
spreadsheet row and column as the file spells it (no database here; the import's transaction
is tested in ``tests/integration/ledger/test_subscribers_registry.py``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hub.ledger.subscribers import (
    RegistryError,
    issuer_key,
    normalize_serial,
    parse_day,
    parse_registry_csv,
    signatures_in_report,
)
from hub.validators import validate_packet
from tests.pki_fixtures import AXIS_PERSON, AXIS_SENDER, GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import PERSON, RECIPIENT, SENDER, Vectors, build

CA = "CA phục vụ các cơ quan Nhà nước G2"
EN_HEADER = "identifier,kind,name,position,organ_id,serial,issuer,valid_from,valid_to,status"
GOOD_EN = f"CCCD:042080000001,person,Nguyễn Văn An,head,000.00.00.H27,0a1b,{CA},2025-01-01,2027-01-01,issued"


def sheet(*lines: str, bom: bool = False) -> bytes:
    return ("\ufeff" if bom else "").encode() + ("\n".join(lines) + "\n").encode("utf-8")


def problems(data: bytes) -> list[tuple[int, str, str]]:
    with pytest.raises(RegistryError) as caught:
        parse_registry_csv(data, "thue-bao.csv")
    return [(e.row, e.column, e.message) for e in caught.value.errors]


def test_english_headers_with_iso_dates_are_read() -> None:
    [row] = parse_registry_csv(sheet(EN_HEADER, GOOD_EN))
    assert (row.row, row.identifier, row.kind, row.position, row.organ_id) == (
        2, "CCCD:042080000001", "person", "head", "000.00.00.H27")
    assert (row.serial, row.issuer, row.valid_from, row.valid_to, row.status) == (
        "a1b", CA, date(2025, 1, 1), date(2027, 1, 1), "issued")


def test_vietnamese_headers_values_day_first_dates_semicolons_and_the_excel_bom_are_read() -> None:
    data = sheet("STT;Số định danh;Loại thuê bao;Họ và tên;Chức vụ;Mã đơn vị;Số hiệu chứng thư;"
                 "Tổ chức cấp;Hiệu lực từ ngày;Hiệu lực đến ngày;Trạng thái;Ngày trạng thái;"
                 "Ghi chú",
                 f"1;CCCD:042080000002;Cá nhân;Trần Thị Bình;CẤP PHÓ;H27.01;0A:1B:FF;{CA};"
                 "1/2/2025;31/01/2027;Đã bàn giao;05/02/2025;nhận tại Văn phòng",
                 ";;;;;;;;;;;;", bom=True)
    [row] = parse_registry_csv(data)
    assert (row.position, row.organ_id, row.serial, row.status) == (
        "deputy", "H27.01", "a1bff", "handed_over")
    assert (row.valid_from, row.valid_to, row.status_date) == (
        date(2025, 2, 1), date(2027, 1, 31), date(2025, 2, 5))


def test_a_subscriber_without_a_certificate_and_a_pending_request_are_rows_too() -> None:
    rows = parse_registry_csv(sheet(
        EN_HEADER,
        "CCCD:042080000003,person,Lê Văn Cường,specialist,000.00.01.H27,,,,,",
        "CCCD:042080000004,person,Phạm Thị Dung,clerk,000.00.01.H27,,,,,requested"))
    assert [(r.has_certificate, r.serial, r.status) for r in rows] == [
        (False, None, None), (True, None, "requested")]


@pytest.mark.parametrize(("cells", "column", "says"), [
    ("CCCD:1,person,An,boss,000.00.00.H27,,,,,", "position", "'boss' is not one of"),
    ("CCCD:1,person,An,,000.00.00.H27,,,,,", "position", "a person needs a position"),
    ("000.00.00.H27,organization,UBND,head,000.00.00.H27,,,,,", "position",
     "an organization has no position"),
    ("H27,organization,UBND,,000.00.00.H27,,,,,", "identifier", "its code"),
    ("CCCD:1,person,,head,000.00.00.H27,,,,,", "name", "required"),
    ("CCCD:1,person,An,head,27-H,,,,,", "organ_id", "not an organization code"),
    ("CCCD:1,robot,An,head,000.00.00.H27,,,,,", "kind", "'robot' is not one of"),
    (f"CCCD:1,person,An,head,000.00.00.H27,xyz,{CA},2025-01-01,2026-01-01,issued", "serial",
     "not a certificate serial number in hex"),
    ("CCCD:1,person,An,head,000.00.00.H27,0a1b,,2025-01-01,2026-01-01,issued", "issuer",
     "unique only with its issuing CA"),
    (f"CCCD:1,person,An,head,000.00.00.H27,,{CA},2025-01-01,2026-01-01,issued", "serial",
     "needs its serial number"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},,2026-01-01,issued", "valid_from",
     "needs its validity dates"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},2025-01-01,30/02/2026,issued", "valid_to",
     "not a day of the calendar"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},2025-01-01,next year,issued", "valid_to",
     "not a date"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},2026-01-01,2025-01-01,issued", "valid_to",
     "before valid_from"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},2025-01-01,2026-01-01,", "status",
     "needs a status"),
    (f"CCCD:1,person,An,head,000.00.00.H27,0a1b,{CA},2025-01-01,2026-01-01,lost", "status",
     "'lost' is not one of"),
])
def test_a_bad_cell_is_named_by_row_and_column(cells: str, column: str, says: str) -> None:
    found = problems(sheet(EN_HEADER, GOOD_EN, cells))
    assert [(row, col) for row, col, _ in found] == [(3, column)], found
    assert says in found[0][2]


def test_the_column_is_named_as_the_file_spells_it_and_every_problem_is_listed() -> None:
    data = sheet("Số định danh,Họ và tên,Chức vụ,Mã đơn vị",
                 "CCCD:1,An,giám đốc,000.00.00.H27",
                 "CCCD:2,Bình,cấp phó,000.00.00.H27",
                 "CCCD:3,,chuyên viên,bad code")
    assert [(row, col) for row, col, _ in problems(data)] == [
        (2, "Chức vụ"), (4, "Họ và tên"), (4, "Mã đơn vị")]


@pytest.mark.parametrize(("header", "column", "says"), [
    ("identifier,name,organ_id,positon", "positon", "unknown column"),
    ("identifier,name,position", "organ_id", "missing column"),
    ("identifier,name,organ_id,Họ và tên", "Họ và tên", "the same column as 'name'"),
])
def test_a_bad_header_is_named_in_row_1(header: str, column: str, says: str) -> None:
    [(row, col, message)] = problems(sheet(header, "CCCD:1,An,000.00.00.H27,head"))
    assert (row, col) == (1, column)
    assert says in message


def test_rows_of_one_subscriber_must_agree_and_a_certificate_appears_once() -> None:
    data = sheet(
        EN_HEADER, GOOD_EN,
        f"CCCD:042080000001,person,Nguyễn Văn An,deputy,000.00.00.H27,0c,{CA},2025-01-01,"
        "2027-01-01,issued",
        f"CCCD:042080000009,person,Lê Chín,specialist,000.00.00.H27,00 0A 1B,{CA},2025-01-01,"
        "2027-01-01,issued",
        "CCCD:042080000009,person,Lê Chín,specialist,000.00.00.H27,,,,,requested",
        "CCCD:042080000009,person,Lê Chín,specialist,000.00.00.H27,,,,,requested")
    assert [(row, col) for row, col, _ in problems(data)] == [
        (3, "position"), (4, "serial"), (6, "status")]


def test_a_file_that_is_not_utf8_names_its_row() -> None:
    data = sheet(EN_HEADER, GOOD_EN).replace("Nguyễn".encode(), "Nguy\xe9n".encode("latin-1"))
    [(row, _, message)] = problems(data)
    assert row == 2
    assert "UTF-8" in message


def test_an_empty_file_says_the_first_row_names_the_columns() -> None:
    [(row, _, message)] = problems(b"")
    assert row == 1
    assert "first row names the columns" in message


@pytest.mark.parametrize(("written", "normalized"), [
    ("0A 1B", "a1b"), ("0a:1b", "a1b"), ("0x0A1B", "a1b"), ("54010AFF", "54010aff"), ("00", "0"),
])
def test_serials_are_normalized_as_validation_reports_write_them(written: str,
                                                                 normalized: str) -> None:
    assert normalize_serial(written) == normalized


def test_an_issuer_written_by_name_matches_the_distinguished_name_in_a_report() -> None:
    assert issuer_key(f"C=VN,CN={CA},O=Ban Cơ yếu Chính phủ") == issuer_key(
        "  ca phục vụ các  cơ quan nhà nước g2 ")
    assert issuer_key("CN=Other CA,C=VN") != issuer_key(CA)


@pytest.mark.parametrize(("text", "day"), [
    ("2025-03-01", date(2025, 3, 1)), ("2025/03/01", date(2025, 3, 1)),
    ("01/03/2025", date(2025, 3, 1)), ("1-3-2025", date(2025, 3, 1)),
    ("01.03.2025", date(2025, 3, 1)),
])
def test_dates_are_iso_or_vietnamese_day_first(text: str, day: date) -> None:
    assert parse_day(text) == day


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


def _stored_report(recipe: str, vectors: Vectors) -> dict[str, Any]:
    """The report as the ledger stores it, for a signature vector built from the test PKI."""
    built = build(recipe, vectors)
    report = validate_packet(built.packet, at=built.at, policy=built.policy,
                             directory=built.directory, crls=built.crls, ocsp=built.ocsp)
    return dict(json.loads(json.dumps(report.to_dict())))


def test_the_seal_and_the_pdf_person_are_read_from_a_stored_report(vectors: Vectors) -> None:
    seen = signatures_in_report(_stored_report("valid", vectors))
    # The PDF seal made with the envelope's own certificate is one observation, not two
    assert [(o.role, o.serial, o.uid) for o in seen] == [
        ("seal", f"{vectors.org.cert.serial_number:x}", SENDER),
        ("person", f"{vectors.person.cert.serial_number:x}", PERSON)]
    assert seen[1].issuer == vectors.person.cert.issuer.rfc4514_string()
    assert seen[1].fingerprint == vectors.person.fingerprint


def test_a_waived_legacy_envelope_signature_is_no_seal_the_pdf_signatures_are(
    vectors: Vectors,
) -> None:
    seen = signatures_in_report(_stored_report("axis_legacy_sha1_accepted", vectors))
    assert [(o.role, o.uid) for o in seen] == [("person", AXIS_PERSON),
                                               ("organization", AXIS_SENDER)]


def test_a_failed_pdf_check_names_no_pdf_signer(vectors: Vectors) -> None:
    report = _stored_report("pdf_modified_after_signing", vectors)
    assert report["reason"] == "PDF_MODIFIED_AFTER_SIGNING"
    assert [o.role for o in signatures_in_report(report)] == ["seal"]


def test_a_status_packet_shows_the_reporting_organization_s_seal(vectors: Vectors) -> None:
    seen = signatures_in_report(_stored_report("valid_status", vectors))
    assert [(o.role, o.uid) for o in seen] == [("seal", RECIPIENT)]


@pytest.mark.parametrize("common_name", ["CA ", " CA", "CA  two", "A+B CA", "CA \\ root", "CA=root",
                                         "CA;x", 'CA "x"', "CA phục vụ các cơ quan Đảng, Nhà nước"])
def test_a_ca_named_in_the_sheet_matches_the_rfc4514_name_a_report_writes(
    common_name: str,
) -> None:
    # Found by a review: a name ending in a space is written "CN=CA\\ " by RFC 4514, and
    # stripping it before parsing left a dangling backslash: the certificate never matched.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Cơ yếu Chính phủ"),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    assert issuer_key(name.rfc4514_string()) == issuer_key(common_name)

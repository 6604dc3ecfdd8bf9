"""Issue 21 acceptance: the plan's figures measured from real signatures.

Real signed documents — each main PDF signed by a person of the test PKI, then sealed by the
organization, each envelope signed with the organization's key — go through the real hub
(pipeline, validators, receipts, ledger on SQLite and PostgreSQL) behind the in-memory broker
connection. The office's registry is imported from a CSV spreadsheet with Vietnamese headers
through ``hub subscribers import``. The known mix:

- the province's People's Committee: its head (An) signs two documents; a deputy (Bình) holds a
  handed-over certificate and never signs — a document carrying her signature is refused (the
  envelope is signed by another body's key), so it must not count; a second deputy has only a
  request; a division head has no certificate; a specialist and a clerk hold certificates they
  never use, the clerk's expiring in 75 days;
- Home Affairs: its head signs with a certificate the office recorded as revoked two days
  before (the CA's CRL does not list it yet): the alarm;
- Finance: its head signs with a renewed certificate that expires in 20 days;
- Science and Technology: its head signs with a certificate the registry does not have (it
  lists his old, expired one): he counts as signed, by the identifier in the subject, and the
  certificate is listed for review under his name;
- the Office of the People's Committee is not in the registry at all: its person and its seal
  are unknown signers.

Every figure of the report is checked against that mix, through the library and the CLI.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.app import build_hub
from hub.config import with_overrides
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.edxml import sample_attachment
from hub.edxml.build import build_envelope, sample_header
from hub.ledger import Ledger
from hub.ledger.subscribers import vietnam_day
from hub.ledger.subscribers_report import ALL, PlanReport, notices, plan_report
from hub.ops.cli import main
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    PROVINCE,
    hub_settings,
    make_pki,
    settings_toml,
)

SCIENCE = "000.00.15.H27"
CA = "CA phục vụ các cơ quan Nhà nước G2 (TEST)"
"""The issuing CA as the office writes it: its name, not its distinguished name."""


def cccd(n: int) -> str:
    return f"CCCD:0420800000{n:02d}"


AN, BINH, CUONG, DUNG, EM, HAI = (cccd(n) for n in (1, 2, 3, 4, 5, 7))
DEPUTY_REQUESTED, DIVISION_HEAD, SPECIALIST, CLERK = (cccd(n) for n in (90, 91, 92, 93))


@dataclass
class Mix:
    """The signed packets, and the registry spreadsheet that describes (most of) their signers."""

    accepted: dict[str, tuple[str, bytes]]
    """label → (publishing account, packet)"""
    refused: bytes
    registry_csv: bytes
    certs: dict[str, x509.Certificate]


def _renewed(pki: PkiPaths, signer: OrgSigner, not_after: datetime) -> OrgSigner:
    """The same person and key with a new certificate from the issuing CA, expiring early."""
    ca_key = serialization.load_pem_private_key(pki.issuing_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    old = signer.cert
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(old.not_valid_before_utc).not_valid_after(not_after))
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return OrgSigner(signer.organ_id, signer.key, builder.sign(ca_key, hashes.SHA256()),
                     signer.chain)


def _envelope(sender: str, person: OrgSigner, seal: OrgSigner, envelope_key: OrgSigner,
              number: str) -> bytes:
    pdf = sign_pdf(minimal_pdf(f"Cong van {number}"), person, field_name="NguoiKy",
                   reason="Ký ban hành")
    pdf = sign_pdf(pdf, seal, field_name="DauCoQuan", reason="Đóng dấu")
    recipient = HOME_AFFAIRS if sender != HOME_AFFAIRS else PROVINCE
    header = sample_header(sender, (recipient,), number=number, promulgation_date=NOW.date())
    packet = build_envelope(header, attachments=(sample_attachment(pdf,
                                                                   content_id="main-document"),))
    return sign_xml(packet, envelope_key)


def _viewer_serial(cert: x509.Certificate) -> str:
    """The serial as a certificate viewer shows it: upper-case byte pairs, leading zero kept."""
    text = f"{cert.serial_number:x}"
    text = "0" * (len(text) % 2) + text
    return " ".join(text[i:i + 2] for i in range(0, len(text), 2)).upper()


def _day(value: datetime) -> str:
    return vietnam_day(value).strftime("%d/%m/%Y")


def _registry_csv(certs: dict[str, x509.Certificate]) -> bytes:
    header = ("STT;Số định danh;Loại thuê bao;Họ và tên;Chức vụ;Mã đơn vị;Số hiệu chứng thư;"
              "Tổ chức cấp;Hiệu lực từ ngày;Hiệu lực đến ngày;Trạng thái;Ngày trạng thái")

    def real(n: int, identifier: str, kind: str, name: str, position: str, organ: str,
             label: str, status: str, status_date: str = "") -> str:
        cert = certs[label]
        return (f"{n};{identifier};{kind};{name};{position};{organ};{_viewer_serial(cert)};{CA};"
                f"{_day(cert.not_valid_before_utc)};{_day(cert.not_valid_after_utc)};{status};"
                f"{status_date}")

    clerk_end = (NOW + timedelta(days=75)).strftime("%d/%m/%Y")
    lines = [
        header,
        real(1, PROVINCE, "tổ chức", "Ủy ban nhân dân tỉnh Hà Tĩnh", "", PROVINCE, PROVINCE,
             "đã cấp"),
        real(2, AN, "cá nhân", "Nguyễn Văn An", "Thủ trưởng", PROVINCE, AN, "đã bàn giao"),
        real(3, BINH, "cá nhân", "Trần Thị Bình", "Cấp phó", PROVINCE, BINH, "đã bàn giao"),
        f"4;{DEPUTY_REQUESTED};cá nhân;Phó Chủ tịch Thứ Hai;cấp phó;{PROVINCE};;;;;đề nghị cấp;",
        f"5;{DIVISION_HEAD};cá nhân;Trưởng phòng Một;trưởng phòng;{PROVINCE};;;;;;",
        f"6;{SPECIALIST};cá nhân;Chuyên viên Hai;chuyên viên;{PROVINCE};AB CD 12;{CA};"
        f"01/06/2024;01/06/2026;đã cấp;",
        f"7;{CLERK};cá nhân;Văn thư Ba;văn thư;{PROVINCE};AB CD 13;{CA};01/05/2024;{clerk_end};"
        f"đã bàn giao;",
        real(8, DUNG, "cá nhân", "Phạm Thị Dung", "Thủ trưởng", HOME_AFFAIRS, DUNG,
             "đã thu hồi", "01/03/2025"),
        real(9, HOME_AFFAIRS, "tổ chức", "Sở Nội vụ tỉnh Hà Tĩnh", "", HOME_AFFAIRS,
             HOME_AFFAIRS, "đã cấp"),
        real(10, EM, "cá nhân", "Hoàng Văn Em", "Thủ trưởng", FINANCE, "renewed", "đã cấp"),
        real(11, FINANCE, "tổ chức", "Sở Tài chính tỉnh Hà Tĩnh", "", FINANCE, FINANCE,
             "đã cấp"),
        f"12;{HAI};cá nhân;Đặng Văn Hải;Thủ trưởng;{SCIENCE};0B AD;{CA};01/01/2023;31/12/2024;"
        "hết hạn;31/12/2024",
        real(13, SCIENCE, "tổ chức", "Sở Khoa học và Công nghệ tỉnh Hà Tĩnh", "", SCIENCE, SCIENCE,
             "đã cấp"),
        ";;;;;;;;;;;",  # the empty row a spreadsheet leaves
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("subscribers-pki"))


@pytest.fixture(scope="module")
def mix(pki: PkiPaths) -> Mix:
    keystore = Keystore.load(pki.keystore)

    def seal(organ: str) -> OrgSigner:
        signer = keystore.signer(organ)
        assert signer is not None
        return signer

    def person(uid: str) -> OrgSigner:
        return OrgSigner.from_files(uid, pki.signers[uid].key, pki.signers[uid].cert)

    renewed = _renewed(pki, person(EM), NOW + timedelta(days=20))
    accepted = {
        "an-1": (PROVINCE, _envelope(PROVINCE, person(AN), seal(PROVINCE), seal(PROVINCE), "1")),
        "an-2": (PROVINCE, _envelope(PROVINCE, person(AN), seal(PROVINCE), seal(PROVINCE), "2")),
        "dung": (HOME_AFFAIRS, _envelope(HOME_AFFAIRS, person(DUNG), seal(HOME_AFFAIRS),
                                         seal(HOME_AFFAIRS), "3")),
        "em": (FINANCE, _envelope(FINANCE, renewed, seal(FINANCE), seal(FINANCE), "4")),
        "hai": (SCIENCE, _envelope(SCIENCE, person(HAI), seal(SCIENCE), seal(SCIENCE), "5")),
        "cuong": (OFFICE, _envelope(OFFICE, person(CUONG), seal(OFFICE), seal(OFFICE), "6")),
    }
    # Bình's signature on a document whose envelope another body signed: refused, not counted.
    refused = _envelope(PROVINCE, person(BINH), seal(PROVINCE), seal(FINANCE), "7")
    certs = {uid: person(uid).cert for uid in (AN, BINH, CUONG, DUNG, HAI)}
    certs.update({organ: seal(organ).cert for organ in (PROVINCE, HOME_AFFAIRS, FINANCE, SCIENCE,
                                                        OFFICE)})
    certs["renewed"] = renewed.cert
    return Mix(accepted, refused, _registry_csv(certs), certs)


def _run_hub(pki: PkiPaths, where: Path, ledger_url: str, mix: Mix) -> None:
    """The real consumer over every packet until each is settled."""
    settings = with_overrides(
        hub_settings(pki, where, "amqp://fake:fake@127.0.0.1:1/", "subscribers",
                     ledger_url=ledger_url),
        trust={"require_pdf_signatures": True})
    hub = build_hub(settings, clock=lambda: NOW)
    packets = [*mix.accepted.values(), (PROVINCE, mix.refused)]
    stop = threading.Event()

    def stop_when_all_acked(c: FakeConnection) -> None:
        if len(c.channel.acked_tags()) >= len(packets):
            stop.set()

    conn = FakeConnection(on_idle=stop_when_all_acked)
    for i, (account, body) in enumerate(packets):
        conn.put(body, message_id=f"m{i}", user_id=account)
    try:
        IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                       hub.ledger, stop=stop, connector=lambda _u, _n: conn).run()
    finally:
        hub.close()
    (where / "hub.toml").write_text(settings_toml(settings), encoding="utf-8")


@pytest.fixture
def ledger_with_mix(pki: PkiPaths, mix: Mix, ledger_url: str, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    """The mix through the hub, the registry imported with the CLI: (ledger URL, config)."""
    _run_hub(pki, tmp_path, ledger_url, mix)
    with Ledger.open(ledger_url, read_only=True) as ledger:
        kinds = [d.kind for d in ledger.documents() if d.kind in ("envelope", "refused")]
    assert sorted(kinds) == ["envelope"] * 6 + ["refused"]
    sheet = tmp_path / "thue-bao.csv"
    sheet.write_bytes(mix.registry_csv)
    config = tmp_path / "hub.toml"
    assert main(["--config", str(config), "subscribers", "import", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "13 subscribers added" in out, out
    assert "12 certificates added" in out, out
    return ledger_url, config


def _group(report: PlanReport, organ: str, group: str) -> tuple[int, int, int]:
    row = next(r for r in report.organizations if r.organ_id == organ)
    figures = row.leaders if group == "leaders" else row.staff
    return figures.total, figures.certified, figures.signed


def test_every_figure_of_the_plan_report_matches_the_known_mix(
    ledger_with_mix: tuple[str, Path], mix: Mix,
) -> None:
    url, _ = ledger_with_mix
    with Ledger.open(url) as ledger:
        report = plan_report(ledger, at=NOW)
    # One period (the year of the report), every organization of the registry and the total
    assert {(r.organ_id, r.period) for r in report.organizations} == {
        (o, "2025") for o in (PROVINCE, HOME_AFFAIRS, FINANCE, SCIENCE, ALL)}
    # Heads and deputies: (listed, holding a certificate in 2025, signed at least once)
    assert _group(report, PROVINCE, "leaders") == (3, 2, 1)  # An signed; Bình never; a request
    assert _group(report, HOME_AFFAIRS, "leaders") == (1, 1, 1)  # revoked on 1 March, signed
    assert _group(report, FINANCE, "leaders") == (1, 1, 1)
    assert _group(report, SCIENCE, "leaders") == (1, 0, 1)  # by identifier, certificate unrecorded
    assert _group(report, ALL, "leaders") == (6, 4, 4)
    # Division heads and specialists: one without a certificate, one who never signed
    assert _group(report, PROVINCE, "staff") == (2, 1, 0)
    assert _group(report, ALL, "staff") == (2, 1, 0)
    total = next(r for r in report.organizations if r.organ_id == ALL)
    assert total.leaders.share_signed == pytest.approx(4 / 6)
    assert not total.leaders.met
    # Certificates issued per year against the plan's 3,000; one request still open
    assert dict(report.issued_per_year) == {2023: 1, 2024: 2, 2025: 8}
    assert report.issued_in_plan == 11
    assert report.requested_open == 1
    # Active certificates never used: Bình's (her only signature was refused), specialist, clerk
    assert sorted(c.identifier for c in report.never_used) == sorted([BINH, SPECIALIST, CLERK])
    # Expiring: Em's renewed certificate in 20 days, the clerk's in 75
    assert [(c.identifier, c.days_left) for c in report.expiring] == [(EM, 20), (CLERK, 75)]
    assert [report.expiring_within(d) for d in (30, 60, 90)] == [1, 1, 2]
    # The alarm: Dung's revoked certificate signed on 3 March
    [alarm] = report.revoked_signing
    assert alarm.certificate.identifier == DUNG
    assert alarm.revoked_from == date(2025, 3, 1)
    assert alarm.signatures == 1
    assert alarm.senders == (HOME_AFFAIRS,)
    # Signatures from certificates the registry does not know
    unknown = {(u.uid, u.subscriber, u.roles, u.senders, u.signatures) for u in report.unknown}
    assert unknown == {
        (CUONG, None, ("person",), (OFFICE,), 1),
        (OFFICE, None, ("seal",), (OFFICE,), 1),
        (HAI, HAI, ("person",), (SCIENCE,), 1),
    }
    hai = next(u for u in report.unknown if u.uid == HAI)
    assert hai.serial == f"{mix.certs[HAI].serial_number:x}"
    assert hai.issuer == mix.certs[HAI].issuer.rfc4514_string()


def test_a_read_only_ledger_gives_the_same_figures_before_the_signature_index_is_built(
    ledger_with_mix: tuple[str, Path],
) -> None:
    url, _ = ledger_with_mix
    with Ledger.open(url, read_only=True) as ledger:
        unindexed = plan_report(ledger, at=NOW, period="month")
    with Ledger.open(url) as ledger:
        indexed = plan_report(ledger, at=NOW, period="month")
        again = plan_report(ledger, at=NOW, period="month")
    assert unindexed.indexed_up_to == 0
    assert indexed.indexed_up_to > 0
    assert again.to_dict() == indexed.to_dict()
    strip = {"indexed_up_to"}
    assert ({k: v for k, v in unindexed.to_dict().items() if k not in strip}
            == {k: v for k, v in indexed.to_dict().items() if k not in strip})
    # Monthly periods: every signature was in March
    march = {r.organ_id: r.leaders.signed for r in indexed.organizations if r.period == "2025-03"}
    assert march[ALL] == 4
    assert all(r.leaders.signed == 0 for r in indexed.organizations if r.period != "2025-03")


def test_the_daily_notices_name_expiring_certificates_and_subscribers_who_never_signed(
    ledger_with_mix: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    url, config = ledger_with_mix
    with Ledger.open(url) as ledger:
        found = notices(ledger, at=NOW, within_days=30)
    assert {organ: sorted((n.notice, n.certificate.identifier) for n in items)
            for organ, items in found.items()} == {
        PROVINCE: sorted([("never_signed", BINH), ("never_signed", CLERK),
                          ("never_signed", SPECIALIST)]),
        FINANCE: [("expiring", EM)],
    }
    out_dir = tmp_path / "notices"
    out_dir.mkdir()
    assert main(["--config", str(config), "subscribers", "notices", "--at", NOW.isoformat(),
                 "--output-dir", str(out_dir)]) == 0
    capsys.readouterr()
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == [f"notices-2025-03-03-{PROVINCE}.csv", f"notices-2025-03-03-{FINANCE}.csv"]
    finance = (out_dir / f"notices-2025-03-03-{FINANCE}.csv").read_text(encoding="utf-8")
    assert finance.splitlines()[1].startswith(f"{FINANCE},expiring,sắp hết hạn,{EM},")
    assert finance.splitlines()[1].endswith(",20")


def test_the_cli_report_is_the_library_report_with_sections_and_a_chart(
    ledger_with_mix: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    url, config = ledger_with_mix
    sections = tmp_path / "sections"
    sections.mkdir()
    chart = tmp_path / "plan.png"
    code = main(["--config", str(config), "subscribers", "report", "--at", NOW.isoformat(),
                 "--format", "json", "--output-dir", str(sections), "--chart", str(chart),
                 "--fail-on-alarm"])
    captured = capsys.readouterr()
    # The revoked certificate seen signing makes --fail-on-alarm fail, saying so in one line
    assert code == 1
    assert captured.err.strip().startswith("hub: ALARM: 1 revoked certificate")
    with Ledger.open(url, read_only=True) as ledger:
        library = plan_report(ledger, at=NOW, sync=False)
    assert json.loads(captured.out) == library.to_dict()
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in sections.iterdir()) == [
        f"subscribers-{n}.csv" for n in sorted(("organizations", "issued", "never_used",
                                                 "expiring", "revoked_signing",
                                                 "unknown_signatures"))]
    revoked = (sections / "subscribers-revoked_signing.csv").read_text(encoding="utf-8")
    assert revoked.splitlines()[1].startswith(f"{DUNG},Phạm Thị Dung,person,head,{HOME_AFFAIRS}")
    # The table names the alarm for a person reading it
    assert main(["--config", str(config), "subscribers", "report", "--at",
                 NOW.isoformat()]) == 0
    table = capsys.readouterr().out
    assert "CẢNH BÁO" in table
    assert DUNG in table


def test_exporting_the_imported_registry_and_importing_it_again_changes_nothing(
    ledger_with_mix: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, config = ledger_with_mix
    for headers in ("vi", "en"):
        sheet = tmp_path / f"export-{headers}.csv"
        assert main(["--config", str(config), "subscribers", "export", "--headers", headers,
                     "-o", str(sheet)]) == 0
        assert main(["--config", str(config), "subscribers", "import", str(sheet)]) == 0
        out = capsys.readouterr().out
        assert "0 subscribers added, 0 changed; 0 certificates added, 0 changed (0 changes" in out

"""The organization directory: the bundled Hà Tĩnh sample, history, signers, loader errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.directory import Directory, certificate_uids
from hub.edxml import VIETNAM_TZ
from hub.errors import ConfigurationError

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=VIETNAM_TZ)
_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(uid: str | None, cn: str = "test") -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if uid is not None:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, uid))
    name = x509.Name(attrs)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .sign(_KEY, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def sample() -> Directory:
    return Directory.sample()


def test_the_sample_finds_a_body_by_either_of_its_codes(sample: Directory) -> None:
    office = sample.find("000.00.01.H27", NOW)
    assert office is not None
    assert office is sample.find("H27.01", NOW)
    assert office.name == "Văn phòng Ủy ban nhân dân tỉnh Hà Tĩnh"
    assert office.parent == "000.00.00.H27"
    assert office.level == 2
    assert office.reach == "direct"
    assert office.province == "H27"


def test_a_district_abolished_on_1_july_2025_keeps_its_history(sample: Directory) -> None:
    last_day = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=VIETNAM_TZ)
    assert sample.find("000.00.36.H27", last_day) is not None
    assert sample.find("000.00.36.H27", dt.date(2025, 7, 1)) is None
    assert sample.find("000.00.36.H27", dt.datetime(2025, 6, 30, 17, 0, tzinfo=dt.UTC)) is None
    historical = sample.find("000.00.36.H27")
    assert historical is not None
    assert historical.name == "Ủy ban nhân dân huyện Cẩm Xuyên"
    assert historical.valid_to == dt.datetime(2025, 7, 1, tzinfo=VIETNAM_TZ)


def test_communes_created_in_july_2025_sit_under_the_province(sample: Directory) -> None:
    assert sample.find("H27.102", dt.date(2025, 6, 30)) is None
    commune = sample.find("H27.102", NOW)
    assert commune is not None
    assert commune.parent == "000.00.00.H27"
    old = sample.find("000.01.36.H27")
    assert old is not None
    assert old.successor == "H27.102"
    children = {e.code for e in sample.children("H27", NOW)}
    assert {"H27.101", "H27.102", "000.00.01.H27"} <= children
    assert "000.00.36.H27" not in children


def test_every_direct_body_signs_as_itself_and_leaders_sign_in_person(sample: Directory) -> None:
    for entry in sample.entries:
        org_uids = [s.uid for s in entry.signers if s.role == "organization"]
        assert org_uids == [entry.code], entry.name
        if (
            entry.reach == "direct"
            and entry.level <= 2
            and "xã" not in entry.name
            and "phường" not in entry.name
        ):
            people = [s for s in entry.signers if s.role == "person"]
            assert people
            assert all(p.uid and p.uid.startswith("CCCD:04208") for p in people)
            assert all(p.position for p in people)


def test_the_sample_includes_bodies_reached_through_the_national_axis(sample: Directory) -> None:
    nghe_an = sample.find("H41", NOW)
    ministry = sample.find("000.00.00.G09", NOW)
    assert nghe_an is not None
    assert nghe_an.reach == "axis"
    assert ministry is not None
    assert ministry.reach == "axis"
    assert ministry.province == "G09"
    assert {e.code for e in sample.by_broker_user("axis-gateway")} == {
        "000.00.00.H41",
        "000.00.00.G09",
    }


def test_entries_is_both_a_property_and_callable(sample: Directory) -> None:
    assert sample.entries() == sample.entries
    assert len(sample.entries) == len(sample) >= 14


def test_a_certificate_whose_uid_is_a_signer_is_authorized(sample: Directory) -> None:
    seal = _cert("000.00.00.H27")
    chairman = _cert("CCCD:042080000001")
    assert certificate_uids(seal) == ("000.00.00.H27",)
    assert sample.authorizes("000.00.00.H27", seal, NOW)
    assert sample.authorizes("H27", chairman, NOW)
    signer = sample.signer_for("000.00.00.H27", chairman, NOW)
    assert signer is not None
    assert signer.role == "person"
    assert signer.position == "Chủ tịch"


def test_a_certificate_of_another_body_is_not_authorized(sample: Directory) -> None:
    assert not sample.authorizes("000.00.00.H27", _cert("000.00.01.H27"), NOW)
    assert not sample.authorizes("000.00.00.H27", _cert(None), NOW)
    assert not sample.authorizes("000.00.99.H27", _cert("000.00.99.H27"), NOW)


def test_an_abolished_body_no_longer_authorizes_its_signers(sample: Directory) -> None:
    seal = _cert("000.00.36.H27")
    assert sample.authorizes("000.00.36.H27", seal, dt.date(2025, 6, 1))
    assert not sample.authorizes("000.00.36.H27", seal, NOW)


def test_a_signer_may_be_matched_by_fingerprint(tmp_path: Path) -> None:
    cert = _cert(None, "seal without uid")
    fp = cert.fingerprint(hashes.SHA256()).hex()
    path = tmp_path / "d.toml"
    path.write_text(
        f'[[org]]\ncodes = ["H27.05"]\nname = "Sở X"\n'
        f'[[org.signer]]\nrole = "organization"\nfingerprint = "sha256:{fp.upper()}"\n',
        encoding="utf-8",
    )
    directory = Directory.load(path)
    assert directory.authorizes("H27.05", cert, NOW)
    entry = directory.find("H27.05")
    assert entry is not None
    assert entry.broker_user == "H27.05"
    assert entry.level == 2


def test_the_province_of_a_code_comes_from_the_directory_or_its_syntax(sample: Directory) -> None:
    assert sample.province_of("000.00.36.H27") == "H27"
    assert sample.province_of("000.00.00.G09") == "G09"
    assert sample.province_of("000.00.07.H40") == "H40"
    assert sample.province_of("H56.12") == "H56"
    assert sample.province_of("not a code") is None
    assert sample.is_in_province("H27.01", "H27")
    assert not sample.is_in_province("H41", "H27")


BASE = '[[org]]\ncodes = ["000.00.00.H27"]\nname = "UBND tỉnh"\n'


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (BASE + 'colour = "red"\n', 1, "unknown key 'colour'"),
        ('# comment\n\n[[org]]\ncodes = ["000.00.00.h27"]\nname = "x"\n', 3, "malformed"),
        (BASE + 'reach = "pigeon"\n', 1, "reach"),
        ('[[org]]\ncodes = ["H27"]\n', 1, "'name' is required"),
        (BASE + 'valid_from = "2020-01-01"\n', 1, "TOML date"),
        (BASE + "valid_from = 2025-01-01\nvalid_to = 2024-01-01\n", 1, "before"),
        (BASE + "level = 0\n", 1, "level"),
        (
            BASE + '\n[[org]]\ncodes = ["000.00.01.H27"]\nname = "VP"\nparent = "000.00.09.H27"\n',
            5,
            "parent",
        ),
        (BASE + '\n[[org]]\ncodes = ["000.00.00.H27"]\nname = "again"\n', 5, "overlapping"),
        (BASE + '\n  [[org.signer]]\n  role = "organization"\n', 5, "uid"),
        (BASE + '\n  [[org.signer]]\n  role = "boss"\n  uid = "x"\n', 5, "role"),
        (BASE + '[[org.signer]]\nrole = "person"\nfingerprint = "sha1:abcd"\n', 4, "fingerprint"),
        (BASE + '[[org.signer]]\nrole = "person"\nuid = "x"\nemail = "a@b"\n', 4, "'email'"),
        ('[[org]]\ncodes = "000.00.00.H27"\nname = \n', 0, ""),
        ("[organisation]\nx = 1\n", 0, "unknown top-level"),
    ],
    ids=[
        "unknown-key",
        "bad-code",
        "bad-reach",
        "no-name",
        "date-as-string",
        "period-reversed",
        "level-zero",
        "parent-missing",
        "overlapping-code",
        "signer-without-uid",
        "signer-bad-role",
        "bad-fingerprint",
        "signer-unknown-key",
        "toml-syntax",
        "unknown-table",
    ],
)
def test_a_broken_directory_names_the_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        Directory.load(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    if line:
        assert message.startswith(f"{path}:{line}:"), message
    assert words in message


def test_a_body_may_hold_a_code_again_after_its_period_ended() -> None:
    text = (
        '[[org]]\ncodes = ["000.00.20.H27"]\nname = "old"\nvalid_to = 2025-06-30\n'
        '[[org]]\ncodes = ["000.00.20.H27"]\nname = "new"\nvalid_from = 2025-07-01\n'
    )
    directory = Directory.from_toml(text)
    assert directory.find("000.00.20.H27", dt.date(2025, 6, 30)).name == "old"  # type: ignore[union-attr]
    assert directory.find("000.00.20.H27", dt.date(2025, 7, 1)).name == "new"  # type: ignore[union-attr]
    assert directory.find("000.00.20.H27").name == "new"  # type: ignore[union-attr]


def test_a_missing_directory_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        Directory.load(tmp_path / "absent.toml")

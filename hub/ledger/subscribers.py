"""The province's certificate subscribers: the office's registry, and the signatures the hub saw.

Hà Tĩnh's plan (2019, under Decision 28/2018/QĐ-TTg; DOMAIN.md §1) makes the Office of the
Provincial People's Committee the **subscriber manager** for the specialized certificates of
every organization and person in the province (Circular 08/2016/TT-BQP): it collects requests,
sends the list of subscribers to the Government Cipher Committee, hands out the tokens and
follows their use. This module keeps that registry in the ledger's database (tables in
:mod:`hub.ledger.models`, migration r0004) and links it with the signatures on the envelopes the
hub accepted; :mod:`hub.ledger.subscribers_report` computes the plan's figures from both.

**The spreadsheet** (:func:`import_registry`, :func:`export_registry`): CSV, UTF-8 (with or
without the byte-order mark Excel writes), comma, semicolon or tab separated, one row per
certificate (a subscriber with several certificates has several rows; a subscriber without any
has one row with the certificate cells empty). Headers in English or Vietnamese, any order;
``STT`` (row number) and ``Ghi chú`` (note) columns are ignored, any other unknown column is an
error (a misspelt header would otherwise drop a column silently):

=============== ====================== ===============================================
column          Vietnamese header      value
=============== ====================== ===============================================
identifier      Số định danh           the identifier in the certificate subject's UID:
                                       ``CCCD:<citizen id>`` for a person, the
                                       organization's code for an organization (required)
kind            Loại thuê bao          ``person`` / ``cá nhân`` (default) or
                                       ``organization`` / ``tổ chức``
name            Họ và tên              the person's or organization's name (required)
position        Chức vụ                persons only: ``head`` / ``thủ trưởng``, ``deputy`` /
                                       ``cấp phó``, ``division_head`` / ``trưởng phòng``,
                                       ``specialist`` / ``chuyên viên``, ``clerk`` /
                                       ``văn thư``
organ_id        Mã đơn vị              the organization's code, either format (required)
email           Thư điện tử            optional
serial          Số hiệu chứng thư      the certificate's serial number in hex, as a
                                       certificate viewer shows it (spaces and colons
                                       allowed); empty for a request not issued yet
issuer          Tổ chức cấp            the issuing CA's name (its CN) or distinguished name
valid_from      Hiệu lực từ ngày       ``2026-03-31`` or ``31/03/2026``
valid_to        Hiệu lực đến ngày      the last valid day, same formats
status          Trạng thái             ``requested`` / ``đề nghị cấp``, ``issued`` /
                                       ``đã cấp``, ``handed_over`` / ``đã bàn giao``,
                                       ``revoked`` / ``đã thu hồi``, ``expired`` /
                                       ``hết hạn``
status_date     Ngày trạng thái        the day the status took effect (hand-over,
                                       revocation), optional
=============== ====================== ===============================================

Every row is checked before anything is written; an error names the row (the header is row 1,
as in the spreadsheet) and the column as the file spells it. An import is one transaction: it
applies every row or none. Importing the same file twice changes nothing. Nothing is deleted by
an import; every change (a subscriber or certificate created, a position, an organization or a
token status changed) is kept in ``subscriber_history`` with the file's name and SHA-256. A
revoked certificate stays revoked (RFC 5280 §3.3: revocation is final).

**Linking** (:func:`signatures_in_report`, :func:`sync_observations`): the validation report
the ledger keeps with every accepted envelope (and status packet) names the envelope signer
(the organization's seal) and, in the PDF check's evidence, the main document's person and
organization signers (serial, issuer, subject UID). Those are copied into
``subscriber_observations`` — a derived index, read incrementally by document position
(``subscriber_scan``), like ``ledger_deliveries`` — and matched to the registry by certificate
serial + issuer (the issuer's common name, case-folded), else by the identifier in the
subject's UID. Matching happens when the figures are computed, so a correction to the registry
applies to every signature already seen.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, exc, func, insert, select, update

from hub.directory import Directory, OrgEntry
from hub.edxml.errors import EnvelopeRefused
from hub.edxml.model import VIETNAM_TZ
from hub.edxml.orgcode import OrgCode
from hub.ledger.models import (
    Document,
    Subscriber,
    SubscriberCertificate,
    SubscriberHistory,
    SubscriberObservation,
    SubscriberScan,
)
from hub.ledger.store import Ledger, is_transient, unavailable

# -- vocabulary ---------------------------------------------------------------------------------

KINDS: Mapping[str, str] = {"person": "cá nhân", "organization": "tổ chức"}
"""Subscriber kinds (Circular 08/2016/TT-BQP issues certificates to persons and to
organizations), with the Vietnamese label the export writes."""

POSITIONS: Mapping[str, str] = {
    "head": "thủ trưởng", "deputy": "cấp phó", "division_head": "trưởng phòng",
    "specialist": "chuyên viên", "clerk": "văn thư",
}
"""Positions the plan's targets are about: heads and deputies (100 % by the end of 2020),
division heads and specialists (by 2025); clerks hold certificates too."""

STATUSES: Mapping[str, str] = {
    "requested": "đề nghị cấp", "issued": "đã cấp", "handed_over": "đã bàn giao",
    "revoked": "đã thu hồi", "expired": "hết hạn",
}
"""Token status, in the order of a certificate's life."""

ACTIVE = frozenset({"issued", "handed_over"})
"""Statuses of a certificate its holder can sign with."""

_ALIASES: Mapping[str, Mapping[str, str]] = {
    "kind": {"ca nhan": "person", "cơ quan": "organization", "đơn vị": "organization"},
    "position": {"người đứng đầu": "head", "cấp trưởng": "head", "trưởng": "head",
                 "phó": "deputy", "cấp phó thủ trưởng": "deputy", "phó thủ trưởng": "deputy",
                 "trưởng phòng ban": "division_head", "trưởng phòng chuyên môn": "division_head",
                 "công chức": "specialist", "chuyên viên chính": "specialist"},
    "status": {"đã đề nghị": "requested", "đề nghị": "requested", "chờ cấp": "requested",
               "đã giao": "handed_over", "bàn giao": "handed_over", "đã bàn giao token":
               "handed_over", "thu hồi": "revoked", "đã hết hạn": "expired"},
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the office's spreadsheet."""

    key: str
    vi: str
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("identifier", "Số định danh", ("mã định danh cá nhân", "số cccd", "cccd", "uid",
                                          "mã định danh")),
    Column("kind", "Loại thuê bao", ("loại",)),
    Column("name", "Họ và tên", ("tên thuê bao", "tên", "họ tên")),
    Column("position", "Chức vụ", ()),
    Column("organ_id", "Mã đơn vị", ("mã định danh đơn vị", "mã cơ quan")),
    Column("email", "Thư điện tử", ("e-mail",)),
    Column("serial", "Số hiệu chứng thư", ("số serial", "serial number", "số hiệu chứng thư số",
                                           "số sê-ri")),
    Column("issuer", "Tổ chức cấp", ("ca", "nơi cấp", "tổ chức cung cấp dịch vụ")),
    Column("valid_from", "Hiệu lực từ ngày", ("hiệu lực từ", "ngày hiệu lực")),
    Column("valid_to", "Hiệu lực đến ngày", ("hiệu lực đến", "ngày hết hạn")),
    Column("status", "Trạng thái", ("trạng thái token", "tình trạng")),
    Column("status_date", "Ngày trạng thái", ("ngày thay đổi trạng thái",)),
)
REQUIRED_COLUMNS = ("identifier", "name", "organ_id")
IGNORED_COLUMNS = frozenset({"stt", "số thứ tự", "tt", "no", "note", "ghi chú"})
"""Columns offices keep that carry nothing to import (row number, a note)."""

MAX_ROWS = 100_000
"""A registry larger than this is not an office spreadsheet (the plan counts ~3,000)."""
MAX_CELL = 1000
"""Characters in one cell."""


def _norm(text: str) -> str:
    """NFC, case-folded, spaces collapsed: how headers and vocabulary words are compared."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _word(text: str) -> str:
    """A vocabulary value as written: ``Handed over``, ``handed-over`` → ``handed_over``."""
    return re.sub(r"[\s\-]+", "_", _norm(text))


_HEADERS: dict[str, str] = {}
for _c in COLUMNS:
    for _h in (_c.key, _c.key.replace("_", " "), _c.vi, *_c.aliases):
        _HEADERS[_norm(_h)] = _c.key


def _vocabulary(name: str, values: Mapping[str, str]) -> dict[str, str]:
    table = {_word(k): k for k in values}
    table.update({_word(v): k for k, v in values.items()})
    table.update({_word(a): k for a, k in _ALIASES.get(name, {}).items()})
    return table


_VOCABULARY = {"kind": _vocabulary("kind", KINDS), "position": _vocabulary("position", POSITIONS),
               "status": _vocabulary("status", STATUSES)}


def normalize_serial(text: str) -> str:
    """A serial number as validation reports write it: lower-case hex, no leading zeros.

    Accepts what certificate viewers show: ``54 01 0A FF``, ``54:01:0a:ff``, ``0x54010aff``.
    Raises ``ValueError`` for anything else."""
    value = re.sub(r"[\s:]", "", text.strip()).lower()
    if value.startswith("0x"):
        value = value[2:]
    if not value or not re.fullmatch(r"[0-9a-f]+", value) or len(value) > 40:
        raise ValueError(f"{text.strip()[:60]!r} is not a certificate serial number in hex "
                         "(as a certificate viewer shows it, e.g. 54 01 0a ff; at most 20 bytes)")
    return value.lstrip("0") or "0"


@functools.lru_cache(maxsize=1024)
def issuer_key(text: str) -> str:
    """What issuers are matched by: the common name of a distinguished name (``CN=…,O=…``) or
    the name as written, NFC, case-folded, spaces collapsed. The office writes the CA's name;
    validation reports write its RFC 4514 name: both give the same key."""
    value = text.strip()
    if "=" in value:
        names: list[x509.NameAttribute[Any]] = []
        # As written first: an RFC 4514 name may end in an escaped space ("CN=CA\\ "), which
        # stripping would leave a dangling backslash.
        for written in dict.fromkeys((text, value)):
            try:
                names = x509.Name.from_rfc4514_string(written).get_attributes_for_oid(
                    NameOID.COMMON_NAME)
                break
            except ValueError:
                continue
        if names:
            value = str(names[0].value)
    return _norm(value)


_DATE_FORMATS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), (0, 1, 2)),
    (re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"), (0, 1, 2)),
    (re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"), (2, 1, 0)),
)


def parse_day(text: str) -> date:
    """``2026-03-31``, ``2026/03/31`` or the Vietnamese day-first ``31/03/2026`` (also with
    ``-`` or ``.``); raises ``ValueError`` saying which forms are accepted."""
    value = text.strip()
    for pattern, (y, m, d) in _DATE_FORMATS:
        match = pattern.fullmatch(value)
        if match:
            parts = match.groups()
            try:
                return date(int(parts[y]), int(parts[m]), int(parts[d]))
            except ValueError:
                raise ValueError(f"{value!r} is not a day of the calendar") from None
    raise ValueError(f"{value[:40]!r} is not a date: write 2026-03-31 or 31/03/2026")


def day_start(day: date) -> datetime:
    """The first instant of a day in Vietnam (the registry's days are the office's days)."""
    return datetime.combine(day, time.min, VIETNAM_TZ)


def vietnam_day(at: datetime) -> date:
    return at.astimezone(VIETNAM_TZ).date()


# -- the spreadsheet ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in the spreadsheet, where the office will look for it."""

    row: int
    """Spreadsheet row: the header is row 1."""
    column: str
    """The column as the file spells it (its key when the file has no such column)."""
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.message}"


class RegistryError(Exception):
    """The spreadsheet cannot be imported; nothing was written."""

    def __init__(self, source: str, errors: Sequence[RowError]) -> None:
        self.source = source
        self.errors = tuple(errors)
        count = len(self.errors)
        super().__init__(
            f"{source}: {count} error{'s' if count != 1 else ''}, nothing imported; "
            f"first: {self.errors[0] if self.errors else '?'}")


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One valid spreadsheet row: a subscriber and, unless the certificate cells are empty,
    one certificate or request."""

    row: int
    identifier: str
    kind: str
    name: str
    position: str | None
    organ_id: str
    email: str = ""
    serial: str | None = None
    issuer: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    status: str | None = None
    status_date: date | None = None

    @property
    def issuer_key(self) -> str:
        return issuer_key(self.issuer)

    @property
    def has_certificate(self) -> bool:
        return self.status is not None


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data[:error.start].count(b"\n") + 1
        raise RegistryError(source, [RowError(row, "-", "not UTF-8 text: save the sheet as "
                                                        "'CSV UTF-8 (comma delimited)'")]) from None


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


class _RowReader:
    """Checks the cells of one row; collects errors instead of stopping at the first."""

    def __init__(self, row: int, cells: Mapping[str, str], headers: Mapping[str, str],
                 errors: list[RowError]) -> None:
        self.row, self.cells, self.headers, self.errors = row, cells, headers, errors

    def fail(self, key: str, message: str) -> None:
        self.errors.append(RowError(self.row, self.headers.get(key, key), message))

    def text(self, key: str, *, required: bool = False) -> str:
        value = " ".join(unicodedata.normalize("NFC", self.cells.get(key, "")).split())
        if required and not value:
            self.fail(key, "required, but empty")
        return value

    def choice(self, key: str, *, default: str | None = None) -> str | None:
        value = self.text(key)
        if not value:
            return default
        found = _VOCABULARY[key].get(_word(value))
        if found is None:
            words = {"kind": KINDS, "position": POSITIONS, "status": STATUSES}[key]
            accepted = ", ".join(f"{k} ({v})" for k, v in words.items())
            self.fail(key, f"{value[:60]!r} is not one of: {accepted}")
        return found

    def day(self, key: str) -> date | None:
        value = self.text(key)
        if not value:
            return None
        try:
            return parse_day(value)
        except ValueError as error:
            self.fail(key, str(error))
            return None


def _read_subscriber(r: _RowReader) -> tuple[str, str | None, str, str | None, str, str]:
    identifier = r.text("identifier", required=True)
    kind = r.choice("kind", default="person")
    name = r.text("name", required=True)
    position = r.choice("position")
    organ_id = r.text("organ_id", required=True)
    if organ_id:
        try:
            OrgCode.parse(organ_id)
        except EnvelopeRefused:
            r.fail("organ_id", f"{organ_id[:60]!r} is not an organization code (e.g. "
                               "000.00.01.H27 or H27.01)")
    if kind == "person" and not r.text("position"):
        r.fail("position", "a person needs a position: " + ", ".join(POSITIONS))
    if kind == "organization" and position is not None:
        r.fail("position", "an organization has no position: leave it empty")
    if kind == "organization" and identifier and organ_id and identifier != organ_id:
        r.fail("identifier", f"an organization's identifier is its code ({organ_id})")
    return identifier, kind, name, position, organ_id, r.text("email")


def _read_certificate(r: _RowReader) -> tuple[str | None, str, date | None, date | None,
                                              str | None, date | None]:
    serial_text = r.text("serial")
    serial: str | None = None
    if serial_text:
        try:
            serial = normalize_serial(serial_text)
        except ValueError as error:
            r.fail("serial", str(error))
    issuer = r.text("issuer")
    valid_from, valid_to = r.day("valid_from"), r.day("valid_to")
    status = r.choice("status")
    status_date = r.day("status_date")
    given = any(r.text(k) for k in ("serial", "issuer", "valid_from", "valid_to", "status_date"))
    if given and not r.text("status"):
        r.fail("status", "a certificate needs a status: " + ", ".join(STATUSES))
    if status is not None and status != "requested":
        if not serial_text:
            r.fail("serial", f"a certificate with status {status!r} needs its serial number")
        for key in ("valid_from", "valid_to"):
            if not r.text(key):
                r.fail(key, f"a certificate with status {status!r} needs its validity dates")
    if serial_text and not issuer:
        r.fail("issuer", "a serial number is unique only with its issuing CA: give the CA")
    if valid_from and valid_to and valid_to < valid_from:
        r.fail("valid_to", f"{valid_to.isoformat()} is before valid_from "
                           f"{valid_from.isoformat()}")
    return serial, issuer, valid_from, valid_to, status, status_date


def _read_row(number: int, cells: Mapping[str, str], headers: Mapping[str, str],
              errors: list[RowError]) -> RegistryRow | None:
    before = len(errors)
    r = _RowReader(number, cells, headers, errors)
    for key, value in cells.items():
        if len(value) > MAX_CELL:
            r.fail(key, f"longer than {MAX_CELL} characters")
    identifier, kind, name, position, organ_id, email = _read_subscriber(r)
    serial, issuer, valid_from, valid_to, status, status_date = _read_certificate(r)
    if len(errors) > before or kind is None:
        return None
    return RegistryRow(number, identifier, kind, name, position, organ_id, email, serial,
                       issuer, valid_from, valid_to, status, status_date)


def _read_header(header: Sequence[str], errors: list[RowError]
                 ) -> tuple[dict[int, str], dict[str, str]]:
    """Column index → key, and key → the header as the file spells it."""
    positions: dict[int, str] = {}
    headers: dict[str, str] = {}
    for index, cell in enumerate(header):
        name = _norm(cell)
        if not name or name in IGNORED_COLUMNS:
            continue
        key = _HEADERS.get(name)
        if key is None:
            accepted = ", ".join(f"{c.key} / {c.vi}" for c in COLUMNS)
            errors.append(RowError(1, cell.strip(), f"unknown column (accepted: {accepted};"
                                                    " STT and Ghi chú are ignored)"))
        elif key in headers:
            errors.append(RowError(1, cell.strip(), f"the same column as {headers[key]!r}"))
        else:
            positions[index], headers[key] = key, cell.strip()
    for key in REQUIRED_COLUMNS:
        if key not in headers:
            vi = next(c.vi for c in COLUMNS if c.key == key)
            errors.append(RowError(1, key, f"missing column (header {key!r} or {vi!r})"))
    return positions, headers


def _records(data: bytes, source: str) -> list[list[str]]:
    text = _decode(data, source)
    if not text.strip():
        raise RegistryError(source, [RowError(1, "-", "the file is empty: the first row names "
                                                      "the columns")])
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text),
                                  strict=True))
    except csv.Error as error:
        raise RegistryError(source, [RowError(0, "-", f"not a CSV file ({error})")]) from None
    if len(records) > MAX_ROWS + 1:
        raise RegistryError(source, [RowError(MAX_ROWS + 2, "-", f"more than {MAX_ROWS} rows")])
    return records


def parse_registry_csv(data: bytes, source: str = "registry.csv") -> list[RegistryRow]:
    """Every row of the office's spreadsheet, checked; raises :class:`RegistryError` with every
    problem found (row and column named) when anything is wrong."""
    return _parse(data, source)[0]


def _parse(data: bytes, source: str) -> tuple[list[RegistryRow], dict[str, str]]:
    records = _records(data, source)
    header, body = records[0], records[1:]
    errors: list[RowError] = []
    positions, headers = _read_header(header, errors)
    if errors:
        raise RegistryError(source, errors)
    rows: list[RegistryRow] = []
    for offset, record in enumerate(body):
        number = offset + 2
        if not any(cell.strip() for cell in record):
            continue  # spreadsheets end with empty rows
        if len(record) > len(header) and any(c.strip() for c in record[len(header):]):
            errors.append(RowError(number, "-", f"{len(record)} cells, the header has "
                                                f"{len(header)}"))
            continue
        cells = {key: record[i] if i < len(record) else "" for i, key in positions.items()}
        parsed = _read_row(number, cells, headers, errors)
        if parsed is not None:
            rows.append(parsed)
    _check_across_rows(rows, headers, errors)
    if errors:
        raise RegistryError(source, sorted(errors, key=lambda e: e.row))
    return rows, headers


_SUBSCRIBER_FIELDS = ("kind", "name", "position", "organ_id", "email")


def _check_across_rows(rows: Sequence[RegistryRow], headers: Mapping[str, str],
                       errors: list[RowError]) -> None:
    """Rows of one subscriber agree; a certificate or a pending request appears once."""
    first: dict[str, RegistryRow] = {}
    serials: dict[tuple[str, str], RegistryRow] = {}
    requests: dict[str, RegistryRow] = {}
    for row in rows:
        earlier = first.setdefault(row.identifier, row)
        if earlier is not row:
            for name in _SUBSCRIBER_FIELDS:
                if getattr(row, name) != getattr(earlier, name):
                    errors.append(RowError(row.row, headers.get(name, name),
                                           f"{getattr(row, name)!r} differs from row "
                                           f"{earlier.row} ({getattr(earlier, name)!r}) for the "
                                           f"same subscriber {row.identifier}"))
        if row.serial is not None:
            key = (row.issuer_key, row.serial)
            twin = serials.setdefault(key, row)
            if twin is not row:
                errors.append(RowError(row.row, headers.get("serial", "serial"),
                                       f"the same certificate as row {twin.row}"))
        elif row.has_certificate:
            twin = requests.setdefault(row.identifier, row)
            if twin is not row:
                errors.append(RowError(row.row, headers.get("status", "status"),
                                       f"a second certificate without serial number for "
                                       f"{row.identifier} (row {twin.row})"))


# -- the registry in the database ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    identifier: str
    kind: str
    name: str
    position: str | None
    organ_id: str
    email: str


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    id: str
    identifier: str
    serial: str | None
    issuer: str
    issuer_key: str
    valid_from: date | None
    valid_to: date | None
    status: str
    status_date: date | None
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def revoked_from(self) -> date | None:
        """The day from which a signature with this certificate is an alarm: the revocation's
        status date, else the day the revocation was recorded."""
        if self.status != "revoked":
            return None
        return self.status_date or vietnam_day(self.updated_at)


@dataclass(frozen=True)
class Registry:
    """The whole registry, loaded at once (the plan counts thousands, not millions)."""

    subscribers: Mapping[str, SubscriberRecord]
    certificates: tuple[CertificateRecord, ...]

    def by_certificate(self) -> dict[tuple[str, str], CertificateRecord]:
        return {(c.issuer_key, c.serial): c for c in self.certificates if c.serial is not None}

    def certificates_of(self) -> dict[str, list[CertificateRecord]]:
        out: dict[str, list[CertificateRecord]] = {}
        for c in self.certificates:
            out.setdefault(c.identifier, []).append(c)
        return out


class BodyCodes:
    """The registry's organization codes read through the directory.

    The office may write either code of a body (QCVN 102:2016 ``000.00.02.H27`` or Decision
    20/2020/QĐ-TTg ``H27.02``) as an ``organ_id`` or an organization's identifier, and a seal's
    certificate carries one of them in its subject UID: the directory says they are one body.
    Without a directory every code stands for itself (compared as written)."""

    def __init__(self, directory: Directory | None, at: datetime) -> None:
        self.directory = directory
        self.at = at

    def _entry(self, code: str, at: datetime | None = None) -> OrgEntry | None:
        if self.directory is None:
            return None
        return self.directory.find(code, at or self.at) or self.directory.find(code)

    def primary(self, code: str) -> str:
        """The body's primary code (the one its queues and the ledger use), else ``code``."""
        entry = self._entry(code)
        return entry.code if entry is not None else code

    def subscriber_of_uid(self, uid: str | None, subscribers: Mapping[str, Any],
                          at: datetime | None = None) -> str | None:
        """The registry identifier a certificate's subject UID names: the UID itself, else
        another code of the body it is a code of, or whose seal the directory lists with it
        (on the day ``at`` the certificate was seen, else the directory's latest entry)."""
        if uid is None:
            return None
        if uid in subscribers:
            return uid
        if self.directory is None:
            return None
        entries = [e for e in (self._entry(uid, at),) if e is not None]
        entries += self._seals.get(uid, ())
        return next((c for e in entries for c in e.codes if c in subscribers), None)

    @functools.cached_property
    def _seals(self) -> dict[str, list[OrgEntry]]:
        """Seal UID → the entries listing it (built once, on the first unmatched UID)."""
        out: dict[str, list[OrgEntry]] = {}
        for entry in self.directory.entries if self.directory is not None else ():
            for signer in entry.signers:
                if signer.role == "organization" and signer.uid:
                    out.setdefault(signer.uid, []).append(entry)
        return out


def load_registry(conn: Connection) -> Registry:
    subscribers = {
        r.identifier: SubscriberRecord(r.identifier, r.kind, r.name, r.position, r.organ_id,
                                       r.email)
        for r in conn.execute(select(*Subscriber.__table__.c))}
    certificates = tuple(
        CertificateRecord(r.id, r.identifier, r.serial, r.issuer, r.issuer_key, r.valid_from,
                          r.valid_to, r.status, r.status_date, r.updated_at)
        for r in conn.execute(select(*SubscriberCertificate.__table__.c)
                              .order_by(SubscriberCertificate.identifier,
                                        SubscriberCertificate.valid_from,
                                        SubscriberCertificate.id)))
    return Registry(subscribers, certificates)


def registry(ledger: Ledger) -> Registry:
    """The registry as stored now."""
    with ledger._reading() as conn:
        return load_registry(conn)


@contextmanager
def _writing(ledger: Ledger) -> Iterator[Connection]:
    """One write transaction on the ledger's database (the SQLite write lock taken up front,
    the registry's row lock on PostgreSQL): registry writers run one after the other."""
    if ledger.read_only:
        raise PermissionError("this ledger was opened read-only")
    try:
        with ledger.writer_connection() as conn, conn.begin():
            stmt = select(SubscriberScan.seq).where(SubscriberScan.id == 1)
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            conn.execute(stmt)
            yield conn
    except (exc.DBAPIError, exc.TimeoutError) as error:
        if is_transient(error):
            raise unavailable(error) from error
        raise


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    rows: int
    subscribers_created: int = 0
    subscribers_updated: int = 0
    certificates_created: int = 0
    certificates_updated: int = 0
    changes: int = 0
    """History rows written (0: the registry already said all this)."""

    def summary(self) -> str:
        return (f"{self.rows} rows: {self.subscribers_created} subscribers added, "
                f"{self.subscribers_updated} changed; {self.certificates_created} certificates "
                f"added, {self.certificates_updated} changed ({self.changes} changes recorded)")


class _HistoryIds:
    """Time-ordered ids: microseconds, a counter, and a random part (two writers never clash)."""

    def __init__(self, at: datetime) -> None:
        self.prefix = f"{int(at.timestamp() * 1_000_000):016x}"
        self.salt = uuid.uuid4().hex[:8]
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:08x}{self.salt}"


_CERT_FIELDS = ("serial", "issuer", "issuer_key", "valid_from", "valid_to", "status",
                "status_date")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


class _Importer:
    """Applies checked rows to the registry inside one transaction, noting every change."""

    def __init__(self, conn: Connection, now: datetime, origin: str,
                 headers: Mapping[str, str]) -> None:
        self.conn, self.now, self.origin, self.headers = conn, now, origin, headers
        current = load_registry(conn)
        self.subscribers = dict(current.subscribers)
        self.certs = {c.id: c for c in current.certificates}
        self.by_serial = {(c.issuer_key, c.serial): c.id for c in self.certs.values()
                          if c.serial}
        self.requests = {c.identifier: c.id for c in self.certs.values() if c.serial is None}
        self.new_subscribers: list[dict[str, Any]] = []
        self.inserting: dict[str, dict[str, Any]] = {}
        """Certificates this import adds, by id (written in bulk by :meth:`flush`)."""
        self.errors: list[RowError] = []
        self.history: list[dict[str, Any]] = []
        self.ids = _HistoryIds(now)
        self.touched: set[str] = set()
        self.counts = {"sc": 0, "su": 0, "cc": 0, "cu": 0}

    def note(self, identifier: str, cert_id: str | None, name: str, old: Any, new: Any,
             effective: date | None = None) -> None:
        self.history.append({"id": self.ids(), "at": self.now, "identifier": identifier,
                             "certificate_id": cert_id, "field": name, "old": _text(old),
                             "new": _text(new), "effective": effective, "source": self.origin})

    def subscriber(self, row: RegistryRow) -> None:
        known = self.subscribers.get(row.identifier)
        values = {name: getattr(row, name) for name in _SUBSCRIBER_FIELDS}
        if known is None:
            self.new_subscribers.append({"identifier": row.identifier, "updated_at": self.now,
                                         **values})
            self.note(row.identifier, None, "created", None,
                      " ".join(v for v in (row.kind, row.position, row.organ_id) if v))
            self.counts["sc"] += 1
        elif row.identifier not in self.touched:
            changed = {k: v for k, v in values.items() if getattr(known, k) != v}
            if changed:
                self.conn.execute(update(Subscriber).where(
                    Subscriber.identifier == row.identifier).values(updated_at=self.now,
                                                                    **changed))
                for name, value in changed.items():
                    self.note(row.identifier, None, name, getattr(known, name), value)
                self.counts["su"] += 1
        self.subscribers[row.identifier] = SubscriberRecord(row.identifier, **values)
        self.touched.add(row.identifier)

    def _target(self, row: RegistryRow) -> CertificateRecord | None:
        """The stored certificate this row is about: by serial + issuer, else the subscriber's
        request without a serial (being fulfilled, or still pending)."""
        if row.serial is not None:
            found = self.by_serial.get((row.issuer_key, row.serial))
            if found is not None:
                return self.certs[found]
        request = self.requests.get(row.identifier)
        return self.certs[request] if request is not None else None

    def certificate(self, row: RegistryRow) -> None:
        assert row.status is not None
        target = self._target(row)
        if target is not None and target.identifier != row.identifier:
            self.errors.append(RowError(row.row, self.headers.get("serial", "serial"),
                                        f"certificate {row.serial} of "
                                        f"{row.issuer} is registered to {target.identifier}"))
            return
        if target is not None and target.status == "revoked" and row.status != "revoked":
            when = f" on {target.status_date}" if target.status_date else ""
            self.errors.append(RowError(row.row, self.headers.get("status", "status"),
                                        f"certificate {target.serial} was "
                                        f"revoked{when}: a revoked certificate stays revoked"))
            return
        wanted = {"serial": row.serial, "issuer": row.issuer, "issuer_key": row.issuer_key,
                  "valid_from": row.valid_from, "valid_to": row.valid_to,
                  "status": row.status, "status_date": row.status_date}
        if target is None:
            cert_id = uuid.uuid4().hex
            self.inserting[cert_id] = {"id": cert_id, "identifier": row.identifier,
                                       "updated_at": self.now, **wanted}
            self.note(row.identifier, cert_id, "status", None, row.status, row.status_date)
            self.counts["cc"] += 1
        else:
            cert_id = target.id
            changed = {k: v for k, v in wanted.items() if getattr(target, k) != v}
            if changed and cert_id in self.inserting:  # added by an earlier row of this file
                self.inserting[cert_id].update(changed)
            elif changed:
                self.conn.execute(update(SubscriberCertificate).where(
                    SubscriberCertificate.id == cert_id).values(updated_at=self.now, **changed))
                for name, value in changed.items():
                    if name != "issuer_key":
                        self.note(row.identifier, cert_id, name, getattr(target, name), value,
                                  row.status_date if name == "status" else None)
                self.counts["cu"] += 1
        self.certs[cert_id] = CertificateRecord(
            cert_id, row.identifier, row.serial, row.issuer, row.issuer_key, row.valid_from,
            row.valid_to, row.status, row.status_date, self.now)
        if row.serial is not None:
            self.by_serial[(row.issuer_key, row.serial)] = cert_id
            if self.requests.get(row.identifier) == cert_id:
                del self.requests[row.identifier]
        else:
            self.requests[row.identifier] = cert_id

    def flush(self) -> None:
        """The new rows, in bulk (each in one statement)."""
        for model, rows in ((Subscriber, self.new_subscribers),
                            (SubscriberCertificate, list(self.inserting.values())),
                            (SubscriberHistory, self.history)):
            if rows:
                self.conn.execute(insert(model), rows)


def import_registry(ledger: Ledger, data: bytes, *, source: str = "registry.csv",
                    now: datetime | None = None) -> ImportResult:
    """Check every row of the spreadsheet ``data``, then apply all of them in one transaction
    (or none: :class:`RegistryError` names the rows and columns at fault, and what in the
    stored registry they contradict)."""
    rows, headers = _parse(data, source)
    now = now or datetime.now(UTC)
    origin = f"import {source} sha256:{hashlib.sha256(data).hexdigest()[:16]}"
    with _writing(ledger) as conn:
        importer = _Importer(conn, now, origin, headers)
        for row in rows:
            importer.subscriber(row)
            if row.has_certificate:
                importer.certificate(row)
        if importer.errors:
            raise RegistryError(source, importer.errors)
        importer.flush()
    c = importer.counts
    return ImportResult(len(rows), c["sc"], c["su"], c["cc"], c["cu"], len(importer.history))


def export_registry(ledger: Ledger, *, headers: str = "vi") -> bytes:
    """The registry as the office's spreadsheet (UTF-8 with a byte-order mark, so Excel shows
    Vietnamese): one row per certificate, a subscriber without one on a row of its own.
    ``headers="vi"`` writes Vietnamese headers, values and day-first dates; ``"en"`` the column
    keys, the English values and ISO dates. Both import back unchanged."""
    if headers not in ("vi", "en"):
        raise ValueError("headers are 'vi' or 'en'")
    vi = headers == "vi"
    current = registry(ledger)
    owned = current.certificates_of()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.vi if vi else c.key for c in COLUMNS])

    def word(value: str | None, table: Mapping[str, str]) -> str:
        return "" if value is None else (table[value] if vi else value)

    def day(value: date | None) -> str:
        return "" if value is None else (value.strftime("%d/%m/%Y") if vi else value.isoformat())

    for s in sorted(current.subscribers.values(), key=lambda s: (s.organ_id, s.identifier)):
        base = [s.identifier, word(s.kind, KINDS), s.name, word(s.position, POSITIONS),
                s.organ_id, s.email]
        if not owned.get(s.identifier):
            writer.writerow([*base, "", "", "", "", "", ""])
        for c in owned.get(s.identifier, ()):
            writer.writerow([*base, c.serial or "", c.issuer, day(c.valid_from),
                             day(c.valid_to), word(c.status, STATUSES), day(c.status_date)])
    return buffer.getvalue().encode("utf-8-sig")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    identifier: str
    certificate_id: str | None
    field: str
    old: str | None
    new: str | None
    effective: date | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "identifier": self.identifier,
                "certificate_id": self.certificate_id, "field": self.field, "old": self.old,
                "new": self.new,
                "effective": self.effective.isoformat() if self.effective else None,
                "source": self.source}


def history(ledger: Ledger, identifier: str | None = None) -> list[HistoryEntry]:
    """Every change to the registry (of one subscriber), in the order it was made."""
    stmt = select(*SubscriberHistory.__table__.c).order_by(SubscriberHistory.id)
    if identifier is not None:
        stmt = stmt.where(SubscriberHistory.identifier == identifier)
    with ledger._reading() as conn:
        return [HistoryEntry(r.at, r.identifier, r.certificate_id, r.field, r.old, r.new,
                             r.effective, r.source) for r in conn.execute(stmt)]


# -- signatures the hub saw -----------------------------------------------------------------------

ROLES = ("seal", "person", "organization")
"""``seal``: the envelope's XML signature (the organization); ``person`` and ``organization``:
the main PDF's signatures (Circular 41/2017/TT-BTTTT). The PDF's organization signature is
recorded only when it is not the envelope seal's own certificate."""


@dataclass(frozen=True, slots=True)
class Observed:
    """A certificate that made a validated signature on an accepted envelope."""

    role: str
    serial: str
    issuer: str
    uid: str | None
    subject: str
    fingerprint: str

    @property
    def issuer_key(self) -> str:
        return issuer_key(self.issuer)


def signatures_in_report(report: Mapping[str, Any]) -> list[Observed]:
    """The validated signatures a stored validation report names (``ValidationReport.to_dict``):
    the envelope seal when the ``xmldsig`` check passed (not a waived legacy signature), the main
    PDF's person and organization when the ``pdf`` check passed and names them."""
    checks = {c.get("check"): c for c in report.get("checks") or () if isinstance(c, Mapping)}
    out: list[Observed] = []
    signer = report.get("signer")
    xml = checks.get("xmldsig")
    if (xml is not None and xml.get("indication") == "PASSED" and isinstance(signer, Mapping)
            and signer.get("serial")):
        out.append(Observed("seal", str(signer["serial"]), str(signer.get("issuer") or ""),
                            signer.get("uid"), str(signer.get("subject") or ""),
                            str(signer.get("fingerprint") or "")))
    pdf = checks.get("pdf")
    evidence = pdf.get("evidence") if pdf is not None else None
    if pdf is not None and pdf.get("indication") == "PASSED" and isinstance(evidence, Mapping):
        for role in ("person", "organization"):
            serial = evidence.get(f"main_{role}_serial")
            if not serial:
                continue
            seen = Observed(role, str(serial), str(evidence.get(f"main_{role}_issuer") or ""),
                            evidence.get(f"main_{role}_uid"),
                            str(evidence.get(f"main_{role}_subject") or ""),
                            str(evidence.get(f"main_{role}") or ""))
            if role == "organization" and any(
                    o.role == "seal" and o.serial == seen.serial
                    and o.issuer_key == seen.issuer_key for o in out):
                continue
            out.append(seen)
    return out


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """One signature as indexed (and as the figures read it)."""

    digest: str
    role: str
    seq: int
    received_at: datetime
    month: str
    sender: str
    serial: str
    issuer_key: str
    issuer: str
    uid: str | None
    subject: str
    fingerprint: str

    def to_row(self) -> dict[str, Any]:
        return {"digest": self.digest, "role": self.role, "seq": self.seq,
                "received_at": self.received_at, "month": self.month, "sender": self.sender,
                "serial": self.serial, "issuer_key": self.issuer_key, "issuer": self.issuer,
                "uid": self.uid, "subject": self.subject, "fingerprint": self.fingerprint}


OBSERVED_KINDS = ("envelope", "status")
"""Packets whose signatures count: accepted documents, and the status packets agencies send
(sealed by the reporting organization: its seal is in use). Receipts are the hub's own."""

SYNC_CHUNK = 5000
"""Envelopes read per step: each step's write transaction is short, so the consumers' ledger
appends never wait long for the SQLite write lock."""


def _observations(rows: Iterable[Any]) -> list[ObservationRow]:
    keys: dict[str, str] = {}
    out: list[ObservationRow] = []
    for row in rows:
        if row.report is None:
            continue
        try:
            report = json.loads(row.report)
        except ValueError:
            continue
        month = row.received_at.astimezone(VIETNAM_TZ).strftime("%Y-%m")
        for seen in signatures_in_report(report):
            key = keys.get(seen.issuer)
            if key is None:
                key = keys[seen.issuer] = seen.issuer_key
            out.append(ObservationRow(row.digest, seen.role, int(row.seq), row.received_at,
                                      month, row.sender, seen.serial, key, seen.issuer,
                                      seen.uid, seen.subject, seen.fingerprint))
    return out


def _envelopes_after(conn: Connection, after: int, limit: int | None) -> list[Any]:
    stmt = (select(Document.seq, Document.digest, Document.sender, Document.received_at,
                   Document.report)
            .where(Document.seq > after, Document.kind.in_(OBSERVED_KINDS))
            .order_by(Document.seq))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt))


def indexed_up_to(conn: Connection) -> int:
    """The last ledger position whose signatures are in ``subscriber_observations``."""
    return int(conn.scalar(select(SubscriberScan.seq).where(SubscriberScan.id == 1)) or 0)


def pending_observations(conn: Connection) -> list[ObservationRow]:
    """The signatures of envelopes the index has not read yet (for a read-only ledger)."""
    return _observations(_envelopes_after(conn, indexed_up_to(conn), None))


def sync_observations(ledger: Ledger, *, chunk: int = SYNC_CHUNK) -> int:
    """Index the signatures of every accepted envelope and status packet recorded since the
    last call; returns the number of packets read. Safe to run beside the consumers and beside itself."""
    done = 0
    while True:
        with ledger._reading() as conn:
            after = indexed_up_to(conn)
            envelopes = _envelopes_after(conn, after, chunk)
        if not envelopes:
            return done
        rows = [o.to_row() for o in _observations(envelopes)]
        with _writing(ledger) as conn:
            if indexed_up_to(conn) != after:
                continue  # another process indexed these meanwhile: read again from there
            if rows:
                conn.execute(insert(SubscriberObservation), rows)
            conn.execute(update(SubscriberScan).where(SubscriberScan.id == 1)
                         .values(seq=int(envelopes[-1].seq)))
        done += len(envelopes)
        if len(envelopes) < chunk:
            return done


@dataclass
class ObservedCertificate:
    """Everything seen of one certificate (by serial + issuer), possibly in several roles."""

    serial: str
    issuer_key: str
    issuer: str = ""
    uid: str | None = None
    subject: str = ""
    """Names, filled in by :func:`describe_certificates` for the certificates that need them."""
    roles: set[str] = field(default_factory=set)
    senders: set[str] = field(default_factory=set)
    months: dict[str, int] = field(default_factory=dict)
    """``YYYY-MM`` (Vietnam time) → signatures seen that month."""
    person_months: set[str] = field(default_factory=set)
    """Months with a signature as the main PDF's person."""
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def count(self) -> int:
        return sum(self.months.values())

    def add(self, role: str, sender: str, month: str, n: int, first: datetime,
            last: datetime) -> None:
        self.roles.add(role)
        self.senders.add(sender)
        self.months[month] = self.months.get(month, 0) + n
        if role == "person":
            self.person_months.add(month)
        self.first_seen = first if self.first_seen is None else min(self.first_seen, first)
        self.last_seen = last if self.last_seen is None else max(self.last_seen, last)


def observed_certificates(conn: Connection, pending: Sequence[ObservationRow] = ()
                          ) -> dict[tuple[str, str], ObservedCertificate]:
    """Every certificate seen signing, aggregated in the database — one row per certificate,
    role, sender and month, read from the covering index in its order (no sort, no table
    access) — plus ``pending`` rows not indexed yet. Names are left to
    :func:`describe_certificates`."""
    o = SubscriberObservation
    stmt = (select(o.issuer_key, o.serial, o.role, o.sender, o.month, func.count(),
                   func.min(o.received_at), func.max(o.received_at))
            .group_by(o.issuer_key, o.serial, o.role, o.sender, o.month))
    out: dict[tuple[str, str], ObservedCertificate] = {}
    for key, role, sender, month, n, first, last in (
            ((r[0], r[1]), r[2], r[3], r[4], int(r[5]), r[6], r[7]) for r in conn.execute(stmt)):
        seen = out.get(key)
        if seen is None:
            seen = out[key] = ObservedCertificate(key[1], key[0])
        if isinstance(first, str):  # SQLite may hand back the aggregate as stored text
            first, last = _utc(first), _utc(last)
        seen.add(role, sender, month, n, first, last)
    for p in pending:
        key = (p.issuer_key, p.serial)
        seen = out.get(key)
        if seen is None:
            seen = out[key] = ObservedCertificate(p.serial, p.issuer_key)
        seen.add(p.role, p.sender, p.month, 1, p.received_at, p.received_at)
    return out


def describe_certificates(conn: Connection, seen: Mapping[tuple[str, str], ObservedCertificate],
                          keys: Iterable[tuple[str, str]],
                          pending: Sequence[ObservationRow] = ()) -> None:
    """Fill in the issuer, subject and subject UID of the certificates ``keys`` (those the
    registry does not list by serial: matched by identifier, or listed for review)."""
    wanted = set(keys)
    o = SubscriberObservation
    issuers = sorted({k for k, _ in wanted})
    serials = sorted({s for _, s in wanted})
    for start in range(0, len(serials), 500):
        stmt = (select(o.issuer_key, o.serial, func.min(o.issuer), func.min(o.uid),
                       func.min(o.subject))
                .where(o.issuer_key.in_(issuers), o.serial.in_(serials[start:start + 500]))
                .group_by(o.issuer_key, o.serial))
        for r in conn.execute(stmt):
            item = seen.get((r[0], r[1]))
            if item is not None and (r[0], r[1]) in wanted:
                item.issuer, item.uid, item.subject = r[2], r[3], r[4]
    for p in pending:
        item = seen.get((p.issuer_key, p.serial))
        if item is not None and (p.issuer_key, p.serial) in wanted and not item.issuer:
            item.issuer, item.uid, item.subject = p.issuer, p.uid, p.subject


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def signatures_since(conn: Connection, since: Mapping[tuple[str, str], datetime],
                     pending: Sequence[ObservationRow] = ()
                     ) -> dict[tuple[str, str], list[ObservationRow]]:
    """For each certificate (issuer key, serial) in ``since``, its signatures received at or
    after the instant given (the alarms' detail), in one query per 500 certificates."""
    o = SubscriberObservation
    out: dict[tuple[str, str], list[ObservationRow]] = {key: [] for key in since}
    issuers = sorted({issuer for issuer, _ in since})
    serials = sorted({serial for _, serial in since})
    rows = list(pending)
    for start in range(0, len(serials), 500):
        rows.extend(
            ObservationRow(r.digest, r.role, int(r.seq), r.received_at, r.month, r.sender,
                           r.serial, r.issuer_key, r.issuer, r.uid, r.subject, r.fingerprint)
            for r in conn.execute(select(*o.__table__.c)
                                  .where(o.issuer_key.in_(issuers),
                                         o.serial.in_(serials[start:start + 500]))
                                  .order_by(o.seq)))
    for row in rows:
        key = (row.issuer_key, row.serial)
        if key in out and row.received_at >= since[key]:
            out[key].append(row)
    return out

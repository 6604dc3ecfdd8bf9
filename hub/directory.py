"""The organization directory: who exists, under whom, when, how they are reached, who signs.

Pure data plus one loader (:meth:`Directory.load`), the only I/O in this module. Operators edit a
TOML file; every mistake is a :class:`~hub.errors.ConfigurationError` naming the file and line.

History matters: bodies are merged, renamed and abolished (the district level ended on
2025-07-01, provinces were merged the same year), yet old documents keep the codes they were sent
with. Each entry therefore carries ``valid_from``/``valid_to``: inclusive days in the file,
aware instants in :class:`OrgEntry` (``valid_to`` exclusive: the first instant no longer valid).
Routing asks :meth:`Directory.find` with the current time; reporting may ask without one. Levels and parents
are data, never derived from a fixed number of administrative levels.

A body may list several codes: the legacy QCVN 102:2016 code and its Decision 20/2020/QĐ-TTg
electronic identifier (``000.00.01.H27`` and ``H27.01``). The ledger keeps the code as received.

File format (``[[org]]`` tables, unknown keys are errors)::

    [[org]]
    codes = ["000.00.00.H27", "H27"]      # one or more codes, either syntax
    name = "Ủy ban nhân dân tỉnh Hà Tĩnh"
    level = 1
    parent = "000.00.00.H27"             # optional: a code of another entry
    valid_from = 2016-04-01              # optional TOML dates, inclusive
    valid_to = 2025-06-30
    successor = "H27.101"                # optional: where a merged/abolished body's work went
    broker_user = "000.00.00.H27"        # the AMQP user the body publishes as
    reach = "direct"                     # "direct" (connected to this hub) | "axis" (national axis)
    province = "H27"                     # optional, default: level 1 of the first code

      [[org.signer]]
      uid = "000.00.00.H27"              # certificate subject UID (0.9.2342.19200300.100.1.1)
      role = "organization"              # "organization" (the seal) | "person"
      name = "Ủy ban nhân dân tỉnh Hà Tĩnh"
      position = ""
      # and/or: fingerprint = "sha256:<hex of the DER certificate>"

Signer uids in the bundled sample (the test PKI issues certificates with these subject UIDs; keep
them stable): every organization signs with ``uid = <its first code>``; person signers use
``CCCD:0420800000NN`` (citizen identity numbers, synthetic).
"""

from __future__ import annotations

import importlib.resources
import itertools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from hub.edxml.errors import EnvelopeRefused
from hub.edxml.model import VIETNAM_TZ
from hub.edxml.orgcode import OrgCode
from hub.errors import ConfigurationError

Reach = Literal["direct", "axis"]
SignerRole = Literal["organization", "person"]
SAMPLE_FILE = "directory-ha-tinh.toml"

_ORG_KEYS = frozenset(
    {
        "codes",
        "name",
        "level",
        "parent",
        "valid_from",
        "valid_to",
        "successor",
        "broker_user",
        "reach",
        "province",
        "signer",
        "note",
    }
)
_SIGNER_KEYS = frozenset(
    {"uid", "fingerprint", "role", "name", "position", "valid_from", "valid_to"}
)
_EARLIEST = datetime.min.replace(tzinfo=VIETNAM_TZ)
_FINGERPRINT = re.compile(r"sha256:([0-9a-fA-F]{2}(?::?[0-9a-fA-F]{2}){31})")


@dataclass(frozen=True, slots=True)
class Signer:
    """A certificate holder allowed to sign for an organization."""

    role: SignerRole
    uid: str | None = None
    """Matched against the certificate subject's UID attribute."""
    fingerprint: str | None = None
    """Lower-case hex SHA-256 of the DER certificate (no colons)."""
    name: str = ""
    position: str = ""
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def valid_at(self, at: date | datetime) -> bool:
        return _within(_instant(at), self.valid_from, self.valid_to)

    def matches(self, certificate: x509.Certificate) -> bool:
        """True if the certificate's subject UID or SHA-256 fingerprint is this signer's."""
        if (
            self.fingerprint is not None
            and certificate.fingerprint(hashes.SHA256()).hex() == self.fingerprint
        ):
            return True
        if self.uid is not None:
            return self.uid in certificate_uids(certificate)
        return False


@dataclass(frozen=True, slots=True)
class OrgEntry:
    """One organization of the directory (one period of its existence)."""

    codes: tuple[str, ...]
    name: str
    parent: str | None
    level: int
    valid_from: datetime | None
    """First instant the entry is valid (TOML ``valid_from`` day, 00:00 Vietnam time)."""
    valid_to: datetime | None
    """First instant the entry is NO LONGER valid: the day after the TOML ``valid_to`` (the
    last valid day), 00:00 Vietnam time. ``valid_to = 2025-06-30`` gives 2025-07-01T00:00+07:00."""
    signers: tuple[Signer, ...]
    broker_user: str
    """The AMQP user the body publishes as (default: its first code)."""
    reach: Reach
    province: str
    """Level-1 code of the province (or ministry) the body belongs to, e.g. ``H27``."""
    successor: str | None = None
    line: int = field(default=0, compare=False)
    """Line of the ``[[org]]`` table in the source file (for messages)."""

    @property
    def code(self) -> str:
        """The first (preferred) code."""
        return self.codes[0]

    def valid_at(self, at: date | datetime) -> bool:
        return _within(_instant(at), self.valid_from, self.valid_to)

    def signers_at(self, at: date | datetime) -> tuple[Signer, ...]:
        return tuple(s for s in self.signers if s.valid_at(at))


def certificate_uids(certificate: x509.Certificate) -> tuple[str, ...]:
    """The values of the subject's UID attributes (OID 0.9.2342.19200300.100.1.1)."""
    return tuple(
        str(attr.value) for attr in certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    )


def _within(at: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= at) and (end is None or at < end)


def _instant(at: date | datetime) -> datetime:
    """An aware instant: a date means its start in Vietnam time; a naive time is Vietnam time."""
    if isinstance(at, datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=VIETNAM_TZ)
    return datetime.combine(at, time.min, VIETNAM_TZ)


class EntryList(tuple[OrgEntry, ...]):
    """The entries; also callable (``directory.entries()``) so both spellings work."""

    __slots__ = ()

    def __call__(self) -> EntryList:
        return self


def _normalize(code: str) -> str:
    return code.strip()


class Directory:
    """An immutable, indexed set of :class:`OrgEntry`."""

    def __init__(self, entries: Iterable[OrgEntry], source: str = "<directory>") -> None:
        self._entries = EntryList(entries)
        self.source = source
        index: dict[str, list[OrgEntry]] = {}
        for entry in self._entries:
            for code in entry.codes:
                index.setdefault(_normalize(code), []).append(entry)
        self._by_code = {k: tuple(v) for k, v in index.items()}

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Directory:
        """Load an operator-edited TOML directory; raise ConfigurationError naming the line."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{p}: directory file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{p}: cannot read directory: {exc}") from None
        return cls.from_toml(text, str(p))

    @classmethod
    def sample(cls) -> Directory:
        """The bundled Hà Tĩnh (H27) sample directory."""
        resource = importlib.resources.files("hub") / "data" / SAMPLE_FILE
        return cls.from_toml(resource.read_text(encoding="utf-8"), f"hub/data/{SAMPLE_FILE}")

    @classmethod
    def from_toml(cls, text: str, source: str = "<directory>") -> Directory:
        """Parse the TOML text of a directory (``source`` names it in error messages)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
        return _Loader(text, source).build(data)

    # -- queries -----------------------------------------------------------------------------

    @property
    def entries(self) -> EntryList:
        """Every entry, past ones included (``directory.entries`` or ``directory.entries()``)."""
        return self._entries

    def find(self, code: str, at: date | datetime | None = None) -> OrgEntry | None:
        """The entry holding ``code``; with ``at``, only one valid on that day.

        Without ``at`` the most recent entry is returned (for history and reports).
        """
        candidates = self._by_code.get(_normalize(code), ())
        if at is None:
            if not candidates:
                return None
            return max(candidates, key=lambda e: e.valid_from or _EARLIEST)
        for entry in candidates:
            if entry.valid_at(at):
                return entry
        return None

    def signer_for(
        self, organ_id: str, certificate: x509.Certificate, at: date | datetime
    ) -> Signer | None:
        """The signer of ``organ_id`` (valid at ``at``) that ``certificate`` belongs to, if any."""
        entry = self.find(organ_id, at)
        if entry is None:
            return None
        for signer in entry.signers_at(at):
            if signer.matches(certificate):
                return signer
        return None

    def authorizes(self, organ_id: str, certificate: x509.Certificate, at: date | datetime) -> bool:
        """May the holder of ``certificate`` sign for ``organ_id`` at ``at``?"""
        return self.signer_for(organ_id, certificate, at) is not None

    def province_of(self, code: str) -> str | None:
        """The province (level-1 code) of ``code``: from the directory, else from its syntax."""
        entry = self.find(code)
        if entry is not None:
            return entry.province
        try:
            return OrgCode.parse(code).level1
        except EnvelopeRefused:
            return None

    def is_in_province(self, code: str, province: str) -> bool:
        return self.province_of(code) == province

    def by_broker_user(self, user: str, at: date | datetime | None = None) -> tuple[OrgEntry, ...]:
        """Entries that publish as AMQP user ``user`` (valid at ``at`` when given)."""
        return tuple(
            e for e in self._entries if e.broker_user == user and (at is None or e.valid_at(at))
        )

    def children(self, code: str, at: date | datetime | None = None) -> tuple[OrgEntry, ...]:
        """Entries whose parent is ``code`` or another code of the same body."""
        entry = self.find(code, at)
        if entry is None:
            return ()
        codes = set(entry.codes)
        return tuple(
            e for e in self._entries if e.parent in codes and (at is None or e.valid_at(at))
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Directory({self.source!r}, {len(self._entries)} entries)"


class _Loader:
    """Turns parsed TOML into entries; knows the source text to name lines in errors."""

    _ORG_LINE = re.compile(r"^[ \t]*\[\[[ \t]*org[ \t]*\]\]", re.MULTILINE)
    _SIGNER_LINE = re.compile(r"^[ \t]*\[\[[ \t]*org[ \t]*\.[ \t]*signer[ \t]*\]\]", re.MULTILINE)

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.org_offsets = [m.start() for m in self._ORG_LINE.finditer(text)]
        self.signer_offsets = [m.start() for m in self._SIGNER_LINE.finditer(text)]

    def _line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def org_line(self, index: int) -> int:
        if index < len(self.org_offsets):
            return self._line_of(self.org_offsets[index])
        return 0  # an inline array (org = [...]) has no table header to point at

    def signer_line(self, org_index: int, signer_index: int) -> int:
        start = self.org_offsets[org_index] if org_index < len(self.org_offsets) else 0
        end = (
            self.org_offsets[org_index + 1]
            if org_index + 1 < len(self.org_offsets)
            else len(self.text)
        )
        inside = [o for o in self.signer_offsets if start <= o < end]
        if signer_index < len(inside):
            return self._line_of(inside[signer_index])
        return self.org_line(org_index)

    def error(self, line: int, message: str) -> ConfigurationError:
        where = f"{self.source}:{line}" if line else self.source
        return ConfigurationError(f"{where}: {message}")

    def build(self, data: Mapping[str, Any]) -> Directory:
        for key in data:
            if key not in {"org", "directory"}:
                raise self.error(0, f"unknown top-level key {key!r} (expected [[org]] tables)")
        orgs = data.get("org", [])
        if not isinstance(orgs, list):
            raise self.error(0, "'org' must be an array of tables ([[org]])")
        entries = [self._entry(i, raw) for i, raw in enumerate(orgs)]
        self._check_consistency(entries)
        return Directory(entries, self.source)

    def _entry(self, index: int, raw: Any) -> OrgEntry:
        line = self.org_line(index)
        if not isinstance(raw, dict):
            raise self.error(line, "[[org]] must be a table")
        for key in raw:
            if key not in _ORG_KEYS:
                raise self.error(line, f"unknown key {key!r} in [[org]]")
        codes = raw.get("codes")
        if isinstance(codes, str):
            codes = [codes]
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise self.error(line, "'codes' must be a non-empty list of organization codes")
        parsed: list[OrgCode] = []
        for code in codes:
            try:
                parsed.append(OrgCode.parse(code))
            except EnvelopeRefused:
                raise self.error(line, f"malformed organization code {code!r}") from None
        label = f"[[org]] {codes[0]}"
        name = self._str(raw, "name", line, label, required=True)
        level = raw.get("level", parsed[0].depth)
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise self.error(line, f"{label}: 'level' must be a positive integer")
        valid_from = self._date(raw, "valid_from", line, label)
        valid_to = self._date(raw, "valid_to", line, label)
        if valid_from and valid_to and valid_to <= valid_from:
            raise self.error(line, f"{label}: valid_to is before valid_from")
        reach = raw.get("reach", "direct")
        if reach not in ("direct", "axis"):
            raise self.error(line, f'{label}: \'reach\' must be "direct" or "axis", not {reach!r}')
        parent = self._str(raw, "parent", line, label) or None
        successor = self._str(raw, "successor", line, label) or None
        for ref_name, ref in (("parent", parent), ("successor", successor)):
            if ref is not None and not OrgCode.is_valid(ref):
                raise self.error(line, f"{label}: {ref_name} {ref!r} is not an organization code")
        province = self._str(raw, "province", line, label) or parsed[0].level1
        signers_raw = raw.get("signer", [])
        if not isinstance(signers_raw, list):
            raise self.error(line, f"{label}: 'signer' must be an array of tables ([[org.signer]])")
        signers = tuple(self._signer(index, j, s, label) for j, s in enumerate(signers_raw))
        broker_user = self._str(raw, "broker_user", line, label) or codes[0].strip()
        return OrgEntry(
            codes=tuple(c.strip() for c in codes),
            name=name,
            parent=parent,
            level=level,
            valid_from=valid_from,
            valid_to=valid_to,
            signers=signers,
            broker_user=broker_user,
            reach=reach,
            province=province,
            successor=successor,
            line=line,
        )

    def _signer(self, org_index: int, index: int, raw: Any, label: str) -> Signer:
        line = self.signer_line(org_index, index)
        where = f"{label} signer #{index + 1}"
        if not isinstance(raw, dict):
            raise self.error(line, f"{where}: [[org.signer]] must be a table")
        for key in raw:
            if key not in _SIGNER_KEYS:
                raise self.error(line, f"{where}: unknown key {key!r}")
        role = raw.get("role")
        if role not in ("organization", "person"):
            raise self.error(line, f'{where}: \'role\' must be "organization" or "person"')
        uid = self._str(raw, "uid", line, where) or None
        fingerprint_text = self._str(raw, "fingerprint", line, where) or None
        fingerprint = None
        if fingerprint_text is not None:
            match = _FINGERPRINT.fullmatch(fingerprint_text.strip())
            if match is None:
                raise self.error(line, f"{where}: fingerprint must be 'sha256:' + 64 hex digits")
            fingerprint = match.group(1).replace(":", "").lower()
        if uid is None and fingerprint is None:
            raise self.error(line, f"{where}: give 'uid' and/or 'fingerprint'")
        valid_from = self._date(raw, "valid_from", line, where)
        valid_to = self._date(raw, "valid_to", line, where)
        return Signer(
            role=role,
            uid=uid,
            fingerprint=fingerprint,
            name=self._str(raw, "name", line, where),
            position=self._str(raw, "position", line, where),
            valid_from=valid_from,
            valid_to=valid_to,
        )

    def _str(
        self, raw: Mapping[str, Any], key: str, line: int, label: str, *, required: bool = False
    ) -> str:
        value = raw.get(key)
        if value is None:
            if required:
                raise self.error(line, f"{label}: '{key}' is required")
            return ""
        if not isinstance(value, str):
            raise self.error(line, f"{label}: '{key}' must be a string")
        if required and not value.strip():
            raise self.error(line, f"{label}: '{key}' must not be empty")
        return value

    def _date(self, raw: Mapping[str, Any], key: str, line: int, label: str) -> datetime | None:
        """A validity bound as an aware instant (``valid_to``: the day after the last day)."""
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self.error(line, f"{label}: '{key}' must be a TOML date (YYYY-MM-DD)")
        if key == "valid_to":
            value = value + timedelta(days=1)
        return datetime.combine(value, time.min, VIETNAM_TZ)

    def _check_consistency(self, entries: list[OrgEntry]) -> None:
        by_code: dict[str, list[OrgEntry]] = {}
        for entry in entries:
            for code in entry.codes:
                by_code.setdefault(code, []).append(entry)
        # One code, one body at a time: periods of entries sharing a code must not overlap.
        for code, holders in by_code.items():
            ordered = sorted(holders, key=lambda e: e.valid_from or _EARLIEST)
            for before, after in itertools.pairwise(ordered):
                if (
                    before.valid_to is None
                    or after.valid_from is None
                    or after.valid_from < before.valid_to
                ):
                    raise self.error(
                        after.line,
                        f"code {code!r} is already held by the entry at line "
                        f"{before.line} in an overlapping period",
                    )
        for entry in entries:
            for ref_name, ref in (("parent", entry.parent), ("successor", entry.successor)):
                if ref is not None and ref not in by_code:
                    raise self.error(
                        entry.line,
                        f"[[org]] {entry.code}: {ref_name} {ref!r} is not in the directory",
                    )

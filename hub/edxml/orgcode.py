"""Organization codes (mã định danh) and DocumentIds.

Three syntaxes are accepted, because all three are in circulation:

``legacy``  ``CCC.BB.AA.Xnn`` — QCVN 102:2016 / Decision 28/2018 Art. 10(2)(a): 13 characters, four
            groups read **right to left**: ``Xnn`` level 1 (G = Government bodies, H = provincial
            People's Committees, K = provincial People's Councils, …), ``AA`` level 2 (a department
            or district), ``BB`` level 3 (a commune or a unit of a department), ``CCC`` level 4.
            Zeros mean "the body of the level to the right itself": ``000.00.00.H27`` is UBND tỉnh
            Hà Tĩnh, ``000.00.01.H27`` its Office.
``legacy3`` ``BB.AA.Xnn`` — an older three-group form seen on Hồ Chí Minh City's hub
            (``00.64.H29`` = UBND quận Tân Phú).
``eid``     Decision 20/2020/QĐ-TTg electronic identifier, mandatory for QCVN 102 since amendment
            1:2022 (Circular 01/2022/TT-BTTTT): at most 35 characters of ``.``, ``0-9``, ``A-Z``,
            groups read **left to right**, the first is the level-1 code: ``H27.01``.

Levels and parents derived here are *syntactic*; the directory (:mod:`hub.directory`) is the
authority on which bodies exist and when.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from hub.edxml.errors import EnvelopeRefused
from hub.reasons import Reason

# ASCII digits only ([0-9], not \d, which takes any Unicode digit).
_LEGACY = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_LEGACY3 = re.compile(r"[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_EID = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Z]+)*")
EID_MAX_LENGTH = 35
"""Decision 20/2020/QĐ-TTg; QCVN 102 amendment 1:2022 raised OrganId's length from 13 to 35."""


class OrgCodeFormat(enum.StrEnum):
    LEGACY = "legacy"
    LEGACY3 = "legacy3"
    EID = "eid"


@dataclass(frozen=True, slots=True)
class OrgCode:
    """A parsed organization code. ``str()`` gives the text exactly as received."""

    text: str
    format: OrgCodeFormat
    groups: tuple[str, ...]
    """The groups in the order written (left to right)."""

    @classmethod
    def parse(cls, text: str) -> OrgCode:
        """Parse either format; raise :class:`EnvelopeRefused` (ORGAN_ID_INVALID) otherwise."""
        if not isinstance(text, str):
            raise EnvelopeRefused(Reason.ORGAN_ID_INVALID, "organization code is not text")
        candidate = text.strip()
        groups = tuple(candidate.split("."))
        if _LEGACY.fullmatch(candidate):
            return cls(text, OrgCodeFormat.LEGACY, groups)
        if _LEGACY3.fullmatch(candidate):
            return cls(text, OrgCodeFormat.LEGACY3, groups)
        if _EID.fullmatch(candidate) and len(candidate) <= EID_MAX_LENGTH:
            return cls(text, OrgCodeFormat.EID, groups)
        raise EnvelopeRefused(Reason.ORGAN_ID_INVALID, f"malformed organization code {text[:40]!r}")

    @staticmethod
    def is_valid(text: str) -> bool:
        try:
            OrgCode.parse(text)
        except EnvelopeRefused:
            return False
        return True

    def __str__(self) -> str:
        return self.text

    @property
    def normalized(self) -> str:
        """The code without surrounding whitespace (what the directory is keyed by)."""
        return ".".join(self.groups)

    @property
    def level1(self) -> str:
        """The level-1 code, e.g. ``H27`` (rightmost group for legacy, leftmost for eid)."""
        return self.groups[0] if self.format is OrgCodeFormat.EID else self.groups[-1]

    @property
    def _levels(self) -> tuple[str, ...]:
        """Groups from level 1 downwards."""
        return self.groups if self.format is OrgCodeFormat.EID else self.groups[::-1]

    @property
    def depth(self) -> int:
        """1 for a level-1 body; for legacy codes the lowest level whose group is not zeros."""
        if self.format is OrgCodeFormat.EID:
            return len(self.groups)
        levels = self._levels
        deepest = 1
        for i, group in enumerate(levels[1:], start=2):
            if group.strip("0"):
                deepest = i
        return deepest

    @property
    def parent(self) -> OrgCode | None:
        """The syntactic parent (None at level 1).

        Legacy: zero the group of the deepest non-zero level (``000.05.31.H27`` →
        ``000.00.31.H27``). EID: drop the last group (``H27.01`` → ``H27``).
        """
        if self.depth == 1:
            return None
        if self.format is OrgCodeFormat.EID:
            groups = self.groups[:-1]
        else:
            levels = list(self._levels)
            levels[self.depth - 1] = "0" * len(levels[self.depth - 1])
            groups = tuple(levels[::-1])
        return OrgCode(".".join(groups), self.format, groups)

    def ancestors(self) -> tuple[OrgCode, ...]:
        """Parents up to level 1, nearest first."""
        out: list[OrgCode] = []
        node = self.parent
        while node is not None:
            out.append(node)
            node = node.parent
        return tuple(out)


DATE_FORMAT = "%Y/%m/%d"
_DATE = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2}")


def parse_date(text: str, reason: Reason = Reason.DATE_INVALID) -> date:
    """Parse a QCVN 102 date ``YYYY/MM/DD``; refuse anything else with ``reason``."""
    candidate = text.strip()
    if not _DATE.fullmatch(candidate):
        raise EnvelopeRefused(reason, f"date {text[:20]!r} is not YYYY/MM/DD")
    try:
        # The pattern fixed the layout: date() refuses what strptime would (Feb 30, year 0).
        return date(int(candidate[0:4]), int(candidate[5:7]), int(candidate[8:10]))
    except ValueError:
        raise EnvelopeRefused(reason, f"date {candidate!r} does not exist") from None


def format_date(value: date) -> str:
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


@dataclass(frozen=True, slots=True)
class DocumentId:
    """``DocumentId`` (QCVN 102 §1.14): ``{senderOrganId},{YYYY/MM/DD},{number}/{notation}``."""

    organ_id: str
    promulgation_date: date
    number: str
    notation: str

    @classmethod
    def parse(cls, text: str) -> DocumentId:
        """Parse; raise :class:`EnvelopeRefused` (DOCUMENT_ID_INVALID) when malformed."""
        parts = text.strip().split(",", 2)
        if len(parts) != 3:
            raise EnvelopeRefused(
                Reason.DOCUMENT_ID_INVALID, "DocumentId needs three comma-separated parts"
            )
        organ, when, code = parts
        if not OrgCode.is_valid(organ):
            raise EnvelopeRefused(Reason.DOCUMENT_ID_INVALID, "DocumentId has a malformed organ id")
        day = parse_date(when, Reason.DOCUMENT_ID_INVALID)
        number, slash, notation = code.partition("/")
        if not slash or not number.strip() or not notation.strip():
            raise EnvelopeRefused(
                Reason.DOCUMENT_ID_INVALID, "DocumentId needs number/notation as its third part"
            )
        return cls(organ, day, number, notation)

    @classmethod
    def make(cls, organ_id: str, promulgation_date: date, number: str, notation: str) -> DocumentId:
        return cls(organ_id, promulgation_date, number, notation)

    def __str__(self) -> str:
        return (
            f"{self.organ_id},{format_date(self.promulgation_date)},{self.number}/{self.notation}"
        )

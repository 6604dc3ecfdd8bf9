"""Data-driven corpus: every vector in tests/vectors/edxml/manifest.toml parses as declared.

The manifest is loaded into frozen cases (pyhanko-certvalidator's ``test_validate.py`` style) and
each case is a test with a readable id (the vector's file name).
"""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hub.edxml import Envelope, EnvelopeRefused, Limits, StatusPacket, parse_packet
from hub.reasons import Reason

CORPUS = Path(__file__).resolve().parents[2] / "vectors" / "edxml"

PARSE_REASONS = {
    Reason.ENVELOPE_MALFORMED,
    Reason.ENVELOPE_TOO_LARGE,
    Reason.ENVELOPE_TOO_DEEP,
    Reason.ENVELOPE_TOO_MANY_ELEMENTS,
    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
    Reason.ENVELOPE_DTD_FORBIDDEN,
    Reason.ENVELOPE_SCHEMA_INVALID,
    Reason.ENVELOPE_NOT_EDXML,
    Reason.ENVELOPE_ENCODING_INVALID,
    Reason.ATTACHMENT_TOO_LARGE,
    Reason.ATTACHMENT_ENCODING_INVALID,
    Reason.ATTACHMENT_NOT_IN_MANIFEST,
    Reason.ORGAN_ID_INVALID,
    Reason.DOCUMENT_ID_INVALID,
    Reason.DATE_INVALID,
    Reason.STATUS_CODE_INVALID,
    Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT,
    Reason.FIELD_TOO_LONG,
}
"""Every reason hub.edxml's parser can give."""


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    expect: str
    description: str
    limits: Limits = field(default_factory=Limits)
    status_code: str | None = None
    business_kind: int | None = None
    classified: bool = False

    @property
    def id(self) -> str:
        return Path(self.file).stem

    @property
    def data(self) -> bytes:
        return (CORPUS / self.file).read_bytes()


def _load() -> list[Case]:
    raw: dict[str, Any] = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))
    cases = []
    for entry in raw["vector"]:
        entry = dict(entry)
        entry["limits"] = Limits(**entry.get("limits", {}))
        cases.append(Case(**entry))
    return cases


CASES = _load()


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.expect in {"document", "status"}], ids=lambda c: c.id
)
def test_a_valid_vector_parses(case: Case) -> None:
    packet = parse_packet(case.data, case.limits)
    if case.expect == "document":
        assert isinstance(packet, Envelope)
        assert int(packet.business_kind) == (case.business_kind or 0)
        assert packet.is_classified is case.classified
        assert len(packet.attachments) == len(packet.manifest)
    else:
        assert isinstance(packet, StatusPacket)
        assert packet.status_code == case.status_code
    assert packet.raw == case.data


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.expect not in {"document", "status"}], ids=lambda c: c.id
)
def test_a_malformed_vector_is_refused_with_its_reason(case: Case) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(case.data, case.limits)
    assert caught.value.reason is Reason(case.expect), caught.value.detail
    assert f"-{case.expect}-" in case.file


def test_every_parse_reason_has_a_vector() -> None:
    covered = {Reason(c.expect) for c in CASES if c.expect not in {"document", "status"}}
    assert covered == PARSE_REASONS
    assert sum(1 for c in CASES if c.expect not in {"document", "status"}) >= 30


def test_every_demo_document_type_and_status_code_has_a_valid_vector() -> None:
    names = {c.id for c in CASES}
    for kind in ("cong-van", "quyet-dinh", "to-trinh", "bao-cao", "thong-bao"):
        assert f"document-{kind}" in names
    for code in ("01", "02", "03", "04", "05", "06", "13", "15", "16"):
        assert f"status-{code}" in names


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_vectors", CORPUS / "make_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_corpus_is_what_the_generator_makes() -> None:
    generator = _generator()
    items = generator.vectors()
    for path, data, _fields in items:
        assert (CORPUS / path).read_bytes() == data, path
    assert (CORPUS / "manifest.toml").read_text(encoding="utf-8") == generator.manifest_text(items)
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("*/*.xml")}
    assert on_disk == {path for path, _data, _fields in items}

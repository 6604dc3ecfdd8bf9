"""Directory sync: the axis' agencies as external bodies, a diff report, nothing local deleted."""

from __future__ import annotations

import importlib.resources

from hub.axis.directory_sync import BEGIN, sync_directory
from hub.axis.protocol import Agency
from hub.directory import SAMPLE_FILE, Directory

SAMPLE = (importlib.resources.files("hub") / "data" / SAMPLE_FILE).read_text("utf-8")
MINISTRY_OF_FINANCE = Agency("G12", "Bộ Tài chính", code102="000.00.00.G12")
QUANG_BINH = Agency("000.00.00.H31", "Ủy ban nhân dân tỉnh Quảng Bình")


def test_new_agencies_become_external_bodies_reached_through_the_axis() -> None:
    text, report = sync_directory(SAMPLE, [MINISTRY_OF_FINANCE, QUANG_BINH])
    assert report.added == ("000.00.00.G12", "000.00.00.H31")
    directory = Directory.from_toml(text)
    entry = directory.find("G12")
    assert entry is not None
    assert entry.reach == "axis"
    assert entry.broker_user == "axis-gateway"
    assert entry.codes == ("000.00.00.G12", "G12")
    assert [s.uid for s in entry.signers] == ["000.00.00.G12"]


def test_local_entries_are_kept_as_written_and_a_different_name_is_only_reported() -> None:
    renamed_province = Agency("000.00.00.H27", "UBND tỉnh Hà Tĩnh (tên trên trục)")
    text, report = sync_directory(SAMPLE, [renamed_province, MINISTRY_OF_FINANCE])
    assert text.startswith(SAMPLE.rstrip("\n"))  # the operator's file, byte for byte
    assert report.local == ("000.00.00.H27",)
    assert report.renamed_local[0][0] == "000.00.00.H27"
    before, after = Directory.from_toml(SAMPLE), Directory.from_toml(text)
    for entry in before.entries:
        assert entry.codes[0] in {c for e in after.entries for c in e.codes}
    assert after.find("000.00.00.H27").name == before.find("000.00.00.H27").name  # type: ignore[union-attr]


def test_a_second_sync_replaces_only_its_block_and_keeps_bodies_the_axis_dropped() -> None:
    first, _ = sync_directory(SAMPLE, [MINISTRY_OF_FINANCE, QUANG_BINH])
    renamed = Agency("G12", "Bộ Tài chính (mới)", code102="000.00.00.G12")
    second, report = sync_directory(first, [renamed])
    assert second.count(BEGIN) == 1
    assert report.updated == ("000.00.00.G12",)
    assert report.vanished == ("000.00.00.H31",)
    directory = Directory.from_toml(second)
    assert directory.find("G12").name == "Bộ Tài chính (mới)"  # type: ignore[union-attr]
    assert directory.find("000.00.00.H31") is not None  # never deleted
    third, report = sync_directory(second, [renamed])
    assert third == second
    assert report.unchanged == 1
    assert report.added == ()


def test_agencies_without_a_valid_code_or_with_a_taken_one_are_skipped_and_reported() -> None:
    _, report = sync_directory(SAMPLE, [Agency("not a code", "X"), MINISTRY_OF_FINANCE,
                                        Agency("000.00.00.G12", "Bộ Tài chính (bản sao)")])
    assert report.skipped == ("not a code", "000.00.00.G12")
    assert report.added == ("000.00.00.G12",)
    assert "skipped" in " ".join(report.lines())

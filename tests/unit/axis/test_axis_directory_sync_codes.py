"""Directory sync never drops an imported code, never moves one to another body on its own, and
reports every change of who may sign for a code; names TOML cannot hold raw are escaped."""

from __future__ import annotations

import importlib.resources

import pytest

from hub.axis.directory_sync import sync_directory
from hub.axis.protocol import Agency
from hub.directory import SAMPLE_FILE, Directory, OrgEntry

SAMPLE = (importlib.resources.files("hub") / "data" / SAMPLE_FILE).read_text("utf-8")
HEALTH = Agency("G12", "Bộ Y tế", code102="000.00.00.G12")
CONSTRUCTION = Agency("G11", "Bộ Xây dựng", code102="000.00.00.G11")


def _entry(text: str, code: str) -> OrgEntry:
    entry = Directory.from_toml(text).find(code)
    assert entry is not None, code
    return entry


def _uids(entry: OrgEntry) -> list[str | None]:
    return [s.uid for s in entry.signers]


def test_a_code_the_axis_stops_listing_for_a_body_it_still_lists_is_kept_and_reported() -> None:
    # Given the ministry imported with both its codes
    first, _ = sync_directory(SAMPLE, [HEALTH])
    # When the axis lists it by its identifier only
    second, report = sync_directory(first, [Agency("G12", "Bộ Y tế")])
    # Then its legacy code still finds it (old documents stay routable), same signer
    assert _entry(second, "000.00.00.G12").codes == ("000.00.00.G12", "G12")
    assert _uids(_entry(second, "G12")) == ["000.00.00.G12"]
    # and the report names the code, and the file marks it
    assert report.unlisted == ("000.00.00.G12",)
    assert "000.00.00.G12" in " ".join(report.lines())
    assert "no longer listed by the axis: 000.00.00.G12" in second
    # and the same answer again changes nothing
    third, _ = sync_directory(second, [Agency("G12", "Bộ Y tế")])
    assert third == second


def test_a_code_the_axis_lists_under_another_body_is_not_moved_and_each_code_is_reported() -> None:
    # Given two ministries imported with both their codes
    first, _ = sync_directory(SAMPLE, [HEALTH, CONSTRUCTION])
    # When the axis lists G11's legacy code under G12's record and G11 by its identifier only
    second, report = sync_directory(first, [Agency("G12", "Bộ Y tế", code102="000.00.00.G11"),
                                            Agency("G11", "Bộ Xây dựng")])
    # Then no code changed body and no signer changed: the directory is as it was
    assert _entry(second, "000.00.00.G12").codes == ("000.00.00.G12", "G12")
    assert _entry(second, "000.00.00.G11").codes == ("000.00.00.G11", "G11")
    assert _uids(_entry(second, "G12")) == ["000.00.00.G12"]
    assert _uids(_entry(second, "G11")) == ["000.00.00.G11"]
    assert report.signer_changes == ()
    # and each code whose body the axis changes is reported, as not applied
    moved = {code: (on_file, on_axis) for code, on_file, on_axis in report.moved}
    assert set(moved) == {"000.00.00.G11", "G11", "G12"}
    assert moved["000.00.00.G11"] == ("Bộ Xây dựng [000.00.00.G11, G11]",
                                      "Bộ Y tế [000.00.00.G11, G12]")
    assert not report.moves_applied
    assert report.updated == ()
    text = "\n".join(report.lines())
    assert "NOT applied" in text
    assert "000.00.00.G11: on file Bộ Xây dựng" in text
    assert report.to_dict()["moved"][0]["code"] in moved
    # and the same answer again gives the same file and the same report
    third, again = sync_directory(second, [Agency("G12", "Bộ Y tế", code102="000.00.00.G11"),
                                           Agency("G11", "Bộ Xây dựng")])
    assert third == second
    assert again.moved == report.moved


def test_with_moves_allowed_a_code_changes_body_no_code_is_dropped_and_each_signer_change_is_reported(
) -> None:
    first, _ = sync_directory(SAMPLE, [HEALTH, CONSTRUCTION])
    # When the operator lets the axis' answer move codes
    second, report = sync_directory(first, [Agency("G12", "Bộ Y tế", code102="000.00.00.G11"),
                                            Agency("G11", "Bộ Xây dựng")], rebind=True)
    # Then the codes are where the axis says
    assert _entry(second, "G12").codes == ("000.00.00.G11", "G12")
    assert _entry(second, "G11").codes == ("G11",)
    # and the code nobody lists any more is still in the directory, with its old signer
    kept = _entry(second, "000.00.00.G12")
    assert kept.codes == ("000.00.00.G12",)
    assert _uids(kept) == ["000.00.00.G12"]
    assert "000.00.00.G12" in report.unlisted
    # and the report says it applied the moves and names each new signer
    assert report.moves_applied
    assert {c for c, _, _ in report.moved} == {"000.00.00.G11", "G11", "G12"}
    assert set(report.signer_changes) == {("G12", "000.00.00.G12", "000.00.00.G11"),
                                          ("G11", "000.00.00.G11", "G11")}
    text = "\n".join(report.lines())
    assert "(applied)" in text
    assert "G12: 000.00.00.G12 -> 000.00.00.G11" in text


def test_a_body_first_listed_by_its_identifier_keeps_its_signer_when_the_axis_adds_its_legacy_code(
) -> None:
    first, _ = sync_directory(SAMPLE, [Agency("G12", "Bộ Y tế")])
    second, report = sync_directory(first, [HEALTH])
    entry = _entry(second, "000.00.00.G12")
    assert entry.codes == ("G12", "000.00.00.G12")
    assert _uids(entry) == ["G12"]
    assert report.updated == ("G12",)
    assert report.signer_changes == ()


@pytest.mark.parametrize("odd", ["\x7f", "\x00", "\x08", "\x0b", "\x1f", "\x1b[31m", "\ud800"],
                         ids=["DEL", "NUL", "BS", "VT", "US", "ESC", "lone-surrogate"])
def test_a_name_with_a_character_toml_forbids_raw_is_written_escaped_and_the_sync_succeeds(
    odd: str,
) -> None:
    # Given one agency among many whose name holds a control character
    text, report = sync_directory(SAMPLE, [CONSTRUCTION, Agency("G12", f"Bộ Y tế{odd}")])
    # Then the sync writes a directory the hub loads, valid UTF-8, the name kept where it can be
    assert report.added == ("000.00.00.G11", "G12")
    text.encode("utf-8")
    name = _entry(text, "G12").name
    assert name.startswith("Bộ Y tế")
    assert name == ("Bộ Y tế\ufffd" if odd == "\ud800" else f"Bộ Y tế{odd}")

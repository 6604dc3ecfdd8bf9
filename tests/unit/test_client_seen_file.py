"""``hub.client.SeenMessages`` on its file: shared between instances, torn lines, bounded size.

Pure file logic, no broker: the rolling-restart scenario on the real broker is in
``tests/integration/broker/test_client_seen_file.py``.
"""

from __future__ import annotations

from pathlib import Path

from hub.client import SeenMessages


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_an_id_another_instance_recorded_after_start_up_is_seen(tmp_path: Path) -> None:
    # Given two receivers on one seen file, both started before anything was recorded
    path = tmp_path / "seen"
    new, old = SeenMessages(path), SeenMessages(path)
    # When the old one records an id
    old.remember("d1:000.00.03.H27")
    # Then the new one finds it (it reads what was appended since it last looked)
    assert "d1:000.00.03.H27" in new
    assert "d2:000.00.03.H27" not in new
    # and does not write it a second time
    new.remember("d1:000.00.03.H27")
    assert _lines(path) == ["d1:000.00.03.H27"]


def test_a_torn_last_line_is_ignored_and_the_next_id_starts_on_a_line_of_its_own(
        tmp_path: Path) -> None:
    # Given a file whose last append was cut short by a crash (no newline)
    path = tmp_path / "seen"
    path.write_text("d1:000.00.03.H27\nd2:000.00.0")
    seen = SeenMessages(path)
    # Then the incomplete id is not taken for handled
    assert "d1:000.00.03.H27" in seen
    assert "d2:000.00.0" not in seen
    assert len(seen) == 1
    # When the next id is recorded, the torn tail is dropped and the id is a line of its own
    seen.remember("d3:000.00.03.H27")
    assert _lines(path) == ["d1:000.00.03.H27", "d3:000.00.03.H27"]
    assert "d3:000.00.03.H27" in SeenMessages(path)


def test_a_torn_line_that_holds_a_whole_id_is_not_a_record_of_it(tmp_path: Path) -> None:
    # The newline is what makes a record complete: the write of "id\n" stopped before it.
    path = tmp_path / "seen"
    path.write_text("d1:000.00.03.H27")
    assert "d1:000.00.03.H27" not in SeenMessages(path)


def test_the_file_is_compacted_to_the_latest_ids_when_it_grows_past_twice_the_bound(
        tmp_path: Path) -> None:
    path = tmp_path / "seen"
    seen = SeenMessages(path, keep=3)
    for n in range(6):
        seen.remember(f"d{n}")
    assert len(_lines(path)) == 6
    # When one more id makes it longer than twice the bound
    seen.remember("d6")
    # Then it holds the latest three, replaced atomically (no temporary file left behind)
    assert _lines(path) == ["d4", "d5", "d6"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["seen"]
    assert len(seen) == 3
    assert "d6" in seen
    assert "d0" not in seen
    # and another instance that read the old file follows the replacement
    other = SeenMessages(path, keep=3)
    seen.remember("d7")
    assert "d7" in other
    assert "d4" in other


def test_an_instance_that_read_the_file_before_compaction_still_finds_new_ids(
        tmp_path: Path) -> None:
    path = tmp_path / "seen"
    early = SeenMessages(path, keep=2)
    writer = SeenMessages(path, keep=2)
    for n in range(6):
        writer.remember(f"d{n}")
    assert "d5" in early
    assert "d0" not in early  # compacted away before this instance looked


def test_in_memory_ids_are_bounded_too(tmp_path: Path) -> None:
    seen = SeenMessages(keep=2)
    for n in range(10):
        seen.remember(f"d{n}")
    assert len(seen) <= 4
    assert "d9" in seen
    assert "d8" in seen

"""Broker accounts when one code is held by two bodies in succession (the 2025 reorganization).

The directory allows a code to pass from one body to another on a day (their periods must not
overlap). The queues are named after the code, so they are shared: on each day exactly one
account may read them — the body holding the code that day — and the body taking it over needs
its account ready before the day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hub.directory import Directory
from hub.errors import ConfigurationError
from hub.ops.cli import EXIT_OK, main
from hub.topology import build_topology, definitions, handovers, permission_matches

MOVED = """
[[org]]
codes = ["000.00.00.H27", "H27"]
name = "Ủy ban nhân dân tỉnh"
valid_from = 2016-04-01

[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã A"
parent = "000.00.00.H27"
valid_from = 2016-04-01
valid_to = 2025-06-30
broker_user = "H27.103"

[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã B"
parent = "000.00.00.H27"
valid_from = 2025-07-01
broker_user = "xa-b"
"""

RENAMED = """
[[org]]
codes = ["000.00.02.H27", "H27.02"]
name = "Sở Nội vụ (old name)"
valid_to = 2025-02-28
broker_user = "000.00.02.H27"

[[org]]
codes = ["000.00.02.H27", "H27.02"]
name = "Sở Nội vụ"
valid_from = 2025-03-01
broker_user = "000.00.02.H27"
"""

INBOX, STATUS = "edxml.org.H27.103.inbox", "edxml.org.H27.103.status"
BEFORE = datetime(2025, 6, 30, 10, 0, tzinfo=UTC)  # 17:00 on 30 June, Vietnam time
AFTER = datetime(2025, 6, 30, 17, 0, tzinfo=UTC)  # 00:00 on 1 July, Vietnam time


def _reads(directory: Directory, at: datetime | date | None) -> dict[str, tuple[bool, bool]]:
    content = definitions(build_topology(directory), directory, at=at)
    return {p["user"]: (permission_matches(p["read"], INBOX), permission_matches(p["read"], STATUS))
            for p in content["permissions"]}


def test_both_holders_of_a_moved_code_get_an_account() -> None:
    # Given a code that passes from xã A to xã B on 1 July 2025
    directory = Directory.from_toml(MOVED)
    # When the definitions are exported on 30 June
    content = definitions(build_topology(directory), directory, at=BEFORE)
    # Then xã B's account exists already (its credentials can be handed out before the day)
    assert {"H27.103", "xa-b"} <= {u["name"] for u in content["users"]}


def test_before_the_move_only_the_holder_of_the_day_reads_the_queues() -> None:
    directory = Directory.from_toml(MOVED)
    reads = _reads(directory, BEFORE)
    assert reads["H27.103"] == (True, True)
    assert reads["xa-b"] == (False, False)


def test_from_the_day_of_the_move_the_new_holder_reads_the_queues_and_the_old_one_no_longer() -> None:
    directory = Directory.from_toml(MOVED)
    reads = _reads(directory, AFTER)
    assert reads["xa-b"] == (True, True)
    assert reads["H27.103"] == (False, False)
    # Both accounts may still publish (the hub checks who may speak for whom, per day)
    content = definitions(build_topology(directory), directory, at=date(2025, 7, 1))
    writes = {p["user"]: permission_matches(p["write"], "edxml.inbound")
              for p in content["permissions"]}
    assert writes["xa-b"]
    assert writes["H27.103"]


def test_without_a_moment_a_code_changing_accounts_is_refused_naming_code_accounts_and_day() -> None:
    directory = Directory.from_toml(MOVED)
    with pytest.raises(ConfigurationError) as caught:
        definitions(build_topology(directory), directory)
    message = str(caught.value)
    for part in ("H27.103", "'H27.103'", "'xa-b'", "2025-07-01"):
        assert part in message, message


def test_a_renamed_body_keeping_its_code_and_account_keeps_one_account_reading_its_queues() -> None:
    # Given the same body in two periods (a new name), same code, same broker account
    directory = Directory.from_toml(RENAMED)
    content = definitions(build_topology(directory), directory)
    users = [u["name"] for u in content["users"]]
    assert users.count("000.00.02.H27") == 1
    [grant] = [p for p in content["permissions"] if p["user"] == "000.00.02.H27"]
    assert permission_matches(grant["read"], "edxml.org.000.00.02.H27.inbox")
    assert handovers(directory) == []


def test_the_handovers_name_the_day_the_code_and_both_accounts() -> None:
    directory = Directory.from_toml(MOVED)
    [handover] = handovers(directory)
    assert (handover.code, handover.day, handover.before, handover.after) == (
        "H27.103", date(2025, 7, 1), "H27.103", "xa-b")
    assert handovers(directory, after=AFTER) == []
    assert handovers(directory, after=BEFORE) == [handover]


def test_the_sample_directory_has_no_handover_and_exports_without_a_moment() -> None:
    directory = Directory.sample()
    assert handovers(directory) == []
    content = definitions(build_topology(directory), directory)
    assert "000.00.31.H27" in {u["name"] for u in content["users"]}  # abolished: drains its queues


def test_the_export_command_prepares_the_day_of_the_move_and_says_what_is_left_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a hub whose directory moves H27.103 from xã A to xã B on 1 July 2025
    (tmp_path / "directory.toml").write_text(MOVED, encoding="utf-8")
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\ndirectory = "directory.toml"\n', encoding="utf-8")
    before, after = tmp_path / "30-june.json", tmp_path / "1-july.json"
    # When the operator exports on 30 June, then prepares the file for 1 July
    assert main(["--config", str(config), "topology", "export", "--at", "2025-06-30",
                 "-o", str(before)]) == EXIT_OK
    note = capsys.readouterr().err
    assert main(["--config", str(config), "topology", "export", "--at", "2025-07-01",
                 "-o", str(after)]) == EXIT_OK
    later = capsys.readouterr().err

    def reader(path: Path) -> list[str]:
        content = json.loads(path.read_text(encoding="utf-8"))
        return [p["user"] for p in content["permissions"]
                if permission_matches(p["read"], INBOX) and p["read"] != ".*"]  # not the hub's

    # Then each file gives the queues to the holder of its day, and the first says what to do
    assert reader(before) == ["H27.103"]
    assert reader(after) == ["xa-b"]
    assert "on 2025-07-01 the queues of H27.103 pass from broker account 'H27.103'" in note
    assert "--at 2025-07-01" in note
    assert "H27.103" not in later

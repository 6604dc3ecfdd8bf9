"""``hub subscribers report`` checks where it will write before it computes anything.

A chart into a folder that does not exist used to print the whole report, then fail: the
operator got a report on the terminal and an error, and a scheduled job a half-done run. Like
``--output-dir``, the chart's folder is checked first: one line, exit 2, nothing else written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ops.cli import main
from hub.ops.subscribers_cli import EXIT_USAGE


@pytest.mark.parametrize("option", ["--chart", "--output"])
def test_a_chart_or_output_into_a_missing_folder_is_refused_before_the_report_runs(
    ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str,
) -> None:
    # Given an existing ledger
    Ledger.open(ledger_url).close()
    target = tmp_path / "no-such-folder" / ("plan.png" if option == "--chart" else "plan.txt")
    # When the report is asked into a folder that does not exist
    code = main(["subscribers", "report", "--url", ledger_url, option, str(target)])
    captured = capsys.readouterr()
    # Then nothing is printed but one line naming the folder, and the exit code is 2
    assert code == EXIT_USAGE
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert str(target.parent) in line
    assert "no such directory" in line
    assert not target.parent.exists()

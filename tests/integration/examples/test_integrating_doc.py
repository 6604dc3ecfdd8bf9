"""docs/INTEGRATING.md's worked example, executed as written against the real broker.

The fenced ``sh`` blocks after ``<!-- example: setup -->`` run first (the operator's part: a
test PKI and ``hub.toml``); the hub is then started in process from that very ``hub.toml``; the
blocks after ``<!-- example -->`` run in order with ``bash -euo pipefail``, each ``hub`` command
being this checkout's CLI. Only the broker URL and the name prefix come from the test (the
``HUB_BROKER__*`` overrides the README documents), so the doc cannot drift from the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.config import load_settings
from hub.messages import Headers
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, running_hub

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "INTEGRATING.md"


def blocks(marker: str) -> list[str]:
    """The ``sh`` blocks that directly follow ``<!-- {marker} -->`` in the doc."""
    text = DOC.read_text(encoding="utf-8")
    pattern = re.compile(r"<!-- " + re.escape(marker) + r" -->\n```sh\n(.*?)\n```", re.DOTALL)
    return pattern.findall(text)


def test_the_doc_has_a_setup_block_and_example_blocks() -> None:
    assert len(blocks("example: setup")) == 1
    assert len(blocks("example")) >= 2


def _shell(script: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (
        f"doc block failed ({result.returncode}):\n{script}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}")
    return result.stdout


def test_the_worked_example_runs_as_written_and_the_letter_and_its_answer_arrive(
        broker_url: str, names: str, tmp_path: Path) -> None:
    # `hub` on PATH is this checkout's CLI
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "hub"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hub "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "agency"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "HUB_BROKER__URL": broker_url, "HUB_BROKER__PREFIX": names}
    env.pop("HUB_CONFIG", None)

    _shell(blocks("example: setup")[0], work, env)
    settings = load_settings(work / "hub.toml", environ={
        "HUB_BROKER__URL": broker_url, "HUB_BROKER__PREFIX": names})
    outputs: list[str] = []
    with running_hub(settings, clock=lambda: datetime.now(UTC)) as hub:
        sends = 0
        for script in blocks("example"):
            outputs.append(_shell(script, work, env))
            sends += len(re.findall(r"^hub send ", script, flags=re.MULTILINE))
            hub.wait_acked(sends)
        letter = (work / "letter.signed.xml").read_bytes()
        inbox = hub.drain(hub.names.inbox(HOME_AFFAIRS))
        statuses = hub.drain(hub.names.status(FINANCE))
    # check said what the doc says it says
    assert "verdict:   ACCEPTED" in outputs[0]
    assert "the whole document (Reference URI=\"\"): header, trace, body and 1 attachment(s)" \
        in outputs[0]
    assert f"route:     {HOME_AFFAIRS} via direct" in outputs[0]
    # the letter arrived byte for byte, once; the answer 03 and the hub's receipts came back
    assert [d.body for d in inbox] == [letter]
    kinds = {(d.headers.get(Headers.RECEIPT), d.headers.get(Headers.STATUS),
              d.headers.get(Headers.REPORTER)) for d in statuses}
    assert ("accepted", None, None) in kinds
    assert (None, "03", HOME_AFFAIRS) in kinds
    assert ("countersigned", "03", HOME_AFFAIRS) in kinds

"""The Node example's seen-set, shared by two receivers (a rolling restart), as hub.client's.

Session 28 made the Python client's seen-set re-read what another instance appended; the Node
example still read its file once at start: a message the old receiver handled and recorded,
but died before acknowledging, was handled again by the new receiver RabbitMQ redelivered it
to. These run ``examples/node/lib/seen.js`` in real Node processes on a real file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.node_example import EXAMPLE, require_node


def _node(node: str, script: str, file: Path) -> dict[str, object]:
    result = subprocess.run(
        [node, "-e", f"const {{ SeenSet }} = require('./lib/seen');\n"
                     f"const file = {json.dumps(str(file))};\n{script}"],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_a_receiver_finds_an_id_another_receiver_recorded_after_it_started(
        tmp_path: Path) -> None:
    node = require_node()
    # Given two receivers on one seen-file, both started before either handled anything
    # When the old one records a message it handled (and dies before its ack), Then the new
    # one, handed the redelivery, knows it
    out = _node(node, """
const fresh = new SeenSet(file);
const old = new SeenSet(file);
old.add('digest-1:K1');
console.log(JSON.stringify({ fresh: fresh.has('digest-1:K1'), other: fresh.has('digest-2:K2') }));
""", tmp_path / "seen.txt")
    assert out == {"fresh": True, "other": False}


def test_a_torn_last_line_is_no_record_and_the_next_id_gets_a_line_of_its_own(
        tmp_path: Path) -> None:
    node = require_node()
    # Given a seen-file whose last append was cut short by a crash (no newline: the message
    # was not acknowledged, so it comes back and must be handled)
    seen = tmp_path / "seen.txt"
    seen.write_bytes(b"digest-1:K1\ndigest-2:K")
    # When a receiver starts and records the next message
    out = _node(node, """
const s = new SeenSet(file);
const torn = s.has('digest-2:K');
s.add('digest-3:K3');
const again = new SeenSet(file);
console.log(JSON.stringify({ torn, first: again.has('digest-1:K1'), third: again.has('digest-3:K3'),
  joined: again.has('digest-2:Kdigest-3:K3') }));
""", seen)
    # Then the torn id was no record, and the new id is a line of its own
    assert out == {"torn": False, "first": True, "third": True, "joined": False}
    assert seen.read_bytes() == b"digest-1:K1\ndigest-3:K3\n"


def test_the_seen_file_is_kept_to_the_latest_ids(tmp_path: Path) -> None:
    node = require_node()
    # Given a receiver keeping the latest 3 ids
    seen = tmp_path / "seen.txt"
    # When it records ten
    out = _node(node, """
const s = new SeenSet(file, { keep: 3 });
for (let i = 0; i < 10; i += 1) s.add(`id-${i}`);
const again = new SeenSet(file, { keep: 3 });
console.log(JSON.stringify({ oldest: again.has('id-0'), latest: again.has('id-9'),
  kept: again.has('id-7') }));
""", seen)
    # Then the file holds at most twice the bound, the latest ids among them
    assert out == {"oldest": False, "latest": True, "kept": True}
    assert len(seen.read_bytes().splitlines()) <= 6

"""``hub pki init`` never lets a private key be readable by others, not even for a moment
(review r9).

Each key file is created with mode 0600 by the call that creates it; a key written first and
narrowed afterwards is world-readable in between. The test sets a permissive umask (0) so the
mode a file is created with shows, and watches every key file at each audit event of the
interpreter (opens, chmods …) while the PKI is written.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from hub.directory import Directory
from hub.testing.pki import KeyCache, init_pki

_KEYS = KeyCache()
_watch: dict[str, Any] = {"on": False, "busy": False, "paths": set(), "wide": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """At every audit event while on: any key file holding bytes with a mode wider than 0600."""
    if not _watch["on"] or _watch["busy"]:
        return
    _watch["busy"] = True
    try:
        if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
            path = os.fsdecode(args[0])
            if path.endswith(".key.pem"):
                _watch["paths"].add(path)
        for path in list(_watch["paths"]):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size and stat.S_IMODE(st.st_mode) & 0o077:
                _watch["wide"].append((Path(path).name, oct(stat.S_IMODE(st.st_mode)), event))
    finally:
        _watch["busy"] = False


sys.addaudithook(_audit)  # an audit hook cannot be removed: it does nothing while "on" is off


def test_pki_init_never_leaves_a_private_key_readable_by_others_even_for_a_moment(
        tmp_path: Path) -> None:
    old = os.umask(0)
    _watch.update(on=True, paths=set(), wide=[])
    try:
        paths = init_pki(tmp_path / "pki", Directory.sample(), keys=_KEYS)
    finally:
        _watch["on"] = False
        os.umask(old)
    assert _watch["wide"] == []
    keys = sorted(paths.dir.rglob("*.key.pem"))
    assert len(keys) > 10
    assert {k.name: oct(stat.S_IMODE(k.stat().st_mode)) for k in keys} == {
        k.name: "0o600" for k in keys}


def test_pki_init_over_an_older_pki_narrows_a_key_file_left_readable(tmp_path: Path) -> None:
    # Given a key file an older hub left world-readable where the new PKI writes its root key
    target = tmp_path / "pki"
    target.mkdir()
    (target / "root-ca.key.pem").write_bytes(b"old")
    (target / "root-ca.key.pem").chmod(0o644)
    old = os.umask(0)
    try:
        init_pki(target, Directory.sample(), keys=_KEYS)
    finally:
        os.umask(old)
    key = target / "root-ca.key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")

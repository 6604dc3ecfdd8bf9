"""Differential check of the EDXML parser against another revision: every input, same outcome.

    python -m bench.parse_differential [--base 31d8baa] [--mutants 8000]

Inputs: every file under ``tests/vectors``, the fuzz corpus seeds (:mod:`tests.fuzz.corpus`)
and ``--mutants`` mutants of them (:func:`tests.fuzz.runner.make_mutant`, seeds 16, 1, 2 and
3), and edits around the parser's fast paths: comments, processing instructions and CDATA in
fields, ``!`` and ``<!`` in text, long fields, duplicated, missing and undeclared attachments,
XML whitespace and foreign characters in base64.

Each input is parsed under the :data:`LIMITS` below by this tree and by the base revision (a
temporary ``git worktree``), each in its own process. Outcomes must be equal: for a packet,
every field (the type and ``repr`` of each leaf value; the tree aside) and the digest; for a
refusal, its reason and detail. Exit status 1 when any outcome differs (the first few are
printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LIMITS: list[dict[str, int]] = [
    {},
    {"max_identifier_chars": 14, "max_text_chars": 30, "max_content_chars": 45,
     "max_attachment_bytes": 600, "max_depth": 9, "max_elements": 150},
    {"max_bytes": 9000, "max_depth": 7, "max_elements": 60, "max_text_chars": 8,
     "max_identifier_chars": 5, "max_content_chars": 8, "max_attachment_bytes": 10},
    {"max_depth": 300},
    {"max_attachment_bytes": 1000},
    {"max_identifier_chars": 20, "max_text_chars": 40, "max_content_chars": 60,
     "max_attachment_bytes": 100_000},
]


# -- the inputs (made once, with this tree) ---------------------------------------------------


def _edits(envelope: bytes) -> list[bytes]:
    """Edits of a signed envelope around the parser's fast paths (signatures no longer match:
    the parser does not check them)."""
    out: list[bytes] = []

    def sub(pattern: bytes, replacement: bytes, data: bytes = envelope) -> None:
        edited = re.sub(pattern, lambda m: m.expand(replacement), data, count=1)
        if edited != data:
            out.append(edited)

    for field in (b"edXML:Subject", b"edXML:OrganName", b"edXML:OrganId", b"edXML:CodeNumber",
                  b"edXML:Type", b"edXML:Place", b"edXML:Priority", b"ContentId",
                  b"Description", b"ContentTransferEncoded", b"edXML:Code", b"Attachment"):
        start = b"(<" + field + b">)"
        sub(start, b"\\1<!-- c -->")
        sub(start + b"([^<]{1,3})", b"\\1\\2<!--c-->")
        sub(start + b"([^<]{1,3})", b"\\1\\2<?pi " + b"p" * 300 + b"?>")
        sub(start, b"\\1<![CDATA[" + b"z" * 300 + b"]]>")
        sub(start, b"\\1" + b"x" * 140)
    sub(rb"(<edXML:Subject>[^<]*)", b"\\1 ! <![CDATA[!]]> <!-- ! --> <!DOCTYPE x>")
    sub(rb"(<edXML:Subject>[^<]*)", b"\\1 !! <!-x-->")
    sub(rb"(<edXML:Content>)", b"\\1" + b"C" * 70_000)
    sub(rb"(<ContentId>)([^<]*)", b"\\1 CID:\\2 ")
    for odd in (b"\n \t", b"\r\n", "\u00a0".encode(), "ẩ".encode(), b"=", b"*"):
        sub(rb"(<ContentTransferEncoded>)([^<]{10})", b"\\1\\2" + odd)
    attachment = re.search(rb"<Attachment>.*?</Attachment>", envelope, re.S)
    reference = re.search(rb"<edXML:Reference .*?</edXML:Reference>", envelope, re.S)
    if attachment and reference:
        a, r = attachment.group(0), reference.group(0)
        cid = re.search(rb"<ContentId>([^<]*)</ContentId>", a)
        old = cid.group(1) if cid else b"none"
        other = a.replace(old, b"other-id")
        out += [envelope.replace(a, a + a), envelope.replace(a, b""),
                envelope.replace(a, a + other), envelope.replace(a, other + a),
                envelope.replace(a, a + other).replace(r, r + r.replace(old, b"other-id")),
                envelope.replace(a, a + other).replace(r, r.replace(old, b"other-id") + r),
                envelope.replace(r, r + r), envelope.replace(r, b""),
                envelope.replace(r, b"").replace(a, b""), envelope.replace(a, other)]
    return out


def make_inputs(folder: Path, mutants: int) -> int:
    from tests.fuzz.corpus import build_corpus
    from tests.fuzz.runner import make_mutant
    from tests.pki_fixtures import make_pki

    inputs: list[bytes] = [p.read_bytes() for p in sorted((REPO / "tests" / "vectors").rglob("*"))
                           if p.is_file() and p.suffix not in {".toml", ".py"}]
    with tempfile.TemporaryDirectory() as pki_dir:
        corpus = build_corpus(make_pki(Path(pki_dir) / "pki"))
        inputs += [seed.raw for seed in corpus.seeds]
        for seed in (16, 1, 2, 3):
            inputs += [make_mutant(corpus, seed, i).raw for i in range(mutants // 4)]
    for seed_packet in corpus.seeds:
        inputs += _edits(seed_packet.raw)
    for i, data in enumerate(inputs):
        (folder / f"{i:06d}.bin").write_bytes(data)
    return len(inputs)


# -- one tree's outcomes (run with PYTHONPATH set to that tree) -------------------------------


def _canon(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__] + [
            [f.name, _canon(getattr(value, f.name))]
            for f in dataclasses.fields(value) if f.name != "tree"]
    if isinstance(value, tuple):
        return ["tuple"] + [_canon(item) for item in value]
    if isinstance(value, enum.Enum):
        return [type(value).__name__, value.value]
    return [type(value).__name__, repr(value)]


def outcomes(folder: Path) -> dict[str, Any]:
    from hub.edxml import EnvelopeRefused, Limits, parse_packet

    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.bin")):
        data = path.read_bytes()
        for i, overrides in enumerate(LIMITS):
            key = f"{path.name}/{i}"
            try:
                packet = parse_packet(data, Limits(**overrides))
                out[key] = ["ok", _canon(packet), packet.digest, packet.tree is not None]
            except EnvelopeRefused as exc:
                out[key] = ["refused", exc.reason.value, exc.detail]
            except Exception as exc:  # a crash must be the same crash
                out[key] = ["raised", type(exc).__name__, str(exc)]
    return out


def _run_in(tree: Path, folder: Path, result: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--outcomes", str(folder),
                    str(result)], env=env, cwd=tree, check=True)
    loaded: dict[str, Any] = json.loads(result.read_text())
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="31d8baa", help="the revision to compare with")
    parser.add_argument("--mutants", type=int, default=8000)
    parser.add_argument("--outcomes", nargs=2, metavar=("INPUTS", "RESULT"),
                        help=argparse.SUPPRESS)  # one tree's run (internal)
    args = parser.parse_args(argv)
    if args.outcomes:
        Path(args.outcomes[1]).write_text(json.dumps(outcomes(Path(args.outcomes[0]))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base_tree = work / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(base_tree), args.base], check=True)
        try:
            folder = work / "inputs"
            folder.mkdir()
            count = make_inputs(folder, args.mutants)
            base = _run_in(base_tree, folder, work / "base.json")
            this = _run_in(REPO, folder, work / "this.json")
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(base_tree)], check=False)
    differ = sorted(key for key in base if base[key] != this.get(key))
    kinds = Counter(value[1] if value[0] == "refused" else value[0] for value in base.values())
    print(f"{count} inputs x {len(LIMITS)} limits = {len(base)} outcomes; "
          f"{len(differ)} differ from {args.base}")
    print("outcomes at the base:", dict(kinds.most_common()))
    for key in differ[:10]:
        print(key, "\n  base:", str(base[key])[:300], "\n  this:", str(this.get(key))[:300])
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

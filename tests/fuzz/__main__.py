"""``python -m tests.fuzz`` (``bench/fuzz``): fuzz the hub's parse + validate, print the counts.

    bench/fuzz [--seed N] [--count N] [--seconds S] [--out DIR] [--workers N]
    bench/fuzz --replay OUT/crash/*.xml --pki OUT/pki

Prints one JSON object (see :meth:`tests.fuzz.runner.Tally.summary`) and writes it, with every
crash, hang and disagreement (bytes + a JSON note each) and the run's trust material, to
``--out``. Exit status 0 when there is no crash, no hang, no accepted mutant with changed routed
content and no disagreement with xmlsec1 or pyHanko's reference; 1 otherwise (rule violations
are reported, not judged by the exit status).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

EXIT_CLEAN = 0
"""No crash, hang, routed change or disagreement."""
EXIT_FINDINGS = 1
"""At least one of those: see the output directory."""
EXIT_USAGE = 2
"""Bad arguments (argparse's own code)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1, help="input i is a function of (seed, i)")
    p.add_argument("--count", type=int, default=None,
                   help="stop after this many inputs (default 100000 unless --seconds)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--out", type=Path, default=None,
                   help="findings and summary.json (default: a new temporary directory)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (0: in process)")
    p.add_argument("--hang-seconds", type=float, default=1.0, help="an input slower is a hang")
    p.add_argument("--replay", type=Path, nargs="+", metavar="FILE",
                   help="parse + validate saved inputs (with --pki) instead of fuzzing")
    p.add_argument("--pki", type=Path, help="the run's PKI directory (OUT/pki), for --replay")
    p.add_argument("--no-xmlsec1", action="store_true",
                   help="do not cross-check accepted mutants with xmlsec1 (reported as null)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # pyHanko logs every refused difference analysis with a traceback: mutants are refused by
    # the thousand, and the verdicts are what is counted.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL + 1)
    from tests.fuzz.corpus import build_corpus
    from tests.fuzz.runner import FuzzConfig, run
    from tests.pki_fixtures import make_pki

    if args.replay:
        from tests.fuzz.replay import replay

        if args.pki is None:
            print("fuzz: --replay needs --pki OUT/pki (the run's PKI)", file=sys.stderr)
            return EXIT_USAGE
        for line in replay(args.replay, args.pki):
            print(line)
        return EXIT_CLEAN
    xmlsec1 = None if args.no_xmlsec1 else shutil.which("xmlsec1")
    if xmlsec1 is None and not args.no_xmlsec1:
        print("fuzz: xmlsec1 not found (apt-get install xmlsec1), or pass --no-xmlsec1",
              file=sys.stderr)
        return EXIT_USAGE
    count = args.count if args.count is not None or args.seconds is not None else 100_000
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="edxml-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    # The PKI lives in the output directory: xmlsec1 replays of the findings need its root/CA.
    pki = make_pki(out / "pki")
    corpus = build_corpus(pki)
    config = FuzzConfig(seed=args.seed, count=count, seconds=args.seconds, out=out,
                        workers=args.workers, hang_seconds=args.hang_seconds, xmlsec1=xmlsec1)
    summary = run(corpus, config)
    print(json.dumps(summary, indent=1))
    bad = (summary["crashes"] + summary["hangs"] + summary["accepted_routed_changed"]
           + (summary["xmlsec1_disagreements"] or 0) + summary["pdf_reference_disagreements"])
    return EXIT_FINDINGS if bad else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())

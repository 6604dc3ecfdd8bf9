"""Generate mutants, judge them in time-bounded workers, count, and keep what needs a look.

Input ``i`` of a run is a pure function of ``(seed, i)``: the same ``--seed`` replays the same
mutations (:func:`make_mutant`; the PKI, hence the signature bytes, is generated per run, so
every finding is also written to the output directory with its bytes and the trust material).

Time bound: each input's parse + validate runs under ``setitimer`` (``hang_seconds``, 1 s); a
timer that fires is a hang, confirmed by running the input once more (a loaded machine must not
report a scheduling pause as a hang). Work inside C code is not interruptible by a signal, so
the parent also watches a heartbeat per worker and kills and restarts a worker stuck on one input
for ``watchdog_seconds``, recording that input as a hang.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import random
import re
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hub.edxml import Envelope, EnvelopeRefused, StatusPacket, parse_packet
from hub.reasons import Reason
from tests.fuzz.corpus import Corpus, routed_view
from tests.fuzz.mutators import PDF_MUTATORS, XML_MUTATORS, pick
from tests.fuzz.oracles import (
    pdf_reference_verdict,
    rule_violations,
    safe_for_xmlsec1,
    xmlsec1_verify,
)

PDF_SHARE = 0.12
"""Share of inputs that mutate the main PDF (each costs a re-signed envelope and a PDF check)."""
STACKED_SHARE = 0.15
"""Share of packet mutants that get a second mutation on top of the first."""
SAVE_PER_KIND = 25
"""Findings written per (category, mutator): enough to reproduce, not gigabytes."""


@dataclass(frozen=True)
class FuzzConfig:
    seed: int = 1
    count: int | None = 1000
    """Stop after this many inputs (None: only ``seconds`` stops the run)."""
    seconds: float | None = None
    """Stop after this much wall time (None: only ``count`` stops the run)."""
    out: Path | None = None
    """Where findings and ``summary.json`` are written (None: nowhere)."""
    workers: int = 2
    """Worker processes; 0 runs in this process (no watchdog; for the short test)."""
    hang_seconds: float = 1.0
    watchdog_seconds: float = 60.0
    xmlsec1: str | None = None
    """The xmlsec1 binary (None: accepted mutants are not cross-checked; counted as such)."""
    warm_up: bool = True
    """Validate every seed once before timing anything (imports, schemas, first calls)."""


@dataclass(frozen=True)
class Mutant:
    index: int
    base: str
    mutator: str
    raw: bytes
    view: tuple[Any, ...] | None
    """The original's routed view (None when the mutant is a freshly signed envelope)."""


def make_mutant(corpus: Corpus, seed: int, index: int) -> Mutant:
    """Input ``index`` of the run with ``seed`` (deterministic)."""
    rng = random.Random(f"edxml-hub-fuzz:{seed}:{index}")
    if rng.random() < PDF_SHARE:
        base, pdf = rng.choice(corpus.pdfs)
        for _ in range(8):
            name, mutate = pick(PDF_MUTATORS, rng)
            out = mutate(pdf, rng)
            if out is not None and out != pdf:
                break
        else:
            name, out = "pdf_identity", pdf
        declared = "application/pdf"
        if rng.random() < 0.25:
            declared = rng.choice(("application/octet-stream", "APPLICATION/PDF",
                                   "application/pdf; name=x.pdf", "application/x-pdf", "text/plain"))
            name += f"[{declared}]"
        return Mutant(index, f"pdf:{base}", name, corpus.envelope_with(out, content_type=declared),
                      None)
    seed_packet = rng.choice(corpus.seeds)
    raw, names = seed_packet.raw, []
    for _ in range(2 if rng.random() < STACKED_SHARE else 1):
        for _ in range(8):
            name, mutate = pick(XML_MUTATORS, rng)
            out = mutate(raw, rng)
            if out is not None and out != raw:
                raw = out
                names.append(name)
                break
    return Mutant(index, seed_packet.name, "+".join(names) or "identity", raw, seed_packet.view)


class _Hang(BaseException):
    """Raised by the timer. Not an Exception: validate_packet turns any Exception inside a check
    into INTERNAL_ERROR, which would count a hang as a crash."""


class FuzzerBug(Exception):
    """The fuzzer itself failed to make an input: the run stops, nothing is counted."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


@dataclass(frozen=True)
class Result:
    """What happened to one input; ``raw`` is kept only when it is a finding."""

    index: int
    base: str
    mutator: str
    outcome: str
    """``refused``, ``accepted``, ``crash`` or ``hang``."""
    reason: str
    """The reason code (refused), the exception type (crash), or ``OK``."""
    elapsed: float
    findings: tuple[tuple[str, str], ...] = ()
    """(category, detail) for each oracle that objects."""
    masked: bool = False
    """Refused by the parser's catch-all (``unexpected content: …``): a refusal, but a builtin
    exception inside the parser, worth a look."""
    slow_once: bool = False
    raw: bytes | None = None


def _judge(corpus: Corpus, raw: bytes, hang_seconds: float) -> tuple[str, str, str, Any]:
    """Parse + validate under the timer: (outcome, reason, detail, packet or None)."""
    signal.setitimer(signal.ITIMER_REAL, hang_seconds)
    try:
        try:
            packet = parse_packet(raw)
        except EnvelopeRefused as refused:
            return "refused", refused.reason.value, str(refused.detail), None
        report = corpus.validate(packet)
    except _Hang:
        return "hang", "TIMEOUT", f"parse+validate over {hang_seconds} s", None
    except Exception as exc:  # anything escaping the entry points is a crash
        return "crash", type(exc).__name__, traceback.format_exc(limit=8), None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if report.reason is Reason.INTERNAL_ERROR:
        return "crash", "INTERNAL_ERROR", json.dumps(report.summary(), default=str), None
    if not report.accepted:
        return "refused", report.reason.value, "", None
    return "accepted", "OK", "", packet


def _mutant(corpus: Corpus, config: FuzzConfig, index: int) -> Mutant:
    try:
        return make_mutant(corpus, config.seed, index)
    except Exception as exc:
        raise FuzzerBug(f"input {index}: {traceback.format_exc()}") from exc


def run_input(corpus: Corpus, config: FuzzConfig, index: int) -> Result:
    mutant = _mutant(corpus, config, index)
    started = time.perf_counter()
    outcome, reason, detail, packet = _judge(corpus, mutant.raw, config.hang_seconds)
    elapsed = time.perf_counter() - started
    slow_once = False
    if outcome == "hang":
        # Confirm: a real hang hangs again; a pause of a loaded machine does not.
        again = time.perf_counter()
        outcome, reason, detail, packet = _judge(corpus, mutant.raw, config.hang_seconds)
        slow_once = outcome != "hang"
        elapsed = max(elapsed, time.perf_counter() - again)
    findings: list[tuple[str, str]] = []
    if outcome in ("crash", "hang"):
        findings.append((outcome, f"{reason}: {detail}"))
    if outcome == "accepted":
        findings.extend(_accepted_findings(corpus, config, mutant, packet))
    return Result(
        index, mutant.base, mutant.mutator, outcome, reason, elapsed, tuple(findings),
        masked=outcome == "refused" and "unexpected content" in detail, slow_once=slow_once,
        raw=mutant.raw if findings else None)


def _accepted_findings(
    corpus: Corpus, config: FuzzConfig, mutant: Mutant, packet: Envelope | StatusPacket,
) -> Iterator[tuple[str, str]]:
    if mutant.view is not None and routed_view(packet) != mutant.view:
        yield "routed_changed", f"{routed_view(packet)!r} != {mutant.view!r}"[:2000]
    for rule in rule_violations(mutant.raw):
        yield f"rule:{rule}", rule
    if config.xmlsec1 is not None:
        if not safe_for_xmlsec1(mutant.raw):
            yield "xmlsec1_disagreement", "accepted, but carries a DTD/entity: not given to xmlsec1"
        else:
            root, ca = corpus.trust_files
            verdict = xmlsec1_verify(mutant.raw, config.xmlsec1, root, ca)
            if not verdict.verified:
                yield "xmlsec1_disagreement", verdict.detail
            else:
                yield "xmlsec1_agrees", ""
    if isinstance(packet, Envelope):
        refused = pdf_reference_verdict(corpus, packet)
        if refused is not None:
            yield "pdf_reference_disagreement", refused


# -- counting ---------------------------------------------------------------------------------

KNOWN: dict[str, str] = {
    "M1": "PIs/comments outside the root accepted (unsigned bytes routed)",
    "M3": "PDF checks skipped when the PDF is declared with another ContentType",
    "L1": "non-ASCII whitespace accepted inside base64",
    "L4": "a malformed certificate gives INTERNAL_ERROR (ValueError/UnsupportedAlgorithm inside "
          "a check) or makes validate_packet raise",
    "N1": "a corrupted issuing-CA copy in the unsigned KeyInfo: ignored by the hub, refused by "
          "xmlsec1 (see docs/SECURITY.md)",
    "L2": "UTF-16/UTF-32 accepted despite the UTF-8-only rule",
}
"""Issue 16's findings the fuzzer re-finds (see docs/SECURITY.md); anything else is ``new``."""


_L4_INTERNAL = re.compile(r"INTERNAL_ERROR: .*\b(ValueError|UnsupportedAlgorithm) in \w+ check")


def classify(category: str, mutator: str, detail: str = "") -> str:
    """Which known finding a finding is an instance of (``new`` when none: look at it)."""
    if category == "crash" and (_L4_INTERNAL.search(detail) or "error parsing asn1 value" in detail):
        return "L4"
    if category == "xmlsec1_disagreement" and "certificate verification failed" in detail:
        return "N1"
    if category in ("crash", "hang", "routed_changed", "xmlsec1_agrees"):
        return "new"
    if category == "pdf_reference_disagreement":
        declared = mutator.partition("[")[2].rstrip("]")
        return "M3" if declared and declared.split(";")[0].lower() != "application/pdf" else "new"
    for token, label in (("outside_root", "M1"), ("unicode_whitespace", "L1"),
                         ("encoding", "L2"), ("base64_perturb", "L1")):
        if token in mutator:
            if category == "rule:base64_charset" and label not in ("L1",):
                continue
            if category == "rule:non_utf8" and label != "L2":
                continue
            if category == "rule:outside_root" and label != "M1":
                continue
            return label
    return "new"


@dataclass
class Tally:
    """The counts of a run; :meth:`summary` is the JSON the command prints."""

    config: FuzzConfig
    started: float = field(default_factory=time.monotonic)
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    inputs_by_mutator: Counter[str] = field(default_factory=Counter)
    accepted_by_mutator: Counter[str] = field(default_factory=Counter)
    accepted_by_base: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    findings_by_mutator: dict[str, Counter[str]] = field(default_factory=dict)
    findings_by_known: dict[str, Counter[str]] = field(default_factory=dict)
    masked: int = 0
    slow_once: int = 0
    slowest: float = 0.0
    saved: Counter[tuple[str, str]] = field(default_factory=Counter)
    seen: set[int] = field(default_factory=set)

    def add(self, r: Result) -> None:
        if r.index in self.seen:  # a restarted worker may repeat an input
            return
        self.seen.add(r.index)
        self.inputs += 1
        self.outcomes[r.outcome] += 1
        family = r.mutator.split("[")[0]
        self.inputs_by_mutator[family] += 1
        if r.outcome == "refused":
            self.refused_by_reason[r.reason] += 1
        if r.outcome == "accepted":
            self.accepted_by_mutator[family] += 1
            self.accepted_by_base[r.base] += 1
        self.masked += r.masked
        self.slow_once += r.slow_once
        self.slowest = max(self.slowest, r.elapsed)
        for category, detail in r.findings:
            self.findings[category] += 1
            self.findings_by_mutator.setdefault(category, Counter())[family] += 1
            if category != "xmlsec1_agrees":
                self.findings_by_known.setdefault(category, Counter())[
                    classify(category, r.mutator, detail)] += 1
        self._save(r)

    def _save(self, r: Result) -> None:
        out = self.config.out
        if out is None or r.raw is None:
            return
        for category, detail in r.findings:
            if category == "xmlsec1_agrees":
                continue
            key = (category, r.mutator.split("[")[0])
            if self.saved[key] >= SAVE_PER_KIND:
                continue
            self.saved[key] += 1
            folder = out / category.replace(":", "-")
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{r.index:09d}-{classify(category, r.mutator, detail)}-{key[1].replace('+', '_')}"
            (folder / f"{stem}.xml").write_bytes(r.raw)
            (folder / f"{stem}.json").write_text(json.dumps({
                "index": r.index, "seed": self.config.seed, "base": r.base,
                "mutator": r.mutator, "outcome": r.outcome, "reason": r.reason,
                "detail": detail, "elapsed_seconds": round(r.elapsed, 4),
            }, ensure_ascii=False, indent=1))

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        f = self.findings
        return {
            "seed": self.config.seed,
            "inputs": self.inputs,
            "seconds": round(elapsed, 1),
            "inputs_per_second": round(self.inputs / elapsed, 1) if elapsed else None,
            "workers": self.config.workers,
            "crashes": self.outcomes["crash"],
            "hangs": self.outcomes["hang"],
            "hang_limit_seconds": self.config.hang_seconds,
            "slow_once_then_fine": self.slow_once,
            "slowest_input_seconds": round(self.slowest, 3),
            "refused": self.outcomes["refused"],
            "accepted_mutants": self.outcomes["accepted"],
            "accepted_routed_changed": f["routed_changed"],
            "xmlsec1_checked": (f["xmlsec1_agrees"] + f["xmlsec1_disagreement"]
                                if self.config.xmlsec1 else None),
            "xmlsec1_disagreements": f["xmlsec1_disagreement"] if self.config.xmlsec1 else None,
            "pdf_reference_disagreements": f["pdf_reference_disagreement"],
            "rule_violations": {k.split(":", 1)[1]: v for k, v in sorted(f.items())
                                if k.startswith("rule:")},
            "parser_catch_all_refusals": self.masked,
            "findings_by_known_issue": {k: dict(sorted(v.items())) for k, v in
                                        sorted(self.findings_by_known.items())},
            "known_issues": KNOWN,
            "accepted_by_mutator": dict(sorted(self.accepted_by_mutator.items())),
            "accepted_by_base": dict(sorted(self.accepted_by_base.items())),
            "findings_by_mutator": {k: dict(sorted(v.items())) for k, v in
                                    sorted(self.findings_by_mutator.items())
                                    if k != "xmlsec1_agrees"},
            "inputs_by_mutator": dict(sorted(self.inputs_by_mutator.items())),
            "refused_by_reason": dict(self.refused_by_reason.most_common()),
            "findings_dir": str(self.config.out) if self.config.out else None,
        }


# -- running ----------------------------------------------------------------------------------


def _stop_index(config: FuzzConfig) -> int:
    return config.count if config.count is not None else 2**62


def _deadline(config: FuzzConfig) -> float:
    return time.monotonic() + config.seconds if config.seconds is not None else float("inf")


def _warm_up(corpus: Corpus) -> None:
    """Imports and first-call costs (pyHanko, schemas) must not count as a hang."""
    for seed in corpus.seeds:
        corpus.validate(parse_packet(seed.raw))


def run_in_process(corpus: Corpus, config: FuzzConfig) -> Tally:
    """The whole run in this process (the short test): the timer bounds each input."""
    tally = Tally(config)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        if config.warm_up:
            _warm_up(corpus)
        deadline = _deadline(config)
        tally.started = time.monotonic()
        for index in range(_stop_index(config)):
            if time.monotonic() >= deadline:
                break
            tally.add(run_input(corpus, config, index))
    finally:
        signal.signal(signal.SIGALRM, previous)
    return tally


def _worker(
    corpus: Corpus, config: FuzzConfig, w: int, first: int, deadline: float,
    queue: Any, current: Any, beat: Any,
) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if config.warm_up:
        _warm_up(corpus)
    stop, step = _stop_index(config), config.workers
    index = first
    while index < stop and time.monotonic() < deadline:
        current[w] = index
        beat[w] = time.monotonic()
        try:
            result = run_input(corpus, config, index)
        except FuzzerBug as bug:
            queue.put(("fuzzer_bug", str(bug)))
            return
        queue.put(dataclasses.astuple(result))
        index += step
    beat[w] = -1.0  # done
    queue.put(("done", w))


def run_in_workers(corpus: Corpus, config: FuzzConfig) -> Tally:
    """``config.workers`` processes (forked: the corpus is shared, not pickled) and a watchdog."""
    ctx = multiprocessing.get_context("fork")
    queue: Any = ctx.Queue(maxsize=10_000)
    current = ctx.Array("q", config.workers, lock=False)
    beat = ctx.Array("d", config.workers, lock=False)
    deadline = _deadline(config)
    tally = Tally(config)
    procs: dict[int, Any] = {}

    def start(w: int, first: int) -> None:
        beat[w] = time.monotonic() + 120.0  # room for the warm-up
        proc = ctx.Process(target=_worker, args=(corpus, config, w, first, deadline, queue,
                                                 current, beat), daemon=True)
        proc.start()
        procs[w] = proc

    for w in range(config.workers):
        start(w, w)
    # Stop early with SIGTERM or SIGINT to the parent (a background job ignores SIGINT unless
    # told otherwise): the counts so far are still summarized and written.
    previous = {sig: signal.signal(sig, signal.default_int_handler)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    done: set[int] = set()
    shown = time.monotonic()
    try:
        while len(done) < config.workers:
            if time.monotonic() - shown > PROGRESS_SECONDS:
                shown = time.monotonic()
                _progress(tally)
            try:
                message = queue.get(timeout=0.5)
            except Exception:  # queue.Empty
                message = None
            if message is not None:
                if message[0] == "done":
                    done.add(message[1])
                elif message[0] == "fuzzer_bug":
                    raise FuzzerBug(message[1])
                else:
                    tally.add(Result(*message))
            for w, proc in list(procs.items()):
                if w in done:
                    continue
                stuck = beat[w] > 0 and time.monotonic() - beat[w] > config.watchdog_seconds
                if stuck or (not proc.is_alive() and beat[w] > 0):
                    index = int(current[w])
                    proc.kill()
                    proc.join()
                    tally.add(_killed(corpus, config, index, "watchdog" if stuck else
                                      f"worker died (exit {proc.exitcode})"))
                    start(w, index + config.workers)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
            proc.join()
    return tally


PROGRESS_SECONDS = 30.0


def _progress(tally: Tally) -> None:
    """One line on stderr: how far, how fast, anything bad yet."""
    elapsed = time.monotonic() - tally.started
    print(f"fuzz: {tally.inputs} inputs in {elapsed:.0f} s ({tally.inputs / elapsed:.1f}/s), "
          f"{tally.outcomes['accepted']} accepted, {tally.outcomes['crash']} crashes, "
          f"{tally.outcomes['hang']} hangs, {tally.findings['routed_changed']} routed changes, "
          f"{tally.findings['xmlsec1_disagreement']} xmlsec1 disagreements",
          file=sys.stderr, flush=True)


def _killed(corpus: Corpus, config: FuzzConfig, index: int, why: str) -> Result:
    mutant = _mutant(corpus, config, index)
    outcome = "hang" if why == "watchdog" else "crash"
    return Result(index, mutant.base, mutant.mutator, outcome, why.upper(),
                  config.watchdog_seconds, ((outcome, why),), raw=mutant.raw)


def run(corpus: Corpus, config: FuzzConfig) -> dict[str, Any]:
    """Run, write ``summary.json`` into ``config.out``, and return the summary."""
    tally = run_in_process(corpus, config) if config.workers == 0 else run_in_workers(corpus,
                                                                                      config)
    summary = tally.summary()
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        (config.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


__all__ = ["FuzzConfig", "Mutant", "Result", "Tally", "make_mutant", "run", "run_input"]

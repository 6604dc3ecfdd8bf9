"""Walk a long chain in segments, in helper processes (``hub ledger verify --jobs``).

Each link of the chain needs only the link before it and its own entry, and every row stores its
link: the rows ``(a, b]`` can be walked on their own from the link stored at row ``a``. Such a
walk stands for the chain's exactly when that stored link is the one the walk of the rows up to
``a`` ended on — which this module checks for every segment before it takes a helper's walk.
The segments are judged in the chain's order (:func:`hub.ledger.verify.judge_walks`), so the
first bad row, its problem and the counts are those of one walk of the whole chain.

The helpers read the same snapshot as the caller: on PostgreSQL they import the caller's
exported snapshot (``SET TRANSACTION SNAPSHOT``); on SQLite the rows up to the head the caller
read are never rewritten by the hub (the ledger only appends), so any later read transaction
holds the same ones. A helper that cannot start, fails or dies costs time, never the verdict:
the caller walks that segment itself.

A helper is ``python -P -m hub.ledger.verify_helper FD``: a fresh interpreter that imports
this module and nothing of the caller's (not its main module, as ``multiprocessing`` would, nor
its connections, as a ``fork`` would, nor code from the working directory), and talks over one
socket (pickled messages, from the parent that started it only). It opens the ledger read-only,
then walks the segments it is handed one at a time: a helper that finishes early takes the
next. On PostgreSQL a helper waits at most :data:`LOCK_TIMEOUT_MS` for a table lock (the
caller holds share locks a queued table change waits behind; the server would not see the
caller waiting for its helpers), then leaves its segments to the caller. The rollup check runs
in the caller meanwhile; what it raises is raised where one walk would meet it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

import hub
from hub.ledger import chain
from hub.ledger.blobs import BlobStore
from hub.ledger.urls import sqlite_file
from hub.ledger.verify import PROGRESS_EVERY, Segment, SegmentWalk, walk_segment
from hub.logs import get_logger

log = get_logger("hub.ledger.verify_parallel")

MIN_SEGMENT_ROWS = 50_000
"""Rows a segment must hold to be worth a helper (a helper takes about a second to start);
a chain of fewer than four times this is walked in one process."""
SEGMENTS_PER_HELPER = 4
"""Segments per helper: a helper that finishes early takes the next."""
LOCK_TIMEOUT_MS = 2000
"""How long a helper on PostgreSQL waits for a table lock before it leaves its segment to the
caller."""
HELPER_MODULE = "hub.ledger.verify_helper"
"""What a helper process runs (``python -P -m``)."""
_POLL_S = 0.25
PROGRESS = "progress"
WALK = "walk"
"""The kinds of message a helper sends: rows walked, or a walk."""


@dataclass(frozen=True, slots=True)
class Helpers:
    """How helper processes open the ledger again (read-only) and how many there are."""

    url: str = field(repr=False)  # may hold the database password
    blob_dir: str | None
    jobs: int
    min_segment_rows: int = MIN_SEGMENT_ROWS

    def segments(self, total: int) -> int:
        """How many segments to walk a chain of ``total`` rows in (1: in one process)."""
        if self.jobs < 2 or total < 4 * self.min_segment_rows:
            return 1
        return max(1, min(self.jobs * SEGMENTS_PER_HELPER, total // self.min_segment_rows))

    def walk(
        self,
        conn: Connection,
        blobs: BlobStore | None,
        segments: Sequence[Segment],
        *,
        check_bytes: bool,
        progress: Callable[[int, int], None] | None,
        meanwhile: Callable[[], None],
    ) -> list[tuple[Segment, SegmentWalk]]:
        """The walks of ``segments`` (consecutive, from the chain's start) in the chain's order,
        up to the first that finds a problem; ``meanwhile`` runs here while the helpers walk
        (:class:`hub.ledger.verify.SegmentWalkers`).

        Every walk returned began from the link the one before it ended on: a helper's walk that
        did not (or a helper that failed) is replaced by this process's own walk of the segment."""
        snapshot = None
        if conn.dialect.name == "postgresql":
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        total = segments[-1].total
        opening = (self.url, self.blob_dir, snapshot, check_bytes)
        pool: list[_Helper] = []
        try:
            for _ in range(min(self.jobs, len(segments))):
                try:
                    pool.append(_Helper(opening))
                except (OSError, ValueError) as error:
                    log.warning("ledger.verify.helper_not_started", error=type(error).__name__)
                    break
            work = _Work(segments, pool)
            meanwhile()
            walks: list[tuple[Segment, SegmentWalk]] = []
            link = chain.GENESIS

            def tick() -> None:
                if progress is not None:
                    progress(min(work.done, total), total)

            def step(_seq: int) -> None:  # this process's own walk counts with the helpers'
                work.done += PROGRESS_EVERY
                tick()

            by_caller = 0
            for index, segment in enumerate(segments):
                walk = work.result(index, tick)
                if walk is None or walk.start != link:
                    by_caller += 1
                    walk = walk_segment(conn, blobs, segment, link, check_bytes=check_bytes,
                                        progress=step)
                walks.append((segment, walk))
                if walk.problem is not None or walk.error is not None:
                    break
                link = walk.link
            log.info("ledger.verify.segments", segments=len(segments), walked=len(walks),
                     by_helpers=len(walks) - by_caller, by_caller=by_caller, helpers=len(pool))
            return walks
        finally:
            for helper in pool:
                helper.close()

    @classmethod
    def of(cls, engine: Engine, blobs: BlobStore | None, jobs: int,
           min_segment_rows: int = MIN_SEGMENT_ROWS) -> Helpers | None:
        """Helpers for the ledger behind ``engine``; None when another process cannot open
        it (an in-memory database) or ``jobs`` is below 2."""
        if jobs < 2:
            return None
        url = engine.url.render_as_string(hide_password=False)
        try:
            path = sqlite_file(url)
        except ValueError:
            return None
        if path is not None:
            url = f"sqlite:///{path.resolve()}"  # the helpers' working directory may differ
        return cls(url, str(blobs.root.resolve()) if blobs is not None else None, jobs,
                   min_segment_rows)


def _helper_environment() -> dict[str, str]:
    """The caller's environment, with this checkout on ``PYTHONPATH`` when the interpreter
    would not find it on its own (an installed hub needs nothing; site-packages is never put
    ahead of the standard library)."""
    env = dict(os.environ)
    root = str(Path(hub.__file__).resolve().parent.parent)
    installed = {str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("purelib", "platlib")}
    if root not in installed:
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    return env


class _Helper:
    """One helper process and its socket; ``task`` is the segment it walks (None: idle)."""

    def __init__(self, opening: tuple[Any, ...]) -> None:
        ours, theirs = Pipe()
        self.channel = ours
        self.task: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        try:
            try:
                # -P: the working directory (an auditor's unpacked copy, say) is not put on
                # the helper's import path, as it is not on the hub command's.
                self.process = subprocess.Popen(
                    [sys.executable, "-P", "-m", HELPER_MODULE, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=_helper_environment())
            finally:
                theirs.close()
            self.channel.send(opening)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.channel.close()
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            self.process.wait()


class _Work:
    """Hands segments to idle helpers and collects their walks."""

    def __init__(self, segments: Sequence[Segment], pool: list[_Helper]) -> None:
        self.segments = segments
        self.pending = deque(range(len(segments)))
        self.walks: dict[int, SegmentWalk | None] = {}
        self.live = list(pool)
        self.done = 0
        for helper in self.live:
            self._hand(helper)

    def _hand(self, helper: _Helper) -> None:
        helper.task = self.pending.popleft() if self.pending else None
        if helper.task is not None:
            try:
                helper.channel.send(self.segments[helper.task])
            except OSError:
                self._lost(helper)

    def _lost(self, helper: _Helper) -> None:
        log.warning("ledger.verify.helper_lost",
                    exit=helper.process.poll() if helper.process is not None else None)
        if helper.task is not None:
            self.walks[helper.task] = None
        helper.task = None
        self.live.remove(helper)
        if not self.live:  # nobody left: the caller walks what is still pending
            self.walks.update((index, None) for index in self.pending)
            self.pending.clear()

    def result(self, index: int, tick: Callable[[], None]) -> SegmentWalk | None:
        """The helper's walk of segment ``index`` (None: the caller must walk it)."""
        while index not in self.walks:
            busy = [h for h in self.live if h.task is not None]
            if not busy:
                return None
            tick()
            for channel in wait([h.channel for h in busy], timeout=_POLL_S):
                helper = next(h for h in busy if h.channel is channel)
                try:
                    kind, value = helper.channel.recv()
                except (EOFError, OSError):
                    self._lost(helper)
                    continue
                if kind == PROGRESS:
                    self.done += value
                elif helper.task is not None:
                    self.walks[helper.task] = value
                    self._hand(helper)
        return self.walks.pop(index)

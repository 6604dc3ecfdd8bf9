"""Argument types of the ``hub`` command line: checked where they are parsed.

Each function is an ``argparse`` ``type=``: a bad value raises ``argparse.ArgumentTypeError``
and becomes one usage line (exit code 2) naming the argument, never a traceback later on.
"""

from __future__ import annotations

import argparse
import difflib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.reasons import Reason

__all__ = ["duration", "iso_datetime", "nonblank", "parse_duration", "reason_code"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
BROKER_REASON = re.compile(r"BROKER_[A-Z_]+")
"""Dead letters RabbitMQ made itself (``x-death`` reason: rejected, expired, maxlen,
delivery_limit) are shown as ``BROKER_<REASON>``."""


def one_line(text: object, limit: int | None = None) -> str:
    """A message on one line (a database driver's or a library's own span several), cut at
    ``limit`` characters when one is given."""
    flat = " ".join(str(text).split())
    return flat if limit is None else flat[:limit]


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1w``, combined as ``1h30m``; or ISO 8601 (``PT15M``).

    Raises ``ValueError`` with a message saying what is accepted, or that the duration is
    longer than a ``timedelta`` holds (999,999,999 days).
    """
    value = text.strip().lower()
    if _WHOLE.fullmatch(value):
        try:
            return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _PART.findall(value)))
        except OverflowError:  # more days than a timedelta holds, or a float infinity
            raise ValueError(f"{text!r} is too long a duration (at most 999999999d)") from None
    if value.startswith("p"):
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(timedelta).validate_python(text.strip().upper())
        except ValidationError:
            pass
    raise ValueError(f"{text!r} is not a duration: use a number and a unit s, m, h, d or w "
                     "(e.g. 30m, 2h, 1h30m) or ISO 8601 (PT30M)")


def duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def reason_code(text: str) -> str:
    """A reason code of the catalogue (``hub/reasons.py``), or a broker's ``BROKER_*``."""
    value = text.strip().upper()
    if value in {r.value for r in Reason} or BROKER_REASON.fullmatch(value):
        return value
    close = difflib.get_close_matches(value, [r.value for r in Reason], n=1)
    hint = f"; did you mean {close[0]}?" if close else " (see the reason table in README.md)"
    raise argparse.ArgumentTypeError(f"unknown reason code {text!r}{hint}")


def nonblank(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank: say why, in words")
    return text.strip()


def iso_datetime(text: str) -> datetime:
    """An ISO date or date-time, returned in UTC; without a zone, it is UTC.

    Accepted from :data:`EARLIEST` to :data:`LATEST` in UTC. The ledger compares instants in
    UTC, and the reports count days in Vietnam time (UTC+7) from one midnight to the next: an
    instant in the first or last day that a ``datetime`` holds (``9999-12-31T23:59-14:00`` is in
    the year 10000 in UTC) would overflow there, so it is refused here, naming the value.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time (e.g. 2026-03-01 or 2026-03-01T08:00)"
        ) from None
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: in UTC it must fall between "
            f"{EARLIEST.date().isoformat()} and {LATEST.date().isoformat()}")
    return utc


EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
"""The first instant :func:`iso_datetime` accepts: a day after the first a ``datetime`` holds."""
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
"""The last instant :func:`iso_datetime` accepts: a day before the last a ``datetime`` holds."""


def existing_file(text: str) -> Path:
    """An input file that exists and is a file (checked when the command line is read)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    return path


def job_count(text: str) -> int:
    """A number of processes, 1 to 64."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 to 64)")
    return value

"""``hub subscribers …``: the province's certificate subscribers and the plan's figures (issue 21).

- ``import FILE``: the office's spreadsheet (CSV; columns in :mod:`hub.ledger.subscribers`),
  every row checked first, then all applied in one transaction or none; the problems are listed
  one per line on standard output (row and column named), one summary line on standard error;
- ``export``: the registry back as that spreadsheet (Vietnamese or English headers);
- ``report``: the plan's figures (:mod:`hub.ledger.subscribers_report`) as a table, CSV or
  JSON, one CSV per section with ``--output-dir``, and a chart with ``--chart``;
- ``notices``: the daily job — per organization, certificates expiring soon and subscribers who
  never signed, as CSV (one file per organization with ``--output-dir``);
- ``sync``: read the signatures of newly accepted envelopes into the index now (``report`` and
  ``notices`` do it first anyway);
- ``history``: every change the imports made.

The registry lives in the ledger's database: these commands open an existing ledger at the
current schema (``hub ledger migrate`` brings an older one up), never create one. ``export``,
``history`` and ``--no-sync`` runs only read (a read-only copy is enough).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from hub.config import load_settings
from hub.directory import Directory
from hub.errors import ConfigurationError, TransientError
from hub.ledger.records import LedgerOpenError
from hub.ledger.store import Ledger
from hub.ledger.subscribers import (
    RegistryError,
    export_registry,
    history,
    import_registry,
    parse_registry_csv,
    sync_observations,
)
from hub.ledger.subscribers_report import (
    PERIODS,
    csv_sections,
    notices,
    notices_csv,
    plan_report,
    render_csv,
    render_json,
    render_table,
    section_csv,
)
from hub.ops.args import existing_file, iso_datetime

EXIT_OK = 0
"""Done."""
EXIT_FAILED = 1
"""The spreadsheet has errors (nothing imported), or ``--fail-on-alarm`` found an alarm."""
EXIT_USAGE = 2
"""Bad arguments, an unreadable file, no ledger at that address."""
EXIT_CONFIG = 3
"""Settings unusable (same code as the hub CLI)."""
EXIT_UNAVAILABLE = 4
"""The ledger database could not be reached (same code as the hub CLI)."""

Handler = Callable[[argparse.Namespace], int]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (e.g. 2025-01-01)") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or value > 3660:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 to 3660)")
    return value


def _chart_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in (".png", ".svg"):
        raise argparse.ArgumentTypeError(f"{text}: the chart is written as .png or .svg")
    return path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hub subscribers`` to the hub's parser."""
    top = subparsers.add_parser(
        "subscribers", help="certificate subscribers of the province and the plan's figures")
    sub = top.add_subparsers(dest="subscribers_command", required=True, metavar="COMMAND")

    p = _command(sub, "import", "import the office's subscriber spreadsheet (CSV)", _import)
    p.add_argument("file", type=existing_file,
                   help="the CSV file (UTF-8; English or Vietnamese headers)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every row and say what is wrong, import nothing")

    p = _command(sub, "export", "write the registry as the office's spreadsheet", _export)
    p.add_argument("--output", "-o", type=Path,
                   help="the CSV file to write (default: standard output)")
    p.add_argument("--headers", choices=["vi", "en"], default="vi",
                   help="Vietnamese headers, values and dates (default) or English ones")

    p = _command(sub, "report", "the plan's figures per organization and period", _report)
    _when_args(p)
    p.add_argument("--since", type=_day,
                   help="first day (ISO date; default: 1 January of the report's year)")
    p.add_argument("--until", type=_day, help="day after the last (ISO date; default: a year"
                                              " after --since)")
    p.add_argument("--period", choices=PERIODS, default="year",
                   help="one row per organization and this calendar period")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="output format (csv: every section, a 'section' column first)")
    p.add_argument("--output", type=Path, help="write to a file instead of standard output")
    p.add_argument("--output-dir", type=Path,
                   help="also write one CSV file per section into this existing directory")
    p.add_argument("--chart", type=_chart_path,
                   help="also draw the chart into this .png or .svg file")
    p.add_argument("--fail-on-alarm", action="store_true",
                   help="exit 1 when a revoked certificate was seen signing")

    p = _command(sub, "notices", "daily notices: certificates expiring soon, subscribers who"
                                 " never signed, per organization", _notices)
    _when_args(p)
    p.add_argument("--within", type=_days, default=30,
                   help="days ahead a certificate counts as expiring soon (default 30)")
    p.add_argument("--output-dir", type=Path,
                   help="write notices-<day>-<organization>.csv files into this existing"
                        " directory (default: one CSV on standard output)")

    _command(sub, "sync", "index the signatures of newly accepted envelopes now", _sync)

    p = _command(sub, "history", "every change imports made to the registry", _history)
    p.add_argument("--identifier", help="only this subscriber (citizen id or organization code)")


def _when_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", type=iso_datetime,
                   help="the report's moment (ISO date or date-time, UTC; default: now)")
    p.add_argument("--no-sync", action="store_true",
                   help="read only: do not update the signature index (what it lacks is read"
                        " in memory)")


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             help_text: str, handler: Handler) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--url", help="ledger database URL (default: [ledger] url in settings)")
    p.add_argument("--config", dest="ledger_config", type=Path,
                   help="settings file (default: the hub's --config, then HUB_CONFIG)")
    p.set_defaults(func=_guarded(handler))
    return p


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except RegistryError as error:
            for problem in error.errors:
                print(problem)
            print(f"hub: {error}", file=sys.stderr)
            return EXIT_FAILED
        except TransientError as error:
            print(f"hub: the ledger is unavailable ({error.detail or error})", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except ConfigurationError as error:
            print(f"hub: configuration: {error}", file=sys.stderr)
            return EXIT_CONFIG
        except (LedgerOpenError, PermissionError, OSError, ValueError) as error:
            print(f"hub: {error}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _open(args: argparse.Namespace, *, read_only: bool) -> Ledger:
    """The configured ledger, which must exist at the current schema."""
    from hub.ops.ledger_cli import ledger_url

    settings = load_settings(getattr(args, "ledger_config", None) or getattr(args, "config", None))
    url = args.url or ledger_url(settings)
    try:
        return Ledger.open(url, blob_dir=settings.path(settings.ledger.blob_dir),
                           read_only=read_only, must_exist=True)
    except (TransientError, ConfigurationError, LedgerOpenError, OSError):
        raise
    except Exception as exc:  # the database driver's own errors: an unusable URL
        from hub.logs import redact_url

        raise ConfigurationError(f"cannot open the ledger at {redact_url(url)}: "
                                 f"{type(exc).__name__}: {exc}") from None


def _directory(args: argparse.Namespace) -> Directory:
    """The configured organization directory: it says which codes are one body."""
    from hub.app import load_directory

    return load_directory(
        load_settings(getattr(args, "ledger_config", None) or getattr(args, "config", None)))


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _import(args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    if args.dry_run:
        rows = parse_registry_csv(data, args.file.name)
        print(f"{args.file.name}: {len(rows)} rows, no error (nothing imported: --dry-run)")
        return EXIT_OK
    with _open(args, read_only=False) as ledger:
        result = import_registry(ledger, data, source=args.file.name)
    print(f"{args.file.name}: {result.summary()}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    _folders_exist(args.output)
    with _open(args, read_only=True) as ledger:
        data = export_registry(ledger, headers=args.headers)
    if args.output is None:
        sys.stdout.write(data.decode("utf-8-sig"))
    else:
        args.output.write_bytes(data)
    return EXIT_OK


def _folders_exist(*files: Path | None) -> None:
    """Refuse a file to write into a folder that does not exist, before any work is done (the
    report would otherwise be computed, even printed, and the run fail at its last step)."""
    for file in files:
        if file is not None and not file.parent.is_dir():
            raise ValueError(f"{file.parent}: no such directory (for {file.name})")


def _report(args: argparse.Namespace) -> int:
    if args.output_dir is not None and not args.output_dir.is_dir():
        raise ValueError(f"{args.output_dir}: no such directory")
    _folders_exist(args.output, args.chart)
    directory = _directory(args)
    with _open(args, read_only=args.no_sync) as ledger:
        report = plan_report(ledger, at=args.at, since=args.since, until=args.until,
                             period=args.period, sync=not args.no_sync, directory=directory)
    renderers = {"table": render_table, "csv": render_csv, "json": render_json}
    _write(renderers[args.format](report), args.output)
    if args.output_dir is not None:
        for name, rows in csv_sections(report).items():
            (args.output_dir / f"subscribers-{name}.csv").write_text(section_csv(rows),
                                                                     encoding="utf-8")
    if args.chart is not None:
        from hub.ledger.subscribers_chart import render_chart

        args.chart.write_bytes(render_chart(report, fmt=args.chart.suffix.lower()[1:]))
    if args.fail_on_alarm and report.revoked_signing:
        print(f"hub: ALARM: {len(report.revoked_signing)} revoked certificate(s) seen signing",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _notices(args: argparse.Namespace) -> int:
    if args.output_dir is not None and not args.output_dir.is_dir():
        raise ValueError(f"{args.output_dir}: no such directory")
    at = args.at or datetime.now(UTC)
    directory = _directory(args)
    with _open(args, read_only=args.no_sync) as ledger:
        found = notices(ledger, at=at, within_days=args.within, sync=not args.no_sync,
                        directory=directory)
    if args.output_dir is None:
        sys.stdout.write(notices_csv([n for items in found.values() for n in items]))
        return EXIT_OK
    from hub.ledger.subscribers import vietnam_day

    day = vietnam_day(at).isoformat()
    for organ, items in found.items():
        path = args.output_dir / f"notices-{day}-{organ}.csv"
        path.write_text(notices_csv(items), encoding="utf-8")
        kinds = {k: sum(1 for n in items if n.notice == k) for k in ("expiring", "never_signed")}
        print(f"{path}: {kinds['expiring']} expiring, {kinds['never_signed']} never signed")
    if not found:
        print(f"no notice for {day}")
    return EXIT_OK


def _sync(args: argparse.Namespace) -> int:
    with _open(args, read_only=False) as ledger:
        read = sync_observations(ledger)
    print(f"signature index up to date ({read:,} accepted envelopes read)")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as ledger:
        entries = history(ledger, args.identifier)
    for e in entries:
        change = f"{e.old} → {e.new}" if e.old is not None else str(e.new)
        effective = f" (from {e.effective})" if e.effective else ""
        cert = f" certificate {e.certificate_id[:8]}" if e.certificate_id else ""
        print(f"{e.at.isoformat()}  {e.identifier}{cert}  {e.field}: {change}{effective}"
              f"  [{e.source}]")
    return EXIT_OK

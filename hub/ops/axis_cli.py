"""``hub axis …``: the national-axis connector and its directory sync.

``hub axis run`` moves documents between the hub and the national axis until SIGTERM
(:mod:`hub.axis.connector`); ``hub axis sync-directory OUTPUT`` writes the directory with the
axis' agency list imported as external bodies, and prints what changed
(:mod:`hub.axis.directory_sync`). Both read ``[axis]`` (system id, secret from a file or the
environment, TLS verification on by default). Errors print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hub.config import load_settings

EXIT_OK = 0
"""Done."""
EXIT_HELD = 1
"""Written, but the axis gives codes to other bodies and they were not moved (review them, then
``--rebind``)."""
EXIT_USAGE = 2
"""The directory file cannot be read (missing, not UTF-8) or the output path written."""
EXIT_UNAVAILABLE = 4
"""The axis could not be reached (same code as the hub CLI)."""


def _run(args: argparse.Namespace) -> int:
    from hub import logs
    from hub.axis import build_connector

    settings = load_settings(args.config)
    logs.configure(settings.log.format, settings.log.level)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    running = build_connector(settings, stop=stop)
    metrics = running.connector.metrics
    if settings.axis.metrics_port:
        metrics.serve(settings.axis.metrics_host, settings.axis.metrics_port)
    try:
        running.connector.run()
    finally:
        metrics.shutdown()
        running.close()
    return EXIT_OK


def _sync(args: argparse.Namespace) -> int:
    from hub.axis.client import AxisUnavailable, client_from_settings
    from hub.axis.directory_sync import sync_directory
    from hub.directory import SAMPLE_FILE
    from hub.ops.cli import UserError

    settings = load_settings(args.config)
    if settings.hub.directory:
        source = settings.path(settings.hub.directory)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{source}: {exc.strerror or exc}", EXIT_USAGE) from None
        except UnicodeDecodeError as exc:  # the directory is TOML, UTF-8 by definition
            raise UserError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                            EXIT_USAGE) from None
    else:
        import importlib.resources

        source = Path(f"hub/data/{SAMPLE_FILE}")
        text = (importlib.resources.files("hub") / "data" / SAMPLE_FILE).read_text("utf-8")
    client = client_from_settings(settings)  # after the directory: nothing left open on its errors
    try:
        agencies = client.agencies()
    except AxisUnavailable as exc:
        raise UserError(f"the national axis: {exc.detail}", EXIT_UNAVAILABLE) from None
    finally:
        client.close()
    new_text, report = sync_directory(text, agencies, broker_user=settings.axis.broker_user,
                                      source=str(source), rebind=args.rebind)
    output: Path = args.output
    try:
        output.write_text(new_text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE) from None
    if args.json:
        print(json.dumps({"output": str(output), "agencies": len(agencies), **report.to_dict()},
                         ensure_ascii=False))
    else:
        print(f"wrote {output} from {source} and {len(agencies)} agencies of the axis")
        for line in report.lines():
            print(line)
    if report.moved and not report.moves_applied:
        # Another certificate would sign for these codes: a person decides, not a nightly job.
        print(f"hub: {len(report.moved)} code(s) the axis gives to another body were not moved;"
              " review them, then run again with --rebind (or write the entries in the"
              " directory's own part)", file=sys.stderr)
        return EXIT_HELD
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``axis`` commands to the hub's parser."""
    axis = subparsers.add_parser("axis", help="the national document axis connector")
    sub = axis.add_subparsers(dest="axis_command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="move documents to and from the national axis until SIGTERM")
    p.set_defaults(func=_run)
    p = sub.add_parser("sync-directory",
                       help="import the axis' agency list into a copy of the directory")
    p.add_argument("output", type=Path,
                   help="the directory TOML to write (the configured one plus the axis' bodies)")
    p.add_argument("--json", action="store_true", help="print the diff report as JSON")
    p.add_argument("--rebind", action="store_true",
                   help="apply the axis' answer where it gives a code to another body (each"
                        " move and each signer change is still reported); without it such"
                        " codes stay where they are and the command exits 1")
    p.set_defaults(func=_sync)

"""The ``hub`` command line.

Subcommands: ``run`` (the intake consumer), ``demo``, ``send FILE``, ``pki init DIR``,
``doctor``, ``topology export|apply``, ``receipt verify``, ``dlq ...``, ``ledger ...`` and
``evidence ...``. A user error prints one clear line (no traceback) and exits with a named code.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import hub
from hub.config import Settings, load_settings
from hub.errors import ConfigurationError, HubError
from hub.logs import redact_url
from hub.ops.args import existing_file, iso_datetime, one_line

EXIT_OK = 0
"""Everything went as asked."""
EXIT_FAILURE = 1
"""The command ran and found a problem (doctor checks failed, verification failed)."""
EXIT_USAGE = 2
"""Bad command line: unknown option, bad value, missing input file, unwritable output path."""
EXIT_CONFIG = 3
"""Settings, directory, keys, trust anchors or broker account unusable (refused login or
permission, a user id that is not the login)."""
EXIT_UNAVAILABLE = 4
"""A service the command needs (broker, database, the signing token) is unavailable."""
EXIT_INDETERMINATE = 5
"""``hub envelope check`` / ``hub status check``: undecidable for now (revocation data missing
or stale: the hub would retry, never refuse); :data:`hub.ops.envelope_cli.EXIT_INDETERMINATE`."""
EXIT_INTERNAL = 70
"""A bug in the hub (sysexits EX_SOFTWARE): one line here; HUB_DEBUG=1 shows the traceback."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C: 128 + SIGINT, the shell's code), silently. ``hub run`` is not: SIGINT
stops it as SIGTERM does, after the batch in hand (exit 0)."""

EXIT_CODES = {"EXIT_OK": EXIT_OK, "EXIT_FAILURE": EXIT_FAILURE, "EXIT_USAGE": EXIT_USAGE,
              "EXIT_CONFIG": EXIT_CONFIG, "EXIT_UNAVAILABLE": EXIT_UNAVAILABLE,
              "EXIT_INDETERMINATE": EXIT_INDETERMINATE, "EXIT_INTERNAL": EXIT_INTERNAL,
              "EXIT_INTERRUPTED": EXIT_INTERRUPTED}


def _exit_codes_help() -> str:
    docs = {
        EXIT_OK: "ok",
        EXIT_FAILURE: "the command ran and found a problem (a check or a verification failed)",
        EXIT_USAGE: "bad command line, missing input file or unwritable output path",
        EXIT_CONFIG: "unusable settings, directory, keys, trust anchors or broker account, or "
                     "a [metrics] address that cannot be used",
        EXIT_UNAVAILABLE: "a service is unavailable: the broker, the database or the signing "
                          "token",
        EXIT_INDETERMINATE: "(envelope/status check) undecidable for now: revocation data "
                            "missing or stale",
        EXIT_INTERNAL: "a bug in the hub (HUB_DEBUG=1 shows the traceback)",
        EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    }
    return "exit codes:\n" + "\n".join(f"  {code:<3} {text}" for code, text in docs.items())


class UserError(Exception):
    """A problem the user can fix; printed as one line."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class HubArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see: {self.prog} --help)\n")


def _one_line(text: str) -> str:
    return one_line(text, 500)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}", EXIT_USAGE) from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


# -- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from hub import logs
    from hub.app import build_hub

    settings = _settings(args)
    logs.configure(settings.log.format, settings.log.level)
    hub = build_hub(settings)
    try:
        _judge_keys(hub)
    except BaseException:
        hub.close()
        raise
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    metrics = None
    try:
        if settings.metrics.port:
            from hub.ops.metrics import serve_metrics

            # ConfigurationError (exit 3, no restart) naming [metrics] port or host when the
            # address cannot be listened on: taken, privileged or not this machine's.
            metrics = serve_metrics(hub, settings.metrics.host, settings.metrics.port)
        consumer = hub.consumer(name=args.name or "edxml-hub intake", stop=stop)
        if metrics is not None:
            metrics.consumer = consumer
        from hub.validators import pdf

        pdf.preload()  # not inside the first batch that holds a PDF; before the heap is frozen
        settle_heap()
        consumer.run()
    finally:
        hub.close()
        if metrics is not None:
            metrics.shutdown()
    return EXIT_OK


def _judge_keys(hub: Any) -> None:
    """Refuse to start with an operator key receivers refuse; name the other refused keys."""
    import structlog

    from hub.ops.health import judge_keys_at_start

    log = structlog.get_logger("hub.run")
    for judged in judge_keys_at_start(hub.keystore, hub.settings.hub.operator_organ_id,
                                      hub.trust, datetime.now(UTC)):
        log.warning("keystore_key_refused", organ_id=judged.organ_id, operator=judged.operator,
                    reason=judged.reason.value, indication=judged.indication.value,
                    detail=judged.detail[:200])


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's full passes.

    Modules, keys, schemas, the directory and the trust policy live as long as the process;
    left in the collector's oldest generation, each full pass walked them all — 15-40 ms
    pauses measured, the whole tail of the hub's latency. ``gc.freeze`` after one collection
    keeps full passes to what was allocated since (the documented use of ``gc.freeze``).

    The youngest generation is collected every :data:`GC_YOUNG_THRESHOLD` net allocations
    instead of CPython's 700: a batch's objects are freed by reference counting when it is
    done, but with 700 the collector ran every ~9 envelopes and walked the live batch each
    time (13.7 µs of CPU per 10 KB envelope measured, after ``gc.freeze``); with 10,000, twice
    in 3,840 envelopes (0.8 µs). Cyclic garbage is still collected, a little later.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


GC_YOUNG_THRESHOLD = 10_000


# -- send -----------------------------------------------------------------------------------
def cmd_send(args: argparse.Namespace) -> int:
    from hub.client import AgencyClient
    from hub.edxml import EnvelopeRefused, parse_packet
    from hub.edxml.model import StatusPacket

    settings = _settings(args)
    data = _read(args.file)
    try:
        packet = parse_packet(data)
    except EnvelopeRefused as exc:
        raise UserError(f"{args.file}: {exc.reason.value}: {exc.reason.en} ({exc.detail})") from None
    client = AgencyClient(settings.broker.url, packet.sender.organ_id,
                          prefix=settings.broker.prefix, user_id=args.user_id)
    try:
        mid = client.send(data, status=isinstance(packet, StatusPacket))
    finally:
        client.close()
    if args.json:
        print(json.dumps({"file": str(args.file), "sender": packet.sender.organ_id,
                          "status_packet": isinstance(packet, StatusPacket), "message_id": mid}))
    else:
        print(f"sent {args.file} from {packet.sender.organ_id} as message {mid}")
    return EXIT_OK


# -- pki ------------------------------------------------------------------------------------
def cmd_pki_init(args: argparse.Namespace) -> int:
    from hub.testing.pki import main as pki_main

    target: Path = args.dir
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a directory", EXIT_USAGE)
    if target.is_dir() and any(target.iterdir()) and not args.force:
        raise UserError(f"{target}: not empty (a PKI is there?): refusing to overwrite it; "
                        "use --force to replace it", EXIT_USAGE)
    argv = [str(target)]
    if args.crl_base_url:
        argv += ["--crl-base-url", args.crl_base_url]
    return pki_main(argv)


# -- topology -------------------------------------------------------------------------------
def broker_vhost(url: str) -> str:
    """The vhost of an AMQP URL: the path without its leading '/', percent-decoded; '/' when
    the path is empty (``amqp://h/`` and ``amqp://h`` both mean the default vhost)."""
    from urllib.parse import unquote, urlparse

    path = urlparse(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _password_hashes(path: Path, users: list[str]) -> dict[str, str]:
    """Hash each account's password from a TOML file (``"user" = "password"``), fresh salt each."""
    import os
    import tomllib

    from hub.topology import rabbit_password_hash

    try:
        table = tomllib.loads(_read(path).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: {_one_line(str(exc))}", EXIT_CONFIG) from None
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v]
    if bad:
        raise UserError(f"{path}: the password of {bad[0]!r} must be a non-empty string", EXIT_CONFIG)
    missing = [u for u in users if u not in table]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"{path}: no password for {len(missing)} broker account(s): {shown}",
                        EXIT_CONFIG)
    return {u: rabbit_password_hash(table[u], salt=os.urandom(4)) for u in users}


def cmd_topology(args: argparse.Namespace) -> int:
    from hub.app import load_directory, topology_for
    from hub.topology import definitions

    settings = _settings(args)
    directory = load_directory(settings)
    b = settings.broker
    topo = topology_for(settings, directory)
    if args.action == "export":
        from hub.app import broker_user
        from hub.topology import handovers

        vhost = broker_vhost(b.url)
        # The hub's own account is the one its broker URL logs in with.
        hub_user = broker_user(b.url) or "edxml-hub"
        # Where a code passes from one body to another, its queues go to the holder of that
        # moment (now, or the day the operator prepares the file for).
        at = args.at or datetime.now(UTC)
        defs = definitions(topo, directory, vhost=vhost, hub_user=hub_user, at=at)
        hashes = None
        if args.passwords is not None:
            hashes = _password_hashes(args.passwords, [u["name"] for u in defs["users"]])
            defs = definitions(topo, directory, vhost=vhost, hub_user=hub_user,
                               password_hashes=hashes, at=at)
        for change in handovers(directory, after=at):
            print(f"hub: note: {change.describe()}: these definitions let {change.before!r} "
                  f"read them; export again with --at {change.day.isoformat()} and import that "
                  "file on that day", file=sys.stderr)
        text = json.dumps(defs, indent=2, ensure_ascii=False)
        if args.output and args.output != "-":
            _write(Path(args.output), text + "\n")
            print(f"wrote {args.output}: {len(topo.queues)} queues, {len(topo.exchanges)} exchanges, "
                  f"{len(defs['users'])} accounts in vhost {vhost!r}"
                  + ("" if hashes else " (no passwords)"))
        else:
            print(text)
        if hashes is None:
            print("hub: note: accounts exported without passwords; a broker that imports this "
                  "file at boot resets them: use --passwords FILE", file=sys.stderr)
        return EXIT_OK
    from hub.broker import connect

    conn = connect(b.url, "edxml-hub topology apply")
    try:
        conn.declare(topo)
    finally:
        conn.close()
    print(f"declared {len(topo.exchanges)} exchanges, {len(topo.queues)} queues, "
          f"{len(topo.bindings)} bindings on {redact_url(b.url)}")
    return EXIT_OK


# -- doctor ---------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    from hub.ops.health import run_checks

    settings = _settings(args)
    results = run_checks(settings)
    bad = sum(0 if check.ok else 1 for check in results)
    if args.json:
        print(json.dumps({"ok": bad == 0, "checks": [
            {"name": c.name, "ok": c.ok, "detail": c.detail} for c in results]},
            ensure_ascii=False))
    else:
        for check in results:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if bad == 0 else EXIT_FAILURE


# -- receipt --------------------------------------------------------------------------------
def cmd_receipt_verify(args: argparse.Namespace) -> int:
    from hub.ops.receipt_verify import verify_receipt

    settings = _settings(args)
    receipt = _read(args.file)
    envelope = _read(args.envelope) if args.envelope else None
    ok, lines = verify_receipt(settings, receipt, envelope, at=args.at)
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": ok, "findings": lines}, ensure_ascii=False))
    else:
        for line in lines:
            print(line)
    return EXIT_OK if ok else EXIT_FAILURE


# -- demo -----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from hub.ops.demo import run_demo

    return run_demo(args.config, state_dir=Path(args.state_dir) if args.state_dir else None)


def build_parser() -> argparse.ArgumentParser:
    parser = HubArgumentParser(
        prog="hub", description=(
            "edxml-hub: EDXML document exchange for state bodies, signatures enforced."),
        epilog=_exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {hub.__version__}",
                        help="print the version and exit")
    parser.add_argument("--config", "-c", default=None,
                        help="TOML settings file (default: $HUB_CONFIG or built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the intake consumer until SIGTERM")
    p.add_argument("--name", default=None, help="connection name shown by RabbitMQ")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="start the hub and exchange a few documents, then explain")
    p.add_argument("--state-dir", default=None,
                   help="where the demo keeps its PKI and ledger (default: ./.hub-demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("send", help="publish a signed envelope or status packet to the hub")
    p.add_argument("file", type=existing_file, help="the signed EDXML packet, sent byte for byte")
    p.add_argument("--user-id", default=None,
                   help="AMQP user_id (your broker account; default: the URL's user)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("pki", help="test PKI shaped like the specialized one")
    psub = p.add_subparsers(dest="pki_command", required=True, metavar="COMMAND")
    pi = psub.add_parser("init", help="generate a test PKI into DIR")
    pi.add_argument("dir", type=Path, help="directory to write (must be empty unless --force)")
    pi.add_argument("--crl-base-url", default=None,
                    help="URL the certificates' CRL distribution points name")
    pi.add_argument("--force", action="store_true",
                    help="overwrite the PKI already in DIR (its keys are lost)")
    pi.set_defaults(func=cmd_pki_init)

    p = sub.add_parser("doctor", help="check broker, ledger, trust anchors and CRLs")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("topology", help="export or declare the broker topology")
    p.add_argument("action", choices=["export", "apply"],
                   help="export: write definitions.json; apply: declare on the broker")
    p.add_argument("--output", "-o", default="-", help="definitions.json path (export; - : stdout)")
    p.add_argument("--passwords", type=existing_file, default=None,
                   help="TOML file 'account = \"password\"' for every account: the passwords go "
                        "into the definitions as salted hashes, so a broker that re-imports the "
                        "file at boot keeps them (export)")
    p.add_argument("--at", type=iso_datetime, default=None,
                   help="the moment the accounts are for (ISO date or date-time, UTC; default: "
                        "now): where an organization code passes from one body to another, its "
                        "queues are read by the body holding it then (export)")
    p.set_defaults(func=cmd_topology)

    p = sub.add_parser("receipt", help="receipts the hub issued")
    rsub = p.add_subparsers(dest="receipt_command", required=True, metavar="COMMAND")
    rv = rsub.add_parser("verify", help="verify a receipt's signature and binding")
    rv.add_argument("file", type=existing_file, help="the receipt (a signed EDXML status packet)")
    rv.add_argument("--envelope", type=existing_file, default=None,
                    help="the original envelope, to check the binding")
    rv.add_argument("--at", type=iso_datetime, default=None,
                    help="a time the receipt is proven to have existed (e.g. when the ledger "
                         "recorded it; ISO date-time, UTC): everything is judged then. Without "
                         "it, certificates are judged at the receipt's own Timestamp and a "
                         "revocation that puts the key in doubt counts whatever that says")
    rv.add_argument("--json", action="store_true", help="print the result as JSON")
    rv.set_defaults(func=cmd_receipt_verify)

    for module in ("hub.ops.ledger_cli", "hub.ops.dlq", "hub.ops.envelope_cli",
                   "hub.ops.axis_cli", "hub.console.cli", "hub.api.cli",
                   "hub.ops.subscribers_cli"):
        register = _optional_register(module)
        if register is not None:
            register(sub)
    return parser


def _optional_register(module: str) -> Callable[[Any], None] | None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    register = getattr(mod, "register", None)
    return register if callable(register) else None


def _run(args: argparse.Namespace) -> int:
    from hub.broker import BrokerRefused

    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"hub: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except ConfigurationError as exc:
        print(f"hub: configuration: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokerRefused as exc:
        print(f"hub: configuration: {_one_line(exc.detail)}", file=sys.stderr)
        return EXIT_CONFIG
    except HubError as exc:
        print(f"hub: unavailable: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except OSError as exc:
        if exc.filename is None:
            print(f"hub: unavailable: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"hub: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from hub import logs
    from hub.ops.dlq import protect_ids

    logs.configure("auto", "warning")  # stdout is for results; events go to stderr
    parser = build_parser()
    try:
        args = parser.parse_args(protect_ids(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:
        # argparse turns only ArgumentTypeError, TypeError and ValueError from a ``type=`` into
        # a usage line; anything else a value made an argument type raise is still about the
        # command line the user typed: one usage line, never a traceback.
        if os.environ.get("HUB_DEBUG"):
            raise
        print(f"hub: error: bad command line: {_one_line(str(exc)) or type(exc).__name__} "
              "(see: hub --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("HUB_DEBUG"):
            raise
        print(f"hub: internal error ({type(exc).__name__}): {_one_line(str(exc))} "
              "(a bug: HUB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

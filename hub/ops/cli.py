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
from pathlib import Path
from typing import Any

from hub.config import Settings, load_settings
from hub.errors import ConfigurationError, HubError
from hub.logs import redact_url

EXIT_OK = 0
"""Everything went as asked."""
EXIT_FAILURE = 1
"""The command ran and found a problem (doctor checks failed, verification failed)."""
EXIT_USAGE = 2
"""Bad command line (argparse's own convention)."""
EXIT_CONFIG = 3
"""Settings, directory, keys or trust anchors are unusable."""
EXIT_UNAVAILABLE = 4
"""A service the command needs (broker, database) is unavailable."""


class UserError(Exception):
    """A problem the user can fix; printed as one line."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


# -- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from hub import logs
    from hub.app import build_hub

    settings = _settings(args)
    logs.configure(settings.log.format, settings.log.level)
    hub = build_hub(settings)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    metrics = None
    if settings.metrics.port:
        from hub.ops.metrics import serve_metrics

        metrics = serve_metrics(hub, settings.metrics.host, settings.metrics.port)
    consumer = hub.consumer(name=args.name or "edxml-hub intake", stop=stop)
    if metrics is not None:
        metrics.consumer = consumer
    settle_heap()
    try:
        consumer.run()
    finally:
        hub.close()
        if metrics is not None:
            metrics.shutdown()
    return EXIT_OK


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's full passes.

    Modules, keys, schemas, the directory and the trust policy live as long as the process;
    left in the collector's oldest generation, each full pass walked them all — 15-40 ms
    pauses measured, the whole tail of the hub's latency. ``gc.freeze`` after one collection
    keeps full passes to what was allocated since (the documented use of ``gc.freeze``).
    """
    import gc

    gc.collect()
    gc.freeze()


# -- send -----------------------------------------------------------------------------------
def cmd_send(args: argparse.Namespace) -> int:
    from hub.client import AgencyClient
    from hub.edxml import EnvelopeRefused, parse_packet
    from hub.edxml.model import StatusPacket

    settings = _settings(args)
    data = Path(args.file).read_bytes()
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
    print(f"sent {args.file} from {packet.sender.organ_id} as message {mid}")
    return EXIT_OK


# -- pki ------------------------------------------------------------------------------------
def cmd_pki_init(args: argparse.Namespace) -> int:
    from hub.testing.pki import main as pki_main

    argv = [str(args.dir)]
    if args.crl_base_url:
        argv += ["--crl-base-url", args.crl_base_url]
    return pki_main(argv)


# -- topology -------------------------------------------------------------------------------
def cmd_topology(args: argparse.Namespace) -> int:
    from hub.app import load_directory
    from hub.topology import definitions

    settings = _settings(args)
    directory = load_directory(settings)
    b = settings.broker
    from hub.app import topology_for

    topo = topology_for(settings, directory)
    if args.action == "export":
        text = json.dumps(definitions(topo, directory), indent=2, ensure_ascii=False)
        if args.output and args.output != "-":
            Path(args.output).write_text(text + "\n", encoding="utf-8")
            print(f"wrote {args.output}: {len(topo.queues)} queues, {len(topo.exchanges)} exchanges")
        else:
            print(text)
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
    bad = 0
    for check in results:
        mark = "ok  " if check.ok else "FAIL"
        print(f"{mark} {check.name}: {check.detail}")
        bad += 0 if check.ok else 1
    return EXIT_OK if bad == 0 else EXIT_FAILURE


# -- receipt --------------------------------------------------------------------------------
def cmd_receipt_verify(args: argparse.Namespace) -> int:
    from hub.ops.receipt_verify import verify_receipt_file

    settings = _settings(args)
    ok, lines = verify_receipt_file(settings, Path(args.file),
                                    Path(args.envelope) if args.envelope else None)
    for line in lines:
        print(line)
    return EXIT_OK if ok else EXIT_FAILURE


# -- demo -----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from hub.ops.demo import run_demo

    return run_demo(args.config, state_dir=Path(args.state_dir) if args.state_dir else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description=(
        "edxml-hub: EDXML document exchange for state bodies, signatures enforced."))
    parser.add_argument("--config", "-c", default=None,
                        help="TOML settings file (default: $HUB_CONFIG or built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the intake consumer until SIGTERM")
    p.add_argument("--name", default=None, help="connection name shown by RabbitMQ")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="start the hub and exchange a few documents, then explain")
    p.add_argument("--state-dir", default=None, help="where the demo keeps its PKI and ledger")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("send", help="publish a signed envelope or status packet to the hub")
    p.add_argument("file")
    p.add_argument("--user-id", default=None, help="AMQP user_id (your broker account)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("pki", help="test PKI shaped like the specialized one")
    psub = p.add_subparsers(dest="pki_command", required=True)
    pi = psub.add_parser("init", help="generate a test PKI into DIR")
    pi.add_argument("dir", type=Path)
    pi.add_argument("--crl-base-url", default=None)
    pi.set_defaults(func=cmd_pki_init)

    p = sub.add_parser("doctor", help="check broker, ledger, trust anchors and CRLs")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("topology", help="export or declare the broker topology")
    p.add_argument("action", choices=["export", "apply"])
    p.add_argument("--output", "-o", default="-", help="definitions.json path (export)")
    p.set_defaults(func=cmd_topology)

    p = sub.add_parser("receipt", help="receipts the hub issued")
    rsub = p.add_subparsers(dest="receipt_command", required=True)
    rv = rsub.add_parser("verify", help="verify a receipt's signature and binding")
    rv.add_argument("file")
    rv.add_argument("--envelope", default=None, help="the original envelope, to check the binding")
    rv.set_defaults(func=cmd_receipt_verify)

    from hub.ops.envelope_cli import register as register_envelope_kit

    register_envelope_kit(sub)
    for module in ("hub.ops.ledger_cli", "hub.ops.dlq"):
        register = _optional_register(module)
        if register is not None:
            register(sub)
    return parser


def _optional_register(module: str) -> Callable[[Any], None] | None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    register = getattr(mod, "register", None)
    return register if callable(register) else None


def main(argv: Sequence[str] | None = None) -> int:
    from hub import logs

    logs.configure("auto", "warning")  # stdout is for results; events go to stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return exc.code
    except ConfigurationError as exc:
        print(f"hub: configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except HubError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

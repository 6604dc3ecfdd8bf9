"""``hub ledger …`` and ``hub evidence …`` subcommands.

:func:`register` adds them to the hub's argument parser; each subcommand sets ``func`` to a
handler ``(args) -> exit code``. Settings come from ``--config`` (or ``HUB_CONFIG``); ``--url``
overrides the ledger URL. Errors print one line, never a traceback.

Auditors' commands (verify, query, report, backup, evidence) never create or migrate a
database: a mistyped path is an error, and a read-only SQLite copy or a read-only PostgreSQL
role is enough. Only ``restore`` and ``migrate`` write the schema; ``evidence export`` may append
a checkpoint to an existing ledger.

Checkpoint signatures are judged against the hub operator's trust anchors, never against the
certificate the ledger or the bundle carries: ``--operator-ca`` (the CA roots that issue the
operator's certificates, with ``--operator-id``, the operator organization's code in their
subject UID) or ``--operator-cert`` (pinned certificates); by default the configured
``[trust] roots``/``intermediates`` and ``[hub] operator_organ_id``. Without anchors the verify
commands refuse to say ok; ``--self-signed-ok`` checks against the stored certificates, and says
loudly that this proves integrity, not who signed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.config import Settings, load_settings
from hub.errors import ConfigurationError, TransientError
from hub.ledger.backup import BackupError, backup, check_backup, restore
from hub.ledger.evidence import (
    EvidenceError,
    TrustMaterial,
    export_evidence,
    resolve_document,
    verify_bundle,
)
from hub.ledger.records import EventKind, LedgerOpenError, StoredEvent
from hub.ledger.report import PERIODS, adoption_report, render_csv, render_json, render_table
from hub.ledger.store import Ledger
from hub.ledger.verify import OperatorTrust, load_certificates
from hub.ops.args import iso_datetime, job_count, one_line, reason_code

EXIT_OK = 0
"""Everything checked out."""
EXIT_FAILED = 1
"""Verification failed: tampering or missing evidence (the problem is printed)."""
EXIT_USAGE = 2
"""Bad arguments, unknown document, unreadable file (argparse uses 2 as well)."""
EXIT_CONFIG = 3
"""Settings or keys are unusable (same code as the hub CLI)."""
EXIT_UNAVAILABLE = 4
"""The ledger database could not be reached (same code as the hub CLI)."""

SELF_SIGNED_WARNING = (
    "WARNING: --self-signed-ok: checkpoint signatures are checked against the certificates"
    " stored beside them. This proves the records were not changed after signing by WHOEVER"
    " holds those keys, NOT that the hub operator signed them. Give --operator-ca or"
    " --operator-cert for evidence.")

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ledger`` and ``evidence`` commands to the hub's parser."""
    ledger = subparsers.add_parser("ledger", help="the tamper-evident delivery ledger")
    sub = ledger.add_subparsers(dest="ledger_command", required=True)

    p = _command(sub, "verify", "check the whole hash chain and every checkpoint", _verify)
    _trust_args(p)
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept unsigned checkpoints (no operator key configured)")
    p.add_argument("--no-bytes", action="store_true", help="skip re-hashing stored packets")
    p.add_argument("--jobs", type=job_count, default=None,
                   help="processes walking a long chain in segments (default: one per usable"
                        " core; 1: this process alone); the verdict is the same")
    p.add_argument("--expect", type=witness_arg, action="append", default=[], metavar="SEQ:HASH",
                   help="a row and its chain hash noted earlier (the head an earlier verify "
                        "printed, a bundle's checkpoint): fail unless the chain still holds it "
                        "(repeatable; a chain cut back is found only this way)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = _command(sub, "query", "events or documents by document, organization, period", _query)
    p.add_argument("--documents", action="store_true", help="list documents, not events")
    p.add_argument("--digest", help="SHA-256 of the exact envelope bytes")
    p.add_argument("--document-id", help="the document's DocumentId")
    p.add_argument("--code", help="the document's code (number and symbol)")
    p.add_argument("--organ", help="organization code (sender, recipient or reporter)")
    p.add_argument("--since", type=_date, help="ISO date or datetime (inclusive, UTC)")
    p.add_argument("--until", type=_date, help="ISO date or datetime (exclusive, UTC)")
    p.add_argument("--kind", choices=[k.value for k in EventKind], help="event kind")
    p.add_argument("--reason", type=reason_code, help="reason code, e.g. CERT_PUBLIC_CA")
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")

    p = _command(sub, "backup", "write a consistent backup zip", _backup)
    p.add_argument("path", type=Path, help="the zip file to write")
    p = _command(sub, "restore", "restore a backup into an empty ledger", _restore)
    p.add_argument("path", type=Path, help="the backup zip to read")

    p = _command(sub, "report", "adoption report per organization and period", _report)
    p.add_argument("--since", type=_date, help="ISO date or datetime (inclusive, UTC)")
    p.add_argument("--until", type=_date, help="ISO date or datetime (exclusive, UTC)")
    p.add_argument("--period", choices=sorted(PERIODS), default="month",
                   help="one row per organization and this period")
    p.add_argument("--format", choices=["table", "csv", "json", "png", "svg"], default="table",
                   help="output format; png and svg draw a chart (matplotlib) and need --output")
    p.add_argument("--output", type=Path, help="write to a file instead of standard output")

    p = _command(sub, "migrate", "create the ledger or bring its schema up to date", _migrate)
    p.add_argument("--rebuild-adoption", action="store_true",
                   help="also recompute the adoption report's rollup (ledger_adoption) from"
                        " the documents")
    p.add_argument("--rebuild-deliveries", action="store_true",
                   help="also recompute the per-recipient delivery state (ledger_deliveries)"
                        " from the chained documents and events")

    evidence = subparsers.add_parser("evidence", help="evidence bundles for auditors")
    esub = evidence.add_subparsers(dest="evidence_command", required=True)
    p = _command(esub, "export", "write the evidence bundle of one document", _export)
    p.add_argument("document", help="digest, DocumentId or code of the document")
    p.add_argument("--output", type=Path, help="bundle path (default: evidence-<digest>.zip)")
    p = _command(esub, "verify", "check a bundle offline", _verify_bundle, ledger_args=False)
    p.add_argument("bundle", type=Path, help="the evidence bundle (zip or unpacked folder)")
    p.add_argument("--config", dest="ledger_config", type=Path,
                   help="settings file for the default operator trust anchors (default: the"
                        " hub's --config, then HUB_CONFIG; neither: no settings)")
    _trust_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _trust_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operator-ca", type=Path, action="append", default=[],
                   help="PEM file of a CA root that issues the operator's certificates"
                        " (repeatable; default: [trust] roots)")
    p.add_argument("--operator-intermediate", type=Path, action="append", default=[],
                   help="PEM file of an issuing CA below those roots (repeatable; default:"
                        " [trust] intermediates)")
    p.add_argument("--operator-id", help="the operator organization's code, as in its"
                                         " certificates' subject UID (default: [hub]"
                                         " operator_organ_id)")
    p.add_argument("--operator-cert", type=Path, action="append", default=[],
                   help="a pinned PEM certificate of the hub operator (repeatable: one per"
                        " certificate in its history)")
    p.add_argument("--self-signed-ok", action="store_true",
                   help="UNSAFE: trust the certificates stored with the signatures")


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler,
    *,
    ledger_args: bool = True,
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    if ledger_args:
        p.add_argument("--url", help="ledger database URL (default: [ledger] url in settings)")
        p.add_argument("--config", dest="ledger_config", type=Path,
                       help="settings file (default: the hub's --config, then HUB_CONFIG)")
    p.set_defaults(func=_guarded(handler))
    return p


def _date(text: str) -> datetime:
    return iso_datetime(text)


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except TransientError as error:
            print(f"hub: the ledger is unavailable ({one_line(error.detail or error)})",
                  file=sys.stderr)
            return EXIT_UNAVAILABLE
        except ConfigurationError as error:
            print(f"hub: configuration: {one_line(error)}", file=sys.stderr)
            return EXIT_CONFIG
        except (EvidenceError, BackupError, LedgerOpenError, OSError, ValueError) as error:
            print(f"hub: {one_line(error)}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _settings(args: argparse.Namespace) -> Settings:
    path = getattr(args, "ledger_config", None) or getattr(args, "config", None)
    return load_settings(path)


def ledger_url(settings: Settings) -> str:
    """The configured URL, a relative SQLite file resolved next to the configuration file."""
    url = settings.ledger.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(settings.path(url[len(prefix):]))
    return url


def open_ledger_url(url: str, **options: Any) -> Ledger:
    """:meth:`Ledger.open` for a command: what the database layer makes of an unusable URL
    (not a URL, an unknown or missing driver, an option the driver refuses) becomes one
    :class:`ConfigurationError` line that never shows the password.

    An unreachable database stays a :class:`TransientError`, a missing ledger a
    :class:`LedgerOpenError` and an unusable path an :class:`OSError`: those are not the
    settings' fault."""
    try:
        return Ledger.open(url, **options)
    except (TransientError, ConfigurationError, LedgerOpenError, OSError):
        raise
    except Exception as exc:  # SQLAlchemy's and the driver's own errors: an unusable URL
        from hub.logs import redact_url

        raise ConfigurationError(f"cannot open the ledger at {redact_url(url)}: "
                                 f"{type(exc).__name__}: {one_line(exc)}") from None


def _open(
    args: argparse.Namespace, *, sign: bool = False, read_only: bool = True
) -> tuple[Ledger, Settings]:
    """Open the configured ledger: read-only by default (nothing created or migrated); with
    ``sign``, an existing ledger with the operator key so it can append a checkpoint."""
    settings = _settings(args)
    url = getattr(args, "url", None) or ledger_url(settings)
    signer: Callable[[bytes], bytes] | None = None
    cert_pem: bytes | None = None
    if sign and settings.hub.keystore:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        from hub.app import load_keystore

        operator = load_keystore(settings).signer(settings.hub.operator_organ_id)
        if operator is not None:
            key = operator.key

            def signer(data: bytes) -> bytes:
                return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

            # The signer's certificate, then its issuing CAs: the path a verifier checks.
            cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                                for c in (operator.cert, *operator.chain))
    # A missing ledger (LedgerOpenError) is the user's path (exit 2), not the settings.
    ledger = open_ledger_url(url, blob_dir=settings.path(settings.ledger.blob_dir),
                             blob_threshold=settings.ledger.blob_threshold,
                             checkpoint_every=settings.ledger.checkpoint_every,
                             checkpoint_signer=signer, checkpoint_cert_pem=cert_pem,
                             read_only=read_only and signer is None, must_exist=True)
    return ledger, settings


def _pem_files(paths: Sequence[Path], settings: Settings | None,
               configured: Sequence[str]) -> tuple[Any, ...]:
    files = list(paths)
    if not files and settings is not None:
        for entry in configured:
            path = settings.path(entry)
            files.extend(sorted(p for p in path.iterdir() if p.is_file())
                         if path.is_dir() else [path])
    return tuple(c for f in files for c in load_certificates(f.read_bytes()))


def operator_trust(args: argparse.Namespace, settings: Settings | None) -> OperatorTrust:
    """The anchors checkpoint signatures are judged by (see the module docstring)."""
    roots = _pem_files(args.operator_ca, settings,
                       settings.trust.roots if settings is not None else ())
    intermediates = _pem_files(args.operator_intermediate, settings,
                               settings.trust.intermediates if settings is not None else ())
    pinned = tuple(c for f in args.operator_cert for c in load_certificates(f.read_bytes())[:1])
    operator_id = args.operator_id or (
        settings.hub.operator_organ_id if settings is not None else None)
    return OperatorTrust(roots=roots, intermediates=intermediates, pinned=pinned,
                         operator_id=operator_id, self_signed_ok=args.self_signed_ok)


def _no_anchor(trust: OperatorTrust) -> bool:
    """True (after one line of explanation) when nothing trustworthy judges the signers."""
    if trust.anchored:
        return False
    if trust.self_signed_ok:
        print(SELF_SIGNED_WARNING, file=sys.stderr)
        return False
    print("hub: no operator trust anchor: give --operator-ca ROOT.pem (with --operator-id, or"
          " [trust] roots and [hub] operator_organ_id in the settings) or --operator-cert"
          " OPERATOR.pem; refusing to call unverified signatures ok", file=sys.stderr)
    return True


def _progress_bar(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 40
    filled = width * done // total if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} rows")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def witness_arg(text: str) -> tuple[int, str]:
    """``--expect SEQ:HASH`` (:func:`hub.ledger.verify.witness`), its error one usage line."""
    from hub.ledger.verify import witness

    try:
        return witness(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _verify(args: argparse.Namespace) -> int:
    from hub.ledger.verify import LedgerVerdict

    ledger, settings = _open(args)  # a missing ledger is the first thing to say
    with ledger:
        trust = operator_trust(args, settings)
        if _no_anchor(trust):
            return EXIT_USAGE
        result = ledger.verify(_progress_bar, trust=trust,
                               require_signed=not args.allow_unsigned,
                               check_bytes=not args.no_bytes, jobs=args.jobs,
                               expect=args.expect)
    if args.json:
        print(json.dumps(result.to_dict()))
    elif result.ok:
        signers = ", ".join(s[:16] for s in result.signers) or "none"
        how = ("chained to the operator CA roots or pinned" if result.signers_trusted
               else "UNVERIFIED: checked against the stored certificates only")
        print(f"ok: {result.rows:,} rows, {result.checkpoints} checkpoints"
              f" ({result.signed_checkpoints} signed); operator certificates {signers} ({how})")
        if isinstance(result, LedgerVerdict):
            print(result.head_line())
        if isinstance(result, LedgerVerdict) and result.unsigned_rows:
            # Not a failure: an honest ledger has rows since its last checkpoint (how many
            # depends on the writer's settings, which the ledger does not record).
            last = f"row {result.signed_through:,}" if result.signed_through else "none"
            print(f"note: rows {result.signed_through + 1:,}-{result.rows:,}"
                  f" ({result.unsigned_rows:,}) come after the last signed checkpoint ({last}):"
                  " no signature covers them, so this check cannot tell whether they were"
                  " rewritten")
    else:
        print(f"FAILED{_at_row(result.first_bad_row)}: {result.problem}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _at_row(seq: int | None) -> str:
    return "" if seq is None else f" at row {seq}"


def _organ_codes(args: argparse.Namespace, settings: Settings) -> Sequence[str] | None:
    """``--organ`` as the codes the ledger may hold for that body (any of its codes finds its
    documents: :func:`hub.ledger.search.organ_codes`); without it, None: no filter."""
    if not args.organ:
        return None
    from hub.app import load_directory
    from hub.ledger.search import organ_codes

    return organ_codes(load_directory(settings), args.organ, since=args.since, until=args.until)


def _query(args: argparse.Namespace) -> int:
    ledger, settings = _open(args)
    with ledger:
        organs = _organ_codes(args, settings)
        digest = args.digest
        if digest is None and (args.document_id or args.code) and not args.documents:
            docs = ledger.documents(document_id=args.document_id, code=args.code)
            if not docs:
                print("no such document", file=sys.stderr)
                return EXIT_FAILED
            digest = docs[0].digest
        if args.documents:
            rows: Sequence[dict[str, Any]] = [d.to_dict() for d in ledger.documents(
                code=args.code, document_id=args.document_id, organ_id=organs,
                since=args.since, until=args.until, limit=args.limit)]
            columns = ["seq", "received_at", "sender", "document_id", "code", "kind", "digest"]
        else:
            events: list[StoredEvent] = ledger.events(
                digest=digest, organ_id=organs, since=args.since, until=args.until,
                kind=args.kind, reason=args.reason, limit=args.limit)
            rows = [e.to_dict() for e in events]
            columns = ["seq", "at", "kind", "organ_id", "reason", "message_id", "digest"]
    if args.json:
        print(json.dumps(list(rows), ensure_ascii=False, indent=2))
    else:
        print(_table(rows, columns), end="")
    return EXIT_OK


def _table(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    cells = [columns] + [["" if r.get(c) is None else str(r.get(c)) for c in columns]
                         for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    return "\n".join(lines) + "\n"


def _backup(args: argparse.Namespace) -> int:
    ledger, _ = _open(args)
    with ledger:
        counts = backup(ledger, args.path)
    print(f"backup written to {args.path}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    settings = _settings(args)
    url = getattr(args, "url", None) or ledger_url(settings)
    # Read the backup before the target is opened (which creates and migrates it): a
    # missing or unreadable file leaves the target as it was.
    check_backup(args.path)
    with open_ledger_url(url, blob_dir=settings.path(settings.ledger.blob_dir),
                         blob_threshold=settings.ledger.blob_threshold) as ledger:
        restore(args.path, ledger)
        result = ledger.verify(_progress_bar)
    print(f"restored {result.rows:,} rows; chain: "
          + ("ok" if result.ok else f"FAILED{_at_row(result.first_bad_row)}: {result.problem}")
          + "; run `hub ledger verify` to check the checkpoint signatures")
    return EXIT_OK if result.ok else EXIT_FAILED


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    url = getattr(args, "url", None) or ledger_url(settings)
    with open_ledger_url(url) as ledger:
        seq, _ = ledger.head()
        rebuilt = ledger.rebuild_adoption() if args.rebuild_adoption else None
        states = ledger.rebuild_deliveries() if args.rebuild_deliveries else None
    print(f"ledger schema up to date ({seq:,} rows)"
          + (f"; adoption rollup rebuilt ({rebuilt:,} rows)" if rebuilt is not None else "")
          + (f"; delivery state rebuilt ({states:,} rows)" if states is not None else ""))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    if args.format in ("png", "svg") and args.output is None:
        raise ValueError(f"--format {args.format} draws a chart: give --output FILE")
    ledger, _ = _open(args)
    with ledger:
        rows = adoption_report(ledger, since=args.since, until=args.until, period=args.period)
    if args.format in ("png", "svg"):
        from hub.ledger.chart import render_chart

        args.output.write_bytes(render_chart(rows, fmt=args.format))
        return EXIT_OK
    if args.format == "table":
        text = render_table(rows)
    elif args.format == "csv":
        text = render_csv(rows)
    else:
        text = render_json(rows)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def trust_material(settings: Settings) -> TrustMaterial:
    """The configured roots, intermediates and CRLs, to ship inside a bundle."""

    def files(entries: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for entry in entries:
            path = settings.path(entry)
            for item in sorted(path.iterdir()) if path.is_dir() else [path]:
                if item.is_file():
                    out[item.name] = item.read_bytes()
        return out

    return TrustMaterial(roots=files(settings.trust.roots),
                         intermediates=files(settings.trust.intermediates),
                         crls=files(settings.trust.crls))


def _export(args: argparse.Namespace) -> int:
    ledger, settings = _open(args, sign=True)
    with ledger:
        digest = resolve_document(ledger, args.document)
        output = args.output or Path(f"evidence-{digest[:16]}.zip")
        export_evidence(ledger, digest, output, trust=trust_material(settings))
    print(f"evidence bundle written to {output}")
    return EXIT_OK


def _verify_bundle(args: argparse.Namespace) -> int:
    if not args.bundle.exists():
        print(f"hub: {args.bundle}: no such bundle (a zip or an unpacked folder)", file=sys.stderr)
        return EXIT_USAGE
    # Its own --config, else the hub's global --config, else HUB_CONFIG; none: no settings.
    given = args.ledger_config or getattr(args, "config", None) or _env_config()
    settings = _settings(args) if given else None
    trust = operator_trust(args, settings)
    if _no_anchor(trust):
        return EXIT_USAGE
    result = verify_bundle(args.bundle, trust=trust)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    elif result.ok:
        print(f"ok: document {result.document}, {result.entries} ledger entries, signed"
              f" checkpoint at row {result.checkpoint_seq}"
              + ("" if result.signer_trusted else
                 " (UNVERIFIED signer: checked against the bundle's certificates only)"))
        for note in result.notes:
            print(f"note: {note}")
    else:
        print("FAILED:")
        for problem in result.problems:
            print(f"  - {problem}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _env_config() -> bool:
    import os

    return bool(os.environ.get("HUB_CONFIG"))


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m hub.ops.ledger_cli``) until the hub CLI wires us in."""
    parser = argparse.ArgumentParser(prog="hub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())

"""``hub envelope build|sign|check`` and ``hub status build|sign|check``: the integrator kit.

::

    hub envelope build letter.toml -o letter.xml          # description + files → unsigned EDXML
    hub envelope sign letter.xml -o letter.signed.xml --key org.key.pem --cert org.pem
    hub envelope sign letter.xml -o letter.signed.xml --pkcs11-module /usr/lib/…/libX.so \\
        --token-label "USB token" --key-label "seal" --pin-env TOKEN_PIN
    hub envelope check letter.signed.xml [--json] [--at 2026-11-20T08:00:00+07:00]
    hub status build --answer letter.signed.xml --code 03 -o status.xml
    hub status build status.toml -o status.xml
    hub status sign status.xml -o status.signed.xml --key … --cert …
    hub status check status.signed.xml

``check`` uses the global ``--config`` settings (trust anchors, CRLs, the directory, limits): the
same verdict the hub gives, offline (docs/INTEGRATING.md says what it cannot see). The ``status``
commands are the ``envelope`` ones for status packets; each group refuses the other kind.

Exit codes (docs/INTEGRATING.md): ``0`` accepted / done; ``1`` refused (``check``) or unusable
input (``build``, ``sign``); ``2`` bad command line; ``3`` configuration (settings, key,
certificate, token); ``5`` indeterminate (``check``: revocation data missing or stale — the hub
would retry, never refuse).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK = 0
"""Built, signed, or (``check``) the hub would accept the packet."""
EXIT_REFUSED = 1
"""``check``: the hub would refuse the packet; ``build``/``sign``: the input is unusable."""
EXIT_CONFIG = 3
"""Settings, key, certificate or token unusable (same code as the rest of ``hub``)."""
EXIT_INDETERMINATE = 5
"""``check``: revocation data is missing or stale; the hub would retry, never refuse."""


class KitError(Exception):
    """A problem the user can fix, printed as one line."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def _one_line(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every expected failure is one line on stderr with its exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from hub.errors import ConfigurationError
        from hub.ops.envelope_kit import DescriptionError

        try:
            return func(args)
        except KitError as exc:
            print(f"hub: {exc}", file=sys.stderr)
            return exc.code
        except DescriptionError as exc:
            print(f"hub: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except ConfigurationError as exc:
            print(f"hub: configuration: {exc}", file=sys.stderr)
            return EXIT_CONFIG

    return wrapper


def _write(data: bytes, output: str | None, what: str) -> None:
    if output is None or output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    Path(output).write_bytes(data)
    print(f"wrote {output}: {what}, {len(data)} bytes", file=sys.stderr)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KitError(f"{path}: {exc.strerror}") from None


def _parsed(data: bytes, path: str, kind: str) -> Any:
    from hub.edxml import EnvelopeRefused, StatusPacket, parse_packet

    try:
        packet = parse_packet(data)
    except EnvelopeRefused as exc:
        raise KitError(f"{path}: {exc.reason.value}: {exc.reason.en} ({exc.detail})") from None
    this = "status" if isinstance(packet, StatusPacket) else "document"
    if this != kind:
        group = "status" if this == "status" else "envelope"
        raise KitError(f"{path} is a {this} packet: use `hub {group} …`")
    return packet


# -- build -----------------------------------------------------------------------------------


@_one_line
def cmd_build(args: argparse.Namespace) -> int:
    from hub.ops.envelope_kit import (
        build_document,
        build_status_packet,
        load_description,
        status_answering,
    )

    if args.kind == "status" and args.answer:
        if args.description:
            raise KitError("give a description or --answer, not both")
        if not args.code:
            raise KitError("--answer needs --code (a QCVN 102 status code, e.g. 03)")
        data = status_answering(_read(args.answer), args.code, args.reporter,
                                description=args.text or "")
    else:
        if not args.description:
            raise KitError("a description file (TOML or JSON) is required")
        path = Path(args.description)
        description = load_description(path)
        data = (build_status_packet(description) if args.kind == "status"
                else build_document(description, path.parent))
    _write(data, args.output, f"unsigned {args.kind}")
    return EXIT_OK


# -- sign ------------------------------------------------------------------------------------


def _token_spec(args: argparse.Namespace) -> Any:
    from hub.trust.token import TokenKeySpec

    if not args.pkcs11_module:
        return None
    if args.key:
        raise KitError("give --key or --pkcs11-module, not both")
    raw = {"module": args.pkcs11_module, "token_label": args.token_label,
           "key_label": args.key_label}
    if args.pin_env:
        raw["pin_env"] = args.pin_env
    if args.pin_file:
        raw["pin_file"] = args.pin_file
    if args.cert:
        raw["cert"] = args.cert
    missing = [f"--{k.replace('_', '-')}" for k in ("token_label", "key_label") if not raw[k]]
    if missing:
        raise KitError(f"a PKCS#11 key needs {' and '.join(missing)}")
    return TokenKeySpec.from_mapping({k: v for k, v in raw.items() if v}, "command line")


@_one_line
def cmd_sign(args: argparse.Namespace) -> int:
    from hub.ops.envelope_kit import load_signer
    from hub.trust.signing import sign_xml

    data = _read(args.file)
    packet = _parsed(data, args.file, args.kind)
    token = _token_spec(args)
    passphrase = os.environ.get(args.passphrase_env) if args.passphrase_env else None
    signer = load_signer(packet.sender.organ_id, key=Path(args.key) if args.key else None,
                         cert=Path(args.cert) if args.cert else None,
                         passphrase=passphrase.encode() if passphrase else None, token=token)
    try:
        signed = sign_xml(data, signer)
    except ValueError as exc:
        raise KitError(f"{args.file}: {exc} (build it with `hub {args.group} build`)") from None
    _write(signed, args.output, f"signed by {signer.cert.subject.rfc4514_string()}")
    return EXIT_OK


# -- check -----------------------------------------------------------------------------------


@_one_line
def cmd_check(args: argparse.Namespace) -> int:
    from hub.config import load_settings
    from hub.ops.envelope_kit import check_packet

    settings = load_settings(args.config)
    at = None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise KitError(f"--at {args.at!r} is not an ISO 8601 time") from None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning

    with warnings.catch_warnings():
        # pyHanko imports cryptography's DSA module, which warns on import: noise for a user.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        result = check_packet(_read(args.file), settings, at=at, kind=args.kind)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(result.lines()))
    return {"ACCEPTED": EXIT_OK, "INDETERMINATE": EXIT_INDETERMINATE}.get(result.verdict,
                                                                          EXIT_REFUSED)


# -- registration ----------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add ``envelope`` and ``status`` to the ``hub`` command's subparsers."""
    for group, kind, noun in (("envelope", "document", "document envelopes"),
                              ("status", "status", "status packets")):
        p = sub.add_parser(group, help=f"build, sign and check {noun} (integrator kit)")
        gsub = p.add_subparsers(dest=f"{group}_command", required=True)

        b = gsub.add_parser("build", help=f"unsigned {kind} from a TOML/JSON description")
        b.add_argument("description", nargs="?", default=None,
                       help="description file (.toml, else JSON)")
        b.add_argument("--output", "-o", default="-", help="where to write (default stdout)")
        if group == "status":
            b.add_argument("--answer", default=None, metavar="ENVELOPE",
                           help="build the status answering this document")
            b.add_argument("--code", default=None, help="QCVN 102 status code (with --answer)")
            b.add_argument("--from", dest="reporter", default=None, metavar="ORGAN_ID",
                           help="the answering organization (default: the only recipient)")
            b.add_argument("--description-text", dest="text", default=None,
                           help="the status Description (with --answer)")
        else:
            b.set_defaults(answer=None)
        b.set_defaults(func=cmd_build, kind=kind, group=group)

        s = gsub.add_parser("sign", help=f"sign an unsigned {kind} (key file or PKCS#11 token)")
        s.add_argument("file", help="the unsigned packet (EDXML bytes, signed as they are)")
        s.add_argument("--output", "-o", default="-", help="where to write (default stdout)")
        s.add_argument("--key", default=None, help="private key PEM (PKCS#8 or traditional)")
        s.add_argument("--cert", default=None,
                       help="certificate PEM, then its issuing CA(s); with a token, optional")
        s.add_argument("--passphrase-env", default=None, metavar="VAR",
                       help="environment variable holding the key file's passphrase")
        s.add_argument("--pkcs11-module", default=None, metavar="SO",
                       help="PKCS#11 module of the token (e.g. /usr/lib/softhsm/libsofthsm2.so)")
        s.add_argument("--token-label", default=None, help="PKCS#11 token label")
        s.add_argument("--key-label", default=None, help="label of the key on the token")
        s.add_argument("--pin-env", default=None, metavar="VAR",
                       help="environment variable holding the token PIN")
        s.add_argument("--pin-file", default=None, metavar="FILE",
                       help="file holding the token PIN")
        s.set_defaults(func=cmd_sign, kind=kind, group=group)

        c = gsub.add_parser("check", help=f"the hub's verdict on a signed {kind}, offline")
        c.add_argument("file", help="the signed packet to judge")
        c.add_argument("--json", action="store_true", help="print the report as JSON")
        c.add_argument("--at", default=None,
                       help="judge at this time (ISO 8601; default now)")
        c.set_defaults(func=cmd_check, kind=kind, group=group)

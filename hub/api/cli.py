"""``hub api``: serve the HTTP API, manage agency systems' credentials, print the OpenAPI file."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.errors import ConfigurationError


def _settings(args: argparse.Namespace) -> Any:
    from hub.config import load_settings

    return load_settings(args.config)


def _duration(text: str) -> timedelta:
    """How long an old secret keeps working: ``7d``, ``12h``, ``30m``, ``90s``.

    Refused, as a usage error: anything else, a negative or non-finite number, and a duration
    that takes the old secret's end past the year 9999 (no date holds it).
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), text[-1]
        if unit not in units or not value >= 0:  # not >=: also refuses NaN
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 7d, 12h, 30m)"
                                         ) from None
    try:
        keep = timedelta(seconds=value * units[unit])
        _ends = datetime.now(UTC) + keep  # the overlap's end is stored as a date
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long: the old secret would be kept "
                                         "past the year 9999") from None
    return keep


def cmd_serve(args: argparse.Namespace) -> int:
    from hub import logs
    from hub.api.server import serve

    settings = _settings(args)
    logs.configure(settings.log.format, settings.log.level)
    serve(settings)
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from hub.api.app import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            from hub.ops.cli import EXIT_USAGE, UserError

            raise UserError(f"cannot write {args.output}: {exc.strerror or exc}", EXIT_USAGE
                            ) from None
    else:
        print(text, end="")
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    from hub.api import credentials as store
    from hub.app import load_directory
    from hub.ops.cli import EXIT_USAGE, UserError

    settings = _settings(args)
    path = settings.path(settings.api.credentials_file)
    now = datetime.now(UTC)
    action = args.credentials_command
    try:
        if action == "ls":
            systems = store.read_systems(path)
            rows = [{"system": s.system_id, "organization": s.organization, "created": s.created,
                     "previous_until": s.previous_until or None} for s in systems.values()]
            if args.json:
                print(json.dumps(rows, ensure_ascii=False))
            else:
                for row in rows:
                    extra = f" (old secret valid until {row['previous_until']})" \
                        if row["previous_until"] else ""
                    print(f"{row['system']}  {row['organization']}  since {row['created']}{extra}")
                if not rows:
                    print(f"no systems in {path}")
            return 0
        if action == "add":
            entry = load_directory(settings).find(args.organization, now)
            if entry is None or entry.reach != "direct":
                raise UserError(f"organization {args.organization!r} is not a body this hub "
                                "serves (see the directory)", EXIT_USAGE)
            secret = store.add_system(path, args.system, entry.codes[0], PasswordHasher(), now)
        elif action == "rotate":
            secret = store.rotate_system(path, args.system, PasswordHasher(), now,
                                         args.keep_old_for)
        else:
            store.remove_system(path, args.system)
            print(f"removed system {args.system} from {path}")
            return 0
    except ValueError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None
    except ConfigurationError:
        raise
    # The secret is shown once, on stdout only; the file keeps its argon2 hash.
    print(f"system {args.system}: secret {secret}")
    print("(store it in the agency system now: the hub keeps only its hash)")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("api", help="the HTTP API for agency document systems (docs/API.md)")
    asub = p.add_subparsers(dest="api_command", required=True, metavar="COMMAND")

    s = asub.add_parser("serve", help="serve the API ([api] settings) until SIGTERM")
    s.set_defaults(func=cmd_serve)

    o = asub.add_parser("openapi", help="print the OpenAPI 3.1 document the API serves")
    o.add_argument("--output", "-o", default="-", help="file to write (- : stdout)")
    o.set_defaults(func=cmd_openapi)

    c = asub.add_parser("credentials", help="agency systems' ids and secrets (hashed at rest)")
    csub = c.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")
    add = csub.add_parser("add", help="register a system and print its new secret once")
    add.add_argument("system", help="the system id (1-64 of A-Z a-z 0-9 . _ -)")
    add.add_argument("--organization", "--org", required=True,
                     help="the organization code it speaks for (a body of the directory)")
    add.set_defaults(func=cmd_credentials)
    rot = csub.add_parser("rotate", help="give a system a new secret and print it once")
    rot.add_argument("system", help="the system id")
    rot.add_argument("--keep-old-for", type=_duration, default=timedelta(0),
                     help="keep the old secret working this long (e.g. 7d) while the agency "
                          "switches; default: the old one stops at once")
    rot.set_defaults(func=cmd_credentials)
    rm = csub.add_parser("remove", help="remove a system (its secret stops working)")
    rm.add_argument("system", help="the system id")
    rm.set_defaults(func=cmd_credentials)
    ls = csub.add_parser("ls", help="list the systems (never their secrets)")
    ls.add_argument("--json", action="store_true", help="print the list as JSON")
    ls.set_defaults(func=cmd_credentials)

"""``hub console serve`` and ``hub console user add|ls|passwd|role|disable|enable``.

Passwords are never arguments (they would sit in the shell history and in ``ps``): they are
typed twice on a terminal, or read from the first line of ``--password-file`` (``-`` is
standard input) for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from hub.config import Settings, load_settings


class ConsoleUsageError(Exception):
    """Printed as one line, exit code 2 (bad command line or input)."""


def open_users(settings: Settings) -> Any:
    from datetime import timedelta

    from hub.console.users import UserStore

    c = settings.console
    return UserStore(settings.path(c.users), idle=timedelta(seconds=c.session_idle_s),
                     lifetime=timedelta(seconds=c.session_lifetime_s))


def _password(args: argparse.Namespace) -> str:
    source = getattr(args, "password_file", None)
    if source is not None:
        try:
            text = sys.stdin.readline() if str(source) == "-" else \
                Path(source).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise ConsoleUsageError(f"{source}: cannot read a password "
                                    f"({getattr(exc, 'strerror', None) or type(exc).__name__})"
                                    ) from None
        return text.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConsoleUsageError("no terminal to type the password on: give --password-file FILE "
                                "(or - for standard input)")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ConsoleUsageError("the two passwords differ")
    return first


def _run(args: argparse.Namespace, action: Any) -> int:
    from hub.console.users import UserError

    try:
        settings = load_settings(args.config)
        store = open_users(settings)
        try:
            return int(action(settings, store))
        finally:
            store.close()
    except (UserError, ConsoleUsageError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2


def _audit(settings: Settings, actor: str, action: str, **detail: Any) -> None:
    """Account changes made from the shell are in the ledger too (actor: the login)."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from hub.app import load_keystore, open_ledger
    from hub.ledger import EventIn, EventKind

    ledger = open_ledger(settings, load_keystore(settings).signer(settings.hub.operator_organ_id))
    try:
        ledger.write([], [EventIn(EventKind.OPERATOR_ACTION, f"console:{uuid4().hex}",
                                  datetime.now(UTC), actor=actor[:64],
                                  detail={"action": action, "via": "cli",
                                          **{k: str(v) for k, v in detail.items()}})])
    finally:
        ledger.close()


def cmd_user_add(args: argparse.Namespace) -> int:
    def action(settings: Settings, store: Any) -> int:
        from hub.console.users import _role, check_name

        name, role = check_name(args.name), _role(args.role)
        if store.get(name) is not None:  # before anyone types a password for nothing
            raise ConsoleUsageError(f"there is already an account {name!r}")
        password = _password(args)
        # Every check of ``store.add`` before the audit row: a refused account is not recorded.
        name, role = store.check_new(name, role, password)
        _audit(settings, args.actor, "user_added", user=name, role=role.value)
        store.add(name, role, password, full_name=args.full_name)
        print(f"account {name} added ({role.value})")
        return 0

    return _run(args, action)


def cmd_user_ls(args: argparse.Namespace) -> int:
    def action(_settings: Settings, store: Any) -> int:
        for u in store.users():
            print(f"{u.name:24} {u.role.value:9} {'active' if u.active else 'disabled':9} "
                  f"{u.full_name}")
        return 0

    return _run(args, action)


# The changes below check everything that could refuse them (the account exists, the password
# rule) before the audit row is written, and record the account's name as stored.

def cmd_user_passwd(args: argparse.Namespace) -> int:
    def action(settings: Settings, store: Any) -> int:
        from hub.console.users import check_password

        user = store.existing(args.name)
        password = check_password(_password(args))
        _audit(settings, args.actor, "password_changed", user=user.name)
        store.set_password(user.name, password)
        print(f"password of {user.name} changed; its sessions ended")
        return 0

    return _run(args, action)


def cmd_user_role(args: argparse.Namespace) -> int:
    def action(settings: Settings, store: Any) -> int:
        from hub.console.users import _role

        user, role = store.existing(args.name), _role(args.role)
        _audit(settings, args.actor, "role_changed", user=user.name, role=role.value)
        store.set_role(user.name, role)
        print(f"{user.name} is now {role.value}; its sessions ended")
        return 0

    return _run(args, action)


def cmd_user_active(args: argparse.Namespace) -> int:
    def action(settings: Settings, store: Any) -> int:
        user = store.existing(args.name)
        _audit(settings, args.actor, "user_enabled" if args.enable else "user_disabled",
               user=user.name)
        store.set_active(user.name, args.enable)
        print(f"{user.name} {'enabled' if args.enable else 'disabled; its sessions ended'}")
        return 0

    return _run(args, action)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub import logs
    from hub.console.services import ConsoleServices
    from hub.console.web import create_app

    settings = load_settings(args.config)
    logs.configure(settings.log.format, settings.log.level)
    users = open_users(settings)
    services = ConsoleServices(settings)
    try:
        if not users.users():
            print("hub: the console has no account yet: add one with "
                  "`hub console user add NAME --role admin`", file=sys.stderr)
        app = create_app(services, users)
        services.start_verification()  # the ledger page shows the chain's state from the start
        _warm_report(services)
        host = args.host or settings.console.host
        port = args.port or settings.console.port
        if not settings.console.secure_cookies and host not in ("127.0.0.1", "localhost", "::1"):
            print("hub: warning: [console] secure_cookies = false on a non-local address: "
                  "session cookies would travel in clear", file=sys.stderr)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    proxy_headers=False, server_header=False)
    finally:
        services.close()
        users.close()
    return 0


def _warm_report(services: Any) -> None:
    """Read the adoption report's default view in the background at start-up (tens of
    milliseconds from the ledger's daily rollup): the first reader and its chart then find the
    figures cached."""
    import threading

    from hub.console.web import _date_param, default_report_since

    since = _date_param(default_report_since(services.clock()))
    threading.Thread(target=services.adoption, args=(since, None, "month"), daemon=True,
                     name="adoption-report-warm").start()


def port(text: str) -> int:
    """A TCP port to listen on, 1 to 65535 (an ``argparse`` type: a usage error otherwise)."""
    value = int(text) if text.strip().isascii() and text.strip().isdigit() else -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a TCP port (1 to 65535)")
    return value


def register(sub: Any) -> None:
    import getpass as _getpass

    p = sub.add_parser("console", help="the web console for operators and auditors")
    csub = p.add_subparsers(dest="console_command", required=True, metavar="COMMAND")
    q = csub.add_parser("serve", help="serve the console over HTTP (put TLS in front of it)")
    q.add_argument("--host", default=None, help="listen address (default: [console] host)")
    q.add_argument("--port", type=port, default=None, help="port (default: [console] port)")
    q.set_defaults(func=cmd_serve)

    u = csub.add_parser("user", help="console accounts: add, ls, passwd, role, disable, enable")
    usub = u.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    roles = ["operator", "auditor", "admin"]

    def common(q: argparse.ArgumentParser, password: bool = False) -> None:
        q.add_argument("name", help="login name (a-z, 0-9, '.', '-', '_', '@')")
        q.add_argument("--actor", default=_getpass.getuser(),
                       help="who makes the change, recorded in the ledger (default: your login)")
        if password:
            q.add_argument("--password-file", default=None,
                           help="read the password from the first line of this file (- : "
                                "standard input) instead of asking on the terminal")

    q = usub.add_parser("add", help="add an account")
    common(q, password=True)
    q.add_argument("--role", required=True, choices=roles,
                   help="operator (dead letters), auditor (read-only) or admin (accounts)")
    q.add_argument("--full-name", default="", help="the person's name, shown in the console")
    q.set_defaults(func=cmd_user_add)
    q = usub.add_parser("ls", help="list the accounts")
    q.set_defaults(func=cmd_user_ls)
    q = usub.add_parser("passwd", help="set an account's password (its sessions end)")
    common(q, password=True)
    q.set_defaults(func=cmd_user_passwd)
    q = usub.add_parser("role", help="change an account's role (its sessions end)")
    common(q)
    q.add_argument("role", choices=roles, help="the new role")
    q.set_defaults(func=cmd_user_role)
    for verb, enable in (("disable", False), ("enable", True)):
        q = usub.add_parser(verb, help=f"{verb} an account"
                            + (" (its sessions end)" if not enable else ""))
        common(q)
        q.set_defaults(func=cmd_user_active, enable=enable)

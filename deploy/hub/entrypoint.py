"""Entry point of the hub's container image: secrets from files, then ``hub`` without root.

The compose stack (deploy/compose.yaml) mounts the secrets as root-only files under
``/run/edxml-hub-secrets`` and the keystore under ``/etc/edxml-hub/keystore``; no secret is in
the compose file or in ``docker inspect``. Started as root, this script

* builds ``HUB_BROKER__URL`` / ``HUB_BROKER__FAILOVER_URLS`` from ``EDXML_BROKER_NODES``
  (``rabbit1,rabbit2,rabbit3``: the first is the node to use, the others the failover order)
  and the hub account's password in ``broker-passwords.toml``;
* builds ``HUB_LEDGER__URL`` from ``ledger-password`` (PostgreSQL at ``EDXML_LEDGER_HOST``);
* sets ``HUB_KEY_PASSPHRASE`` from ``key-passphrase`` when that file is not empty;
* copies the keystore to a tmpfs owned by the ``edxml-hub`` user (the host's key files stay
  root-only, mode 0600) and points ``HUB_HUB__KEYSTORE`` there;
* copies ``axis-secret`` (mounted into the axis service alone) to a file of that tmpfs only
  ``edxml-hub`` reads (0400) and points ``HUB_AXIS__SECRET_FILE`` there: the connector reads
  its secret from a file, never from a variable;
* drops to ``edxml-hub`` (uid 990) unless ``EDXML_RUN_AS=root`` (the smoke tools), and runs
  ``hub ARGS`` — or ARGS itself when the first one is a path (``/opt/.../python script.py``).

Nothing here is printed: a missing secret is reported by ``hub`` itself (its settings say what
is missing), except the one line this script prints when a file it was told to read is absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import tomllib
from pathlib import Path
from urllib.parse import quote

VENV = Path("/opt/edxml-hub/venv")
SECRETS = Path(os.environ.get("EDXML_SECRETS", "/run/edxml-hub-secrets"))
KEYSTORE = Path(os.environ.get("EDXML_KEYSTORE", "/etc/edxml-hub/keystore"))
PRIVATE = Path("/run/edxml-hub")
USER = "edxml-hub"


def _fail(message: str) -> None:
    print(f"edxml-hub entrypoint: {message}", file=sys.stderr)
    sys.exit(3)


def _secret(name: str) -> str | None:
    path = SECRETS / name
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").strip()


def _broker_env(env: dict[str, str]) -> None:
    nodes = [n for n in env.get("EDXML_BROKER_NODES", "").split(",") if n]
    if not nodes:
        return
    user = env.get("EDXML_BROKER_USER", "edxml-hub")
    table_text = _secret("broker-passwords.toml")
    if table_text is None:
        _fail(f"{SECRETS / 'broker-passwords.toml'} is missing")
    try:
        password = tomllib.loads(table_text or "").get(user)
    except tomllib.TOMLDecodeError as exc:
        _fail(f"broker-passwords.toml: {exc}")
    if not isinstance(password, str) or not password:
        _fail(f"broker-passwords.toml has no password for the hub's account {user!r}")
    auth = f"{quote(user, safe='')}:{quote(str(password), safe='')}"
    urls = [f"amqp://{auth}@{node}:5672/" for node in nodes]
    env["HUB_BROKER__URL"] = urls[0]
    env["HUB_BROKER__FAILOVER_URLS"] = ",".join(urls[1:])


def _ledger_env(env: dict[str, str]) -> None:
    host = env.get("EDXML_LEDGER_HOST")
    if not host:
        return
    password = _secret("ledger-password")
    if not password:
        _fail(f"{SECRETS / 'ledger-password'} is missing or empty")
    user = env.get("EDXML_LEDGER_USER", "edxml_hub")
    db = env.get("EDXML_LEDGER_DB", "edxml_hub")
    env["HUB_LEDGER__URL"] = (f"postgresql+psycopg2://{quote(user, safe='')}:"
                              f"{quote(str(password), safe='')}@{host}:5432/{db}")


def _private_keystore(env: dict[str, str], uid: int, gid: int) -> None:
    if not KEYSTORE.is_dir():
        return
    target = PRIVATE / "keystore"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, mode=0o700)
    for src in KEYSTORE.iterdir():
        if src.is_file():
            dst = target / src.name
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o400 if src.name.endswith(".key.pem") else 0o444)
            os.chown(dst, uid, gid)
    os.chown(PRIVATE, uid, gid)
    os.chown(target, uid, gid)
    env["HUB_HUB__KEYSTORE"] = str(target)


def _axis_secret(env: dict[str, str], uid: int, gid: int) -> None:
    source = SECRETS / "axis-secret"
    if not source.is_file() or env.get("HUB_AXIS__SECRET_FILE"):
        return
    PRIVATE.mkdir(parents=True, exist_ok=True)
    target = PRIVATE / "axis-secret"
    target.unlink(missing_ok=True)
    # Created 0400 for its owner before a byte is written: never readable by anyone else.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as fh:
        fh.write(source.read_bytes())
    os.chown(target, uid, gid)
    env["HUB_AXIS__SECRET_FILE"] = str(target)


def main(argv: list[str]) -> None:
    env = dict(os.environ)
    _broker_env(env)
    _ledger_env(env)
    passphrase = _secret("key-passphrase")
    if passphrase:
        env["HUB_KEY_PASSPHRASE"] = passphrase
    command = argv if argv and argv[0].startswith("/") else [str(VENV / "bin" / "hub"), *argv]
    if os.getuid() != 0 or env.get("EDXML_RUN_AS") == "root":
        if (SECRETS / "axis-secret").is_file():
            env.setdefault("HUB_AXIS__SECRET_FILE", str(SECRETS / "axis-secret"))
        os.execve(command[0], command, env)  # noqa: S606 - the container's one process
    account = pwd.getpwnam(USER)
    _private_keystore(env, account.pw_uid, account.pw_gid)
    _axis_secret(env, account.pw_uid, account.pw_gid)
    blobs = Path("/var/lib/edxml-hub/blobs")
    if blobs.is_dir():
        os.chown(blobs, account.pw_uid, account.pw_gid)
    env.update(HOME=account.pw_dir, USER=USER, LOGNAME=USER)
    os.initgroups(USER, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.execve(command[0], command, env)  # noqa: S606 - the container's one process


if __name__ == "__main__":
    main(sys.argv[1:])

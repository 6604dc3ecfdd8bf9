"""Agency broker accounts survive a RabbitMQ node restart (issue 22 §2).

The deployment loads ``definitions.json`` at every boot (``load_definitions``). RabbitMQ then
re-creates each user with the file's password hash: an account exported without a hash (and
given its password later with ``rabbitmqctl change_password``) loses it at the next restart —
reproduced here — while the accounts ``hub topology export --passwords`` wrote keep working.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from hub.ops.cli import EXIT_OK, main
from hub.testing import devbroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LATE = "clerk-password-set-later"


def _login(host: str, port: int, user: str, password: str) -> None:
    params = pika.ConnectionParameters(host, port, credentials=pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5)
    pika.BlockingConnection(params).close()


def _await_boot(broker: devbroker.RunningBroker) -> None:
    """Wait until the node has booted (``rabbitmqctl await_startup`` blocks until then; it
    fails at once while the Erlang node is not up yet, so it is asked again, within a bound)."""
    for _attempt in range(60):
        try:
            broker.exec("rabbitmqctl", "await_startup", "--timeout", "60")
            return
        except devbroker.BrokerUnavailable:
            continue
    raise AssertionError("the RabbitMQ node did not come back")


@pytest.fixture
def definitions_dir(tmp_path: Path) -> Path:
    """A conf.d for the broker: load_definitions plus the definitions the CLI exports."""
    conf = tmp_path / "conf.d"
    conf.mkdir()
    os.chmod(conf, 0o755)  # noqa: S103 - the broker in the container runs as its own user
    cfg = tmp_path / "hub.toml"
    cfg.write_text("[broker]\nurl = 'amqp://guest:guest@127.0.0.1:5672/'\nprefix = 'restart'\n",
                   encoding="utf-8")
    plain = tmp_path / "plain.json"
    assert main(["--config", str(cfg), "topology", "export", "-o", str(plain)]) == EXIT_OK
    users = [u["name"] for u in json.loads(plain.read_text(encoding="utf-8"))["users"]]
    passwords = tmp_path / "passwords.toml"
    passwords.write_text("".join(f'"{u}" = "{_password(u)}"\n' for u in users), encoding="utf-8")
    out = conf / "definitions.json"
    assert main(["--config", str(cfg), "topology", "export", "--passwords", str(passwords),
                 "-o", str(out)]) == EXIT_OK
    # One account the old way: no hash in the file, its password set afterwards by hand.
    data = json.loads(out.read_text(encoding="utf-8"))
    data["users"].append({"name": LATE, "password_hash": "", "tags": [],
                          "hashing_algorithm": "rabbit_password_hashing_sha256"})
    data["permissions"].append({"user": LATE, "vhost": "/", "configure": "", "write": "",
                                "read": ""})
    out.write_text(json.dumps(data), encoding="utf-8")
    (conf / "10-definitions.conf").write_text(
        "load_definitions = /etc/rabbitmq/conf.d/definitions.json\n", encoding="utf-8")
    for f in conf.iterdir():
        os.chmod(f, 0o644)  # read by the broker user; no secret in it (hashes only)
    return conf


def _password(user: str) -> str:
    return "guest" if user == "guest" else f"pw-{user}"


@pytest.fixture
def booted(definitions_dir: Path, request: pytest.FixtureRequest
           ) -> Iterator[devbroker.RunningBroker]:
    try:
        running = devbroker.start_container(
            log=lambda msg: None,
            volumes=[(str(definitions_dir), "/etc/rabbitmq/conf.d", "ro")])
    except devbroker.BrokerUnavailable as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"real broker required in CI: {exc}", pytrace=False)
        pytest.skip(f"no real broker: {exc}")
    yield running
    running.stop()


def test_every_agency_login_still_works_after_a_node_restart(
    booted: devbroker.RunningBroker, definitions_dir: Path
) -> None:
    users = [u["name"] for u in json.loads((definitions_dir / "definitions.json").read_text())["users"]
             if u["name"] != LATE]
    assert len(users) > 10  # the hub, the agencies of the sample directory, the axis gateway
    for user in users:
        _login(booted.host, booted.port, user, _password(user))
    booted.exec("rabbitmqctl", "change_password", LATE, "set-by-hand")
    _login(booted.host, booted.port, LATE, "set-by-hand")

    booted.docker("restart")
    _await_boot(booted)
    port = int(booted.handle.get_exposed_port(5672))

    for user in users:
        _login(booted.host, port, user, _password(user))
    # The reproduction: the boot-time import gave the hand-set account its empty hash back.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        _login(booted.host, port, LATE, "set-by-hand")

"""The broker says no: the hub reports the broker's reason at once, as a configuration error.

RabbitMQ refuses a publish by closing the channel (406 PRECONDITION_FAILED for a ``user_id``
that is not the login, 404 NOT_FOUND for an unknown exchange, 403 ACCESS_REFUSED without write
permission) and a login by closing the connection (403 ACCESS_REFUSED). The adapter turns each
into :class:`BrokerRefused` carrying the broker's reply code, taken from the close itself — a
publish that merely timed out would be a plain :class:`BrokerUnavailable` without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from hub.broker import BrokerRefused, Connection, Outgoing, connect
from hub.directory import Directory
from hub.edxml.build import build_envelope, sample_header
from hub.ops.cli import EXIT_CONFIG, main
from hub.testing import devbroker
from hub.topology import ENVELOPE_KEY, build_topology

pytestmark = pytest.mark.broker


@pytest.fixture
def declared(broker_url: str, names: str) -> Iterator[Connection]:
    topo = build_topology(Directory.sample(), prefix=names)
    conn = connect(broker_url, "refusals setup")
    conn.declare(topo)
    yield conn
    conn.delete(topo)
    conn.close()


def _url_as(broker_url: str, user: str, password: str) -> str:
    p = urlparse(broker_url)
    return f"amqp://{user}:{password}@{p.hostname}:{p.port}/"


def test_a_user_id_that_is_not_the_login_is_refused_by_the_channel_close(
    broker_url: str, names: str, declared: Connection
) -> None:
    conn = connect(broker_url, "user-id mismatch")
    try:
        with pytest.raises(BrokerRefused) as refused:
            conn.publish([Outgoing(f"{names}.inbound", ENVELOPE_KEY, b"<x/>",
                                   user_id="000.00.03.H27")], timeout=600)
    finally:
        conn.close()
    assert refused.value.reply_code == 406
    assert "PRECONDITION_FAILED" in refused.value.reply_text
    assert "user_id" in refused.value.reply_text


def test_hub_send_with_another_user_id_is_one_line_naming_the_cause_and_exit_code_3(
    broker_url: str, names: str, declared: Connection, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = tmp_path / "envelope.xml"
    envelope.write_bytes(build_envelope(sample_header("000.00.03.H27", ("000.00.00.H27",))))
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f"[broker]\nurl = '{broker_url}'\nprefix = '{names}'\n", encoding="utf-8")
    code = main(["--config", str(cfg), "send", str(envelope), "--user-id", "000.00.03.H27"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_CONFIG
    assert len(err) == 1
    assert "406" in err[0]
    assert "PRECONDITION_FAILED" in err[0]
    assert "user_id" in err[0]


def test_an_unknown_exchange_is_refused_with_not_found(
    broker_url: str, names: str, declared: Connection
) -> None:
    conn = connect(broker_url, "unknown exchange")
    try:
        with pytest.raises(BrokerRefused) as refused:
            conn.publish([Outgoing(f"{names}.no-such-exchange", ENVELOPE_KEY, b"<x/>")], timeout=600)
    finally:
        conn.close()
    assert refused.value.reply_code == 404
    assert "no-such-exchange" in refused.value.reply_text


def test_a_missing_write_permission_is_refused_with_access_refused(
    rabbitmq: devbroker.RunningBroker, broker_url: str, names: str, declared: Connection
) -> None:
    if rabbitmq.kind != "container":
        pytest.skip("accounts are created with rabbitmqctl inside the broker container")
    user = f"{names}-reader"
    rabbitmq.exec("rabbitmqctl", "add_user", user, "s3cret-test")
    rabbitmq.exec("rabbitmqctl", "set_permissions", "-p", "/", user, "^$", "^$", ".*")
    try:
        conn = connect(_url_as(broker_url, user, "s3cret-test"), "no write permission")
        try:
            with pytest.raises(BrokerRefused) as refused:
                conn.publish([Outgoing(f"{names}.inbound", ENVELOPE_KEY, b"<x/>")], timeout=600)
        finally:
            conn.close()
    finally:
        rabbitmq.exec("rabbitmqctl", "delete_user", user)
    assert refused.value.reply_code == 403
    assert "ACCESS_REFUSED" in refused.value.reply_text


def test_a_wrong_password_is_a_configuration_error_not_an_unavailable_broker(
    broker_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BrokerRefused):
        connect(_url_as(broker_url, "guest", "wrong"), "wrong password")
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f"[broker]\nurl = '{_url_as(broker_url, 'guest', 'wrong')}'\n", encoding="utf-8")
    code = main(["--config", str(cfg), "topology", "apply"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_CONFIG
    assert len(err) == 1
    assert "refused the login of 'guest'" in err[0]
    assert "wrong" not in err[0].replace("wrong user name", "")  # the password is not echoed

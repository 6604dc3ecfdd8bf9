"""Agency accounts on the real broker: each body reads only its own queues (issue 5 §2).

The accounts and permissions come from the directory through :func:`agency_permissions`, the
same regexes ``hub topology export`` writes into ``definitions.json``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from hub.broker import connect
from hub.directory import Directory
from hub.testing import devbroker
from hub.topology import ENVELOPE_KEY, agency_permissions, build_topology

pytestmark = pytest.mark.broker

FINANCE = "000.00.03.H27"
HOME_AFFAIRS = "000.00.02.H27"


@pytest.fixture
def accounts(rabbitmq: devbroker.RunningBroker, broker_url: str, names: str
             ) -> Iterator[dict[str, str]]:
    """Broker users for two agencies with the generated permissions; topology declared."""
    if rabbitmq.kind != "container":
        pytest.skip("accounts are created with rabbitmqctl inside the broker container")
    directory = Directory.sample()
    topo = build_topology(directory, prefix=names)
    conn = connect(broker_url, "accounts setup")
    conn.declare(topo)
    users: dict[str, str] = {}
    for org in (FINANCE, HOME_AFFAIRS):
        entry = directory.find(org)
        assert entry is not None
        user = f"{names}-{org}"
        rabbitmq.exec("rabbitmqctl", "add_user", user, "s3cret-test")
        configure, write, read = agency_permissions(entry, names)
        rabbitmq.exec("rabbitmqctl", "set_permissions", "-p", "/", user,
                      configure or "^$", write, read)
        users[org] = user
    yield users
    for user in users.values():
        rabbitmq.exec("rabbitmqctl", "delete_user", user)
    conn.delete(topo)
    conn.close()


def _login(rabbitmq: devbroker.RunningBroker, user: str) -> pika.BlockingConnection:
    params = pika.ConnectionParameters(rabbitmq.host, rabbitmq.port,
                                       credentials=pika.PlainCredentials(user, "s3cret-test"))
    return pika.BlockingConnection(params)


def test_an_agency_reads_its_own_inbox_but_not_another_agencys(
    rabbitmq: devbroker.RunningBroker, accounts: dict[str, str], names: str
) -> None:
    conn = _login(rabbitmq, accounts[FINANCE])
    try:
        ch = conn.channel()
        assert ch.basic_get(f"{names}.org.{FINANCE}.inbox")[0] is None  # allowed, empty
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            conn.channel().basic_get(f"{names}.org.{HOME_AFFAIRS}.inbox")
        assert refused.value.reply_code == 403
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            conn.channel().basic_get(f"{names}.intake")
        assert refused.value.reply_code == 403
    finally:
        conn.close()


def test_an_agency_publishes_only_to_the_inbound_exchange_and_only_as_itself(
    rabbitmq: devbroker.RunningBroker, accounts: dict[str, str], names: str
) -> None:
    conn = _login(rabbitmq, accounts[FINANCE])
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(f"{names}.inbound", ENVELOPE_KEY, b"<x/>",
                         pika.BasicProperties(user_id=accounts[FINANCE]))
        # Straight into another agency's queue through the deliver exchange: refused
        ch1 = conn.channel()
        ch1.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch1.basic_publish(f"{names}.deliver", f"inbox.{HOME_AFFAIRS}", b"<x/>")
        assert refused.value.reply_code == 403
        # Claiming to be another agency (AMQP user_id): RabbitMQ itself refuses it
        ch2 = conn.channel()
        ch2.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch2.basic_publish(f"{names}.inbound", ENVELOPE_KEY, b"<x/>",
                              pika.BasicProperties(user_id=accounts[HOME_AFFAIRS]))
        assert refused.value.reply_code == 406
    finally:
        conn.close()

"""Topology as code: names, queue arguments, backoff, definitions.json and agency permissions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from hub.consumers.settlement import RetryPolicy
from hub.directory import Directory, OrgEntry
from hub.errors import ConfigurationError
from hub.topology import (
    AXIS_INBOX_KEY,
    AXIS_STATUS_KEY,
    MAX_NAME_BYTES,
    BindingSpec,
    Names,
    Topology,
    agency_permissions,
    build_topology,
    definitions,
    gateway_permissions,
    inbox_key,
    permission_matches,
    rabbit_password_hash,
    status_key,
)

NOW = datetime(2025, 9, 1, tzinfo=UTC)
DIRECTORY = Directory.sample()


def _entry(code: str) -> OrgEntry:
    entry = DIRECTORY.find(code, NOW)
    assert entry is not None, code
    return entry


OFFICE = _entry("000.00.01.H27")
HOME_AFFAIRS = _entry("000.00.02.H27")

@pytest.fixture
def topology() -> Topology:
    return build_topology(DIRECTORY)


def test_names_are_derived_from_the_prefix() -> None:
    names = Names("edxml")
    assert names.inbound == "edxml.inbound"
    assert names.intake == "edxml.intake"
    assert names.deliver == "edxml.deliver"
    assert names.gateway == "edxml.gateway.axis"
    assert names.dlx == "edxml.dlx"
    assert names.dlq == "edxml.dlq"
    assert names.inbox("000.00.01.H27") == "edxml.org.000.00.01.H27.inbox"
    assert names.status("H27.01") == "edxml.org.H27.01.status"
    assert names.retry(4000) == "edxml.retry.4000"


@pytest.mark.parametrize("prefix", ["", "amq.hub", "a b", "x" * 65, "hub/1"])
def test_an_unusable_prefix_is_a_configuration_error(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        Names(prefix)


@pytest.mark.parametrize("code", ["", "h27.01", "H27.01#", "H27.*", "H27.01\n", "A" * 36])
def test_a_code_outside_the_identifier_alphabet_cannot_name_a_queue(code: str) -> None:
    with pytest.raises(ConfigurationError):
        Names().inbox(code)


def test_the_longest_identifier_with_the_longest_prefix_still_fits_a_name() -> None:
    name = Names("p" * 64).status("H27." + "9" * 31)
    assert len(name.encode()) <= MAX_NAME_BYTES


def test_each_organization_reached_directly_gets_an_inbox_and_a_status_queue(
    topology: Topology,
) -> None:
    queue_names = {q.name for q in topology.queues}
    for code in ("000.00.01.H27", "000.00.02.H27", "H27.101"):
        assert f"edxml.org.{code}.inbox" in queue_names
        assert f"edxml.org.{code}.status" in queue_names
        assert BindingSpec("edxml.deliver", f"edxml.org.{code}.inbox", inbox_key(code)) in (
            topology.bindings
        )
        assert BindingSpec("edxml.deliver", f"edxml.org.{code}.status", status_key(code)) in (
            topology.bindings
        )
    # A body reached through the national axis has no queue here; the secondary code never
    # names a queue either.
    assert not any("G09" in name or "H41" in name or "H27.01." in name for name in queue_names)


def test_an_abolished_body_keeps_its_queues_unless_a_time_is_given() -> None:
    # The district level ended on 2025-06-30 (inclusive last day).
    assert "edxml.org.000.00.31.H27.inbox" in {q.name for q in build_topology(DIRECTORY).queues}
    last_day = build_topology(DIRECTORY, at=date(2025, 6, 30))
    assert "edxml.org.000.00.31.H27.inbox" in {q.name for q in last_day.queues}
    current = build_topology(DIRECTORY, at=NOW)
    assert "edxml.org.000.00.31.H27.inbox" not in {q.name for q in current.queues}
    assert "edxml.org.H27.101.inbox" in {q.name for q in current.queues}


def test_envelopes_and_statuses_both_reach_the_intake(topology: Topology) -> None:
    assert BindingSpec("edxml.inbound", "edxml.intake", "envelope") in topology.bindings
    assert BindingSpec("edxml.inbound", "edxml.intake", "status") in topology.bindings


def test_the_gateway_receives_documents_and_statuses_for_the_national_axis(
    topology: Topology,
) -> None:
    assert BindingSpec("edxml.deliver", "edxml.gateway.axis", AXIS_INBOX_KEY) in topology.bindings
    assert BindingSpec("edxml.deliver", "edxml.gateway.axis", AXIS_STATUS_KEY) in topology.bindings


def test_the_intake_is_a_quorum_queue_that_dead_letters_at_least_once(topology: Topology) -> None:
    arguments = dict(topology.queue("edxml.intake").arguments)
    assert arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "edxml.dlx",
        "x-dead-letter-routing-key": "edxml.intake",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": 5,
    }


def test_classic_queues_get_no_quorum_only_arguments() -> None:
    topology = build_topology(DIRECTORY, quorum=False)
    for spec in topology.queues:
        assert spec.arguments["x-queue-type"] == "classic"
        assert "x-delivery-limit" not in spec.arguments
        assert "x-dead-letter-strategy" not in spec.arguments


def test_organization_queues_dead_letter_to_the_dlx(topology: Topology) -> None:
    arguments = topology.queue("edxml.org.000.00.01.H27.inbox").arguments
    assert arguments["x-dead-letter-exchange"] == "edxml.dlx"
    assert arguments["x-dead-letter-strategy"] == "at-least-once"


def test_every_dead_letter_lands_in_the_dead_letter_queue(topology: Topology) -> None:
    dlx = next(e for e in topology.exchanges if e.name == "edxml.dlx")
    assert dlx.type == "fanout"
    assert BindingSpec("edxml.dlx", "edxml.dlq", "") in topology.bindings
    assert "x-dead-letter-exchange" not in topology.queue("edxml.dlq").arguments


def test_an_expired_retry_goes_back_to_the_intake(topology: Topology) -> None:
    spec = topology.queue("edxml.retry.8000")
    assert spec.arguments["x-message-ttl"] == 8000
    assert spec.arguments["x-dead-letter-exchange"] == ""
    assert spec.arguments["x-dead-letter-routing-key"] == "edxml.intake"
    assert spec.arguments["x-dead-letter-strategy"] == "at-least-once"


def test_every_delay_the_retry_policy_can_choose_has_a_queue() -> None:
    policy = RetryPolicy(limit=10, base_ms=1000, max_ms=60_000)
    topology = build_topology(DIRECTORY, retry_delays_ms=policy.steps())
    delays = [policy.delay_for(attempt) for attempt in range(1, 11)]
    assert delays == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]
    names = {q.name for q in topology.queues}
    assert {topology.names.retry(policy.delay_for(a)) for a in range(1, 20)} <= names
    assert topology.names.retry(policy.delay_for(1)) == "edxml.retry.1000"


@pytest.mark.parametrize("delays", [(), (0, 10), (2000, 1000), (1000, 1000)])
def test_unusable_retry_delays_are_a_configuration_error(delays: tuple[int, ...]) -> None:
    with pytest.raises(ConfigurationError):
        build_topology(DIRECTORY, retry_delays_ms=delays)


def test_specs_are_frozen(topology: Topology) -> None:
    spec = topology.queue("edxml.intake")
    with pytest.raises(TypeError):
        spec.arguments["x-delivery-limit"] = 1000  # type: ignore[index]


def test_the_prefix_lets_two_topologies_share_a_vhost() -> None:
    a = {q.name for q in build_topology(DIRECTORY, prefix="test-a").queues}
    b = {q.name for q in build_topology(DIRECTORY, prefix="test-b").queues}
    assert not a & b


# -- permissions ----------------------------------------------------------------------------


def test_an_agency_configures_nothing() -> None:
    configure, _, _ = agency_permissions(OFFICE)
    assert configure == ""
    for resource in ("edxml.org.000.00.01.H27.inbox", "edxml.inbound", "anything"):
        assert not permission_matches(configure, resource)


def test_an_agency_writes_only_to_the_inbound_exchange() -> None:
    _, write, _ = agency_permissions(OFFICE)
    assert permission_matches(write, "edxml.inbound")
    for resource in ("edxml.deliver", "amq.default", "edxml.dlx", "edxml.inbound.x",
                     "edxml-inbound", "x.edxml.inbound"):
        assert not permission_matches(write, resource), resource


def test_an_agency_reads_only_its_own_queues() -> None:
    _, _, read = agency_permissions(OFFICE)
    assert permission_matches(read, "edxml.org.000.00.01.H27.inbox")
    assert permission_matches(read, "edxml.org.000.00.01.H27.status")
    for resource in (
        "edxml.org.000.00.02.H27.inbox",  # agency B's queue
        "edxml.org.000.00.01.H27.inbox.x",
        "edxml.org.000X00.01.H27.inbox",  # an unescaped dot would match this
        "edxml.intake",
        "edxml.dlq",
        "edxml.gateway.axis",
    ):
        assert not permission_matches(read, resource), resource
    _, _, read_b = agency_permissions(HOME_AFFAIRS)
    assert not permission_matches(read_b, "edxml.org.000.00.01.H27.inbox")


def test_definitions_give_each_agency_its_own_least_privilege_account(
    topology: Topology,
) -> None:
    content = definitions(topology, DIRECTORY)
    json.dumps(content)  # serializable as definitions.json
    users = {u["name"]: u for u in content["users"]}
    assert {"edxml-hub", "000.00.01.H27", "000.00.02.H27", "H27.101", "axis-gateway"} <= set(users)
    permissions = {p["user"]: p for p in content["permissions"]}
    assert permissions["edxml-hub"]["configure"] == ".*"
    office, home = permissions["000.00.01.H27"], permissions["000.00.02.H27"]
    assert office["configure"] == ""
    assert permission_matches(office["read"], "edxml.org.000.00.01.H27.inbox")
    assert not permission_matches(home["read"], "edxml.org.000.00.01.H27.inbox")
    assert {q["name"] for q in content["queues"]} == {q.name for q in topology.queues}
    assert {e["name"] for e in content["exchanges"]} == {e.name for e in topology.exchanges}
    assert len(content["bindings"]) == len(topology.bindings)
    assert content["vhosts"] == [{"name": "/"}]


def test_the_gateway_account_publishes_inbound_and_reads_only_the_gateway_queue(
    topology: Topology,
) -> None:
    content = definitions(topology, DIRECTORY)
    gateway = [p for p in content["permissions"] if p["user"] == "axis-gateway"]
    assert len(gateway) == 1  # shared by every body behind the axis, created once
    assert (gateway[0]["configure"], gateway[0]["write"], gateway[0]["read"]) == (
        gateway_permissions())
    assert permission_matches(gateway[0]["write"], "edxml.inbound")
    assert permission_matches(gateway[0]["read"], "edxml.gateway.axis")
    assert not permission_matches(gateway[0]["read"], "edxml.org.000.00.01.H27.inbox")
    assert not permission_matches(gateway[0]["write"], "edxml.deliver")


def test_definitions_never_invent_passwords(topology: Topology) -> None:
    given = rabbit_password_hash("given by the operator", salt=b"\x01\x02\x03\x04")
    hashes = {"000.00.01.H27": given}
    content = definitions(topology, DIRECTORY, password_hashes=hashes)
    users = {u["name"]: u for u in content["users"]}
    assert users["000.00.01.H27"]["password_hash"] == hashes["000.00.01.H27"]
    # No hash given: password log-in stays impossible until the operator sets one.
    assert users["000.00.02.H27"]["password_hash"] == ""
    assert users["edxml-hub"]["password_hash"] == ""


SHARED_ACCOUNT = """
[[org]]
codes = ["000.00.01.H27"]
name = "Văn phòng"
broker_user = "shared"

[[org]]
codes = ["000.00.02.H27"]
name = "Sở Nội vụ"
broker_user = "shared"
"""


def test_two_agencies_may_not_share_a_broker_account() -> None:
    directory = Directory.from_toml(SHARED_ACCOUNT)
    with pytest.raises(ConfigurationError, match="shared"):
        definitions(build_topology(directory), directory)


def test_the_password_hash_matches_rabbitmqs_published_example() -> None:
    # rabbitmq.com "Credentials and Passwords": password "test12", salt 0x908DC60A.
    salt = bytes.fromhex("908dc60a")
    assert rabbit_password_hash("test12", salt=salt) == (
        "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    )
    with pytest.raises(ValueError, match="4 bytes"):
        rabbit_password_hash("x", salt=b"")

"""Ports for test servers are chosen where no outgoing connection can be given them."""

from __future__ import annotations

import socket

import pytest

from hub.testing import ports
from hub.testing.ports import ephemeral_range, free_port


def test_a_free_port_lies_outside_the_kernels_ephemeral_range_and_can_be_bound() -> None:
    low, high = ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
            server.listen(1)


def test_a_port_someone_listens_on_is_never_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen(1)
        busy = taken.getsockname()[1]
        # Two candidates, one of them taken: the probe must skip it every time
        monkeypatch.setattr(ports, "_candidates", lambda: range(busy, busy + 2))
        offered = {free_port() for _ in range(50)}
    assert busy not in offered


def test_the_ports_of_known_services_are_never_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # MongoDB's port, free on this machine (a service that is down now may come back on it):
    # with it and its free neighbour as the only candidates, only the neighbour is offered
    for port in (27017, 27018):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # both free, or this test proves nothing here
    monkeypatch.setattr(ports, "_candidates", lambda: range(27017, 27019))
    assert {free_port() for _ in range(50)} == {27018}


def test_an_ipv6_host_gets_a_port_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("::1 is not configured here")
    assert 0 < port < 65536


def test_without_room_outside_the_range_the_kernel_chooses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1024, 65535))
    port = free_port()
    assert 1024 <= port <= 65535

"""Free TCP ports for the servers tests and benchmarks start, chosen outside the kernel's
ephemeral range.

A port found by binding port 0 comes from the ephemeral range, the same range the kernel draws
the local port of every outgoing connection from. Between the moment such a port is chosen and
the moment a server binds it (a child process starting, an API restarted on the same port), any
new connection of the machine — a broker client, an HTTP request, Docker's proxy — may be
given that very port, and the server then fails with "address already in use" (seen here:
``tests/integration/api/test_api_crash.py``, an API restarted on its port after the test had
opened a broker connection). A port below the ephemeral range is never handed out that way;
only another server told to bind it could take it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)
"""Linux's default, where the file cannot be read."""
_LOWEST = 10_000
"""Below this sit the well-known and commonly configured service ports."""
_TRIES = 200
_RESERVED = frozenset({
    11211,                                  # memcached
    15671, 15672, 15692, 25672, 27017,      # RabbitMQ management, metrics, distribution; MongoDB
    16721, 16722, 16723, 18443, 18470, 19090,  # deploy/compose.yaml's published ports
})
"""Ports of services that may be down at the moment a port is chosen and come back later."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (inclusive)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def _candidates() -> range:
    low, high = ephemeral_range()
    if low - _LOWEST >= 1000:
        return range(_LOWEST, low)
    if 65535 - high >= 1000:
        return range(high + 1, 65536)
    return range(0)  # no room outside the range: let the kernel choose


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now at ``host``, outside the ephemeral range when it
    leaves room (else one the kernel picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = _candidates()
    chooser = random.SystemRandom()
    for _ in range(_TRIES if len(candidates) else 0):
        port = candidates[chooser.randrange(len(candidates))]
        if port in _RESERVED:
            continue
        with socket.socket(family) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])

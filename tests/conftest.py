"""Shared fixtures: a real RabbitMQ from testcontainers, fresh names per test.

Real-broker tests carry ``@pytest.mark.broker``. With ``CI=true`` a broker that cannot start
**fails** the run (dramatiq's ``check_rabbitmq`` idea); elsewhere those tests skip with a
one-line reason. The terminal summary says how many tests used the container — counted from
each test's report, so it holds when pytest-xdist runs the tests in worker processes (each
worker starts a broker of its own).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from hub import logs
from hub.testing import devbroker

logs.configure("console", "info")  # log events to stderr, never into captured stdout

# The suite runs beside another worker, a broker and hub processes on few cores: a property is
# judged by its examples, never by how long one took (hypothesis' 200 ms deadline and its
# "too slow" health check would fail a test on a busy machine, not on a defect).
settings.register_profile("hub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hub")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_USED = "real_broker"
"""The ``user_properties`` key a test that used a real broker reports (workers' reports reach
the controlling process; module globals would not)."""
_used_broker: set[str] = set()
_broker_desc: set[str] = set()


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"real broker required in CI: {reason}", pytrace=False)
    pytest.skip(f"no real broker: {reason}")


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[devbroker.RunningBroker]:
    """One RabbitMQ container for the session (image built locally, reused when present)."""
    try:
        running = devbroker.start_broker(log=lambda msg: None)
    except devbroker.BrokerUnavailable as exc:
        _unavailable(str(exc))
        raise  # unreachable: skip/fail raise
    yield running
    running.stop()


@pytest.fixture
def broker_url(rabbitmq: devbroker.RunningBroker, request: pytest.FixtureRequest) -> str:
    """The AMQP URL of the session broker; records that this test used it."""
    _record(request, rabbitmq)
    return rabbitmq.url


@pytest.fixture
def second_broker(request: pytest.FixtureRequest) -> Iterator[devbroker.RunningBroker]:
    """A broker of this test's own, which the test may stop, kill, pause or restart."""
    try:
        running = devbroker.start_container(log=lambda msg: None)
    except devbroker.BrokerUnavailable as exc:
        _unavailable(str(exc))
        raise
    _record(request, running)
    yield running
    running.stop()


@pytest.fixture
def names(request: pytest.FixtureRequest) -> str:
    """A fresh name prefix for this test's exchanges and queues (FastStream's idea)."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:24].strip("-")
    return f"t-{stem}-{digest}-{os.getpid()}"


@pytest.fixture
def connection_name(request: pytest.FixtureRequest) -> str:
    """Connections are named after their test (aio-pika's idea) to read broker logs easily."""
    return str(request.node.nodeid)[:200]


def _record(request: pytest.FixtureRequest, running: devbroker.RunningBroker) -> None:
    image = devbroker.IMAGE if running.kind == "container" else ""
    request.node.user_properties.append((_USED, f"{running.kind} {image}".strip()))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the tests that used a broker, from their reports (in the process that reports)."""
    for key, value in report.user_properties:
        if key == _USED:
            _used_broker.add(report.nodeid)
            _broker_desc.add(str(value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    where = ", ".join(sorted(_broker_desc)) if _broker_desc else "not started"
    terminalreporter.write_line(
        f"real-broker tests: {len(_used_broker)} ran against RabbitMQ ({where})"
    )

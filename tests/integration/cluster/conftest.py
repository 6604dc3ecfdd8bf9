"""Fixtures of the cluster suite: one three-node RabbitMQ cluster for the module, a PKI, the
envelopes, and a fresh PostgreSQL ledger schema per test.

With ``CI=true`` a cluster or a PostgreSQL server that cannot be had **fails** the run
(dramatiq's ``check_rabbitmq`` idea); on a laptop these tests skip with a one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hub.testing.cluster import Cluster, start_cluster
from hub.testing.devbroker import BrokerUnavailable
from hub.testing.pki import PkiPaths
from tests.integration.cluster.workload import (
    live_pki,
    pg_schema,
    postgres_reachable,
    signed_envelopes,
)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
N = 2000
"""Envelopes in flight per fault (issue 10)."""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"cluster test needs {reason} (CI=true)", pytrace=False)
    pytest.skip(f"no {reason}")


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[Cluster]:
    """Three clustered nodes of the local image on their own docker network."""
    try:
        running = start_cluster(3, log=lambda _msg: None)
    except BrokerUnavailable as exc:
        _unavailable(f"a 3-node RabbitMQ cluster: {exc}")
        raise  # unreachable: skip/fail raise
    try:
        yield running
    finally:
        running.remove()


@pytest.fixture
def cluster(rabbit_cluster: Cluster) -> Cluster:
    """The module's cluster, whole again if an earlier test left a node down."""
    rabbit_cluster.heal(timeout=120)
    return rabbit_cluster


@pytest.fixture(scope="module")
def cluster_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return live_pki(tmp_path_factory.mktemp("cluster-pki"))


@pytest.fixture(scope="module")
def envelopes(cluster_pki: PkiPaths) -> list[bytes]:
    """The same signed envelopes serve every test: each has its own queues and ledger."""
    return signed_envelopes(cluster_pki, N, "C")


@pytest.fixture
def ledger_url() -> Iterator[str]:
    if not postgres_reachable():
        _unavailable("PostgreSQL at 127.0.0.1:5432")
    with pg_schema("cluster_test") as url:
        yield url

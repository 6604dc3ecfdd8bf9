"""The metrics server reads queue figures from whichever cluster node answers, as the consumer
does: /readyz must not say 503 after a failover while the consumer is fine."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.app import build_hub
from hub.broker import connect
from hub.ops.metrics import MetricsServer
from tests.integration.pipeline.harness import hub_settings, make_pki

pytestmark = pytest.mark.broker

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


def test_the_metrics_server_reads_the_queues_from_a_failover_node_when_the_first_is_down(
        broker_url: str, names: str, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = hub_settings(pki, tmp_path, UNREACHABLE, names, failover_urls=[broker_url])
    hub = build_hub(settings)
    metrics = MetricsServer(hub, "127.0.0.1", 0)
    try:
        declarer = connect(broker_url, "test declare")
        declarer.declare(hub.topology)
        figures = metrics.queue_figures()
        assert figures.reached
        assert hub.topology.names.intake in figures.queues
        declarer.delete(hub.topology)
        declarer.close()
    finally:
        metrics.shutdown()
        hub.close()

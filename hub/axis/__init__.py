"""The national-axis connector (issue 19): documents to and from ministries and other provinces.

Decision 28/2018/QĐ-TTg routes everything that leaves the province through the national
document exchange axis. The hub's plan puts such documents (and statuses for senders behind
the axis) in the gateway queue; ``hub axis run`` takes them out and hands them to the axis, and
brings what the axis holds for the province into the intake as any other document.

- :mod:`hub.axis.protocol` — the axis operations, words and answers (pure);
- :mod:`hub.axis.breaker` — the one backoff and circuit breaker (pure);
- :mod:`hub.axis.client` — the HTTP client (system id + secret, TLS verified);
- :mod:`hub.axis.connector` — the loop: outbound, inbound, settlement order;
- :mod:`hub.axis.directory_sync` — the axis' agency list into the directory;
- :mod:`hub.axis.metrics` — Prometheus metrics of the connector.

A layer-5 surface (docs/ARCHITECTURE.md "Adding an adapter"): it publishes to the intake
exchange under its broker login, consumes a queue of the topology and settles through
``hub.broker`` only after its effects are durable; it never plans or validates by itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from hub.app import broker_user, load_directory, load_keystore, open_ledger, topology_for
from hub.axis.breaker import Breaker
from hub.axis.client import AxisClient, client_from_settings
from hub.axis.connector import AxisConnector, ConnectorOptions
from hub.axis.metrics import AxisMetrics
from hub.config import Settings
from hub.edxml import Limits
from hub.errors import TransientError
from hub.ledger import Ledger
from hub.receipts import HubReceipts

__all__ = ["AxisConnector", "ConnectorOptions", "RunningConnector", "build_connector"]


@dataclass
class RunningConnector:
    connector: AxisConnector
    client: AxisClient
    ledger: Ledger

    def close(self) -> None:
        self.client.close()
        if self.ledger.can_sign:
            with contextlib.suppress(TransientError):
                self.ledger.checkpoint()  # sign what was recorded, on the way out
        self.ledger.close()


def build_connector(settings: Settings, *, stop: threading.Event | None = None,
                    environ: Mapping[str, str] | None = None,
                    ledger: Ledger | None = None) -> RunningConnector:
    """Build the connector the settings describe (every long-lived object once).

    Raises :class:`~hub.errors.ConfigurationError` on an incomplete ``[axis]`` section."""
    client = client_from_settings(settings, environ)
    directory = load_directory(settings)
    keystore = load_keystore(settings)
    topology = topology_for(settings, directory)
    if ledger is None:
        ledger = open_ledger(settings, keystore.signer(settings.hub.operator_organ_id))
    a, b = settings.axis, settings.broker
    options = ConnectorOptions(
        url=b.url, failover_urls=b.failover_urls, names=topology.names,
        province=settings.hub.province, prefetch=a.prefetch, batch_max=a.batch_max,
        poll_interval_s=a.poll_interval_s, receive_limit=a.receive_limit,
        axis_account=a.broker_user, login=broker_user(b.url),
        forward_hub_evidence=a.forward_hub_evidence,
        legacy_policy=settings.trust.axis_legacy_envelope_signature,
        reconnect_max_s=b.reconnect_max_s, limits=Limits.from_settings(settings.limits),
        topology=topology)
    breaker = Breaker(threshold=a.failure_threshold, open_s=a.open_s, base_s=a.retry_base_s,
                      max_s=a.retry_max_s)
    connector = AxisConnector(options, axis=client, ledger=ledger, directory=directory,
                              receipts=HubReceipts(keystore, settings.hub.operator_organ_id),
                              breaker=breaker, metrics=AxisMetrics(), stop=stop)
    return RunningConnector(connector, client, ledger)

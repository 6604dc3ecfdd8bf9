"""Metrics of ``hub axis run`` (``prometheus_client``, a registry of its own, every metric
with HELP): whether the axis answers, the circuit state, the last success, the documents
waiting for the axis, what was sent and received.

The alert rule ``EdxmlHubAxisUnreachable`` (``deploy/prometheus/axis-alerts.yml``) fires when
``hub_axis_up`` stayed 0 for 10 minutes; documents meanwhile wait in the gateway queue
(``hub_axis_queue_messages``, the broker's figure, plus ``hub_axis_held_messages`` in hand).
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hub.axis.breaker import Circuit


class AxisMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.up = Gauge("hub_axis_up", "1 when the last call to the national axis got a usable "
                        "answer, 0 after a timeout, 5xx, refused connection or refused "
                        "credentials.", registry=r)
        self.circuit = Gauge("hub_axis_circuit_state", "Circuit breaker towards the national "
                             "axis: 0 closed, 1 half-open (one probe call), 2 open (no calls; "
                             "documents stay queued).", registry=r)
        self.last_success = Gauge("hub_axis_last_success_timestamp_seconds", "Unix time of the "
                                  "last usable answer of the national axis (0: none yet).",
                                  registry=r)
        self.queue = Gauge("hub_axis_queue_messages", "Ready messages in the national-axis "
                           "gateway queue (the broker's figure).", registry=r)
        self.held = Gauge("hub_axis_held_messages", "Gateway messages the connector holds "
                          "unacknowledged, waiting for the axis.", registry=r)
        self.sent = Counter("hub_axis_sent", "Gateway messages settled, by the axis' answer "
                            "(accepted, duplicate, already_sent, refused, skipped; "
                            "attempts_exhausted: dead-lettered AXIS_UNAVAILABLE).",
                            ["answer"], registry=r)
        self.received = Counter("hub_axis_received", "Packets fetched from the axis and handed "
                                "to the intake.", registry=r)
        self.failures = Counter("hub_axis_failures", "Calls to the axis that failed, by kind "
                                "(timeout, connection, http_5xx, unauthorized …).", ["kind"],
                                registry=r)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def set_circuit(self, state: Circuit) -> None:
        self.circuit.set(int(state))

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` in a thread of its own; returns the port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server, self._thread = server, thread
        return int(server.server_address[1])

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

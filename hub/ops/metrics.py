"""Metrics (Prometheus text format 0.0.4) and health endpoints of ``hub run``.

``GET /metrics``: envelopes by outcome and reason, per-stage latency histograms, queue depths
(dead-letter queue included), retries, reconnects, certificate expiry per organization key, CRL
age per issuer, ledger lag. ``GET /livez``: the process answers. ``GET /readyz``: 200 only when
the broker, the ledger and fresh revocation data are all there (the checks ``hub doctor`` runs).

The server runs in its own thread with its own broker connection (pika connections are not
shared across threads); it only reads counters the consumer thread writes.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.logs import get_logger

log = get_logger("hub.ops.metrics")

def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsServer:
    def __init__(self, hub: Any, host: str, port: int) -> None:
        self.hub = hub
        self.consumer: Any = None
        self._lock = threading.Lock()
        self._conn: Any = None
        server = ThreadingHTTPServer((host, port), self._handler())
        server.daemon_threads = True
        self.server = server
        self.port = int(server.server_address[1])
        self.thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self.thread.start()
        log.info("metrics_listening", host=host, port=self.port)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._conn is not None:
            self._conn.close()

    # -- content -------------------------------------------------------------------------------
    def _queue_depths(self) -> dict[str, int]:
        from hub.broker import BrokerUnavailable, connect

        names = self.hub.topology.names
        wanted = [names.intake, names.dlq, names.gateway]
        depths: dict[str, int] = {}
        with self._lock:
            try:
                if self._conn is None or not self._conn.is_open:
                    self._conn = connect(self.hub.settings.broker.url, "edxml-hub metrics")
                for q in wanted:
                    depths[q] = self._conn.queue_depth(q)
            except BrokerUnavailable:
                self._conn = None
        return depths

    def render(self) -> str:
        out: list[str] = []
        stats = self.consumer.stats if self.consumer is not None else None
        out.append("# HELP hub_envelopes_total Deliveries settled by outcome.")
        out.append("# TYPE hub_envelopes_total counter")
        for outcome, n in sorted((stats.by_outcome if stats else {}).items()):
            out.append(f'hub_envelopes_total{{outcome="{_esc(outcome)}"}} {n}')
        out.append("# HELP hub_rejections_total Dead letters and retries by reason code.")
        out.append("# TYPE hub_rejections_total counter")
        for reason, n in sorted((stats.by_reason if stats else {}).items()):
            out.append(f'hub_rejections_total{{reason="{_esc(reason)}"}} {n}')
        out.append("# HELP hub_stage_seconds Time per batch stage.")
        out.append("# TYPE hub_stage_seconds histogram")
        for stage, hist in sorted((stats.stages if stats else {}).items()):
            out.extend(hist.lines("hub_stage_seconds", f'stage="{_esc(stage)}"'))
        out.append("# TYPE hub_reconnects_total counter")
        out.append(f"hub_reconnects_total {stats.reconnects if stats else 0}")
        out.append("# TYPE hub_ledger_retries_total counter")
        out.append(f"hub_ledger_retries_total {stats.ledger_retries if stats else 0}")
        out.append("# HELP hub_ledger_lag_seconds Seconds since the last committed batch.")
        out.append("# TYPE hub_ledger_lag_seconds gauge")
        last = stats.last_batch_at if stats else 0.0
        out.append(f"hub_ledger_lag_seconds {max(0.0, time.time() - last) if last else 0.0:.3f}")
        out.append("# HELP hub_queue_messages Ready messages per queue.")
        out.append("# TYPE hub_queue_messages gauge")
        for q, depth in sorted(self._queue_depths().items()):
            out.append(f'hub_queue_messages{{queue="{_esc(q)}"}} {depth}')
        now = datetime.now(UTC)
        out.append("# HELP hub_certificate_expiry_seconds Seconds until each organization key's "
                   "certificate expires.")
        out.append("# TYPE hub_certificate_expiry_seconds gauge")
        for organ_id in sorted(self.hub.keystore):
            cert = self.hub.keystore[organ_id].cert
            left = (cert.not_valid_after_utc - now).total_seconds()
            out.append(f'hub_certificate_expiry_seconds{{organ_id="{_esc(organ_id)}"}} {left:.0f}')
        out.append("# HELP hub_crl_age_seconds Seconds since each issuer's CRL was issued.")
        out.append("# TYPE hub_crl_age_seconds gauge")
        for entry in self.hub.revocation.snapshot().by_issuer.values():
            age = (now - entry.crl.last_update_utc).total_seconds()
            issuer = _esc(entry.crl.issuer.rfc4514_string())
            out.append(f'hub_crl_age_seconds{{issuer="{issuer}"}} {age:.0f}')
        return "\n".join(out) + "\n"

    def ready(self) -> tuple[bool, str]:
        from hub.ops.health import check_crls

        if self.consumer is None or (self.consumer.stats.reconnects and not self._queue_depths()):
            return False, "broker unavailable"
        try:
            self.hub.ledger.head()
        except Exception as exc:
            return False, f"ledger unavailable: {type(exc).__name__}"
        try:
            check_crls(self.hub.settings, snapshot=self.hub.revocation.snapshot(),
                       policy=self.hub.trust.policy)
        except Exception as exc:
            return False, f"revocation: {exc}"
        return True, "ready"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _send(self, code: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, server.render(), "text/plain; version=0.0.4; charset=utf-8")
                elif self.path == "/livez":
                    self._send(200, "alive\n")
                elif self.path == "/readyz":
                    ok, why = server.ready()
                    self._send(200 if ok else 503, why + "\n")
                else:
                    self._send(404, "not found\n")

        return Handler


def serve_metrics(hub: Any, host: str, port: int) -> MetricsServer:
    return MetricsServer(hub, host, port)

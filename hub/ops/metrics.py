"""Metrics (Prometheus, through ``prometheus_client``) and health endpoints of ``hub run``.

``GET /metrics``: envelopes by outcome and reason, per-stage latency histograms, queue depths
and consumers attached (intake: the hub consumers connected; dead letters; national-axis
gateway), each agency's backlog (documents
waiting in its inbox) and whether its system is connected (consumers on that inbox), retries,
reconnects, certificate expiry per organization key, per configured CA whether its revocation
data is fresh and for how long still (the validators' own rule, :meth:`CrlEntry.fresh_until`,
that ``hub doctor`` and /readyz apply) and the CRL's age, ledger lag (counted from the start
while nothing was committed), and the process metrics and build information
``prometheus_client`` provides. Every metric has a HELP text (``promtool check metrics`` runs
on this output in the tests).

``GET /livez``: the process answers. ``GET /readyz``: 200 only when the consumer consumes the
intake queue now, the ledger answers and every CA has fresh revocation data (the checks
``hub doctor`` runs).

The server runs in its own threads with its own broker connection (pika connections are not
shared across threads); it only reads counters the consumer thread writes. Queue figures are
the broker's, so every consumer exports the same values: the alert rules aggregate them with
``max by (queue)``, never ``sum``.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Info, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

import hub as hub_package
from hub.consumers.settlement import Backoff, Failover
from hub.errors import ConfigurationError
from hub.logs import get_logger

log = get_logger("hub.ops.metrics")

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not events
        return


class QueueFigures:
    """What the broker says about the hub's queues, read once per scrape."""

    def __init__(self) -> None:
        self.reached = False
        self.queues: dict[str, tuple[int, int]] = {}
        """Shared queues (intake, dead letters, gateway): ready messages and consumers."""
        self.agencies: dict[str, tuple[int, int]] = {}
        """Organization code → its inbox's ready messages and consumers."""


class HubCollector(Collector):
    """Reads the consumer's counters, the broker's queues, keys and CRLs at each scrape."""

    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        stats = server.consumer.stats if server.consumer is not None else None
        yield from self._consumer(stats)
        yield from self._queues(server.queue_figures())
        yield from self._keys()

    def _consumer(self, stats: Any) -> Iterable[Metric]:
        from hub.consumers.stats import BUCKETS

        envelopes = CounterMetricFamily("hub_envelopes", "Deliveries settled by this consumer, "
                                        "by outcome.", labels=["outcome"])
        for outcome, n in sorted((stats.by_outcome if stats else {}).items()):
            envelopes.add_metric([outcome], n)
        yield envelopes
        rejections = CounterMetricFamily("hub_rejections", "Dead letters and retries decided by "
                                         "this consumer, by reason code.", labels=["reason"])
        for reason, n in sorted((stats.by_reason if stats else {}).items()):
            rejections.add_metric([reason], n)
        yield rejections
        stages = HistogramMetricFamily("hub_stage_seconds", "Time per batch stage.",
                                       labels=["stage"])
        for stage, hist in sorted((stats.stages if stats else {}).items()):
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKETS, hist.counts, strict=False):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", hist.n))
            stages.add_metric([stage], buckets, hist.total)
        yield stages
        yield CounterMetricFamily("hub_reconnects", "Times the consumer lost the broker and "
                                  "reconnected.", value=stats.reconnects if stats else 0)
        yield CounterMetricFamily("hub_ledger_retries", "Batches held back because the ledger "
                                  "could not be written, then tried again.",
                                  value=stats.ledger_retries if stats else 0)
        yield CounterMetricFamily("hub_signer_restarts", "Times the receipts' signer process "
                                  "died, failed or did not answer with a batch in hand (held, "
                                  "the signer restarted, the batch signed again).",
                                  value=stats.signer_restarts if stats else 0)
        # Nothing committed yet: count from the start, or a consumer whose ledger is down from
        # its first batch would show no lag however long envelopes wait.
        since = (stats.last_batch_at if stats else 0.0) or self.server.started_at
        yield GaugeMetricFamily("hub_ledger_lag_seconds", "Seconds since the last committed batch "
                                "(since the hub started, when none was committed yet).",
                                value=max(0.0, self.server.clock() - since))

    def _queues(self, figures: QueueFigures) -> Iterable[Metric]:
        yield GaugeMetricFamily("hub_broker_up", "1 when this scrape could ask the broker about "
                                "the queues.", value=1.0 if figures.reached else 0.0)
        depth = GaugeMetricFamily("hub_queue_messages", "Ready messages per hub queue (the "
                                  "broker's figure: the same on every consumer).", labels=["queue"])
        consumers = GaugeMetricFamily("hub_queue_consumers", "Consumers attached to each hub "
                                      "queue.", labels=["queue"])
        for queue, (messages, attached) in sorted(figures.queues.items()):
            depth.add_metric([queue], messages)
            consumers.add_metric([queue], attached)
        yield depth
        yield consumers
        backlog = GaugeMetricFamily("hub_agency_backlog_messages", "Documents waiting in each "
                                    "agency's inbox for its system to take them.",
                                    labels=["organ_id"])
        connected = GaugeMetricFamily("hub_agency_consumers", "Consumers on each agency's inbox "
                                      "(0: the agency's system is not connected).",
                                      labels=["organ_id"])
        for organ_id, (messages, attached) in sorted(figures.agencies.items()):
            backlog.add_metric([organ_id], messages)
            connected.add_metric([organ_id], attached)
        yield backlog
        yield connected

    def _keys(self) -> Iterable[Metric]:
        hub = self.server.hub
        now = self.server.now()
        expiry = GaugeMetricFamily("hub_certificate_expiry_seconds", "Seconds until each "
                                   "organization key's certificate expires.", labels=["organ_id"])
        for organ_id in sorted(hub.keystore):
            cert = hub.keystore[organ_id].cert
            expiry.add_metric([organ_id], round((cert.not_valid_after_utc - now).total_seconds()))
        yield expiry
        snapshot = hub.revocation.snapshot()
        crl_age = GaugeMetricFamily("hub_crl_age_seconds", "Seconds since each issuer's CRL was "
                                    "issued (its age, not its validity: see hub_crl_fresh).",
                                    labels=["issuer"])
        for entry in snapshot.by_issuer.values():
            age = (now - entry.crl.last_update_utc).total_seconds()
            crl_age.add_metric([entry.crl.issuer.rfc4514_string()], round(age))
        yield crl_age
        # The validators' rule (CrlEntry.fresh_until, as check_crls applies it for `hub doctor`
        # and /readyz) for every configured CA: one without a CRL is not fresh either.
        freshness = timedelta(seconds=hub.settings.trust.crl_freshness_s)
        fresh = GaugeMetricFamily("hub_crl_fresh", "1 when the hub holds fresh revocation data "
                                  "for each configured CA (before the CRL's nextUpdate, or "
                                  "within [trust] crl_freshness_s past it); 0: deliveries "
                                  "signed under it wait.", labels=["issuer"])
        left = GaugeMetricFamily("hub_crl_fresh_seconds", "Seconds each configured CA's CRL "
                                 "stays fresh (negative: stale since; absent: no CRL).",
                                 labels=["issuer"])
        policy = hub.trust.policy
        for ca in (*policy.roots, *policy.intermediates):
            name = ca.subject.rfc4514_string()
            entry = snapshot.for_issuer(ca.subject)
            fresh.add_metric([name], 1.0 if entry is not None and entry.is_fresh(now, freshness)
                             else 0.0)
            if entry is not None:
                left.add_metric([name], round((entry.fresh_until(freshness) - now)
                                              .total_seconds()))
        yield fresh
        yield left


class MetricsServer:
    def __init__(self, hub: Any, host: str, port: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.consumer: Any = None
        """The intake consumer: its ``stats`` and whether it is ``consuming`` the intake now."""
        self.clock = clock
        """Now, in seconds since the epoch (tests pin it)."""
        self.started_at = clock()
        """When the hub started serving: the ledger lag counts from it until a first commit."""
        self._lock = threading.Lock()
        self._conn: Any = None
        b = hub.settings.broker
        self._nodes = Failover((b.url, *b.failover_urls), Backoff(0.0, 0.0))
        """The cluster's nodes; the current one answered last."""
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("hub_build", "Version of edxml-hub this process runs.",
             registry=self.registry).info({"version": hub_package.__version__})
        self.registry.register(HubCollector(self))
        self._metrics_app = make_wsgi_app(self.registry)
        try:
            server = make_server(host, port, self._app, server_class=_ThreadingServer,
                                 handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigurationError(_bind_error(host, port, exc)) from None
        self.server = server
        self.port = int(server.server_address[1])
        self.thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self.thread.start()
        log.info("metrics_listening", host=host, port=self.port)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._conn is not None:
            self._conn.close()

    # -- content -------------------------------------------------------------------------------
    def _agency_inboxes(self) -> dict[str, str]:
        """Inbox queue name → organization code, for every organization the topology serves."""
        prefix = f"{self.hub.topology.names.prefix}.org."
        out: dict[str, str] = {}
        for q in self.hub.topology.queues:
            if q.name.startswith(prefix) and q.name.endswith(".inbox"):
                out[q.name] = q.name[len(prefix):-len(".inbox")]
        return out

    def queue_figures(self) -> QueueFigures:
        from hub.broker import BrokerUnavailable

        names = self.hub.topology.names
        figures = QueueFigures()
        with self._lock:
            try:
                if self._conn is None or not self._conn.is_open:
                    self._conn = self._connect()
                for q in (names.intake, names.dlq, names.gateway):
                    found = self._conn.queue_stats(q)
                    if found is not None:
                        figures.queues[q] = found
                for q, organ_id in self._agency_inboxes().items():
                    found = self._conn.queue_stats(q)
                    if found is not None:
                        figures.agencies[organ_id] = found
                figures.reached = True
            except BrokerUnavailable as exc:
                log.warning("metrics_broker_unavailable", detail=exc.detail[:200])
                self._conn = None
        return figures

    def _connect(self) -> Any:
        """A connection to the first cluster node that answers, the node that answered last
        time first (``broker.failover_urls``, the consumer's rotation; no wait: a scrape)."""
        from hub.broker import BrokerUnavailable, connect

        nodes = self._nodes
        for tried in range(1, len(nodes.urls) + 1):
            try:
                return connect(nodes.url, "edxml-hub metrics")
            except BrokerUnavailable:
                nodes.advance()  # after the last node: back to the first one tried
                if tried == len(nodes.urls):
                    raise
        raise AssertionError("a cluster has at least one node")

    def render(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def ready(self) -> tuple[bool, str]:
        from hub.ops.health import check_crls

        consumer = self.consumer
        if consumer is None:
            return False, "broker unavailable"
        # The consumer's own state, not a connection of ours: it may reconnect for ever on a
        # refused declare or consume while the broker answers everyone else.
        if not consumer.consuming:
            return False, f"not consuming {self.hub.topology.names.intake}"
        try:
            self.hub.ledger.head()
        except Exception as exc:
            return False, f"ledger unavailable: {type(exc).__name__}"
        try:
            check_crls(self.hub.settings, now=self.now(), snapshot=self.hub.revocation.snapshot(),
                       policy=self.hub.trust.policy)
        except Exception as exc:
            return False, f"revocation: {exc}"
        return True, "ready"

    # -- HTTP ----------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/livez":
            return _text(start_response, "200 OK", "alive\n")
        if path == "/readyz":
            ok, why = self.ready()
            return _text(start_response, "200 OK" if ok else "503 Service Unavailable", why + "\n")
        return _text(start_response, "404 Not Found", "not found\n")


def _bind_error(host: str, port: int, exc: OSError) -> str:
    """One line naming the setting that cannot be used: the port (taken, or privileged) or the
    host (not an address of this machine, or no such name)."""
    setting = "port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "host"
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"[metrics] {setting}: cannot listen on {where}: {exc.strerror or exc}"


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def serve_metrics(hub: Any, host: str, port: int) -> MetricsServer:
    return MetricsServer(hub, host, port)

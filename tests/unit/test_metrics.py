"""The metrics endpoint of ``hub run``: prometheus_client's exposition, linted by promtool.

A real hub is built from the test PKI (keys, CRLs, directory, topology) with a broker that
cannot be reached; the endpoint is scraped over HTTP the way Prometheus does.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from hub.app import build_hub
from hub.consumers.stats import Stats
from hub.errors import ConfigurationError
from hub.ops.metrics import MetricsServer
from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import NOW, PKI_AT, hub_settings, make_pki
from tests.unit.test_alert_rules import RULES, promtool

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("metrics-pki"))


class _Consumer:
    """What the metrics server reads from the intake consumer: its counters, and whether it
    consumes the intake queue now."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.consuming = True


class _Clock:
    """The metrics server's clock, set by the test (the test PKI's CRLs are of 2025)."""

    def __init__(self, at: dt.datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, at: dt.datetime) -> None:
        self.now = at.timestamp()


@pytest.fixture
def clock() -> _Clock:
    return _Clock(NOW)


@pytest.fixture
def server(pki: PkiPaths, tmp_path: Path, clock: _Clock) -> Iterator[MetricsServer]:
    hub = build_hub(hub_settings(pki, tmp_path, UNREACHABLE, "metrics"))
    metrics = MetricsServer(hub, "127.0.0.1", 0, clock=clock)
    consumer = _Consumer()
    consumer.stats.time("validate", 0.004)
    consumer.stats.time("ledger", 0.0007)
    metrics.consumer = consumer
    yield metrics
    metrics.shutdown()
    hub.close()


def _get(server: MetricsServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_promtool_finds_nothing_to_lint_in_the_real_metrics_output(server: MetricsServer) -> None:
    status, ctype, text = _get(server, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    done = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_has_help_and_the_process_and_build_metrics_are_there(
    server: MetricsServer,
) -> None:
    _status, _ctype, text = _get(server, "/metrics")
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert families == helped
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= {
        m.split(" ")[0].split("{")[0] for m in text.splitlines() if not m.startswith("#")}
    assert re.search(r'^hub_build_info\{version="[^"]+"\} 1\.0$', text, re.M)
    assert 'hub_stage_seconds_bucket{le="0.005",stage="validate"} 1.0' in text
    assert "hub_broker_up 0.0" in text  # the broker cannot be reached, and it says so


def test_every_metric_the_alert_rules_use_is_in_the_output(server: MetricsServer) -> None:
    _status, _ctype, text = _get(server, "/metrics")
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    samples = families | {f + "_total" for f in families}
    used = set(re.findall(r"\b(hub_[a-z_]*[a-z])\b", RULES.read_text(encoding="utf-8")))
    assert used <= samples


def test_livez_answers_and_readyz_says_why_it_is_not_ready(server: MetricsServer) -> None:
    assert _get(server, "/livez")[0] == 200
    server.consumer = None
    status, _ctype, body = _get(server, "/readyz")
    assert status == 503
    assert body.strip() == "broker unavailable"
    assert _get(server, "/nothing")[0] == 404


def _by_label(text: str, name: str) -> dict[str, float]:
    """``name``'s samples in an exposition: the (only) label's value → the sample's value."""
    found = re.findall(rf'^{name}\{{\w+="([^"]*)"\}} (\S+)$', text, re.M)
    return {label: float(value) for label, value in found}


def _subject(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()


def test_crl_freshness_is_exported_by_the_hubs_own_rule_not_by_the_crls_age(
    server: MetricsServer, clock: _Clock, pki: PkiPaths,
) -> None:
    # Given the test PKI's CRLs, issued at PKI_AT: the root's valid 30 days, the issuing CA's 7
    root, issuing = _subject(pki.root_cert), _subject(pki.issuing_ca_cert)
    grace = server.hub.settings.trust.crl_freshness_s
    # When scraped two days later
    clock.set(PKI_AT + dt.timedelta(days=2))
    text = _get(server, "/metrics")[2]
    # Then both CRLs are two days old, and fresh: nothing waits for revocation data
    assert _by_label(text, "hub_crl_age_seconds") == {root: 2 * 86400, issuing: 2 * 86400}
    assert _by_label(text, "hub_crl_fresh") == {root: 1.0, issuing: 1.0}
    assert _by_label(text, "hub_crl_fresh_seconds") == {
        root: 28 * 86400 + grace, issuing: 5 * 86400 + grace}
    # When scraped eight days after issue: the issuing CA's CRL is past nextUpdate and the grace
    clock.set(PKI_AT + dt.timedelta(days=8))
    text = _get(server, "/metrics")[2]
    # Then it is not fresh (what `hub doctor` and /readyz decide), the root's still is
    assert _by_label(text, "hub_crl_fresh") == {root: 1.0, issuing: 0.0}
    assert _by_label(text, "hub_crl_fresh_seconds")[issuing] == -86400 + grace
    assert _get(server, "/readyz")[2].startswith("revocation: ")


def test_a_ca_without_a_crl_is_exported_as_not_fresh(
    pki: PkiPaths, tmp_path: Path, clock: _Clock,
) -> None:
    # Given a hub configured with the issuing CA's CRL only
    settings = hub_settings(pki, tmp_path, UNREACHABLE, "metrics-nocrl")
    from hub.config import with_overrides

    hub = build_hub(with_overrides(settings, trust={"crls": [str(pki.crl_der)]}))
    metrics = MetricsServer(hub, "127.0.0.1", 0, clock=clock)
    try:
        # When scraped
        text = _get(metrics, "/metrics")[2]
    finally:
        metrics.shutdown()
        hub.close()
    # Then the root, which has no CRL, is named not fresh (and has no freshness left to show)
    root, issuing = _subject(pki.root_cert), _subject(pki.issuing_ca_cert)
    assert _by_label(text, "hub_crl_fresh") == {root: 0.0, issuing: 1.0}
    assert set(_by_label(text, "hub_crl_fresh_seconds")) == {issuing}


def test_the_ledger_lag_grows_from_the_start_while_nothing_was_committed(
    server: MetricsServer, clock: _Clock,
) -> None:
    # Given a consumer that has committed no batch since the hub started (the ledger down)
    assert server.consumer.stats.last_batch_at == 0.0
    # When ten minutes pass
    clock.now += 600
    # Then its lag is ten minutes, and the alert rule can fire
    assert re.search(r"^hub_ledger_lag_seconds 600\.0$", _get(server, "/metrics")[2], re.M)
    # When a batch is committed, the lag counts from it
    server.consumer.stats.last_batch_at = clock.now - 5
    assert re.search(r"^hub_ledger_lag_seconds 5\.0$", _get(server, "/metrics")[2], re.M)


def test_readyz_is_not_ready_while_the_consumer_does_not_consume_the_intake(
    server: MetricsServer,
) -> None:
    # Given a consumer whose broker connection works (the metrics' own does not matter) but
    # that holds no consume on the intake (a declare refused, it loops reconnecting)
    server.consumer.consuming = False
    # When asked whether it is ready
    status, _ctype, body = _get(server, "/readyz")
    # Then it is not, and says why
    assert status == 503
    assert body.strip() == f"not consuming {server.hub.topology.names.intake}"
    # When it consumes again, with the ledger and fresh CRLs there, it is ready
    server.consumer.consuming = True
    assert _get(server, "/readyz")[:3:2] == (200, "ready\n")


@pytest.mark.parametrize(("host", "setting"), [("127.0.0.1", "port"), ("203.0.113.9", "host")])
def test_a_metrics_address_that_cannot_be_bound_is_a_configuration_error_naming_the_setting(
    pki: PkiPaths, tmp_path: Path, host: str, setting: str,
) -> None:
    # Given a port another process listens on, or an address not of this machine
    hub = build_hub(hub_settings(pki, tmp_path, UNREACHABLE, "metrics-bind"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When the metrics server starts there
        with pytest.raises(ConfigurationError) as caught:
            MetricsServer(hub, host, port)
    hub.close()
    # Then the error names the setting and the address, as a configuration error (exit 3)
    assert f"[metrics] {setting}" in str(caught.value)
    assert f"{host}:{port}" in str(caught.value)

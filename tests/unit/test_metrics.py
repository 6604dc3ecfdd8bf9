"""The metrics endpoint of ``hub run``: prometheus_client's exposition, linted by promtool.

A real hub is built from the test PKI (keys, CRLs, directory, topology) with a broker that
cannot be reached; the endpoint is scraped over HTTP the way Prometheus does.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import build_hub
from hub.consumers.stats import Stats
from hub.ops.metrics import MetricsServer
from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import hub_settings, make_pki
from tests.unit.test_alert_rules import RULES, promtool

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("metrics-pki"))


class _Consumer:
    """What the metrics server reads from the intake consumer: its counters."""

    def __init__(self) -> None:
        self.stats = Stats()


@pytest.fixture
def server(pki: PkiPaths, tmp_path: Path) -> Iterator[MetricsServer]:
    hub = build_hub(hub_settings(pki, tmp_path, UNREACHABLE, "metrics"))
    metrics = MetricsServer(hub, "127.0.0.1", 0)
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

"""The national-axis alert rules: valid, tested with promtool, only about exported metrics, and
the connector's metrics pass ``promtool check metrics`` (every one with HELP)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from prometheus_client import generate_latest

from hub.axis.breaker import Circuit
from hub.axis.metrics import AxisMetrics
from tests.unit.test_alert_rules import (
    assert_promtool_accepts,
    assert_promtool_rule_tests_pass,
    promtool,
)

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "axis-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "axis-alerts.test.yml"


def test_promtool_accepts_the_axis_alert_rules() -> None:
    assert_promtool_accepts(RULES)


def test_the_axis_unreachable_alert_fires_after_10_minutes_and_not_for_a_short_outage() -> None:
    assert_promtool_rule_tests_pass(RULE_TESTS)


def test_every_axis_alert_rule_has_a_promtool_case() -> None:
    rules = set(re.findall(r"- alert: (\w+)", RULES.read_text(encoding="utf-8")))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    assert rules
    assert rules <= tested


def test_every_metric_in_the_axis_rules_is_exported_by_the_connector() -> None:
    exported = generate_latest(AxisMetrics().registry).decode()
    used = set(re.findall(r"\b(hub_axis_[a-z_]*[a-z])\b", RULES.read_text(encoding="utf-8")))
    assert used
    for name in used:
        assert f"# HELP {name} " in exported, name


def test_the_connectors_metrics_pass_promtool_check_metrics() -> None:
    metrics = AxisMetrics()
    metrics.set_circuit(Circuit.OPEN)
    metrics.sent.labels("accepted").inc()
    metrics.failures.labels("timeout").inc()
    done = subprocess.run([promtool(), "check", "metrics"], input=generate_latest(metrics.registry),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()

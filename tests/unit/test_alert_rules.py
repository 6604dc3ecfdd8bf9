"""The alert rules: valid, tested with promtool, and only about metrics `hub run` exports.

promtool comes from Debian's ``prometheus`` package (bin/setup installs it). Without it these
tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool is required in CI (apt-get install prometheus)", pytrace=False)
        pytest.skip("promtool not installed (apt-get install --no-install-recommends prometheus)")
    return found


def assert_promtool_accepts(*rules: Path) -> None:
    """``promtool check rules`` on rule files (each alert rules file of deploy/prometheus)."""
    done = subprocess.run([promtool(), "check", "rules", *map(str, rules)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def assert_promtool_rule_tests_pass(rule_tests: Path) -> None:
    """``promtool test rules`` on a test file, run where its rule_files paths are relative to."""
    done = subprocess.run([promtool(), "test", "rules", rule_tests.name], cwd=rule_tests.parent,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    assert_promtool_accepts(RULES)


def test_the_alert_rules_pass_their_promtool_tests() -> None:
    # Among them: a discard of 5 of 50 dead letters does not fire; two consumers exporting the
    # same queue give one alert with the real growth; real growth fires; a CRL issued days ago
    # but fresh does not fire, a young one past its nextUpdate (or none at all) does; a consumer
    # that has committed nothing since it started shows its lag.
    assert_promtool_rule_tests_pass(RULE_TESTS)


def test_every_alert_rule_has_a_promtool_test_or_is_about_up() -> None:
    rules = set(re.findall(r"- alert: (\w+)", RULES.read_text(encoding="utf-8")))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    untested = rules - tested
    # Not yet covered by a promtool case; listed so that a new rule cannot slip in untested.
    assert untested <= {"EdxmlHubConsumerDown", "EdxmlHubRetriesForRevocation",
                        "EdxmlHubCertificateExpiring", "EdxmlHubBrokerUnreachable"}


def test_every_metric_in_the_alert_rules_is_exported_by_the_hub() -> None:
    rules = RULES.read_text(encoding="utf-8")
    exported = (ROOT / "hub" / "ops" / "metrics.py").read_text(encoding="utf-8")
    used = {re.sub(r"_total$", "", name) for name in re.findall(r"\b(hub_[a-z_]*[a-z])\b", rules)}
    assert used
    for name in used:
        assert f'"{name}"' in exported, name

"""The sample alert rules only use metrics `hub run` exports."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_metric_in_the_alert_rules_is_exported_by_the_hub() -> None:
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    exported = (ROOT / "hub" / "ops" / "metrics.py").read_text(encoding="utf-8")
    used = set(re.findall(r"\b(hub_[a-z_]+)\b", rules))
    assert used
    for name in used:
        assert name in exported, name

"""The compose stack's ``axis`` profile can run as shipped, and a connector that is not running
is noticed: settings in the template, the secret as a root-only file handed over by the entry
point (never an environment variable of the container), a healthcheck ``deploy/up`` waits for,
a scrape target only when the profile is enabled, and the axis rules loaded by Prometheus.

The whole stack with the profile is not started here (``HUB_DEPLOY_TEST=1 pytest -m deploy``
runs the stack without it); what can be checked without images is.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.axis.client import load_secret
from hub.config import load_settings
from hub.testing import devbroker
from tests.unit.test_alert_rules import promtool

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _yaml(path: Path) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")  # PyYAML, schemathesis' dependency (the test extra)
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE)


def _prometheus() -> dict[str, Any]:
    return _yaml(DEPLOY / "prometheus" / "prometheus.yml")


def _entrypoint() -> Any:
    """deploy/hub/entrypoint.py (baked into the hub image), loaded from its file."""
    spec = importlib.util.spec_from_file_location("edxml_hub_entrypoint",
                                                  DEPLOY / "hub" / "entrypoint.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_has_an_axis_section_and_compose_serves_the_connectors_metrics() -> None:
    template = tomllib.loads((DEPLOY / "template" / "hub.toml").read_text(encoding="utf-8"))
    assert "axis" in template
    assert "secret" not in template["axis"]  # never in the settings
    axis = _compose()["services"]["axis"]
    assert axis["environment"]["HUB_AXIS__METRICS_PORT"] == "9465"
    assert axis["environment"]["HUB_AXIS__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - in its network
    assert "9465/metrics" in " ".join(axis["healthcheck"]["test"])


def test_the_axis_secret_is_a_root_only_file_mounted_into_the_axis_service_alone() -> None:
    services = _compose()["services"]
    mounts = {name: [v for v in s.get("volumes", []) if isinstance(v, dict)]
              for name, s in services.items()}
    secret = [v for v in mounts["axis"] if v["target"] == "/run/edxml-hub-secrets/axis-secret"]
    assert len(secret) == 1
    assert secret[0]["type"] == "bind"
    assert secret[0]["read_only"] is True
    assert secret[0]["source"].endswith("/secrets/axis-secret")
    for name, volumes in mounts.items():
        if name != "axis":
            assert not any("axis-secret" in str(v.get("source")) for v in volumes), name
    assert not any("SECRET" in k for k in services["axis"]["environment"])


def test_the_entry_point_hands_the_axis_secret_to_the_connector_as_a_file_of_its_user(
    tmp_path: Path,
) -> None:
    # Given the mounted secrets directory with the axis secret (root-only, as deploy/up checks)
    entrypoint = _entrypoint()
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "axis-secret").write_text("s3cret-of-the-axis\n", encoding="utf-8")
    (secrets / "axis-secret").chmod(0o600)
    entrypoint.SECRETS = secrets
    entrypoint.PRIVATE = tmp_path / "private"
    entrypoint.PRIVATE.mkdir()
    env: dict[str, str] = {}
    uid, gid = os.getuid(), os.getgid()

    # When the entry point prepares the connector's environment
    entrypoint._axis_secret(env, uid, gid)

    # Then the connector reads the secret from a file only its user may read, named by the
    # settings' secret_file, and the secret itself is in no variable
    path = Path(env["HUB_AXIS__SECRET_FILE"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid)
    assert not any("s3cret" in v for v in env.values())
    settings = load_settings(DEPLOY / "template" / "hub.toml", environ=env)
    assert load_secret(settings, environ={}) == "s3cret-of-the-axis"


def test_without_an_axis_secret_the_entry_point_sets_nothing(tmp_path: Path) -> None:
    entrypoint = _entrypoint()
    entrypoint.SECRETS = tmp_path
    entrypoint.PRIVATE = tmp_path / "private"
    env: dict[str, str] = {}
    entrypoint._axis_secret(env, os.getuid(), os.getgid())
    assert env == {}


def test_every_optional_service_has_a_healthcheck_and_deploy_up_waits_for_the_enabled_ones(
) -> None:
    services = _compose()["services"]
    optional = [name for name, s in services.items()
                if s.get("profiles") and "tools" not in s["profiles"]]
    assert sorted(optional) == ["api", "axis", "console"]
    for name in optional:
        assert services[name].get("healthcheck"), name
    up = (DEPLOY / "up").read_text(encoding="utf-8")
    start = up[up.index("start_stack() {"):]
    start = start[:start.index("\n}\n")]
    assert re.search(r'step "[^"]*enabled profiles[^"]*" wait_profiles', start), start
    waiter = up[up.index("wait_profiles() {"):]
    assert 'wait_healthy 240 "$(container "$p")"' in waiter[:waiter.index("\n}\n")]


def test_prometheus_loads_the_axis_rules_and_scrapes_the_connector_only_when_enabled() -> None:
    prometheus = _prometheus()
    assert "/etc/prometheus/edxml-hub-axis-alerts.yml" in prometheus["rule_files"]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    # the job the axis rules name, its target from a file deploy/up writes per profile
    assert 'job="edxml-hub-axis"' in (DEPLOY / "prometheus" / "axis-alerts.yml").read_text()
    files = jobs["edxml-hub-axis"]["file_sd_configs"][0]["files"]
    assert files == ["/etc/prometheus/targets/axis.json"]
    mounts = {v["target"]: v["source"] for v in _compose()["services"]["prometheus"]["volumes"]
              if v["type"] == "bind"}
    assert mounts["/etc/prometheus/edxml-hub-axis-alerts.yml"] == "./prometheus/axis-alerts.yml"
    assert mounts["/etc/prometheus/targets"].endswith("/prometheus-targets")


def test_promtool_accepts_the_prometheus_config_with_the_files_compose_mounts(
    tmp_path: Path,
) -> None:
    # Given the files compose mounts into Prometheus, at paths under tmp_path
    mounts = {v["target"]: v["source"] for v in _compose()["services"]["prometheus"]["volumes"]
              if v["type"] == "bind"}
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    for target, source in mounts.items():
        if target == "/etc/prometheus/prometheus.yml":
            continue
        local = tmp_path / target.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        if target == "/etc/prometheus/targets":
            local.mkdir()
            (local / "axis.json").write_text('[{"targets": ["axis:9465"]}]\n', encoding="utf-8")
        else:
            shutil.copyfile(DEPLOY / source, local)
        text = text.replace(target, str(local))
    config = tmp_path / "prometheus.yml"
    config.write_text(text, encoding="utf-8")
    # Then promtool accepts the configuration and every rule file it names
    done = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rules found" in done.stdout or "rules found" in done.stdout


# -- deploy/up itself -----------------------------------------------------------------------

def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def compose_host() -> None:
    _need(shutil.which("docker-compose") is not None, "docker-compose is not installed (bin/setup)")
    try:
        devbroker.ensure_docker(log=lambda _msg: None)
    except devbroker.BrokerUnavailable as exc:
        _need(False, str(exc))


@pytest.mark.usefixtures("compose_host")
def test_up_with_the_axis_profile_names_its_missing_secret_and_settings_and_starts_nothing(
    tmp_path: Path,
) -> None:
    # Given a state directory whose deploy.env enables the axis profile, nothing else prepared
    state = tmp_path / "state"
    state.mkdir()
    (state / "deploy.env").write_text('EDXML_PROFILES="axis"\n', encoding="utf-8")
    project = f"edxml-hub-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDXML_")}
    env["EDXML_PROJECT"] = project

    # When deploy/up runs
    proc = subprocess.run([str(DEPLOY / "up"), "--state", str(state), "--no-build"],
                          capture_output=True, text=True, timeout=300, check=False, env=env,
                          cwd=ROOT)

    # Then the axis' own prerequisites are named among the missing pieces, one line each
    assert proc.returncode == 3, proc.stderr
    missing = [line for line in proc.stderr.splitlines() if ": missing: " in line]
    assert any(f"{state}/secrets/axis-secret: secret not found" in m for m in missing), missing
    assert any(f"{state}/hub.toml: [axis] url" in m for m in missing), missing
    assert "Traceback" not in proc.stderr + proc.stdout
    # and the Prometheus target directory was laid out (its bind source must exist)
    assert (state / "prometheus-targets").is_dir()

"""The axis connector's account may never be a trusted publisher (docs/AXIS.md: the axis speaks
for no local body): such settings are a configuration error at start-up, one line, exit 3; the
deployment template does not ship them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hub.config import Settings, load_settings, with_overrides
from hub.errors import ConfigurationError
from hub.ops.cli import EXIT_CONFIG, main

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template" / "hub.toml"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_that_trust_the_axis_connectors_account_are_refused_in_one_line(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, '[broker]\ntrusted_publishers = ["edxml-hub", "axis-gateway"]\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{config}: ")
    assert "[axis] broker_user 'axis-gateway'" in message
    assert "trusted_publishers" in message


def test_the_axis_account_named_otherwise_is_refused_when_trusted_through_the_environment(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, '[axis]\nbroker_user = "truc-quoc-gia"\n')
    with pytest.raises(ConfigurationError, match="truc-quoc-gia"):
        load_settings(config, environ={"HUB_BROKER__TRUSTED_PUBLISHERS": "edxml-hub,truc-quoc-gia"})
    # and is accepted when only the hub's own account is trusted
    settings = load_settings(config, environ={"HUB_BROKER__TRUSTED_PUBLISHERS": "edxml-hub"})
    assert settings.axis.broker_user == "truc-quoc-gia"


def test_the_connector_may_log_in_as_the_axis_account_itself(tmp_path: Path) -> None:
    # (the compose stack's axis service: its login is the account, not trusted)
    config = _config(tmp_path, '[broker]\nurl = "amqp://axis-gateway@rabbit2:5672/"\n'
                               'trusted_publishers = ["edxml-hub"]\n')
    assert load_settings(config, environ={}).axis.broker_user == "axis-gateway"


def test_overrides_that_trust_the_axis_account_are_refused_like_the_file() -> None:
    with pytest.raises(ConfigurationError, match=r"\[axis\] broker_user 'axis-gateway'"):
        with_overrides(Settings(), broker={"trusted_publishers": ["guest", "axis-gateway"]})


def test_a_command_started_with_such_settings_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a command that runs offline with the hub's own account trusted
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    argv = ["topology", "export", "-o", str(tmp_path / "definitions.json")]
    fine = _config(tmp_path, '[broker]\ntrusted_publishers = ["edxml-hub"]\n')
    assert main(["--config", str(fine), *argv]) == 0
    capsys.readouterr()
    # When the axis account is trusted too
    config = _config(tmp_path, '[broker]\ntrusted_publishers = ["edxml-hub", "axis-gateway"]\n')
    code = main(["--config", str(config), *argv])
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert code == EXIT_CONFIG
    assert len(err) == 1, err
    assert err[0].startswith("hub: configuration: "), err
    assert "Traceback" not in captured.out + captured.err


def test_the_deployment_template_trusts_only_the_hubs_own_account() -> None:
    trusted = tomllib.loads(TEMPLATE.read_text(encoding="utf-8"))["broker"]["trusted_publishers"]
    assert trusted == ["edxml-hub"]
    # and loads as it ships (no secret is needed to read it)
    settings = load_settings(TEMPLATE, environ={})
    assert settings.axis.broker_user not in settings.broker.trusted_publishers

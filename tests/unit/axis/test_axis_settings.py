"""``[axis]`` settings: the secret never in the file; from a file or the environment only."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.axis.client import client_from_settings, load_secret
from hub.config import load_settings
from hub.errors import ConfigurationError


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize("key", ["secret", "secret_key", "password"])
def test_a_secret_written_in_the_settings_file_is_refused_with_where_to_put_it(
    tmp_path: Path, key: str
) -> None:
    path = _config(tmp_path, f'[axis]\nurl = "https://axis.example"\n{key} = "s3cret"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, {})
    assert "secret_file" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_nor_can_the_secret_be_given_as_a_settings_variable() -> None:
    with pytest.raises(ConfigurationError):
        load_settings(None, {"HUB_AXIS__SECRET": "s3cret"})


def test_the_secret_comes_from_the_file_named_relative_to_the_settings(tmp_path: Path) -> None:
    (tmp_path / "axis.secret").write_text("from-file\n", encoding="utf-8")
    path = _config(tmp_path, '[axis]\nsecret_file = "axis.secret"\n')
    assert load_secret(load_settings(path, {}), {"HUB_AXIS_SECRET": "env"}) == "from-file"


def test_otherwise_from_the_environment_variable_the_settings_name() -> None:
    settings = load_settings(None, {"HUB_AXIS__SECRET_ENV": "MY_AXIS_KEY"})
    assert load_secret(settings, {"MY_AXIS_KEY": " from-env "}) == "from-env"


def test_no_secret_anywhere_is_a_configuration_error_naming_where_it_looked(
    tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="HUB_AXIS_SECRET"):
        load_secret(load_settings(None, {}), {})
    path = _config(tmp_path, '[axis]\nsecret_file = "missing.secret"\n')
    with pytest.raises(ConfigurationError, match=r"missing\.secret"):
        load_secret(load_settings(path, {}), {})


def test_tls_verification_is_on_by_default_and_a_ca_file_must_exist(tmp_path: Path) -> None:
    env = {"HUB_AXIS__URL": "https://axis.example", "HUB_AXIS__SYSTEM_ID": "hub-h27",
           "HUB_AXIS_SECRET": "x"}
    settings = load_settings(None, env)
    assert settings.axis.verify_tls is True
    client = client_from_settings(settings, env)
    assert client._session.verify is True
    client.close()
    with pytest.raises(ConfigurationError, match="ca_file"):
        client_from_settings(load_settings(None, {**env, "HUB_AXIS__CA_FILE": "nope.pem"}), env)


def test_an_unconfigured_axis_says_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match=r"\[axis\] url"):
        client_from_settings(load_settings(None, {}), {})
    with pytest.raises(ConfigurationError, match="system_id"):
        client_from_settings(load_settings(None, {"HUB_AXIS__URL": "https://a"}), {})


def test_the_client_never_shows_its_secret() -> None:
    env = {"HUB_AXIS__URL": "https://axis.example", "HUB_AXIS__SYSTEM_ID": "hub-h27",
           "HUB_AXIS_SECRET": "do-not-show"}
    client = client_from_settings(load_settings(None, env), env)
    assert "do-not-show" not in repr(client)
    client.close()

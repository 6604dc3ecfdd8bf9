"""Settings: frozen, strict about keys and ranges, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.config import Settings, load_settings, with_overrides
from hub.errors import ConfigurationError
from hub.trust.signer_pool import signer_processes, usable_cores


def test_defaults_need_no_file(tmp_path: Path) -> None:
    s = load_settings(None, environ={})
    assert s.broker.url.startswith("amqp://")
    assert s.ledger.url.startswith("sqlite:///")


def test_an_unknown_key_is_an_error_that_names_it(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[broker]\nurll = 'amqp://x'\n")
    with pytest.raises(ConfigurationError, match="urll"):
        load_settings(f, environ={})


def test_an_unknown_key_in_the_environment_is_an_error_that_names_it() -> None:
    with pytest.raises(ConfigurationError, match="urll"):
        load_settings(None, environ={"HUB_BROKER__URLL": "amqp://x"})


def test_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[brokr]\nurl = 'amqp://x'\n")
    with pytest.raises(ConfigurationError, match="brokr"):
        load_settings(f, environ={})


def test_an_unknown_section_in_the_environment_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="HUB_BROKR__URL"):
        load_settings(None, environ={"HUB_BROKR__URL": "amqp://x"})


@pytest.mark.parametrize("via", ["the path", "HUB_CONFIG"])
def test_a_settings_file_that_is_not_utf8_is_a_one_line_error_naming_it(
    via: str, tmp_path: Path
) -> None:
    f = tmp_path / "hub.toml"
    f.write_bytes(b"\xff\xfe")  # TOML is UTF-8 by definition
    path, environ = (f, {}) if via == "the path" else (None, {"HUB_CONFIG": str(f)})
    with pytest.raises(ConfigurationError, match="not UTF-8") as caught:
        load_settings(path, environ=environ)
    assert str(caught.value).startswith(str(f))
    assert "\n" not in str(caught.value)


def test_a_settings_file_nested_too_deeply_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[hub]\nx = " + "[" * 100_000 + "\n")  # the TOML reader recurses per level
    with pytest.raises(ConfigurationError, match="nested too deeply") as caught:
        load_settings(f, environ={})
    assert str(caught.value).startswith(str(f))


@pytest.mark.parametrize(("name", "meant"), [
    ("HUB_LEDGER_URL", "HUB_LEDGER__URL"),
    ("HUB_BROKER_URL", "HUB_BROKER__URL"),
    ("hub_broker_failover_urls", "HUB_BROKER__FAILOVER_URLS"),
    ("HUB_HUB_KEYSTORE", "HUB_HUB__KEYSTORE"),
])
def test_an_override_with_one_underscore_after_the_section_is_refused_naming_the_right_one(
    name: str, meant: str,
) -> None:
    # Given an override spelt with one underscore where the section ends (HUB_LEDGER_URL),
    # which would otherwise be dropped: `hub run` would create an empty SQLite ledger
    # When the settings are loaded
    with pytest.raises(ConfigurationError) as caught:
        load_settings(None, environ={name: "postgresql://hub@db/hub"})
    # Then it is refused, naming the variable and the one meant
    assert str(caught.value) == (f"environment: {name} overrides nothing "
                                 f"(did you mean {meant}?)")


def test_variables_the_settings_name_themselves_are_not_taken_for_misspelt_overrides(
    tmp_path: Path,
) -> None:
    # Given the variables the hub reads by name (its own, and the ones *_env settings name,
    # even a configured one that looks like SECTION_KEY) and others of the test tooling
    f = tmp_path / "hub.toml"
    f.write_text("[hub]\nkey_passphrase_env = 'HUB_LOG_LEVEL'\n")
    environ = {"HUB_KEY_PASSPHRASE": "p", "HUB_AXIS_SECRET": "s", "HUB_DEBUG": "1",
               "HUB_CONFIG": str(f), "HUB_TEST_WORKERS": "2", "HUB_LOG_LEVEL": "p"}
    # When the settings are loaded, Then none of them is refused
    assert load_settings(None, environ=environ).hub.key_passphrase_env == "HUB_LOG_LEVEL"


def test_environment_overrides_the_file_and_is_typed(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[broker]\nprefetch = 10\nurl = 'amqp://file'\n[trust]\nroots = ['a.pem']\n")
    s = load_settings(f, environ={"HUB_BROKER__PREFETCH": "99", "HUB_TRUST__ROOTS": "x.pem,y.pem",
                                  "HUB_TRUST__FETCH_CRLS": "false"})
    assert s.broker.prefetch == 99
    assert s.broker.url == "amqp://file"  # the rest of the section still comes from the file
    assert s.trust.roots == ("x.pem", "y.pem")
    assert s.trust.fetch_crls is False
    assert s.path("x.pem") == tmp_path / "x.pem"


def test_a_badly_typed_value_is_an_error_that_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="prefetch"):
        load_settings(None, environ={"HUB_BROKER__PREFETCH": "many"})


@pytest.mark.parametrize(("toml", "key"), [
    ("[broker]\nprefetch = -5\n", "prefetch"),
    ("[broker]\nbatch_max = 0\n", "batch_max"),
    ("[broker]\nretry_base_ms = 5000\nretry_max_ms = 1000\n", "retry_max_ms"),
    ("[metrics]\nport = 70000\n", "port"),
    ("[log]\nlevel = 'loud'\n", "level"),
    ("[log]\nformat = 'xml'\n", "format"),
    ("[trust]\nmin_rsa_bits = 512\n", "min_rsa_bits"),
    ("[hub]\nsigner_processes = -1\n", "signer_processes"),
    ("[hub]\nsigner_processes = 65\n", "signer_processes"),
    ("[hub]\nsigner_processes = 1.5\n", "signer_processes"),
    ("[hub]\nsigner_timeout_s = 0\n", "signer_timeout_s"),
], ids=["negative prefetch", "empty batch", "retry cap below base", "port out of range",
        "unknown log level", "unknown log format", "weak rsa floor", "negative signer processes",
        "too many signer processes", "a fraction of a signer process", "no time to sign"])
def test_a_value_out_of_range_or_not_in_its_set_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    f = tmp_path / "hub.toml"
    f.write_text(toml)
    with pytest.raises(ConfigurationError, match=key) as refused:
        load_settings(f, environ={})
    assert "\n" not in str(refused.value)
    assert str(f) in str(refused.value)


def test_settings_are_frozen() -> None:
    s = load_settings(None, environ={})
    with pytest.raises(ValidationError):
        s.broker.url = "x"  # type: ignore[misc]


def test_constructing_settings_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_BROKER__PREFETCH", "7")
    assert Settings().broker.prefetch == 256


def test_overrides_are_checked_like_the_file() -> None:
    s = with_overrides(Settings(), broker={"prefetch": "12", "trusted_publishers": ["guest"]})
    assert s.broker.prefetch == 12
    assert s.broker.trusted_publishers == ("guest",)
    with pytest.raises(ConfigurationError, match="prefetch"):
        with_overrides(s, broker={"prefetch": -5})


def test_the_signer_processes_are_set_from_the_file_or_the_environment(tmp_path: Path) -> None:
    # "auto" by default: one signer process where a core is spare (measured: issue 23); 0 signs
    # in the consumer's thread.
    assert load_settings(None, environ={}).hub.signer_processes == "auto"
    assert load_settings(None, environ={"HUB_HUB__SIGNER_PROCESSES": "auto"}
                         ).hub.signer_processes == "auto"
    f = tmp_path / "hub.toml"
    f.write_text("[hub]\nsigner_processes = 2\nsigner_timeout_s = 90\n")
    s = load_settings(f, environ={})
    assert (s.hub.signer_processes, s.hub.signer_timeout_s) == (2, 90.0)
    s = load_settings(f, environ={"HUB_HUB__SIGNER_PROCESSES": "0"})
    assert s.hub.signer_processes == 0
    with pytest.raises(ConfigurationError, match="signer_processes"):
        load_settings(f, environ={"HUB_HUB__SIGNER_PROCESSES": "many"})


@pytest.mark.parametrize(("setting", "cores", "processes"), [
    ("auto", 1, 0), ("auto", 2, 1), ("auto", 16, 1), (0, 8, 0), (3, 1, 3)])
def test_auto_signer_processes_means_one_only_where_a_core_is_spare(
        setting: int | str, cores: int, processes: int) -> None:
    assert signer_processes(setting, cores) == processes


@pytest.mark.parametrize(("affinity", "cpu_max", "cores"), [
    ({0, 1}, None, 2), ({0}, None, 1), ({0, 1, 2, 3}, "max 100000\n", 4),
    ({0, 1, 2, 3}, "150000 100000\n", 1), ({0, 1, 2, 3}, "200000 100000\n", 2),
    ({0, 1}, "50000 100000\n", 1), ({0, 1}, "garbage\n", 2)])
def test_usable_cores_count_the_affinity_capped_by_a_cgroup_quota(
        tmp_path: Path, affinity: set[int], cpu_max: str | None, cores: int) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    assert usable_cores(lambda _pid: affinity, path) == cores


def test_kubernetes_service_links_are_not_taken_for_misspelt_overrides() -> None:
    # Given the variables Kubernetes puts in every pod of a namespace holding Services named
    # hub-api, hub-console and hub-metrics (service links, on by default)
    environ = {"HUB_API_PORT": "tcp://10.96.0.12:8443", "HUB_CONSOLE_PORT": "tcp://10.96.0.13:80",
               "HUB_METRICS_PORT": "tcp://10.96.0.14:9464",
               "HUB_API_SERVICE_HOST": "10.96.0.12", "HUB_API_PORT_8443_TCP_PORT": "8443"}
    # When the settings are loaded, Then none of them is refused (nor read)
    assert load_settings(None, environ=environ).metrics.port == Settings().metrics.port
    # while the same name holding a port number is the misspelt override it looks like
    with pytest.raises(ConfigurationError, match="did you mean HUB_METRICS__PORT"):
        load_settings(None, environ={"HUB_METRICS_PORT": "9464"})

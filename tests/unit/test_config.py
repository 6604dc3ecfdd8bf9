"""Settings: frozen, strict about keys, environment overrides (STYLE §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_settings
from hub.errors import ConfigurationError


def test_defaults_need_no_file(tmp_path: Path) -> None:
    s = load_settings(None, environ={})
    assert s.broker.url.startswith("amqp://")
    assert s.ledger.url.startswith("sqlite:///")


def test_an_unknown_key_is_an_error_that_names_it(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[broker]\nurll = 'amqp://x'\n")
    with pytest.raises(ConfigurationError, match="urll"):
        load_settings(f, environ={})


def test_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[brokr]\nurl = 'amqp://x'\n")
    with pytest.raises(ConfigurationError, match="brokr"):
        load_settings(f, environ={})


def test_environment_overrides_the_file_and_is_typed(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[broker]\nprefetch = 10\n[trust]\nroots = ['a.pem']\n")
    s = load_settings(f, environ={"HUB_BROKER__PREFETCH": "99", "HUB_TRUST__ROOTS": "x.pem,y.pem",
                                  "HUB_TRUST__FETCH_CRLS": "false"})
    assert s.broker.prefetch == 99
    assert s.trust.roots == ("x.pem", "y.pem")
    assert s.trust.fetch_crls is False
    assert s.path("x.pem") == tmp_path / "x.pem"


def test_a_badly_typed_value_is_an_error_that_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="prefetch"):
        load_settings(None, environ={"HUB_BROKER__PREFETCH": "many"})


def test_settings_are_frozen() -> None:
    s = load_settings(None, environ={})
    with pytest.raises(AttributeError):
        s.broker.url = "x"  # type: ignore[misc]

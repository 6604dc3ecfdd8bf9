"""A logged exception never writes the values of its frames' local variables.

``log.exception`` inside a function that holds a document's bytes or a secret (the API's broker
thread holds deliveries; request handlers hold secrets) must print where it failed and why —
the exception's type and message — and never those values: not on a terminal (a rich
traceback shows locals by default), not in JSON (which must carry the exception at all).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hub import logs

BODY = b"<edXML>NOI DUNG VAN BAN MAT 7f3a</edXML>"
SECRET = "secret-value-9c41d2"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logs.configure("console", "info")  # what tests/conftest.py configures for the suite


def _fail_holding_secrets(held_body: bytes, system_secret: str) -> None:
    copy = held_body + system_secret.encode()
    raise RuntimeError(f"delivery 3 settled twice ({len(copy)} bytes)")


def _log_a_failure() -> None:
    log = logs.get_logger("hub.api.bridge")
    try:
        _fail_holding_secrets(BODY, SECRET)
    except RuntimeError as exc:
        log.exception("api_broker_thread_failed", error=type(exc).__name__)


def _secrets_in(text: str) -> list[str]:
    return [s for s in ("NOI DUNG VAN BAN MAT", SECRET, "9c41d2") if s in text]


def test_a_console_log_of_an_exception_shows_the_traceback_without_local_values(
    capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("console", "info")
    _log_a_failure()
    err = capsys.readouterr().err
    assert "api_broker_thread_failed" in err
    assert "RuntimeError" in err
    assert "settled twice" in err
    assert "_fail_holding_secrets" in err  # where it failed
    assert _secrets_in(err) == []


def test_a_json_log_of_an_exception_carries_its_type_and_message_without_local_values(
    capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("json", "info")
    _log_a_failure()
    err = capsys.readouterr().err
    event = json.loads(err.strip().splitlines()[-1])
    assert event["event"] == "api_broker_thread_failed"
    assert "exc_info" not in event
    text = json.dumps(event["exception"], ensure_ascii=False)
    assert "RuntimeError" in text
    assert "delivery 3 settled twice" in text
    assert "_fail_holding_secrets" in text  # where it failed
    assert _secrets_in(err) == []

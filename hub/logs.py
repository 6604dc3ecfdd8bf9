"""Logging: structlog events, JSON in production, readable on a terminal.

Event names are snake_case past tense (``envelope_rejected``); the reason code is a field.
Context (message id, sender, recipient) is bound once per delivery with
``structlog.contextvars.bound_contextvars``. Never log keys, passphrases or document bodies:
:func:`_drop_secrets` removes fields whose names say they hold one, as a last line of defence.

A logged exception (``log.exception``) shows its traceback — the frames, the type and the
message — and never the values of the frames' local variables: a consumer's frame holds
deliveries' bodies, a request's frame a secret. structlog's defaults show them (the console's
rich traceback and its dict tracebacks both default to ``show_locals=True``); the renderers here
turn that off. In JSON the exception goes into an ``exception`` field as text
(``format_exc_info``), where it would otherwise be a bare ``"exc_info": true``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_FIELDS = frozenset({"body", "raw", "password", "passphrase", "key", "private_key", "data"})


def _drop_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for field in _SECRET_FIELDS.intersection(event):
        event[field] = "<redacted>"
    return event


class _StderrLogger:
    """Writes each rendered event to the *current* ``sys.stderr`` and never raises: a broken
    log stream must not stop a consumer holding unacknowledged deliveries."""

    def msg(self, message: str) -> None:
        try:
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()
        except (ValueError, OSError):
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger_factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog once, in ``main()``."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    rendering: list[Any]
    if fmt == "console":
        colors = sys.stderr.isatty()
        rendering = [structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=_console_traceback(colors))]
    else:
        rendering = [structlog.processors.format_exc_info,
                     structlog.processors.JSONRenderer(ensure_ascii=False)]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


def _console_traceback(colors: bool) -> Any:
    """rich's readable traceback (rich is a dependency), without local variables."""
    return structlog.dev.RichTracebackFormatter(
        show_locals=False, color_system="truecolor" if colors else None)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    from urllib.parse import urlparse

    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url

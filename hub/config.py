"""Settings: one frozen object, loaded once in ``main()`` from TOML plus ``HUB_*`` overrides.

Unknown keys are errors that name the key (pyHanko's ``config/api.py`` does the same): a typo in
a province's config must not silently fall back to a default. Environment overrides use
``HUB_<SECTION>__<KEY>`` (double underscore between section and key), e.g.
``HUB_BROKER__URL=amqp://...``. Values from the environment are parsed by the field's type.

Relative paths in the file are resolved against the file's directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigurationError

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    url: str = DEFAULT_BROKER_URL
    """AMQP URL of the broker the hub consumes from and publishes to."""
    failover_urls: tuple[str, ...] = ()
    """Other nodes of the same RabbitMQ cluster: on connection loss the consumer tries the next
    URL in turn (quorum queues are served by any node)."""
    prefix: str = "edxml"
    """Prefix of every exchange and queue name (lets tests run side by side)."""
    prefetch: int = 256
    """Unacknowledged deliveries a consumer may hold (bounded by group commit)."""
    batch_max: int = 128
    """Group commit: settle at most this many deliveries per ledger transaction."""
    batch_wait_ms: int = 0
    """Group commit: a batch is what arrived while the previous one was handled; when idle,
    wait this long for a burst to gather (0: never; waiting lengthened the latency tail)."""
    delivery_limit: int = 5
    """Attempts before a transiently failing delivery is dead-lettered."""
    retry_base_ms: int = 1000
    """First retry delay; doubles per attempt up to ``retry_max_ms``."""
    retry_max_ms: int = 60_000
    """Longest retry delay (bounded backoff); one delay queue per step."""
    reconnect_max_s: float = 30.0
    """Upper bound of the reconnect backoff."""
    quorum: bool = True
    """Declare delivery queues as quorum queues (replicated when clustered)."""
    check_user_id: bool = True
    """Require the AMQP user_id of an inbound message to belong to the From organization."""
    trusted_publishers: tuple[str, ...] = ()
    """Broker users that may publish for any organization (the hub itself, the axis gateway)."""


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    url: str = "sqlite:///hub-ledger.sqlite3"
    """SQLAlchemy URL. SQLite (WAL) by default; PostgreSQL in production."""
    checkpoint_every: int = 1000
    """Sign a checkpoint of the hash chain every N rows."""
    checkpoint_interval_s: int = 60
    """… or every T seconds, whichever comes first (and when the hub stops)."""
    blob_threshold: int = 1_048_576
    """Envelopes above this many bytes go to the content-addressed store, not the DB."""
    blob_dir: str = "ledger-blobs"
    """Directory of the content-addressed store for large envelopes."""


@dataclass(frozen=True, slots=True)
class TrustSettings:
    roots: tuple[str, ...] = ()
    """PEM files or directories with the specialized roots: the only trust anchors."""
    intermediates: tuple[str, ...] = ()
    """PEM files or directories with issuing CAs (also taken from signatures)."""
    crls: tuple[str, ...] = ()
    """CRL files (DER or PEM) or directories."""
    public_roots: tuple[str, ...] = ()
    """Roots of public (commercial) CAs: never trusted, only recognised to give CERT_PUBLIC_CA."""
    policy_oids: tuple[str, ...] = ()
    """Certificate policy OIDs a specialized certificate must carry (empty: not checked)."""
    crl_freshness_s: int = 3600
    """A CRL older than this (past its thisUpdate) without a newer one is stale."""
    fetch_crls: bool = True
    """Fetch CRLs from the certificate's distribution points over HTTP."""
    min_rsa_bits: int = 2048
    """Smallest RSA key accepted for signatures (Circular 41/2017 profiles use 2048+)."""
    require_pdf_signatures: bool = True
    """Circular 41/2017, Decree 30/2020 Art. 5: the main PDF carries person + organization signatures."""
    axis_legacy_envelope_signature: bool = False
    """Interop policy for national-axis traffic: accept a legacy envelope signature when the PDF
    signatures are valid. Off by default; every use is logged and recorded."""


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_envelope_bytes: int = 50 * 1024 * 1024
    """Largest packet accepted (checked before parsing)."""
    max_attachment_bytes: int = 40 * 1024 * 1024
    """Largest decoded attachment."""
    max_depth: int = 64
    """Deepest XML nesting accepted."""
    max_elements: int = 100_000
    """Most XML elements accepted in one packet."""


@dataclass(frozen=True, slots=True)
class HubSettings:
    operator_organ_id: str = "000.00.01.H27"
    """The organization that runs the hub (signs accepted/rejected receipts and checkpoints)."""
    province: str = "H27"
    """Level-1 code of the province this hub serves; others go through the national axis."""
    directory: str = ""
    """Path of the organization directory (TOML). Empty: the bundled Hà Tĩnh sample."""
    keystore: str = ""
    """Directory with organization keys: ``<organ_id>.key.pem`` + ``<organ_id>.pem`` (chain)."""
    key_passphrase_env: str = "HUB_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
    """Environment variable holding the keystore passphrase (never logged)."""


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: str = "auto"
    """``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise)."""
    level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    port: int = 0
    """HTTP port for /metrics, /livez, /readyz; 0 disables."""
    host: str = "127.0.0.1"
    """Address the metrics endpoint listens on."""


@dataclass(frozen=True, slots=True)
class Settings:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    base_dir: str = "."
    """Directory relative paths are resolved against (the config file's directory)."""

    def path(self, value: str) -> Path:
        """Resolve a configured path against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


_SECTIONS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "base_dir"}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigurationError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigurationError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v] if value else []
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, str, where) for v in value)
    if isinstance(annotation, types.UnionType):  # pragma: no cover - not used yet
        return value
    raise ConfigurationError(f"{where}: unsupported setting type {annotation!r}")


def _build_section(name: str, raw: Mapping[str, Any], where: str) -> Any:
    cls = typing.get_type_hints(Settings)[name]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigurationError(f"{where}: unknown key [{name}] {key!r}")
        kwargs[key] = _coerce(value, hints[key], f"{where}: [{name}] {key}")
    return cls(**kwargs)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings once: defaults, then the TOML file (if any), then ``HUB_*`` variables."""
    env = os.environ if environ is None else environ
    data: dict[str, dict[str, Any]] = {}
    base_dir = Path.cwd()
    where = "settings"
    if path is None and env.get("HUB_CONFIG"):
        path = env["HUB_CONFIG"]
    if path is not None:
        p = Path(path)
        where = str(p)
        try:
            with p.open("rb") as fh:
                loaded = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigurationError(f"{p}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{p}: {exc}") from None
        base_dir = p.resolve().parent
        for key, value in loaded.items():
            if key not in _SECTIONS:
                raise ConfigurationError(f"{p}: unknown section or key {key!r}")
            if not isinstance(value, dict):
                raise ConfigurationError(f"{p}: {key!r} must be a table")
            data[key] = dict(value)
    for name, value in env.items():
        if not name.startswith("HUB_") or "__" not in name:
            continue
        section, _, key = name[4:].lower().partition("__")
        if section not in _SECTIONS:
            raise ConfigurationError(f"environment: unknown section in {name}")
        data.setdefault(section, {})[key] = value
    sections = {name: _build_section(name, raw, where) for name, raw in data.items()}
    return Settings(base_dir=str(base_dir), **sections)


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """Return a copy with some section keys replaced (used by tests and the demo)."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        current = getattr(settings, name)
        hints = typing.get_type_hints(type(current))
        coerced = {k: _coerce(v, hints[k], f"override [{name}] {k}") for k, v in values.items()}
        changes[name] = dataclasses.replace(current, **coerced)
    return dataclasses.replace(settings, **changes)

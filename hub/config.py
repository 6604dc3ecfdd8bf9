"""Settings: one frozen object, loaded once in ``main()`` from TOML plus ``HUB_*`` overrides.

The sections are pydantic models and the environment is read by pydantic-settings, so every
value is checked for its type, its range and its set of allowed words (``prefetch = -5`` or
``level = "loud"`` is refused in one line naming the key). Unknown keys are errors that name
the key (pyHanko's ``config/api.py`` does the same): a typo in a province's config must not
silently fall back to a default. Environment overrides use ``HUB_<SECTION>__<KEY>`` (double
underscore between section and key), e.g. ``HUB_BROKER__URL=amqp://...``; lists are given
comma-separated (``HUB_TRUST__ROOTS=a.pem,b.pem``).

Relative paths in the file are resolved against the file's directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hub.errors import ConfigurationError


def _split(value: Any) -> Any:
    """A comma-separated string (environment) is a list; TOML lists pass unchanged."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


StrList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]
"""A list of strings: a TOML array, or comma-separated in the environment."""
Positive = Annotated[int, Field(ge=1)]


class _Section(BaseModel):
    """A settings section: frozen, unknown keys refused, field docstrings kept as descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


class BrokerSettings(_Section):
    url: str = DEFAULT_BROKER_URL
    """AMQP URL of the broker the hub consumes from and publishes to."""
    failover_urls: StrList = ()
    """Other nodes of the same RabbitMQ cluster: on connection loss the consumer tries the next
    URL in turn (quorum queues are served by any node)."""
    prefix: str = "edxml"
    """Prefix of every exchange and queue name (lets tests run side by side)."""
    prefetch: Annotated[int, Field(ge=1, le=65535)] = 256
    """Unacknowledged deliveries a consumer may hold (bounded by group commit)."""
    batch_max: Positive = 128
    """Group commit: settle at most this many deliveries per ledger transaction."""
    batch_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    """Group commit: a batch is what arrived while the previous one was handled; when idle,
    wait this long for a burst to gather (0: never; waiting lengthened the latency tail)."""
    delivery_limit: Positive = 5
    """Attempts before a transiently failing delivery is dead-lettered."""
    retry_base_ms: Positive = 1000
    """First retry delay; doubles per attempt up to ``retry_max_ms``."""
    retry_max_ms: Positive = 60_000
    """Longest retry delay (bounded backoff); one delay queue per step."""
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0
    """Upper bound of the reconnect backoff."""
    quorum: bool = True
    """Declare delivery queues as quorum queues (replicated when clustered)."""
    check_user_id: bool = True
    """Require the AMQP user_id of an inbound message to belong to the From organization."""
    trusted_publishers: StrList = ()
    """Broker users that may publish for any organization: the hub's own logins (consumers,
    the API). Never ``[axis] broker_user``: the national axis would then speak for the
    province's own bodies (refused at start-up)."""

    @model_validator(mode="after")
    def _retry_cap_not_below_base(self) -> BrokerSettings:
        if self.retry_max_ms < self.retry_base_ms:
            raise ValueError(f"retry_max_ms ({self.retry_max_ms}) is below retry_base_ms "
                             f"({self.retry_base_ms})")
        return self


class LedgerSettings(_Section):
    url: str = "sqlite:///hub-ledger.sqlite3"
    """SQLAlchemy URL. SQLite (WAL) by default; PostgreSQL in production."""
    checkpoint_every: Positive = 1000
    """Sign a checkpoint of the hash chain every N rows."""
    checkpoint_interval_s: Positive = 60
    """… or every T seconds, whichever comes first (and when the hub stops)."""
    blob_threshold: Annotated[int, Field(ge=0)] = 1_048_576
    """Envelopes above this many bytes go to the content-addressed store, not the DB."""
    blob_dir: str = "ledger-blobs"
    """Directory of the content-addressed store for large envelopes."""
    sqlite_wal_checkpoints: Literal["background", "inline"] = "background"
    """SQLite: who copies the write-ahead log into the database file: a thread of its own
    (background) or the committing connection, inside the consumer's loop (inline)."""
    statement_timeout_s: Annotated[float, Field(ge=0, le=3600)] = 20.0
    """PostgreSQL: longest one statement of the hub may run, or wait for a lock, before the
    database cancels it; the consumer then holds its batch and retries (broker heartbeats
    flowing). 0: no limit. Connections also give up after 10 s and use TCP keepalives."""


class TrustSettings(_Section):
    roots: StrList = ()
    """PEM files or directories with the specialized roots: the only trust anchors."""
    intermediates: StrList = ()
    """PEM files or directories with issuing CAs (also taken from signatures)."""
    crls: StrList = ()
    """CRL files (DER or PEM) or directories."""
    public_roots: StrList = ()
    """Roots of public (commercial) CAs: never trusted, only recognised to give CERT_PUBLIC_CA."""
    policy_oids: StrList = ()
    """Certificate policy OIDs a specialized certificate must carry (empty: not checked)."""
    crl_freshness_s: Positive = 3600
    """A CRL is fresh until its nextUpdate; one obtained within this many seconds stays usable
    at most this long past its nextUpdate (a CA late to publish), never longer: an old CRL
    served again is stale. A distribution point never replaces a CRL with an older one (an
    earlier thisUpdate or a lower CRL number). Only complete CRLs whose scope covers the
    certificate are read: no delta or indirect CRL, none with a critical extension the hub
    does not process; a partition's CRL, or one for CA or end-entity certificates only, for
    the certificates it covers."""
    fetch_crls: bool = True
    """Fetch CRLs from the certificate's distribution points over HTTP."""
    min_rsa_bits: Annotated[int, Field(ge=1024)] = 2048
    """Smallest RSA key accepted for signatures (Circular 41/2017 profiles use 2048+)."""
    require_pdf_signatures: bool = True
    """Circular 41/2017, Decree 30/2020 Art. 5: the main PDF carries person + organization signatures."""
    axis_legacy_envelope_signature: bool = False
    """Interop policy for national-axis traffic: accept a legacy envelope signature when the PDF
    signatures are valid. Off by default; every use is logged and recorded."""


class LimitSettings(_Section):
    max_envelope_bytes: Positive = 50 * 1024 * 1024
    """Largest packet accepted (checked before parsing)."""
    max_attachment_bytes: Positive = 40 * 1024 * 1024
    """Largest decoded attachment."""
    max_depth: Positive = 64
    """Deepest XML nesting accepted."""
    max_elements: Positive = 100_000
    """Most XML elements accepted in one packet."""


class HubSettings(_Section):
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
    signer_processes: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"
    """Processes of ``hub run`` that make the RSA signatures of receipts, fed a few messages
    per batch while it is planned, each holding the keystore's keys (a token key stays on its
    token: each process opens its own session). 0: one process — with a second usable core a
    thread of it signs (the RSA work runs outside the GIL, beside the consumer's loop); on one
    core, or with a key on a token, the consumer's loop signs while planning. ``auto``: 1 when
    the process may use two cores or more (CPU affinity and a cgroup CPU quota both count),
    else 0 — a signer without a spare core only adds hand-offs."""
    signer_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Longest wait for one signing request (up to 32 receipts); then the signer process is
    restarted and the batch signed again (held unacknowledged meanwhile). A USB token may sign
    only a few receipts per second: allow 32 of its signatures' time."""


class LogSettings(_Section):
    format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = "auto"
    """``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise)."""
    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""


class MetricsSettings(_Section):
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    """HTTP port for /metrics, /livez, /readyz; 0 disables."""
    host: str = "127.0.0.1"
    """Address the metrics endpoint listens on."""


class AxisSettings(_Section):
    """The national document exchange axis (Decision 28/2018/QĐ-TTg) as ``hub axis run`` reaches
    it. The secret is never a key of this section: it comes from ``secret_file`` or from the
    environment variable named by ``secret_env``."""

    url: str = ""
    """Base URL of the axis endpoint (``https://…``); empty: the connector is not configured."""
    system_id: str = ""
    """The hub's system id on the axis (issued with its secret key)."""
    secret_file: str = ""
    """File holding the system's secret key (one line); read at start-up, never logged."""
    secret_env: str = "HUB_AXIS_SECRET"  # noqa: S105 - a variable name, not a secret
    """Environment variable holding the secret key when ``secret_file`` is empty."""
    verify_tls: bool = True
    """Verify the axis' TLS certificate (turn off only against a local simulator)."""
    ca_file: str = ""
    """CA bundle (PEM) the axis' certificate must chain to; empty: the system's store."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """The longest one call to the axis may take: connecting, sending, waiting for and reading
    its whole answer (a peer dripping its answer is cut off at it)."""
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """How often the list of documents received for the province is asked for."""
    receive_limit: Annotated[int, Field(ge=1, le=1000)] = 100
    """Entries asked for per ``getReceivedEdocList``."""
    prefetch: Annotated[int, Field(ge=1, le=65535)] = 64
    """Gateway-queue messages the connector holds unacknowledged (in hand while the axis is
    down: they stay queued, never dropped)."""
    batch_max: Annotated[int, Field(ge=1, le=1000)] = 32
    """Outbound sends settled per ledger transaction."""
    retry_base_s: Annotated[float, Field(gt=0)] = 1.0
    """First wait after a transient failure (timeout, 5xx, refused connection); doubles."""
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    """Longest wait between two attempts."""
    failure_threshold: Positive = 5
    """Consecutive transient failures that open the circuit breaker."""
    open_s: Annotated[float, Field(gt=0)] = 30.0
    """How long the circuit stays open before one probe call is let through."""
    broker_user: str = "axis-gateway"
    """The broker account the directory gives bodies reached through the axis: what arrives
    from the axis is published as spoken for by it (``x-hub-original-user``)."""
    forward_hub_evidence: bool = False
    """Also send the hub's own evidence receipts (accepted, countersigned) to senders behind
    the axis; by default they stay in the ledger."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """HTTP port of the connector's /metrics; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """Address the connector's metrics endpoint listens on."""

    @model_validator(mode="before")
    @classmethod
    def _no_secret_in_the_file(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and any(str(k).lower() in {"secret", "secret_key", "password"}
                                             for k in data):
            raise ValueError("the axis secret never goes in the settings: put it in the file "
                             "named by secret_file or in the variable named by secret_env")
        return data

    @model_validator(mode="after")
    def _retry_cap_not_below_base(self) -> AxisSettings:
        if self.retry_max_s < self.retry_base_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s}) is below retry_base_s "
                             f"({self.retry_base_s})")
        return self


class ConsoleSettings(_Section):
    host: str = "127.0.0.1"
    """Address ``hub console serve`` listens on (put TLS in front of it: a reverse proxy)."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8470
    """Port of the web console."""
    users: str = "console-users.sqlite3"
    """SQLite file of the console's accounts and sessions (argon2 hashes; not the ledger)."""
    secure_cookies: bool = True
    """Session cookies carry ``Secure`` (and the ``__Host-`` prefix): sent over HTTPS only
    (browsers treat http://localhost as secure too). Off only for a plain-HTTP test setup."""
    session_idle_s: Positive = 1800
    """A session ends after this long without a request."""
    session_lifetime_s: Positive = 36_000
    """A session ends this long after sign-in in any case."""
    page_size: Annotated[int, Field(ge=10, le=1000)] = 50
    """Rows per page in lists (dead letters, ledger search)."""


class ApiSettings(_Section):
    """``hub api``: the HTTP API for agency document systems (docs/API.md)."""

    host: str = "127.0.0.1"
    """Address the API listens on."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8443
    """TCP port of the API (0: any free port, for tests)."""
    broker_url: str = ""
    """AMQP URL the API logs in with (default: ``[broker] url``). Its login publishes for the
    calling agency (``x-hub-original-user``), so it must be a trusted publisher of the hub
    (``[broker] trusted_publishers``, or the hub's own login)."""
    tls_cert: str = ""
    """PEM certificate (chain) of the API's TLS server; empty: plain HTTP (behind a proxy, or
    tests)."""
    tls_key: str = ""
    """PEM private key of the API's TLS server."""
    tls_client_ca: str = ""
    """PEM file of the CAs that issue agency systems' client certificates; empty: no mutual
    TLS. A certificate is mapped to an organization through the directory (an organization
    signer's uid or fingerprint)."""
    require_client_cert: bool = False
    """Refuse TLS connections without a client certificate (then no system id + secret); needs
    ``tls_client_ca``. A client certificate must carry the clientAuth extended key usage and
    is checked for revocation with the hub's own CRLs and OCSP answers (``[trust]``); while its
    status cannot be known the request is refused (503), never let through."""
    credentials_file: str = "api-credentials.toml"
    """TOML file of system ids, their organization and argon2 hashes of their secrets
    (``hub api credentials``); re-read when it changes."""
    state_dir: str = "api-state"
    """Where the API keeps the message ids each agency acknowledged (receiver-side dedup)."""
    max_body_bytes: Positive = 50 * 1024 * 1024
    """Largest request body accepted (a larger one is refused before it is read)."""
    rate_per_s: Annotated[float, Field(gt=0)] = 50.0
    """Requests per second one agency may make on average (token bucket)."""
    rate_burst: Positive = 100
    """Requests one agency may make at once (the bucket's size)."""
    waits_per_org: Positive = 4
    """Requests one agency may have waiting at once (long polls, verdict waits): request
    threads are a pool shared by all agencies. A long poll beyond it is refused (429
    ``API_RATE_LIMITED``); a send beyond it does not wait (``202 pending``)."""
    signin_failure_burst: Positive = 10
    """Failed sign-ins (system id + secret) one client address may make in a row, and
    separately failed sign-ins for one system id; beyond it the request is answered 429
    ``API_RATE_LIMITED`` before any secret is checked."""
    signin_failure_per_s: Annotated[float, Field(gt=0)] = 0.1
    """How fast that allowance comes back (one failed sign-in every 10 s by default)."""
    signin_concurrency: Positive = 4
    """Secret checks (argon2, memory-hard on purpose) run at once; a sign-in beyond it is
    answered 429 ``API_RATE_LIMITED`` at once instead of queueing for a request thread."""
    window: Annotated[int, Field(ge=1, le=10_000)] = 200
    """Messages the API holds unacknowledged per agency queue (what a list can show)."""
    verdict_wait_s: Annotated[float, Field(ge=0, le=60)] = 10.0
    """How long a send waits by default for the intake's verdict before answering ``pending``."""
    max_wait_s: Annotated[float, Field(ge=0, le=60)] = 30.0
    """Longest a request may be held waiting (a send's verdict, a long-polling list): a longer
    ``wait`` is shortened to this (request threads are a bounded pool)."""
    sign_statuses: bool = True
    """Sign a status update as the agency when the hub's keystore holds its key."""
    secret_cache_s: Annotated[float, Field(ge=0, le=3600)] = 300.0
    """How long a verified secret is remembered (argon2 is slow on purpose); 0: never."""


class Settings(BaseSettings):
    broker: BrokerSettings = BrokerSettings()
    ledger: LedgerSettings = LedgerSettings()
    trust: TrustSettings = TrustSettings()
    limits: LimitSettings = LimitSettings()
    hub: HubSettings = HubSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    axis: AxisSettings = AxisSettings()
    console: ConsoleSettings = ConsoleSettings()
    api: ApiSettings = ApiSettings()
    base_dir: str = "."
    """Directory relative paths are resolved against (the config file's directory)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_prefix="HUB_",
                                      env_nested_delimiter="__", case_sensitive=False)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructing Settings() reads nothing but its arguments: the environment is read
        # once, by load_settings(), from the mapping it is given (tests pass their own).
        return (init_settings,)

    def path(self, value: str) -> Path:
        """Resolve a configured path against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


_SECTIONS = tuple(name for name in Settings.model_fields if name != "base_dir")


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings, case_sensitive=False, env_prefix="HUB_",
                         env_nested_delimiter="__")

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}


def _one_line(exc: ValidationError, where: str) -> str:
    """The first problem pydantic found, as ``where: [section] key: what (got value)``."""
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"]]
    key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else (loc[0] if loc else "")
    if err["type"] == "extra_forbidden":
        if len(loc) == 1:
            return f"{where}: unknown section {loc[0]!r}"
        return f"{where}: unknown key [{loc[0]}] {'.'.join(loc[1:])!r}"
    msg = str(err["msg"])
    msg = msg[:1].lower() + msg[1:]
    if msg.startswith("value error, "):
        msg = msg[len("value error, "):]
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {key}: {msg}{shown}{more}"


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_toml(p: Path) -> dict[str, Any]:
    """The settings file's TOML; :class:`ConfigurationError` (one line, naming it) when it
    cannot be read."""
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigurationError(f"{p}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{p}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigurationError(f"{p}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{p}: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition (TOML 1.0, "Spec")
        raise ConfigurationError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                                 ) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigurationError(f"{p}: nested too deeply to read") from None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings once: defaults, then the TOML file (if any), then ``HUB_*`` variables."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    where = "settings"
    if path is None and env.get("HUB_CONFIG"):
        path = env["HUB_CONFIG"]
    if path is not None:
        p = Path(path)
        where = str(p)
        loaded = _read_toml(p)
        base_dir = p.resolve().parent
        for key, value in loaded.items():
            if key not in _SECTIONS:
                raise ConfigurationError(f"{p}: unknown section or key {key!r}")
            if not isinstance(value, dict):
                raise ConfigurationError(f"{p}: {key!r} must be a table")
        data = dict(loaded)
    for name in env:
        if name.upper().startswith("HUB_") and "__" in name:
            section = name[4:].lower().partition("__")[0]
            if section not in _SECTIONS:
                raise ConfigurationError(f"environment: unknown section in {name}")
    _no_misspelt_override(env, data)
    try:
        from_env = _Environment(env)()
    except Exception as exc:  # pydantic-settings' SettingsError: a value it cannot decode
        raise ConfigurationError(f"environment: {exc}") from None
    origin = f"{where} + environment" if from_env else where
    try:
        settings = Settings(base_dir=str(base_dir), **_merge(data, from_env))
    except ValidationError as exc:
        raise ConfigurationError(_one_line(exc, origin)) from None
    return _axis_speaks_for_no_local_body(settings, origin)


_READ_BY_NAME = frozenset({"HUB_CONFIG", "HUB_DEBUG"})
"""``HUB_*`` variables the hub reads itself, besides the ones ``*_env`` settings name."""


_SERVICE_LINK = re.compile(r"(tcp|udp|sctp)://[^\s]+:[0-9]+")
"""The value Kubernetes gives ``<SERVICE>_PORT`` in every pod of a namespace (service links,
on by default): a Service named ``hub-api`` makes ``HUB_API_PORT=tcp://10.0.0.7:8443`` — not a
misspelt override, and not to be refused at start-up."""


def _no_misspelt_override(env: Mapping[str, str], data: Mapping[str, Any]) -> None:
    """Refuse ``HUB_<SECTION>_<KEY>`` where ``HUB_<SECTION>__<KEY>`` overrides a setting.

    pydantic-settings reads only the double underscore; with one, the variable is ignored and
    the file's or the default value used in silence (``HUB_LEDGER_URL``: an empty SQLite
    ledger instead of the PostgreSQL one). A variable the hub reads by name is not one
    (``HUB_KEY_PASSPHRASE``, ``HUB_AXIS_SECRET``: the defaults, file values or overrides of
    the ``*_env`` settings; ``HUB_CONFIG``, ``HUB_DEBUG``)."""
    upper = {k.upper(): v for k, v in env.items()}
    keys = {section: getattr(Settings.model_fields[section].annotation, "model_fields", {})
            for section in _SECTIONS}
    named = set(_READ_BY_NAME)
    for section, fields in keys.items():
        in_file = data.get(section)
        for key, info in fields.items():
            if key.endswith("_env"):
                for value in (info.default, isinstance(in_file, dict) and in_file.get(key),
                              upper.get(f"HUB_{section}__{key}".upper())):
                    if isinstance(value, str):
                        named.add(value.upper())
    for name, value in env.items():
        rest = name.upper().removeprefix("HUB_").lower()
        if rest == name.lower() or "__" in rest or name.upper() in named:
            continue
        if _SERVICE_LINK.fullmatch(value or ""):
            continue  # Kubernetes' service link of a Service named hub-api (HUB_API_PORT=tcp://…)
        for section, fields in keys.items():
            key = rest.removeprefix(f"{section}_")
            if key != rest and key in fields:
                raise ConfigurationError(
                    f"environment: {name} overrides nothing (did you mean "
                    f"HUB_{section.upper()}__{key.upper()}?)")


def _axis_speaks_for_no_local_body(settings: Settings, where: str) -> Settings:
    """What the axis connector brings in is published as spoken for by ``[axis] broker_user``
    (``x-hub-original-user``), the account the directory gives every body behind the axis. A
    trusted publisher may speak for any body: that account trusted would let the axis publish
    for the province's own bodies, which docs/AXIS.md promises is refused
    (SENDER_ACCOUNT_MISMATCH). A start-up error, not a hole. (The connector may log in as that
    account itself, as the compose stack's does: the login is then the account, untrusted.)"""
    account = settings.axis.broker_user
    if account and account in settings.broker.trusted_publishers:
        raise ConfigurationError(
            f"{where}: [axis] broker_user {account!r} is in [broker] trusted_publishers: the "
            "national axis could then publish for any body, the province's own included; "
            "remove it from trusted_publishers")
    return settings


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """Return a copy with some section keys replaced (used by tests and the demo), checked
    like the file."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        current: BaseModel = getattr(settings, name)
        try:
            changes[name] = type(current).model_validate({**current.model_dump(), **values})
        except ValidationError as exc:
            raise ConfigurationError(_one_line(exc, f"override [{name}]")) from None
    return _axis_speaks_for_no_local_body(settings.model_copy(update=changes), "overrides")

"""Health checks shared by ``hub doctor`` and the readiness endpoint.

Each check answers in one line: what was checked and, when it fails, what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.config import Settings
from hub.logs import redact_url
from hub.validators.trust import CrlSnapshot, TrustPolicy


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except Exception as exc:  # every failure becomes one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(name, False, text[:300])


def check_broker(settings: Settings) -> str:
    from hub.broker import connect

    conn = connect(settings.broker.url, "edxml-hub doctor")
    conn.close()
    return f"RabbitMQ answers at {redact_url(settings.broker.url)}"


def check_ledger(settings: Settings) -> str:
    from hub.app import open_ledger

    ledger = open_ledger(settings, None)
    try:
        count = len(ledger.events(limit=1))
    finally:
        ledger.close()
    return f"ledger opens at {settings.ledger.url} ({'has events' if count else 'empty'})"


def check_directory(settings: Settings) -> str:
    from hub.app import load_directory

    directory = load_directory(settings)
    return f"{len(directory.entries())} organizations in the directory"


def check_trust(settings: Settings) -> str:
    from hub.trust.store import load_policy

    if not settings.trust.roots:
        raise ValueError("no trust roots configured ([trust] roots): every signature would fail")
    policy = load_policy(settings)
    return f"{len(policy.roots)} specialized root(s) configured; no system trust store"


def check_crls(settings: Settings, now: datetime | None = None,
               snapshot: CrlSnapshot | None = None, policy: TrustPolicy | None = None) -> str:
    """Every configured CA (specialized roots and issuing CAs) has fresh revocation data, by the
    validators' own rule (CrlEntry.is_fresh); the ones without it are named.

    A CA without a usable CRL leaves every certificate it issued undecidable: deliveries signed
    under it wait (INDETERMINATE, retried, then parked), they are never refused for that.
    ``snapshot`` and ``policy``: the running hub's (readiness probe: no I/O). Without them
    (``hub doctor``) the configured roots, files and distribution points are read once.
    """
    from datetime import timedelta

    from hub.trust.revocation import RevocationCache
    from hub.trust.store import load_policy

    at = now or datetime.now(UTC)
    policy = policy or load_policy(settings)
    snap = snapshot if snapshot is not None else RevocationCache(
        settings, certificates=policy.intermediates).refresh()
    freshness = timedelta(seconds=settings.trust.crl_freshness_s)
    problems: list[str] = []
    oldest = 0.0
    for ca in (*policy.roots, *policy.intermediates):
        name = ca.subject.rfc4514_string()
        entry = snap.for_issuer(ca.subject)
        if entry is None:
            problems.append(f"no CRL for {name}")
        elif not entry.is_fresh(at, freshness):
            problems.append(f"stale CRL for {name}")
        else:
            oldest = max(oldest, (at - entry.crl.last_update_utc).total_seconds())
    if problems:
        raise ValueError("revocation cannot be checked (deliveries wait, then are parked): "
                         + "; ".join(problems)[:400])
    return f"{len(policy.roots) + len(policy.intermediates)} CA(s) with fresh CRLs, " \
           f"oldest issued {int(oldest)} s ago"


def check_keystore(settings: Settings, now: datetime | None = None) -> str:
    from hub.app import load_keystore

    ks = load_keystore(settings)
    signer = ks.signer(settings.hub.operator_organ_id)
    if signer is None:
        raise ValueError(f"no key for the hub operator {settings.hub.operator_organ_id}: "
                         "receipts and checkpoints cannot be signed")
    left = signer.cert.not_valid_after_utc - (now or datetime.now(UTC))
    if left.days < 30:
        raise ValueError(f"operator certificate expires in {left.days} days")
    return f"{len(ks)} organization key(s); operator certificate valid {left.days} more days"


def run_checks(settings: Settings) -> list[Check]:
    return [
        _run("broker", lambda: check_broker(settings)),
        _run("ledger", lambda: check_ledger(settings)),
        _run("directory", lambda: check_directory(settings)),
        _run("trust anchors", lambda: check_trust(settings)),
        _run("revocation", lambda: check_crls(settings)),
        _run("keystore", lambda: check_keystore(settings)),
    ]

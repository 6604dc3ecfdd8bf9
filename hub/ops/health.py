"""Health checks shared by ``hub doctor`` and the readiness endpoint.

Each check answers in one line: what was checked and, when it fails, what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hub.config import Settings
from hub.logs import redact_url
from hub.reasons import Reason
from hub.validators.outcome import Indication
from hub.validators.trust import CrlSnapshot, TrustPolicy

if TYPE_CHECKING:
    from hub.edxml.model import Envelope, StatusPacket
    from hub.trust.keystore import OrgSigner
    from hub.validators.outcome import ValidationReport


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
    """The configured ledger opens at the schema this hub reads, read-only.

    Nothing is created, migrated or written (:meth:`hub.ledger.Ledger.open` ``read_only``): the
    systemd unit runs ``hub doctor`` before every start, and a mistyped path must not become an
    empty ledger reported "ok", nor a production database be migrated by a health check.
    ``hub run`` creates and migrates the ledger."""
    from hub.ledger import LedgerOpenError
    from hub.ops.ledger_cli import ledger_url, open_ledger_url

    url = ledger_url(settings)
    try:
        ledger = open_ledger_url(url, blob_dir=settings.path(settings.ledger.blob_dir),
                                 read_only=True)
    except LedgerOpenError as exc:
        text = str(exc)
        if text.startswith("no ledger at"):
            text += " — is the URL right? `hub run` creates the ledger on its first start"
        raise ValueError(text) from None
    try:
        count = len(ledger.events(limit=1))
    finally:
        ledger.close()
    return f"ledger opens at {redact_url(url)} ({'has events' if count else 'empty'})"


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


@dataclass(frozen=True, slots=True)
class KeyJudgement:
    """How receivers judge what one keystore key signs (:func:`judge_keystore`)."""

    organ_id: str
    operator: bool
    """The hub operator's key: it signs every receipt of the hub and every ledger checkpoint."""
    reason: Reason
    """The validators' reason (OK when accepted; SENDER_UNKNOWN: the directory does not list
    the organization)."""
    indication: Indication
    detail: str = ""

    @property
    def unused(self) -> bool:
        """A key of a body the directory does not list: the hub never signs with it (never
        the operator's: that one signs everything)."""
        return self.reason is Reason.SENDER_UNKNOWN and not self.operator

    @property
    def refused(self) -> bool:
        """What the hub would sign with this key is refused (FAILED) or left undecided
        (INDETERMINATE: no fresh revocation data) by receivers."""
        return self.indication is not Indication.PASSED and not self.unused

    def describe(self) -> str:
        who = f"{self.organ_id} (operator)" if self.operator else self.organ_id
        return f"{who}: {self.reason.value}" + (f" ({self.detail[:120]})" if self.detail else "")


def judge_keystore(keystore: Mapping[str, OrgSigner], operator: str,
                   trust: Callable[[Envelope | StatusPacket, datetime], ValidationReport],
                   at: datetime) -> list[KeyJudgement]:
    """Each key of ``keystore`` (the operator's first) judged as receivers judge what it
    signs: a probe status packet from its organization, signed with it — certificate and chain
    file as the hub puts them in KeyInfo — through ``trust`` (the hub's
    :class:`hub.trust.service.TrustService`: the envelope path's validators, with the
    configured roots, CRLs and directory) at ``at``. For ``hub doctor``; ``hub run`` can call
    it with the trust service it built to refuse to start on a refused operator key."""
    from hub.edxml.errors import EnvelopeRefused

    judged: list[KeyJudgement] = []
    for organ_id in sorted(keystore, key=lambda org: (org != operator, org)):
        is_operator = organ_id == operator
        try:
            report = trust(_probe(organ_id, keystore[organ_id], at), at)
        except EnvelopeRefused as exc:  # an organization id no packet can carry
            judged.append(KeyJudgement(organ_id, is_operator, exc.reason, Indication.FAILED))
            continue
        judged.append(KeyJudgement(organ_id, is_operator, report.reason, report.indication,
                                   report.summary().get("detail", "")))
    return judged


def judge_keys_at_start(keystore: Mapping[str, OrgSigner], operator: str,
                        trust: Callable[[Envelope | StatusPacket, datetime], ValidationReport],
                        at: datetime) -> list[KeyJudgement]:
    """``hub run``'s start-up check of its keystore (:func:`judge_keystore`).

    Raises :class:`~hub.errors.ConfigurationError` when receivers refuse what the operator's
    key signs (FAILED: revoked, expired, outside the specialized roots, another body's …): the
    hub would sign every receipt and ledger checkpoint with it, so it stays down as for any
    unusable configuration. Returns the other judgements to name at start — a hosted body's
    refused key (only its "01" receipts are affected; every other body's documents flow), or
    an operator key left undecided for want of fresh revocation data (a CRL outage must not
    keep the hub from restarting; the envelope path retries such verdicts)."""
    from hub.errors import ConfigurationError

    judged = judge_keystore(keystore, operator, trust, at)
    fatal = [j for j in judged if j.operator and j.indication is Indication.FAILED]
    if fatal:
        raise ConfigurationError("receivers would not accept what the hub signs with "
                                 + "; ".join(j.describe() for j in fatal))
    return [j for j in judged if j.refused]


def check_keystore(settings: Settings, now: datetime | None = None) -> str:
    """Every key of the keystore signs what receivers accept, judged as they judge it
    (:func:`judge_keystore`).

    The hub signs receipts and ledger checkpoints with the operator's key, and "01" receipts
    with the keys of the bodies it hosts. A key whose certificate receivers refuse — chain to
    the ``[trust] roots``, validity, revocation, key usage, policy, the directory's leave to
    sign for its organization — fails the check with the validators' reason code
    (CERT_REVOKED, CERT_NOT_YET_VALID, CERT_SELF_SIGNED, SIGNER_NOT_AUTHORIZED_FOR_SENDER,
    CERT_PATH_INVALID …): a hub started with it would sign every receipt and checkpoint with a
    certificate receivers refuse. A key of a body the directory does not list is named, not
    failed: the hub never signs for it. The operator's certificate must also stay valid 30
    more days."""
    from hub.app import load_directory, load_keystore
    from hub.trust.revocation import RevocationCache
    from hub.trust.service import TrustService
    from hub.trust.store import load_policy

    at = now or datetime.now(UTC)
    operator = settings.hub.operator_organ_id
    ks = load_keystore(settings)
    try:
        signer = ks.signer(operator)
        if signer is None:
            raise ValueError(f"no key for the hub operator {operator}: "
                             "receipts and checkpoints cannot be signed")
        policy = load_policy(settings)
        trust = TrustService(policy, load_directory(settings),
                             RevocationCache(settings, certificates=policy.intermediates),
                             fetch_crls=settings.trust.fetch_crls)
        judged = judge_keystore(ks, operator, trust, at)
        refused = [j.describe() for j in judged if j.refused]
        if refused:
            raise ValueError("receivers would not accept what the hub signs with "
                             + "; ".join(refused))
        left = signer.cert.not_valid_after_utc - at
        if left.days < 30:
            raise ValueError(f"operator certificate expires in {left.days} days")
        unused = [j.organ_id for j in judged if j.unused]
        line = (f"{len(ks) - len(unused)} organization key(s) accepted as receivers judge them;"
                f" operator certificate valid {left.days} more days")
        if unused:
            line += f"; not in the directory now (never signed for): {', '.join(unused)}"
        return line
    finally:
        for held in ks.values():
            held.close()


def _probe(organ_id: str, signer: OrgSigner, at: datetime) -> Envelope | StatusPacket:
    """A status packet from ``organ_id`` signed with its key as the hub signs its receipts,
    parsed through the hardened entry point (what a receiver reads)."""
    from hub.edxml import parse_packet
    from hub.edxml.build import build_status
    from hub.edxml.model import Organization, ResponseFor, StatusCode
    from hub.edxml.orgcode import DocumentId
    from hub.trust.signing import sign_xml

    about = ResponseFor(organ_id=organ_id, code="0/DOCTOR", promulgation_date=at.date(),
                        document_id=str(DocumentId(organ_id, at.date(), "0", "DOCTOR")))
    unsigned = build_status(response_for=about, sender=Organization(organ_id),
                            status_code=StatusCode.ARRIVED, timestamp=at,
                            description="hub doctor: kiểm tra khóa ký / signing key check")
    return parse_packet(sign_xml(unsigned, signer))


def run_checks(settings: Settings) -> list[Check]:
    return [
        _run("broker", lambda: check_broker(settings)),
        _run("ledger", lambda: check_ledger(settings)),
        _run("directory", lambda: check_directory(settings)),
        _run("trust anchors", lambda: check_trust(settings)),
        _run("revocation", lambda: check_crls(settings)),
        _run("keystore", lambda: check_keystore(settings)),
    ]

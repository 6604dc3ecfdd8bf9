"""Validation outcomes: immutable facts with stable reason codes; verdicts are derived.

Modelled on ETSI EN 319 102-1 (as pyHanko's ``sign/ades/report.py`` does): each check ends in
one of three indications — PASSED, FAILED, or INDETERMINATE (cannot decide *now*, e.g. no fresh
revocation data; the pipeline retries it). A :class:`ValidationReport` stores only the per-check
outcomes; :attr:`ValidationReport.accepted` and friends are properties over them.

Inside the validators, :class:`ValidationFailure` carries a reason to the one adapter in
:mod:`hub.validators` that turns it into an outcome; it never leaves the package.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hub.reasons import Reason

if TYPE_CHECKING:
    from hub.validators.ocsp import OcspQuery

AXIS_LEGACY_CHECK = "axis_legacy_policy"
"""Name of the check that records a waived legacy envelope signature (national-axis interop)."""


class Indication(enum.StrEnum):
    """ETSI EN 319 102-1 §5.1.3 main indications."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    INDETERMINATE = "INDETERMINATE"


def _frozen(evidence: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(evidence or {}))


_new = object.__new__
_set = object.__setattr__


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The result of one check (``xmldsig``, ``trust``, ``revocation``, ``signer``, ``pdf``)."""

    check: str
    indication: Indication
    reason: Reason
    """:attr:`Reason.OK` when passed; the stable code otherwise."""
    evidence: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    """What the decision rests on: fingerprints, digests, names, a short detail. Never a key
    or a document body."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @classmethod
    def passed(cls, check: str, evidence: Mapping[str, str] | None = None) -> CheckOutcome:
        """``cls(check, PASSED, OK, evidence)``, its fields set directly (what the generated
        ``__init__`` and :meth:`__post_init__` set; a test keeps the two equal): the hot
        path, five per packet."""
        outcome = _new(cls)
        _set(outcome, "check", check)
        _set(outcome, "indication", Indication.PASSED)
        _set(outcome, "reason", Reason.OK)
        _set(outcome, "evidence", _frozen(evidence))
        return outcome

    @property
    def vi(self) -> str:
        return self.reason.vi

    @property
    def en(self) -> str:
        return self.reason.en

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "indication": self.indication.value,
            "reason": self.reason.value,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class SignerEvidence:
    """Who signed the packet (the XMLDSig signer certificate), for the ledger and receipts."""

    subject: str
    """RFC 4514 subject of the signer certificate."""
    fingerprint: str
    """SHA-256 of the certificate DER (hex)."""
    issuer: str
    serial: str
    """Serial number (hex)."""
    uid: str | None = None
    """The subject's UID attribute (0.9.2342.19200300.100.1.1), which the directory matches."""
    not_before: datetime | None = None
    not_after: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "fingerprint": self.fingerprint,
            "issuer": self.issuer,
            "serial": self.serial,
            "uid": self.uid,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every check made on one packet. Verdicts are properties, never stored flags."""

    checks: tuple[CheckOutcome, ...]
    signer: SignerEvidence | None
    validated_at: datetime
    """The time the checks were made *for*: the hub's receipt time (the XML signature carries no
    trusted time, so certificate validity is judged at receipt)."""
    ocsp_queries: tuple[OcspQuery, ...] = field(default=(), compare=False)
    """Certificates whose revocation status was undecided and that name an OCSP responder:
    what :meth:`hub.trust.revocation.RevocationCache.refresh` should ask before judging again. A hint
    for the caller, not part of the record (:meth:`to_dict` leaves it out)."""

    @property
    def waiver(self) -> CheckOutcome | None:
        """The passed ``axis_legacy_policy`` check when the packet was accepted under the
        national-axis interop policy (its evidence says what was waived and why), else None.

        The pipeline logs ``legacy_envelope_signature_accepted`` from it; the ledger records
        it with the report."""
        return next(
            (c for c in self.checks
             if c.check == AXIS_LEGACY_CHECK and c.indication is Indication.PASSED),
            None,
        )

    @property
    def accepted(self) -> bool:
        """Every check ran and passed."""
        return bool(self.checks) and all(c.indication is Indication.PASSED for c in self.checks)

    @property
    def indeterminate(self) -> bool:
        """Nothing failed, but something could not be decided yet (retry later)."""
        undecided = False
        for check in self.checks:  # one pass, no generators: asked of every packet
            if check.indication is Indication.FAILED:
                return False
            if check.indication is Indication.INDETERMINATE:
                undecided = True
        return undecided

    @property
    def indication(self) -> Indication:
        if self.accepted:
            return Indication.PASSED
        return Indication.INDETERMINATE if self.indeterminate else Indication.FAILED

    @property
    def first_problem(self) -> CheckOutcome | None:
        """The first failed check, else the first indeterminate one."""
        for wanted in (Indication.FAILED, Indication.INDETERMINATE):
            for check in self.checks:
                if check.indication is wanted:
                    return check
        return None

    @property
    def reason(self) -> Reason:
        """The first failure's reason (or the first indeterminate one), else OK."""
        problem = self.first_problem
        if problem is not None:
            return problem.reason
        return Reason.OK if self.checks else Reason.INTERNAL_ERROR

    def summary(self) -> dict[str, str]:
        """A short flat dict for log events and receipts."""
        out = {"indication": self.indication.value, "reason": self.reason.value}
        if self.signer is not None:
            out["signer_fingerprint"] = self.signer.fingerprint
            if self.signer.uid:
                out["signer_uid"] = self.signer.uid
        problem = self.first_problem
        if problem is not None:
            out["check"] = problem.check
            detail = problem.evidence.get("detail")
            if detail:
                out["detail"] = detail
        waiver = self.waiver
        if waiver is not None:
            out["waived"] = waiver.evidence.get("waived_reason", "")
        return out

    def describe(self) -> str:
        """A few lines for people (operators, the CLI), Vietnamese then English."""
        reason = self.reason
        lines = [f"{self.indication.value}: {reason.value} — {reason.vi} / {reason.en}"]
        if self.signer is not None:
            lines.append(f"  signer: {self.signer.subject} (sha256 {self.signer.fingerprint})")
        for check in self.checks:
            detail = check.evidence.get("detail", "")
            lines.append(
                f"  [{check.indication.value:<13}] {check.check}: {check.reason.value}"
                + (f" ({detail})" if detail else "")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the ledger."""
        return {
            "indication": self.indication.value,
            "reason": self.reason.value,
            "validated_at": self.validated_at.isoformat(),
            "signer": self.signer.to_dict() if self.signer else None,
            "checks": [c.to_dict() for c in self.checks],
        }


class ValidationFailure(Exception):
    """Raised inside a validator; mapped to a :class:`CheckOutcome` in one place.

    Never kept beyond the call that raised it (a cache keeps a :class:`Refusal`): an exception
    holds its traceback, and through it every frame's locals — PDFs, signature objects.
    """

    def __init__(
        self,
        reason: Reason,
        detail: str = "",
        *,
        indication: Indication = Indication.FAILED,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.indication = indication
        self.evidence = dict(evidence or {})

    def outcome(self, check: str) -> CheckOutcome:
        evidence = dict(self.evidence)
        if self.detail:
            evidence["detail"] = self.detail
        return CheckOutcome(check, self.indication, self.reason, evidence)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A :class:`ValidationFailure` remembered as a value (what caches keep: no exception, no
    traceback, no frame). :meth:`failure` raises afresh each time."""

    reason: Reason
    detail: str = ""
    indication: Indication = Indication.FAILED
    evidence: Mapping[str, str] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @classmethod
    def of(cls, failure: ValidationFailure) -> Refusal:
        return cls(failure.reason, failure.detail, failure.indication, failure.evidence)

    def failure(self) -> ValidationFailure:
        """A new exception with this refusal's reason, detail and evidence."""
        return ValidationFailure(self.reason, self.detail, indication=self.indication,
                                 evidence=self.evidence)

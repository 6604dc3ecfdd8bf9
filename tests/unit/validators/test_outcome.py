"""Validation reports: facts stored, verdicts derived."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from hub.reasons import Reason
from hub.validators import CheckOutcome, Indication, SignerEvidence, ValidationReport
from hub.validators.outcome import ValidationFailure

AT = dt.datetime(2026, 3, 2, 8, 5, tzinfo=dt.UTC)
SIGNER = SignerEvidence(subject="UID=000.00.01.H27,CN=VP,C=VN", fingerprint="ab" * 32,
                        issuer="CN=CA", serial="1f", uid="000.00.01.H27")


def _report(*checks: CheckOutcome) -> ValidationReport:
    return ValidationReport(checks=checks, signer=SIGNER, validated_at=AT)


def test_a_report_where_every_check_passed_is_accepted() -> None:
    report = _report(CheckOutcome.passed("xmldsig"), CheckOutcome.passed("trust"))
    assert report.accepted
    assert not report.indeterminate
    assert report.reason is Reason.OK
    assert report.indication is Indication.PASSED


def test_a_report_with_no_checks_is_not_accepted() -> None:
    report = _report()
    assert not report.accepted
    assert report.reason is Reason.INTERNAL_ERROR


def test_the_first_failure_is_the_reason_even_after_an_indeterminate_check() -> None:
    report = _report(
        CheckOutcome.passed("xmldsig"),
        ValidationFailure(Reason.REVOCATION_UNAVAILABLE,
                          indication=Indication.INDETERMINATE).outcome("revocation"),
        ValidationFailure(Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER, "x").outcome("signer"),
    )
    assert not report.accepted
    assert not report.indeterminate
    assert report.reason is Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER


def test_an_undecided_check_without_failure_makes_the_report_indeterminate() -> None:
    report = _report(
        CheckOutcome.passed("xmldsig"),
        ValidationFailure(Reason.REVOCATION_UNAVAILABLE, "no CRL",
                          indication=Indication.INDETERMINATE).outcome("revocation"),
    )
    assert report.indeterminate
    assert report.reason is Reason.REVOCATION_UNAVAILABLE
    assert report.summary()["detail"] == "no CRL"


def test_outcomes_are_immutable_and_texts_come_from_the_catalogue() -> None:
    outcome = ValidationFailure(Reason.CERT_EXPIRED, "expired").outcome("trust")
    assert outcome.vi == Reason.CERT_EXPIRED.vi
    assert outcome.en == "The certificate has expired"
    with pytest.raises(TypeError):
        outcome.evidence["detail"] = "changed"  # type: ignore[index]


def test_to_dict_is_json_and_describe_names_every_check() -> None:
    report = _report(CheckOutcome.passed("xmldsig", {"certificate": "ab"}),
                     ValidationFailure(Reason.CERT_REVOKED, "serial 1f").outcome("revocation"))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["reason"] == "CERT_REVOKED"
    assert data["signer"]["uid"] == "000.00.01.H27"
    assert [c["check"] for c in data["checks"]] == ["xmldsig", "revocation"]
    text = report.describe()
    assert "CERT_REVOKED" in text
    assert "Chứng thư số đã bị thu hồi" in text
    assert "revocation" in text


@pytest.mark.parametrize("evidence", [None, {}, {"path": "a > b", "root": "CN=Root"}])
def test_a_passed_outcome_is_the_one_the_constructor_builds(
    evidence: dict[str, str] | None,
) -> None:
    given = None if evidence is None else dict(evidence)
    fast = CheckOutcome.passed("trust", given)
    built = CheckOutcome("trust", Indication.PASSED, Reason.OK, given or {})
    assert fast == built
    assert {s: getattr(fast, s) for s in CheckOutcome.__slots__} == {
        s: getattr(built, s) for s in CheckOutcome.__slots__}
    assert type(fast.evidence) is type(built.evidence)
    if given is not None:  # the outcome holds a copy: the caller's dict may change later
        given["late"] = "x"
        assert "late" not in fast.evidence
    with pytest.raises(AttributeError):
        fast.check = "other"  # type: ignore[misc]


def test_indeterminate_is_nothing_failed_and_something_undecided_for_every_combination(
) -> None:
    for n in range(4):
        for indications in itertools.product(Indication, repeat=n):
            report = _report(*(CheckOutcome(f"c{i}", ind, Reason.OK if ind is Indication.PASSED
                                            else Reason.REVOCATION_UNAVAILABLE)
                               for i, ind in enumerate(indications)))
            assert report.indeterminate is (
                Indication.FAILED not in indications
                and Indication.INDETERMINATE in indications), indications

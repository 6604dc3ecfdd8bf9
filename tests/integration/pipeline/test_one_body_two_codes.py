"""One body, two codes: the pipeline compares organizations as bodies, never as text.

A body of the directory holds its legacy code (``000.00.02.H27``) and its Decision 20/2020
identifier (``H27.02``); routing already treats them as one. Found by a review: the pipeline
compared them as text wherever it checked who is who. A recipient answering under the code it
was not addressed by was refused STATUS_REPORTER_NOT_RECIPIENT; a status whose ``ResponseFor``
named the sender by its other code was an orphan; the original sender recalling under its other
code was refused NOT_ORIGINAL_SENDER; an envelope refused from its own account under its other
code was answered about its bytes (an ``02`` no QCVN 102 reader can parse) instead of about the
document. And the account check read the directory without a time: a code that passes to another
body on 1 July 2025 (the directory holds both periods) was checked against its next holder.

Real pipeline, validators, receipts and ledger (SQLite and PostgreSQL), no broker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.resources
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.config import with_overrides
from hub.consumers.plan import BatchPlan
from hub.directory import Directory
from hub.edxml import Organization, parse_envelope, parse_packet
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType, StatusPacket
from hub.messages import Delivery, Headers
from hub.testing.pki import PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    _KEYS,
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    hub_in_process,
    hub_settings,
)

FINANCE_NEW, HOME_AFFAIRS_NEW = "H27.03", "H27.02"
"""The Decision 20/2020 identifiers of the same two bodies."""


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "twocodes") as built:
        yield built


@pytest.fixture
def keystore(pipeline_pki: PkiPaths) -> Keystore:
    return Keystore.load(pipeline_pki.keystore)


class _Batches:
    """One batch at a time through the pipeline and the ledger commit, under a broker login."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.tag = 0

    def __call__(self, body: bytes, *, status: bool = False, user: str = "guest") -> BatchPlan:
        self.tag += 1
        plan = self.hub.pipeline.process_batch([Delivery(
            self.tag, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound", False, {},
            f"m{self.tag}", user, None, 0)])
        self.hub.write_ledger(plan)
        return plan


def _signer(keystore: Keystore, organization: str) -> OrgSigner:
    signer = keystore.signer(organization)
    assert signer is not None, organization
    return signer


def _envelope(keystore: Keystore, sender: str, to: tuple[str, ...], number: str, *,
              signed_by: str, **kw: object) -> bytes:
    header = sample_header(sender, to, number=number, promulgation_date=NOW.date())
    return sign_xml(build_envelope(header, **kw), _signer(keystore, signed_by))  # type: ignore[arg-type]


def _status(keystore: Keystore, document: bytes, reporter: str, *, signed_by: str,
            response_organ: str | None = None, code: str = "03") -> bytes:
    about = response_for(parse_envelope(document))
    if response_organ is not None:
        about = dataclasses.replace(about, organ_id=response_organ)
    return sign_xml(build_status(response_for=about, sender=Organization(reporter),
                                 status_code=code, timestamp=NOW, description="Đã vào sổ"),
                    _signer(keystore, signed_by))


def _outcomes(plan: BatchPlan) -> list[str]:
    return [f"{d.action.value}:{d.reason.value}" for _, d in plan.outcomes]


@pytest.mark.parametrize(("addressed_as", "answers_as"), [
    pytest.param(HOME_AFFAIRS, HOME_AFFAIRS_NEW, id="addressed-legacy-answers-decision-20"),
    pytest.param(HOME_AFFAIRS_NEW, HOME_AFFAIRS_NEW, id="addressed-and-answers-decision-20"),
])
def test_a_recipient_answering_under_either_of_its_codes_has_its_status_forwarded(
    hub: Hub, keystore: Keystore, addressed_as: str, answers_as: str
) -> None:
    batch = _Batches(hub)
    # Given a document from Finance to Home Affairs, written in the To as ``addressed_as``
    document = _envelope(keystore, FINANCE, (addressed_as,), "601", signed_by=FINANCE)
    assert _outcomes(batch(document)) == ["deliver:OK"]
    # When Home Affairs answers with its seal, its From written as ``answers_as``
    plan = batch(_status(keystore, document, answers_as, signed_by=HOME_AFFAIRS), status=True)
    # Then the status is forwarded to Finance and countersigned
    assert _outcomes(plan) == ["deliver:OK"]
    assert [o.routing_key for o in plan.first] == [f"status.{FINANCE}"]
    assert [o.headers[Headers.RECEIPT] for o in plan.receipts] == ["countersigned"]


def test_a_status_naming_the_sender_by_its_other_code_finds_its_document(
    hub: Hub, keystore: Keystore
) -> None:
    batch = _Batches(hub)
    # Given a document whose From is Finance's legacy code
    document = _envelope(keystore, FINANCE, (HOME_AFFAIRS,), "602", signed_by=FINANCE)
    batch(document)
    # When the recipient's status names the sender in ResponseFor/OrganId by its other code
    status = _status(keystore, document, HOME_AFFAIRS, signed_by=HOME_AFFAIRS,
                     response_organ=FINANCE_NEW)
    packet = parse_packet(status)
    assert isinstance(packet, StatusPacket)
    assert packet.response_for.organ_id == FINANCE_NEW
    plan = batch(status, status=True)
    # Then the document is found (no STATUS_ORPHAN) and the status goes back to its sender
    assert _outcomes(plan) == ["deliver:OK"]
    assert [o.headers[Headers.ORIGINAL] for o in plan.first] == [parse_envelope(document).digest]


def test_the_original_sender_may_recall_under_its_other_code(
    hub: Hub, keystore: Keystore
) -> None:
    batch = _Batches(hub)
    original_header = sample_header(FINANCE, (HOME_AFFAIRS,), number="603",
                                    promulgation_date=NOW.date())
    original = sign_xml(build_envelope(original_header), _signer(keystore, FINANCE))
    batch(original)
    # When Finance recalls it, its From written as its Decision 20/2020 identifier
    recall = _envelope(keystore, FINANCE_NEW, (HOME_AFFAIRS,), "604", signed_by=FINANCE,
                       trace=sample_trace(FINANCE_NEW, NOW, kind=BusinessDocType.REVOCATION,
                                          reason="Sai sót",
                                          replaced_document_id=original_header.document_id))
    plan = batch(recall)
    # Then the recall is accepted, delivered and linked to the original (not NOT_ORIGINAL_SENDER)
    assert _outcomes(plan) == ["deliver:OK"]
    assert plan.documents[0].links_to == parse_envelope(original).digest


def test_an_envelope_refused_from_its_own_account_under_its_other_code_is_answered_about_it(
    hub: Hub, keystore: Keystore
) -> None:
    batch = _Batches(hub)
    # Given Finance's own broker account publishing an envelope From H27.03 (its other code)
    # to a body the directory does not know
    header = sample_header(FINANCE_NEW, ("H27.999",), number="605", promulgation_date=NOW.date())
    body = sign_xml(build_envelope(header), _signer(keystore, FINANCE))
    finance = hub.directory.find(FINANCE)
    assert finance is not None
    plan = batch(body, user=finance.broker_user)
    assert _outcomes(plan) == ["dead_letter:RECIPIENT_UNKNOWN"]
    # Then its 02 goes to Finance about the document: a status packet naming its DocumentId,
    # as for a From written in the legacy code (not one about the bytes, unreadable by QCVN)
    (receipt,) = plan.receipts
    assert receipt.routing_key == f"status.{FINANCE}"
    assert receipt.headers[Headers.ORIGINAL] == parse_envelope(body).digest
    answer = parse_packet(receipt.body)
    assert isinstance(answer, StatusPacket)
    assert answer.status_code == "02"
    assert answer.response_for.document_id == header.document_id


# -- a code that passes from one body to another ------------------------------------------------

MOVED_AT = dt.datetime(2025, 6, 28, 8, 0, tzinfo=dt.UTC)
"""When the second PKI is issued: its CRLs are fresh on both sides of 1 July 2025."""
BEFORE = dt.datetime(2025, 6, 30, 3, 0, tzinfo=dt.UTC)  # 10:00 on 30 June, Vietnam time
AFTER = dt.datetime(2025, 7, 2, 3, 0, tzinfo=dt.UTC)

MOVED_CODE = """
[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã A"
parent = "000.00.00.H27"
valid_from = 2016-04-01
valid_to = 2025-06-30
broker_user = "xa-a"
reach = "direct"
  [[org.signer]]
  uid = "H27.103"
  role = "organization"

[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã B (holds the code from 2025-07-01)"
parent = "000.00.00.H27"
valid_from = 2025-07-01
broker_user = "xa-b"
reach = "direct"
  [[org.signer]]
  uid = "H27.103-B"
  role = "organization"
"""


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PkiPaths]:
    """The sample directory plus a code held by one commune until 30 June 2025 and by
    another from 1 July, and a PKI issued for it."""
    base = tmp_path_factory.mktemp("moved-code")
    sample = (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text(
        "utf-8")
    path = base / "directory.toml"
    path.write_text(sample + MOVED_CODE, encoding="utf-8")
    return path, init_pki(base / "pki", Directory.load(path), now=MOVED_AT, keys=_KEYS)


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_code_that_passes_to_another_body_speaks_for_its_holder_of_the_day(
    moved: tuple[Path, PkiPaths], ledger_url: str, tmp_path: Path
) -> None:
    path, pki = moved
    clock = _Clock(BEFORE)
    settings = with_overrides(
        hub_settings(pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/", "moved",
                     ledger_url=ledger_url), hub={"directory": str(path)})
    hub = build_hub(settings, clock=clock)
    try:
        batch = _Batches(hub)
        keystore = Keystore.load(pki.keystore)
        header = sample_header("H27.103", (HOME_AFFAIRS,), number="606",
                               promulgation_date=BEFORE.date())
        body = sign_xml(build_envelope(header), _signer(keystore, "H27.103"))
        # Given 30 June 2025: the code is commune A's (the directory already holds B's period)
        # When commune B's account publishes under it, it is refused
        assert _outcomes(batch(body, user="xa-b")) == ["dead_letter:SENDER_ACCOUNT_MISMATCH"]
        # and commune A's own account is accepted: the code is A's on that day
        assert _outcomes(batch(body, user="xa-a")) == ["deliver:OK"]
        # Then from 1 July, A's account no longer speaks for the code
        clock.now = AFTER
        later = sign_xml(build_envelope(sample_header(
            "H27.103", (HOME_AFFAIRS,), number="607", promulgation_date=AFTER.date())),
            _signer(keystore, "H27.103"))
        assert _outcomes(batch(later, user="xa-a")) == ["dead_letter:SENDER_ACCOUNT_MISMATCH"]
    finally:
        hub.close()

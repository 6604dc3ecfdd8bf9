"""A status says what its party may say (QCVN 102, DOMAIN.md §4): the recipient reports 01-06,
15 and 16, the sender recalls (13). The hub countersigns only those — it puts the operator's
signature on nothing else — and a status code is two ASCII digits.

Found by a review: the hub countersigned "06 Hoàn thành" from the document's own sender, "13"
(recall) from a recipient, and "٠٦" / "０３" (digits of other scripts, which Python's ``\\d``
takes) as status codes. The real hub (pipeline, validators, receipts, SQLite ledger) runs in
process behind the in-memory broker, each packet published under its agency's account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.edxml import EnvelopeRefused, parse_envelope
from hub.edxml.build import build_envelope, build_status, response_for, sample_header
from hub.edxml.model import Organization
from hub.edxml.orgcode import OrgCode
from hub.messages import Headers, Outgoing
from hub.reasons import Reason
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.topology import status_key
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, NOW, hub_settings, make_pki

SENDER, RECIPIENT = HOME_AFFAIRS, FINANCE


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("status-roles-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


@pytest.fixture
def hub(pki: PkiPaths, tmp_path: Path) -> Iterator[Hub]:
    built = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "roles"),
                      clock=lambda: NOW)
    yield built
    built.close()


def _publish(hub: Hub, body: bytes, user: str) -> list[Outgoing]:
    stop = threading.Event()
    conn = FakeConnection(on_idle=lambda c: stop.set() if c.channel.acked_tags() else None)
    conn.put(body, message_id="m", user_id=user)
    IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline, hub.ledger,
                   stop=stop, connector=lambda _u, _n: conn).run()
    assert conn.channel.acked_tags() == {1}
    return conn.published


def _signer(keystore: Keystore, organization: str) -> OrgSigner:
    signer = keystore.signer(organization)
    assert signer is not None
    return signer


def _document(hub: Hub, keystore: Keystore) -> bytes:
    """A document from SENDER to RECIPIENT only, delivered."""
    header = sample_header(SENDER, (RECIPIENT,), number="501", promulgation_date=NOW.date())
    body = sign_xml(build_envelope(header), _signer(keystore, SENDER))
    _publish(hub, body, SENDER)
    return body


def _status(keystore: Keystore, document: bytes, reporter: str, code: str) -> bytes:
    return sign_xml(build_status(response_for=response_for(parse_envelope(document)),
                                 sender=Organization(reporter), status_code=code,
                                 timestamp=NOW, description=f"status {code}"),
                    _signer(keystore, reporter))


def _receipts(published: list[Outgoing]) -> list[str]:
    return sorted(str(o.headers[Headers.RECEIPT]) for o in published
                  if o.headers.get(Headers.RECEIPT))


@pytest.mark.parametrize(("reporter", "code", "reason"), [
    pytest.param(SENDER, "06", Reason.STATUS_REPORTER_NOT_RECIPIENT, id="finished, from the sender"),
    pytest.param(SENDER, "01", Reason.STATUS_REPORTER_NOT_RECIPIENT, id="arrived, from the sender"),
    pytest.param(SENDER, "15", Reason.STATUS_REPORTER_NOT_RECIPIENT,
                 id="agreeing to a recall, from the sender"),
    pytest.param(RECIPIENT, "13", Reason.NOT_ORIGINAL_SENDER, id="a recall, from a recipient"),
])
def test_a_status_its_party_may_not_send_is_refused_and_never_countersigned(
    hub: Hub, keystore: Keystore, reporter: str, code: str, reason: Reason,
) -> None:
    status = _status(keystore, _document(hub, keystore), reporter, code)
    published = _publish(hub, status, reporter)
    assert _receipts(published) == ["rejected"]
    (refusal,) = [o for o in published if o.headers.get(Headers.RECEIPT)]
    assert refusal.headers[Headers.REASON] == reason.value
    assert refusal.routing_key == status_key(reporter)
    # And the status itself reaches no party: only the dead-letter queue
    assert all(o.routing_key in (reason.value, status_key(reporter)) for o in published)


@pytest.mark.parametrize(("reporter", "code", "to"), [
    pytest.param(RECIPIENT, "03", SENDER, id="accepted, from the recipient"),
    pytest.param(RECIPIENT, "06", SENDER, id="finished, from the recipient"),
    pytest.param(SENDER, "13", RECIPIENT, id="a recall, from the sender"),
    pytest.param(RECIPIENT, "09", SENDER, id="an unused code, passed through"),
])
def test_a_status_its_party_may_send_is_forwarded_and_countersigned(
    hub: Hub, keystore: Keystore, reporter: str, code: str, to: str,
) -> None:
    status = _status(keystore, _document(hub, keystore), reporter, code)
    published = _publish(hub, status, reporter)
    forwarded = [o for o in published if o.body == status]
    assert [o.routing_key for o in forwarded] == [status_key(to)]
    assert _receipts(published) == ["countersigned"]


@pytest.mark.parametrize("code", [
    pytest.param("\u0660\u0666", id="Arabic-Indic 06"),
    pytest.param("\uff10\uff13", id="fullwidth 03"),
])
def test_a_status_code_in_digits_of_another_script_is_refused(
    hub: Hub, keystore: Keystore, code: str,
) -> None:
    status = _status(keystore, _document(hub, keystore), RECIPIENT, code)
    published = _publish(hub, status, RECIPIENT)
    assert _receipts(published) == ["rejected"]
    (refusal,) = [o for o in published if o.headers.get(Headers.RECEIPT)]
    assert refusal.headers[Headers.REASON] == Reason.STATUS_CODE_INVALID.value


@pytest.mark.parametrize("text", [
    "\u0660\u0660\u0660.00.01.H27",  # the first group in Arabic-Indic digits
    "000.00.01.H\uff12\uff17",  # fullwidth 27
    "H\uff12\uff17.01",
])
def test_an_organization_code_in_digits_of_another_script_is_refused(text: str) -> None:
    with pytest.raises(EnvelopeRefused):
        OrgCode.parse(text)

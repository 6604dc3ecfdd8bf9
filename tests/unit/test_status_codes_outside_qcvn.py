"""A status code outside QCVN 102's range is refused, never forwarded or countersigned.

QCVN 102 numbers its statuses 01 to 16 (DOMAIN.md §3: 01-06, 13, 15 and 16 in use; 07-12 and 14
unused in the samples, logged and passed through). Found by a review: the parser took any two
ASCII digits, so a recipient's "00", "42" or "99" — a code the standard does not define, which
no reader can act on — was forwarded to the sender with the hub operator's countersignature.
Now such a status is refused at the hub's intake with STATUS_CODE_INVALID and a signed 02 to
its reporter; the parser still reads any two digits (receipts countersigned before stay readable).

The real hub (pipeline, validators, receipts, SQLite ledger) runs in process behind the
in-memory broker, each packet published under its agency's account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.edxml import EnvelopeRefused, parse_envelope, parse_status
from hub.edxml.build import build_envelope, build_status, response_for, sample_header
from hub.edxml.model import Organization
from hub.messages import Headers, Outgoing
from hub.reasons import Reason
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.topology import status_key
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, NOW, hub_settings, make_pki

SENDER, RECIPIENT = HOME_AFFAIRS, FINANCE
OUTSIDE = ["00", "17", "42", "99"]
"""Two ASCII digits, but no QCVN 102 status."""
INSIDE = ["01", "02", "03", "04", "05", "06", "07", "12", "13", "14", "15", "16"]


def _unsigned_status(code: str) -> bytes:
    header = sample_header(SENDER, (RECIPIENT,), number="601", promulgation_date=NOW.date())
    return build_status(response_for=response_for(header), sender=Organization(RECIPIENT),
                        status_code=code, timestamp=NOW, description=f"status {code}")


@pytest.mark.parametrize("code", OUTSIDE)
def test_the_parser_still_reads_any_two_digits_so_earlier_countersignatures_verify(
        code: str) -> None:
    # The hub countersigned such codes before it refused them at its intake (a review of the
    # fix): receipts carrying them are in senders' hands and ledgers, and `hub receipt verify`
    # and the console read them with this parser. The intake refuses them (below).
    assert parse_status(_unsigned_status(code)).status_code == code


def test_the_parser_refuses_a_status_code_that_is_not_two_digits() -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_status(_unsigned_status("1"))
    assert caught.value.reason is Reason.STATUS_CODE_INVALID


@pytest.mark.parametrize("code", INSIDE)
def test_the_parser_reads_every_status_code_of_qcvn_102s_range(code: str) -> None:
    assert parse_status(_unsigned_status(code)).status_code == code


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("status-codes-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


@pytest.fixture
def hub(pki: PkiPaths, tmp_path: Path) -> Iterator[Hub]:
    built = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "codes"),
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


@pytest.mark.parametrize("code", OUTSIDE)
def test_a_recipients_status_with_a_code_outside_qcvn_102_is_refused_not_countersigned(
    hub: Hub, keystore: Keystore, code: str,
) -> None:
    # Given a document from SENDER to RECIPIENT, delivered
    header = sample_header(SENDER, (RECIPIENT,), number="602", promulgation_date=NOW.date())
    document = sign_xml(build_envelope(header), _signer(keystore, SENDER))
    _publish(hub, document, SENDER)
    # When the recipient answers with a code the standard does not define
    status = sign_xml(build_status(response_for=response_for(parse_envelope(document)),
                                   sender=Organization(RECIPIENT), status_code=code,
                                   timestamp=NOW, description=f"status {code}"),
                      _signer(keystore, RECIPIENT))
    published = _publish(hub, status, RECIPIENT)
    # Then the recipient gets the hub's signed refusal, with the reason
    receipts = [o for o in published if o.headers.get(Headers.RECEIPT)]
    assert [str(o.headers[Headers.RECEIPT]) for o in receipts] == ["rejected"]
    assert receipts[0].headers[Headers.REASON] == Reason.STATUS_CODE_INVALID.value
    assert receipts[0].routing_key == status_key(RECIPIENT)
    # and the sender gets nothing: neither the status nor a countersignature
    assert all(o.routing_key != status_key(SENDER) for o in published)

"""The axis client against the simulator process (HTTP, no broker): the answers and failures the
connector relies on — duplicate answers, lost answers, refused credentials, outages, timeouts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from hub.axis.client import AxisClient, AxisUnauthorized, AxisUnavailable
from hub.axis.protocol import MessageType, StatusWord, Verdict, judge_send
from hub.edxml.build import build_envelope, sample_header
from hub.testing.axis_sim import AxisSimulator
from tests.integration.axis.harness import SECRET, SYSTEM_ID

PROVINCE, MINISTRY = "000.00.00.H27", "000.00.00.G09"


def _letter(number: str) -> bytes:
    return build_envelope(sample_header(PROVINCE, (MINISTRY,), number=number, subject="s",
                                        promulgation_date=dt.date(2025, 3, 3)))


@pytest.fixture
def client(sim: AxisSimulator) -> Iterator[AxisClient]:
    # Generous: a busy machine may take over a second to answer; the timeout test below has
    # an impatient client of its own.
    c = AxisClient(sim.url, SYSTEM_ID, SECRET, verify=False, timeout_s=10.0)
    yield c
    c.close()


def test_the_same_bytes_sent_again_get_the_duplicate_answer_with_the_first_document_id(
    sim: AxisSimulator, client: AxisClient
) -> None:
    raw = _letter("1")
    first = client.send(raw, sender=PROVINCE, message_type=MessageType.EDOC)
    again = client.send(raw, sender=PROVINCE, message_type=MessageType.EDOC)
    assert judge_send(first) is Verdict.ACCEPTED
    assert judge_send(again) is Verdict.DUPLICATE
    assert again.doc_id == first.doc_id
    assert [d["id"] for d in sim.outside()] == [first.doc_id]
    assert sim.document(first.doc_id) == raw


def test_a_send_stored_but_answered_503_is_recognised_on_the_retry(
    sim: AxisSimulator, client: AxisClient
) -> None:
    sim.faults(accept_then_fail_rate=1.0)
    raw = _letter("2")
    lost = client.send(raw, sender=PROVINCE, message_type=MessageType.EDOC)
    assert judge_send(lost) is Verdict.TRANSIENT
    retry = client.send(raw, sender=PROVINCE, message_type=MessageType.EDOC)
    assert judge_send(retry) is Verdict.DUPLICATE
    assert sim.stats()["stored_twice"] == 0
    assert len(sim.outside()) == 1


def test_a_wrong_secret_is_refused_as_credentials_never_as_a_document(sim: AxisSimulator) -> None:
    wrong = AxisClient(sim.url, SYSTEM_ID, "not-the-secret", verify=False, timeout_s=10.0)
    answer = wrong.send(_letter("3"), sender=PROVINCE, message_type=MessageType.EDOC)
    assert judge_send(answer) is Verdict.UNAUTHORIZED
    with pytest.raises(AxisUnauthorized):
        wrong.received(10)
    wrong.close()
    assert sim.outside() == []


def test_outages_timeouts_and_a_stopped_axis_are_transient_failures_of_their_kind(
    sim: AxisSimulator, client: AxisClient
) -> None:
    sim.faults(outage_s=60, outage_mode="drop")
    with pytest.raises(AxisUnavailable) as dropped:
        client.received(10)
    assert dropped.value.kind == "connection"
    sim.faults(outage_s=60, outage_mode="503")
    with pytest.raises(AxisUnavailable) as unavailable:
        client.received(10)
    assert unavailable.value.kind == "http_503"
    sim.faults(timeout_rate=1.0, hang_s=2.0)
    impatient = AxisClient(sim.url, SYSTEM_ID, SECRET, verify=False, timeout_s=1.0)
    try:
        with pytest.raises(AxisUnavailable) as slow:
            impatient.received(10)
    finally:
        impatient.close()
    assert slow.value.kind == "timeout"
    sim.kill()
    with pytest.raises(AxisUnavailable) as refused:
        client.received(10)
    assert refused.value.kind == "connection"


def test_a_received_document_is_listed_fetched_byte_for_byte_and_gone_once_acknowledged(
    sim: AxisSimulator, client: AxisClient
) -> None:
    raw = _letter("4").replace(PROVINCE.encode(), b"000.00.00.G09", 1)
    doc_id = sim.inject(raw, sender=MINISTRY, to=[PROVINCE])
    [listed] = client.received(10)
    assert (listed.id, listed.sender, listed.to) == (doc_id, MINISTRY, (PROVINCE,))
    assert client.fetch(doc_id) == raw
    client.update_status(doc_id, StatusWord.INBOX)
    assert client.received(10) == []
    with pytest.raises(AxisUnavailable) as missing:
        client.fetch("no-such-id")
    assert missing.value.kind == "not_found"


DEEPLY_NESTED = "[" * 100_000 + "]" * 100_000


def test_bodies_that_are_not_the_axis_json_answer_are_the_axis_unavailable_never_an_exception(
    sim: AxisSimulator, client: AxisClient
) -> None:
    # Given an axis (or a proxy) answering 200 with bodies that are not the axis' JSON answer
    odd_lists = [DEEPLY_NESTED, '{"status": "OK", "data": 7}', "<html>proxy</html>",
                 '{"data": []}', '{"status": ["OK"], "data": []}']
    sim.faults(answers={"getReceivedEdocList": odd_lists, "updateStatus": [DEEPLY_NESTED],
                        "sendEdoc": [DEEPLY_NESTED]})
    # Then each list call is the axis unavailable, of kind "answer", saying why
    for _ in odd_lists:
        with pytest.raises(AxisUnavailable) as odd:
            client.received(10)
        assert odd.value.kind == "answer"
        assert "getReceivedEdocList" in odd.value.detail
    # and so is an acknowledgement answered with a nested body
    with pytest.raises(AxisUnavailable) as ack:
        client.update_status("some-id", StatusWord.INBOX)
    assert ack.value.kind == "answer"
    assert "not JSON" in ack.value.detail
    # and a send's answer is judged transient (try again), naming the problem
    answer = client.send(_letter("5"), sender=PROVINCE, message_type=MessageType.EDOC)
    assert judge_send(answer) is Verdict.TRANSIENT
    assert "not JSON" in answer.summary
    # and once the axis answers normally again, so does the client
    assert client.received(10) == []

"""The adapter's frame reader (``hub.broker._FrameReader``) is pika's ``_on_data_available``
without the copies: on the same bytes, cut anywhere, it processes the same frames in the same
order, counts the same ``bytes_received``, keeps the same undecoded rest and raises the same
errors. Both run against a stand-in of pika's connection whose receive methods are pika's own;
the real-broker tests exercise the reader on every connection the hub opens."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pika.connection
import pika.exceptions
import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.broker import _FrameReader

Frame = Any


class _PikaImpl:
    """What ``Connection._on_data_available`` touches, with pika's own methods."""

    _on_data_available = pika.connection.Connection._on_data_available
    _read_frame = pika.connection.Connection._read_frame
    _trim_frame_buffer = pika.connection.Connection._trim_frame_buffer

    def __init__(self, on_frame: Callable[[Any, Frame], None] | None = None) -> None:
        self._frame_buffer = b""
        self.bytes_received = 0
        self.frames: list[Frame] = []
        self._on_frame = on_frame

    def _process_frame(self, frame: Frame) -> None:
        self.frames.append(frame)
        if self._on_frame is not None:
            self._on_frame(self, frame)


def _ours(on_frame: Callable[[Any, Frame], None] | None = None) -> tuple[_PikaImpl, _FrameReader]:
    impl = _PikaImpl(on_frame)
    return impl, _FrameReader.install(impl)


def _stream(rng: random.Random, frames: int) -> bytes:
    """AMQP frames as a broker sends them to a consumer: deliveries (method, header with
    headers, bodies up to two frame_max frames), acks, heartbeats."""
    out: list[bytes] = []
    for n in range(frames):
        kind = rng.random()
        channel = rng.choice([1, 2])
        if kind < 0.1:
            out.append(pika.frame.Heartbeat().marshal())
        elif kind < 0.2:
            out.append(pika.frame.Method(channel, pika.spec.Basic.Ack(n, rng.random() < 0.5))
                       .marshal())
        else:
            size = rng.choice([0, 1, 200, 10_300, 131_064, 200_000])
            body = rng.randbytes(size)
            out.append(pika.frame.Method(channel, pika.spec.Basic.Deliver(
                f"ctag{n}", n, rng.random() < 0.2, "edxml.inbound", "envelope")).marshal())
            props = pika.spec.BasicProperties(
                delivery_mode=2, message_id=f"m-{n}", user_id="guest",
                headers={"x-hub-digest": "ab" * 32, "x-n": n, "x-b": b"\x00\xff"})
            out.append(pika.frame.Header(channel, size, props).marshal())
            for start in range(0, size, 131_064):
                out.append(pika.frame.Body(channel, body[start:start + 131_064]).marshal())
    return b"".join(out)


def _cuts(rng: random.Random, data: bytes) -> list[bytes]:
    pieces, at = [], 0
    while at < len(data):
        size = rng.choice([1, 3, 7, 8, 4096, 65_536, 131_072, 300_000])
        pieces.append(data[at:at + size])
        at += size
    return pieces


def _feed(feed: Callable[[bytes], None], pieces: list[bytes]) -> type[Exception] | None:
    try:
        for piece in pieces:
            feed(piece)
    except (pika.exceptions.InvalidFrameError, KeyError) as exc:
        return type(exc)
    return None


def _same(pieces: list[bytes], on_frame: Callable[[Any, Frame], None] | None = None) -> int:
    reference = _PikaImpl(on_frame)
    impl, reader = _ours(on_frame)
    error = _feed(reference._on_data_available, pieces)
    assert _feed(impl._on_data_available, pieces) == error
    assert [f.marshal() for f in impl.frames] == [f.marshal() for f in reference.frames]
    assert [type(f) for f in impl.frames] == [type(f) for f in reference.frames]
    assert impl.bytes_received == reference.bytes_received
    if error is None:
        assert bytes(reader._buffer) == reference._frame_buffer
    return len(reference.frames)


@pytest.mark.parametrize("seed", range(12))
def test_a_frame_stream_cut_anywhere_gives_pikas_frames_counts_and_rest(seed: int) -> None:
    rng = random.Random(seed)
    data = _stream(rng, 40)
    cut = rng.randrange(len(data) - 20, len(data) + 1)  # perhaps a frame left incomplete
    assert _same(_cuts(rng, data[:cut])) > 0


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=600), st.integers(1, 64))
def test_arbitrary_bytes_give_pikas_answer(junk: bytes, size: int) -> None:
    start = pika.frame.Method(1, pika.spec.Basic.Ack(1, False)).marshal()
    data = start + junk
    _same([data[i:i + size] for i in range(0, len(data), size)])


def test_a_wrong_frame_end_is_pikas_invalid_frame_after_the_same_frames() -> None:
    good = pika.frame.Method(1, pika.spec.Basic.Ack(7, False)).marshal()
    bad = bytearray(pika.frame.Body(1, b"x" * 50).marshal())
    bad[-1] = 0
    with pytest.raises(pika.exceptions.InvalidFrameError):
        _PikaImpl()._on_data_available(good + bytes(bad))
    assert _same([good, bytes(bad)]) == 1  # the Ack processed, then both raised


def test_a_protocol_header_from_the_server_is_read_as_pika_reads_it() -> None:
    assert _same([b"AMQP\x00\x00\x09\x01", pika.frame.Heartbeat().marshal()]) == 2


def test_data_fed_while_a_frame_is_processed_is_taken_as_pika_takes_it() -> None:
    rng = random.Random(5)
    first, later = _stream(rng, 6), _stream(rng, 6)

    def feed_more(impl: Any, frame: Frame) -> None:
        if not getattr(impl, "fed", False) and isinstance(frame, pika.frame.Header):
            impl.fed = True  # re-entry: more data arrives while this frame is processed
            impl._on_data_available(later[:5000])

    assert _same([first, later[5000:]], on_frame=feed_more) > 12


def test_the_reader_is_installed_on_one_connection_only() -> None:
    class Transport:
        _MAX_RECV_BYTES = 4096

    impl = _PikaImpl()
    impl._transport = Transport()  # type: ignore[attr-defined]
    impl._frame_buffer = b"\x01\x00"  # a frame's start pika had not decoded yet
    reader = _FrameReader.install(impl)
    assert bytes(reader._buffer) == b"\x01\x00"
    assert impl._frame_buffer == b""
    assert impl._transport._MAX_RECV_BYTES == _FrameReader.RECV  # type: ignore[attr-defined]
    assert Transport._MAX_RECV_BYTES == 4096
    assert _PikaImpl._on_data_available is pika.connection.Connection._on_data_available
    from pika.adapters.utils.io_services_utils import _AsyncTransportBase
    assert _AsyncTransportBase._MAX_RECV_BYTES == 4096

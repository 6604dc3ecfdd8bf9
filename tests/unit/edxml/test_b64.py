"""``strict_b64decode`` is ``base64.b64decode(data, validate=True)`` on every input: the same
bytes or the same error. pybase64 answers first; these tests check the property the module
relies on (pybase64 accepts only what the standard library accepts, with the same bytes) and
the whole function against the standard library."""

from __future__ import annotations

import base64
import binascii
import importlib
import random
from pathlib import Path
from typing import Any

import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.edxml.b64 import strict_b64decode

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
VECTORS = sorted(
    p for p in (Path(__file__).resolve().parents[2] / "vectors").rglob("*.xml") if p.is_file())


def _stdlib(data: bytes | str) -> tuple[str, bytes | type[Exception]]:
    try:
        return "ok", base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        return "error", type(exc)


def _ours(data: bytes | str) -> tuple[str, bytes | type[Exception]]:
    try:
        return "ok", strict_b64decode(data)
    except (binascii.Error, ValueError) as exc:
        return "error", type(exc)


def _pybase64_accepts_only_what_the_stdlib_accepts(data: bytes) -> None:
    try:
        fast = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return
    assert _stdlib(data) == ("ok", fast), data


EDGES = [
    b"", b"=", b"==", b"A", b"AA", b"AA=", b"AA==", b"AAA=", b"AAAA", b"AAAA=", b"AAAA==",
    b"AAAA===", b"AA==AA==", b"AAA=A", b"A===", b"AB==", b"AB=a", b"QQ==\n", b" QQ==",
    b"QUJD\nREVG", b"Q===", b"QR==", b"QUI=", b"QUJ=", b"====", b"AA===", b"QQ", b"QQ=",
    b"-_-_", b"QQ==\x00", b"\xffQQ=", b"QUJD\r\nREVG", b"QUJD\tREVG", b"26SnWORt=",
    b"xbRWZAES==", "QQ==", "QQ\u00e9=", "",
]


@pytest.mark.parametrize("data", EDGES, ids=repr)
def test_an_edge_case_decodes_or_fails_exactly_as_the_standard_library(
        data: bytes | str) -> None:
    assert _ours(data) == _stdlib(data)


def test_padding_after_a_complete_quantum_is_what_the_standard_library_lets_through() -> None:
    # The known disagreement of the two decoders (pybase64 1.5.1 refuses "AAAA="): whatever
    # pybase64 answers, the standard library's answer is kept.
    assert strict_b64decode(b"AAAA=") == base64.b64decode(b"AAAA=", validate=True) == b"\0\0\0"


def _native() -> Any:
    """pybase64's C extension (None: its pure-Python fallback is in use)."""
    try:
        return importlib.import_module("pybase64._pybase64")
    except ImportError:
        return None


def _simd_paths() -> list[int]:
    """pybase64's decoders this CPU can run (0: none), by its private switch."""
    native = _native()
    if native is None or not hasattr(native, "_set_simd_path"):
        return []
    flags = native._get_simd_flags_runtime() & native._get_simd_flags_compile()
    return [0] + [1 << bit for bit in range(16) if flags & (1 << bit)]


@pytest.mark.parametrize("path", _simd_paths())
def test_every_simd_decoder_of_this_cpu_accepts_only_what_the_standard_library_accepts(
        path: int) -> None:
    # pybase64 picks its decoder by CPU at import: CI may run another one than this machine.
    native = _native()
    chosen = native._get_simd_path()
    native._set_simd_path(path)
    try:
        rng = random.Random(path)
        for _ in range(3_000):
            encoded = bytearray(base64.b64encode(rng.randbytes(rng.randrange(0, 700))))
            if encoded and rng.random() < 0.8:  # one byte inserted or replaced
                at = rng.randrange(len(encoded))
                junk = rng.choice(b"=A/+-_ \n\x00\xff")
                if rng.random() < 0.5:
                    encoded[at] = junk
                else:
                    encoded.insert(at, junk)
            data = bytes(encoded)
            _pybase64_accepts_only_what_the_stdlib_accepts(data)
            assert _ours(data) == _stdlib(data), data
    finally:
        native._set_simd_path(chosen)


def test_a_hundred_thousand_seeded_short_inputs_decode_as_the_standard_library() -> None:
    rng = random.Random(23)
    pools = [ALPHABET + b"=", ALPHABET + b"====", ALPHABET + b"=-_ \n\r\t\x00\xff."]
    for _ in range(100_000):
        pool = pools[rng.randrange(3)]
        data = bytes(rng.choice(pool) for _ in range(rng.randrange(0, 24)))
        if rng.random() < 0.3:  # a real encoding, perhaps with a tail of padding or junk
            data = base64.b64encode(data) + bytes(
                rng.choice(b"=A\n") for _ in range(rng.randrange(0, 3)))
        _pybase64_accepts_only_what_the_stdlib_accepts(data)
        assert _ours(data) == _stdlib(data), data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=3),
       st.sampled_from([b"", b"=", b"==", b"\n", b" ", b"A"]))
def test_an_encoding_cut_or_extended_decodes_as_the_standard_library(
        raw: bytes, cut: int, tail: bytes) -> None:
    encoded = base64.b64encode(raw)
    data = encoded[:len(encoded) - cut] + tail
    _pybase64_accepts_only_what_the_stdlib_accepts(data)
    assert _ours(data) == _stdlib(data)


def test_every_base64_text_of_the_test_vectors_decodes_as_the_standard_library() -> None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True)
    texts = 0
    for path in VECTORS:
        try:
            root = etree.parse(str(path), parser).getroot()
        except (etree.XMLSyntaxError, OSError):  # the vectors of malformed bytes
            continue
        for el in root.iter():
            if not isinstance(el.tag, str) or not el.text or len(el):
                continue
            data = el.text.encode("utf-8")
            for candidate in (data, b"".join(data.split())):
                _pybase64_accepts_only_what_the_stdlib_accepts(candidate)
                assert _ours(candidate) == _stdlib(candidate)
            texts += 1
    assert texts > 100


def test_a_megabyte_decodes_to_its_bytes() -> None:
    raw = random.Random(7).randbytes(1_000_000)
    assert strict_b64decode(base64.b64encode(raw)) == raw
    assert strict_b64decode(bytearray(base64.b64encode(raw))) == raw

"""The chain's canonical JSON through orjson is byte for byte the standard library encoder's.

``chain.canonical_json`` hands plain values to orjson and everything else (and whatever orjson
refuses) to ``chain.canonical_json_reference``, the encoder the specification names. These tests
compare the two on generated values and on the shapes orjson is known to treat differently, and
``chain.canonical_text`` with the implementation it replaced. The known answers pin the hashes of
entries computed before orjson was used.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ledger import chain

TRICKY = [
    *(chr(c) for c in range(0x20)), "\x7f", "\x80", "\x9f", "\u00a0", "\u00e9", "e\u0301",
    "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\U00010000", "\U0001f4dc", "\U0010ffff",
    '"', "\\", "/", "</script>", "Hà Tĩnh", "Văn phòng", "\ud800", "\udfff", "\ud83d\udcdc",
]
"""Characters JSON encoders disagree on: controls, separators, astral, quotes, lone surrogates."""

BOUNDARY_INTS = [0, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
                 2**64 - 1, 2**64, -(2**64), 2**100, -(2**100)]


def outcome(encode: Callable[[Any], bytes], value: Any) -> tuple[str, Any]:
    """What an encoder does with ``value``: its bytes, or the exception it raises."""
    try:
        return ("bytes", encode(value))
    except Exception as error:  # the reference's own errors: TypeError, ValueError, ...
        return ("raises", (type(error), str(error)))


def same_as_reference(value: Any) -> None:
    assert outcome(chain.canonical_json, value) == outcome(chain.canonical_json_reference, value)


text = st.one_of(
    st.text(),
    st.lists(st.sampled_from(TRICKY), max_size=8).map("".join),
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),  # lone surrogates too
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(BOUNDARY_INTS), text,
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(text, inner, max_size=6),
    ),
    max_leaves=40,
)


class Colour(enum.StrEnum):
    RED = "đỏ"


class Level(enum.IntEnum):
    HIGH = 3


class OddMixin(str, enum.Enum):  # noqa: UP042 (a StrEnum refuses a non-str value)
    """A str enum whose value is not its text: orjson would write the value."""

    ONE = 1  # type: ignore[assignment]


class Text(str):
    pass


class Number(int):
    pass


odd = st.one_of(
    st.floats(), st.sampled_from([Colour.RED, Level.HIGH, OddMixin.ONE, Text("t"), Number(7),
                                  float("nan"), float("inf"), -0.0, 1e16, 1e-7]),
    st.datetimes(timezones=st.just(UTC)), st.binary(max_size=4), st.sets(st.integers(), max_size=3),
)
anything = st.recursive(
    st.one_of(scalars, odd),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(text, st.integers(), st.booleans(), st.none(),
                                  st.sampled_from([Colour.RED, Text("k")])), inner, max_size=5),
        st.dictionaries(text, inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(plain)
def test_plain_values_encode_to_the_reference_bytes(value: Any) -> None:
    same_as_reference(value)


@settings(max_examples=800, deadline=None)
@given(anything)
def test_any_value_encodes_or_fails_exactly_as_the_reference_does(value: Any) -> None:
    same_as_reference(value)


@pytest.mark.parametrize("value", [
    "".join(TRICKY[:-3]),
    {c: i for i, c in enumerate(TRICKY[:-3])},  # keys sorted by code point, not UTF-16 unit
    {"\uffff": 1, "\U00010000": 2, "\ue000": 3, "é": 4, "e\u0301": 5, "Z": 6, "a": 7, "": 8},
    BOUNDARY_INTS,
    {"deep": [[[[{"a": [1, {"b": None}]}]]]]},
    "\ud800", {"\udfff": 1}, ["ok", "\ud83d"],
    {1: "a", 2: "b"}, {True: 1}, {None: 1}, {1: 1, "1": 2}, {Text("k"): 1}, {Colour.RED: 1},
    Colour.RED, Level.HIGH, OddMixin.ONE, Text("x"), Number(2**70), [Number(5)],
    1.0, 1e16, float("nan"), {"f": 0.1}, ("tuple", 1), [("nested", ("tuple",))],
    b"bytes", {1, 2}, datetime(2024, 1, 1, tzinfo=UTC),
], ids=repr)
def test_the_shapes_orjson_treats_differently_encode_as_the_reference_does(value: Any) -> None:
    same_as_reference(value)


@pytest.mark.parametrize("depth", [1, 150, 199, 200, 201, 254, 255, 256, 400, 2000])
def test_deep_nesting_encodes_or_fails_as_the_reference_does(depth: int) -> None:
    nested_lists: Any = "leaf"
    nested_dicts: Any = 1
    for _ in range(depth):
        nested_lists = [nested_lists]
        nested_dicts = {"k": nested_dicts}
    same_as_reference(nested_lists)
    same_as_reference(nested_dicts)


def test_ledger_entries_are_written_by_orjson_not_the_reference_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(_value: Any) -> bytes:
        raise AssertionError("the reference encoder was used")

    monkeypatch.setattr(chain, "canonical_json_reference", refuse)
    entry = chain.event_entry(seq=1, kind="delivered", message_id="m", at="t", digest=None,
                              organ_id="000.00.02.H27", reason=None, actor="hub",
                              detail=chain.canonical_text({"via": "direct", "n": [1, {"x": None}]}))
    assert chain.canonical_json(entry).startswith(b'{"actor":"hub","at":"t","detail":')


def test_a_circular_value_fails_as_the_reference_does() -> None:
    loop: list[Any] = []
    loop.append(loop)
    same_as_reference(loop)


# -- canonical_text against the implementation it replaced ---------------------------------------

def reference_normalize(value: Any) -> Any:
    """``chain.normalize`` before orjson (kept verbatim as the reference)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return chain.utc_text(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): reference_normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [reference_normalize(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "value") and isinstance(value.value, str | int):
        return value.value
    return str(value)


def reference_canonical_text(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "{}"
    return chain.canonical_json_reference(reference_normalize(value)).decode("utf-8")


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(text, anything, max_size=6))
def test_stored_detail_text_is_what_it_was_before(value: dict[str, Any]) -> None:
    assert outcome(lambda v: chain.canonical_text(v).encode(), value) == outcome(
        lambda v: reference_canonical_text(v).encode(), value)


def test_stored_detail_text_of_mixed_keys_enums_and_floats_is_what_it_was_before() -> None:
    hanoi = timezone(timedelta(hours=7))
    value: dict[Any, Any] = {
        2: "two", True: "true", None: "none", Colour.RED: Level.HIGH, "f": 0.1,
        "nan": float("nan"), "when": datetime(2024, 3, 1, 15, 0, tzinfo=hanoi),
        "set": {3, 1, 2}, "bytes": b"\x00\xff", "odd": OddMixin.ONE, "t": (Text("x"),)}
    assert chain.canonical_text(value) == reference_canonical_text(value)


def test_normalize_turns_str_and_int_subclasses_into_the_exact_types() -> None:
    assert type(chain.normalize(Colour.RED)) is str
    assert type(chain.normalize(Number(3))) is int
    assert chain.normalize({"k": [Text("v")]}) == {"k": ["v"]}
    assert chain.is_plain(chain.normalize({"k": [Colour.RED, Level.HIGH]}))


# -- known answers: hashes computed with the standard library encoder, before orjson -------------

def test_entry_hashes_are_the_ones_computed_before_orjson() -> None:
    document = chain.document_entry(
        seq=7, digest="ab" * 32, sender="000.00.01.H27",
        document_id="000.00.01.H27,2024/03/01,7/UBND-VP", kind="envelope", code="7/UBND-VP",
        subject_digest="cd" * 32, recipients=["000.00.02.H27", "000.01.36.H27"],
        received_at="2024-03-01T08:00:00.000001Z", links_to=None, size=10201,
        report_digest="ef" * 32,
        revocation=[{"kind": "crl", "digest": "01" * 32, "at": "2024-03-01T07:59:00.000000Z",
                     "source": "http://ca.gov.vn/crl", "certificate": None, "issuer": "02" * 32}])
    detail = chain.canonical_text({"signer": "Văn phòng UBND tỉnh Hà Tĩnh", "score": 0.5,
                                   "n": 2**70, "tab": 'a\tb"c\\'})
    event = chain.event_entry(
        seq=8, kind="validated", message_id="m-\u2028-\U0001f4dc",
        at="2024-03-01T08:00:00.000001Z", digest="ab" * 32, organ_id="000.00.01.H27",
        reason=None, actor="hub", detail=detail)
    refused = chain.document_entry(
        seq=9, digest="12" * 32, sender="", document_id="", kind="refused", code="",
        subject_digest="", recipients=[], received_at="2024-03-01T08:00:00.000000Z",
        links_to=None, size=3, report_digest=None,
        refusal={"reason": "XML_MALFORMED", "account": "guest", "kept": True, "cap": 52428800})
    assert detail == ('{"n":1180591620717411303424,"score":"0.5",'
                      '"signer":"Văn phòng UBND tỉnh Hà Tĩnh","tab":"a\\tb\\"c\\\\"}')
    assert chain.entry_hash(document) == (
        "1121d6721daa15a4203afb82b08bf3d47547e62a0b29ba062518ff775cce5b2c")
    assert chain.entry_hash(event) == (
        "e401e1dc89f93b7fb3277776c4eef84a5367b4e1dd7096ef39c56d5e68972eaa")
    assert chain.entry_hash(refused) == (
        "a6b302e0821c52489ee437ed2d6eeb603fefdc308a42953b2405f14861cc53a9")
    head = chain.link(chain.link(chain.GENESIS, chain.entry_hash(document)),
                      chain.entry_hash(event))
    assert head == "0f5ca909997bd90a2f297849f32623cb0b711e7f6c93b56464a621c746925e0b"


def test_the_canonical_bytes_parse_back_to_the_value() -> None:
    value = {"b": [1, "Hà Tĩnh", None, True], "a": {"\u2028": "\U0001f4dc"}}
    assert json.loads(chain.canonical_json(value)) == value

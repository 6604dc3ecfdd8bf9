"""The ledger's input records: their hand-written constructors are the dataclass's own.

``DocumentIn`` and ``EventIn`` write ``__init__`` by hand (one update of the instance dict, cheaper
than the frozen dataclass's one ``object.__setattr__`` per field). These tests build the same
values through a dataclass generated from the same fields, and demand the same instances:
every field, positional or by keyword, given or defaulted; frozen as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import pickle
from typing import Any

import pytest

from hub.ledger.records import DocumentIn, EventIn, EventKind, Refusal, RevocationEvidence

AT = dt.datetime(2025, 3, 3, 8, 5, tzinfo=dt.UTC)


def _generated(cls: type) -> type:
    """A frozen dataclass with ``cls``'s fields and the constructor dataclasses would write."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default,
                                                 default_factory=f.default_factory))
              for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(f"Generated{cls.__name__}", fields, frozen=True)


def _same(made: Any, reference: Any) -> None:
    assert type(made).__name__ == type(reference).__name__.removeprefix("Generated")
    assert vars(made) == vars(reference)
    assert list(vars(made)) == [f.name for f in dataclasses.fields(made)]
    for name, value in vars(made).items():
        assert type(value) is type(getattr(reference, name)), name


EVENT_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((EventKind.RECEIVED, "m1", AT), {}),
    ((EventKind.ROUTED, "m1", AT), {"digest": "d", "organ_id": "o", "detail": {"via": "direct"}}),
    ((EventKind.REJECTED, "m1", AT, "d", "o", "CERT_REVOKED", "operator", {"x": 1}), {}),
    ((EventKind.DUPLICATE,), {"message_id": "m", "at": AT, "reason": "DUPLICATE"}),
    ((EventKind.VALIDATED, "m", AT), {"detail": {}}),
]
DOCUMENT_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("s", "id", "d", "envelope", b"raw", AT), {}),
    (("s", "id", "d", "receipt", b"raw", AT), {"recipients": ("a",), "links_to": "x",
                                                "code": "accepted"}),
    (("", "", "d", "refused", b"", AT, "c", "sd", ("a", "b"), {"r": 1}, "l",
      Refusal("R", None), (RevocationEvidence("crl", b"der", AT),)), {}),
    (("s",), {"document_id": "i", "digest": "d", "kind": "status", "raw": b"r",
              "received_at": AT, "report": {"accepted": True}}),
]


@pytest.mark.parametrize(("args", "kwargs"), EVENT_CALLS)
def test_an_event_is_built_as_the_dataclass_would_build_it(args: tuple[Any, ...],
                                                           kwargs: dict[str, Any]) -> None:
    _same(EventIn(*args, **kwargs), _generated(EventIn)(*args, **kwargs))


@pytest.mark.parametrize(("args", "kwargs"), DOCUMENT_CALLS)
def test_a_document_is_built_as_the_dataclass_would_build_it(args: tuple[Any, ...],
                                                             kwargs: dict[str, Any]) -> None:
    _same(DocumentIn(*args, **kwargs), _generated(DocumentIn)(*args, **kwargs))


@pytest.mark.parametrize("cls", [EventIn, DocumentIn])
def test_the_constructors_take_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for p, f in zip(parameters, fields, strict=True):
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default, f.name
        elif f.default_factory is dataclasses.MISSING:
            assert p.default is inspect.Parameter.empty, f.name


def test_each_event_gets_its_own_detail_and_records_stay_frozen_replaceable_picklable() -> None:
    a, b = EventIn(EventKind.RECEIVED, "m", AT), EventIn(EventKind.RECEIVED, "m", AT)
    assert a.detail == {}
    assert a.detail is not b.detail
    assert a == b
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.message_id = "other"  # type: ignore[misc]
    document = DocumentIn("s", "id", "d", "envelope", b"raw", AT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.raw = b"other"  # type: ignore[misc]
    assert dataclasses.replace(a, digest="x") == EventIn(EventKind.RECEIVED, "m", AT, digest="x")
    assert dataclasses.replace(document, code="c").code == "c"
    assert pickle.loads(pickle.dumps(a)) == a  # noqa: S301 (our own bytes)
    assert pickle.loads(pickle.dumps(document)) == document  # noqa: S301

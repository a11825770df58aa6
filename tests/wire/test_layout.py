"""The construct boundary (fcsoft.wire.layout): every payload layout of the control plane,
held to construct's own reading of its declaration, and to the project's errors."""

from __future__ import annotations

import contextlib
from typing import Any

import construct
import pytest
from construct import Array, Bytes, Const, Int8ub, Int16ub, Int24ub, Padding, Prefixed, Struct
from hypothesis import given
from hypothesis import strategies as st

from fcsoft.wire import bls, ct, els, els_login, ns
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.layout import Layout, Payload

MODULES = (bls, ct, els, els_login, ns)  # every module that defines payloads


def _payload_classes() -> list[type[Payload]]:
    seen: list[type[Payload]] = []
    todo = list(Payload.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "_layout" in vars(cls) and cls not in seen:
            seen.append(cls)
    return sorted(seen, key=lambda c: c.__qualname__)


PAYLOADS = _payload_classes()
LAYOUTS = {cls.__qualname__: cls._layout for cls in PAYLOADS}
FLAT = {name: layout for name, layout in LAYOUTS.items() if layout.flat}


def test_every_payload_has_a_layout() -> None:
    names = set(LAYOUTS)
    assert {"ServiceParameters", "CtPreamble", "Logo", "RscnPage", "GaNxtAccept",
            "PortIdPayload", "PortIdList", "BaAcc", "Prli"} <= names
    # the login path's layouts all run as one struct.Struct
    for name in ("ServiceParameters", "ClassServiceParameters", "CtPreamble",
                 "RftIdRequest", "RffIdRequest", "PortIdPayload"):
        assert LAYOUTS[name].flat, name


def _fields(container: Any) -> dict[str, Any]:
    return {k: v for k, v in container.items() if not k.startswith("_")}


@pytest.mark.parametrize("name", sorted(FLAT))
@given(data=st.data())
def test_flat_codec_reads_and_writes_as_construct_does(name: str, data: st.DataObject) -> None:
    layout = FLAT[name]
    assert layout.size is not None
    raw = data.draw(st.binary(min_size=layout.size, max_size=layout.size + 8))
    first = layout.struct.subcons[0]
    if isinstance(first.subcon, construct.Const) and data.draw(st.booleans()):
        raw = bytes((first.subcon.value,)) + raw[1:]  # an ELS command byte, mostly right
    try:
        expected = _fields(layout.struct.parse(raw))
    except construct.ConstError:
        with pytest.raises(DecodeError):
            layout.parse(raw)
        return
    got = layout.parse(raw)
    assert dict(got) == expected
    # construct writes reserved bytes as zero: the flat codec must too
    assert layout.build(got) == layout.struct.build(expected)


@pytest.mark.parametrize("cls", PAYLOADS, ids=lambda c: c.__qualname__)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_decode_error(cls: type[Payload], raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        value = cls.decode(raw)
        # whatever decodes encodes again, and decodes to the same value
        assert cls.decode(value.encode()) == value


@pytest.mark.parametrize("cls", PAYLOADS, ids=lambda c: c.__qualname__)
def test_short_input_is_a_decode_error(cls: type[Payload]) -> None:
    size = cls._layout.size
    for n in range(size if size is not None else 1):
        with pytest.raises(DecodeError):
            cls.decode(bytes(n))


# -- a layout of its own, to show each rule ---------------------------------------------------

DEMO = Layout("demo", Struct(
    "kind" / Const(7, Int8ub), Padding(1), "code" / Int16ub, "port_id" / Int24ub,
    "words" / Array(2, Int16ub), "tag" / Bytes(2)))
NAMED = Layout("named", Struct("port_id" / Int24ub,
                               "name" / Prefixed(Int8ub, construct.GreedyBytes)),
               fault=lambda raw, parsed: None if parsed is not None and len(raw) >= 4 + raw[3]
               else "name runs past the end")


def test_flat_layout_round_trip_and_reserved_bytes() -> None:
    assert DEMO.flat and DEMO.size == 13
    values = {"code": 0x1234, "port_id": 0x010203, "words": [1, 2], "tag": b"ab"}
    raw = DEMO.build(values)
    assert raw == bytes.fromhex("07 00 1234 010203 0001 0002 6162")
    assert DEMO.parse(raw) == {"kind": 7, **values}
    assert DEMO.parse(raw[:1] + b"\xff" + raw[2:]) == {"kind": 7, **values}  # reserved


def test_layout_errors_are_the_projects() -> None:
    with pytest.raises(DecodeError, match="demo: need 13 bytes, have 12"):
        DEMO.parse(bytes(13)[:12])
    with pytest.raises(DecodeError, match="demo"):
        DEMO.parse(bytes(13))  # the constant is 7, not 0
    for bad in ({"code": 0x10000}, {"port_id": 1 << 24}, {"port_id": -1}, {"tag": b"abc"},
                {"words": [1]}, {"words": [1, 2, 3]}, {"tag": 5}):
        values = {"code": 1, "port_id": 2, "words": [3, 4], "tag": b"xy", **bad}
        with pytest.raises(ValueError, match="demo"):
            DEMO.build(values)


def test_variable_layout_with_a_fault_is_compiled_and_checked() -> None:
    assert not NAMED.flat and NAMED.size is None
    assert _fields(NAMED.parse(bytes.fromhex("010203 02") + b"hi" + b"junk")) == {
        "port_id": 0x010203, "name": b"hi"}
    with pytest.raises(DecodeError, match="named: name runs past the end"):
        NAMED.parse(bytes.fromhex("010203 05") + b"hi")


def test_payload_checks_its_fields_against_the_declaration() -> None:
    with pytest.raises(ValueError, match="port_id"):
        ns.PortIdPayload(1 << 24)
    with pytest.raises(ValueError, match="symbolic_name"):
        ns.SymbolicNamePayload(b"x" * 256)
    with pytest.raises(TypeError, match="bytes"):
        ns.SymbolicNamePayload(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initial_process_associator"):
        ns.GaNxtAccept(1, 1, 1, initial_process_associator=b"1234567")  # type: ignore[arg-type]
    assert ns.SymbolicNamePayload(bytearray(b"ab")).symbolic_name == b"ab"


def test_memoized_values_are_shared_and_equal() -> None:
    raw = bytes.fromhex("0100 0000 0000 0840 0000 0000 0000 0000")
    first = els_login.ClassServiceParameters.decode(raw)
    assert els_login.ClassServiceParameters.decode(bytearray(raw)) is first
    assert first.encode() == raw
    with pytest.raises(DecodeError):
        els_login.ClassServiceParameters.decode(raw[:15])  # failures are not cached

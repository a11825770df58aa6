"""The data path's fast READ (ScsiArray.fast_read, LogicalUnit.fast_read) never answers
differently from the general path: whatever the LU's state and the CDB, it either declines
(None, and the general path runs) or returns exactly the data the general path returns with
GOOD and no residual. And it declines in each state where the general path has more to do
than read."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.scsi.alua import AluaState
from fcsoft.scsi.array import ScsiArray
from fcsoft.scsi.inject import InjectedError
from fcsoft.scsi.sense import Status
from fcsoft.scsi.types import Command, Result

from .conftest import array_config
from .fakes import HOST1, HOST1B, PORT1, PORT2, nexus, read10, read16, run, tur, write10

BS = 512
BLOCKS = 8192  # LU "boot" at LUN 0 of host1

A = nexus(HOST1, PORT1, 1)
B = nexus(HOST1B, PORT1, 1)


def prout(sa: int, rk: int, sark: int, type_: int = 0) -> tuple[bytes, bytes]:
    return (struct.pack(">BBBxxIB", 0x5F, sa, type_, 24, 0),
            struct.pack(">QQ4xBxxx", rk, sark, 0))


def general(array: ScsiArray, nx: object, cdb: bytes, expected: int) -> Result:
    cmd = Command(nx, 0, cdb, b"", expected)  # type: ignore[arg-type]
    result = array.precheck(cmd)
    return result if result is not None else array.execute(cmd)


def touch(array: ScsiArray, nx: object) -> None:
    """Contact, and the power-on unit attention taken."""
    for _ in range(2):
        general(array, nx, tur(), 0)


ACTIONS = st.sampled_from(["touch_a", "touch_b", "ua_a", "reserve_b_we", "reserve_b_ea",
                           "reserve_a_ea", "standby_p1", "inject", "latency", "write"])


@st.composite
def cdbs(draw: st.DrawFn) -> tuple[bytes, int]:
    op = draw(st.sampled_from(["read10", "read10", "read16", "read16", "write10", "other"]))
    lba = draw(st.one_of(st.integers(0, BLOCKS - 300), st.integers(BLOCKS - 300, BLOCKS + 4)))
    n = draw(st.integers(0, 300))
    flags = draw(st.sampled_from([0, 0, 0, 0, 0, 0x08, 0x10, 0x20, 0x02, 0x04]))
    if op == "read10":
        cdb = read10(lba, n, flags)
    elif op == "read16":
        cdb = read16(lba, n, flags)
    elif op == "write10":
        cdb = write10(lba, n)
    else:
        cdb = bytes([draw(st.sampled_from([0x00, 0x12, 0x25, 0xA0, 0x2F, 0x08]))]) + bytes(9)
    if draw(st.sampled_from([False] * 4 + [True])):  # a reserved bit somewhere in the CDB
        byte = draw(st.integers(1, len(cdb) - 1))
        cdb = cdb[:byte] + bytes([cdb[byte] | (1 << draw(st.integers(0, 7)))]) + cdb[byte + 1:]
    cdb = cdb.ljust(16, b"\0")  # an FCP_CMND's CDB field
    expected = draw(st.sampled_from([n * BS] * 4 + [n * BS + BS, max(0, n * BS - BS), 0]))
    return cdb, expected


def apply(array: ScsiArray, action: str) -> None:
    lu = array.units["boot"]
    if action == "touch_a":
        touch(array, A)
    elif action == "touch_b":
        touch(array, B)
    elif action == "ua_a":
        from fcsoft.scsi.disk import CAPACITY_DATA_HAS_CHANGED  # type: ignore[attr-defined]
        lu.unit_attentions.establish(A, CAPACITY_DATA_HAS_CHANGED)
    elif action.startswith("reserve_"):
        who = A if action[8] == "a" else B
        key = 0xA if who is A else 0xB
        touch(array, who)
        cdb, data = prout(0x00, 0, key)  # REGISTER
        cmd = Command(who, 0, cdb, data, len(data))
        assert array.precheck(cmd) is None
        array.execute(cmd)
        cdb, data = prout(0x01, key, 0, 1 if action.endswith("we") else 3)  # RESERVE
        cmd = Command(who, 0, cdb, data, len(data))
        if array.precheck(cmd) is None:
            array.execute(cmd)
    elif action == "standby_p1":
        array.set_alua_state(PORT1, AluaState.STANDBY)
    elif action == "inject":
        lu.injected = InjectedError.build(sense="3/11/00")
    elif action == "latency":
        lu.latency_ms = 5
    elif action == "write":
        touch(array, A)
        run(array, write10(0, 8), bytes(range(256)) * 16, nx=A)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([True] * 4 + [False]), st.lists(ACTIONS, max_size=3), cdbs(),
       st.sampled_from(["a", "a", "a", "b", "p2"]))
def test_fast_read_is_the_general_path_or_declines(contact: bool, actions: list[str],
                                                   command: tuple[bytes, int],
                                                   who: str) -> None:
    array = ScsiArray(array_config())
    try:
        if contact:
            touch(array, A)
        for action in actions:
            apply(array, action)
        nx = {"a": A, "b": B, "p2": nexus(HOST1, PORT2, 2)}[who]
        cdb, expected = command
        fast = array.fast_read(nx, 0, cdb, expected)
        if fast is None:
            return
        result = general(array, nx, cdb, expected)
        assert result.status == Status.GOOD and result.sense is None, (actions, cdb.hex())
        assert len(result.data) == expected, (actions, cdb.hex())
        assert bytes(fast) == bytes(result.data)
    finally:
        array.close()


@pytest.mark.parametrize("action", ["ua_a", "reserve_b_we", "reserve_b_ea", "standby_p1",
                                    "inject", "latency"])
def test_fast_read_declines_when_the_general_path_has_more_to_do(action: str) -> None:
    array = ScsiArray(array_config())
    try:
        touch(array, A)
        cdb = read10(0, 8).ljust(16, b"\0")
        assert array.fast_read(A, 0, cdb, 8 * BS) is not None  # the plain case is taken
        apply(array, action)
        assert array.fast_read(A, 0, cdb, 8 * BS) is None
    finally:
        array.close()


def test_fast_read_declines_a_first_contact_and_other_commands() -> None:
    array = ScsiArray(array_config())
    try:
        cdb = read10(0, 8).ljust(16, b"\0")
        assert array.fast_read(A, 0, cdb, 8 * BS) is None  # not in contact yet: 29/00 owed
        touch(array, A)
        assert array.fast_read(A, 0, cdb, 8 * BS) is not None
        assert array.fast_read(A, 7, cdb, 8 * BS) is None  # not mapped
        assert array.fast_read(A, 0, write10(0, 8).ljust(16, b"\0"), 8 * BS) is None
        assert array.fast_read(A, 0, read10(0, 8, 0x20).ljust(16, b"\0"), 8 * BS) is None
        assert array.fast_read(A, 0, read10(BLOCKS - 4, 8).ljust(16, b"\0"), 8 * BS) is None
        assert array.fast_read(A, 0, cdb, 4 * BS) is None  # FCP_DL short: a residual to say
    finally:
        array.close()

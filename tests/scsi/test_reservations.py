"""Persistent reservations (SPC-4) and SPC-2 RESERVE/RELEASE: every service action's success
and error paths with exact status and sense, PRGENERATION arithmetic, unit attentions,
PREEMPT AND ABORT, REGISTER AND MOVE (SPC-4 5.14.8), SPEC_I_PT, ALL_TG_PT, SPC-2 and
CRH, fault switches.

The helpers at the top build CDBs and parameter lists from the SPC-4 layouts
(SPC-4 6.15, 6.16) and are shared by the other reservation test modules.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from fcsoft.scsi.reservations import FAULTS, ReservationEngine
from fcsoft.scsi.sense import Sense, SenseKey, Status
from fcsoft.scsi.types import Command, Nexus, Result
from fcsoft.scsi.ua import UnitAttentions
from fcsoft.wire.wwn import WWN

# --- topology: 3 initiators, an array with 2 target ports --------------------------------

I1 = WWN("10:00:00:00:c9:00:00:01")
I2 = WWN("10:00:00:00:c9:00:00:02")
I3 = WWN("10:00:00:00:c9:00:00:03")
I4 = WWN("10:00:00:00:c9:00:00:04")  # masked out of port 2 in some tests
P1 = WWN("50:01:43:80:00:00:00:01")
P2 = WWN("50:01:43:80:00:00:00:02")
PORTS = {P1: 1, P2: 2}

# SA codes
REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT, R_IEK, R_AND_M = range(8)
READ_KEYS, READ_RESERVATION, REPORT_CAPABILITIES, READ_FULL_STATUS = range(4)
WR_EX, EX_AC, WR_EX_RO, EX_AC_RO, WR_EX_AR, EX_AC_AR = 1, 3, 5, 6, 7, 8
ALL_TYPES = (WR_EX, EX_AC, WR_EX_RO, EX_AC_RO, WR_EX_AR, EX_AC_AR)

UA_RES_PREEMPTED = (0x2A, 0x03)
UA_RES_RELEASED = (0x2A, 0x04)
UA_REG_PREEMPTED = (0x2A, 0x05)
UA_CLEARED = (0x2F, 0x00)


def nx(initiator: WWN, port: WWN = P1) -> Nexus:
    return Nexus(initiator, port, PORTS[port])


A1, A2, B1, B2, C1, C2 = nx(I1), nx(I1, P2), nx(I2), nx(I2, P2), nx(I3), nx(I3, P2)


def tid(wwpn: int, proto: int = 0, fmt: int = 0) -> bytes:
    """An FC TransportID (SPC-4 7.6.4.2)."""
    return bytes((fmt << 6 | proto,)) + bytes(7) + wwpn.to_bytes(8, "big") + bytes(8)


def prout_cdb(sa: int, type_: int = 0, scope: int = 0, pll: int = 24) -> bytes:
    return struct.pack(">BBBxxIB", 0x5F, sa, scope << 4 | type_, pll, 0)


def params(rk: int = 0, sark: int = 0, *, spec_i_pt: bool = False, all_tg_pt: bool = False,
           aptpl: bool = False, tids: Iterable[bytes] | None = None,
           tpdl: int | None = None) -> bytes:
    """Basic PROUT parameter list (SPC-4 6.15.3), with the SPEC_I_PT extension."""
    flags = (0x08 if spec_i_pt else 0) | (0x04 if all_tg_pt else 0) | (0x01 if aptpl else 0)
    out = struct.pack(">QQ4xBxxx", rk, sark, flags)
    if tids is not None:
        body = b"".join(tids)
        out += struct.pack(">I", len(body) if tpdl is None else tpdl) + body
    return out


def rm_params(rk: int, sark: int, rtpi: int, dest: bytes | int, *, unreg: bool = False,
              aptpl: bool = False, tpdl: int | None = None) -> bytes:
    """REGISTER AND MOVE parameter list (SPC-4 6.15.4)."""
    t = dest if isinstance(dest, bytes) else tid(dest)
    flags = (0x02 if unreg else 0) | (0x01 if aptpl else 0)
    return struct.pack(">QQxBHI", rk, sark, flags, rtpi,
                       len(t) if tpdl is None else tpdl) + t


def prin_cdb(sa: int, alloc: int = 0xFFFF) -> bytes:
    return struct.pack(">BB5xHB", 0x5E, sa, alloc, 0)


def cmd(nexus: Nexus, cdb: bytes, data_out: bytes = b"") -> Command:
    return Command(nexus, 0, cdb, data_out, expected_length=len(data_out))


def assert_good(r: Result) -> None:
    assert r.status == Status.GOOD, (r.status, r.sense)
    assert r.sense is None


def assert_conflict(r: Result) -> None:
    assert r.status == Status.RESERVATION_CONFLICT, (r.status, r.sense)
    assert r.sense is None


def assert_sense(r: Result, key: SenseKey, asc: int, ascq: int, *, field: int | None = None,
                 bit: int | None = None, in_cdb: bool | None = None) -> Sense:
    """CHECK CONDITION with exactly this sense; decoded from the wire bytes."""
    assert r.status == Status.CHECK_CONDITION, (r.status, r.sense)
    assert r.sense is not None
    s = Sense.decode(r.sense.encode())
    assert (s.key, s.code[0], s.code[1]) == (key, asc, ascq), str(s)
    if field is not None:
        assert s.specific is not None, "expected a sense-key specific field pointer"
        assert s.specific.field_pointer == field
        if in_cdb is not None:
            assert s.specific.c_d == in_cdb
        if bit is not None:
            assert s.specific.bit_pointer == bit
    return s


def assert_illegal(r: Result, asc: int, ascq: int = 0, **kw: Any) -> Sense:
    return assert_sense(r, SenseKey.ILLEGAL_REQUEST, asc, ascq, **kw)


@dataclass
class Descriptor:
    """A READ FULL STATUS descriptor, decoded (SPC-4 6.16.5)."""

    key: int
    all_tg_pt: bool
    r_holder: bool
    scope_type: int
    rtpi: int
    transport_id: bytes

    @property
    def wwpn(self) -> WWN:
        return WWN.from_bytes8(self.transport_id, 8)


class Lu:
    """An engine with a recording abort_tasks and helpers to send commands to it."""

    def __init__(self, **kw: Any) -> None:
        self.ua = UnitAttentions()
        self.aborts: list[tuple[set[Nexus], Nexus]] = []
        self.abort_result: Any = None
        kw.setdefault("ports", PORTS)
        ports = kw.pop("ports")
        self.engine = ReservationEngine(self.ua, self._abort, ports, **kw)

    def _abort(self, victims: set[Nexus], caller: Nexus) -> Any:
        self.aborts.append((set(victims), caller))
        return self.abort_result

    # PR OUT
    def prout(self, nexus: Nexus, sa: int, rk: int = 0, sark: int = 0, type_: int = 0,
              scope: int = 0, data: bytes | None = None, pll: int | None = None,
              **flags: Any) -> Result:
        p = params(rk, sark, **flags) if data is None else data
        return self.engine.persistent_reserve_out(
            cmd(nexus, prout_cdb(sa, type_, scope, len(p) if pll is None else pll), p))

    def register(self, nexus: Nexus, key: int, **flags: Any) -> Result:
        r = self.prout(nexus, REGISTER, 0, key, **flags)
        assert_good(r)
        return r

    def reserve(self, nexus: Nexus, key: int, type_: int) -> Result:
        return self.prout(nexus, RESERVE, key, 0, type_)

    def release(self, nexus: Nexus, key: int, type_: int) -> Result:
        return self.prout(nexus, RELEASE, key, 0, type_)

    def move(self, nexus: Nexus, rk: int, sark: int, rtpi: int, dest: bytes | int,
             type_: int = 0, **kw: Any) -> Result:
        p = rm_params(rk, sark, rtpi, dest, **kw)
        return self.prout(nexus, R_AND_M, type_=type_, data=p)

    # PR IN
    def prin(self, nexus: Nexus, sa: int, alloc: int = 0xFFFF) -> Result:
        return self.engine.persistent_reserve_in(cmd(nexus, prin_cdb(sa, alloc)))

    def read_keys(self, nexus: Nexus = A1) -> tuple[int, list[int]]:
        r = self.prin(nexus, READ_KEYS)
        assert_good(r)
        data = bytes(r.data)
        gen, length = struct.unpack_from(">II", data)
        assert length == len(data) - 8
        return gen, [struct.unpack_from(">Q", data, 8 + i)[0] for i in range(0, length, 8)]

    def read_reservation(self, nexus: Nexus = A1) -> tuple[int, int, int] | None:
        """(key, scope, type) or None."""
        r = self.prin(nexus, READ_RESERVATION)
        assert_good(r)
        data = bytes(r.data)
        _, length = struct.unpack_from(">II", data)
        if length == 0:
            assert len(data) == 8
            return None
        assert length == 16 and len(data) == 24
        return struct.unpack_from(">Q", data, 8)[0], data[21] >> 4, data[21] & 0x0F

    def full_status(self, nexus: Nexus = A1) -> list[Descriptor]:
        r = self.prin(nexus, READ_FULL_STATUS)
        assert_good(r)
        data = bytes(r.data)
        _, length = struct.unpack_from(">II", data)
        assert length == len(data) - 8
        out, off = [], 8
        while off < len(data):
            key, flags, st, rtpi, dlen = struct.unpack_from(">Q4xBB4xHI", data, off)
            out.append(Descriptor(key, bool(flags & 2), bool(flags & 1), st, rtpi,
                                  data[off + 24:off + 24 + dlen]))
            off += 24 + dlen
        return out

    @property
    def gen(self) -> int:
        return self.engine.generation

    def pending(self, nexus: Nexus) -> tuple[tuple[int, int], ...]:
        return tuple((c[0], c[1]) for c in self.ua.pending(nexus))

    def check(self, nexus: Nexus, cdb: bytes) -> Result | None:
        return self.engine.check(cmd(nexus, cdb))


@pytest.fixture
def lu() -> Lu:
    return Lu()


def no_uas(lu: Lu, *nexuses: Nexus) -> None:
    for n in nexuses or (A1, A2, B1, B2, C1, C2):
        assert lu.pending(n) == (), n


# =========================================================================================
# PERSISTENT RESERVE IN
# =========================================================================================


def test_read_keys_empty(lu: Lu) -> None:
    r = lu.prin(A1, READ_KEYS)
    assert_good(r)
    assert bytes(r.data) == bytes(8)


def test_read_keys_lists_every_nexus_in_registration_order(lu: Lu) -> None:
    lu.register(B1, 0x22)
    lu.register(A1, 0x11)
    lu.register(A2, 0x11)
    assert lu.read_keys() == (3, [0x22, 0x11, 0x11])
    # a key change keeps the position
    assert_good(lu.prout(B1, REGISTER, 0x22, 0x33))
    assert lu.read_keys() == (4, [0x33, 0x11, 0x11])


@pytest.mark.parametrize("alloc", [0, 1, 4, 7, 8, 12, 16, 23])
def test_read_keys_truncation_keeps_full_additional_length(lu: Lu, alloc: int) -> None:
    for n, k in ((A1, 1), (B1, 2), (C1, 3)):
        lu.register(n, k)
    full = bytes(lu.prin(A1, READ_KEYS).data)
    assert len(full) == 32
    r = lu.prin(A1, READ_KEYS, alloc)
    assert_good(r)  # an allocation length < 8 is truncation, not an error (2.17 item 4)
    assert bytes(r.data) == full[:alloc]
    if alloc >= 8:
        assert struct.unpack_from(">I", bytes(r.data), 4)[0] == 24


def test_read_reservation_none_and_each_type(lu: Lu) -> None:
    assert lu.read_reservation() is None
    lu.register(A1, 0xABCD)
    for t in ALL_TYPES:
        assert_good(lu.reserve(A1, 0xABCD, t))
        key = 0 if t in (WR_EX_AR, EX_AC_AR) else 0xABCD  # 2.10: key 0 for types 7/8
        assert lu.read_reservation() == (key, 0, t)
        r = bytes(lu.prin(B1, READ_RESERVATION).data)
        assert r[16:21] == bytes(5) and r[22:24] == bytes(2)
        assert_good(lu.release(A1, 0xABCD, t))
    assert lu.read_reservation() is None


def test_read_reservation_truncated(lu: Lu) -> None:
    lu.register(A1, 5)
    lu.reserve(A1, 5, WR_EX)
    r = lu.prin(A1, READ_RESERVATION, 10)
    assert_good(r)
    assert len(r.data) == 10 and struct.unpack_from(">I", bytes(r.data), 4)[0] == 16


def test_report_capabilities_without_aptpl(lu: Lu) -> None:
    r = lu.prin(A1, REPORT_CAPABILITIES)
    assert_good(r)
    # CRH SIP_C ATP_C, no PTPL_C | TMV, ALLOW COMMANDS 001b | type mask (2.10)
    assert bytes(r.data) == bytes.fromhex("0008 1C 90 EA01 0000")


def test_report_capabilities_with_aptpl(tmp_path: Any) -> None:
    lu = Lu(aptpl_path=tmp_path / "pr.json")
    assert bytes(lu.prin(A1, REPORT_CAPABILITIES).data) == bytes.fromhex("00081D90EA010000")
    lu.register(A1, 1, aptpl=True)
    assert bytes(lu.prin(A1, REPORT_CAPABILITIES).data) == bytes.fromhex("00081D91EA010000")
    lu.register(B1, 2)  # APTPL=0 deactivates
    assert bytes(lu.prin(A1, REPORT_CAPABILITIES).data) == bytes.fromhex("00081D90EA010000")
    assert bytes(lu.prin(A1, REPORT_CAPABILITIES, 3).data) == bytes.fromhex("00081D")


def test_read_full_status_layout(lu: Lu) -> None:
    lu.register(A1, 0x1111)
    lu.register(B2, 0x2222)
    lu.reserve(A1, 0x1111, EX_AC_RO)
    r = lu.prin(C1, READ_FULL_STATUS)
    data = bytes(r.data)
    assert struct.unpack_from(">II", data) == (2, 96)
    d0 = data[8:56]
    assert d0[0:8] == (0x1111).to_bytes(8, "big")
    assert d0[8:12] == bytes(4)
    assert d0[12] == 0x01 and d0[13] == 0x06   # R_HOLDER, scope 0 / type 6
    assert d0[14:18] == bytes(4)
    assert d0[18:20] == b"\x00\x01"            # relative target port 1
    assert d0[20:24] == b"\x00\x00\x00\x18"    # TransportID is 24 bytes
    assert d0[24:48] == bytes(8) + I1.to_bytes8() + bytes(8)  # FC, protocol 0, WWPN 8-15
    d1 = data[56:104]
    assert d1[12] == 0x00 and d1[18:20] == b"\x00\x02" and d1[32:40] == I2.to_bytes8()


def test_read_full_status_all_registrants_every_registrant_holds(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(C2, 3)
    lu.reserve(B1, 2, WR_EX_AR)
    ds = lu.full_status()
    assert [(d.key, d.r_holder, d.scope_type) for d in ds] == [(1, True, 7), (2, True, 7),
                                                                (3, True, 7)]


def test_read_full_status_truncated_keeps_length(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    r = lu.prin(A1, READ_FULL_STATUS, 60)
    assert len(r.data) == 60 and struct.unpack_from(">I", bytes(r.data), 4)[0] == 96


@pytest.mark.parametrize("sa", [4, 5, 0x10, 0x1F])
def test_prin_unknown_service_action(lu: Lu, sa: int) -> None:
    assert_illegal(lu.prin(A1, sa), 0x24, field=1, bit=4, in_cdb=True)


def test_prin_changes_nothing(lu: Lu) -> None:
    lu.register(A1, 1)
    g = lu.gen
    for sa in range(4):
        lu.prin(B1, sa)
    assert lu.gen == g


# =========================================================================================
# PERSISTENT RESERVE OUT: checks that do not depend on state
# =========================================================================================


@pytest.mark.parametrize("sa", [8, 9, 0x1F])
def test_prout_unknown_service_action(lu: Lu, sa: int) -> None:
    assert_illegal(lu.prout(A1, sa), 0x24, field=1, bit=4, in_cdb=True)


@pytest.mark.parametrize("sa", [REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT,
                                R_IEK])
@pytest.mark.parametrize("length", [0, 8, 23, 25, 28, 48])
def test_parameter_list_must_be_24_bytes(lu: Lu, sa: int, length: int) -> None:
    lu.register(A1, 1)
    g = lu.gen
    data = (params(1, 2) + bytes(64))[:length]
    r = lu.prout(A1, sa, data=data, type_=WR_EX)
    assert_illegal(r, 0x1A, 0)
    assert lu.gen == g


def test_parameter_list_shorter_than_the_cdb_says(lu: Lu) -> None:
    r = lu.prout(A1, REGISTER, data=params(0, 1)[:20], pll=24)
    assert_illegal(r, 0x1A, 0)


@pytest.mark.parametrize("sa", [RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT, R_IEK])
def test_spec_i_pt_only_with_register(lu: Lu, sa: int) -> None:
    lu.register(A1, 1)
    r = lu.prout(A1, sa, 1, 1, WR_EX, spec_i_pt=True, tids=[tid(I2)])
    assert_illegal(r, 0x26, field=20, bit=3, in_cdb=False)


@pytest.mark.parametrize("sa", [RESERVE, RELEASE, PREEMPT, PREEMPT_AND_ABORT])
@pytest.mark.parametrize("scope", [1, 2, 0xF])
def test_scope_other_than_lu_is_invalid_field_in_cdb(lu: Lu, sa: int, scope: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert_illegal(lu.prout(A1, sa, 1, 2, WR_EX, scope), 0x24, field=2, bit=7, in_cdb=True)
    assert lu.engine.reservation is None and lu.gen == 2


def test_scope_ignored_where_spc_ignores_it(lu: Lu) -> None:
    assert_good(lu.prout(A1, REGISTER, 0, 1, 0xF, 0xF))
    assert_good(lu.prout(A1, R_IEK, 0, 2, 0xF, 0xF))
    assert_good(lu.prout(A1, CLEAR, 2, 0, 0xF, 0xF))


@pytest.mark.parametrize("sa", [RESERVE, PREEMPT, PREEMPT_AND_ABORT])
@pytest.mark.parametrize("bad", [0, 2, 4, 9, 0xF])
def test_invalid_type(lu: Lu, sa: int, bad: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert_illegal(lu.prout(A1, sa, 1, 2, bad), 0x24, field=2, bit=3, in_cdb=True)
    assert lu.gen == 2


def test_aptpl_not_supported_without_a_path(lu: Lu) -> None:
    assert_illegal(lu.prout(A1, REGISTER, 0, 1, aptpl=True), 0x26, field=20, bit=0,
                   in_cdb=False)
    assert_illegal(lu.prout(A1, R_IEK, 0, 1, aptpl=True), 0x26, field=20, bit=0)
    assert lu.engine.registrations == {} and lu.gen == 0
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    r = lu.move(A1, 1, 9, 1, I2, aptpl=True)
    assert_illegal(r, 0x26, field=17, bit=0, in_cdb=False)
    # APTPL is ignored by the other service actions (SPC-4 6.15.3)
    assert_good(lu.prout(A1, RELEASE, 1, 0, WR_EX, aptpl=True))


@pytest.mark.parametrize("sa", [RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT])
def test_unregistered_nexus_conflicts_even_without_reservation(lu: Lu, sa: int) -> None:
    # docs/behaviour.md 3 (SCST), also for PREEMPT
    lu.register(B1, 2)
    r = lu.prout(A1, sa, 0, 2, WR_EX)
    assert_conflict(r)
    assert lu.gen == 1 and lu.engine.reservation is None
    assert list(lu.engine.registrations) == [B1]


def test_unregistered_register_and_move_conflicts(lu: Lu) -> None:
    lu.register(B1, 2)
    lu.reserve(B1, 2, WR_EX)
    assert_conflict(lu.move(A1, 0, 5, 2, I3))


# =========================================================================================
# REGISTER / REGISTER AND IGNORE EXISTING KEY
# =========================================================================================


def test_register_new(lu: Lu) -> None:
    r = lu.prout(A1, REGISTER, 0, 0x1234)
    assert_good(r)
    assert lu.engine.registrations == {A1: (0x1234, False)}
    assert lu.gen == 1
    no_uas(lu)


def test_register_unregistered_with_nonzero_rk_conflicts(lu: Lu) -> None:
    assert_conflict(lu.prout(A1, REGISTER, 5, 6))
    assert lu.engine.registrations == {} and lu.gen == 0


def test_register_unregistered_zero_sark_is_good_no_op(lu: Lu) -> None:
    r = lu.prout(A1, REGISTER, 0, 0)
    assert_good(r)
    assert lu.engine.registrations == {}
    assert lu.gen == 1  # a REGISTER completed with GOOD (SPC-4 6.16.2, SCST)


def test_reregister_same_key_and_key_change(lu: Lu) -> None:
    lu.register(A1, 7)
    assert_good(lu.prout(A1, REGISTER, 7, 7))
    assert lu.gen == 2
    assert_good(lu.prout(A1, REGISTER, 7, 8))
    assert lu.gen == 3
    assert lu.read_keys()[1] == [8]


def test_register_wrong_rk_conflicts(lu: Lu) -> None:
    lu.register(A1, 7)
    assert_conflict(lu.prout(A1, REGISTER, 6, 8))
    assert_conflict(lu.prout(A1, REGISTER, 0, 8))
    assert lu.gen == 1 and lu.read_keys()[1] == [7]


def test_register_and_ignore_existing_key(lu: Lu) -> None:
    assert_good(lu.prout(A1, R_IEK, 0xDEAD, 5))  # RK ignored, even unregistered
    assert lu.read_keys() == (1, [5])
    assert_good(lu.prout(A1, R_IEK, 0xBEEF, 6))
    assert lu.read_keys() == (2, [6])
    assert_good(lu.prout(A1, R_IEK, 0x1, 0))     # unregister
    assert lu.read_keys() == (3, [])
    assert_good(lu.prout(A1, R_IEK, 0x1, 0))     # no-op from unregistered
    assert lu.gen == 4


def test_unregister_increments_generation(lu: Lu) -> None:
    lu.register(A1, 7)
    assert_good(lu.prout(A1, REGISTER, 7, 0))
    assert lu.engine.registrations == {} and lu.gen == 2  # docs/behaviour.md 3


def test_registration_is_per_nexus(lu: Lu) -> None:
    lu.register(A1, 7)
    # the same initiator through the other port is a different, unregistered I_T nexus
    assert_conflict(lu.prout(A2, REGISTER, 7, 8))
    assert_good(lu.prout(A2, REGISTER, 0, 8))
    assert lu.engine.registrations == {A1: (7, False), A2: (8, False)}


@pytest.mark.parametrize("t", [WR_EX, EX_AC])
def test_holder_unregister_releases_without_ua(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    assert_good(lu.prout(A1, REGISTER, 1, 0))
    assert lu.engine.reservation is None
    no_uas(lu)


@pytest.mark.parametrize("t", [WR_EX_RO, EX_AC_RO])
def test_holder_unregister_registrants_only_releases_with_ua(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(A2, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    assert_good(lu.prout(A1, REGISTER, 1, 0))
    assert lu.engine.reservation is None
    assert lu.pending(B1) == (UA_RES_RELEASED,)
    assert lu.pending(A2) == (UA_RES_RELEASED,)  # another nexus of the same initiator
    assert lu.pending(A1) == () and lu.pending(C1) == ()


@pytest.mark.parametrize("t", [WR_EX_AR, EX_AC_AR])
def test_all_registrants_reservation_lasts_until_last_registrant(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    assert_good(lu.prout(A1, REGISTER, 1, 0))
    assert lu.engine.reservation_type == t
    assert lu.engine.holders == {B1}
    no_uas(lu)
    assert_good(lu.prout(B1, REGISTER, 2, 0))
    assert lu.engine.reservation is None
    no_uas(lu)


def test_spec_i_pt_from_registered_nexus(lu: Lu) -> None:
    lu.register(A1, 1)
    r = lu.prout(A1, REGISTER, 1, 2, spec_i_pt=True, tids=[tid(I2)])
    assert_illegal(r, 0x24)
    assert lu.gen == 1 and list(lu.engine.registrations) == [A1]


def test_register_while_holding_keeps_reservation(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.prout(A1, REGISTER, 1, 9))
    assert lu.read_reservation() == (9, 0, WR_EX)


# =========================================================================================
# RESERVE
# =========================================================================================


@pytest.mark.parametrize("t", ALL_TYPES)
def test_reserve_success_no_generation_no_ua(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    g = lu.gen
    assert_good(lu.reserve(A1, 1, t))
    assert lu.gen == g
    assert lu.engine.reservation_type == t
    assert lu.engine.holder == (None if t >= WR_EX_AR else A1)
    no_uas(lu)


def test_reserve_again_same_type_good_other_type_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.reserve(A1, 1, WR_EX))
    assert_conflict(lu.reserve(A1, 1, EX_AC))
    assert lu.engine.reservation_type == WR_EX


def test_reserve_by_another_registrant_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, EX_AC)
    assert_conflict(lu.reserve(B1, 2, EX_AC))
    assert_conflict(lu.reserve(A2, 1, EX_AC))  # unregistered nexus of the holder initiator


def test_reserve_wrong_key_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    assert_conflict(lu.reserve(A1, 2, WR_EX))
    assert lu.engine.reservation is None


@pytest.mark.parametrize("t", [WR_EX_AR, EX_AC_AR])
def test_reserve_all_registrants_any_registrant_is_holder(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    assert_good(lu.reserve(B1, 2, t))
    assert_conflict(lu.reserve(B1, 2, WR_EX))


# =========================================================================================
# RELEASE
# =========================================================================================


def test_release_without_reservation_is_good(lu: Lu) -> None:
    lu.register(A1, 1)
    assert_good(lu.release(A1, 1, WR_EX))
    assert_good(lu.release(A1, 99, WR_EX))  # SCST: no reservation is checked first
    assert lu.gen == 1


def test_release_by_registered_non_holder_does_nothing(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, WR_EX_RO)
    assert_good(lu.release(B1, 2, WR_EX_RO))
    assert lu.engine.holder == A1
    no_uas(lu)


def test_release_holder_wrong_key_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert_conflict(lu.release(A1, 2, WR_EX))
    assert lu.engine.holder == A1


@pytest.mark.parametrize("t", ALL_TYPES)
def test_release_wrong_type_is_invalid_release(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, t)
    other = WR_EX if t != WR_EX else EX_AC
    assert_illegal(lu.release(A1, 1, other), 0x26, 0x04)  # docs/behaviour.md 3
    assert lu.engine.reservation_type == t


@pytest.mark.parametrize("t", ALL_TYPES)
def test_release_success(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(A2, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    g = lu.gen
    assert_good(lu.release(A1, 1, t))
    assert lu.engine.reservation is None
    assert lu.gen == g
    assert len(lu.engine.registrations) == 3
    expect = (UA_RES_RELEASED,) if t in (5, 6, 7, 8) else ()
    assert lu.pending(B1) == expect and lu.pending(A2) == expect
    assert lu.pending(A1) == () and lu.pending(C1) == ()


def test_release_all_registrants_by_any_registrant(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, EX_AC_AR)
    assert_good(lu.release(B1, 2, EX_AC_AR))
    assert lu.engine.reservation is None
    assert lu.pending(A1) == (UA_RES_RELEASED,) and lu.pending(B1) == ()


# =========================================================================================
# CLEAR
# =========================================================================================


def test_clear(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(A2, 1)
    lu.register(B1, 2)
    lu.register(C2, 3)
    lu.reserve(B1, 2, EX_AC)
    g = lu.gen
    assert_good(lu.prout(A1, CLEAR, 1))
    assert lu.gen == g + 1
    assert lu.engine.registrations == {} and lu.engine.reservation is None
    for n in (A2, B1, C2):
        assert lu.pending(n) == (UA_RES_PREEMPTED,)
    assert lu.pending(A1) == () and lu.pending(C1) == ()


def test_clear_wrong_key(lu: Lu) -> None:
    lu.register(A1, 1)
    assert_conflict(lu.prout(A1, CLEAR, 2))
    assert lu.gen == 1 and len(lu.engine.registrations) == 1


# =========================================================================================
# PREEMPT / PREEMPT AND ABORT (SPC-4 table 51)
# =========================================================================================


def test_preempt_without_reservation_removes_registrations(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(B2, 2)
    lu.register(C1, 3)
    assert_good(lu.prout(A1, PREEMPT, 1, 2, WR_EX))
    assert list(lu.engine.registrations) == [A1, C1]
    assert lu.engine.reservation is None  # TYPE ignored
    assert lu.gen == 5
    assert lu.pending(B1) == (UA_REG_PREEMPTED,) and lu.pending(B2) == (UA_REG_PREEMPTED,)
    no_uas(lu, A1, A2, C1, C2)


@pytest.mark.parametrize("sa", [PREEMPT, PREEMPT_AND_ABORT])
@pytest.mark.parametrize("others", [False, True])
def test_preempt_without_reservation_zero_sark_is_invalid_field(lu: Lu, sa: int,
                                                                others: bool) -> None:
    # SPC-4 5.14.11.4: SARK 0 is only valid under an all-registrants reservation, so with no
    # reservation at all it is ILLEGAL REQUEST 26/00 pointing at the SARK field (byte 8),
    # never RESERVATION CONFLICT; nothing changes
    lu.register(A1, 1)
    if others:
        lu.register(B1, 2)
    g = lu.gen
    assert_illegal(lu.prout(A1, sa, 1, 0, WR_EX), 0x26, field=8, in_cdb=False)
    assert lu.gen == g and lu.engine.reservation is None
    assert len(lu.engine.registrations) == (2 if others else 1)
    no_uas(lu, A1, B1)


def test_preempt_sark_matching_nothing_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(B1, 2, WR_EX)
    assert_conflict(lu.prout(A1, PREEMPT, 1, 77, WR_EX))
    assert lu.gen == 2 and lu.engine.holder == B1


def test_preempt_wrong_key_conflicts(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert_conflict(lu.prout(A1, PREEMPT, 9, 2, WR_EX))
    assert len(lu.engine.registrations) == 2


@pytest.mark.parametrize("t", [WR_EX, EX_AC, WR_EX_RO, EX_AC_RO])
def test_preempt_zero_sark_under_non_all_registrants(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(B1, 2, t)
    assert_illegal(lu.prout(A1, PREEMPT, 1, 0, t), 0x26, field=8, in_cdb=False)
    assert lu.gen == 2 and lu.engine.holder == B1


@pytest.mark.parametrize("old,new", [(WR_EX, WR_EX), (WR_EX, EX_AC), (EX_AC_RO, EX_AC_RO),
                                     (WR_EX_RO, WR_EX_AR)])
def test_preempt_the_holder(lu: Lu, old: int, new: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(B2, 2)
    lu.register(C1, 3)
    lu.reserve(B1, 2, old)
    g = lu.gen
    assert_good(lu.prout(A1, PREEMPT, 1, 2, new))
    assert lu.gen == g + 1
    assert list(lu.engine.registrations) == [A1, C1]
    assert lu.engine.reservation_type == new
    assert lu.engine.holders == ({A1, C1} if new >= WR_EX_AR else {A1})
    assert lu.pending(B1) == (UA_REG_PREEMPTED,) and lu.pending(B2) == (UA_REG_PREEMPTED,)
    assert lu.pending(C1) == ((UA_RES_RELEASED,) if old != new else ())
    assert lu.pending(A1) == ()
    assert lu.aborts == []


def test_preempt_non_holder_key_keeps_reservation(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(C1, 3)
    lu.reserve(B1, 2, WR_EX)
    assert_good(lu.prout(A1, PREEMPT, 1, 3, EX_AC))
    assert lu.engine.holder == B1 and lu.engine.reservation_type == WR_EX
    assert list(lu.engine.registrations) == [A1, B1]
    assert lu.pending(C1) == (UA_REG_PREEMPTED,) and lu.pending(B1) == ()


def test_preempt_self_changes_type(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, WR_EX_RO)
    assert_good(lu.prout(A1, PREEMPT, 1, 1, EX_AC_RO))
    assert lu.engine.holder == A1 and lu.engine.reservation_type == EX_AC_RO
    assert list(lu.engine.registrations) == [A1, B1]
    assert lu.pending(B1) == (UA_RES_RELEASED,) and lu.pending(A1) == ()


@pytest.mark.parametrize("t", [WR_EX_AR, EX_AC_AR])
def test_preempt_all_registrants_zero_sark(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(A2, 1)
    lu.register(B1, 2)
    lu.register(C1, 3)
    lu.reserve(C1, 3, t)
    assert_good(lu.prout(A1, PREEMPT, 1, 0, WR_EX))
    assert list(lu.engine.registrations) == [A1]
    assert lu.engine.holder == A1 and lu.engine.reservation_type == WR_EX
    for n in (A2, B1, C1):
        assert lu.pending(n) == (UA_REG_PREEMPTED,)
    assert lu.pending(A1) == ()
    assert lu.gen == 5


@pytest.mark.parametrize("t", [WR_EX_AR, EX_AC_AR])
def test_preempt_all_registrants_nonzero_sark_only_removes(lu: Lu, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(C1, 3)
    lu.reserve(C1, 3, t)
    assert_good(lu.prout(A1, PREEMPT, 1, 3, WR_EX))
    assert lu.engine.reservation_type == t and lu.engine.holders == {A1, B1}
    assert lu.pending(C1) == (UA_REG_PREEMPTED,)
    no_uas(lu, A1, B1)


def test_preempt_and_abort_calls_abort_tasks(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(B2, 2)
    lu.register(C1, 3)
    lu.reserve(B1, 2, EX_AC)
    assert_good(lu.prout(A1, PREEMPT_AND_ABORT, 1, 2, EX_AC))
    assert lu.aborts == [({B1, B2}, A1)]
    assert lu.pending(B1) == (UA_REG_PREEMPTED, UA_CLEARED)
    assert lu.pending(B2) == (UA_REG_PREEMPTED, UA_CLEARED)
    assert lu.pending(A1) == () and lu.pending(C1) == ()
    assert lu.engine.holder == A1 and lu.gen == 5


def test_preempt_and_abort_without_reservation(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(C2, 3)
    assert_good(lu.prout(A1, PREEMPT_AND_ABORT, 1, 3, WR_EX))
    assert lu.aborts == [({C2}, A1)]
    assert lu.pending(C2) == (UA_REG_PREEMPTED, UA_CLEARED)


def test_preempt_and_abort_own_key_aborts_own_nexus_tasks_without_ua(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 1)  # shares the key
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.prout(A1, PREEMPT_AND_ABORT, 1, 1, EX_AC))
    assert lu.aborts == [({A1, B1}, A1)]
    assert list(lu.engine.registrations) == [A1]
    assert lu.pending(A1) == ()
    assert lu.pending(B1) == (UA_REG_PREEMPTED, UA_CLEARED)


def test_preempt_and_abort_all_registrants_zero_sark(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(C1, 3)
    lu.reserve(A1, 1, EX_AC_AR)
    assert_good(lu.prout(A1, PREEMPT_AND_ABORT, 1, 0, EX_AC))
    assert lu.aborts == [({B1, C1}, A1)]


def test_preempt_and_abort_commands_cleared_only_where_tasks_were_aborted(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(B2, 2)
    lu.abort_result = {B2}  # the transport says only B2 had outstanding commands
    assert_good(lu.prout(A1, PREEMPT_AND_ABORT, 1, 2, WR_EX))
    assert lu.pending(B1) == (UA_REG_PREEMPTED,)
    assert lu.pending(B2) == (UA_REG_PREEMPTED, UA_CLEARED)


def test_preempt_and_abort_failure_aborts_nothing(lu: Lu) -> None:
    lu.register(A1, 1)
    assert_conflict(lu.prout(A1, PREEMPT_AND_ABORT, 1, 5, WR_EX))
    assert_conflict(lu.prout(A1, PREEMPT_AND_ABORT, 2, 1, WR_EX))
    assert lu.aborts == []


# =========================================================================================
# REGISTER AND MOVE: every row of SPC-4 5.14.8 (with docs/behaviour.md 3)
# =========================================================================================


@pytest.fixture
def held() -> Lu:
    """A1 (key 1) holds WR_EX_RO; B1 (key 2) is registered."""
    lu = Lu(initiator_allowed=lambda i, p: not (i == I4 and p == P2))
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert_good(lu.reserve(A1, 1, WR_EX_RO))
    return lu


def test_move_row_caller_not_registered(held: Lu) -> None:
    assert_conflict(held.move(C1, 0, 5, 2, I3))


def test_move_row_wrong_key(held: Lu) -> None:
    assert_conflict(held.move(A1, 9, 5, 2, I3))


def test_move_row_zero_sark(held: Lu) -> None:
    assert_illegal(held.move(A1, 1, 0, 2, I3), 0x26, field=8, in_cdb=False)


@pytest.mark.parametrize("tpdl", [0, 20, 23, 25, 28, 48])
def test_move_row_transport_id_length(held: Lu, tpdl: int) -> None:
    assert_illegal(held.move(A1, 1, 5, 2, I3, tpdl=tpdl), 0x26, field=20, in_cdb=False)


def test_move_row_list_shorter_than_24(held: Lu) -> None:
    r = held.prout(A1, R_AND_M, data=rm_params(1, 5, 2, I3)[:20])
    assert_illegal(r, 0x1A)


@pytest.mark.parametrize("rtpi", [0, 3, 0xFFFF])
def test_move_row_unknown_relative_port(held: Lu, rtpi: int) -> None:
    assert_illegal(held.move(A1, 1, 5, rtpi, I3), 0x26, field=18, in_cdb=False)


@pytest.mark.parametrize("proto,fmt", [(5, 0), (6, 0), (0, 1)])
def test_move_row_not_an_fc_transport_id(held: Lu, proto: int, fmt: int) -> None:
    assert_illegal(held.move(A1, 1, 5, 2, tid(I3, proto, fmt)), 0x26, field=24)


@pytest.mark.parametrize("rtpi", [1, 2])
def test_move_row_to_own_initiator_port(held: Lu, rtpi: int) -> None:
    assert_illegal(held.move(A1, 1, 5, rtpi, I1), 0x26, field=24, in_cdb=False)


def test_move_row_destination_masked(held: Lu) -> None:
    assert_illegal(held.move(A1, 1, 5, 2, I4), 0x26, field=24)


def test_move_row_no_reservation(held: Lu) -> None:
    assert_good(held.release(A1, 1, WR_EX_RO))
    g = held.gen
    assert_illegal(held.move(A1, 1, 5, 2, I3), 0x24)  # docs/behaviour.md 3
    assert held.gen == g


def test_move_row_caller_not_holder(held: Lu) -> None:
    assert_conflict(held.move(B1, 2, 5, 2, I3))


@pytest.mark.parametrize("t", [WR_EX_AR, EX_AC_AR])
def test_move_row_all_registrants(t: int) -> None:
    lu = Lu()
    lu.register(A1, 1)
    lu.reserve(A1, 1, t)
    assert_conflict(lu.move(A1, 1, 5, 2, I3))


def test_move_success(held: Lu) -> None:
    g = held.gen
    assert_good(held.move(A1, 1, 0x55, 2, I3, type_=EX_AC))  # CDB TYPE ignored
    assert held.gen == g + 1
    assert held.engine.holder == C2
    assert held.engine.reservation_type == WR_EX_RO
    assert held.engine.registrations == {A1: (1, False), B1: (2, False), C2: (0x55, False)}
    assert held.read_reservation() == (0x55, 0, WR_EX_RO)
    no_uas(held)


def test_move_unreg_unregisters_source(held: Lu) -> None:
    assert_good(held.move(A1, 1, 0x55, 1, I3, unreg=True))
    assert held.engine.registrations == {B1: (2, False), C1: (0x55, False)}
    assert held.engine.holder == C1


def test_move_to_registered_destination_replaces_its_key(held: Lu) -> None:
    assert_good(held.move(A1, 1, 0x77, 1, I2))
    assert held.engine.registrations[B1] == (0x77, False)
    assert held.engine.holder == B1
    assert held.read_keys()[1] == [1, 0x77]


# =========================================================================================
# SPEC_I_PT
# =========================================================================================


def spec_lu() -> Lu:
    return Lu(initiator_allowed=lambda i, p: not (i == I4 and p == P2))


def test_spec_i_pt_registers_caller_and_transport_ids() -> None:
    lu = spec_lu()
    r = lu.prout(A2, REGISTER, 0, 9, spec_i_pt=True, tids=[tid(I2), tid(I3)])
    assert_good(r)
    assert lu.engine.registrations == {A2: (9, False), B2: (9, False), C2: (9, False)}
    assert lu.gen == 1


def test_spec_i_pt_skips_already_registered() -> None:
    lu = spec_lu()
    lu.register(B1, 5)
    assert_good(lu.prout(A1, REGISTER, 0, 9, spec_i_pt=True,
                         tids=[tid(I2), tid(I3), tid(I3), tid(I1)]))
    assert lu.engine.registrations == {B1: (5, False), A1: (9, False), C1: (9, False)}


@pytest.mark.parametrize("bad", [tid(I3, proto=5), tid(I3, fmt=1), tid(0), tid(I4)])
def test_spec_i_pt_all_or_nothing(bad: bytes) -> None:
    lu = spec_lu()
    lu.register(B1, 5)
    r = lu.prout(A2, REGISTER, 0, 9, spec_i_pt=True, tids=[tid(I3), bad])
    assert_illegal(r, 0x26, field=52, in_cdb=False)
    assert lu.engine.registrations == {B1: (5, False)}
    assert lu.gen == 1


@pytest.mark.parametrize("tpdl", [0, 23, 25, 47, 100])
def test_spec_i_pt_length_mismatch(tpdl: int) -> None:
    lu = spec_lu()
    r = lu.prout(A1, REGISTER, 0, 9, spec_i_pt=True, tids=[tid(I2)], tpdl=tpdl)
    assert_illegal(r, 0x26, field=24)
    assert lu.engine.registrations == {}


def test_spec_i_pt_list_without_tpdl() -> None:
    lu = spec_lu()
    r = lu.prout(A1, REGISTER, 0, 9, data=params(0, 9, spec_i_pt=True) + b"\0\0")
    assert_illegal(r, 0x26, field=24)


def test_spec_i_pt_with_all_tg_pt() -> None:
    lu = spec_lu()
    assert_good(lu.prout(A1, REGISTER, 0, 9, spec_i_pt=True, all_tg_pt=True,
                         tids=[tid(I2), tid(I4)]))
    regs = lu.engine.registrations
    assert set(regs) == {A1, A2, B1, B2, nx(I4)}
    assert regs[A1].all_tg_pt and regs[B2].all_tg_pt
    assert regs[nx(I4)].all_tg_pt  # I4 reaches the LU through port 1 only: all its ports


# =========================================================================================
# ALL_TG_PT
# =========================================================================================


def test_all_tg_pt_registers_every_port(lu: Lu) -> None:
    assert_good(lu.prout(A1, REGISTER, 0, 9, all_tg_pt=True))
    assert lu.engine.registrations == {A1: (9, True), A2: (9, True)}
    assert lu.gen == 1
    assert lu.read_keys()[1] == [9, 9]
    ds = lu.full_status()
    assert [(d.wwpn, d.all_tg_pt, d.rtpi) for d in ds] == [(I1, True, 1), (I1, True, 2)]


def test_all_tg_pt_respects_masking() -> None:
    lu = Lu(initiator_allowed=lambda i, p: p == P1)
    assert_good(lu.prout(A1, R_IEK, 0, 9, all_tg_pt=True))
    assert lu.engine.registrations == {A1: (9, True)}


def test_all_tg_pt_skips_ports_already_registered(lu: Lu) -> None:
    lu.register(A2, 4)
    assert_good(lu.prout(A1, REGISTER, 0, 9, all_tg_pt=True))
    assert lu.engine.registrations == {A2: (4, False), A1: (9, False)}


def test_all_tg_pt_register_and_ignore_replaces_registered_ports(lu: Lu) -> None:
    lu.register(A2, 4)
    assert_good(lu.prout(A1, R_IEK, 0, 9, all_tg_pt=True))
    assert lu.engine.registrations == {A2: (9, True), A1: (9, True)}
    assert lu.gen == 2


def test_all_tg_pt_unregister_removes_all(lu: Lu) -> None:
    lu.prout(A1, REGISTER, 0, 9, all_tg_pt=True)
    lu.register(B1, 2)
    lu.reserve(A2, 9, EX_AC_RO)
    assert_good(lu.prout(A1, REGISTER, 9, 0, all_tg_pt=True))
    assert lu.engine.registrations == {B1: (2, False)}
    assert lu.engine.reservation is None
    assert lu.pending(B1) == (UA_RES_RELEASED,)


def test_all_tg_pt_key_change_through_one_port(lu: Lu) -> None:
    lu.prout(A1, REGISTER, 0, 9, all_tg_pt=True)
    assert_good(lu.prout(A2, REGISTER, 9, 10))
    # only that nexus changes; the pair is no longer "one key on every port"
    assert lu.engine.registrations == {A1: (9, False), A2: (10, False)}
    assert_good(lu.prout(A1, REGISTER, 9, 11, all_tg_pt=True))
    assert lu.engine.registrations == {A1: (11, False), A2: (10, False)}
    assert_good(lu.prout(A1, R_IEK, 0, 12, all_tg_pt=True))
    assert lu.engine.registrations == {A1: (12, True), A2: (12, True)}


def test_all_tg_pt_ignored_by_other_service_actions(lu: Lu) -> None:
    lu.register(A1, 1)
    assert_good(lu.prout(A1, RESERVE, 1, 0, WR_EX, all_tg_pt=True))
    assert lu.engine.holder == A1


def test_state_is_shared_by_ports(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert lu.read_reservation(C2) == (1, 0, WR_EX)
    assert lu.check(C2, bytes((0x2A,)) + bytes(9)) is not None


def test_nexus_loss_and_reset_keep_persistent_state(lu: Lu) -> None:
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    lu.engine.nexus_lost(A1)
    lu.engine.reset()
    assert lu.engine.holder == A1 and lu.engine.registrations == {A1: (1, False)}


# =========================================================================================
# SPC-2 RESERVE / RELEASE and CRH (SPC-4 5.14.3, docs/behaviour.md 3)
# =========================================================================================

RESERVE6, RESERVE10 = bytes(6).replace(b"\0", b"\x16", 1), bytes((0x56,)) + bytes(9)
RELEASE6, RELEASE10 = bytes((0x17,)) + bytes(5), bytes((0x57,)) + bytes(9)
TUR, INQUIRY = bytes(6), bytes((0x12, 0, 0, 0, 36, 0))
REPORT_LUNS = bytes((0xA0,)) + bytes(11)
REQUEST_SENSE = bytes((0x03, 0, 0, 0, 18, 0))
READ10, WRITE10 = bytes((0x28,)) + bytes(9), bytes((0x2A,)) + bytes(9)


def spc2(lu: Lu, nexus: Nexus, cdb: bytes) -> Result:
    c = cmd(nexus, cdb)
    return lu.engine.reserve(c) if cdb[0] in (0x16, 0x56) else lu.engine.release(c)


@pytest.mark.parametrize("res,rel", [(RESERVE6, RELEASE6), (RESERVE10, RELEASE10)])
def test_spc2_reserve_release(lu: Lu, res: bytes, rel: bytes) -> None:
    assert_good(spc2(lu, A1, res))
    assert lu.engine.spc2_holder == A1
    assert_good(spc2(lu, A1, res))          # again from the holder: GOOD
    assert_conflict(spc2(lu, B1, res))
    assert_conflict(spc2(lu, A2, res))      # another nexus of the same initiator
    assert_good(spc2(lu, B1, rel))          # release by a non-holder: GOOD, no effect
    assert lu.engine.spc2_holder == A1
    assert_good(spc2(lu, A1, rel))
    assert lu.engine.spc2_holder is None
    assert_good(spc2(lu, B1, res))
    assert lu.engine.spc2_holder == B1


def test_spc2_conflicts_for_other_nexuses(lu: Lu) -> None:
    spc2(lu, A1, RESERVE6)
    for c in (TUR, READ10, WRITE10, bytes((0x25,)) + bytes(9), bytes((0x1A,)) + bytes(5)):
        assert lu.check(A1, c) is None
        assert_conflict(lu.check(B1, c) or Result())
        assert_conflict(lu.check(A2, c) or Result())
    for c in (INQUIRY, REPORT_LUNS, REQUEST_SENSE):
        assert lu.check(B1, c) is None


@pytest.mark.parametrize("who", [A1, B1])
def test_spc2_makes_pr_in_and_out_conflict_for_everyone(lu: Lu, who: Nexus) -> None:
    spc2(lu, A1, RESERVE10)
    for sa in range(4):
        assert_conflict(lu.prin(who, sa))
    assert_conflict(lu.prout(who, REGISTER, 0, 5))
    assert lu.engine.registrations == {}
    assert_conflict(lu.prout(who, 9))  # even a malformed one


def test_spc2_released_by_nexus_loss_of_holder_only(lu: Lu) -> None:
    spc2(lu, A1, RESERVE6)
    lu.engine.nexus_lost(B1)
    lu.engine.nexus_lost(A2)
    assert lu.engine.spc2_holder == A1
    lu.engine.nexus_lost(A1)
    assert lu.engine.spc2_holder is None


def test_spc2_released_by_reset(lu: Lu) -> None:
    spc2(lu, A1, RESERVE6)
    lu.engine.reset()
    assert lu.engine.spc2_holder is None
    assert lu.check(B1, WRITE10) is None


def test_reserve10_third_party_not_supported(lu: Lu) -> None:
    r = spc2(lu, A1, bytes((0x56, 0x10)) + bytes(8))
    assert_illegal(r, 0x24, field=1, bit=4)
    r = spc2(lu, A1, bytes((0x57, 0x10)) + bytes(8))
    assert_illegal(r, 0x24, field=1, bit=4)


@pytest.mark.parametrize("cdb", [RESERVE6, RESERVE10, RELEASE6, RELEASE10])
def test_crh_registrations_without_reservation_conflict(lu: Lu, cdb: bytes) -> None:
    lu.register(A1, 1)
    assert_conflict(spc2(lu, A1, cdb))
    assert_conflict(spc2(lu, B1, cdb))
    assert lu.engine.spc2_holder is None


@pytest.mark.parametrize("cdb", [RESERVE6, RESERVE10, RELEASE6, RELEASE10])
@pytest.mark.parametrize("t", ALL_TYPES)
def test_crh_with_persistent_reservation(lu: Lu, cdb: bytes, t: int) -> None:
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.reserve(A1, 1, t)
    assert_good(spc2(lu, A1, cdb))   # the holder: GOOD, no effect
    r = spc2(lu, B1, cdb)            # registered non-holder: GOOD only under 5-8
    if t in (WR_EX, EX_AC):
        assert_conflict(r)
    else:
        assert_good(r)
    assert_conflict(spc2(lu, C1, cdb))   # unregistered
    assert lu.engine.spc2_holder is None
    assert lu.engine.reservation_type == t


# =========================================================================================
# Fault switches
# =========================================================================================


def test_unknown_fault_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Lu(fault="nope")


def test_faults_change_behaviour() -> None:
    assert "no-ua" in FAULTS
    lu = Lu(fault="no-ua")
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.prout(A1, CLEAR, 1)
    assert lu.pending(B1) == ()

    lu = Lu(fault="wrong-generation")
    lu.register(A1, 1)
    lu.prout(A1, REGISTER, 1, 0)
    assert lu.gen == 1

    lu = Lu(fault="release-keeps-reservation")
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.release(A1, 1, WR_EX))
    assert lu.engine.holder == A1

    lu = Lu(fault="preempt-ignores-key")
    lu.register(A1, 1)
    lu.register(B1, 2)
    lu.register(C1, 3)
    lu.reserve(B1, 2, WR_EX)
    assert_good(lu.prout(A1, PREEMPT, 1, 3, EX_AC))
    assert lu.engine.holder == A1

    lu = Lu(fault="no-conflict")
    lu.register(A1, 1)
    lu.reserve(A1, 1, EX_AC)
    assert lu.check(B1, WRITE10) is None

    lu = Lu(fault="spc2-survives-nexus-loss")
    spc2(lu, A1, RESERVE6)
    lu.engine.nexus_lost(A1)
    assert lu.engine.spc2_holder == A1

    lu = Lu(fault="read-keys-short-length")
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert struct.unpack_from(">I", bytes(lu.prin(A1, READ_KEYS, 16).data), 4)[0] == 8

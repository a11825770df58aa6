"""The disk LU (fcsoft.scsi.disk, modes.py): unit attentions, delegation to the reservation
engine, CDB checks, INQUIRY, mode pages, START STOP UNIT, REPORT SUPPORTED OPERATION CODES,
REPORT TARGET PORT GROUPS, and random CDBs; sense data decoded from its bytes. Block commands
are in test_block.py."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.scsi.cdb import SUPPORTED_COMMANDS
from fcsoft.scsi.disk import LogicalUnit
from fcsoft.scsi.sense import Sense, SenseKey, Status
from fcsoft.scsi.types import Command, Result
from fcsoft.wire.wwn import WWN

from .conftest import array_config
from .fakes import (
    HOST1,
    HOST2,
    ILLEGAL,
    INVALID_FIELD,
    PORT2,
    UA,
    FakeEngine,
    compare_and_write,
    fake_factory,
    field_pointer,
    inquiry,
    mode_select10,
    mode_select6,
    mode_sense10,
    mode_sense6,
    nexus,
    read10,
    ready,
    report_luns,
    request_sense,
    rsoc,
    rtpg,
    run,
    rw6,
    sense_of,
    start_stop,
    tur,
    unmap,
    verify10,
    write10,
    write_same16,
)

BLOCKS = 8192  # LU "boot": 4 MiB of 512-byte blocks


# --- unit attentions --------------------------------------------------------------------------


def test_first_contact_gets_power_on_then_clears(lu: LogicalUnit) -> None:
    r = run(lu, read10(0, 1))
    assert sense_of(r) == (UA, 0x29, 0x00)
    assert not r.data
    assert run(lu, read10(0, 1)).good
    # every nexus has its own: another port, another initiator
    assert sense_of(run(lu, tur(), nx=nexus(HOST1, PORT2, 2))) == (UA, 0x29, 0x00)
    assert sense_of(run(lu, tur(), nx=nexus(HOST2))) == (UA, 0x29, 0x00)
    assert run(lu, tur()).good


def test_inquiry_and_report_luns_pass_a_unit_attention_without_clearing_it(
        lu: LogicalUnit) -> None:
    assert run(lu, inquiry()).good
    assert run(lu, report_luns()).good
    assert sense_of(run(lu, tur())) == (UA, 0x29, 0x00)


def test_request_sense_returns_the_unit_attention_as_data_and_clears_it(
        lu: LogicalUnit) -> None:
    r = run(lu, request_sense())
    assert r.good
    s = Sense.decode(bytes(r.data))
    assert (s.key, s.code) == (SenseKey.UNIT_ATTENTION, (0x29, 0x00))
    assert run(lu, tur()).good
    r = run(lu, request_sense())
    s = Sense.decode(bytes(r.data))
    assert (s.key, s.code) == (SenseKey.NO_SENSE, (0, 0))
    assert len(r.data) == 18
    assert len(run(lu, request_sense(alloc=8)).data) == 8


def test_request_sense_desc_is_refused(rlu: LogicalUnit) -> None:
    r = run(rlu, request_sense(desc=True))
    assert sense_of(r) == INVALID_FIELD
    assert field_pointer(r) == (1, 0, True)


def test_unit_attentions_are_reported_by_priority_one_at_a_time(rlu: LogicalUnit) -> None:
    other = nexus(HOST2)
    ready(rlu, other)
    rlu.luns_changed([other])  # 3F/0E
    assert run(rlu, mode_select6(0)).good  # (nothing changes)
    select = bytes((0, 0, 0x10, 0)) + bytes((0x08, 0x12, 0x00)) + bytes(17)  # WCE 1 -> 0
    assert run(rlu, mode_select6(len(select)), select).good  # 2A/01 to the other nexus
    rlu.nexus_lost(other)  # 29/07
    codes = []
    for _ in range(3):
        key, asc, ascq = sense_of(run(rlu, tur(), nx=other))
        assert key == UA
        codes.append((asc, ascq))
    assert codes == [(0x29, 0x07), (0x2A, 0x01), (0x3F, 0x0E)]
    assert run(rlu, tur(), nx=other).good
    assert run(rlu, tur()).good  # the issuer of MODE SELECT got nothing


def test_nexus_loss_unit_attention_and_engine_call(rlu: LogicalUnit) -> None:
    rlu.nexus_lost(nexus())
    assert ("nexus_lost", nexus()) in rlu.reservations.calls
    assert sense_of(run(rlu, tur())) == (UA, 0x29, 0x07)
    assert run(rlu, tur()).good
    # a nexus that never came in gets only the power-on condition later
    rlu.nexus_lost(nexus(HOST2))
    assert sense_of(run(rlu, tur(), nx=nexus(HOST2))) == (UA, 0x29, 0x00)
    assert run(rlu, tur(), nx=nexus(HOST2)).good


@pytest.mark.parametrize("kind", ["lun", "target"])
def test_reset_gives_every_nexus_power_on_and_restores_mode_pages(rlu: LogicalUnit,
                                                                   kind: str) -> None:
    select = bytes(4) + bytes((0x08, 0x12, 0x00)) + bytes(17)
    assert run(rlu, mode_select6(len(select)), select).good
    assert not rlu.modes.write_cache
    rlu.luns_changed([nexus()])
    rlu.reset(kind)  # type: ignore[arg-type]
    assert ("reset", None) in rlu.reservations.calls
    assert rlu.modes.write_cache
    assert sense_of(run(rlu, tur())) == (UA, 0x29, 0x00)
    assert run(rlu, tur()).good  # earlier conditions went with the reset
    assert sense_of(run(rlu, tur(), nx=nexus(HOST2))) == (UA, 0x29, 0x00)
    with pytest.raises(ValueError):
        rlu.reset("bus")  # type: ignore[arg-type]


# --- reservations delegation --------------------------------------------------------------------


def test_engine_check_is_asked_for_ordinary_commands_only(rlu: LogicalUnit) -> None:
    engine: FakeEngine = rlu.reservations
    engine.calls.clear()
    run(rlu, read10(0, 1))
    assert engine.calls == [("check", b"\x28")]
    engine.calls.clear()
    prin = struct.pack(">BB5xHB", 0x5E, 0, 100, 0)
    assert sense_of(run(rlu, prin)) == (ILLEGAL, 0x20, 0x00)
    param = bytes(24)
    prout = struct.pack(">BBB2xIB", 0x5F, 0, 0, 24, 0)
    assert sense_of(run(rlu, prout, param + b"extra")) == (ILLEGAL, 0x20, 0x00)
    assert run(rlu, bytes((0x16, 0, 0, 0, 0, 0))).good
    assert run(rlu, bytes((0x17, 0, 0, 0, 0, 0))).good
    assert run(rlu, bytes((0x56,)) + bytes(9)).good
    assert run(rlu, bytes((0x57,)) + bytes(9)).good
    assert [c[0] for c in engine.calls] == ["prin", "prout", "reserve", "release", "reserve",
                                            "release"]
    assert engine.calls[1] == ("prout", param)  # cut to PARAMETER LIST LENGTH


def test_conflict_from_the_engine_is_answered_before_cdb_checks(rlu: LogicalUnit) -> None:
    rlu.reservations.conflict = True
    r = run(rlu, write10(0, 1), bytes(512))
    assert r.status == Status.RESERVATION_CONFLICT and r.sense is None
    assert run(rlu, bytes((0xC0,)) + bytes(9)).status == Status.RESERVATION_CONFLICT
    assert run(rlu, bytes((0x16, 0, 0, 0, 0, 0))).good  # RESERVE: the engine's own rules


def test_persistent_reserve_in_data_is_cut_to_the_allocation_length(rlu: LogicalUnit) -> None:
    rlu.reservations.persistent_reserve_in = lambda cmd: Result(data=bytes(range(40)))
    r = run(rlu, struct.pack(">BB5xHB", 0x5E, 0, 10, 0))
    assert bytes(r.data) == bytes(range(10))


# --- opcode and reserved-field checks -----------------------------------------------------------


def test_unsupported_opcode(rlu: LogicalUnit) -> None:
    for cdb in (bytes((0xC0,)) + bytes(9), bytes((0x7F,)) + bytes(31), bytes((0xA1,)) + bytes(11),
                bytes((0x9F, 0x10)) + bytes(14)):
        r = run(rlu, cdb)
        assert sense_of(r) == (ILLEGAL, 0x20, 0x00)
        assert field_pointer(r) == (0, None, True)
    assert sense_of(run(rlu, b"")) == (ILLEGAL, 0x20, 0x00)


def test_unsupported_service_action(rlu: LogicalUnit) -> None:
    r = run(rlu, struct.pack(">BB12xBB", 0x9E, 0x12, 0, 0))  # GET LBA STATUS: not offered
    assert sense_of(r) == INVALID_FIELD
    assert field_pointer(r) == (1, 4, True)
    r = run(rlu, bytes((0xA3, 0x05)) + bytes(10))
    assert field_pointer(r) == (1, 4, True)


def test_reserved_bits_are_refused_with_byte_and_bit(rlu: LogicalUnit) -> None:
    cdb = bytearray(read10(0, 1))
    cdb[6] = 0x20  # byte 6 bits 7-5 reserved (group number is 4-0)
    r = run(rlu, bytes(cdb))
    assert sense_of(r) == INVALID_FIELD
    assert field_pointer(r) == (6, 5, True)
    r = run(rlu, bytes((0x00, 0, 0, 0, 0, 0x04)))  # NACA in the CONTROL byte
    assert field_pointer(r) == (5, 2, True)
    assert run(rlu, bytes((0x00, 0, 0, 0, 0, 0xC0))).good  # vendor-specific control bits
    r = run(rlu, bytes((0x12, 0x02, 0, 0, 36, 0)))  # CMDDT (obsolete)
    assert field_pointer(r) == (1, 1, True)


def test_short_cdb_is_padded_and_long_cdb_field_is_ignored(rlu: LogicalUnit) -> None:
    assert run(rlu, b"\x00").good  # TEST UNIT READY
    assert run(rlu, read10(0, 1) + b"\xff" * 6).good  # FCP's 16-byte CDB field


# --- INQUIRY (layouts in test_inquiry.py) -------------------------------------------------------


def test_inquiry_standard_and_truncation(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, inquiry()).data)
    assert len(data) == 96 and data[0] == 0 and data[2] == 0x06
    assert data[8:16] == b"FCSOFT  " and data[16:32] == b"VDISK".ljust(16)
    assert bytes(run(rlu, inquiry(alloc=5)).data) == data[:5]
    assert run(rlu, inquiry(alloc=0)).data == b""


def test_inquiry_errors(rlu: LogicalUnit) -> None:
    r = run(rlu, inquiry(page=0x80))  # page code without EVPD
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 2
    r = run(rlu, inquiry(evpd=True, page=0x89))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 2


def test_vpd_identity_is_the_same_through_every_port(rlu: LogicalUnit) -> None:
    via1 = bytes(run(rlu, inquiry(evpd=True, page=0x83)).data)
    nx2 = nexus(HOST1, PORT2, 2)
    ready(rlu, nx2)
    via2 = bytes(run(rlu, inquiry(evpd=True, page=0x83), nx=nx2).data)
    assert via1[4:24] == via2[4:24]  # the NAA LU designator
    assert via1[8:24] == rlu.naa
    assert via1 != via2  # target port designators differ
    assert bytes(run(rlu, inquiry(evpd=True, page=0x80)).data)[4:] == rlu.serial.encode()


# --- MODE SENSE / MODE SELECT ---------------------------------------------------------------------


def test_mode_sense6_all_pages(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, mode_sense6(0x3F)).data)
    assert data[0] == len(data) - 1
    assert data[2] == 0x10 and data[3] == 8  # DPOFUA, one short block descriptor
    assert struct.unpack_from(">II", data, 4) == (BLOCKS, 512)
    pages = data[12:]
    assert [pages[0], pages[20], pages[32]] == [0x08, 0x0A, 0x1C]
    assert pages[2] & 0x04  # WCE
    assert pages[20 + 5] & 0x40  # TAS
    assert bytes(run(rlu, mode_sense6(0x3F, subpage=0xFF)).data) == data
    short = bytes(run(rlu, mode_sense6(0x3F, alloc=10)).data)
    assert short == data[:10]  # MODE DATA LENGTH still tells the full size


def test_mode_sense_page_controls(rlu: LogicalUnit) -> None:
    changeable = bytes(run(rlu, mode_sense6(0x08, pc=1, dbd=True)).data)
    assert changeable[4:7] == b"\x08\x12\x04" and not any(changeable[7:])
    default = bytes(run(rlu, mode_sense6(0x08, pc=2, dbd=True)).data)
    assert default[6] == 0x04
    r = run(rlu, mode_sense6(0x08, pc=3))
    assert sense_of(r) == (ILLEGAL, 0x39, 0x00)


def test_mode_sense10_long_descriptor_and_dbd(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, mode_sense10(0x0A, llbaa=True)).data)
    length, _, dsp, longlba, bdl = struct.unpack_from(">HBBBxH", data)
    assert (length, dsp, longlba, bdl) == (len(data) - 2, 0x10, 1, 16)
    assert struct.unpack_from(">Q4xI", data, 8) == (BLOCKS, 512)
    assert data[24] == 0x0A
    data = bytes(run(rlu, mode_sense10(0x1C, dbd=True)).data)
    assert struct.unpack_from(">H", data, 6)[0] == 0 and data[8] == 0x1C


def test_mode_sense_errors(rlu: LogicalUnit) -> None:
    r = run(rlu, mode_sense6(0x19))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (2, 5, True)
    r = run(rlu, mode_sense6(0x08, subpage=1))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (3, 7, True)


def test_mode_select_changes_wce(rlu: LogicalUnit) -> None:
    page = bytearray(bytes(run(rlu, mode_sense10(0x08, dbd=True)).data)[8:])
    page[0] |= 0x80  # PS as MODE SENSE may return it: ignored
    page[2] &= ~0x04
    param = bytes(8) + bytes(page)
    assert run(rlu, mode_select10(len(param)), param).good
    assert not rlu.modes.write_cache
    current = bytes(run(rlu, mode_sense6(0x08, dbd=True)).data)
    assert current[6] & 0x04 == 0


def test_mode_select_with_a_block_descriptor_restating_the_geometry(rlu: LogicalUnit) -> None:
    param = bytes((0, 0, 0, 8)) + struct.pack(">II", 0, 512)
    assert run(rlu, mode_select6(len(param)), param).good
    param = bytes((0, 0, 0, 8)) + struct.pack(">II", 0, 4096)
    r = run(rlu, mode_select6(len(param)), param)
    assert sense_of(r) == (ILLEGAL, 0x26, 0x00) and field_pointer(r) == (9, 7, False)
    param = bytes((0, 0, 0, 8)) + struct.pack(">II", 5, 512)
    r = run(rlu, mode_select6(len(param)), param)
    assert field_pointer(r) == (4, 7, False)
    param = bytes((0, 0, 0, 7)) + bytes(7)
    assert field_pointer(run(rlu, mode_select6(len(param)), param)) == (3, None, False)


def test_mode_select_errors(rlu: LogicalUnit) -> None:
    ok = bytes(4) + bytes((0x08, 0x12, 0x04)) + bytes(17)
    r = run(rlu, mode_select6(len(ok), sp=True), ok)
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (1, 0, True)
    r = run(rlu, mode_select6(len(ok), pf=False), ok)
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (1, 4, True)
    bad = bytearray(ok)
    bad[4 + 2] |= 0x01  # RCD: not changeable
    r = run(rlu, mode_select6(len(bad)), bytes(bad))
    assert sense_of(r) == (ILLEGAL, 0x26, 0x00) and field_pointer(r) == (6, 0, False)
    bad = bytearray(ok)
    bad[5] = 0x10  # page length
    assert field_pointer(run(rlu, mode_select6(len(bad)), bytes(bad))) == (5, 7, False)
    unknown = bytes(4) + bytes((0x19, 0x06)) + bytes(6)
    assert field_pointer(run(rlu, mode_select6(len(unknown)), unknown)) == (4, 5, False)
    assert sense_of(run(rlu, mode_select6(10), ok[:10])) == (ILLEGAL, 0x1A, 0x00)
    assert sense_of(run(rlu, mode_select10(6), bytes(6))) == (ILLEGAL, 0x1A, 0x00)
    ie = bytes(4) + bytes((0x1C, 0x0A, 0x08, 0x08)) + bytes(8)  # MRIE 8: reserved
    assert field_pointer(run(rlu, mode_select6(len(ie)), ie)) == (7, 3, False)
    assert rlu.modes.write_cache  # nothing applied


def test_mode_select_is_all_or_nothing(rlu: LogicalUnit) -> None:
    caching = bytes((0x08, 0x12, 0x00)) + bytes(17)  # valid change
    control = bytes((0x0A, 0x0A, 0x06)) + bytes(9)  # D_SENSE: not changeable
    param = bytes(4) + caching + control
    assert sense_of(run(rlu, mode_select6(len(param)), param)) == (ILLEGAL, 0x26, 0x00)
    assert rlu.modes.write_cache


# --- START STOP UNIT / PREVENT ALLOW --------------------------------------------------------------


def test_start_stop_unit(file_lu: LogicalUnit, fsyncs: list[int]) -> None:
    assert run(file_lu, start_stop(start=False)).good
    assert len(fsyncs) == 1  # a stop flushes
    assert run(file_lu, tur()).good  # and the shared LU stays ready
    assert run(file_lu, start_stop(start=False, no_flush=True)).good
    assert len(fsyncs) == 1
    assert run(file_lu, start_stop(start=False, loej=True)).good  # fixed medium: no-op
    assert run(file_lu, start_stop(start=True, immed=True)).good
    assert run(file_lu, start_stop(pc=0x3)).good
    r = run(file_lu, start_stop(pc=0x5))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (4, 7, True)


def test_prevent_allow_medium_removal(rlu: LogicalUnit) -> None:
    assert run(rlu, bytes((0x1E, 0, 0, 0, 1, 0))).good
    assert run(rlu, bytes((0x1E, 0, 0, 0, 0, 0))).good
    r = run(rlu, bytes((0x1E, 0, 0, 0, 2, 0)))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (4, 1, True)


# --- REPORT SUPPORTED OPERATION CODES / REPORT TARGET PORT GROUPS ---------------------------------


def test_rsoc_all_commands(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, rsoc()).data)
    length = struct.unpack_from(">I", data)[0]
    assert length == len(data) - 4 == 8 * len(SUPPORTED_COMMANDS)
    listed = set()
    for off in range(4, len(data), 8):
        op, sa, flags, size = struct.unpack_from(">BxHxBH", data, off)
        listed.add((op, sa if flags & 1 else None))
        assert size in (6, 10, 12, 16)
    assert listed == {(c.opcode, c.service_action) for c in SUPPORTED_COMMANDS}
    assert (0x9E, 0x10) in listed and (0x28, None) in listed and (0x5F, 7) in listed
    with_timeouts = bytes(run(rlu, rsoc(rctd=True)).data)
    assert len(with_timeouts) == 4 + 20 * len(SUPPORTED_COMMANDS)
    assert with_timeouts[4 + 5] & 0x02  # CTDP
    assert bytes(run(rlu, rsoc(alloc=6)).data) == data[:6]


def test_rsoc_one_command(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, rsoc(option=1, op=0x28)).data)
    assert data[1] & 0x07 == 0x03 and struct.unpack_from(">H", data, 2)[0] == 10
    assert data[4:] == bytes.fromhex("28feffffffff1fffff00")
    data = bytes(run(rlu, rsoc(option=2, op=0xA3, sa=0x0C)).data)
    assert data[4:6] == b"\xa3\x0c" and len(data) == 4 + 12
    data = bytes(run(rlu, rsoc(option=3, op=0x9E, sa=0x10, rctd=True)).data)
    assert data[1] == 0x83 and len(data) == 4 + 16 + 12
    assert bytes(run(rlu, rsoc(option=1, op=0xC0)).data) == b"\x00\x01\x00\x00"
    assert bytes(run(rlu, rsoc(option=2, op=0x9E, sa=0x12)).data) == b"\x00\x01\x00\x00"
    assert bytes(run(rlu, rsoc(option=3, op=0x12)).data)[4] == 0x12


def test_rsoc_errors(rlu: LogicalUnit) -> None:
    r = run(rlu, rsoc(option=1, op=0xA3))  # has service actions
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 3
    r = run(rlu, rsoc(option=2, op=0x28))  # has none
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 3
    r = run(rlu, rsoc(option=5))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (2, 2, True)


@pytest.mark.parametrize("extended", [False, True])
def test_report_target_port_groups(rlu: LogicalUnit, extended: bool) -> None:
    data = bytes(run(rlu, rtpg(extended=extended)).data)
    length = struct.unpack_from(">I", data)[0]
    assert length == len(data) - 4
    desc = data[8:] if extended else data[4:]
    if extended:
        assert data[4] == 0x10
    assert desc[0] & 0x0F == 0  # active/optimized
    assert struct.unpack_from(">H", desc, 2)[0] == 1  # group 1
    assert desc[7] == 2
    assert [struct.unpack_from(">H", desc, 8 + 4 * i + 2)[0] for i in range(2)] == [1, 2]
    assert bytes(run(rlu, rtpg(alloc=4, extended=extended)).data) == data[:4]


def test_report_target_port_groups_bad_format(rlu: LogicalUnit) -> None:
    cdb = bytearray(rtpg())
    cdb[1] |= 0x40
    r = run(rlu, bytes(cdb))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (1, 7, True)


# --- REPORT LUNS on a LU alone (the array answers it when there is one) --------------------


def test_report_luns_on_a_lone_lu(rlu: LogicalUnit) -> None:
    data = bytes(run(rlu, report_luns(), lun=3).data)
    assert data == struct.pack(">I4x", 8) + bytes((0, 3)) + bytes(6)
    rlu.lun_lister = lambda nx: [0, 2, 700]
    data = bytes(run(rlu, report_luns()).data)
    assert data[8:] == bytes(8) + bytes((0, 2)) + bytes(6) + bytes((0x42, 0xBC)) + bytes(6)
    r = run(rlu, report_luns(select=0x03))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (2, 7, True)


def test_data_out_length(rlu: LogicalUnit) -> None:
    assert rlu.data_out_length(write10(0, 4)) == 2048
    assert rlu.data_out_length(rw6(0x0A, 0, 0)) == 256 * 512
    assert rlu.data_out_length(read10(0, 4)) == 0
    assert rlu.data_out_length(verify10(0, 4, bytchk=1)) == 2048
    assert rlu.data_out_length(verify10(0, 4, bytchk=3)) == 512
    assert rlu.data_out_length(verify10(0, 4)) == 0
    assert rlu.data_out_length(write_same16(0, 9)) == 512
    assert rlu.data_out_length(write_same16(0, 9, ndob=True)) == 0
    assert rlu.data_out_length(compare_and_write(0, 1)) == 1024
    assert rlu.data_out_length(unmap(40)) == 40
    assert rlu.data_out_length(mode_select6(24)) == 24
    assert rlu.data_out_length(struct.pack(">BBB2xIB", 0x5F, 0, 0, 24, 0)) == 24
    assert rlu.data_out_length(b"\x2a") == 0


def test_execute_alone_still_checks_the_cdb(rlu: LogicalUnit) -> None:
    cmd = Command(nexus(), 0, read10(BLOCKS, 1))
    assert sense_of(rlu.execute(cmd)) == (ILLEGAL, 0x21, 0x00)
    cmd = Command(nexus(), 0, b"")
    assert sense_of(rlu.execute(cmd)) == (ILLEGAL, 0x20, 0x00)


def test_lu_with_default_engine_factory_uses_the_reservation_engine() -> None:
    pytest.importorskip("fcsoft.scsi.reservations")
    config = array_config()
    unit = LogicalUnit(config, 0)
    try:
        assert type(unit.reservations).__name__ == "ReservationEngine"
        ready(unit)
        assert run(unit, read10(0, 1)).good
    finally:
        unit.close()


# --- robustness ---------------------------------------------------------------------------------

_OPCODES = sorted({c.opcode for c in SUPPORTED_COMMANDS})
_FUZZ_CONFIG = array_config()


def _cdbs() -> st.SearchStrategy[bytes]:
    known = st.tuples(st.sampled_from(_OPCODES), st.binary(min_size=0, max_size=17)).map(
        lambda t: bytes((t[0],)) + t[1])
    return st.one_of(known, st.binary(min_size=0, max_size=20))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_cdbs(), st.binary(max_size=1200), st.integers(0, 3),
                          st.sampled_from([0, 1, 5, 300, 16383])), min_size=1, max_size=6))
def test_random_cdbs_always_get_a_result(commands: list[tuple[bytes, bytes, int, int]]) -> None:
    from fcsoft.scsi.array import ScsiArray

    array = ScsiArray(_FUZZ_CONFIG, engine_factory=fake_factory)
    try:
        nexuses = [nexus(), nexus(HOST1, PORT2, 2), nexus(HOST2), nexus(WWN(0x10 << 56))]
        for cdb, data, who, lun in commands:
            nx = nexuses[who]
            for target in (array, array.units["boot"]):
                result = run(target, cdb, data, nx=nx, lun=lun)
                assert isinstance(result, Result)
                assert result.status in (Status.GOOD, Status.CHECK_CONDITION)
                if result.status == Status.CHECK_CONDITION:
                    assert result.sense is not None and not result.data
                    sense = Sense.decode(result.sense.encode())
                    assert sense.key in (SenseKey.ILLEGAL_REQUEST, SenseKey.UNIT_ATTENTION,
                                         SenseKey.MISCOMPARE)
                else:
                    assert result.sense is None
                    assert isinstance(result.data, (bytes, bytearray, memoryview))
            assert array.execute(Command(nx, lun, cdb, data)) is not None
    finally:
        array.close()


def test_persistent_reserve_out_residual_when_more_data_came(rlu: LogicalUnit) -> None:
    rlu.reservations.persistent_reserve_out = lambda cmd: Result()
    prout = struct.pack(">BBB2xIB", 0x5F, 0, 0, 24, 0)
    assert run(rlu, prout, bytes(32)).data_out_used == 24
    assert run(rlu, prout, bytes(24)).data_out_used is None
    assert sense_of(run(rlu, prout, bytes(20))) == (ILLEGAL, 0x0E, 0x03)

"""The disk LU (fcsoft.scsi.disk, block.py, modes.py): every command's good path and error
paths, with the sense data decoded from its bytes."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.config import LunConfig
from fcsoft.scsi.backing import MemoryBacking
from fcsoft.scsi.cdb import SUPPORTED_COMMANDS
from fcsoft.scsi.disk import LogicalUnit
from fcsoft.scsi.sense import Sense, SenseKey, Status
from fcsoft.scsi.types import Command, Nexus, Result
from fcsoft.wire.wwn import WWN

from .conftest import array_config
from .fakes import (
    HOST1,
    HOST2,
    PORT1,
    PORT2,
    FakeEngine,
    compare_and_write,
    fake_factory,
    inquiry,
    mode_select6,
    mode_select10,
    mode_sense6,
    mode_sense10,
    nexus,
    read10,
    read16,
    read_capacity10,
    read_capacity16,
    report_luns,
    request_sense,
    rsoc,
    rtpg,
    run,
    rw6,
    rw12,
    rw16,
    sense_of,
    start_stop,
    sync_cache10,
    tur,
    unmap,
    unmap_list,
    verify10,
    write10,
    write16,
    write_same10,
    write_same16,
)

BLOCKS = 8192  # LU "boot": 4 MiB of 512-byte blocks
ILLEGAL = int(SenseKey.ILLEGAL_REQUEST)
UA = int(SenseKey.UNIT_ATTENTION)
INVALID_FIELD = (ILLEGAL, 0x24, 0x00)


def ready(target: object, nx: Nexus | None = None, lun: int = 0) -> None:
    """Consume the power-on unit attention of a nexus."""
    r = run(target, tur(), nx=nx, lun=lun)
    assert sense_of(r) == (UA, 0x29, 0x00)
    assert run(target, tur(), nx=nx, lun=lun).good


def field_pointer(result: Result) -> tuple[int, int | None, bool]:
    """(field pointer, bit pointer, C/D) of an ILLEGAL REQUEST."""
    assert result.sense is not None
    s = Sense.decode(result.sense.encode())
    assert s.specific is not None, s
    return s.specific.field_pointer, s.specific.bit_pointer, s.specific.c_d


@pytest.fixture
def rlu(lu: LogicalUnit) -> LogicalUnit:
    """The LU with nexus() past its power-on unit attention."""
    ready(lu)
    return lu


@pytest.fixture
def file_lu(tmp_path: Path) -> Iterator[LogicalUnit]:
    config = array_config(luns=(LunConfig("file", 1 << 20, backing=tmp_path / "f.img"),),
                          hosts=())
    unit = LogicalUnit(config, 0, engine_factory=fake_factory)
    ready(unit)
    yield unit
    unit.close()


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


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


# --- READ CAPACITY --------------------------------------------------------------------------------


def test_read_capacity(rlu: LogicalUnit) -> None:
    assert bytes(run(rlu, read_capacity10()).data) == struct.pack(">II", BLOCKS - 1, 512)
    data = bytes(run(rlu, read_capacity16()).data)
    assert len(data) == 32
    last, size, _, _, flags = struct.unpack_from(">QIBBH", data)
    assert (last, size, flags) == (BLOCKS - 1, 512, 0xC000)  # LBPME, LBPRZ
    assert bytes(run(rlu, read_capacity16(alloc=12)).data) == data[:12]


def test_read_capacity10_of_a_huge_lu_says_use_16() -> None:
    config = array_config(luns=(LunConfig("huge", 4 << 40),), hosts=())
    unit = LogicalUnit(config, 0, engine_factory=fake_factory)
    ready(unit)
    assert bytes(run(unit, read_capacity10()).data)[:4] == b"\xff\xff\xff\xff"
    last = struct.unpack_from(">Q", bytes(run(unit, read_capacity16()).data))[0]
    assert last == (4 << 40) // 512 - 1
    assert isinstance(unit.backing, MemoryBacking) and unit.backing.allocated_chunks == 0


# --- READ / WRITE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda op, lba, n: rw6(op - 0x20, lba, n),
    lambda op, lba, n: struct.pack(">BBIBHB", op, 0, lba, 0, n, 0),
    lambda op, lba, n: rw12(op + 0x80, lba, n),
    lambda op, lba, n: rw16(op + 0x60, lba, n),
], ids=["6", "10", "12", "16"])
def test_write_then_read_every_size(rlu: LogicalUnit, build: object) -> None:
    data = bytes(range(256)) * 8  # 4 blocks
    assert run(rlu, build(0x2A, 100, 4), data).good  # type: ignore[operator]
    r = run(rlu, build(0x28, 100, 4))  # type: ignore[operator]
    assert r.good and bytes(r.data) == data
    assert bytes(run(rlu, read10(99, 1)).data) == bytes(512)


def test_read6_length_zero_means_256_blocks(rlu: LogicalUnit) -> None:
    assert len(run(rlu, rw6(0x08, 0, 0)).data) == 256 * 512


def test_transfer_length_zero_is_no_data(rlu: LogicalUnit) -> None:
    assert run(rlu, read10(5, 0)) == Result()
    assert run(rlu, write10(5, 0)) == Result()
    assert run(rlu, read10(BLOCKS - 1, 0)).good


@pytest.mark.parametrize("lba,n", [(BLOCKS, 1), (BLOCKS - 1, 2), (BLOCKS, 0), (0x80000000, 0),
                                   (0xFFFFFFFF, 1)])
def test_lba_out_of_range(rlu: LogicalUnit, lba: int, n: int) -> None:
    r = run(rlu, read10(lba, n))
    assert sense_of(r) == (ILLEGAL, 0x21, 0x00)
    assert r.sense is not None and r.sense.specific is None
    assert sense_of(run(rlu, write10(lba, n), bytes(512 * n))) == (ILLEGAL, 0x21, 0x00)
    assert sense_of(run(rlu, read16(2**64 - 1, 1))) == (ILLEGAL, 0x21, 0x00)
    assert run(rlu, read10(BLOCKS - 1, 1)).good


def test_protect_fields_are_refused(rlu: LogicalUnit) -> None:
    for cdb in (read10(0, 1, flags=0x20), read16(0, 1, flags=0x60),
                write10(0, 1, flags=0x20), verify10(0, 1) [:1] + b"\x20" + verify10(0, 1)[2:]):
        r = run(rlu, cdb, bytes(512))
        assert sense_of(r) == INVALID_FIELD
        assert field_pointer(r) == (1, 7, True)


def test_transfer_length_above_the_block_limits(rlu: LogicalUnit) -> None:
    r = run(rlu, read16(0, rlu.limits.max_transfer + 1))
    assert sense_of(r) == INVALID_FIELD
    assert field_pointer(r)[0] == 10
    assert run(rlu, read10(0, BLOCKS)).good


def test_flags_dpo_fua_rarc_are_accepted(rlu: LogicalUnit) -> None:
    assert run(rlu, read10(0, 1, flags=0x10 | 0x08 | 0x04)).good
    assert run(rlu, write10(0, 1, flags=0x18), bytes(512)).good


def test_write_with_too_little_data_out(rlu: LogicalUnit) -> None:
    r = run(rlu, write10(0, 2), bytes(600))
    assert sense_of(r) == (ILLEGAL, 0x0E, 0x03)
    assert bytes(run(rlu, read10(0, 1)).data) == bytes(512)  # nothing written


def test_write_reports_what_it_used_of_a_bigger_buffer(rlu: LogicalUnit) -> None:
    r = run(rlu, write10(0, 1), b"\x01" * 1024)
    assert r.good and r.data_out_used == 512
    assert run(rlu, write10(0, 1), b"\x01" * 512).data_out_used is None
    assert bytes(run(rlu, read10(0, 2)).data) == b"\x01" * 512 + bytes(512)


def test_fua_and_write_through_flush_the_file(file_lu: LogicalUnit, fsyncs: list[int]) -> None:
    assert run(file_lu, write10(0, 1), bytes(512)).good
    assert fsyncs == []
    assert run(file_lu, write10(0, 1, flags=0x08), bytes(512)).good  # FUA
    assert len(fsyncs) == 1
    assert run(file_lu, write16(0, 1, flags=0x02), bytes(512)).good  # FUA_NV
    assert len(fsyncs) == 2
    assert run(file_lu, sync_cache10()).good
    assert run(file_lu, struct.pack(">BBQIBB", 0x91, 0x02, 0, 0, 0, 0)).good  # (16), IMMED
    assert len(fsyncs) == 4
    select = bytes(4) + bytes((0x08, 0x12, 0x00)) + bytes(17)  # WCE=0
    assert run(file_lu, mode_select6(len(select)), select).good
    fsyncs.clear()
    assert run(file_lu, write10(0, 1), bytes(512)).good
    assert len(fsyncs) == 1


def test_io_errors_become_medium_and_data_protect_errors(rlu: LogicalUnit,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(code: int) -> object:
        def raiser(*args: object) -> None:
            raise OSError(code, os.strerror(code))
        return raiser

    monkeypatch.setattr(rlu.backing, "read", fail(errno.EIO))
    assert sense_of(run(rlu, read10(0, 1))) == (int(SenseKey.MEDIUM_ERROR), 0x11, 0x00)
    monkeypatch.setattr(rlu.backing, "write", fail(errno.EIO))
    assert sense_of(run(rlu, write10(0, 1), bytes(512))) == (int(SenseKey.MEDIUM_ERROR), 0x0C,
                                                              0x00)
    monkeypatch.setattr(rlu.backing, "write", fail(errno.ENOSPC))
    assert sense_of(run(rlu, write10(0, 1), bytes(512))) == (int(SenseKey.DATA_PROTECT), 0x27,
                                                              0x07)


# --- WRITE AND VERIFY / VERIFY --------------------------------------------------------------------


def test_write_and_verify(rlu: LogicalUnit) -> None:
    for cdb in (struct.pack(">BBIBHB", 0x2E, 0x02, 7, 0, 1, 0), rw12(0xAE, 7, 1),
                rw16(0x8E, 7, 1, flags=0x02)):
        assert run(rlu, cdb, b"\x77" * 512).good
    assert bytes(run(rlu, read10(7, 1)).data) == b"\x77" * 512
    assert sense_of(run(rlu, rw16(0x8E, BLOCKS, 1), bytes(512))) == (ILLEGAL, 0x21, 0x00)


def test_verify(rlu: LogicalUnit) -> None:
    block = bytes(range(256)) * 2
    assert run(rlu, write10(10, 2), block * 2).good
    assert run(rlu, verify10(10, 2)).good  # BYTCHK 0: medium only
    assert run(rlu, verify10(10, 2, bytchk=1), block * 2).good
    assert run(rlu, verify10(10, 2, bytchk=3), block).good  # one block against each
    assert run(rlu, rw12(0xAF, 10, 2, flags=0x02), block * 2).good
    assert run(rlu, rw16(0x8F, 10, 2, flags=0x02), block * 2).good
    assert sense_of(run(rlu, verify10(BLOCKS, 1))) == (ILLEGAL, 0x21, 0x00)


def test_verify_miscompare_reports_the_offset(rlu: LogicalUnit) -> None:
    block = bytes(range(256)) * 2
    assert run(rlu, write10(10, 2), block * 2).good
    wrong = bytearray(block * 2)
    wrong[700] ^= 0xFF
    r = run(rlu, verify10(10, 2, bytchk=1), wrong)
    assert sense_of(r) == (int(SenseKey.MISCOMPARE), 0x1D, 0x00)
    assert r.sense is not None and r.sense.information == 700
    wrong_block = bytearray(block)
    wrong_block[3] ^= 1
    r = run(rlu, verify10(10, 2, bytchk=3), wrong_block)
    assert r.sense is not None and r.sense.information == 3


def test_verify_bytchk_10b_is_reserved(rlu: LogicalUnit) -> None:
    r = run(rlu, verify10(0, 1, bytchk=2))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (1, 2, True)


# --- SYNCHRONIZE CACHE ----------------------------------------------------------------------------


def test_synchronize_cache_range(rlu: LogicalUnit) -> None:
    assert run(rlu, sync_cache10(0, 0)).good  # the whole LU
    assert run(rlu, sync_cache10(BLOCKS - 1, 1)).good
    assert sense_of(run(rlu, sync_cache10(BLOCKS - 1, 2))) == (ILLEGAL, 0x21, 0x00)
    assert sense_of(run(rlu, sync_cache10(BLOCKS, 0))) == (ILLEGAL, 0x21, 0x00)


# --- WRITE SAME / UNMAP ---------------------------------------------------------------------------


def test_write_same_writes_the_pattern(rlu: LogicalUnit) -> None:
    block = b"\xab" * 511 + b"\x01"
    assert run(rlu, write_same10(20, 300), block).good
    data = bytes(run(rlu, read10(19, 302)).data)
    assert data == bytes(512) + block * 300 + bytes(512)
    assert run(rlu, write_same16(4000, 3000), block).good
    assert bytes(run(rlu, read10(6999, 1)).data) == block


def test_write_same_unmap_and_ndob_deallocate(rlu: LogicalUnit) -> None:
    assert isinstance(rlu.backing, MemoryBacking)
    assert run(rlu, write10(0, 1024), b"\x01" * (1024 * 512)).good
    assert rlu.backing.allocated_chunks == 8
    assert run(rlu, write_same16(0, 512, unmap=True), bytes(512)).good
    assert rlu.backing.allocated_chunks == 4
    assert run(rlu, write_same16(512, 512, unmap=True, ndob=True)).good  # no data-out
    assert rlu.backing.allocated_chunks == 0
    assert bytes(run(rlu, read10(0, 1024)).data) == bytes(1024 * 512)
    assert run(rlu, write_same10(0, 8, unmap=True), b"\x05" * 512).good  # data: written
    assert bytes(run(rlu, read10(7, 1)).data) == b"\x05" * 512


def test_write_same_errors(rlu: LogicalUnit) -> None:
    r = run(rlu, write_same10(0, 0), bytes(512))  # WSNZ=1
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 7
    r = run(rlu, write_same16(0, 0), bytes(512))
    assert field_pointer(r)[0] == 10
    r = run(rlu, write_same16(0, 1, flags=0x10), bytes(512))  # ANCHOR
    assert field_pointer(r) == (1, 4, True)
    r = run(rlu, write_same10(0, 1, flags=0x02), bytes(512))  # LBDATA (obsolete)
    assert field_pointer(r) == (1, 1, True)
    assert sense_of(run(rlu, write_same16(BLOCKS - 1, 2), bytes(512))) == (ILLEGAL, 0x21, 0)
    assert sense_of(run(rlu, write_same16(0, 1), b"")) == (ILLEGAL, 0x0E, 0x03)


def test_unmap(rlu: LogicalUnit) -> None:
    assert run(rlu, write10(0, 512), b"\x09" * (512 * 512)).good
    param = unmap_list([(0, 128), (256, 100), (500, 0)])
    r = run(rlu, unmap(len(param)), param)
    assert r.good
    data = bytes(run(rlu, read10(0, 512)).data)
    assert data[:128 * 512] == bytes(128 * 512)
    assert data[128 * 512:256 * 512] == b"\x09" * (128 * 512)
    assert data[256 * 512:356 * 512] == bytes(100 * 512)
    assert isinstance(rlu.backing, MemoryBacking) and rlu.backing.allocated_chunks == 3


def test_unmap_length_checks(rlu: LogicalUnit) -> None:
    assert run(rlu, unmap(0)).good  # nothing to do
    assert sense_of(run(rlu, unmap(7), bytes(7))) == (ILLEGAL, 0x1A, 0x00)
    param = unmap_list([(0, 1)])
    assert sense_of(run(rlu, unmap(len(param)), param[:10])) == (ILLEGAL, 0x0E, 0x03)
    truncated = param[:20]  # descriptor data length 16, list holds 12 of them: ignored
    assert run(rlu, unmap(len(truncated)), truncated).good


def test_unmap_errors(rlu: LogicalUnit) -> None:
    param = unmap_list([(0, 1), (BLOCKS - 1, 2)])
    assert sense_of(run(rlu, unmap(len(param)), param)) == (ILLEGAL, 0x21, 0x00)
    cdb = bytearray(unmap(24))
    cdb[1] = 1  # ANCHOR
    r = run(rlu, bytes(cdb), unmap_list([(0, 1)]))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r) == (1, 0, True)
    many = unmap_list([(i, 1) for i in range(rlu.limits.max_unmap_descriptors + 1)])
    r = run(rlu, unmap(len(many)), many)
    assert sense_of(r) == (ILLEGAL, 0x26, 0x00)
    assert field_pointer(r) == (2, None, False)


def test_unmap_over_the_maximum_lba_count() -> None:
    config = array_config(luns=(LunConfig("big", 4 << 30),), hosts=())
    unit = LogicalUnit(config, 0, engine_factory=fake_factory)
    ready(unit)
    half = unit.limits.max_unmap_lba_count // 2 + 1
    param = unmap_list([(0, half), (half, half)])
    r = run(unit, unmap(len(param)), param)
    assert sense_of(r) == (ILLEGAL, 0x26, 0x00)
    assert field_pointer(r) == (8 + 16 + 8, None, False)


# --- COMPARE AND WRITE ----------------------------------------------------------------------------


def test_compare_and_write(rlu: LogicalUnit) -> None:
    old, new = b"\x11" * 512, b"\x22" * 512
    assert run(rlu, write10(30, 1), old).good
    r = run(rlu, compare_and_write(30, 1), old + new)
    assert r.good
    assert bytes(run(rlu, read10(30, 1)).data) == new
    assert run(rlu, compare_and_write(30, 0)).good


def test_compare_and_write_miscompare(rlu: LogicalUnit) -> None:
    assert run(rlu, write10(30, 1), b"\x11" * 512).good
    guess = bytearray(b"\x11" * 512)
    guess[100] = 0
    r = run(rlu, compare_and_write(30, 1), bytes(guess) + b"\x22" * 512)
    assert sense_of(r) == (int(SenseKey.MISCOMPARE), 0x1D, 0x00)
    assert r.sense is not None and r.sense.information == 100
    raw = r.sense.encode()
    assert raw[0] == 0xF0 and raw[3:7] == b"\0\0\0\x64"  # VALID, INFORMATION
    assert bytes(run(rlu, read10(30, 1)).data) == b"\x11" * 512  # not written


def test_compare_and_write_errors(rlu: LogicalUnit) -> None:
    r = run(rlu, compare_and_write(0, 2), bytes(2048))
    assert sense_of(r) == INVALID_FIELD and field_pointer(r)[0] == 13
    assert sense_of(run(rlu, compare_and_write(BLOCKS, 1), bytes(1024))) == (ILLEGAL, 0x21, 0)
    assert sense_of(run(rlu, compare_and_write(0, 1, flags=0x20), bytes(1024))) == INVALID_FIELD
    assert sense_of(run(rlu, compare_and_write(0, 1), bytes(1000))) == (ILLEGAL, 0x0E, 0x03)


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


# --- REPORT LUNS on a LU alone (the array answers it when there is one) ----------------------------


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


def test_hot_path_results_share_no_copies(rlu: LogicalUnit) -> None:
    """A 4 KiB read inside one memory chunk is a view of the store; a write takes a view of
    the data-out buffer (no bytes() copies on the way)."""
    payload = bytearray(b"\x5a" * 4096)
    assert run(rlu, write10(8, 8), memoryview(payload)).good
    r = run(rlu, read10(8, 8))
    assert isinstance(r.data, memoryview) and bytes(r.data) == bytes(payload)

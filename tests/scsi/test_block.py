"""Block commands of the disk LU (fcsoft.scsi.block): READ CAPACITY, READ/WRITE 6-16,
WRITE AND VERIFY, VERIFY, SYNCHRONIZE CACHE, WRITE SAME, UNMAP, COMPARE AND WRITE; good paths
and every error path, with the sense data decoded from its bytes."""

from __future__ import annotations

import errno
import os
import struct

import pytest

from fcsoft.config import LunConfig
from fcsoft.scsi.backing import MemoryBacking
from fcsoft.scsi.disk import LogicalUnit
from fcsoft.scsi.sense import SenseKey
from fcsoft.scsi.types import Result

from .conftest import array_config
from .fakes import (
    ILLEGAL,
    INVALID_FIELD,
    compare_and_write,
    fake_factory,
    field_pointer,
    mode_select6,
    read10,
    read16,
    read_capacity10,
    read_capacity16,
    ready,
    run,
    rw12,
    rw16,
    rw6,
    sense_of,
    sync_cache10,
    unmap,
    unmap_list,
    verify10,
    write10,
    write16,
    write_same10,
    write_same16,
)

BLOCKS = 8192  # LU "boot": 4 MiB of 512-byte blocks


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


def test_hot_path_results_share_no_copies(rlu: LogicalUnit) -> None:
    """A 4 KiB read inside one memory chunk is a view of the store; a write takes a view of
    the data-out buffer (no bytes() copies on the way)."""
    payload = bytearray(b"\x5a" * 4096)
    assert run(rlu, write10(8, 8), memoryview(payload)).good
    r = run(rlu, read10(8, 8))
    assert isinstance(r.data, memoryview) and bytes(r.data) == bytes(payload)


def test_execute_after_precheck_still_checks_what_may_have_changed(rlu: LogicalUnit) -> None:
    """execute reuses the CDB decode precheck made (it depends on the CDB alone), but the
    checks of the LU's state run again: a READ that passed its precheck at the last block,
    then a shrink of the LU before it ran (a write waiting for its data), ends out of range,
    and the same Command object run on a fresh LU without precheck decodes for itself."""
    from fcsoft.scsi.types import Command

    from .fakes import nexus

    cmd = Command(nexus(), 0, bytes(read10(BLOCKS - 1, 1)), b"", 512)
    assert rlu.precheck(cmd) is None
    assert cmd.decoded is not None
    rlu.resize((BLOCKS // 2) * 512, [])
    assert sense_of(rlu.execute(cmd)) == (ILLEGAL, 0x21, 0x00)
    undecoded = Command(nexus(), 0, bytes(read10(0, 1)), b"", 512)
    assert rlu.execute(undecoded).good and undecoded.decoded is None

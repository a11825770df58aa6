"""Block commands of the disk LU (SBC-3): READ/WRITE 6/10/12/16, WRITE AND VERIFY, VERIFY,
SYNCHRONIZE CACHE, WRITE SAME, UNMAP, COMPARE AND WRITE, READ CAPACITY(10)/(16).

`BlockCommands` is a mixin of `fcsoft.scsi.disk.LogicalUnit`: each handler takes the command
and its CDB (already long enough and free of reserved bits) and returns a `Result` or raises
`CheckCondition`. The `check_*` methods are what precheck runs before any data moves (LBA
range, transfer length, fields that need no data); the handler runs the same checks again,
which costs a struct unpack.

READ and WRITE do no per-block work: one range check, one backing-store call with byte
offsets, the data passed as memoryviews.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .backing import Backing
from .cdb import lba_length, length_field_offset
from .inquiry import BlockLimits
from .sense import (
    LBA_OUT_OF_RANGE,
    MISCOMPARE_DURING_VERIFY,
    PARAMETER_LIST_LENGTH_ERROR,
    Asc,
    CheckCondition,
    Sense,
    SenseKey,
    illegal_request,
    invalid_field_in_cdb,
    invalid_field_in_parameter_list,
)
from .types import GOOD, Command, Result

if TYPE_CHECKING:
    from .modes import ModePages

__all__ = ["BlockCommands", "INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT", "first_difference"]

#: the data-out buffer the transport gathered (FCP_DL) is shorter than the CDB needs
INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT = Asc(0x0E, 0x03)

_FUA = 0x08
_FUA_NV = 0x02
_PROTECT = 0xE0  # RDPROTECT / WRPROTECT / VRPROTECT: fcsoft has no protection information
_WS_UNMAP, _WS_ANCHOR, _WS_NDOB = 0x08, 0x10, 0x01
_U64 = struct.Struct(">Q")
_UNMAP_DESCRIPTOR = struct.Struct(">QI4x")
_PATTERN_BYTES = 1 << 20  # WRITE SAME writes its pattern in pieces of about this size


def first_difference(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview
                     ) -> int | None:
    """Offset of the first byte where `a` and `b` (same length) differ, None if equal.
    Compares 4 KiB windows with memcmp, then bytes within the first differing window."""
    va, vb = memoryview(a).cast("B"), memoryview(b).cast("B")
    whole = a if isinstance(a, bytes) else bytes(va)
    if len(whole) == len(vb) and whole.startswith(vb):  # memcmp, no copy of `b`
        return None
    step = 4096
    for start in range(0, len(va), step):
        wa, wb = bytes(va[start:start + step]), bytes(vb[start:start + step])
        if wa != wb:
            return start + next(i for i, (x, y) in enumerate(zip(wa, wb, strict=False)) if x != y)
    return None


def _miscompare(offset: int) -> CheckCondition:
    """MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION; INFORMATION = the offset into the
    data-out buffer of the first byte that differs (SBC-3 5.2, 5.25)."""
    return CheckCondition(Sense(SenseKey.MISCOMPARE, MISCOMPARE_DURING_VERIFY,
                                information=offset))


def _lba_out_of_range() -> CheckCondition:
    return CheckCondition(Sense(SenseKey.ILLEGAL_REQUEST, LBA_OUT_OF_RANGE))


def data_out(cmd: Command, need: int) -> memoryview | bytes:
    """The first `need` bytes of the command's data-out buffer. Fewer than that (FCP_DL too
    small for the CDB) is ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT."""
    data = cmd.data_out
    if len(data) < need:
        raise CheckCondition(Sense(SenseKey.ILLEGAL_REQUEST,
                                   INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT))
    if len(data) == need:
        return data if isinstance(data, (bytes, memoryview)) else memoryview(data)
    return memoryview(data)[:need]


def _used(cmd: Command, need: int) -> int | None:
    """Result.data_out_used: set when the data-out buffer was not exactly what was used."""
    return None if len(cmd.data_out) == need else need


class BlockCommands:
    """SBC-3 command handlers (mixin; the LU provides the attributes below)."""

    backing: Backing
    block_size: int
    blocks: int
    limits: BlockLimits
    modes: ModePages

    # --- shared checks ----------------------------------------------------------------------

    def _range(self, cdb: bytes, *, protect: bool = True, transfer: bool = True
               ) -> tuple[int, int]:
        """(LBA, number of blocks) of a block command after the checks every one of them
        makes: PROTECT field 000b, transfer length within the block limits, LBA range (a
        zero length at LBA = capacity is out of range too, as libiscsi expects)."""
        lba, n = lba_length(cdb)
        if protect and cdb[1] & _PROTECT:
            raise invalid_field_in_cdb(1, 7)
        if transfer and n > self.limits.max_transfer:
            raise invalid_field_in_cdb(length_field_offset(cdb[0]))
        if lba + (n or 1) > self.blocks:
            raise _lba_out_of_range()
        return lba, n

    def _write_through(self, cdb: bytes, fua_capable: bool = True) -> None:
        """FUA (or FUA_NV: fcsoft has no non-volatile cache), or a disabled write cache:
        make the data durable before GOOD."""
        if (fua_capable and cdb[1] & (_FUA | _FUA_NV)) or not self.modes.write_cache:
            self.backing.flush()

    # --- READ CAPACITY ----------------------------------------------------------------------

    def _read_capacity_10(self, cmd: Command, cdb: bytes) -> Result:
        """READ CAPACITY(10) (SBC-3 5.15): last LBA (FFFFFFFFh when it does not fit) and
        block length."""
        return Result(data=struct.pack(">II", min(self.blocks - 1, 0xFFFFFFFF),
                                       self.block_size))

    def _read_capacity_16(self, cmd: Command, cdb: bytes) -> Result:
        """READ CAPACITY(16) (SBC-3 5.16): 32 bytes, LBPME=1 and LBPRZ=1 (unmapped blocks
        read as zeros), truncated to the ALLOCATION LENGTH."""
        data = struct.pack(">QIBBH16x", self.blocks - 1, self.block_size, 0, 0, 0xC000)
        return Result(data=data[:struct.unpack_from(">I", cdb, 10)[0]])

    # --- READ / WRITE -----------------------------------------------------------------------

    def _check_rw(self, cmd: Command, cdb: bytes) -> None:
        self._range(cdb, protect=cdb[0] >= 0x20)

    def _read(self, cmd: Command, cdb: bytes) -> Result:
        """READ(6/10/12/16) (SBC-3 5.10-5.13). DPO and FUA need nothing more: reads come from
        the backing store itself."""
        lba, n = self._range(cdb, protect=cdb[0] >= 0x20)
        if not n:
            return GOOD
        bs = self.block_size
        return Result(data=self.backing.read(lba * bs, n * bs))

    def _write(self, cmd: Command, cdb: bytes) -> Result:
        """WRITE(6/10/12/16) (SBC-3 5.32-5.35); FUA flushes before GOOD."""
        lba, n = self._range(cdb, protect=cdb[0] >= 0x20)
        bs = self.block_size
        need = n * bs
        if cmd.data_in_place:  # the transport wrote it as it came (data_out_sink)
            self._write_through(cdb, cdb[0] >= 0x20)
            return GOOD
        if n:
            self.backing.write(lba * bs, data_out(cmd, need))
            self._write_through(cdb, cdb[0] >= 0x20)
        return Result(data_out_used=_used(cmd, need))

    def _write_and_verify(self, cmd: Command, cdb: bytes) -> Result:
        """WRITE AND VERIFY(10/12/16) (SBC-3 5.37-5.39): the write, made durable (verifying
        against the medium means the data is on it); BYTCHK=1 compares the data written with
        itself, which cannot fail."""
        lba, n = self._range(cdb)
        bs = self.block_size
        need = n * bs
        if n:
            self.backing.write(lba * bs, data_out(cmd, need))
            self.backing.flush()
        return Result(data_out_used=_used(cmd, need))

    # --- VERIFY -----------------------------------------------------------------------------

    def _check_verify(self, cmd: Command, cdb: bytes) -> None:
        bytchk = (cdb[1] >> 1) & 0x3
        if bytchk == 2:
            raise invalid_field_in_cdb(1, 2)
        lba, n = self._range(cdb, transfer=bytchk == 1)
        if bytchk == 3 and n > self.limits.max_write_same:
            raise invalid_field_in_cdb(length_field_offset(cdb[0]))

    def _verify(self, cmd: Command, cdb: bytes) -> Result:
        """VERIFY(10/12/16) (SBC-3 5.26-5.28, BYTCHK as SBC-4 widens it): 00b checks the
        medium (always readable here), 01b compares the data-out buffer with the blocks,
        11b compares one block of data-out with every block of the range."""
        self._check_verify(cmd, cdb)
        bytchk = (cdb[1] >> 1) & 0x3
        lba, n = lba_length(cdb)
        if not n or not bytchk:
            return Result(data_out_used=_used(cmd, 0) if cmd.data_out else None)
        bs = self.block_size
        need = n * bs if bytchk == 1 else bs
        expected = data_out(cmd, need)
        if bytchk == 1:
            diff = first_difference(self.backing.read(lba * bs, need), expected)
            if diff is not None:
                raise _miscompare(diff)
        else:
            block = bytes(expected)
            step = max(1, _PATTERN_BYTES // bs)
            for first in range(0, n, step):  # per megabyte, not per block
                count = min(step, n - first)
                stored = self.backing.read((lba + first) * bs, count * bs)
                diff = first_difference(stored, block * count)
                if diff is not None:
                    raise _miscompare(diff % bs)
        return Result(data_out_used=_used(cmd, need))

    # --- SYNCHRONIZE CACHE ------------------------------------------------------------------

    def _check_sync(self, cmd: Command, cdb: bytes) -> None:
        lba, n = lba_length(cdb)
        if lba + (n or 1) > self.blocks:  # NUMBER OF LOGICAL BLOCKS 0: to the last LBA
            raise _lba_out_of_range()

    def _synchronize_cache(self, cmd: Command, cdb: bytes) -> Result:
        """SYNCHRONIZE CACHE(10/16) (SBC-3 5.22-5.23): fsync the whole store (IMMED=1 is
        allowed to answer first; answering after costs nothing here)."""
        self._check_sync(cmd, cdb)
        self.backing.flush()
        return GOOD

    # --- WRITE SAME -------------------------------------------------------------------------

    def _check_write_same(self, cmd: Command, cdb: bytes) -> None:
        flags = cdb[1]
        if flags & _WS_ANCHOR:
            raise invalid_field_in_cdb(1, 4)  # ANC_SUP=0 in the LBP VPD page
        lba, n = self._range(cdb, transfer=False)
        if n == 0:
            raise invalid_field_in_cdb(length_field_offset(cdb[0]))  # WSNZ=1
        if n > self.limits.max_write_same:
            raise invalid_field_in_cdb(length_field_offset(cdb[0]))

    def _write_same(self, cmd: Command, cdb: bytes) -> Result:
        """WRITE SAME(10/16) (SBC-3 5.41-5.42). A zero block with UNMAP=1 unmaps (LBPRZ=1:
        unmapped blocks read zeros); NDOB=1 (16 only) means a zero block with no data-out
        buffer; any other block is written over the range, a megabyte at a time."""
        self._check_write_same(cmd, cdb)
        lba, n = lba_length(cdb)
        bs = self.block_size
        ndob = cdb[0] == 0x93 and cdb[1] & _WS_NDOB
        need = 0 if ndob else bs
        block = bytes(bs) if ndob else bytes(data_out(cmd, bs))
        zero = block == bytes(bs)
        if zero and cdb[1] & _WS_UNMAP:
            self.backing.unmap(lba * bs, n * bs)
        else:
            step = max(1, _PATTERN_BYTES // bs)
            pattern = memoryview(block * min(step, n))
            for first in range(0, n, step):
                count = min(step, n - first)
                self.backing.write((lba + first) * bs, pattern[:count * bs])
        self._write_through(cdb, fua_capable=False)
        return Result(data_out_used=_used(cmd, need))

    # --- UNMAP ------------------------------------------------------------------------------

    def _check_unmap(self, cmd: Command, cdb: bytes) -> None:
        if cdb[1] & 0x01:
            raise invalid_field_in_cdb(1, 0)  # ANCHOR: ANC_SUP=0
        length = (cdb[7] << 8) | cdb[8]
        if 0 < length < 8:
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)

    def _unmap(self, cmd: Command, cdb: bytes) -> Result:
        """UNMAP (SBC-3 5.28): every descriptor is checked before any range is unmapped. A
        block descriptor data length beyond the parameter list is cut to what was sent; a
        partial last descriptor is ignored (SBC-3 5.28.2)."""
        self._check_unmap(cmd, cdb)
        length = (cdb[7] << 8) | cdb[8]
        if not length:
            return Result(data_out_used=_used(cmd, 0) if cmd.data_out else None)
        param = data_out(cmd, length)
        bd_length = min((param[2] << 8) | param[3], length - 8)
        count = bd_length // 16
        if count > self.limits.max_unmap_descriptors:
            raise invalid_field_in_parameter_list(2)
        ranges = list(_UNMAP_DESCRIPTOR.iter_unpack(param[8:8 + 16 * count]))
        total = 0
        for i, (lba, n) in enumerate(ranges):
            if lba + n > self.blocks:
                raise _lba_out_of_range()
            total += n
            if total > self.limits.max_unmap_lba_count:
                raise invalid_field_in_parameter_list(8 + 16 * i + 8)
        bs = self.block_size
        for lba, n in ranges:
            if n:
                self.backing.unmap(lba * bs, n * bs)
        self._write_through(cdb, fua_capable=False)
        return Result(data_out_used=_used(cmd, length))

    # --- COMPARE AND WRITE ------------------------------------------------------------------

    def _check_compare_and_write(self, cmd: Command, cdb: bytes) -> None:
        if cdb[1] & _PROTECT:
            raise invalid_field_in_cdb(1, 7)
        n = cdb[13]
        if n > self.limits.max_compare_and_write:
            raise invalid_field_in_cdb(13)
        if _U64.unpack_from(cdb, 2)[0] + (n or 1) > self.blocks:
            raise _lba_out_of_range()

    def _compare_and_write(self, cmd: Command, cdb: bytes) -> Result:
        """COMPARE AND WRITE (SBC-3 5.2): the first half of the data-out buffer is compared
        with the blocks, the second half written if they are equal; atomic, since the LU
        runs one command at a time."""
        self._check_compare_and_write(cmd, cdb)
        lba, n = _U64.unpack_from(cdb, 2)[0], cdb[13]
        bs = self.block_size
        need = 2 * n * bs
        if n:
            data = memoryview(data_out(cmd, need))
            half = n * bs
            diff = first_difference(self.backing.read(lba * bs, half), data[:half])
            if diff is not None:
                raise _miscompare(diff)
            self.backing.write(lba * bs, data[half:])
            self._write_through(cdb)
        return Result(data_out_used=_used(cmd, need))

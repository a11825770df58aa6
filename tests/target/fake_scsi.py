"""A small stand-in for the SCSI front, for transport tests: one LUN (0) of 512-byte
blocks with INQUIRY, TEST UNIT READY, READ(10), WRITE(10); records what the port tells it."""

from __future__ import annotations

import struct

from fcsoft.scsi.sense import (
    INVALID_COMMAND_OPERATION_CODE,
    LOGICAL_UNIT_NOT_SUPPORTED,
    Sense,
    SenseKey,
)
from fcsoft.scsi.types import GOOD, Command, Result


class FakeScsi:
    def __init__(self, blocks: int = 4096, block_size: int = 512) -> None:
        self.block_size = block_size
        self.disk = bytearray(blocks * block_size)
        self.lost: list = []
        self.resets: list = []
        self.executed: list[Command] = []

    def lun_visible(self, nexus, lun: int) -> bool:
        return lun == 0

    def lookup(self, nexus, lun: int):
        return self if lun == 0 else None

    def precheck(self, cmd: Command) -> Result | None:
        if cmd.lun != 0:
            return Result.check(Sense(SenseKey.ILLEGAL_REQUEST, LOGICAL_UNIT_NOT_SUPPORTED))
        return None

    def execute(self, cmd: Command) -> Result:
        self.executed.append(cmd)
        op = cmd.cdb[0]
        bs = self.block_size
        if op == 0x00:
            return GOOD
        if op == 0x12:
            alloc = struct.unpack_from(">H", cmd.cdb, 3)[0]
            data = bytes([0, 0, 6, 2, 31, 0, 0, 0]) + b"FCSOFT  FAKE DISK       0001"
            return Result(data=data[:alloc])
        if op == 0x28:
            lba, n = struct.unpack_from(">IxH", cmd.cdb, 2)
            return Result(data=memoryview(self.disk)[lba * bs:(lba + n) * bs])
        if op == 0x2A:
            lba, n = struct.unpack_from(">IxH", cmd.cdb, 2)
            need = n * bs
            data = bytes(cmd.data_out[:need])
            self.disk[lba * bs:lba * bs + len(data)] = data
            return Result(data_out_used=need)
        return Result.check(Sense(SenseKey.ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE))

    def nexus_lost(self, nexus) -> None:
        self.lost.append(nexus)

    def lun_reset(self, nexus, lun) -> None:
        self.resets.append(("lun", nexus, lun))

    def target_reset(self, nexus) -> None:
        self.resets.append(("target", nexus))

    def close(self) -> None:
        pass

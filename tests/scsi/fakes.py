"""Test doubles for the SCSI layer: a permissive reservation engine, CDB builders and a
harness that runs a command through precheck and execute as the transport does."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from fcsoft.scsi.sense import INVALID_COMMAND_OPERATION_CODE, Sense, SenseKey, Status
from fcsoft.scsi.types import Command, Nexus, Result
from fcsoft.scsi.ua import UnitAttentions
from fcsoft.wire.wwn import WWN

HOST1 = WWN("10:00:00:00:c9:00:00:01")
HOST1B = WWN("10:00:00:00:c9:00:00:02")
HOST2 = WWN("10:00:00:00:c9:00:00:03")
STRANGER = WWN("10:00:00:00:c9:00:00:99")
PORT1 = WWN("50:01:43:80:00:00:00:01")
PORT2 = WWN("50:01:43:80:00:00:00:02")
NODE = WWN("50:01:43:80:00:00:00:00")


@dataclass
class FakeEngine:
    """Permissive reservation engine: nothing conflicts, RESERVE/RELEASE are GOOD, PR IN/OUT
    are INVALID COMMAND OPERATION CODE. Records what it was asked."""

    unit_attentions: UnitAttentions | None = None
    calls: list[tuple[str, object]] = field(default_factory=list)
    conflict: bool = False  # answer RESERVATION CONFLICT from check()

    def check(self, cmd: Command) -> Result | None:
        self.calls.append(("check", bytes(cmd.cdb[:1])))
        return Result(Status.RESERVATION_CONFLICT) if self.conflict else None

    def persistent_reserve_in(self, cmd: Command) -> Result:
        self.calls.append(("prin", bytes(cmd.cdb)))
        return Result.check(Sense(SenseKey.ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE))

    def persistent_reserve_out(self, cmd: Command) -> Result:
        self.calls.append(("prout", bytes(cmd.data_out)))
        return Result.check(Sense(SenseKey.ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE))

    def reserve(self, cmd: Command) -> Result:
        self.calls.append(("reserve", bytes(cmd.cdb[:1])))
        return Result()

    def release(self, cmd: Command) -> Result:
        self.calls.append(("release", bytes(cmd.cdb[:1])))
        return Result()

    def nexus_lost(self, nexus: Nexus) -> None:
        self.calls.append(("nexus_lost", nexus))

    def reset(self) -> None:
        self.calls.append(("reset", None))


def fake_factory(lu: object) -> FakeEngine:
    """engine_factory for LogicalUnit / ScsiArray: a FakeEngine sharing the LU's UAs."""
    return FakeEngine(getattr(lu, "unit_attentions", None))


def nexus(initiator: WWN = HOST1, port: WWN = PORT1, rtpi: int = 1) -> Nexus:
    return Nexus(initiator, port, rtpi)


def run(target: object, cdb: bytes, data_out: bytes | bytearray | memoryview = b"", *,
        nx: Nexus | None = None, lun: int = 0, expected: int | None = None) -> Result:
    """precheck, then execute if precheck let it through (what fcsoft.target does)."""
    cmd = Command(nx or nexus(), lun, bytes(cdb), b"",
                  len(data_out) if expected is None else expected)
    result = target.precheck(cmd)  # type: ignore[attr-defined]
    if result is not None:
        return result  # type: ignore[no-any-return]
    cmd.data_out = data_out
    return target.execute(cmd)  # type: ignore[attr-defined, no-any-return]


ILLEGAL = int(SenseKey.ILLEGAL_REQUEST)
UA = int(SenseKey.UNIT_ATTENTION)
INVALID_FIELD = (ILLEGAL, 0x24, 0x00)


def sense_of(result: Result) -> tuple[int, int, int]:
    """(key, ASC, ASCQ) of a CHECK CONDITION, decoded from the sense bytes."""
    assert result.status == Status.CHECK_CONDITION, result
    assert result.sense is not None
    s = Sense.decode(result.sense.encode())
    return int(s.key), s.code[0], s.code[1]


def field_pointer(result: Result) -> tuple[int, int | None, bool]:
    """(field pointer, bit pointer, C/D) of an ILLEGAL REQUEST's sense-key specific field."""
    assert result.sense is not None
    s = Sense.decode(result.sense.encode())
    assert s.specific is not None, s
    return s.specific.field_pointer, s.specific.bit_pointer, s.specific.c_d


def ready(target: object, nx: Nexus | None = None, lun: int = 0) -> None:
    """Consume the power-on unit attention of a nexus (and check it was that one)."""
    r = run(target, tur(), nx=nx, lun=lun)
    assert sense_of(r) == (UA, 0x29, 0x00)
    assert run(target, tur(), nx=nx, lun=lun).good


# --- CDB builders ---------------------------------------------------------------------------

def tur() -> bytes:
    return bytes(6)


def inquiry(alloc: int = 255, evpd: bool = False, page: int = 0) -> bytes:
    return struct.pack(">BBBHB", 0x12, int(evpd), page, alloc, 0)


def request_sense(alloc: int = 252, desc: bool = False) -> bytes:
    return bytes((0x03, int(desc), 0, 0, alloc, 0))


def report_luns(alloc: int = 4096, select: int = 0) -> bytes:
    return struct.pack(">BxB3xIxx", 0xA0, select, alloc)


def read_capacity10() -> bytes:
    return bytes((0x25,)) + bytes(9)


def read_capacity16(alloc: int = 32) -> bytes:
    return struct.pack(">BB8xIxx", 0x9E, 0x10, alloc)


def rw6(op: int, lba: int, n: int) -> bytes:
    return struct.pack(">I", (op << 24) | lba) + bytes((n & 0xFF, 0))


def rw10(op: int, lba: int, n: int, flags: int = 0, group: int = 0) -> bytes:
    return struct.pack(">BBIBHB", op, flags, lba, group, n, 0)


def rw12(op: int, lba: int, n: int, flags: int = 0) -> bytes:
    return struct.pack(">BBIIBB", op, flags, lba, n, 0, 0)


def rw16(op: int, lba: int, n: int, flags: int = 0) -> bytes:
    return struct.pack(">BBQIBB", op, flags, lba, n, 0, 0)


def read10(lba: int, n: int, flags: int = 0) -> bytes:
    return rw10(0x28, lba, n, flags)


def write10(lba: int, n: int, flags: int = 0) -> bytes:
    return rw10(0x2A, lba, n, flags)


def read16(lba: int, n: int, flags: int = 0) -> bytes:
    return rw16(0x88, lba, n, flags)


def write16(lba: int, n: int, flags: int = 0) -> bytes:
    return rw16(0x8A, lba, n, flags)


def sync_cache10(lba: int = 0, n: int = 0, immed: bool = False) -> bytes:
    return rw10(0x35, lba, n, 0x02 if immed else 0)


def write_same16(lba: int, n: int, *, unmap: bool = False, ndob: bool = False,
                 flags: int = 0) -> bytes:
    return rw16(0x93, lba, n, flags | (0x08 if unmap else 0) | (0x01 if ndob else 0))


def write_same10(lba: int, n: int, *, unmap: bool = False, flags: int = 0) -> bytes:
    return rw10(0x41, lba, n, flags | (0x08 if unmap else 0))


def unmap(length: int) -> bytes:
    return struct.pack(">B5xBHB", 0x42, 0, length, 0)


def unmap_list(ranges: Iterable[tuple[int, int]]) -> bytes:
    body = b"".join(struct.pack(">QI4x", lba, n) for lba, n in ranges)
    return struct.pack(">HH4x", len(body) + 6, len(body)) + body


def compare_and_write(lba: int, n: int, flags: int = 0) -> bytes:
    return struct.pack(">BBQ3xBBB", 0x89, flags, lba, n, 0, 0)


def verify10(lba: int, n: int, bytchk: int = 0) -> bytes:
    return rw10(0x2F, lba, n, bytchk << 1)


def mode_sense6(page: int, pc: int = 0, subpage: int = 0, alloc: int = 255,
                dbd: bool = False) -> bytes:
    return bytes((0x1A, 0x08 if dbd else 0, (pc << 6) | page, subpage, alloc, 0))


def mode_sense10(page: int, pc: int = 0, subpage: int = 0, alloc: int = 1024,
                 dbd: bool = False, llbaa: bool = False) -> bytes:
    return struct.pack(">BBBB3xHB", 0x5A, (0x08 if dbd else 0) | (0x10 if llbaa else 0),
                       (pc << 6) | page, subpage, alloc, 0)


def mode_select6(length: int, pf: bool = True, sp: bool = False) -> bytes:
    return bytes((0x15, (0x10 if pf else 0) | int(sp), 0, 0, length, 0))


def mode_select10(length: int, pf: bool = True, sp: bool = False) -> bytes:
    return struct.pack(">BB5xHB", 0x55, (0x10 if pf else 0) | int(sp), length, 0)


def rsoc(option: int = 0, op: int = 0, sa: int = 0, alloc: int = 8192,
         rctd: bool = False) -> bytes:
    return struct.pack(">BBBBHIxB", 0xA3, 0x0C, (0x80 if rctd else 0) | option, op, sa,
                       alloc, 0)


def rtpg(alloc: int = 1024, extended: bool = False) -> bytes:
    return struct.pack(">BB4xIxB", 0xA3, 0x0A | (0x20 if extended else 0), alloc, 0)


def start_stop(start: bool = True, loej: bool = False, pc: int = 0, no_flush: bool = False,
               immed: bool = False) -> bytes:
    return bytes((0x1B, int(immed), 0, 0,
                  (pc << 4) | (0x04 if no_flush else 0) | (0x02 if loej else 0) | int(start),
                  0))

"""CDB decoding: operation codes, the commands fcsoft's disk supports, their CDB usage data,
reserved-bit checks and the field readers the hot path uses.

Each supported command has one `CommandInfo` with its CDB USAGE DATA as REPORT SUPPORTED
OPERATION CODES returns it (SPC-4 6.35.3): the opcode in byte 0, the service action value in
the SERVICE ACTION field, and elsewhere a 1 for every bit the device server looks at. The same
map drives the reserved-bit check: a 1 in the CDB where the usage data has a 0 is answered with
ILLEGAL REQUEST, INVALID FIELD IN CDB, the field pointer naming the byte and the bit pointer
the bit (SPC-4 4.5.2.4.2) -- except the two vendor-specific bits of the CONTROL byte, which
are ignored. A CONTROL byte with NACA or LINK set is refused that way too (SAM-5 5.2: neither
ACA nor linked commands are supported).

Field layouts are from SBC-3 (r35) section 5 and SPC-4 (r37) section 6.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from .sense import invalid_field_in_cdb

__all__ = [
    "CommandInfo", "MaintenanceIn", "Opcode", "PersistentReserveIn", "PersistentReserveOut",
    "SUPPORTED_COMMANDS", "ServiceActionIn16", "cdb_length", "check_reserved_bits",
    "command_info", "lba_length", "length_field_offset", "service_action",
    "supported_operation_codes", "u16", "u32",
]


class Opcode(IntEnum):
    """SCSI operation codes (SPC-4 Annex E, SBC-3 table 14) that fcsoft knows by name."""

    TEST_UNIT_READY = 0x00
    REQUEST_SENSE = 0x03
    FORMAT_UNIT = 0x04
    READ_6 = 0x08
    WRITE_6 = 0x0A
    INQUIRY = 0x12
    MODE_SELECT_6 = 0x15
    RESERVE_6 = 0x16
    RELEASE_6 = 0x17
    MODE_SENSE_6 = 0x1A
    START_STOP_UNIT = 0x1B
    SEND_DIAGNOSTIC = 0x1D
    PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E
    READ_CAPACITY_10 = 0x25
    READ_10 = 0x28
    WRITE_10 = 0x2A
    WRITE_AND_VERIFY_10 = 0x2E
    VERIFY_10 = 0x2F
    PRE_FETCH_10 = 0x34
    SYNCHRONIZE_CACHE_10 = 0x35
    WRITE_BUFFER = 0x3B
    READ_BUFFER = 0x3C
    WRITE_SAME_10 = 0x41
    UNMAP = 0x42
    LOG_SELECT = 0x4C
    LOG_SENSE = 0x4D
    MODE_SELECT_10 = 0x55
    RESERVE_10 = 0x56
    RELEASE_10 = 0x57
    MODE_SENSE_10 = 0x5A
    PERSISTENT_RESERVE_IN = 0x5E
    PERSISTENT_RESERVE_OUT = 0x5F
    VARIABLE_LENGTH = 0x7F
    ATA_PASS_THROUGH_16 = 0x85
    READ_16 = 0x88
    COMPARE_AND_WRITE = 0x89
    WRITE_16 = 0x8A
    WRITE_AND_VERIFY_16 = 0x8E
    VERIFY_16 = 0x8F
    PRE_FETCH_16 = 0x90
    SYNCHRONIZE_CACHE_16 = 0x91
    WRITE_SAME_16 = 0x93
    SERVICE_ACTION_IN_16 = 0x9E
    SERVICE_ACTION_OUT_16 = 0x9F
    REPORT_LUNS = 0xA0
    ATA_PASS_THROUGH_12 = 0xA1
    MAINTENANCE_IN = 0xA3
    MAINTENANCE_OUT = 0xA4
    READ_12 = 0xA8
    WRITE_12 = 0xAA
    WRITE_AND_VERIFY_12 = 0xAE
    VERIFY_12 = 0xAF


class MaintenanceIn(IntEnum):
    """MAINTENANCE IN (A3h) service actions (SPC-4 table E.7)."""

    REPORT_TARGET_PORT_GROUPS = 0x0A
    REPORT_SUPPORTED_OPERATION_CODES = 0x0C


class ServiceActionIn16(IntEnum):
    """SERVICE ACTION IN(16) (9Eh) service actions (SBC-3 table 15)."""

    READ_CAPACITY_16 = 0x10


class PersistentReserveIn(IntEnum):
    """PERSISTENT RESERVE IN service actions (SPC-4 6.15.1)."""

    READ_KEYS = 0x00
    READ_RESERVATION = 0x01
    REPORT_CAPABILITIES = 0x02
    READ_FULL_STATUS = 0x03


class PersistentReserveOut(IntEnum):
    """PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2)."""

    REGISTER = 0x00
    RESERVE = 0x01
    RELEASE = 0x02
    CLEAR = 0x03
    PREEMPT = 0x04
    PREEMPT_AND_ABORT = 0x05
    REGISTER_AND_IGNORE_EXISTING_KEY = 0x06
    REGISTER_AND_MOVE = 0x07


#: opcodes whose byte 1 bits 4-0 hold a service action
SERVICE_ACTION_OPCODES = frozenset({
    Opcode.MAINTENANCE_IN, Opcode.SERVICE_ACTION_IN_16, Opcode.PERSISTENT_RESERVE_IN,
    Opcode.PERSISTENT_RESERVE_OUT,
})

_CDB_LENGTH_BY_GROUP = (6, 10, 10, None, 16, 12, None, None)  # SPC-4 4.3.4.1, table 8


def cdb_length(opcode: int) -> int | None:
    """CDB length from the opcode's group code; None for variable-length or vendor groups."""
    return _CDB_LENGTH_BY_GROUP[opcode >> 5]


def service_action(cdb: bytes) -> int | None:
    """The SERVICE ACTION field (byte 1 bits 4-0) of a service-action opcode, else None."""
    if cdb[0] in SERVICE_ACTION_OPCODES and len(cdb) > 1:
        return cdb[1] & 0x1F
    return None


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A supported command: its name and CDB USAGE DATA (SPC-4 6.35.3)."""

    opcode: int
    service_action: int | None
    name: str
    usage: bytes
    #: bits that must be zero in the CDB (all but the usage bits and the CONTROL vendor bits)
    reserved: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.usage)
        allowed = int.from_bytes(self.usage, "big") | 0xC0  # CONTROL bits 7-6: vendor specific
        object.__setattr__(self, "reserved", ~allowed & ((1 << (8 * n)) - 1))

    @property
    def cdb_length(self) -> int:
        return len(self.usage)


def _info(opcode: int, name: str, *usage: int, sa: int | None = None) -> CommandInfo:
    return CommandInfo(opcode, sa, name, bytes((opcode, *usage)))


# CDB usage data. Read left to right: byte 1, byte 2, ... CONTROL (00: NACA/LINK unsupported).
# Byte 1 of READ/WRITE-class CDBs: xxPROTECT(7-5) DPO(4) FUA(3) RARC(2) FUA_NV(1) obsolete(0);
# a group number field is 1Fh.
_RD = 0xFE  # RDPROTECT DPO FUA RARC FUA_NV
_WR = 0xFA  # WRPROTECT DPO FUA FUA_NV
_WV = 0xF2  # WRITE AND VERIFY: WRPROTECT DPO BYTCHK(1)
_VF = 0xF6  # VERIFY: VRPROTECT DPO BYTCHK(2-1)
_FF4 = (0xFF,) * 4
_FF8 = (0xFF,) * 8

_COMMANDS: tuple[CommandInfo, ...] = (
    _info(Opcode.TEST_UNIT_READY, "TEST UNIT READY", 0, 0, 0, 0, 0),
    _info(Opcode.REQUEST_SENSE, "REQUEST SENSE", 0x01, 0, 0, 0xFF, 0),
    _info(Opcode.READ_6, "READ(6)", 0x1F, 0xFF, 0xFF, 0xFF, 0),
    _info(Opcode.WRITE_6, "WRITE(6)", 0x1F, 0xFF, 0xFF, 0xFF, 0),
    _info(Opcode.INQUIRY, "INQUIRY", 0x01, 0xFF, 0xFF, 0xFF, 0),
    _info(Opcode.MODE_SELECT_6, "MODE SELECT(6)", 0x11, 0, 0, 0xFF, 0),
    _info(Opcode.RESERVE_6, "RESERVE(6)", 0, 0, 0, 0, 0),
    _info(Opcode.RELEASE_6, "RELEASE(6)", 0, 0, 0, 0, 0),
    _info(Opcode.MODE_SENSE_6, "MODE SENSE(6)", 0x08, 0xFF, 0xFF, 0xFF, 0),
    _info(Opcode.START_STOP_UNIT, "START STOP UNIT", 0x01, 0, 0x0F, 0xF7, 0),
    _info(Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, "PREVENT ALLOW MEDIUM REMOVAL", 0, 0, 0, 0x03,
          0),
    _info(Opcode.READ_CAPACITY_10, "READ CAPACITY(10)", 0, *_FF4, 0, 0, 0x01, 0),
    _info(Opcode.READ_10, "READ(10)", _RD, *_FF4, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.WRITE_10, "WRITE(10)", _WR, *_FF4, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.WRITE_AND_VERIFY_10, "WRITE AND VERIFY(10)", _WV, *_FF4, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.VERIFY_10, "VERIFY(10)", _VF, *_FF4, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.SYNCHRONIZE_CACHE_10, "SYNCHRONIZE CACHE(10)", 0x06, *_FF4, 0x1F, 0xFF, 0xFF,
          0),
    # WRITE SAME: WRPROTECT(7-5) ANCHOR(4) UNMAP(3); (16) adds NDOB(0)
    _info(Opcode.WRITE_SAME_10, "WRITE SAME(10)", 0xF8, *_FF4, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.UNMAP, "UNMAP", 0x01, 0, 0, 0, 0, 0x1F, 0xFF, 0xFF, 0),
    _info(Opcode.MODE_SELECT_10, "MODE SELECT(10)", 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0),
    _info(Opcode.RESERVE_10, "RESERVE(10)", 0, 0, 0, 0, 0, 0, 0, 0, 0),
    _info(Opcode.RELEASE_10, "RELEASE(10)", 0, 0, 0, 0, 0, 0, 0, 0, 0),
    _info(Opcode.MODE_SENSE_10, "MODE SENSE(10)", 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0),
    *(_info(Opcode.PERSISTENT_RESERVE_IN, f"PERSISTENT RESERVE IN ({sa.name.replace('_', ' ')})",
            sa, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, sa=sa) for sa in PersistentReserveIn),
    *(_info(Opcode.PERSISTENT_RESERVE_OUT,
            f"PERSISTENT RESERVE OUT ({sa.name.replace('_', ' ')})",
            sa, 0xFF, 0, 0, *_FF4, 0, sa=sa) for sa in PersistentReserveOut),
    _info(Opcode.READ_16, "READ(16)", _RD, *_FF8, *_FF4, 0x1F, 0),
    _info(Opcode.COMPARE_AND_WRITE, "COMPARE AND WRITE", _WR, *_FF8, 0, 0, 0, 0xFF, 0x1F, 0),
    _info(Opcode.WRITE_16, "WRITE(16)", _WR, *_FF8, *_FF4, 0x1F, 0),
    _info(Opcode.WRITE_AND_VERIFY_16, "WRITE AND VERIFY(16)", _WV, *_FF8, *_FF4, 0x1F, 0),
    _info(Opcode.VERIFY_16, "VERIFY(16)", _VF, *_FF8, *_FF4, 0x1F, 0),
    _info(Opcode.SYNCHRONIZE_CACHE_16, "SYNCHRONIZE CACHE(16)", 0x06, *_FF8, *_FF4, 0x1F, 0),
    _info(Opcode.WRITE_SAME_16, "WRITE SAME(16)", 0xF9, *_FF8, *_FF4, 0x1F, 0),
    # READ CAPACITY(16): the LBA field and PMI are obsolete (SBC-3), accepted and ignored
    _info(Opcode.SERVICE_ACTION_IN_16, "READ CAPACITY(16)", ServiceActionIn16.READ_CAPACITY_16,
          *_FF8, *_FF4, 0x01, 0, sa=ServiceActionIn16.READ_CAPACITY_16),
    _info(Opcode.REPORT_LUNS, "REPORT LUNS", 0, 0xFF, 0, 0, 0, *_FF4, 0, 0),
    # REPORT TARGET PORT GROUPS: PARAMETER DATA FORMAT in byte 1 bits 7-5
    _info(Opcode.MAINTENANCE_IN, "REPORT TARGET PORT GROUPS",
          0xE0 | MaintenanceIn.REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0, *_FF4, 0, 0,
          sa=MaintenanceIn.REPORT_TARGET_PORT_GROUPS),
    # REPORT SUPPORTED OPERATION CODES: RCTD(7) REPORTING OPTIONS(2-0) in byte 2
    _info(Opcode.MAINTENANCE_IN, "REPORT SUPPORTED OPERATION CODES",
          MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES, 0x87, 0xFF, 0xFF, 0xFF, *_FF4, 0, 0,
          sa=MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES),
    _info(Opcode.READ_12, "READ(12)", _RD, *_FF4, *_FF4, 0x1F, 0),
    _info(Opcode.WRITE_12, "WRITE(12)", _WR, *_FF4, *_FF4, 0x1F, 0),
    _info(Opcode.WRITE_AND_VERIFY_12, "WRITE AND VERIFY(12)", _WV, *_FF4, *_FF4, 0x1F, 0),
    _info(Opcode.VERIFY_12, "VERIFY(12)", _VF, *_FF4, *_FF4, 0x1F, 0),
)

#: every supported command, sorted by opcode then service action (REPORT SUPPORTED OPCODES)
SUPPORTED_COMMANDS: tuple[CommandInfo, ...] = tuple(sorted(
    _COMMANDS, key=lambda c: (c.opcode, -1 if c.service_action is None else c.service_action)))

_BY_KEY: dict[tuple[int, int | None], CommandInfo] = {
    (c.opcode, c.service_action): c for c in SUPPORTED_COMMANDS}
#: opcodes that have service actions among the supported commands
SERVICE_ACTION_SUPPORTED = frozenset(c.opcode for c in SUPPORTED_COMMANDS
                                     if c.service_action is not None)

#: PERSISTENT RESERVE IN/OUT with a service action fcsoft does not list: the reservation
#: engine judges the SA, so the reserved-bit check only covers the other fields
_PR_GENERIC: dict[int, CommandInfo] = {
    Opcode.PERSISTENT_RESERVE_IN: _info(Opcode.PERSISTENT_RESERVE_IN, "PERSISTENT RESERVE IN",
                                        0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0),
    Opcode.PERSISTENT_RESERVE_OUT: _info(Opcode.PERSISTENT_RESERVE_OUT,
                                         "PERSISTENT RESERVE OUT", 0x1F, 0xFF, 0, 0, *_FF4, 0),
}


def command_info(opcode: int, sa: int | None = None) -> CommandInfo | None:
    """The supported command with this opcode (and service action, for SA opcodes)."""
    info = _BY_KEY.get((opcode, sa))
    if info is None and sa is not None and opcode in _PR_GENERIC:
        return _PR_GENERIC[opcode]
    return info


def reserved_bits(cdb: bytes, info: CommandInfo) -> int:
    """The bits of `cdb` set outside `info`'s usage data, as one big-endian integer over
    the CDB's length (0: none). `cdb` is at least info.cdb_length bytes."""
    return int.from_bytes(cdb[:len(info.usage)], "big") & info.reserved


def check_reserved_bits(cdb: bytes, info: CommandInfo) -> None:
    """Raise INVALID FIELD IN CDB (byte and bit pointer) if a bit outside `info`'s usage data
    is set. `cdb` is at least info.cdb_length bytes."""
    n = len(info.usage)
    bad = reserved_bits(cdb, info)
    if bad:
        byte = n - 1 - (bad.bit_length() - 1) // 8
        bits = cdb[byte] & (info.reserved >> (8 * (n - 1 - byte))) & 0xFF
        raise invalid_field_in_cdb(byte, bits.bit_length() - 1)


# --- field readers (struct, no slicing) -------------------------------------------------------

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_RW10 = struct.Struct(">2xIxH")  # LBA bytes 2-5, length bytes 7-8
_RW12 = struct.Struct(">2xII")  # LBA 2-5, length 6-9
_RW16 = struct.Struct(">2xQI")  # LBA 2-9, length 10-13


def u16(buf: bytes | bytearray | memoryview, offset: int) -> int:
    return int(_U16.unpack_from(buf, offset)[0])


def u32(buf: bytes | bytearray | memoryview, offset: int) -> int:
    return int(_U32.unpack_from(buf, offset)[0])


def lba_length(cdb: bytes) -> tuple[int, int]:
    """(LOGICAL BLOCK ADDRESS, TRANSFER LENGTH / NUMBER OF LOGICAL BLOCKS) of a block
    command, by the opcode's CDB group; `cdb` is at least that long. READ(6)/WRITE(6): a
    length of 0 means 256 (SBC-3 5.14)."""
    group = cdb[0] >> 5
    if group == 4:
        return _RW16.unpack_from(cdb)
    if group == 5:
        return _RW12.unpack_from(cdb)
    if group:
        return _RW10.unpack_from(cdb)
    return _U32.unpack_from(cdb)[0] & 0x1FFFFF, cdb[4] or 256


def length_field_offset(opcode: int) -> int:
    """Byte offset of the TRANSFER LENGTH (or NUMBER OF LOGICAL BLOCKS) field: for the
    field pointer of an error about it."""
    if opcode == Opcode.COMPARE_AND_WRITE:
        return 13
    size = cdb_length(opcode)
    return {6: 4, 10: 7, 12: 6, 16: 10}[size or 10]


def supported_operation_codes(cdb: bytes) -> bytes:
    """REPORT SUPPORTED OPERATION CODES parameter data (SPC-4 6.35), untruncated: all
    commands (REPORTING OPTIONS 000b), or one command by opcode (001b), by opcode and service
    action (010b), or by either (011b, SPC-4 r37). RCTD=1 adds a command timeouts descriptor
    to each (timeouts not specified: zero). Raises INVALID FIELD IN CDB for an opcode with
    service actions under 001b, one without under 010b, and other options."""
    rctd = bool(cdb[2] & 0x80)
    option = cdb[2] & 0x07
    timeouts = struct.pack(">HxxII", 0x0A, 0, 0) if rctd else b""
    if option == 0:
        body = b"".join(
            struct.pack(">BxHxBH", c.opcode, c.service_action or 0,
                        (0x02 if rctd else 0) | (0x01 if c.service_action is not None else 0),
                        c.cdb_length) + timeouts
            for c in SUPPORTED_COMMANDS)
        return struct.pack(">I", len(body)) + body
    if option > 3:
        raise invalid_field_in_cdb(2, 2)
    op, sa = cdb[3], u16(cdb, 4)
    has_sa = op in SERVICE_ACTION_SUPPORTED
    if (option == 1 and has_sa) or (option == 2 and not has_sa):
        raise invalid_field_in_cdb(3, 7)
    if has_sa and option != 1:
        info = command_info(op, sa) if sa <= 0x1F else None
    else:
        info = command_info(op)
    if info is None or (info.service_action is None and op in SERVICE_ACTION_OPCODES):
        return bytes((0, 0x01, 0, 0))  # SUPPORT 001b: not supported
    return (struct.pack(">xBH", (0x80 if rctd else 0) | 0x03, info.cdb_length) + info.usage
            + timeouts)

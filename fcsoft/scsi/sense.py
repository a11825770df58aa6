"""SCSI status, sense keys, additional sense codes and fixed-format sense data (SPC-4 4.5).

`CheckCondition` is the one exception the SCSI layer raises for "answer CHECK CONDITION with
this sense": command code anywhere below the dispatcher raises it, the dispatcher turns it
into a `Result`. That keeps every error path one line long and every answer standard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    """SCSI status codes (SAM-5 5.3, table 26)."""

    GOOD = 0x00
    CHECK_CONDITION = 0x02
    CONDITION_MET = 0x04
    BUSY = 0x08
    RESERVATION_CONFLICT = 0x18
    TASK_SET_FULL = 0x28
    ACA_ACTIVE = 0x30
    TASK_ABORTED = 0x40


class SenseKey(IntEnum):
    """Sense keys (SPC-4 4.5.6, table 27)."""

    NO_SENSE = 0x0
    RECOVERED_ERROR = 0x1
    NOT_READY = 0x2
    MEDIUM_ERROR = 0x3
    HARDWARE_ERROR = 0x4
    ILLEGAL_REQUEST = 0x5
    UNIT_ATTENTION = 0x6
    DATA_PROTECT = 0x7
    BLANK_CHECK = 0x8
    VENDOR_SPECIFIC = 0x9
    COPY_ABORTED = 0xA
    ABORTED_COMMAND = 0xB
    VOLUME_OVERFLOW = 0xD
    MISCOMPARE = 0xE


class Asc(tuple[int, int]):
    """An (ASC, ASCQ) pair; the named ones below are SPC-4 Annex D codes."""

    __slots__ = ()

    def __new__(cls, asc: int, ascq: int) -> Asc:
        return tuple.__new__(cls, (asc, ascq))

    @property
    def asc(self) -> int:
        return self[0]

    @property
    def ascq(self) -> int:
        return self[1]

    def __repr__(self) -> str:
        return f"Asc({self[0]:#04x}, {self[1]:#04x})"


# SPC-4 Annex D (additional sense codes), the ones fcsoft answers with
NO_ADDITIONAL_SENSE = Asc(0x00, 0x00)
LOGICAL_UNIT_COMMUNICATION_FAILURE = Asc(0x08, 0x00)
PARAMETER_LIST_LENGTH_ERROR = Asc(0x1A, 0x00)
MISCOMPARE_DURING_VERIFY = Asc(0x1D, 0x00)
INVALID_COMMAND_OPERATION_CODE = Asc(0x20, 0x00)
LBA_OUT_OF_RANGE = Asc(0x21, 0x00)
INVALID_FIELD_IN_CDB = Asc(0x24, 0x00)
LOGICAL_UNIT_NOT_SUPPORTED = Asc(0x25, 0x00)
INVALID_FIELD_IN_PARAMETER_LIST = Asc(0x26, 0x00)
INVALID_RELEASE_OF_PERSISTENT_RESERVATION = Asc(0x26, 0x04)
WRITE_PROTECTED = Asc(0x27, 0x00)
POWER_ON_RESET_OR_BUS_DEVICE_RESET = Asc(0x29, 0x00)
POWER_ON_OCCURRED = Asc(0x29, 0x01)
SCSI_BUS_RESET_OCCURRED = Asc(0x29, 0x02)
BUS_DEVICE_RESET_FUNCTION_OCCURRED = Asc(0x29, 0x03)
I_T_NEXUS_LOSS_OCCURRED = Asc(0x29, 0x07)
PARAMETERS_CHANGED = Asc(0x2A, 0x00)
MODE_PARAMETERS_CHANGED = Asc(0x2A, 0x01)
RESERVATIONS_PREEMPTED = Asc(0x2A, 0x03)
RESERVATIONS_RELEASED = Asc(0x2A, 0x04)
REGISTRATIONS_PREEMPTED = Asc(0x2A, 0x05)
CAPACITY_DATA_HAS_CHANGED = Asc(0x2A, 0x09)
COMMANDS_CLEARED_BY_ANOTHER_INITIATOR = Asc(0x2F, 0x00)
SAVING_PARAMETERS_NOT_SUPPORTED = Asc(0x39, 0x00)
REPORTED_LUNS_DATA_HAS_CHANGED = Asc(0x3F, 0x0E)
INQUIRY_DATA_HAS_CHANGED = Asc(0x3F, 0x03)
INSUFFICIENT_REGISTRATION_RESOURCES = Asc(0x55, 0x04)
MEDIUM_NOT_PRESENT = Asc(0x3A, 0x00)
LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED = Asc(0x04, 0x02)

#: SPC-4 Annex D names of the additional sense codes a SCSI target commonly answers, as
#: sg3_utils spells them (sg_get_asc_ascq_str): the tools' -v output and the logs use them
ASC_NAMES: dict[tuple[int, int], str] = {
    (0x00, 0x00): "No additional sense information",
    (0x04, 0x00): "Logical unit not ready, cause not reportable",
    (0x04, 0x01): "Logical unit is in process of becoming ready",
    (0x04, 0x02): "Logical unit not ready, initializing command required",
    (0x04, 0x0B): "Logical unit not accessible, target port in standby state",
    (0x04, 0x0C): "Logical unit not accessible, target port in unavailable state",
    (0x04, 0x12): "Logical unit not ready, offline",
    (0x08, 0x00): "Logical unit communication failure",
    (0x0C, 0x00): "Write error",
    (0x0E, 0x03): "Invalid field in command information unit",
    (0x11, 0x00): "Unrecovered read error",
    (0x1A, 0x00): "Parameter list length error",
    (0x1D, 0x00): "Miscompare during verify operation",
    (0x20, 0x00): "Invalid command operation code",
    (0x21, 0x00): "Logical block address out of range",
    (0x24, 0x00): "Invalid field in cdb",
    (0x25, 0x00): "Logical unit not supported",
    (0x26, 0x00): "Invalid field in parameter list",
    (0x26, 0x04): "Invalid release of persistent reservation",
    (0x27, 0x00): "Write protected",
    (0x27, 0x07): "Space allocation failed write protect",
    (0x29, 0x00): "Power on, reset, or bus device reset occurred",
    (0x29, 0x01): "Power on occurred",
    (0x29, 0x02): "SCSI bus reset occurred",
    (0x29, 0x03): "Bus device reset function occurred",
    (0x29, 0x07): "I_T nexus loss occurred",
    (0x2A, 0x00): "Parameters changed",
    (0x2A, 0x01): "Mode parameters changed",
    (0x2A, 0x03): "Reservations preempted",
    (0x2A, 0x04): "Reservations released",
    (0x2A, 0x05): "Registrations preempted",
    (0x2A, 0x06): "Asymmetric access state changed",
    (0x2A, 0x09): "Capacity data has changed",
    (0x2F, 0x00): "Commands cleared by another initiator",
    (0x39, 0x00): "Saving parameters not supported",
    (0x3A, 0x00): "Medium not present",
    (0x3F, 0x03): "Inquiry data has changed",
    (0x3F, 0x0E): "Reported luns data has changed",
    (0x44, 0x00): "Internal target failure",
    (0x55, 0x04): "Insufficient registration resources",
}


@dataclass(frozen=True, slots=True)
class SenseKeySpecific:
    """Sense-key specific field for ILLEGAL REQUEST (SPC-4 4.5.2.4.2): which byte (and bit)
    of the CDB (c_d=True) or parameter list (c_d=False) was wrong."""

    field_pointer: int
    c_d: bool = True
    bit_pointer: int | None = None

    def encode(self) -> bytes:
        b0 = 0x80 | (0x40 if self.c_d else 0)
        if self.bit_pointer is not None:
            b0 |= 0x08 | (self.bit_pointer & 7)
        return bytes((b0,)) + struct.pack(">H", self.field_pointer)


@dataclass(frozen=True, slots=True)
class Sense:
    """Sense data: key, (ASC, ASCQ), optional INFORMATION and sense-key specific field."""

    key: SenseKey
    code: Asc
    information: int | None = None
    specific: SenseKeySpecific | None = None
    deferred: bool = False

    def encode(self) -> bytes:
        """Fixed-format sense data, 18 bytes (SPC-4 4.5.3, table 30): response code 70h
        (current) or 71h (deferred), VALID bit when INFORMATION is set."""
        b = bytearray(18)
        b[0] = (0x71 if self.deferred else 0x70) | (0x80 if self.information is not None else 0)
        b[2] = int(self.key)
        if self.information is not None:
            struct.pack_into(">I", b, 3, self.information & 0xFFFFFFFF)
        b[7] = 10  # additional sense length
        b[12], b[13] = self.code
        if self.specific is not None:
            b[15:18] = self.specific.encode()
        return bytes(b)

    @classmethod
    def decode(cls, data: bytes) -> Sense:
        """Fixed (70h/71h) or descriptor (72h/73h) format, key/ASC/ASCQ only for the latter."""
        if len(data) < 8:
            raise ValueError(f"sense data of {len(data)} bytes is too short")
        rc = data[0] & 0x7F
        if rc in (0x72, 0x73):
            return cls(SenseKey(data[1] & 0xF), Asc(data[2], data[3]), deferred=rc == 0x73)
        if rc not in (0x70, 0x71) or len(data) < 14:
            raise ValueError(f"sense response code {rc:#04x} / length {len(data)} not understood")
        info = struct.unpack(">I", data[3:7])[0] if data[0] & 0x80 else None
        specific = None
        if len(data) >= 18 and data[15] & 0x80:
            bp = data[15] & 7 if data[15] & 0x08 else None
            specific = SenseKeySpecific(struct.unpack(">H", data[16:18])[0],
                                        bool(data[15] & 0x40), bp)
        return cls(SenseKey(data[2] & 0xF), Asc(data[12], data[13]), info, specific,
                   rc == 0x71)

    def __str__(self) -> str:
        """`medium error: unrecovered read error (3/11/00)` (fcsoft.names)."""
        from fcsoft.names import sense

        return sense(self)


class CheckCondition(Exception):
    """Raise to answer CHECK CONDITION with `sense`."""

    def __init__(self, sense: Sense) -> None:
        super().__init__(str(sense))
        self.sense = sense


def illegal_request(code: Asc, field: int | None = None, bit: int | None = None,
                    in_cdb: bool = True) -> CheckCondition:
    """ILLEGAL REQUEST with an optional sense-key specific pointer to the offending byte."""
    specific = SenseKeySpecific(field, in_cdb, bit) if field is not None else None
    return CheckCondition(Sense(SenseKey.ILLEGAL_REQUEST, code, specific=specific))


def invalid_field_in_cdb(field: int, bit: int | None = None) -> CheckCondition:
    return illegal_request(INVALID_FIELD_IN_CDB, field, bit)


def invalid_field_in_parameter_list(field: int | None = None,
                                    bit: int | None = None) -> CheckCondition:
    return illegal_request(INVALID_FIELD_IN_PARAMETER_LIST, field, bit, in_cdb=False)

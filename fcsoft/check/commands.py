"""The commands the check suite sends, as plain CDB and parameter-list builders, and the
decoders for what comes back (SPC-4 6.15/6.16 PERSISTENT RESERVE IN/OUT, SPC-2 RESERVE/
RELEASE, SBC-3 reads and writes; layouts as in SPC-4 6.15, 6.16).

Nothing here knows fcsoft's array: the suite may only use the wire, so every byte it sends is
built here from the standards.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from fcsoft.scsi.cdb import PersistentReserveIn, PersistentReserveOut
from fcsoft.wire.wwn import WWN

# service action codes: the SCSI layer's, under the suite's short names (the suite uses
# nothing else of fcsoft's array code)
PrIn = PersistentReserveIn
PrOut = PersistentReserveOut


class PrType(IntEnum):
    """Persistent reservation types (SPC-4 table 169)."""

    WR_EX = 1
    EX_AC = 3
    WR_EX_RO = 5
    EX_AC_RO = 6
    WR_EX_AR = 7
    EX_AC_AR = 8

    @property
    def all_registrants(self) -> bool:
        return self in (PrType.WR_EX_AR, PrType.EX_AC_AR)

    @property
    def registrants_only(self) -> bool:
        return self in (PrType.WR_EX_RO, PrType.EX_AC_RO)

    @property
    def write_exclusive(self) -> bool:
        """The Write Exclusive family (1, 5, 7): others may still read."""
        return self in (PrType.WR_EX, PrType.WR_EX_RO, PrType.WR_EX_AR)


PR_TYPES = tuple(PrType)

# --- CDBs ---------------------------------------------------------------------------------


def test_unit_ready() -> bytes:
    return bytes(6)


def inquiry(allocation: int = 96, page: int | None = None) -> bytes:
    return struct.pack(">BBBHB", 0x12, 0 if page is None else 1, page or 0, allocation, 0)


def report_luns(allocation: int = 4096) -> bytes:
    return struct.pack(">BxBxxxIxx", 0xA0, 0, allocation)


def request_sense(allocation: int = 252) -> bytes:
    return bytes((0x03, 0, 0, 0, allocation, 0))


def read_capacity_10() -> bytes:
    return bytes((0x25,)) + bytes(9)


def read_capacity_16(allocation: int = 32) -> bytes:
    return struct.pack(">BBQIBB", 0x9E, 0x10, 0, allocation, 0, 0)


def mode_sense_6(allocation: int = 255) -> bytes:
    return bytes((0x1A, 0x00, 0x3F, 0x00, allocation, 0))  # all pages, current values


def read_10(lba: int, blocks: int = 1) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def write_10(lba: int, blocks: int = 1) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def verify_10(lba: int, blocks: int = 1) -> bytes:
    return struct.pack(">BBIBHB", 0x2F, 0, lba, 0, blocks, 0)  # BYTCHK 0: no data-out


def synchronize_cache_10() -> bytes:
    return bytes((0x35,)) + bytes(9)


def reserve_6() -> bytes:
    return bytes((0x16, 0, 0, 0, 0, 0))


def release_6() -> bytes:
    return bytes((0x17, 0, 0, 0, 0, 0))


def reserve_10() -> bytes:
    return bytes((0x56,)) + bytes(9)


def release_10() -> bytes:
    return bytes((0x57,)) + bytes(9)


def persistent_reserve_in(sa: int, allocation: int = 8192) -> bytes:
    return struct.pack(">BB5xHB", 0x5E, sa, allocation, 0)


def persistent_reserve_out(sa: int, parameter_list_length: int, pr_type: int = 0,
                           scope: int = 0) -> bytes:
    return struct.pack(">BBBxxIB", 0x5F, sa, (scope << 4) | pr_type, parameter_list_length, 0)


# --- PERSISTENT RESERVE OUT parameter lists -------------------------------------------------

APTPL, ALL_TG_PT, SPEC_I_PT = 0x01, 0x04, 0x08
UNREG = 0x02  # REGISTER AND MOVE byte 17


def basic_parameters(key: int = 0, sa_key: int = 0, flags: int = 0) -> bytes:
    """The 24-byte basic parameter list (SPC-4 6.15.3)."""
    return struct.pack(">QQIBxH", key, sa_key, 0, flags, 0)


def fc_transport_id(wwpn: WWN) -> bytes:
    """FC TransportID (SPC-4 7.6.4.2): protocol 0h, N_Port_Name at bytes 8-15."""
    return bytes(8) + WWN(wwpn).to_bytes8() + bytes(8)


def move_parameters(key: int, sa_key: int, rtpi: int, destination: WWN, *,
                    unreg: bool = False) -> bytes:
    """REGISTER AND MOVE parameter list (SPC-4 6.15.4)."""
    tid = fc_transport_id(destination)
    return struct.pack(">QQxBHI", key, sa_key, UNREG if unreg else 0, rtpi, len(tid)) + tid


# --- PERSISTENT RESERVE IN data -------------------------------------------------------------


class BadData(ValueError):
    """Parameter data too short or inconsistent to decode."""


def _header(data: bytes) -> tuple[int, int]:
    if len(data) < 8:
        raise BadData(f"{len(data)} bytes of PERSISTENT RESERVE IN data (need 8)")
    return struct.unpack_from(">II", data, 0)


@dataclass(frozen=True)
class Keys:
    generation: int
    additional_length: int
    keys: tuple[int, ...]


def decode_read_keys(data: bytes) -> Keys:
    gen, length = _header(data)
    body = data[8:8 + length]
    keys = tuple(struct.unpack_from(">Q", body, i)[0] for i in range(0, len(body) // 8 * 8, 8))
    return Keys(gen, length, keys)


@dataclass(frozen=True)
class Held:
    """READ RESERVATION: the reservation, if any."""

    generation: int
    additional_length: int
    key: int = 0
    scope: int = 0
    type: int = 0

    @property
    def reserved(self) -> bool:
        return self.additional_length != 0


def decode_read_reservation(data: bytes) -> Held:
    gen, length = _header(data)
    if length == 0:
        return Held(gen, 0)
    if len(data) < 24:
        raise BadData(f"READ RESERVATION says {length} more bytes but sent {len(data) - 8}")
    key = struct.unpack_from(">Q", data, 8)[0]
    return Held(gen, length, key, data[21] >> 4, data[21] & 0x0F)


@dataclass(frozen=True)
class Capabilities:
    length: int
    crh: bool
    sip_c: bool
    atp_c: bool
    ptpl_c: bool
    tmv: bool
    allow_commands: int
    ptpl_a: bool
    type_mask: int  # bytes 4-5 as one 16-bit value

    def supports(self, pr_type: int) -> bool:
        bit = {1: 0x0200, 3: 0x0800, 5: 0x2000, 6: 0x4000, 7: 0x8000, 8: 0x0001}[pr_type]
        return bool(self.type_mask & bit)


def decode_report_capabilities(data: bytes) -> Capabilities:
    if len(data) < 8:
        raise BadData(f"{len(data)} bytes of REPORT CAPABILITIES data (need 8)")
    length, b2, b3, mask = struct.unpack_from(">HBBH", data, 0)
    return Capabilities(length, bool(b2 & 0x10), bool(b2 & 0x08), bool(b2 & 0x04),
                        bool(b2 & 0x01), bool(b3 & 0x80), (b3 >> 4) & 0x7, bool(b3 & 0x01),
                        mask)


@dataclass(frozen=True)
class StatusDescriptor:
    """One READ FULL STATUS descriptor (SPC-4 6.16.5)."""

    key: int
    all_tg_pt: bool
    holder: bool
    scope: int
    type: int
    relative_port: int
    transport_id: bytes

    @property
    def wwpn(self) -> WWN | None:
        """The initiator port of an FC TransportID; None for any other protocol."""
        tid = self.transport_id
        if len(tid) != 24 or tid[0] != 0x00:
            return None
        return WWN.from_bytes8(tid, 8)


@dataclass(frozen=True)
class FullStatus:
    generation: int
    additional_length: int
    descriptors: tuple[StatusDescriptor, ...]

    def of(self, wwpn: WWN) -> list[StatusDescriptor]:
        return [d for d in self.descriptors if d.wwpn == wwpn]


def decode_read_full_status(data: bytes) -> FullStatus:
    gen, length = _header(data)
    body = data[8:8 + length]
    out = []
    pos = 0
    while pos + 24 <= len(body):
        key, flags, scope_type, rtpi, tid_len = struct.unpack_from(">Q4xBB4xHI", body, pos)
        tid = bytes(body[pos + 24:pos + 24 + tid_len])
        if len(tid) != tid_len:
            raise BadData(f"READ FULL STATUS descriptor at byte {pos + 8} is cut short")
        out.append(StatusDescriptor(key, bool(flags & 0x02), bool(flags & 0x01),
                                    scope_type >> 4, scope_type & 0x0F, rtpi, tid))
        pos += 24 + tid_len
    return FullStatus(gen, length, tuple(out))


def relative_port_from_vpd83(data: bytes) -> int | None:
    """The RELATIVE TARGET PORT designator (type 4h, association 01b) of a Device
    Identification VPD page (SPC-4 7.8.6), or None if the page has none."""
    if len(data) < 4 or data[1] != 0x83:
        return None
    end = min(len(data), 4 + struct.unpack_from(">H", data, 2)[0])
    pos = 4
    while pos + 4 <= end:
        assoc, dtype, dlen = (data[pos + 1] >> 4) & 0x3, data[pos + 1] & 0x0F, data[pos + 3]
        if assoc == 1 and dtype == 4 and dlen >= 4 and pos + 8 <= end:
            return struct.unpack_from(">H", data, pos + 6)[0]
        pos += 4 + dlen
    return None


def lun_numbers(report_luns_data: bytes) -> list[int]:
    """LUN numbers of REPORT LUNS data (peripheral and flat space addressing)."""
    if len(report_luns_data) < 8:
        raise BadData(f"{len(report_luns_data)} bytes of REPORT LUNS data (need 8)")
    length = struct.unpack_from(">I", report_luns_data, 0)[0]
    out = []
    for pos in range(8, min(8 + length, len(report_luns_data)) - 7, 8):
        b0, b1 = report_luns_data[pos], report_luns_data[pos + 1]
        out.append(((b0 & 0x3F) << 8 | b1) if b0 >> 6 == 1 else b1 if b0 == 0 else
                   int.from_bytes(report_luns_data[pos:pos + 8], "big"))
    return out

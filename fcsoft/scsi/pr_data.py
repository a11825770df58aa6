"""Persistent reservation layouts (SPC-4 6.15 and 6.16): service
action codes, the FC TransportID, and the PERSISTENT RESERVE IN parameter data. Pure
functions of the state they are given; the engine decides what goes in.

PERSISTENT RESERVE IN data is built whole; the engine cuts it to the ALLOCATION LENGTH, so
every ADDITIONAL LENGTH field keeps the untruncated value (SPC-4 6.16.1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from fcsoft.wire.wwn import WWN

from .cdb import PersistentReserveIn, PersistentReserveOut
from .pr_state import Registration, Reservation
from .types import Nexus

# the service action codes live with the other CDB fields (cdb.py); these names are the
# engine's
PrinAction = PersistentReserveIn
ProutAction = PersistentReserveOut


# --- FC TransportID (SPC-4 7.6.4.2): 24 bytes, FORMAT CODE 00b, PROTOCOL IDENTIFIER 0h ----

FC_TRANSPORT_ID_LENGTH = 24
PROTOCOL_FCP = 0x0


def encode_fc_transport_id(wwpn: WWN) -> bytes:
    """FC TransportID: byte 0 = 00h, bytes 8-15 = N_Port_Name, everything else zero."""
    return bytes(8) + wwpn.to_bytes8() + bytes(8)


class TransportIdError(ValueError):
    """A TransportID this LU cannot use; `offset` is where it starts in the parameter list."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset


def decode_fc_transport_id(data: bytes, offset: int) -> WWN:
    """The WWPN of the FC TransportID at `offset` (which must hold 24 bytes)."""
    tid = data[offset:offset + FC_TRANSPORT_ID_LENGTH]
    if len(tid) != FC_TRANSPORT_ID_LENGTH:
        raise TransportIdError(offset, "TransportID truncated")
    if tid[0] & 0x0F != PROTOCOL_FCP or tid[0] & 0xC0:
        raise TransportIdError(offset, f"TransportID protocol/format {tid[0]:#04x} is not FCP")
    wwpn = WWN.from_bytes8(tid, 8)
    if wwpn == 0:
        raise TransportIdError(offset, "TransportID names port 00:00:00:00:00:00:00:00")
    return wwpn


def encode_read_keys(generation: int, keys: Iterable[int]) -> bytearray:
    """READ KEYS (SPC-4 6.16.2): PRGENERATION, ADDITIONAL LENGTH, the keys of every
    registered I_T nexus in registration order."""
    body = b"".join(struct.pack(">Q", k) for k in keys)
    return bytearray(struct.pack(">II", generation, len(body)) + body)


def encode_read_reservation(generation: int, res: Reservation | None, key: int) -> bytearray:
    """READ RESERVATION (SPC-4 6.16.3): 8 bytes with no reservation, else 24: key (0 for
    types 7/8), 16-19 obsolete, 20 reserved, 21 SCOPE|TYPE, 22-23 obsolete."""
    if res is None:
        return bytearray(struct.pack(">II", generation, 0))
    return bytearray(struct.pack(">IIQIBBH", generation, 16, key, 0, 0,
                                 (res.scope << 4) | res.type, 0))


def encode_report_capabilities(*, ptpl_c: bool, ptpl_a: bool) -> bytearray:
    """REPORT CAPABILITIES (SPC-4 6.16.4), always 8 bytes:
    byte 2 = CRH | SIP_C | ATP_C | PTPL_C; byte 3 = TMV | ALLOW COMMANDS 001b | PTPL_A;
    bytes 4-5 = the type mask with all six types (WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX,
    then EX_AC_AR)."""
    byte2 = 0x10 | 0x08 | 0x04 | (0x01 if ptpl_c else 0)
    byte3 = 0x80 | (0b001 << 4) | (0x01 if ptpl_a else 0)
    return bytearray((0x00, 0x08, byte2, byte3, 0xEA, 0x01, 0x00, 0x00))


def encode_read_full_status(generation: int, res: Reservation | None,
                            entries: Iterable[tuple[Nexus, Registration, bool]]) -> bytearray:
    """READ FULL STATUS (SPC-4 6.16.5): one descriptor per registered I_T nexus, given as
    (nexus, registration, holds the reservation). Descriptor: key, ALL_TG_PT (byte 12 bit
    1), R_HOLDER (bit 0), SCOPE|TYPE when holding, RELATIVE TARGET PORT IDENTIFIER at 18-19,
    ADDITIONAL DESCRIPTOR LENGTH, then the FC TransportID."""
    out = bytearray()
    for nexus, reg, holder in entries:
        flags = (0x02 if reg.all_tg_pt else 0) | (0x01 if holder else 0)
        scope_type = (res.scope << 4) | res.type if holder and res is not None else 0
        # Choice: the RTPI is filled in even with ALL_TG_PT=1 (SPC leaves it undefined there)
        out += struct.pack(">Q4xBB4xHI", reg.key, flags, scope_type, nexus.relative_port,
                           FC_TRANSPORT_ID_LENGTH)
        out += encode_fc_transport_id(nexus.initiator)
    return bytearray(struct.pack(">II", generation, len(out))) + out

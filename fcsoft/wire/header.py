"""The 24-byte FC-FS-4 frame header (FC-FS-4 clause 9) and the codes it carries.

Theory of operation: the header is decoded on every frame, so it is a NamedTuple of plain
ints built straight from one precompiled `struct.Struct` (about 1 us here, against 4-5 us
for a frozen dataclass). Fields hold ints, not enum members; compare them with the
`RCtl`, `FcType` and `FCtl` members below, which are IntEnum/IntFlag and compare equal.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from typing import NamedTuple

from .errors import DecodeError

HEADER_LEN = 24
MAX_PAYLOAD = 2112  # FC-FS-4 9.1: the largest data field
UNKNOWN_XID = 0xFFFF  # OX_ID/RX_ID not (yet) assigned


class RCtl(IntEnum):
    """R_CTL routing + information category (FC-FS-4 9.3, FC-LS-3 4.2, FCP-4 9.1)."""

    FC4_DEVICE_DATA = 0x00
    SOLICITED_DATA = 0x01  # FCP_DATA
    UNSOLICITED_CONTROL = 0x02  # CT request
    SOLICITED_CONTROL = 0x03  # CT response
    DATA_DESCRIPTOR = 0x05  # FCP_XFER_RDY
    UNSOLICITED_COMMAND = 0x06  # FCP_CMND
    COMMAND_STATUS = 0x07  # FCP_RSP
    ELS_REQUEST = 0x22
    ELS_REPLY = 0x23
    BA_NOP = 0x80
    ABTS = 0x81
    BA_RMC = 0x82
    BA_ACC = 0x84
    BA_RJT = 0x85
    ACK_1 = 0xC0
    ACK_0 = 0xC1
    P_RJT = 0xC2
    F_RJT = 0xC3
    P_BSY = 0xC4
    F_BSY_DATA = 0xC5
    F_BSY_LINK = 0xC6


class FcType(IntEnum):
    """TYPE field (FC-FS-4 9.6)."""

    BLS = 0x00
    ELS = 0x01
    IP = 0x05
    FCP = 0x08
    CT = 0x20  # FC-GS fibre channel services
    ILS = 0x22
    NVME = 0x28


class FCtl(IntFlag):
    """F_CTL bits (FC-FS-4 9.7, table 36). FILL_BYTES is a 2-bit count, not a flag."""

    EXCHANGE_CONTEXT = 1 << 23  # 1 = frame sent by the responder of the exchange
    SEQUENCE_CONTEXT = 1 << 22  # 1 = frame sent by the recipient of the sequence
    FIRST_SEQUENCE = 1 << 21
    LAST_SEQUENCE = 1 << 20
    END_SEQUENCE = 1 << 19
    END_CONNECTION = 1 << 18
    CS_CTL_PRIORITY = 1 << 17
    SEQUENCE_INITIATIVE = 1 << 16
    RETRANSMITTED_SEQUENCE = 1 << 15
    UNIDIRECTIONAL_TRANSMIT = 1 << 14
    CONTINUE_SEQUENCE_CONDITION = 3 << 6
    ABORT_SEQUENCE_CONDITION = 3 << 4
    RELATIVE_OFFSET = 1 << 3
    EXCHANGE_REASSEMBLY = 1 << 2
    FILL_BYTES = 3


# The two F_CTL values almost every single-frame exchange uses (Linux fc_fs.h FC_FCTL_REQ/RESP):
# a request is first+last+end sequence with sequence initiative passed; a reply adds the
# exchange context bit and, being the last sequence of the exchange, LAST_SEQUENCE.
# Plain ints, not FCtl members: IntFlag arithmetic runs in Python and would triple the cost
# of building a frame.
F_CTL_REQUEST = int(FCtl.FIRST_SEQUENCE | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
F_CTL_REPLY = int(
    FCtl.EXCHANGE_CONTEXT | FCtl.LAST_SEQUENCE | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE
)


class WellKnownAddress(IntEnum):
    """Well-known N_Port_IDs (FC-FS-4 11.2, table 39)."""

    BROADCAST = 0xFFFFFF
    FABRIC_F_PORT = 0xFFFFFE  # FLOGI / FDISC
    FABRIC_CONTROLLER = 0xFFFFFD  # SCR target, RSCN source
    DIRECTORY_SERVER = 0xFFFFFC  # name server
    TIME_SERVER = 0xFFFFFB
    MANAGEMENT_SERVER = 0xFFFFFA
    QOS_FACILITATOR = 0xFFFFF9
    ALIAS_SERVER = 0xFFFFF8
    SECURITY_KEY_SERVER = 0xFFFFF7
    CLOCK_SYNC_SERVER = 0xFFFFF6
    MULTICAST_SERVER = 0xFFFFF5


_HEADER = struct.Struct(">IIIIHHI")
_new = tuple.__new__


class FcHeader(NamedTuple):
    """One FC-FS-4 frame header. Every field is a plain int (see module doc)."""

    r_ctl: int
    d_id: int
    cs_ctl: int
    s_id: int
    type: int
    f_ctl: int
    seq_id: int
    df_ctl: int
    seq_cnt: int
    ox_id: int
    rx_id: int
    parameter: int

    def __repr__(self) -> str:
        # every field in hex, N_Port_IDs with six digits (fcsoft.names): a valid literal
        return (f"FcHeader(r_ctl=0x{self.r_ctl:02x}, d_id=0x{self.d_id:06x}, "
                f"cs_ctl=0x{self.cs_ctl:02x}, s_id=0x{self.s_id:06x}, type=0x{self.type:02x}, "
                f"f_ctl=0x{self.f_ctl:06x}, seq_id=0x{self.seq_id:02x}, "
                f"df_ctl=0x{self.df_ctl:02x}, seq_cnt={self.seq_cnt}, "
                f"ox_id=0x{self.ox_id:04x}, rx_id=0x{self.rx_id:04x}, "
                f"parameter=0x{self.parameter:08x})")

    def encode(self) -> bytes:
        """The 24 header bytes."""
        return _HEADER.pack(
            (self.r_ctl << 24) | self.d_id,
            (self.cs_ctl << 24) | self.s_id,
            (self.type << 24) | self.f_ctl,
            (self.seq_id << 24) | (self.df_ctl << 16) | self.seq_cnt,
            self.ox_id,
            self.rx_id,
            self.parameter,
        )

    @property
    def fill_bytes(self) -> int:
        return self.f_ctl & 3

    @property
    def from_responder(self) -> bool:
        """True when the exchange responder sent this frame (F_CTL EXCHANGE_CONTEXT)."""
        return bool(self.f_ctl & FCtl.EXCHANGE_CONTEXT)

    @property
    def end_of_sequence(self) -> bool:
        return bool(self.f_ctl & FCtl.END_SEQUENCE)

    def reply(self, r_ctl: int, type: int | None = None, f_ctl: int = F_CTL_REPLY,
              rx_id: int | None = None, parameter: int = 0) -> FcHeader:
        """The header of a reply in the same exchange: S_ID/D_ID swapped, SEQ_ID kept."""
        return _new(FcHeader, (
            int(r_ctl), self.s_id, 0, self.d_id, self.type if type is None else int(type),
            int(f_ctl), self.seq_id, 0, 0, self.ox_id, self.rx_id if rx_id is None else rx_id,
            parameter,
        ))


def make_header(r_ctl: int, d_id: int, s_id: int, type: int, f_ctl: int = F_CTL_REQUEST, *,
                ox_id: int = UNKNOWN_XID, rx_id: int = UNKNOWN_XID, seq_id: int = 0,
                seq_cnt: int = 0, cs_ctl: int = 0, df_ctl: int = 0,
                parameter: int = 0) -> FcHeader:
    """Build a header with keyword defaults for the fields most frames leave at zero."""
    for name, value, limit in (("D_ID", d_id, 0xFFFFFF), ("S_ID", s_id, 0xFFFFFF),
                               ("F_CTL", f_ctl, 0xFFFFFF), ("OX_ID", ox_id, 0xFFFF),
                               ("RX_ID", rx_id, 0xFFFF)):
        if not 0 <= value <= limit:
            raise ValueError(f"{name} {value:#x} out of range")
    # store plain ints (see F_CTL_REQUEST): enum members would slow every encode
    return _new(FcHeader, (int(r_ctl), int(d_id), cs_ctl, int(s_id), int(type), int(f_ctl),
                           seq_id, df_ctl, seq_cnt, ox_id, rx_id, parameter))


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FcHeader:
    """Decode the 24-byte header at `offset`; DecodeError if fewer than 24 bytes remain."""
    try:
        a, b, c, d, ox, rx, p = _HEADER.unpack_from(data, offset)
    except struct.error:
        raise DecodeError("FC header",
                          f"need {HEADER_LEN} bytes, have {len(data) - offset}") from None
    return _new(FcHeader, (a >> 24, a & 0xFFFFFF, b >> 24, b & 0xFFFFFF, c >> 24, c & 0xFFFFFF,
                           d >> 24, (d >> 16) & 0xFF, d & 0xFFFF, ox, rx, p))


def format_fcid(fcid: int) -> str:
    """An N_Port_ID as six hex digits, the way switches print it (e.g. '010200')."""
    return f"{fcid:06x}"

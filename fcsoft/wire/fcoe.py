"""FC frames over Ethernet: the FCoE frame format (FC-BB-6 clause 7.6) and the Ethernet
header around it and around FIP (fcsoft.wire.fip).

Layout of one FCoE frame, after the Ethernet header (destination, source, an optional
802.1Q tag, ethertype 0x8906):

    0   version (upper 4 bits, 0) and 12 reserved bytes
    13  SOF code (the same byte codes as RFC 3643: SOFi3 0x2E, SOFn3 0x36, ...)
    14  FC header (24 bytes), payload and fill bytes
    ..  FC CRC (IEEE CRC-32 of header and payload, little-endian, as on FC)
    ..  EOF code, 3 reserved bytes

The smallest FCoE frame (no FC payload) is 60 bytes with its Ethernet header, so an FCoE
frame never carries Ethernet padding and its trailer is always the last 8 bytes.

Theory of operation: the fabric forwards frames in their RFC 3643 encapsulation
(fcsoft.wire.encap), so an FCoE port converts at its edge: `decode_fcoe` checks one
received FCoE frame (delimiters, CRC, lengths) and returns the same `Frame` a TCP link
would produce, with `raw` in RFC 3643 form; `encode_fcoe` turns an RFC 3643 frame into an
FCoE frame. The FC CRC is the same on both sides, so it is carried over, not recomputed.
Both are on the per-frame path: `struct.Struct` and memoryview only.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from .encap import EOF, MIN_FRAME_LEN, SOF, Frame, encapsulate
from .errors import FrameError
from .header import HEADER_LEN, MAX_PAYLOAD, decode_header
from .types import BytesLike

ETH_P_FCOE = 0x8906
ETH_P_FIP = 0x8914
ETH_P_8021Q = 0x8100
ETH_HEADER_LEN = 14
VLAN_TAG_LEN = 4
FCOE_HEADER_LEN = 14
FCOE_TRAILER_LEN = 8
FCOE_VERSION = 0
#: the largest FCoE PDU (after the Ethernet header): FCoE header, FC header, the largest
#: payload, CRC and trailer (2158 bytes, a "baby jumbo" frame)
MAX_FCOE_PDU = FCOE_HEADER_LEN + HEADER_LEN + MAX_PAYLOAD + FCOE_TRAILER_LEN
MIN_FCOE_PDU = FCOE_HEADER_LEN + HEADER_LEN + FCOE_TRAILER_LEN

#: FC-BB-6 7.8.1: group addresses of FIP
ALL_FCOE_MACS = bytes.fromhex("011018010000")
ALL_ENODE_MACS = bytes.fromhex("011018010001")
ALL_FCF_MACS = bytes.fromhex("011018010002")
#: the destination of a non-FIP FLOGI (FC-BB-5 pre-FIP FCoE)
FLOGI_MAC = bytes.fromhex("0efc00fffffe")
DEFAULT_FC_MAP = 0x0EFC00

_ETH = struct.Struct(">6s6sH")
_ETH_VLAN = struct.Struct(">6s6sHHH")
_TRAILER = struct.Struct("<IB3x")  # CRC (little-endian), EOF, reserved
# version 0 and reserved bytes, then the SOF code
_FCOE_HEADER: dict[int, bytes] = {s: bytes(13) + bytes([s]) for s in SOF}
_EOF_TRAILER: dict[int, bytes] = {e: bytes([e, 0, 0, 0]) for e in EOF}
_SOF_CODES = frozenset(int(s) for s in SOF)
_EOF_CODES = frozenset(int(e) for e in EOF)


class EthernetHeader(NamedTuple):
    """The parts of an Ethernet header FCoE and FIP care about; `offset` is where the
    payload (the FCoE or FIP PDU) starts."""

    dst: bytes
    src: bytes
    vlan: int | None  # 802.1Q VLAN ID, or None when untagged
    ethertype: int
    offset: int


def parse_ethernet(frame: BytesLike) -> EthernetHeader:
    """The Ethernet header of `frame` (raises FrameError when it is too short)."""
    if len(frame) < ETH_HEADER_LEN:
        raise FrameError("Ethernet frame", f"{len(frame)} bytes, shorter than a header")
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_8021Q:
        return EthernetHeader(dst, src, None, ethertype, ETH_HEADER_LEN)
    if len(frame) < ETH_HEADER_LEN + VLAN_TAG_LEN:
        raise FrameError("Ethernet frame", "802.1Q tag cut short")
    _d, _s, _tpid, tci, inner = _ETH_VLAN.unpack_from(frame)
    return EthernetHeader(dst, src, tci & 0x0FFF, inner, ETH_HEADER_LEN + VLAN_TAG_LEN)


def ethernet_header(dst: bytes, src: bytes, ethertype: int, vlan: int | None = None) -> bytes:
    """An Ethernet header, 802.1Q-tagged (priority 3, as FCoE traffic usually is) when
    `vlan` is given."""
    if vlan is None:
        return _ETH.pack(dst, src, ethertype)
    return _ETH_VLAN.pack(dst, src, ETH_P_8021Q, (3 << 13) | vlan, ethertype)


def decode_fcoe(pdu: BytesLike) -> Frame:
    """One FCoE PDU (everything after the Ethernet header) as a fabric `Frame`.

    Raises FrameError for a frame that must be dropped: wrong version, bad SOF or EOF
    code, bad CRC, a length outside what FC allows, or fill bytes beyond the payload."""
    n = len(pdu)
    if n < MIN_FCOE_PDU:
        raise FrameError("FCoE frame", f"{n} bytes, shorter than the smallest FCoE frame "
                         f"({MIN_FCOE_PDU})")
    if n > MAX_FCOE_PDU:
        raise FrameError("FCoE frame", f"{n} bytes, longer than the largest FCoE frame "
                         f"({MAX_FCOE_PDU})")
    view = memoryview(pdu)
    version = view[0] >> 4
    if version != FCOE_VERSION:
        raise FrameError("FCoE version", f"{version}, expected {FCOE_VERSION}")
    sof = view[13]
    if sof not in _SOF_CODES:
        raise FrameError("SOF", f"bad FCoE SOF code {sof:#04x}")
    crc, eof = _TRAILER.unpack_from(view, n - FCOE_TRAILER_LEN)
    if eof not in _EOF_CODES:
        raise FrameError("EOF", f"bad FCoE EOF code {eof:#04x}")
    body = view[FCOE_HEADER_LEN:n - FCOE_TRAILER_LEN]
    if (len(body) & 3) != 0:
        raise FrameError("FCoE frame", f"FC frame of {len(body)} bytes is not a whole "
                         "number of words")
    got = zlib.crc32(body)
    if got != crc:
        raise FrameError("FC CRC", f"computed {got:08x}, frame has {crc:08x}")
    header = decode_header(body)
    fill = header.f_ctl & 3
    if fill > len(body) - HEADER_LEN:
        raise FrameError("F_CTL", f"{fill} fill bytes but payload is "
                         f"{len(body) - HEADER_LEN} bytes")
    raw = encapsulate(sof, body, view[n - FCOE_TRAILER_LEN:n - FCOE_TRAILER_LEN + 4], eof)
    start = MIN_FRAME_LEN - 8  # encapsulation header, SOF word, FC header
    return Frame(sof, eof, header, memoryview(raw)[start:start + len(body) - HEADER_LEN - fill],
                 raw)


def encode_fcoe(dst: bytes, src: bytes, raw: BytesLike, vlan: int | None = None) -> bytes:
    """The Ethernet frame carrying the RFC 3643 encapsulated frame `raw` as FCoE."""
    n = len(raw)
    if n < MIN_FRAME_LEN:
        raise ValueError(f"encapsulated frame of {n} bytes is too short")
    view = memoryview(raw)
    return b"".join((ethernet_header(dst, src, ETH_P_FCOE, vlan), _FCOE_HEADER[view[28]],
                     view[32:n - 4], _EOF_TRAILER[view[n - 4]]))


def fcoe_pdu_length(raw: BytesLike) -> int:
    """The size of the FCoE PDU `encode_fcoe` makes of `raw` (to check it against an
    ENode's maximum FCoE size before building it)."""
    return len(raw) - MIN_FRAME_LEN + MIN_FCOE_PDU


def fpma(fc_map: int, fcid: int) -> bytes:
    """The fabric-provided MAC address of a VN_Port: FC-MAP then N_Port_ID (FC-BB-6 7.7)."""
    return ((fc_map << 24) | fcid).to_bytes(6, "big")


def format_mac(mac: BytesLike) -> str:
    """aa:bb:cc:dd:ee:ff"""
    return ":".join(f"{b:02x}" for b in bytes(mac))


def parse_mac(text: str) -> bytes:
    """Six colon- (or dash-) separated hex bytes; raises ValueError otherwise."""
    parts = text.strip().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"bad MAC address {text!r}: expected 6 colon-separated hex bytes "
                         "like 0e:fc:00:ff:ff:fe")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"bad MAC address {text!r}: expected 6 colon-separated hex bytes "
                         "like 0e:fc:00:ff:ff:fe") from None


def is_unicast(mac: bytes) -> bool:
    """True for an individual (not group) address other than all zeros."""
    return not mac[0] & 1 and mac != bytes(6)

"""pcap file format (libpcap 2.4, microsecond timestamps) for LINKTYPE_FC_2_WITH_FRAME_DELIMS.

Sans-IO: these functions only build bytes; fcsoft.server.trace writes them to a file.
"""

from __future__ import annotations

import struct

LINKTYPE_FC_2_WITH_FRAME_DELIMS = 225
PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 65535

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def file_header(linktype: int = LINKTYPE_FC_2_WITH_FRAME_DELIMS) -> bytes:
    """The 24-byte pcap global header."""
    return _GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, linktype)


def record(timestamp: float, data: bytes) -> bytes:
    """One pcap record header plus `data`, timestamped `timestamp` (seconds since the epoch)."""
    sec = int(timestamp)
    usec = int(round((timestamp - sec) * 1_000_000))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return _RECORD.pack(sec, usec, len(data), len(data)) + data


# -- pcapng (IETF draft-ietf-opsawg-pcapng): one interface per link, direction, comments --
_BLOCK_HEAD = struct.Struct("<II")
_SHB_BODY = struct.Struct("<IHHq")
_IDB_BODY = struct.Struct("<HHI")
_EPB_BODY = struct.Struct("<IIIII")
_OPT = struct.Struct("<HH")
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_EPB = 0x00000006
OPT_END = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
EPB_FLAGS = 2
#: epb_flags bits 0-1: the frame's direction as seen from the interface
INBOUND = 1
OUTBOUND = 2


def _option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value + bytes(-len(value) & 3)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + _OPT.pack(OPT_END, 0)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return _BLOCK_HEAD.pack(block_type, total) + body + struct.pack("<I", total)


def pcapng_section_header(application: str = "fcsoft") -> bytes:
    """A section header block (little-endian, version 1.0, section length unknown)."""
    return _block(PCAPNG_SHB, _SHB_BODY.pack(0x1A2B3C4D, 1, 0, -1)
                  + _options([(4, application.encode())]))  # shb_userappl


def pcapng_interface(name: str, description: str = "",
                     linktype: int = LINKTYPE_FC_2_WITH_FRAME_DELIMS) -> bytes:
    """An interface description block; timestamps in microseconds (the default)."""
    opts = [(IF_NAME, name.encode())]
    if description:
        opts.append((IF_DESCRIPTION, description.encode()))
    return _block(PCAPNG_IDB, _IDB_BODY.pack(linktype, 0, SNAPLEN) + _options(opts))


def pcapng_packet(interface: int, timestamp: float, data: bytes, direction: int = 0,
                  comment: str | None = None) -> bytes:
    """An enhanced packet block on `interface` (its index in IDB order)."""
    ts = int(round(timestamp * 1_000_000))
    opts: list[tuple[int, bytes]] = []
    if direction:
        opts.append((EPB_FLAGS, struct.pack("<I", direction)))
    if comment:
        opts.append((OPT_COMMENT, comment.encode()))
    body = _EPB_BODY.pack(interface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) \
        + data + bytes(-len(data) & 3) + _options(opts)
    return _block(PCAPNG_EPB, body)

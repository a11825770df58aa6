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

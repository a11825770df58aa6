"""INQUIRY data: the standard data (SPC-4 6.6.2) and the VPD pages fcsoft's disk returns
(SPC-4 7.8, SBC-3 6.6).

Identity of a logical unit
--------------------------
A LU keeps one identity through every target port of its array, as multipath needs
(docs/behaviour.md, "Arrays"), and keeps it when the config is reordered. Its VPD 0x83 LU
designator is an NAA 6 (IEEE Registered Extended, SPC-4 7.8.6.6.4) 16-byte name derived from
the array's node WWN and the LU's name:

    NAA 6h | IEEE COMPANY_ID (24 bits) | VENDOR SPECIFIC IDENTIFIER (36 bits)
           | VENDOR SPECIFIC IDENTIFIER EXTENSION (64 bits)

- node WWN of NAA 5 or 6 (IEEE Registered, the usual form for arrays, e.g. 50:01:43:80:..):
  COMPANY_ID = its bits 59-36 (the OUI), VENDOR SPECIFIC IDENTIFIER = its bits 35-0;
- node WWN of NAA 1 or 2 (IEEE 48-bit address in bits 47-0): COMPANY_ID = bits 47-24 (the
  OUI), VENDOR SPECIFIC IDENTIFIER = bits 59-48 (NAA 2's vendor field) then bits 23-0;
- any other NAA: taken as NAA 5 is;
- EXTENSION = the node WWN's NAA nibble in bits 63-60, and in bits 59-0 the first 60 bits of
  SHA-256 over "fcsoft LU " followed by the LU's name in UTF-8.

All 64 bits of the node WWN go in, and LU names are unique within an array, so LUs of
different arrays never share an identifier and LUs of one array would only by a 60-bit hash
collision (the config loader refuses that, and any other duplicate, with a one-line error).
Renaming an LU changes its identity, as replacing a disk would; moving its [[array.lun]]
entry does not. The config keys `naa` (32 hex digits, NAA 6) and `serial` pin either. The
unit serial number (VPD 0x80) is the pinned `serial`, else the 16 bytes of the NAA name as 32
upper-case hex digits.

Per target port the page adds the port's WWPN (NAA, association target port, protocol FCP),
its relative target port identifier (1-based, the port's position in the array's `ports`),
the target port group (one group, 1, holding every port) and the array's node WWN as the name
of the target device.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fcsoft import __version__

from .sense import invalid_field_in_cdb

__all__ = [
    "BlockLimits", "LuIdentity", "TARGET_PORT_GROUP", "VERSION_DESCRIPTORS", "VPD_PAGES",
    "lu_naa_designator", "parse_inquiry_cdb", "standard_inquiry", "target_port_groups",
    "vpd_page",
]

#: product revision level (4 ASCII characters): fcsoft's version without dots
REVISION = __version__.replace(".", "")[:4]
#: the one target port group every port belongs to (REPORT TARGET PORT GROUPS, VPD 0x83)
TARGET_PORT_GROUP = 1
#: version descriptors (SPC-4 table 29): SAM-5, SPC-4, SBC-3, FCP-4, no version claimed
VERSION_DESCRIPTORS = (0x00A0, 0x0460, 0x04C0, 0x0A40)

PQ_NOT_SUPPORTED = 0x7F  # peripheral qualifier 011b, device type 1Fh: no LU at this LUN
PDT_DISK = 0x00  # direct access block device, peripheral qualifier 000b

STANDARD_INQUIRY_LENGTH = 96

VPD_SUPPORTED_PAGES = 0x00
VPD_UNIT_SERIAL_NUMBER = 0x80
VPD_DEVICE_IDENTIFICATION = 0x83
VPD_BLOCK_LIMITS = 0xB0
VPD_BLOCK_DEVICE_CHARACTERISTICS = 0xB1
VPD_LOGICAL_BLOCK_PROVISIONING = 0xB2
VPD_PAGES = (VPD_SUPPORTED_PAGES, VPD_UNIT_SERIAL_NUMBER, VPD_DEVICE_IDENTIFICATION,
             VPD_BLOCK_LIMITS, VPD_BLOCK_DEVICE_CHARACTERISTICS,
             VPD_LOGICAL_BLOCK_PROVISIONING)

# designator header byte 0: PROTOCOL IDENTIFIER (7-4, FCP = 0h) | CODE SET (3-0)
_BINARY, _ASCII = 0x1, 0x2
# byte 1: PIV (7) | ASSOCIATION (5-4) | DESIGNATOR TYPE (3-0)
_ASSOC_LU, _ASSOC_PORT, _ASSOC_DEVICE = 0x00, 0x10, 0x20
_PIV = 0x80
_T10_VENDOR_ID, _NAA, _RELATIVE_PORT, _PORT_GROUP = 0x1, 0x3, 0x4, 0x5


def lu_naa_designator(node_wwn: int, lu_name: str) -> bytes:
    """The 16-byte NAA 6 LU name of the LU called `lu_name` in the array whose node name is
    `node_wwn` (scheme in the module docstring): the same whatever the LU's position."""
    digest = hashlib.sha256(b"fcsoft LU " + lu_name.encode("utf-8")).digest()
    naa = (node_wwn >> 60) & 0xF
    if naa in (1, 2):
        company = (node_wwn >> 24) & 0xFFFFFF
        vendor = ((node_wwn >> 48) & 0xFFF) << 24 | (node_wwn & 0xFFFFFF)
    else:
        company = (node_wwn >> 36) & 0xFFFFFF
        vendor = node_wwn & 0xF_FFFF_FFFF
    high = 0x6 << 60 | company << 36 | vendor
    extension = naa << 60 | int.from_bytes(digest[:8], "big") >> 4
    return struct.pack(">QQ", high, extension)


@dataclass(frozen=True, slots=True)
class LuIdentity:
    """What INQUIRY says about one LU, whichever port asks."""

    vendor: str
    product: str
    naa: bytes  # 16-byte NAA 6 LU designator
    node_wwn: int
    multiport: bool = True
    revision: str = REVISION
    pinned_serial: str | None = None  # the config's `serial`, if any

    @property
    def serial(self) -> str:
        """Unit serial number (VPD 0x80): the pinned one, else the NAA name in hex."""
        return self.pinned_serial or self.naa.hex().upper()


@dataclass(frozen=True, slots=True)
class BlockLimits:
    """Block limits VPD values (SBC-3 6.6.4), in logical blocks unless named otherwise."""

    max_transfer: int
    optimal_transfer: int
    optimal_granularity: int
    max_unmap_lba_count: int
    max_unmap_descriptors: int
    unmap_granularity: int
    max_write_same: int
    max_compare_and_write: int = 1

    @classmethod
    def for_block_size(cls, block_size: int, chunk_size: int) -> BlockLimits:
        """fcsoft's limits: 8 MiB per READ/WRITE, 1 GiB per UNMAP or WRITE SAME."""
        return cls(max_transfer=(8 << 20) // block_size,
                   optimal_transfer=(1 << 20) // block_size,
                   optimal_granularity=max(1, 4096 // block_size),
                   max_unmap_lba_count=(1 << 30) // block_size,
                   max_unmap_descriptors=256,
                   unmap_granularity=max(1, chunk_size // block_size),
                   max_write_same=(1 << 30) // block_size)


def parse_inquiry_cdb(cdb: bytes) -> tuple[bool, int, int]:
    """(EVPD, PAGE CODE, ALLOCATION LENGTH) of an INQUIRY CDB (SPC-4 6.6.1); a page code with
    EVPD=0 is INVALID FIELD IN CDB."""
    evpd = bool(cdb[1] & 0x01)
    page = cdb[2]
    if not evpd and page:
        raise invalid_field_in_cdb(2, 7)
    return evpd, page, (cdb[3] << 8) | cdb[4]


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size].ljust(size, b" ")


def standard_inquiry(identity: LuIdentity, peripheral: int = PDT_DISK) -> bytes:
    """Standard INQUIRY data, 96 bytes (SPC-4 6.6.2, table 140)."""
    b = bytearray(STANDARD_INQUIRY_LENGTH)
    b[0] = peripheral
    b[2] = 0x06  # VERSION: SPC-4
    b[3] = 0x10 | 0x02  # HISUP, RESPONSE DATA FORMAT 2
    b[4] = STANDARD_INQUIRY_LENGTH - 5  # ADDITIONAL LENGTH
    b[5] = 0x10  # TPGS 01b: implicit asymmetric access (REPORT TARGET PORT GROUPS)
    b[6] = 0x10 if identity.multiport else 0x00  # MULTIP
    b[7] = 0x02  # CMDQUE
    b[8:16] = _ascii(identity.vendor, 8)
    b[16:32] = _ascii(identity.product, 16)
    b[32:36] = _ascii(identity.revision, 4)
    struct.pack_into(">4H", b, 58, *VERSION_DESCRIPTORS)
    return bytes(b)


def _designator(code_set: int, kind: int, value: bytes) -> bytes:
    return bytes((code_set, kind, 0, len(value))) + value


def _page(page: int, body: bytes, peripheral: int = PDT_DISK) -> bytes:
    return struct.pack(">BBH", peripheral, page, len(body)) + body


def vpd_page(page: int, identity: LuIdentity, limits: BlockLimits, *, target_port: int,
             relative_port: int, peripheral: int = PDT_DISK,
             pages: Sequence[int] = VPD_PAGES, port_group: int | None = None) -> bytes:
    """VPD page `page` as seen through the target port with WWPN `target_port` and relative
    port identifier `relative_port`. An unsupported page is INVALID FIELD IN CDB (byte 2)."""
    if page not in pages:
        raise invalid_field_in_cdb(2)
    if page == VPD_SUPPORTED_PAGES:
        return _page(page, bytes(pages), peripheral)
    if page == VPD_UNIT_SERIAL_NUMBER:
        return _page(page, identity.serial.encode("ascii"))
    if page == VPD_DEVICE_IDENTIFICATION:
        port = _PIV | _ASSOC_PORT
        body = b"".join((
            _designator(_BINARY, _ASSOC_LU | _NAA, identity.naa),
            _designator(_ASCII, _ASSOC_LU | _T10_VENDOR_ID,
                        _ascii(identity.vendor, 8) + identity.serial.encode("ascii")),
            _designator(_BINARY, port | _NAA, struct.pack(">Q", target_port)),
            _designator(_BINARY, port | _RELATIVE_PORT, struct.pack(">2xH", relative_port)),
            _designator(_BINARY, port | _PORT_GROUP, struct.pack(
                ">2xH", TARGET_PORT_GROUP if port_group is None else port_group)),
            _designator(_BINARY, _PIV | _ASSOC_DEVICE | _NAA,
                        struct.pack(">Q", identity.node_wwn)),
        ))
        return _page(page, body)
    if page == VPD_BLOCK_LIMITS:
        limits_page = bytearray(0x3C)
        limits_page[0] = 0x01  # WSNZ: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is refused
        limits_page[1] = limits.max_compare_and_write
        struct.pack_into(">HIIIIIII", limits_page, 2, limits.optimal_granularity,
                         limits.max_transfer, limits.optimal_transfer, 0,
                         limits.max_unmap_lba_count, limits.max_unmap_descriptors,
                         limits.unmap_granularity, 0x8000_0000)  # UGAVALID, alignment 0
        struct.pack_into(">Q", limits_page, 32, limits.max_write_same)
        return _page(page, bytes(limits_page))
    if page == VPD_BLOCK_DEVICE_CHARACTERISTICS:
        characteristics = bytearray(0x3C)
        characteristics[1] = 0x01  # MEDIUM ROTATION RATE 0001h: non-rotating medium
        return _page(page, bytes(characteristics))
    # VPD_LOGICAL_BLOCK_PROVISIONING (SBC-3 6.6.5): LBPU, LBPWS, LBPWS10, LBPRZ;
    # provisioning type 010b (thin): unwritten and unmapped blocks take no space
    return _page(page, bytes((0, 0x80 | 0x40 | 0x20 | 0x04, 0x02, 0)))


def target_port_groups(relative_ports: Iterable[int], *, extended: bool = False) -> bytes:
    """REPORT TARGET PORT GROUPS parameter data (SPC-4 6.36), untruncated: one target port
    group (TARGET_PORT_GROUP) holding every port, active/optimized, AO_SUP only. `extended`:
    the extended header (PARAMETER DATA FORMAT 001b, implicit transition time 0)."""
    ports = sorted(relative_ports)
    body = struct.pack(">BBHxBBB", 0x00, 0x01, TARGET_PORT_GROUP, 0, 0, len(ports))
    body += b"".join(struct.pack(">2xH", p) for p in ports)
    if extended:
        return struct.pack(">IBBxx", len(body) + 4, 0x10, 0) + body
    return struct.pack(">I", len(body)) + body

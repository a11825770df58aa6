"""INQUIRY data layouts (fcsoft.scsi.inquiry): standard data (SPC-4 6.6.2), VPD pages
(SPC-4 7.8, SBC-3 6.6) and the LU designator scheme."""

from __future__ import annotations

import hashlib
import struct

import pytest

from fcsoft.scsi.inquiry import (
    TARGET_PORT_GROUP,
    VERSION_DESCRIPTORS,
    BlockLimits,
    LuIdentity,
    lu_naa_designator,
    parse_inquiry_cdb,
    standard_inquiry,
    vpd_page,
)
from fcsoft.scsi.sense import CheckCondition
from fcsoft.wire.wwn import WWN

NODE5 = WWN("50:01:43:80:12:34:56:78")
PORT = WWN("50:01:43:80:12:34:56:79")
IDENTITY = LuIdentity("VENDOR", "PRODUCT", lu_naa_designator(NODE5, "data"), NODE5)
LIMITS = BlockLimits.for_block_size(512, 65536)


def designators(page: bytes) -> list[tuple[int, int, bytes]]:
    """(byte 0, byte 1, value) of each designation descriptor of a VPD 0x83 page."""
    out = []
    pos = 4
    while pos < len(page):
        length = page[pos + 3]
        out.append((page[pos], page[pos + 1], page[pos + 4:pos + 4 + length]))
        pos += 4 + length
    assert pos == len(page)
    return out


def _name_bits(name: str) -> int:
    return int.from_bytes(hashlib.sha256(b"fcsoft LU " + name.encode()).digest()[:8],
                          "big") >> 4


def test_naa6_from_an_naa5_node_name() -> None:
    naa = lu_naa_designator(NODE5, "data")
    assert len(naa) == 16
    high, ext = struct.unpack(">QQ", naa)
    assert high >> 60 == 6
    assert (high >> 36) & 0xFFFFFF == 0x001438  # the node WWN's OUI is the COMPANY_ID
    assert high & 0xF_FFFF_FFFF == NODE5 & 0xF_FFFF_FFFF
    assert ext == 5 << 60 | _name_bits("data")


def test_naa6_from_naa1_and_naa2_node_names() -> None:
    naa1 = WWN("10:00:00:00:c9:12:34:56")
    high, ext = struct.unpack(">QQ", lu_naa_designator(naa1, "a"))
    assert (high >> 36) & 0xFFFFFF == 0x0000C9 and high & 0xFFFFFF == 0x123456
    assert ext == 1 << 60 | _name_bits("a")
    naa2 = WWN("2a:bc:00:00:c9:12:34:56")
    high2, ext2 = struct.unpack(">QQ", lu_naa_designator(naa2, "a"))
    assert (high2 >> 24) & 0xFFF == 0xABC and ext2 >> 60 == 2


def test_designators_are_unique_per_node_and_name_and_depend_on_nothing_else() -> None:
    nodes = [WWN(v) for v in ("50:01:43:80:00:00:00:00", "50:01:43:80:00:00:00:01",
                              "20:00:00:00:c9:00:00:00", "10:00:00:00:c9:00:00:00",
                              "60:01:43:80:00:00:00:00")]
    lu_names = ("boot", "data", "logs", "data2", "\u00e9t\u00e9")
    names = {lu_naa_designator(n, i) for n in nodes for i in lu_names}
    assert len(names) == len(nodes) * len(lu_names)
    assert lu_naa_designator(NODE5, "data") == lu_naa_designator(NODE5, "data")


def test_standard_inquiry_layout() -> None:
    data = standard_inquiry(IDENTITY)
    assert len(data) == 96 and data[4] == 91
    assert data[0] == 0x00 and data[1] == 0x00  # disk, not removable
    assert data[2] == 0x06  # SPC-4
    assert data[3] == 0x12  # HISUP, response data format 2
    assert data[5] & 0x30 == 0x10  # TPGS implicit
    assert data[6] & 0x10  # MULTIP
    assert data[7] == 0x02  # CMDQUE
    assert data[8:16] == b"VENDOR  " and data[16:32] == b"PRODUCT         "
    assert struct.unpack_from(">4H", data, 58) == VERSION_DESCRIPTORS
    assert standard_inquiry(IDENTITY, 0x7F)[0] == 0x7F
    single = LuIdentity("V", "P", bytes(16), NODE5, multiport=False)
    assert standard_inquiry(single)[6] & 0x10 == 0


def test_parse_inquiry_cdb() -> None:
    assert parse_inquiry_cdb(bytes((0x12, 1, 0x83, 1, 2, 0))) == (True, 0x83, 258)
    with pytest.raises(CheckCondition):
        parse_inquiry_cdb(bytes((0x12, 0, 0x83, 0, 36, 0)))


def test_vpd_supported_pages_and_serial() -> None:
    page = vpd_page(0x00, IDENTITY, LIMITS, target_port=PORT, relative_port=1)
    assert page == bytes.fromhex("00000006008083b0b1b2")
    page = vpd_page(0x80, IDENTITY, LIMITS, target_port=PORT, relative_port=1)
    assert page[:4] == bytes((0, 0x80, 0, 32)) and page[4:] == IDENTITY.naa.hex().upper().encode()
    with pytest.raises(CheckCondition):
        vpd_page(0x86, IDENTITY, LIMITS, target_port=PORT, relative_port=1)


def test_vpd_device_identification() -> None:
    page = vpd_page(0x83, IDENTITY, LIMITS, target_port=PORT, relative_port=7)
    assert page[1] == 0x83 and struct.unpack_from(">H", page, 2)[0] == len(page) - 4
    found = designators(page)
    assert found[0] == (0x01, 0x03, IDENTITY.naa)  # binary, LU, NAA
    assert found[1][:2] == (0x02, 0x01)  # ASCII, LU, T10 vendor ID
    assert found[1][2] == b"VENDOR  " + IDENTITY.serial.encode()
    assert found[2] == (0x01, 0x93, PORT.to_bytes8())  # FCP, PIV, target port, NAA
    assert found[3] == (0x01, 0x94, struct.pack(">2xH", 7))  # relative target port
    assert found[4] == (0x01, 0x95, struct.pack(">2xH", TARGET_PORT_GROUP))
    assert found[5] == (0x01, 0xA3, NODE5.to_bytes8())  # target device name


def test_vpd_block_limits() -> None:
    page = vpd_page(0xB0, IDENTITY, LIMITS, target_port=PORT, relative_port=1)
    assert page[:4] == bytes((0, 0xB0, 0, 0x3C))
    assert page[4] & 0x01  # WSNZ
    assert page[5] == 1  # MAXIMUM COMPARE AND WRITE LENGTH
    gran, max_tl, opt_tl, _, unmap_lbas, unmap_descs, unmap_gran, uga = struct.unpack_from(
        ">HIIIIIII", page, 6)
    assert (gran, max_tl, opt_tl) == (8, 16384, 2048)
    assert (unmap_lbas, unmap_descs, unmap_gran, uga) == (2097152, 256, 128, 0x80000000)
    assert struct.unpack_from(">Q", page, 36)[0] == 2097152


def test_vpd_block_characteristics_and_provisioning() -> None:
    bdc = vpd_page(0xB1, IDENTITY, LIMITS, target_port=PORT, relative_port=1)
    assert struct.unpack_from(">HH", bdc, 2) == (0x3C, 1)  # non-rotating
    lbp = vpd_page(0xB2, IDENTITY, LIMITS, target_port=PORT, relative_port=1)
    assert lbp == bytes((0, 0xB2, 0, 4, 0, 0xE4, 0x02, 0))


def test_block_limits_for_4k_blocks() -> None:
    limits = BlockLimits.for_block_size(4096, 65536)
    assert limits.max_transfer == 2048 and limits.optimal_granularity == 1
    assert limits.unmap_granularity == 16

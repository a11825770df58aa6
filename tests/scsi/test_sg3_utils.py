"""Third-party decoding of what the disk LU sends: sg3_utils' sg_inq and sg_vpd read our
standard INQUIRY data and VPD pages from hex files (--inhex), sg_decode_sense reads our sense
buffers, and each must say what we meant. The SCSI layer never decodes its own bytes here."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fcsoft.scsi.array import ScsiArray
from fcsoft.scsi.types import Result
from tests.conftest import require_tool

from .conftest import array_config
from .fakes import (
    HOST1,
    PORT2,
    compare_and_write,
    fake_factory,
    inquiry,
    nexus,
    read10,
    run,
    tur,
    write10,
)

pytestmark = pytest.mark.tools

VIA_PORT2 = nexus(HOST1, PORT2, 2)


@pytest.fixture
def array() -> Iterator[ScsiArray]:
    a = ScsiArray(array_config(), engine_factory=fake_factory)
    run(a, tur(), nx=VIA_PORT2)  # the power-on unit attention
    run(a, tur(), nx=VIA_PORT2, lun=1)
    yield a
    a.close()


def hex_file(tmp_path: Path, data: bytes | memoryview, name: str = "data.hex") -> Path:
    path = tmp_path / name
    path.write_text(" ".join(f"{b:02x}" for b in bytes(data)) + "\n")
    return path


def tool(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def page(array: ScsiArray, code: int, lun: int = 1) -> bytes:
    r = run(array, inquiry(evpd=True, page=code), nx=VIA_PORT2, lun=lun)
    assert r.good, r
    return bytes(r.data)


def test_sg_inq_decodes_standard_inquiry(array: ScsiArray, tmp_path: Path) -> None:
    sg_inq = require_tool("sg_inq")
    data = run(array, inquiry(), nx=VIA_PORT2, lun=1).data
    out = tool(sg_inq, f"--inhex={hex_file(tmp_path, data)}")
    assert re.search(r"PQual=0\s+PDT=0\s+RMB=0", out)
    assert "version=0x06  [SPC-4]" in out
    assert "HiSUP=1" in out and "Resp_data_format=2" in out
    assert "TPGS=1" in out and "MultiP=1" in out and "CmdQue=1" in out
    assert "Peripheral device type: disk" in out
    assert "Vendor identification: FCSOFT" in out
    assert "Product identification: VDISK" in out
    assert "Product revision level: 010" in out
    out = tool(sg_inq, "--descriptors", f"--inhex={hex_file(tmp_path, data)}")
    for name in ("SAM-5", "SPC-4", "SBC-3", "FCP-4"):
        assert f"{name} (no version claimed)" in out
    out = tool(sg_inq, "--export", f"--inhex={hex_file(tmp_path, data)}")
    assert "SCSI_VENDOR=FCSOFT" in out and "SCSI_MODEL=VDISK" in out and "SCSI_TPGS=1" in out


def test_sg_inq_decodes_an_unmapped_lun(array: ScsiArray, tmp_path: Path) -> None:
    sg_inq = require_tool("sg_inq")
    data = run(array, inquiry(), nx=VIA_PORT2, lun=77).data
    out = tool(sg_inq, f"--inhex={hex_file(tmp_path, data)}")
    assert "PQual=3  PDT=31" in out
    assert "LU not accessible" in out


def test_sg_vpd_supported_pages(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    out = tool(sg_vpd, f"--inhex={hex_file(tmp_path, page(array, 0x00))}")
    for name in ("Supported VPD pages", "Unit serial number", "Device identification",
                 "Block limits (SBC)", "Block device characteristics (SBC)",
                 "Logical block provisioning (SBC)"):
        assert name in out


def test_sg_vpd_unit_serial_number(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    out = tool(sg_vpd, "--page=sn", f"--inhex={hex_file(tmp_path, page(array, 0x80))}")
    assert f"Unit serial number: {array.units['data'].serial}" in out


def test_sg_vpd_device_identification(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    data = array.units["data"]
    naa = data.naa.hex()
    # array1's node WWN and the LU's name "data": pinned here so that no change of fcsoft
    # ever moves an LU's identity (multipath keys on it)
    assert naa == "600143800000000050a7ec069014edf3"
    out = tool(sg_vpd, "--page=di", "--long", f"--inhex={hex_file(tmp_path, page(array, 0x83))}")
    lu_part, rest = out.split("Target port:")
    port_part, device_part = rest.split("Target device that contains addressed lu:")
    assert "NAA 6, IEEE Company_id: 0x1438" in lu_part
    assert "Vendor Specific Identifier Extension: 0x50a7ec069014edf3" in lu_part
    assert f"[0x{naa}]" in lu_part
    assert "vendor id: FCSOFT" in lu_part
    assert "Fibre Channel Protocol for SCSI" in port_part
    assert "0x5001438000000002" in port_part  # the WWPN of port 2, which was asked
    assert "Relative target port: 0x2" in port_part
    assert "Target port group: 0x2" in port_part  # one group per port: port 2's
    assert "0x5001438000000000" in device_part  # the array's node WWN


def test_sg_inq_export_identifiers_match_through_both_ports(array: ScsiArray,
                                                            tmp_path: Path) -> None:
    """What udev (55-scsi-sg3_id.rules) would name the disk: same LU id via each port."""
    sg_inq = require_tool("sg_inq")
    exports = []
    for nx in (nexus(), VIA_PORT2):
        run(array, tur(), nx=nx, lun=1)
        r = run(array, inquiry(evpd=True, page=0x83), nx=nx, lun=1)
        out = tool(sg_inq, "--export", "--page=0x83", f"--inhex={hex_file(tmp_path, r.data)}")
        exports.append(dict(line.split("=", 1) for line in out.split()))
    one, two = exports
    assert one["SCSI_IDENT_LUN_NAA_REGEXT"] == two["SCSI_IDENT_LUN_NAA_REGEXT"] == \
        array.units["data"].naa.hex()
    assert (one["SCSI_IDENT_PORT_RELATIVE"], two["SCSI_IDENT_PORT_RELATIVE"]) == ("1", "2")
    assert one["SCSI_IDENT_PORT_NAA_REG"] == "5001438000000001"
    assert two["SCSI_IDENT_PORT_NAA_REG"] == "5001438000000002"


def test_sg_vpd_block_limits(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    out = tool(sg_vpd, "--page=bl", f"--inhex={hex_file(tmp_path, page(array, 0xB0))}")
    expected = {
        "Write same non-zero (WSNZ)": "1",
        "Maximum compare and write length": "1 blocks",
        "Optimal transfer length granularity": "8 blocks",
        "Maximum transfer length": "16384 blocks",
        "Optimal transfer length": "2048 blocks",
        "Maximum unmap LBA count": "2097152",
        "Maximum unmap block descriptor count": "256",
        "Optimal unmap granularity": "128 blocks",
        "Unmap granularity alignment valid": "true",
        "Maximum write same length": "0x200000 blocks",
    }
    for name, value in expected.items():
        assert re.search(rf"^\s*{re.escape(name)}: {re.escape(value)}", out, re.M), name


def test_sg_vpd_block_limits_of_a_4k_lu(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    run(array, tur(), nx=VIA_PORT2, lun=300)
    out = tool(sg_vpd, "--page=bl",
               f"--inhex={hex_file(tmp_path, page(array, 0xB0, lun=300))}")
    assert "Maximum transfer length: 2048 blocks" in out
    assert "Optimal unmap granularity: 16 blocks" in out


def test_sg_vpd_block_device_characteristics(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    out = tool(sg_vpd, "--page=bdc", f"--inhex={hex_file(tmp_path, page(array, 0xB1))}")
    assert "Non-rotating medium" in out


def test_sg_vpd_logical_block_provisioning(array: ScsiArray, tmp_path: Path) -> None:
    sg_vpd = require_tool("sg_vpd")
    out = tool(sg_vpd, "--page=lbpv", f"--inhex={hex_file(tmp_path, page(array, 0xB2))}")
    assert re.search(r"Unmap command supported \(LBPU\): 1", out)
    assert re.search(r"Write same \(16\) with unmap bit supported \(LBPWS\): 1", out)
    assert re.search(r"Write same \(10\) with unmap bit supported \(LBPWS10\): 1", out)
    assert re.search(r"Logical block provisioning read zeros \(LBPRZ\): 1", out)
    assert re.search(r"Anchored LBAs supported \(ANC_SUP\): 0", out)
    assert "Provisioning type: 2 (thin provisioned)" in out


def _sense_text(result: Result, tmp_path: Path) -> str:
    sg_decode_sense = require_tool("sg_decode_sense")
    assert result.sense is not None
    return tool(sg_decode_sense, f"--file={hex_file(tmp_path, result.sense.encode())}")


def test_sg_decode_sense_lba_out_of_range(array: ScsiArray, tmp_path: Path) -> None:
    out = _sense_text(run(array, read10(1 << 30, 1), nx=VIA_PORT2, lun=1), tmp_path)
    assert "Fixed format, current; Sense key: Illegal Request" in out
    assert "Logical block address out of range" in out


def test_sg_decode_sense_invalid_field_with_pointer(array: ScsiArray, tmp_path: Path) -> None:
    cdb = bytearray(read10(0, 1))
    cdb[6] = 0x20
    out = _sense_text(run(array, bytes(cdb), nx=VIA_PORT2, lun=1), tmp_path)
    assert "Invalid field in cdb" in out
    assert "Error in Command: byte 6 bit 5" in out


def test_sg_decode_sense_unmapped_lun_and_unit_attention(array: ScsiArray,
                                                         tmp_path: Path) -> None:
    out = _sense_text(run(array, tur(), nx=VIA_PORT2, lun=77), tmp_path)
    assert "Logical unit not supported" in out
    array.nexus_lost(VIA_PORT2)
    out = _sense_text(run(array, tur(), nx=VIA_PORT2, lun=1), tmp_path)
    assert "Sense key: Unit Attention" in out
    assert "I_T nexus loss occurred" in out


def test_sg_decode_sense_miscompare_information(array: ScsiArray, tmp_path: Path) -> None:
    assert run(array, write10(40, 1), b"\x01" * 512, nx=VIA_PORT2, lun=1).good
    guess = bytearray(b"\x01" * 512)
    guess[300] = 2
    r = run(array, compare_and_write(40, 1), bytes(guess) + bytes(512), nx=VIA_PORT2, lun=1)
    out = _sense_text(r, tmp_path)
    assert "Sense key: Miscompare" in out
    assert "Miscompare during verify operation" in out
    assert "Info fld=0x12c [300]" in out

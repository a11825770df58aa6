"""`fcsoft inq`: INQUIRY, like sg3_utils' sg_inq.

    fcsoft inq [-e] [-H] [-i] [-l LEN] [-o] [-p PG] [-r] [-v] [--fabric HOST:PORT]
               [--initiator WWPN] [--vport WWPN]... [--target WWPN] [--lun N]

Without options: a standard INQUIRY (SPC-4 6.6.2), decoded in sg_inq's layout ("standard
INQUIRY:", "  PQual=0  PDT=0  RMB=0 ...", " Vendor identification: FCSOFT  " ...). Like
sg_inq it asks for 36 bytes first, then again for the whole response. -p PG fetches a VPD
page (a number, 0x.. hex, or sg_inq's abbreviation: sv, sn, di, ...); -e alone means page 0,
-i page 0x83. Pages 0x00, 0x80, 0x83, 0xb0 and 0xb1 (the ones fcsoft's arrays answer) are
decoded as sg_inq decodes them; other pages are shown in hex, as sg_inq shows the pages it has
no decoder for (sg_inq itself also decodes 0x86, 0x87, 0x88 ...). -H shows the response in
hex (-HH without offsets or ASCII), -r writes it in binary. The output is the same, byte for
byte, as `sg_inq --inhex=FILE` on the same response (tests/hosttools check it when sg3-utils
is installed). Exit statuses are sg3_utils' (see fcsoft.hosttools.common).
"""

from __future__ import annotations

import argparse
import struct
from typing import TYPE_CHECKING

from . import common
from .verbose import command

if TYPE_CHECKING:
    from fcsoft.initiator import ITNexus, ScsiResult

PROG = "fcsoft inq"
SAFE_STD_LEN = 36
STANDARD = -1  # --page sinq

# sg_inq's VPD page abbreviations (sg_inq -hh)
ABBREVIATIONS = {
    "ai": 0x89, "bdc": 0xB1, "bdce": 0xB5, "bl": 0xB0, "ble": 0xB7, "cpr": 0xB9, "di": 0x83,
    "ei": 0x86, "fp": 0xB8, "lbpv": 0xB2, "mna": 0x85, "mpp": 0x87, "po": 0x8A, "psm": 0x8D,
    "pslu": 0x90, "pspo": 0x91, "ref": 0xB3, "sbl": 0xB4, "sfs": 0x92, "sii": 0x84,
    "sinq": STANDARD, "sn": 0x80, "sp": 0x88, "sv": 0x00, "tpc": 0x8F, "zbdch": 0xB6,
    "rdac_vac": 0xC9, "rdac_vers": 0xC2, "upr": 0xC0,
}
# names in sg_inq's "Supported VPD pages" list (for a disk)
VPD_NAMES = {
    0x00: "Supported VPD pages", 0x80: "Unit serial number",
    0x81: "Implemented operating definitions (obsolete)",
    0x82: "ASCII implemented operating definition (obsolete)", 0x83: "Device identification",
    0x84: "Software interface identification", 0x85: "Management network addresses",
    0x86: "Extended INQUIRY data", 0x87: "Mode page policy", 0x88: "SCSI ports",
    0x89: "ATA information", 0x8A: "Power condition", 0x8B: "Device constituents",
    0x8C: "CFA profile information", 0x8D: "Power consumption", 0x8F: "Third party copy",
    0x90: "Protocol-specific logical unit information",
    0x91: "Protocol-specific port information", 0x92: "SCSI Feature sets",
    0xB0: "Block limits (sbc2)", 0xB1: "Block device characteristics (sbc3)",
    0xB2: "Logical block provisioning (sbc3)", 0xB3: "Referrals (sbc3)",
    0xC0: "vendor: Firmware numbers (seagate); Unit path report (EMC)",
    0xC1: "vendor: Date code (seagate)",
    0xC2: "vendor: Jumper settings (seagate); Software version (RDAC)",
    0xC3: "vendor: Device behavior (seagate)", 0xC9: "Volume Access Control (RDAC)",
}
PDT_NAMES = (
    "disk", "tape", "printer", "processor", "write once optical disk", "cd/dvd", "scanner",
    "optical memory device", "medium changer", "communications", "graphics [0xa]",
    "graphics [0xb]", "storage array controller", "enclosure services device",
    "simplified direct access device", "optical card reader/writer device",
    "bridge controller commands", "object based storage", "automation/driver interface",
    "security manager device", "host managed zoned block",
)
ANSI_VERSIONS = ("no conformance claimed", "SCSI-1", "SCSI-2", "SPC", "SPC-2", "SPC-3",
                 "SPC-4", "SPC-5")
PROTOCOLS = (
    "Fibre Channel Protocol for SCSI (FCP-5)", "SCSI Parallel Interface (SPI-5)",
    "Serial Storage Architecture SCSI-3 Protocol (SSA-S3P)",
    "Serial Bus Protocol for IEEE 1394 (SBP-3)", "SCSI RDMA Protocol (SRP)",
    "Internet SCSI (iSCSI)", "Serial Attached SCSI Protocol (SPL-4)",
    "Automation/Drive Interface Transport (ADT-2)", "AT Attachment Interface (ACS-2)",
    "USB Attached SCSI (UAS-2)", "SCSI over PCI Express (SOP)", "PCIe", "Oxc", "Oxd", "Oxe",
    "No specific protocol",
)
DESIGNATOR_TYPES = (
    "vendor specific [0x0]", "T10 vendor identification", "EUI-64 based", "NAA",
    "Relative target port", "Target port group", "Logical unit group",
    "MD5 logical unit identifier", "SCSI name string", "Protocol specific port identifier",
    "UUID identifier",
)
CODE_SETS = {1: "Binary", 2: "ASCII", 3: "UTF-8"}
ASSOCIATIONS = ("Addressed logical unit", "Target port",
                "Target device that contains addressed lu")


def pdt_name(pdt: int) -> str:
    if pdt < len(PDT_NAMES):
        return PDT_NAMES[pdt]
    return {0x1E: "well known logical unit", 0x1F: "unknown or no device type"}.get(
        pdt, f"0x{pdt:x}")


def _page(text: str) -> int:
    if text.lower() in ABBREVIATIONS:
        return ABBREVIATIONS[text.lower()]
    try:
        n = common.num_arg(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"bad argument to '--page=': {text} is not a number or a known abbreviation"
        ) from None
    if not 0 <= n <= 255:
        raise argparse.ArgumentTypeError("Bad argument to '--page=', expecting 0 to 255 "
                                         "inclusive")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "inq", help="INQUIRY (like sg_inq)",
        description="Send a SCSI INQUIRY (standard or a VPD page) and decode the response "
                    "(like sg3_utils' sg_inq).")
    p.add_argument("-e", "--vpd", action="store_true",
                   help="vital product data (set page with '--page=PG'; default page 0)")
    p.add_argument("-H", "--hex", action="count", default=0, help="output response in hex")
    p.add_argument("-i", "--id", action="store_true",
                   help="decode device identification VPD page (0x83)")
    p.add_argument("-l", "--len", "-m", "--maxlen", dest="len", type=common.num_arg, default=0,
                   metavar="LEN", help="requested response length (def: 0 -> fetch 36 bytes "
                                       "first, then fetch again as indicated)")
    p.add_argument("-o", "--only", action="store_true",
                   help="for std inquiry do not fetch serial number vpd page")
    p.add_argument("-B", "--block", type=int, choices=(0, 1), metavar="0|1",
                   help="accepted for sg_inq's sake, no effect: there is no device node to "
                        "open blocking or not")
    p.add_argument("-c", "--cmddt", action="count", default=0,
                   help="command support data mode (set opcode with '--page=PG'); obsolete")
    p.add_argument("-d", "--descriptors", action="store_true",
                   help="fetch and decode version descriptors")
    p.add_argument("-E", "-x", "--extended", action="store_true",
                   help="fetch the extended INQUIRY data VPD page (0x86)")
    p.add_argument("-f", "--force", action="store_true",
                   help="skip VPD page 0 check (fcsoft inq never makes it: no effect)")
    p.add_argument("-I", "--inhex", metavar="FN",
                   help="read the response (ASCII hex, or binary with --raw) from file FN "
                        "instead of a device: no login")
    p.add_argument("-L", "--long", action="store_true",
                   help="extra information on NVMe devices (none here: no effect)")
    p.add_argument("-O", "--old", action="store_true",
                   help="sg_inq's old command-line syntax: refused, fcsoft has only this one")
    p.add_argument("-s", "--vendor", action="store_true",
                   help="show vendor specific fields in std inquiry")
    p.add_argument("-u", "--export", action="store_true",
                   help="SCSI_IDENT_<assoc>_<type>=<ident> output format (VPD pages 0x80 and "
                        "0x83; default 0x83)")
    p.add_argument("-p", "--page", type=_page, metavar="PG",
                   help="VPD page number or abbreviation (sv, sn, di, ...; sinq = standard)")
    p.add_argument("-r", "--raw", action="store_true", help="output response in binary")
    p.add_argument("-v", "--verbose", action="count", default=0, help="increase verbosity")
    common.add_connection_args(p)
    common.set_tool(p, PROG, work)


# ---------------------------------------------------------------------------------------------
# decoders (pure: bytes in, lines out)


def _cstr(raw: bytes) -> str:
    """A fixed field as C's printf("%s") shows it: up to the first NUL, tabs as spaces."""
    return raw.split(b"\0", 1)[0].replace(b"\t", b" ").decode("latin-1")


def decode_standard(rp: bytes) -> list[str]:
    """sg_inq's decoding of a standard INQUIRY response (`rp` as received)."""
    n = len(rp)
    rp = rp.ljust(SAFE_STD_LEN, b"\0")
    pqual, pdt = rp[0] >> 5, rp[0] & 0x1F
    head = "standard INQUIRY:"
    out = [{0: head, 1: f"{head} [PQ indicates LU temporarily unavailable]",
            3: f"{head} [PQ indicates LU not accessible via this port]"}.get(
        pqual, f"{head} [reserved or vendor specific qualifier [{pqual}]]")]
    length = rp[4] + 5
    ansi = rp[2] & 7

    def bit(byte: int, mask: int) -> int:
        return int(bool(rp[byte] & mask))

    out.append(f"  PQual={pqual}  PDT={pdt}  RMB={bit(1, 0x80)}  LU_CONG={bit(1, 0x40)}  "
               f"hot_pluggable={(rp[1] >> 4) & 3}  version=0x{rp[2]:02x}  "
               f"[{ANSI_VERSIONS[ansi]}]")
    out.append(f"  [AERC={bit(3, 0x80)}]  [TrmTsk={bit(3, 0x40)}]  NormACA={bit(3, 0x20)}  "
               f"HiSUP={bit(3, 0x10)}  Resp_data_format={rp[3] & 0xF}")
    out.append(f"  SCCS={bit(5, 0x80)}  ACC={bit(5, 0x40)}  TPGS={(rp[5] >> 4) & 3}  "
               f"3PC={bit(5, 0x08)}  Protect={bit(5, 0x01)}  [BQue={bit(6, 0x80)}]")
    multip = f"MultiP=1 (VS={bit(6, 0x20)})  " if rp[6] & 0x10 else "MultiP=0  "
    out.append(f"  EncServ={bit(6, 0x40)}  {multip}[MChngr={bit(6, 0x08)}]  "
               f"[ACKREQQ={bit(6, 0x04)}]  Addr16={bit(6, 0x01)}")
    out.append(f"  [RelAdr={bit(7, 0x80)}]  WBus16={bit(7, 0x20)}  Sync={bit(7, 0x10)}  "
               f"[Linked={bit(7, 0x08)}]  [TranDis={bit(7, 0x04)}]  CmdQue={bit(7, 0x02)}")
    if n > 56:
        out.append(f"  [SPI: Clocking=0x{(rp[56] & 0x0C) >> 2:x}  QAS={bit(56, 0x02)}  "
                   f"IUS={bit(56, 0x01)}]")
    line = (f"    length={length} (0x{length:x})" if n >= length else
            f"    length={length} (0x{length:x}), but only fetched {n} bytes")
    if ansi >= 2 and length < SAFE_STD_LEN:
        out.append(line)
        line = "  [for SCSI>=2, len>=36 is expected]"
    out.append(f"{line}   Peripheral device type: {pdt_name(pdt)}")
    if n <= 8:
        out.append(f" Inquiry response length={n}, no vendor, product or revision data")
        return out
    out.append(f" Vendor identification: {_cstr(rp[8:16])}")
    out.append(" Product identification: <none>" if n <= 16 else
               f" Product identification: {_cstr(rp[16:32])}")
    out.append(" Product revision level: <none>" if n <= 32 else
               f" Product revision level: {_cstr(rp[32:36])}")
    return out


def _supported(page: bytes) -> list[str]:
    count = struct.unpack_from(">H", page, 2)[0]
    out = ["VPD INQUIRY: Supported VPD pages page", "   Supported VPD pages:"]
    for code in page[4:4 + count]:
        name = VPD_NAMES.get(code)
        out.append(f"     0x{code:x}\t{name}" if name else f"     0x{code:x}")
    return out


def _serial(page: bytes) -> list[str]:
    count = struct.unpack_from(">H", page, 2)[0]
    return ["VPD INQUIRY: Unit serial number page",
            f"  Unit serial number: {_cstr(page[4:4 + count])}"]


def _naa(ip: bytes) -> list[str]:
    lead = "      "
    naa = ip[0] >> 4
    company = ((ip[0] & 0xF) << 20) | (ip[1] << 12) | (ip[2] << 4) | (ip[3] >> 4)
    vsi = ((ip[3] & 0xF) << 32) | struct.unpack_from(">I", ip, 4)[0]
    if naa == 2:
        return [f"{lead}NAA 2, vendor specific identifier A: 0x{((ip[0] & 0xF) << 8) | ip[1]:x}",
                f"{lead}IEEE Company_id: 0x{int.from_bytes(ip[2:5], 'big'):x}",
                f"{lead}vendor specific identifier B: 0x{int.from_bytes(ip[5:8], 'big'):x}",
                f"{lead}[0x{ip[:8].hex()}]"]
    if naa == 3:
        return [f"{lead}NAA 3, Locally assigned:", f"{lead}[0x{ip[:8].hex()}]"]
    if naa == 5:
        return [f"{lead}NAA 5, IEEE Company_id: 0x{company:x}",
                f"{lead}Vendor Specific Identifier: 0x{vsi:x}", f"{lead}[0x{ip[:8].hex()}]"]
    if naa == 6:
        return [f"{lead}NAA 6, IEEE Company_id: 0x{company:x}",
                f"{lead}Vendor Specific Identifier: 0x{vsi:x}",
                (f"{lead}Vendor Specific Identifier Extension: "
                 f"0x{struct.unpack_from('>Q', ip, 8)[0]:x}"),
                f"{lead}[0x{ip[:16].hex()}]"]
    return [f"{lead}<< bad NAA nibble , expect 2, 3, 5 or 6, got {naa}>>"]


def _eui64(page: bytes, off: int, dlen: int) -> list[str]:
    # sg_inq reads the 48-bit extension identifier from byte 3 (or 11) whatever the
    # designator length, running on into the following bytes: the same bytes are shown here
    lead = "      "
    buf = page.ljust(off + 24, b"\0")
    ip = buf[off:]
    out = [f"{lead}EUI-64 based {dlen} byte identifier"]
    if dlen == 8 or dlen == 12:
        out += [f"{lead}IEEE Company_id: 0x{int.from_bytes(ip[0:3], 'big'):x}",
                (f"{lead}Vendor Specific Extension Identifier: "
                 f"0x{int.from_bytes(ip[3:9], 'big'):x}")]
        if dlen == 12:
            out.append(f"{lead}Directory ID: 0x{int.from_bytes(ip[8:12], 'big'):x}")
    elif dlen == 16:
        out += [f"{lead}Identifier extension: 0x{int.from_bytes(ip[0:8], 'big'):x}",
                f"{lead}IEEE Company_id: 0x{int.from_bytes(ip[8:11], 'big'):x}",
                (f"{lead}Vendor Specific Extension Identifier: "
                 f"0x{int.from_bytes(ip[11:17], 'big'):x}")]
    else:
        return out
    out.append(f"{lead}[0x{ip[:dlen].hex()}]")
    return out


def _designator(page: bytes, off: int, header_only: bool = False) -> list[str]:
    d = page[off:]
    code_set, proto = d[0] & 0xF, d[0] >> 4
    piv, assoc, dtype = bool(d[1] & 0x80), (d[1] >> 4) & 3, d[1] & 0xF
    dlen = d[3]
    ip = d[4:4 + dlen]
    lead = "      "
    out = []
    if piv and assoc in (1, 2):
        out.append(f"    transport: {PROTOCOLS[proto]}")
    type_name = DESIGNATOR_TYPES[dtype] if dtype < len(DESIGNATOR_TYPES) else \
        f"Reserved [0x{dtype:x}]"
    out.append(f"    designator_type: {type_name},  code_set: "
               f"{CODE_SETS.get(code_set, f'Reserved [0x{code_set:x}]')}")
    out.append(f"    associated with the "
               f"{ASSOCIATIONS[assoc] if assoc < 3 else f'Reserved [0x{assoc:x}]'}")
    if header_only:
        return out
    text = code_set in (2, 3)
    if dtype == 0:
        if text:
            out.append(f"{lead}vendor specific: {ip.decode('latin-1')}")
        else:
            out.append(f"{lead}vendor specific:")
            out += common.hex_lines(ip, -1)
    elif dtype == 1:
        out.append(f"{lead}vendor id: {ip[:8].decode('latin-1')}")
        if dlen > 8:
            out.append(f"{lead}vendor specific: {ip[8:].decode('latin-1')}")
    elif dtype == 2:
        out += _eui64(page, off + 4, dlen)
    elif dtype == 3:
        if dlen in (8, 16):
            out += _naa(ip)
    elif dtype in (4, 5) and assoc == 1 and dlen == 4:
        what = "Relative target port" if dtype == 4 else "Target port group"
        out.append(f"{lead}{what}: 0x{struct.unpack_from('>H', ip, 2)[0]:x}")
    elif dtype == 6 and dlen == 4:
        out.append(f"{lead}Logical unit group: 0x{struct.unpack_from('>H', ip, 2)[0]:x}")
    elif dtype == 7:
        out.append(f"{lead}MD5 logical unit identifier:")
        out += common.hex_lines(ip, -1)
    elif dtype == 8 and text:
        out.append(f"{lead}SCSI name string:")
        out.append(f"{lead}{_cstr(ip)}")
    return out


def _device_identification(page: bytes, raw_designators: bool = False) -> list[str]:
    """sg_inq's decoding of page 0x83; `raw_designators` (its -HH) shows each designator in
    hex instead of decoding it."""
    length = struct.unpack_from(">H", page, 2)[0]
    end = min(len(page), 4 + length)
    out = ["VPD INQUIRY: Device Identification page"]
    off, number = 4, 0
    while off + 4 <= end:
        dlen = page[off + 3]
        if off + 4 + dlen > end:
            break
        number += 1
        out.append(f"  Designation descriptor number {number}, descriptor length: {dlen + 4}")
        lines = _designator(page[:end], off, raw_designators)
        if raw_designators:
            lines.append("    designator header(hex): " + page[off:off + 4].hex(" "))
            lines.append("    designator:")
            lines += common.hex_lines(page[off + 4:off + 4 + dlen], 0)
        out += lines
        off += 4 + dlen
    return out


def _blocks(value: int, zero: str = "0 blocks [not reported]") -> str:
    return zero if value == 0 else f"{value} blocks"


def _block_limits(page: bytes) -> list[str]:
    """sg_inq's decoding of the Block Limits page (SBC-4 6.6.4)."""
    n = 4 + struct.unpack_from(">H", page, 2)[0]
    b = page.ljust(64, b"\0")

    def u32(off: int) -> int:
        return int(struct.unpack_from(">I", b, off)[0])

    def count(value: int) -> str:
        return {0: "0 [Unmap command not implemented]",
                0xFFFFFFFF: "-1 [unbounded]"}.get(value, str(value))

    out = ["VPD INQUIRY: Block limits page (SBC)"]
    if n < 16:
        return out
    cw = _blocks(b[5], "0 blocks [Command not implemented]")
    granularity = _blocks(struct.unpack_from(">H", b, 6)[0])
    out += [f"  Maximum compare and write length: {cw}",
            f"  Optimal transfer length granularity: {granularity}",
            f"  Maximum transfer length: {_blocks(u32(8))}",
            f"  Optimal transfer length: {_blocks(u32(12))}"]
    if n > 19:
        out.append(f"  Maximum prefetch transfer length: {_blocks(u32(16), '0 blocks [ignored]')}")
    if n > 27:
        out += [f"  Maximum unmap LBA count: {count(u32(20))}",
                f"  Maximum unmap block descriptor count: {count(u32(24))}"]
    if n > 35:
        valid = bool(b[32] & 0x80)
        out += [f"  Optimal unmap granularity: {_blocks(u32(28))}",
                f"  Unmap granularity alignment valid: {'true' if valid else 'false'}",
                f"  Unmap granularity alignment: {u32(32) & 0x7FFFFFFF}" +
                ("" if valid else " [invalid]")]
    if n > 43:
        ws = struct.unpack_from(">Q", b, 36)[0]
        out.append("  Maximum write same length: " +
                   ("0 blocks [not reported]" if ws == 0 else f"0x{ws:x} blocks"))
    if n > 44:
        out += [f"  Maximum atomic transfer length: {_blocks(u32(44))}",
                "  Atomic alignment: " + (str(u32(48)) if u32(48) else
                                          "0 [unaligned atomic writes permitted]"),
                "  Atomic transfer length granularity: " + (
                    str(u32(52)) if u32(52) else "0 [no granularity requirement")]
    if n > 56:
        out += [f"  Maximum atomic transfer length with atomic boundary: {_blocks(u32(56))}",
                "  Maximum atomic boundary size: " +
                _blocks(u32(60), "0 blocks [can only write atomic 1 block]")]
    return out


def _block_characteristics(page: bytes) -> list[str]:
    """sg_inq's decoding of the Block Device Characteristics page (SBC-4 6.6.2)."""
    b = page.ljust(64, b"\0")
    out = ["VPD INQUIRY: Block device characteristics page (SBC)"]
    if 4 + struct.unpack_from(">H", page, 2)[0] < 64:
        return out  # sg_inq: "page length too short", nothing decoded
    rate = struct.unpack_from(">H", b, 4)[0]
    if rate == 0:
        out.append("  Medium rotation rate is not reported")
    elif rate == 1:
        out.append("  Non-rotating medium (e.g. solid state)")
    elif rate < 0x401 or rate == 0xFFFF:
        out.append(f"  Reserved [0x{rate:x}]")
    else:
        out.append(f"  Nominal rotation rate: {rate} rpm")
    factor = b[7] & 0xF
    factors = {0: "is not reported", 1: "5.25 inches", 2: "3.5 inches", 3: "2.5 inches",
               4: "1.8 inches", 5: "less then 1.8 inches"}
    zoned = (b[8] >> 4) & 3
    out += [f"  Product type={b[6]}", f"  WABEREQ={(b[7] >> 6) & 3}",
            f"  WACEREQ={(b[7] >> 4) & 3}",
            f"  Nominal form factor {factors.get(factor, f'reserved [{factor}]')}",
            f"  ZONED={zoned}{ZONED.get(zoned, '')}", f"  FUAB={b[8] & 2}",
            f"  VBULS={int(bool(b[8] & 1))}",
            f"  DEPOPULATION_TIME={struct.unpack_from('>I', b, 12)[0]} (seconds)"]
    return out


ZONED = {1: "  [host-aware]", 2: "  [host-managed]"}
DECODERS = {0x00: _supported, 0x80: _serial, 0x83: _device_identification,
            0xB0: _block_limits, 0xB1: _block_characteristics}


def decode_vpd(page: bytes) -> tuple[list[str], str | None]:
    """(stdout lines, stderr note) for a VPD page, as sg_inq prints it."""
    decoder = DECODERS.get(page[1]) if len(page) >= 4 else None
    if decoder is not None:
        return decoder(page), None
    note = (" Only hex output supported. The sg_vpd utility decodes the B2h page."
            if len(page) > 1 and page[1] == 0xB2 else
            " Only hex output supported. The sg_vpd and sdparm utilities decode more VPD "
            "pages.")
    code = page[1] if len(page) > 1 else 0
    return [f"VPD INQUIRY, page code=0x{code:02x}:", *common.hex_lines(page, -1)], note


# ---------------------------------------------------------------------------------------------
# the command


def _inquiry_cdb(page: int | None, length: int) -> bytes:
    return struct.pack(">BBBHB", 0x12, 0 if page is None else 1, page or 0, length, 0)


def _failure(result: ScsiResult, length: int, vpd: bool, verbose: int) -> int:
    status = common.exit_status(result)
    if vpd and status == common.Exit.ILLEGAL_REQUEST:
        common.err("    inquiry: field in cdb illegal (page not supported)")
    else:
        common.err(f"    inquiry: failed requesting {length} byte response: "
                   f"{common.category_text(status)}")
    common.report_failure(PROG, status, verbose)
    return status


async def _inquiry(it: ITNexus, args: argparse.Namespace, page: int | None,
                   length: int) -> ScsiResult:
    return await command(it, args.lun, "inquiry", _inquiry_cdb(page, length),
                         verbose=args.verbose, data_in_len=length)


async def _fetch_standard(it: ITNexus, args: argparse.Namespace) -> bytes | int:
    rlen = args.len or SAFE_STD_LEN
    r = await _inquiry(it, args, None, rlen)
    if not r.good:
        return _failure(r, rlen, False, args.verbose)
    data = r.data
    length = data[4] + 5 if len(data) > 4 else len(data)
    if not args.len and SAFE_STD_LEN < length < 256:
        r = await _inquiry(it, args, None, length)
        if not r.good:
            common.err(f"second INQUIRY ({length} byte) failed")
            return common.Exit.OTHER
        data = r.data
    return data if args.len else data[:length]


async def _fetch_vpd(it: ITNexus, args: argparse.Namespace, page: int) -> bytes | int:
    rlen = args.len or 255
    r = await _inquiry(it, args, page, rlen)
    if not r.good:
        return _failure(r, rlen, True, args.verbose)
    data = r.data
    if len(data) >= 4:
        need = struct.unpack_from(">H", data, 2)[0] + 4
        if not args.len and need > rlen:
            r = await _inquiry(it, args, page, need)
            if not r.good:
                return _failure(r, need, True, args.verbose)
            data = r.data
        if not args.len:
            data = data[:need]
    return data


# version descriptor names (SPC-4 table 29) as sg_inq prints them: the ones fcsoft's arrays
# report, and their neighbours
VERSION_NAMES = {
    0x0060: "SAM-3 (no version claimed)", 0x0080: "SAM-4 (no version claimed)",
    0x00A0: "SAM-5 (no version claimed)", 0x0300: "SPC-3 (no version claimed)",
    0x0460: "SPC-4 (no version claimed)", 0x05C0: "SPC-5 (no version claimed)",
    0x0320: "SBC-2 (no version claimed)", 0x04C0: "SBC-3 (no version claimed)",
    0x0600: "SBC-4 (no version claimed)", 0x08C0: "FCP-3 (no version claimed)",
    0x0A40: "FCP-4 (no version claimed)",
}


def version_lines(rp: bytes) -> list[str]:
    """sg_inq -d: the version descriptors of a standard INQUIRY response (bytes 58-73)."""
    codes = []
    for off in range(58, min(len(rp), 74) - 1, 2):
        code = struct.unpack_from(">H", rp, off)[0]
        if code == 0:
            break
        codes.append(code)
    if not codes:
        return ["", "  No version descriptors available"]
    return ["", "  Version descriptors:", *(
        f"    {VERSION_NAMES[c]}" if c in VERSION_NAMES else
        f"    [unrecognised version descriptor code: 0x{c:x}]" for c in codes)]


_SAFE = set("#+-.:=@_")


def _enc(text: str) -> str:
    """udev-style encoding of sg_inq --export's *_ENC values."""
    return "".join(c if c.isalnum() or c in _SAFE else f"\\x{ord(c):02x}" for c in text)


def _compact(text: str) -> str:
    """--export values: trailing blanks dropped, other runs of blanks turned into one '_'."""
    return "_".join(text.split())


def export_standard(rp: bytes) -> list[str]:
    """sg_inq --export for a standard INQUIRY response."""
    rp = rp.ljust(SAFE_STD_LEN, b"\0")
    vendor, model, rev = (_cstr(rp[a:b]) for a, b in ((8, 16), (16, 32), (32, 36)))
    return [f"SCSI_TPGS={(rp[5] >> 4) & 3}", f"SCSI_TYPE={pdt_name(rp[0] & 0x1F)}",
            f"SCSI_VENDOR={_compact(vendor)}", f"SCSI_VENDOR_ENC={_enc(vendor)}",
            f"SCSI_MODEL={_compact(model)}", f"SCSI_MODEL_ENC={_enc(model)}",
            f"SCSI_REVISION={_compact(rev)}"]


_NAA_KINDS = {2: "NAA_EXT", 3: "NAA_LOCAL", 5: "NAA_REG", 6: "NAA_REGEXT"}


def export_vpd(page: bytes) -> list[str]:
    """sg_inq --export for VPD page 0x80 or 0x83 (SCSI_IDENT_<assoc>_<type>=<ident>)."""
    if len(page) < 4:
        return []
    end = min(len(page), 4 + struct.unpack_from(">H", page, 2)[0])
    if page[1] == 0x80:
        return [f"SCSI_IDENT_SERIAL={_compact(_cstr(page[4:end]))}"]
    out: list[str] = []
    off = 4
    while off + 4 <= end:
        d = page[off:]
        dlen = d[3]
        ip = d[4:4 + dlen]
        assoc = ("LUN", "PORT", "TARGET", "")[(d[1] >> 4) & 3]
        dtype, code_set = d[1] & 0xF, d[0] & 0xF
        head = f"SCSI_IDENT_{assoc}_"
        if dtype == 3 and ip and ip[0] >> 4 in _NAA_KINDS:
            out.append(f"{head}{_NAA_KINDS[ip[0] >> 4]}={ip.hex()}")
        elif dtype == 1:
            out.append(f"{head}T10={_compact(ip.decode('latin-1'))}")
        elif dtype == 2:
            out.append(f"{head}EUI64={ip.hex()}")
        elif dtype == 4 and dlen == 4:
            out.append(f"{head}RELATIVE={struct.unpack_from('>H', ip, 2)[0]}")
        elif dtype == 5 and dlen == 4:
            out.append(f"{head}TARGET_PORT_GROUP=0x{struct.unpack_from('>H', ip, 2)[0]:x}")
        elif dtype == 8 and code_set == 3:
            out.append(f"{head}NAME={_cstr(ip)}")
        off += 4 + dlen
    return out


def _read_inhex(path: str, raw: bool) -> bytes:
    """--inhex: the bytes in FN, written as hex (whitespace or commas between bytes, '#'
    comments), or binary with --raw."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise common.ToolError(f"unable to open {path}: {exc.strerror}",
                               common.Exit.FILE_ERROR) from None
    if raw:
        return data
    out = bytearray()
    for line in data.decode("latin-1").splitlines():
        for item in line.split("#", 1)[0].replace(",", " ").split():
            try:
                value = int(item, 16)
            except ValueError:
                raise common.ToolError(f"{path}: bad hex byte {item!r}",
                                       common.Exit.SYNTAX_ERROR) from None
            if not 0 <= value <= 0xFF:
                raise common.ToolError(f"{path}: {item!r} is not one byte",
                                       common.Exit.SYNTAX_ERROR)
            out.append(value)
    return bytes(out)


async def _serial_number(it: ITNexus, args: argparse.Namespace) -> str | None:
    """The unit serial number (VPD 0x80), as sg_inq appends it to the standard data."""
    r = await _inquiry(it, args, 0x80, 252)
    if not r.good or len(r.data) < 4:
        return None
    return _cstr(r.data[4:4 + struct.unpack_from(">H", r.data, 2)[0]])


async def _fetch_cmddt(it: ITNexus, args: argparse.Namespace, opcode: int) -> bytes | int:
    cdb = struct.pack(">BBBHB", 0x12, 0x02, opcode, 252, 0)
    r = await command(it, args.lun, "inquiry", cdb, verbose=args.verbose, data_in_len=252)
    if not r.good:
        return _failure(r, 252, True, args.verbose)
    return r.data


async def work(args: argparse.Namespace) -> int:
    if args.old:
        raise common.ToolError("--old: sg_inq's old command-line syntax is not supported; "
                               "use the options --help lists", common.Exit.SYNTAX_ERROR)
    page = args.page
    if page is None and args.id:
        page = 0x83
    if page is None and args.extended:
        page = 0x86
    if page is None and args.vpd:
        page = 0x00
    if page is None and args.export:
        page = 0x83  # sg_inq: --export defaults to the device identification page
    if page == STANDARD:
        page = None
    if args.cmddt and page is None:
        raise common.ToolError("--cmddt needs an opcode: give it with --page",
                               common.Exit.SYNTAX_ERROR)
    if not 0 <= args.len <= 65535:
        raise common.ToolError("bad argument to '--len='", common.Exit.SYNTAX_ERROR)
    serial = None
    if args.inhex is not None:
        got: bytes | int = _read_inhex(args.inhex, args.raw)
        if args.raw:  # binary in: decode it (sg_inq --inhex=FN --raw)
            args.raw = False
    else:
        async with common.scsi_login(args, "inq") as it:
            if args.cmddt:
                assert page is not None
                got = await _fetch_cmddt(it, args, page)
            elif page is None:
                got = await _fetch_standard(it, args)
                if (not isinstance(got, int) and not (args.raw or args.hex or args.only
                                                      or args.len or args.export)):
                    serial = await _serial_number(it, args)
            else:
                got = await _fetch_vpd(it, args, page)
    if isinstance(got, int):
        return got
    if args.raw:
        common.write_raw(got)
        return 0
    if args.cmddt:
        common.print_hex(got, 0)
        return 0
    if args.export:
        lines = export_standard(got) if page is None else export_vpd(got)
        print("\n".join(lines))
        return 0
    if page is None:
        if args.hex:
            common.print_hex(got, 0 if args.hex == 1 else -1)
        else:
            lines = decode_standard(got)
            if args.vendor and len(got) > 36 and any(got[36:56]):
                lines.append(f" Vendor specific: {_cstr(got[36:56])}")
            if serial:
                lines.append(f" Unit serial number: {serial}")
            if args.descriptors:
                lines += version_lines(got)
            print("\n".join(lines))
        return 0
    if args.hex:
        if args.hex == 1:
            print(f"VPD INQUIRY, page code=0x{page:02x}:")
            common.print_hex(got, 0)
        elif args.hex == 2 and page == 0x83 and len(got) >= 4:
            print("\n".join(_device_identification(got, raw_designators=True)))
        else:
            common.print_hex(got, -1)
        return 0
    lines, note = decode_vpd(got)
    if note:
        common.err(note)
    print("\n".join(lines))
    return 0

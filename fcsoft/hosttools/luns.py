"""`fcsoft luns`: REPORT LUNS, like sg3_utils' sg_luns.

    fcsoft luns [-d] [-H] [-l] [-m LEN] [-q] [-r] [-R] [-s SR] [-v] [--fabric HOST:PORT]
                [--initiator WWPN] [--vport WWPN]... [--target WWPN] [--lun N]
    fcsoft luns --test=ALUN [-d] [-H] [-v]

Sends REPORT LUNS (SPC-4 6.33) to --lun (default 0) of the target and prints sg_luns'
layout:

    Lun list length = 24 which imples 3 lun entries
    Report luns [select_report=0x0]:
        0000000000000000
        0001000000000000
        0002000000000000

(sg_luns' spelling "imples" kept, since scripts match it.) -d decodes each LUN
("      Peripheral device addressing: lun=1"), -H dumps the response in hex, -HH shows decoded
values in hex, -q prints only the LUNs, -r writes the response in binary, -l adds the Linux
integer LUN. --test decodes ALUN (16 hex digits) without logging in. Exit statuses are
sg3_utils' (see fcsoft.hosttools.common).
"""

from __future__ import annotations

import argparse
import struct

from . import common
from .verbose import command

PROG = "fcsoft luns"
DEFAULT_LEN = 8192
MAX_LEN = 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "luns", help="REPORT LUNS (like sg_luns)",
        description="Send a SCSI REPORT LUNS command to a target port and decode the response "
                    "(like sg3_utils' sg_luns).")
    p.add_argument("-d", "--decode", action="count", default=0,
                   help="decode all luns into component parts")
    p.add_argument("-H", "--hex", action="count", default=0,
                   help="output response in hexadecimal; used twice shows decoded values in "
                        "hex")
    p.add_argument("-l", "--linux", action="store_true",
                   help="show Linux integer lun after T10 representation")
    p.add_argument("-L", "--lu_cong", "--lu-cong", dest="lu_cong", action="count", default=0,
                   help="decode as if LU_CONG is set; used twice: decode as if LU_CONG is "
                        "clear (default: as the standard INQUIRY's LU_CONG bit says)")
    p.add_argument("-m", "--maxlen", type=common.num_arg, default=0, metavar="LEN",
                   help=f"max response length (allocation length in cdb; def: 0 -> "
                        f"{DEFAULT_LEN} bytes)")
    p.add_argument("-q", "--quiet", action="store_true", help="output only ASCII hex lun values")
    p.add_argument("-r", "--raw", action="store_true", help="output response in binary")
    p.add_argument("-R", "--readonly", action="store_true", help="accepted, no effect")
    p.add_argument("-s", "--select", type=common.num_arg, default=0, metavar="SR",
                   help="select report SR (def: 0): 0 luns apart from 'well known' lus, "
                        "1 only 'well known' lus, 2 all luns")
    p.add_argument("-t", "--test", metavar="ALUN",
                   help="decode ALUN and ignore most other options (no login)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="increase verbosity")
    common.add_connection_args(p)
    common.set_tool(p, PROG, work)


def linux_lun(lun: bytes) -> int:
    """Linux's scsilun_to_int: the 16-bit levels in reverse order."""
    value = 0
    for level in range(3, -1, -1):
        value = (value << 16) | int.from_bytes(lun[2 * level:2 * level + 2], "big")
    return value


def decode_lun(leadin: str, lun: bytes, do_hex: bool, verbose: int = 0,
               lu_cong: bool = False) -> list[str]:
    """sg_luns' decode_lun (SAM-5 4.7 LUN formats), one level per loop; `lu_cong`: decode as
    a LUN of a logical unit conglomerate (administrative and subsidiary elements)."""
    out: list[str] = []
    if lun[0] == 0xFF:
        return [f"{leadin}Logical unit _not_ specified"]
    admin = lu_cong
    for k in range(4):
        lp = lun[2 * k:]
        lead = leadin
        if k > 0:
            if lu_cong:
                admin = False
                if lp[0] == 0 and lp[1] == 0:
                    out.append(f"{leadin}>>>> Administrative LU")
                    if do_hex or verbose:
                        out.append("        since Subsidiary element is 0x0000")
                    break
                out.append(f"{leadin}>>Subsidiary element:")
            else:
                out.append(f"{leadin}>>{('Second', 'Third', 'Fourth')[k - 1]} level addressing:")
            lead = leadin + "  "
        elif lu_cong:
            out.append(f"{leadin}>>Administrative element:")
            lead = leadin + "  "
        method = lp[0] >> 6
        next_level = False
        if method == 0 and lu_cong:
            n = ((lp[0] & 0x3F) << 8) | lp[1]
            out.append(f"{lead}Simple lu addressing: " + (f"0x{n:04x}" if do_hex else f"{n}"))
            next_level = admin
        elif method == 0:
            bus = lp[0] & 0x3F
            b = f"{lead}Peripheral device addressing: "
            if bus == 0 and not verbose:
                out.append(f"{b}lun=0x{lp[1]:02x}" if do_hex else f"{b}lun={lp[1]}")
            else:
                what = "target" if bus else "lun"
                out.append(f"{b}bus_id=0x{bus:02x}, {what}=0x{lp[1]:02x}" if do_hex
                           else f"{b}bus_id={bus}, {what}={lp[1]}")
            next_level = bus != 0
        elif method == 1:
            n = ((lp[0] & 0x3F) << 8) | lp[1]
            if lu_cong:
                out.append(f"{lead}Since LU_CONG=1, unexpected Flat space addressing: "
                           f"lun=0x{n:04x}")
            else:
                out.append(f"{lead}Flat space addressing: lun=0x{n:04x}" if do_hex
                           else f"{lead}Flat space addressing: lun={n}")
        elif method == 2:
            target, bus, n = lp[0] & 0x3F, (lp[1] >> 5) & 7, lp[1] & 0x1F
            if lu_cong:
                out.append(f"{lead}Since LU_CONG=1, unexpected lu addressing: bus_id=0x{bus:x}"
                           f", target=0x{target:02x}, lun=0x{n:02x}")
            else:
                out.append(f"{lead}Logical unit addressing: bus_id=0x{bus:x}, "
                           f"target=0x{target:02x}, lun=0x{n:02x}" if do_hex else
                           f"{lead}Logical unit addressing: bus_id={bus}, target={target}, "
                           f"lun={n}")
        else:
            length, eam = (lp[0] & 0x30) >> 4, lp[0] & 0xF
            if length == 0 and eam == 1:
                names = {1: "REPORT LUNS", 2: "ACCESS CONTROLS", 3: "TARGET LOG PAGES",
                         4: "SECURITY PROTOCOL", 5: "MANAGEMENT PROTOCOL",
                         6: "TARGET COMMANDS"}
                wk = "well known logical unit"
                if lp[1] in names:
                    out.append(f"{lead}{names[lp[1]]} {wk}")
                else:
                    out.append(f"{lead}{wk} 0x{lp[1]:02x}" if do_hex else f"{lead}{wk} {lp[1]}")
            elif length == 1 and eam == 2:
                n = int.from_bytes(lp[1:4], "big")
                out.append(f"{lead}Extended flat space addressing: lun=0x{n:06x}" if do_hex
                           else f"{lead}Extended flat space addressing: lun={n}")
            elif length == 2 and eam == 2:
                n = int.from_bytes(lp[1:6], "big")
                out.append(f"{lead}Long extended flat space addressing: lun=0x{n:010x}"
                           if do_hex else
                           f"{lead}Long extended flat space addressing: lun={n}")
            elif length == 3 and eam == 0xF:
                out.append(f"{lead}Logical unit _not_ specified addressing")
            else:
                n = int.from_bytes(lp[1:4], "big") if length == 1 else lp[1]
                out.append(f"{lead}Extended logical unit addressing: length={length}, "
                           f"e.a. method={eam}, value=" + (f"0x{n:06x}" if do_hex else f"{n}"))
        if next_level:
            continue
        if method == 2 and k < 3 and (lp[2] or lp[3]):
            out.append(f"{lead}<<unexpected data at next level, continue>>")
        break
    return out


_HEX = "0123456789abcdefABCDEF"


def _two_hex(text: str, at: int) -> int | None:
    """sscanf("%2x") at `at`: up to two hex digits after optional blanks; None if none."""
    while at < len(text) and text[at] in " \t":
        at += 1
    digits = ""
    while at < len(text) and len(digits) < 2 and text[at] in _HEX:
        digits += text[at]
        at += 1
    return int(digits, 16) if digits else None


def parse_alun(text: str) -> tuple[bytes, bool, bool]:
    """sg_luns --test=ALUN: (the 8-byte LUN, given as a Linux integer, show as a Linux
    integer). ALUN is T10 hex, two digits a byte from the left (a last odd digit is a byte
    of its own), an optional 0x prefix, bytes optionally separated by blanks or '-'; or, after
    a leading 'L', a Linux integer LUN (decimal, or hex after 0x); a trailing 'L' asks for the
    Linux integer too."""
    if not text:
        raise common.ToolError("expected a hex number, optionally prefixed by '0x'",
                               common.Exit.SYNTAX_ERROR)
    if text[0] in "Ll":
        rest = text[1:].strip()
        digits = rest[2:] if rest[:2].lower() == "0x" else rest
        allowed = _HEX if rest[:2].lower() == "0x" else "0123456789"
        digits = digits[:len(digits) - len(digits.lstrip(allowed))]
        if not digits:
            raise common.ToolError("Unable to read Linux style LUN integer given to --test=",
                                   common.Exit.SYNTAX_ERROR)
        value = int(digits, 16 if allowed is _HEX else 10) & (2**64 - 1)
        lun = b"".join(((value >> (16 * k)) & 0xFFFF).to_bytes(2, "big") for k in range(4))
        return lun, True, False
    linux_out = text[-1] in "Ll"
    cp = text[2:] if text[:2].lower() == "0x" else text
    out = bytearray(8)
    count, at = 0, 0
    separated = any(c in cp for c in " \t-")
    while count < 8 and at < len(cp):
        if separated and cp[at] not in _HEX:
            at += 1
        byte = _two_hex(cp, at)
        if byte is None:
            break
        out[count] = byte
        count += 1
        at += 2
    if count == 0:
        raise common.ToolError("expected a hex number, optionally prefixed by '0x'",
                               common.Exit.SYNTAX_ERROR)
    return bytes(out), False, linux_out


def _test(args: argparse.Namespace) -> int:
    lun, linux_in, linux_out = parse_alun(args.test)
    if args.verbose or linux_in or args.decode:
        if args.decode > 1:
            print("64 bit LUN in T10 (hex, dashed) format: " + "".join(
                f"{' ' if k == 0 else '-'}{lun[k]:02x}{lun[k + 1]:02x}" for k in range(0, 8, 2)))
        else:
            print("64 bit LUN in T10 preferred (hex) format: " + "".join(f" {b:02x}" for b in lun))
    if linux_out:
        n = linux_lun(lun)
        shown = f"0x{n:016x}" if args.hex > 1 else f"0x{n:x}" if args.hex else f"{n}"
        print(f"Linux 'word flipped' integer LUN representation: {shown}")
    print("Decoded LUN:")
    for line in decode_lun("  ", lun, bool(args.hex), args.verbose, bool(args.lu_cong % 2)):
        print(line)
    return 0


def _report(args: argparse.Namespace, data: bytes, maxlen: int, lu_cong: bool = False) -> None:
    list_len = struct.unpack_from(">I", data, 0)[0] if len(data) >= 4 else 0
    len_cap = min(list_len + 8, maxlen, len(data))
    if args.raw:
        common.write_raw(data[:len_cap])
        return
    if args.hex == 1:
        common.print_hex(data[:len_cap], 1)
        return
    luns = list_len // 8
    if not args.quiet:
        print(f"Lun list length = {list_len} which imples {luns} lun "
              f"entr{common.plural(luns, 'y', 'ies')}")
    if list_len + 8 > maxlen:
        luns = (maxlen - 8) // 8
        common.err(f"  <<too many luns for internal buffer, will show {luns} "
                   f"lun{common.plural(luns, '', 's')}>>")
    luns = min(luns, max(0, (len(data) - 8) // 8))
    for k in range(luns):
        lun = data[8 + 8 * k:16 + 8 * k]
        if not args.quiet and k == 0:
            print(f"Report luns [select_report=0x{args.select:x}]:")
        line = ("    " if not args.quiet else "") + lun.hex()
        if args.linux:
            n = linux_lun(lun)
            line += f"    [0x{n:x}]" if args.hex > 1 else f"    [{n}]"
        print(line)
        if args.decode:
            for text in decode_lun("      ", lun, args.hex > 1, args.verbose, lu_cong):
                print(text)


async def work(args: argparse.Namespace) -> int:
    if args.test is not None:
        return _test(args)
    if not 0 <= args.maxlen <= MAX_LEN:
        raise common.ToolError(f"argument to '--maxlen' should be {MAX_LEN} or less",
                               common.Exit.SYNTAX_ERROR)
    if not 0 <= args.select <= 255:
        raise common.ToolError("bad argument to '--select', expect 0 to 255",
                               common.Exit.SYNTAX_ERROR)
    maxlen = args.maxlen or DEFAULT_LEN
    lu_cong = bool(args.lu_cong % 2)
    async with common.scsi_login(args, "luns") as it:
        if args.decode and not args.lu_cong:
            # as sg_luns: the standard INQUIRY's LU_CONG bit says how to decode
            inq = await command(it, args.lun, "inquiry", bytes((0x12, 0, 0, 0, 36, 0)),
                                verbose=args.verbose, data_in_len=36)
            if not inq.good:
                common.err("fetching standard INQUIRY response failed")
                return common.exit_status(inq)
            lu_cong = len(inq.data) > 1 and bool(inq.data[1] & 0x40)
        cdb = struct.pack(">BxBxxxIxx", 0xA0, args.select, maxlen)
        result = await command(it, args.lun, "report luns", cdb, verbose=args.verbose,
                               data_in_len=maxlen)
    status = common.exit_status(result)
    if status == common.Exit.OK:
        _report(args, result.data, maxlen, lu_cong)
        return 0
    if status == common.Exit.INVALID_OP:
        common.err("Report Luns command not supported (support mandatory in SPC-3)")
    elif status == common.Exit.ABORTED_COMMAND:
        common.err("Report Luns, aborted command")
    elif status == common.Exit.ILLEGAL_REQUEST:
        common.err("Report Luns command has bad field in cdb")
    else:
        common.err(f"Report Luns command: {common.category_text(status)}")
    common.report_failure(PROG, status, args.verbose)
    return status

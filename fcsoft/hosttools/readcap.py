"""`fcsoft readcap`: READ CAPACITY, like sg3_utils' sg_readcap.

    fcsoft readcap [--16] [-b] [-H] [-L LBA] [-l] [-p] [-r] [-R] [-v] [-z]
                   [--fabric HOST:PORT] [--initiator WWPN] [--vport WWPN]...
                   [--target WWPN] [--lun N]

READ CAPACITY (10) by default, READ CAPACITY (16) with -l/--long/--16 (SBC-4 5.20/5.21),
printed in sg_readcap's layout:

    Read Capacity results:
       Last LBA=131071 (0x1ffff), Number of logical blocks=131072
       Logical block length=512 bytes
    Hence:
       Device size: 67108864 bytes, 64.0 MiB, 0.07 GB

A READ CAPACITY (10) answer of FFFFFFFFh falls back to the 16-byte command, as sg_readcap
does. -b prints "0x<blocks> 0x<block size>", -H the response in hex, -r in binary.
Exit statuses are sg3_utils' (see fcsoft.hosttools.common).
"""

from __future__ import annotations

import argparse
import struct
from typing import TYPE_CHECKING

from . import common, verbose

if TYPE_CHECKING:
    from fcsoft.initiator import ScsiResult

PROG = "fcsoft readcap"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "readcap", help="READ CAPACITY (like sg_readcap)",
        description="Send a SCSI READ CAPACITY (10 or 16) command and decode the response "
                    "(like sg3_utils' sg_readcap).")
    p.add_argument("--16", dest="long", action="store_true",
                   help="use READ CAPACITY (16) cdb (same as --long)")
    p.add_argument("-b", "--brief", action="store_true",
                   help="brief, two hex numbers: number of blocks and block size")
    p.add_argument("-H", "--hex", action="count", default=0,
                   help="output response in hexadecimal to stdout")
    p.add_argument("-L", "--lba", type=common.num_arg, default=0, metavar="LBA",
                   help="yields the last block prior to (head movement) delay after LBA "
                        "(valid with --pmi)")
    p.add_argument("-l", "--long", dest="long", action="store_true",
                   help="use READ CAPACITY (16) cdb (def: use 10 byte cdb)")
    p.add_argument("-p", "--pmi", action="store_true",
                   help="partial medium indicator (without this option shows total disk "
                        "capacity)")
    p.add_argument("-r", "--raw", action="store_true", help="output response in binary")
    p.add_argument("-R", "--readonly", action="store_true", help="accepted, no effect")
    p.add_argument("-v", "--verbose", action="count", default=0, help="increase verbosity")
    p.add_argument("-z", "--zbc", action="store_true",
                   help="show rc_basis ZBC field (implies --16)")
    common.add_connection_args(p)
    common.set_tool(p, PROG, work)


def _size_lines(blocks: int, block_size: int) -> list[str]:
    total = blocks * block_size
    mib = total / 1048576
    gb = total / 1e9
    line = f"   Device size: {total} bytes, {mib:.1f} MiB, {gb:.2f} GB"
    if gb > 2000:
        line += f", {gb / 1000:.2f} TB"
    return ["Hence:", line]


def decode_rc10(data: bytes, args: argparse.Namespace) -> list[str] | None:
    """sg_readcap's READ CAPACITY (10) output; None when the LU is too big for it."""
    last, size = struct.unpack_from(">II", data.ljust(8, b"\0"))
    if last == 0xFFFFFFFF:
        return None
    if args.brief:
        return [f"0x{last + 1:x} 0x{size:x}"]
    out = ["Read Capacity results:"]
    if args.pmi:
        out.append(f"   PMI mode: given lba=0x{args.lba:x}, last lba before delay=0x{last:x}")
    else:
        out.append(f"   Last LBA={last} (0x{last:x}), Number of logical blocks={last + 1}")
    out.append(f"   Logical block length={size} bytes")
    if not args.pmi:
        out += _size_lines(last + 1, size)
    return out


def decode_rc16(data: bytes, args: argparse.Namespace) -> list[str]:
    """sg_readcap's READ CAPACITY (16) output."""
    d = data.ljust(32, b"\0")
    last, size = struct.unpack_from(">QI", d)
    if args.brief:
        return [f"0x{last + 1:x} 0x{size:x}"]
    prot_en, p_type = d[12] & 1, (d[12] >> 1) & 7
    line = f"   Protection: prot_en={prot_en}, p_type={p_type}, p_i_exponent={d[13] >> 4}"
    if prot_en:
        line += f" [type {p_type + 1} protection]"
    out = ["Read Capacity results:", line]
    if args.zbc:
        basis = (d[12] >> 4) & 3
        text = {0: "last contiguous that's not seq write required",
                1: "last LBA on logical unit"}.get(basis, f"reserved (0x{basis:x})")
        out.append(f"   ZBC's rc_basis={basis} [{text}]")
    out.append(f"   Logical block provisioning: lbpme={int(bool(d[14] & 0x80))}, "
               f"lbprz={int(bool(d[14] & 0x40))}")
    if args.pmi:
        out.append(f"   PMI mode: given lba=0x{args.lba:x}, last lba before delay=0x{last:x}")
    else:
        out.append(f"   Last LBA={last} (0x{last:x}), Number of logical blocks={last + 1}")
    out.append(f"   Logical block length={size} bytes")
    exponent = d[13] & 0xF
    line = f"   Logical blocks per physical block exponent={exponent}"
    if exponent:
        line += f" [so physical block length={size << exponent} bytes]"
    out.append(line)
    out.append(f"   Lowest aligned LBA={((d[14] & 0x3F) << 8) | d[15]}")
    if not args.pmi:
        out += _size_lines(last + 1, size)
    return out


def _dump(data: bytes, args: argparse.Namespace) -> None:
    if args.raw:
        common.write_raw(data)
    else:
        common.print_hex(data, -1 if args.hex > 2 else 1)


async def work(args: argparse.Namespace) -> int:
    if args.lba and not args.pmi:
        common.err(f"{PROG}: lba can only be non-zero when '--pmi' is set")
        return common.Exit.CONTRADICT
    use_long = args.long or args.zbc
    status: int = common.Exit.OK
    async with common.scsi_login(args, "readcap") as it:
        pending = await common.settle(it, args.lun, args.verbose)

        async def command(cdb: bytes, length: int) -> ScsiResult:
            # a unit attention the settle step consumed is this command's answer
            nonlocal pending
            if pending is not None:
                result, pending = pending, None
                return result
            name = "read capacity (10)" if cdb[0] == 0x25 else "read capacity (16)"
            return await verbose.command(it, args.lun, name, cdb, verbose=args.verbose,
                                         data_in_len=length)

        if not use_long:
            cdb = struct.pack(">BxIxxBx", 0x25, args.lba & 0xFFFFFFFF, int(args.pmi))
            result = await command(cdb, 8)
            status = common.exit_status(result)
            if status == common.Exit.OK:
                if args.hex or args.raw:
                    _dump(result.data[:8].ljust(8, b"\0"), args)
                    return 0
                lines = decode_rc10(result.data, args)
                if lines is not None:
                    print("\n".join(lines))
                    return 0
                print("READ CAPACITY (10) indicates device capacity too large\n"
                      "  now trying 16 byte cdb variant")
                use_long = True
            elif status == common.Exit.INVALID_OP:
                use_long = True
            else:
                common.err(f"READ CAPACITY (10) failed: {common.category_text(status)}")
        if use_long:
            cdb = struct.pack(">BBQIBx", 0x9E, 0x10, args.lba, 32, int(args.pmi))
            result = await command(cdb, 32)
            status = common.exit_status(result)
            if status == common.Exit.OK:
                if args.hex or args.raw:
                    _dump(result.data[:32].ljust(32, b"\0"), args)
                else:
                    print("\n".join(decode_rc16(result.data, args)))
                return 0
            if status == common.Exit.ILLEGAL_REQUEST:
                common.err("bad field in READ CAPACITY (16) cdb including unsupported "
                           "service action")
            else:
                common.err(f"READ CAPACITY (16) failed: {common.category_text(status)}")
    if args.brief:
        print("0x0 0x0")
    common.report_failure(PROG, status, args.verbose)
    return status

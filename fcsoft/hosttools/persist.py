"""`fcsoft persist`: PERSISTENT RESERVE IN / OUT, like sg3_utils' sg_persist.

    fcsoft persist [sg_persist's options] [--fabric HOST:PORT] [--initiator WWPN]
                   [--vport WWPN]... [--target WWPN] [--lun N] [DEVICE]

The options, the defaults, the checks between options, the printed text of each PR IN
service action and the exit statuses are sg_persist's, so a script written for sg_persist
runs by changing the command name (and putting the target's WWPN, or --target/--lun, where
it had /dev/sdX: DEVICE here is the target port's WWPN). With no service action it reads the
keys:

      FCSOFT    VDISK             010
      Peripheral device type: disk
      PR generation=0x3, 2 registered reservation keys follow:
        0x1234
        0x5678

PR OUT needs --out and one service action: -G register, -I register and ignore existing
key, -R reserve, -L release, -C clear, -P preempt, -A preempt and abort, -M register and
move, -x replace lost reservation; with -K/--param-rk, -S/--param-sark, -T/--prout-type
(hex, as in sg_persist), -Z/--param-aptpl, -Y/--param-alltgpt, -X/--transport-id (for
REGISTER with SPEC_I_PT, or REGISTER AND MOVE: "fcp,<16 hex digits>", a comma- or
space-separated list of hex bytes, "file=NAME" or "-" for several, one per line),
-Q/--relative-target-port and -U/--unreg for REGISTER AND MOVE. RESERVATION CONFLICT exits
with 24. The INQUIRY line at the top is left out with -n/--no-inquiry; -H shows PR IN
responses in hex. With --vport the command goes out from the last vport (after FDISC), so
several initiators can be driven from one link.
"""

from __future__ import annotations

import argparse
import struct
import sys
from typing import TYPE_CHECKING

from . import common
from .verbose import command

if TYPE_CHECKING:
    from fcsoft.initiator import ScsiResult

PROG = "fcsoft persist"
MAX_ALLOC = 8192
MAX_TIDS = 32
TID_MIN_LEN = 24

PRIN_SA = ("Read keys", "Read reservation", "Report capabilities", "Read full status")
PROUT_SA = ("Register", "Reserve", "Release", "Clear", "Preempt", "Preempt and abort",
            "Register and ignore existing key", "Register and move",
            "Replace lost reservation")
PR_TYPES = (
    "obsolete [0]", "Write Exclusive", "obsolete [2]", "Exclusive Access", "obsolete [4]",
    "Write Exclusive, registrants only", "Exclusive Access, registrants only",
    "Write Exclusive, all registrants", "Exclusive Access, all registrants",
    "obsolete [9]", "obsolete [0xa]", "obsolete [0xb]", "obsolete [0xc]", "obsolete [0xd]",
    "obsolete [0xe]", "obsolete [0xf]",
)
READ_KEYS, READ_RESERVATION, REPORT_CAPABILITIES, READ_FULL_STATUS = range(4)
REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_ABORT, REGISTER_IGNORE, \
    REGISTER_MOVE, REPLACE_LOST = range(9)


# ---------------------------------------------------------------------------------------------
# TransportIDs (SPC-4 7.6.4), in the forms sg_persist reads


def _hex_digits(text: str, count: int) -> bytes | None:
    run = len(text) - len(text.lstrip("0123456789abcdefABCDEF"))
    if run != count:
        return None
    return bytes.fromhex(text[:count])


def symbolic_transport_id(text: str) -> bytes | None:
    """A TransportID from sg_persist's symbolic forms ("fcp,10000000C9F3A571", "sas,...",
    "spi,A,R", "sbp,...", "srp,...", "iqn...."); None if `text` is none of them. fcsoft also
    takes an FCP port name in colon form ("fcp,10:00:00:00:c9:00:00:01")."""
    tid = bytearray(TID_MIN_LEN)
    head, rest = text[:4].lower(), text[4:]
    if head == "fcp,":
        wwpn = _hex_digits(rest, 16)
        if wwpn is None:
            try:
                wwpn = common.WWN(rest.split()[0]).to_bytes8() if rest.strip() else None
            except ValueError:
                wwpn = None
        if wwpn is None:
            raise ValueError(f"badly formed symbolic FCP TransportID: {rest}")
        tid[0] = 0x00
        tid[8:16] = wwpn
    elif head == "sas,":
        addr = _hex_digits(rest, 16)
        if addr is None:
            raise ValueError(f"badly formed symbolic SAS TransportID: {rest}")
        tid[0] = 0x06
        tid[4:12] = addr
    elif head == "sbp,":
        eui = _hex_digits(rest, 16)
        if eui is None:
            raise ValueError(f"badly formed symbolic SBP TransportID: {rest}")
        tid[0] = 0x03
        tid[8:16] = eui
    elif head == "srp,":
        port = _hex_digits(rest, 32)
        if port is None:
            raise ValueError(f"badly formed symbolic SRP TransportID: {rest}")
        tid[0] = 0x04
        tid[8:24] = port
    elif head == "spi,":
        try:
            address, rtp = (int(x) for x in rest.split(",")[:2])
        except ValueError:
            raise ValueError(f"badly formed symbolic SPI TransportID: {rest}") from None
        tid[0] = 0x01
        struct.pack_into(">H", tid, 2, address & 0xFFFF)
        struct.pack_into(">H", tid, 6, rtp & 0xFFFF)
    elif text.startswith("iqn."):
        name = text.split()[0].encode()
        alen = max(20, -(-(len(name) + 1) // 4) * 4)
        if alen > 241:
            raise ValueError(f"iSCSI name too long, alen={alen}")
        tid = bytearray(alen + 4)
        tid[0] = 0x05 | (0x40 if b",i,0x" in name else 0)
        struct.pack_into(">H", tid, 2, alen)
        tid[4:4 + len(name)] = name
    else:
        return None
    return bytes(tid)


def _hex_list(text: str, where: str) -> bytes:
    values = []
    for item in text.replace(",", " ").replace("\t", " ").split():
        try:
            value = int(item, 16)
        except ValueError:
            raise ValueError(f"{where}: error at '{item}'") from None
        if value > 0xFF:
            raise ValueError(f"{where}: hex number larger than 0xff: {item}")
        values.append(value)
    if not values:
        raise ValueError(f"{where}: no TransportID")
    return bytes(values).ljust(TID_MIN_LEN, b"\0")


def parse_transport_ids(arg: str, stdin_text: str | None = None) -> list[bytes]:
    """-X/--transport-id: one TransportID given directly (symbolic or hex bytes), or several,
    one a line, from "file=NAME" or "-" (stdin); "#" starts a comment."""
    if arg == "-" or arg[:5].lower() == "file=":
        if arg == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
        else:
            try:
                with open(arg[5:], encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                raise ValueError(f"unable to open {arg[5:]}: {exc.strerror}") from None
        tids = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            tid = symbolic_transport_id(line)
            tids.append(tid if tid is not None else _hex_list(line, f"line {number}"))
        if len(tids) > MAX_TIDS:
            raise ValueError("array length exceeded")
        return tids
    tid = symbolic_transport_id(arg)
    return [tid if tid is not None else _hex_list(arg, "transport-id")]


def decode_transport_id(leadin: str, tid: bytes) -> list[str]:
    """sg_decode_transportid_str(): the TransportID of a READ FULL STATUS descriptor."""
    if len(tid) < TID_MIN_LEN or len(tid) % 4:
        out = [f"{leadin}Transport Id short or not multiple of 4 [length={len(tid)}]:"]
    else:
        out = [f"{leadin}Transport Id of initiator:"]
    fmt, proto = tid[0] >> 6, tid[0] & 0xF
    unexpected = [f"{leadin}  [Unexpected TPID format: {fmt}]"] if fmt else []
    b = tid.ljust(TID_MIN_LEN, b"\0")
    if proto == 0x0:
        out += [f"{leadin}  FCP-2 World Wide Name:", *unexpected,
                *(leadin + line for line in common.hex_lines(b[8:16], -1))]
    elif proto == 0x1:
        out += [f"{leadin}  Parallel SCSI initiator SCSI address: 0x{b[2] << 8 | b[3]:x}",
                *unexpected,
                (f"{leadin}  relative port number (of corresponding target): "
                 f"0x{b[6] << 8 | b[7]:x}")]
    elif proto == 0x3:
        out += [f"{leadin}  IEEE 1394 EUI-64 name:", *unexpected,
                *(leadin + line for line in common.hex_lines(b[8:16], -1))]
    elif proto == 0x4:
        out += [f"{leadin}  RDMA initiator port identifier:", *unexpected,
                *(leadin + line for line in common.hex_lines(b[8:24], -1))]
    elif proto == 0x5:
        n = b[2] << 8 | b[3]
        name = tid[4:4 + n].split(b"\0", 1)[0].decode("latin-1")
        what = {0: "name", 1: "world wide unique port id"}.get(fmt)
        out.append(f"{leadin}  iSCSI {what}: {name}" if what else
                   f"{leadin}  iSCSI   [Unexpected TPID format: {fmt}]")
    elif proto == 0x6:
        out += [f"{leadin}  SAS address: 0x{struct.unpack_from('>Q', b, 4)[0]:x}", *unexpected]
    elif proto == 0xF:
        out.append(f"{leadin}  No specified protocol")
    else:
        out += [f"{leadin}  unknown protocol id=0x{proto:x}  TPID format={fmt}",
                *(leadin + line for line in common.hex_lines(b[:TID_MIN_LEN], -1))]
    return out


# ---------------------------------------------------------------------------------------------
# command line


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "persist", help="PERSISTENT RESERVE IN/OUT (like sg_persist)",
        description="Query and change SCSI persistent reservations with PERSISTENT RESERVE "
                    "IN and OUT (like sg3_utils' sg_persist: same options, output and exit "
                    "statuses). DEVICE is the target port's WWPN (same as --target).")

    def opt(*names: str, **kw: object) -> None:
        # sg_persist also takes each long option spelled with '_' for '-'
        extra = ["--" + n[2:].replace("-", "_") for n in names
                 if n.startswith("--") and "-" in n[2:]]
        p.add_argument(*names, *extra, **kw)  # type: ignore[arg-type]

    sa_in = {"dest": "prin", "action": "append_const"}
    sa_out = {"dest": "prout", "action": "append_const"}
    opt("-C", "--clear", const=CLEAR, help="PR Out: Clear", **sa_out)
    opt("-d", "--device", type=common.wwn_arg, metavar="DEVICE",
        help="target port WWPN (as DEVICE)")
    opt("-H", "--hex", action="count", default=0, help="output response in hex (PR In)")
    opt("-i", "--in", dest="want_in", action="store_true",
        help="request PR In command (default)")
    opt("-o", "--out", dest="want_out", action="store_true", help="request PR Out command")
    opt("-k", "--read-keys", const=READ_KEYS, help="PR In: Read Keys (default)", **sa_in)
    opt("-r", "--read-reservation", const=READ_RESERVATION, help="PR In: Read Reservation",
        **sa_in)
    opt("-c", "--report-capabilities", const=REPORT_CAPABILITIES,
        help="PR In: Report Capabilities", **sa_in)
    opt("-s", "--read-full-status", "--read-status", const=READ_FULL_STATUS,
        help="PR In: Read Full Status", **sa_in)
    opt("-G", "--register", const=REGISTER, help="PR Out: Register", **sa_out)
    opt("-I", "--register-ignore", const=REGISTER_IGNORE, help="PR Out: Register and Ignore",
        **sa_out)
    opt("-M", "--register-move", const=REGISTER_MOVE, help="PR Out: Register and Move",
        **sa_out)
    opt("-R", "--reserve", const=RESERVE, help="PR Out: Reserve", **sa_out)
    opt("-L", "--release", const=RELEASE, help="PR Out: Release", **sa_out)
    opt("-P", "--preempt", const=PREEMPT, help="PR Out: Preempt", **sa_out)
    opt("-A", "--preempt-abort", const=PREEMPT_ABORT, help="PR Out: Preempt and Abort",
        **sa_out)
    opt("-x", "-z", "--replace-lost", const=REPLACE_LOST,
        help="PR Out: Replace Lost Reservation (-z: fcsoft's earlier spelling)", **sa_out)
    opt("-K", "--param-rk", type=common.hex_arg, default=0, metavar="RK",
        help="PR Out parameter reservation key (RK is in hex)")
    opt("-S", "--param-sark", type=common.hex_arg, default=0, metavar="SARK",
        help="PR Out parameter service action reservation key (SARK is in hex)")
    opt("-T", "--prout-type", type=common.hex_arg, default=0, metavar="TYPE",
        help="PR Out type field: 1 write exclusive, 3 exclusive access, 5 write exclusive "
             "registrants only, 6 exclusive access registrants only, 7 write exclusive all "
             "registrants, 8 exclusive access all registrants")
    opt("-Z", "--param-aptpl", action="store_true", help="PR Out parameter 'APTPL'")
    opt("-Y", "--param-alltgpt", action="store_true", help="PR Out parameter 'ALL_TG_PT'")
    opt("-U", "--unreg", "--param-unreg", dest="unreg", action="store_true",
        help="optional with PR Out Register and Move")
    opt("-Q", "--relative-target-port", dest="rtp", type=common.hex_arg, default=0,
        metavar="RTPI", help="relative target port identifier for '--register-move' (hex)")
    opt("-X", "--transport-id", dest="tids", metavar="TIDS",
        help="TransportID(s): 'fcp,<16 hex digits>', hex bytes, 'file=NAME' or '-'")
    opt("-l", "--alloc-length", dest="alloc_hex", type=common.hex_arg, metavar="LEN",
        help="allocation length hex value (PR In; default 2000 in hex)")
    opt("-m", "--maxlen", dest="maxlen", type=common.num_arg, metavar="LEN",
        help="allocation length in decimal (like --alloc-length)")
    opt("-n", "--no-inquiry", dest="inquiry", action="store_false",
        help="skip INQUIRY (default: do INQUIRY)")
    opt("-y", "--readonly", action="count", default=0, help="accepted, no effect")
    opt("-v", "--verbose", action="count", default=0, help="output additional information")
    p.add_argument("device_pos", nargs="?", type=common.wwn_arg, metavar="DEVICE",
                   help="target port WWPN (same as --target)")
    common.add_connection_args(p)
    common.set_tool(p, PROG, work)


def _check(args: argparse.Namespace) -> int | None:
    """sg_persist's checks between options; an exit status when they fail."""
    prin, prout = args.prin or [], args.prout or []
    if args.want_in and args.want_out:
        common.err("choose '--in' _or_ '--out' (not both)")
        return common.Exit.CONTRADICT
    if args.want_out:
        if len(prout) != 1 or prin:
            common.err(">> For Persistent Reserve Out one and only one appropriate\n"
                       ">> service action must be chosen (e.g. '--register')")
            return common.Exit.CONTRADICT
    else:
        if prout:
            common.err(">> When a service action for Persistent Reserve Out is chosen the\n"
                       ">> '--out' option must be given (as a safeguard)")
            return common.Exit.CONTRADICT
        if not prin:
            common.err(">> No service action given; assume Persistent Reserve In command\n"
                       ">> with Read Keys service action")
            args.prin = [READ_KEYS]
        elif len(prin) > 1:
            common.err("Too many service actions given; choose one only")
            return common.Exit.CONTRADICT
    sa = prout[0] if args.want_out else None
    if (args.unreg or args.rtp) and sa != REGISTER_MOVE:
        common.err("--unreg or --relative-target-port only useful with --register-move")
        return common.Exit.CONTRADICT
    if args.rtp > 0xFFFF:
        common.err("argument to '--relative-target-port' 0 to ffff inclusive")
        return common.Exit.SYNTAX_ERROR
    if sa == REGISTER_MOVE and len(args.transport_ids) != 1:
        common.err("with --register-move one (and only one) --transport-id should be given")
        return common.Exit.CONTRADICT
    if sa in (RESERVE, RELEASE, PREEMPT, PREEMPT_ABORT) and args.prout_type == 0:
        common.err("warning>>> --prout-type probably needs to be given")
    return None


def _alloc_len(args: argparse.Namespace) -> int:
    for value, name in ((args.maxlen, "maxlen"), (args.alloc_hex, "alloc-length")):
        if value is not None:
            if value > MAX_ALLOC:
                raise common.ToolError(f"'--{name}' argument exceeds maximum value "
                                       f"({MAX_ALLOC})", common.Exit.SYNTAX_ERROR)
            return int(value)
    return MAX_ALLOC


# ---------------------------------------------------------------------------------------------
# PR IN decoding (sg_persist's prin_work output)


def decode_prin(sa: int, buf: bytes, hex_level: int, alloc: int) -> tuple[list[str], int]:
    """(stdout lines, exit status) for a PR IN response."""
    b = buf.ljust(8, b"\0")
    if sa == REPORT_CAPABILITIES:
        if b[1] != 8:
            common.err("Unexpected response for PRIN Report Capabilities")
            return (common.hex_lines(b[:b[1]], 1) if hex_level else []), common.Exit.MALFORMED
        if hex_level:
            return common.hex_lines(b[:8], 1), 0

        def flag(byte: int, mask: int) -> int:
            return int(bool(b[byte] & mask))

        out = ["Report capabilities response:",
               f"  Replace Lost Reservation Capable(RLR_C): {flag(2, 0x80)}",
               f"  Compatible Reservation Handling(CRH): {flag(2, 0x10)}",
               f"  Specify Initiator Ports Capable(SIP_C): {flag(2, 0x08)}",
               f"  All Target Ports Capable(ATP_C): {flag(2, 0x04)}",
               f"  Persist Through Power Loss Capable(PTPL_C): {flag(2, 0x01)}",
               f"  Type Mask Valid(TMV): {flag(3, 0x80)}",
               f"  Allow Commands: {(b[3] >> 4) & 7}",
               f"  Persist Through Power Loss Active(PTPL_A): {flag(3, 0x01)}"]
        if b[3] & 0x80:
            out.append("    Support indicated in Type mask:")
            for t, byte, mask in ((7, 4, 0x80), (6, 4, 0x40), (5, 4, 0x20), (3, 4, 0x08),
                                  (1, 4, 0x02), (8, 5, 0x01)):
                out.append(f"      {PR_TYPES[t]}: {flag(byte, mask)}")
        return out, 0
    generation, add_len = struct.unpack_from(">II", b, 0)
    body = b[8:8 + add_len]
    if hex_level:
        if hex_level > 1:
            return common.hex_lines(b[:8 + add_len], 1 if hex_level == 2 else -1), 0
        out = []
        head = f"  PR generation=0x{generation:x}, "
        if add_len <= 0:
            out.append(f"{head}Additional length={add_len}")
            head = ""
        if add_len > alloc - 8:
            out.append(f"{head}Additional length too large={add_len}, truncate")
            out += common.hex_lines(b[8:alloc], 1)
        else:
            out.append(f"{head}Additional length={add_len}")
            out += common.hex_lines(body, 1)
        return out, 0
    head = f"  PR generation=0x{generation:x}, "
    if sa == READ_KEYS:
        keys = [struct.unpack_from(">Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
        count = add_len // 8
        if count <= 0:
            return [f"{head}there are NO registered reservation keys"], 0
        noun = "1 registered reservation key follows:" if count == 1 else \
            f"{count} registered reservation keys follow:"
        return [f"{head}{noun}", *(f"    0x{k:x}" for k in keys[:count])], 0
    if sa == READ_RESERVATION:
        if add_len // 16 <= 0:
            return [f"{head}there is NO reservation held"], 0
        d = body.ljust(16, b"\0")
        scope, rtype = d[13] >> 4, d[13] & 0xF
        scope_text = "    scope: LU_SCOPE, " if scope == 0 else f"    scope: {scope} "
        return [f"{head}Reservation follows:", f"    Key=0x{struct.unpack_from('>Q', d)[0]:x}",
                f"{scope_text} type: {PR_TYPES[rtype]}"], 0
    if sa == READ_FULL_STATUS:
        out = [f"  PR generation=0x{generation:x}"]
        if add_len == 0:
            out.append("  No full status descriptors")
        off = 0
        while off + 24 <= len(body):
            d = body[off:]
            desc_len = struct.unpack_from(">I", d, 20)[0]
            out.append(f"    Key=0x{struct.unpack_from('>Q', d)[0]:x}")
            if d[12] & 0x02:
                out.append("      All target ports bit set")
            else:
                out.append("      All target ports bit clear")
                out.append(f"      Relative port address: 0x{struct.unpack_from('>H', d, 18)[0]:x}")
            if d[12] & 0x01:
                out.append("      << Reservation holder >>")
                scope, rtype = d[13] >> 4, d[13] & 0xF
                scope_text = "      scope: LU_SCOPE, " if scope == 0 else f"      scope: {scope} "
                out.append(f"{scope_text} type: {PR_TYPES[rtype]}")
            else:
                out.append("      not reservation holder")
            if desc_len > 0:
                out += decode_transport_id("      ", bytes(d[24:24 + desc_len]))
            off += 24 + desc_len
        return out, 0
    return common.hex_lines(b[:8 + add_len], 1), 0


# ---------------------------------------------------------------------------------------------
# PR OUT parameter lists (SPC-4 6.17.3 / 6.17.4)


def prout_parameters(args: argparse.Namespace, sa: int) -> bytes:
    tids = b"".join(args.transport_ids)
    if sa == REGISTER_MOVE:
        head = struct.pack(">QQxBHI", args.param_rk, args.param_sark,
                           (0x02 if args.unreg else 0) | (0x01 if args.param_aptpl else 0),
                           args.rtp, len(tids))
        return head + tids
    flags = (0x04 if args.param_alltgpt else 0) | (0x01 if args.param_aptpl else 0)
    if tids:
        flags |= 0x08  # SPEC_I_PT
    params = struct.pack(">QQ4xBxxx", args.param_rk, args.param_sark, flags)
    if tids:
        params += struct.pack(">I", len(tids)) + tids
    return params


def _sa_name(names: tuple[str, ...], sa: int) -> str:
    return names[sa] if sa < len(names) else f"service action=0x{sa:x}"


def _report_failure(direction: str, sa: int, result: ScsiResult, verbose: int = 0) -> int:
    status = common.exit_status(result)
    name = _sa_name(PRIN_SA if direction == "in" else PROUT_SA, sa)
    if direction == "out" and sa == REGISTER_MOVE:
        name = "register and move"
    prefix = f"PR {direction} ({name})"
    if status == common.Exit.INVALID_OP:
        common.err(f"{prefix}: command not supported")
    elif status == common.Exit.ILLEGAL_REQUEST:
        if direction == "in":
            common.err(f"{prefix}: bad field in cdb or parameter list (perhaps unsupported "
                       "service action)")
        else:
            common.err(f"{prefix}: bad field in cdb (perhaps unsupported service action)")
    else:
        common.err(f"{prefix}: {common.category_text(status)}")
    common.report_failure(PROG, status, verbose, f"Some error occurred [{status}]")
    return status


async def work(args: argparse.Namespace) -> int:
    args.target = args.target or args.device or args.device_pos
    try:
        args.transport_ids = parse_transport_ids(args.tids) if args.tids else []
    except ValueError as exc:
        common.err(str(exc))
        raise common.ToolError("bad argument to '--transport-id'",
                               common.Exit.SYNTAX_ERROR) from None
    bad = _check(args)
    if bad is not None:
        return bad
    alloc = _alloc_len(args)
    async with common.scsi_login(args, "persist") as it:
        if args.inquiry:
            r = await command(it, args.lun, "inquiry", bytes([0x12, 0, 0, 0, 36, 0]),
                              verbose=args.verbose, data_in_len=36)
            if not r.good:
                status = common.exit_status(r)
                print(f"{PROG}: SCSI INQUIRY failed on {it.target_wwpn}")
                return status
            d = r.data.ljust(36, b"\0")

            def field(raw: bytes) -> str:
                return raw.split(b"\0", 1)[0].decode("latin-1")

            print(f"  {field(d[8:16])}  {field(d[16:32])}  {field(d[32:36])}")
            print(f"  Peripheral device type: "
                  f"{_pdt_name(d[0] & 0x1F)}")
        result = await common.settle(it, args.lun, args.verbose)
        if args.want_out:
            sa = args.prout[0]
            params = prout_parameters(args, sa)
            if result is None:
                cdb = struct.pack(">BBBxxIB", 0x5F, sa, args.prout_type & 0xF, len(params), 0)
                result = await command(it, args.lun, "Persistent reservation out", cdb,
                                       verbose=args.verbose, data_out=params)
            if not result.good:
                return _report_failure("out", sa, result, args.verbose)
            if args.verbose:
                common.err(f"PR out: command ({_sa_name(PROUT_SA, sa)}) successful")
            return 0
        sa = args.prin[0]
        if result is None:
            cdb = struct.pack(">BB5xHB", 0x5E, sa, alloc, 0)
            result = await command(it, args.lun, "Persistent reservation in", cdb,
                                   verbose=args.verbose, data_in_len=alloc)
    if not result.good:
        return _report_failure("in", sa, result, args.verbose)
    lines, status = decode_prin(sa, result.data, args.hex, alloc)
    if lines:
        print("\n".join(lines))
    if status:
        common.report_failure(PROG, status, args.verbose, f"Some error occurred [{status}]")
    return status


def _pdt_name(pdt: int) -> str:
    from .inq import pdt_name

    return pdt_name(pdt)

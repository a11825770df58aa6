"""`fcsoft ns`: query the fabric name server, like fcoe-utils' fcnsq.

    fcsoft ns [--fabric HOST:PORT] [--initiator WWPN] [--vport WWPN]... [-q]
              [--gpn PORT_ID | --gnn PORT_ID | --gspn PORT_ID | --gsnn WWNN |
               --gid_pn WWPN | --gid_ft [TYPE]]

With no query it lists every port the name server shows us (GID_PT for all Nx_Ports, then
GPN_ID, GNN_ID, GFT_ID, GFF_ID, GSPN_ID and GSNN_NN for each), our own N_Port_IDs left out.
fcnsq has no listing: this layout is fcsoft's own, so it prints identities as the rest of
fcsoft does, N_Port_IDs as six hex digits and names in colon form ("Port ID: 010100",
"  Port Name: 50:01:43:80:00:00:00:01"; with -q one line per port: "010100 WWPN WWNN").
Each query option sends that one request and prints the answer exactly as fcnsq does:
"Port Name: 5001438000000001" (fcnsq's %16.16llx: names as 16 hex digits),
"Symbolic Port Name: ...", "Port ID: 010100", and with -q/--quiet only the value. A CT
reject prints fcnsq's "gpn_id command failed: <reason>, <explanation>" and exits with
fcnsq's status, the low byte of (reason << 8 | explanation), i.e. the explanation code (the
reason code when the explanation is 0). Port IDs and names given are hexadecimal (names
also in colon form); fcnsq's single-dash spellings (-gpn ...) work too.

Exit statuses: 0 answered, 1 bad command line, CT reject as above, 255 (fcnsq's -1) when
the fabric cannot be reached or logged into.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import common

if TYPE_CHECKING:
    from fcsoft.initiator import NPort

PROG = "fcsoft ns"
EXIT_NO_FABRIC = 255  # fcnsq returns -1 when it cannot open the host's bsg device

# fcnsq's wording of CT reject reason and explanation codes (FC-GS-8 table 11 / 12 subset)
REJECT_REASONS = {
    0x01: "Invalid command code", 0x02: "Invalid version level", 0x03: "Logical error",
    0x04: "Invalid CT_IU size", 0x05: "Logical busy", 0x07: "Protocol error",
    0x09: "Unable to perform command request", 0x0B: "Command not supported",
    0x0D: "Server not available", 0x0E: "Session could not be established",
}
REJECT_EXPLANATIONS = {
    0x00: "No additional explanation", 0x01: "Port Identifier not registered",
    0x02: "Port Name not registered", 0x03: "Node Name not registered",
    0x04: "Class of Service not registered", 0x06: "Initial Process Associator not registered",
    0x07: "FC-4 Types not registered", 0x08: "Symbolic Port Name not registered",
    0x09: "Symbolic Node Name not registered", 0x0A: "Port Type not registered",
    0x0C: "Fabric Port Name not registered", 0x0D: "Hard Address not registered",
    0x0F: "FC-4 Features not registered", 0x10: "Access denied",
    0x11: "Unacceptable Port Identifier", 0x12: "Data base empty",
    0x13: "No object registered in the specified scope", 0x14: "Domain ID not present",
    0x15: "Port number not present", 0x16: "No device attached",
    0xF0: "Authorization Exception", 0xF1: "Authentication Exception", 0xF2: "Data base full",
    0xF3: "Data base empty", 0xF4: "Processing request", 0xF5: "Unable to verify connection",
    0xF6: "Devices not in a common zone",
}
FC4_TYPE_NAMES = {0x01: "ELS", 0x05: "IP", 0x08: "FCP", 0x20: "CT", 0x28: "NVMe"}


def _port_id(text: str) -> int:
    n = common.hex_arg(text)
    if not 0 <= n <= 0xFFFFFF:
        raise argparse.ArgumentTypeError(f"port ID {text!r} does not fit in 24 bits")
    return n


def _fc4_type(text: str) -> int:
    names = {v.lower(): k for k, v in FC4_TYPE_NAMES.items()}
    if text.lower() in names:
        return names[text.lower()]
    n = common.hex_arg(text)
    if not 0 <= n <= 0xFF:
        raise argparse.ArgumentTypeError(f"FC-4 TYPE {text!r} is not 0..ff")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ns", help="query the fabric name server (like fcnsq)",
        description="List the ports the fabric name server shows us, or send one name "
                    "server query (like fcoe-utils' fcnsq). Port IDs and World Wide Names are "
                    "hexadecimal.")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--gpn", "-gpn", type=_port_id, metavar="PORT_ID",
                   help="Get Port Name by port ID (GPN_ID)")
    q.add_argument("--gnn", "-gnn", type=_port_id, metavar="PORT_ID",
                   help="Get Node Name by port ID (GNN_ID)")
    q.add_argument("--gspn", "-gspn", type=_port_id, metavar="PORT_ID",
                   help="Get Symbolic Port Name by port ID (GSPN_ID)")
    q.add_argument("--gsnn", "-gsnn", type=common.wwn_arg, metavar="WWNN",
                   help="Get Symbolic Node Name by node name (GSNN_NN)")
    q.add_argument("--gid_pn", "-gid_pn", "--gid-pn", type=common.wwn_arg, metavar="WWPN",
                   help="Get port ID by port name (GID_PN)")
    q.add_argument("--gid_ft", "-gid_ft", "--gid-ft", type=_fc4_type, nargs="?", const=0x08,
                   metavar="TYPE", help="Get port IDs by FC-4 TYPE (GID_FT; default FCP)")
    p.add_argument("-q", "--quiet", "-quiet", action="store_true",
                   help="print only the values, and no error messages")
    common.add_connection_args(p, target=False)
    common.set_tool(p, PROG, work, short_version=False)


def _reject_status(reason: int, explanation: int) -> int:
    return explanation or reason or 1


def _reject_text(reason: int, explanation: int) -> str:
    r = REJECT_REASONS.get(reason, f"reason 0x{reason:02x}")
    e = REJECT_EXPLANATIONS.get(explanation, f"explanation 0x{explanation:02x}")
    return f"{r}, {e}"


def _hex_wwn(wwn: int) -> str:
    """fcnsq's form of a name in a query's answer: %16.16llx."""
    return f"{int(wwn):016x}"


def _types_text(types: frozenset[int]) -> str:
    if not types:
        return "none"
    return ", ".join(FC4_TYPE_NAMES.get(t, f"0x{t:02x}") for t in sorted(types))


def _features_text(features: dict[int, int]) -> str:
    parts = []
    for t, f in sorted(features.items()):
        name = FC4_TYPE_NAMES.get(t, f"0x{t:02x}")
        if t == 0x08:
            roles = [r for bit, r in ((1, "target"), (2, "initiator")) if f & bit]
            parts.append(f"{name} {' and '.join(roles) or f'0x{f:x}'}")
        else:
            parts.append(f"{name} 0x{f:x}")
    return ", ".join(parts) or "none"


async def _query(port: NPort, args: argparse.Namespace) -> tuple[str, str, list[str]]:
    """Send the one query asked for; (function name for errors, label, values)."""
    from fcsoft.wire import ns
    from fcsoft.wire.ct import NsCommand

    if args.gpn is not None:
        body = await port.ct(NsCommand.GPN_ID, ns.GpnIdRequest(args.gpn).encode())
        return "gpn_id", "Port Name", [_hex_wwn(ns.GpnIdAccept.decode(body).port_name)]
    if args.gnn is not None:
        body = await port.ct(NsCommand.GNN_ID, ns.GnnIdRequest(args.gnn).encode())
        return "gnn_id", "Node Name", [_hex_wwn(ns.GnnIdAccept.decode(body).node_name)]
    if args.gspn is not None:
        body = await port.ct(NsCommand.GSPN_ID, ns.GspnIdRequest(args.gspn).encode())
        return "gspn_id", "Symbolic Port Name", [ns.GspnIdAccept.decode(body).symbolic_name_text]
    if args.gsnn is not None:
        body = await port.ct(NsCommand.GSNN_NN, ns.GsnnNnRequest(args.gsnn).encode())
        return "gsnn_nn", "Symbolic Node Name", [ns.GsnnNnAccept.decode(body).symbolic_name_text]
    if args.gid_pn is not None:
        body = await port.ct(NsCommand.GID_PN, ns.GidPnRequest(args.gid_pn).encode())
        return "gid_pn", "Port ID", [f"{ns.GidPnAccept.decode(body).port_id:06x}"]
    body = await port.ct(NsCommand.GID_FT, ns.GidFtRequest(fc4_type=args.gid_ft).encode())
    return "gid_ft", "Port ID", [f"{pid:06x}" for pid in ns.GidFtAccept.decode(body).port_ids]


async def _list(port: NPort, quiet: bool) -> int:
    from fcsoft.initiator import CtRejected
    from fcsoft.wire import ns
    from fcsoft.wire.ct import NsCommand

    async def ask(command: int, payload: bytes) -> bytes | None:
        try:
            return await port.ct(command, payload)
        except CtRejected:
            return None

    body = await ask(NsCommand.GID_PT, ns.GidPtRequest(ns.PortType.NX_PORT).encode())
    ids = [] if body is None else list(ns.GidPtAccept.decode(body).port_ids)
    ours = set(port.hl.ports)
    first = True
    for pid in sorted(i for i in ids if i not in ours):
        req = ns.GpnIdRequest(pid).encode()  # every by-ID query has this payload
        pn = await ask(NsCommand.GPN_ID, req)
        nn = await ask(NsCommand.GNN_ID, req)
        ft = await ask(NsCommand.GFT_ID, req)
        ff = await ask(NsCommand.GFF_ID, req)
        spn = await ask(NsCommand.GSPN_ID, req)
        wwpn = ns.GpnIdAccept.decode(pn).port_name if pn is not None else None
        wwnn = ns.GnnIdAccept.decode(nn).node_name if nn is not None else None
        snn = None
        if wwnn is not None:
            snn = await ask(NsCommand.GSNN_NN, ns.GsnnNnRequest(wwnn).encode())
        pn_text = str(wwpn) if wwpn is not None else "-"
        nn_text = str(wwnn) if wwnn is not None else "-"
        if quiet:
            print(f"{pid:06x} {pn_text} {nn_text}")
            continue
        if not first:
            print()
        first = False
        types = ns.GftIdAccept.decode(ft).fc4_types if ft is not None else frozenset()
        features = dict(ns.GffIdAccept.decode(ff).features) if ff is not None else {}
        print(f"Port ID: {pid:06x}")
        print(f"  Port Name: {pn_text}")
        print(f"  Node Name: {nn_text}")
        print(f"  FC-4 Types: {_types_text(types)}")
        print(f"  FC-4 Features: {_features_text(features)}")
        print(f"  Symbolic Port Name: "
              f"{ns.GspnIdAccept.decode(spn).symbolic_name_text if spn is not None else ''}")
        print(f"  Symbolic Node Name: "
              f"{ns.GsnnNnAccept.decode(snn).symbolic_name_text if snn is not None else ''}")
    if not quiet and first:
        print("no ports visible")
    return 0


async def work(args: argparse.Namespace) -> int:
    from fcsoft.initiator import CtRejected

    async with common.fabric_login(args, "ns", fail_status=EXIT_NO_FABRIC) as port:
        queried = any(getattr(args, k) is not None
                      for k in ("gpn", "gnn", "gspn", "gsnn", "gid_pn", "gid_ft"))
        if not queried:
            return await _list(port, args.quiet)
        try:
            func, label, values = await _query(port, args)
        except CtRejected as exc:
            if not args.quiet:
                func = next(name for key, name in (("gpn", "gpn_id"), ("gnn", "gnn_id"),
                                                   ("gspn", "gspn_id"), ("gsnn", "gsnn_nn"),
                                                   ("gid_pn", "gid_pn"), ("gid_ft", "gid_ft"))
                            if getattr(args, key) is not None)
                common.err(f"{func} command failed: "
                           f"{_reject_text(exc.reason, exc.explanation)}")
            return _reject_status(exc.reason, exc.explanation)
        for value in values:
            print(value if args.quiet else f"{label}: {value}")
        return 0

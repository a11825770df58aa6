"""`fcsoft ping`: ELS ECHO to a port, like fcoe-utils' fcping.

    fcsoft ping [-fqx] [-i INTERVAL] [-c COUNT] [-s SIZE] [--fabric HOST:PORT]
                [--initiator WWPN] [--vport WWPN]... (TARGET | -F FC_ID | -P WWPN | -N WWNN)

TARGET is a port name (8 colon-separated bytes or 16 hex digits, looked up with GID_PN) or
an N_Port_ID in hex. The ECHO payload is fcping's: the ECHO command word, a 32-bit sequence
number (1, 2, ...), then the bytes 00 01 02 ... up to SIZE bytes in all (default 32, 4 to
2108). Before the first ECHO to an N_Port the tool logs in with PLOGI (an N_Port answers
ELSs other than PLOGI only from a logged-in port, FC-LS-3) and logs out at the end; the
well-known addresses (fffxxx) are pinged as they are.

Output is fcping's:

    sending echo to 0x10100
    echo    1 accepted                        0.412 ms
    ...
    3 frames sent, 3 received 0 errors, 0.000% loss, avg. rt time 0.398 ms

An LS_RJT prints "REJECT received", an accept whose data differs "accept data mismatches",
no answer within 5 s (--timeout) "error: Connection timed out". Without -c it pings until SIGINT or
SIGTERM, then prints the summary.

Exit statuses: 0 when at least one ECHO was accepted, 1 otherwise (no answer, only rejects,
bad command line, unknown target, fabric unreachable), as fcping exits 1 on every failure.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import TYPE_CHECKING

from . import common

if TYPE_CHECKING:
    from fcsoft.initiator import NPort

PROG = "fcsoft ping"
MAX_SIZE = 2108  # fcping FC_MAX_PAYLOAD: 2112 - 4
MIN_INTERVAL = 0.001
ECHO_TIMEOUT = 5.0
EXIT_FAIL = 1


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"bad count {text}")
    return int(text)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad interval {text}") from None
    if value < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"bad interval {text}")
    return value


def _size(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text} max {MAX_SIZE}") from None
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"bad size {text} max {MAX_SIZE}")
    if value < 4:
        raise argparse.ArgumentTypeError(f"bad size {text} min 4")
    return value


def _fcid(text: str) -> int:
    n = common.hex_arg(text)
    if not 0 <= n <= 0xFFFFFF:
        raise argparse.ArgumentTypeError(f"bad target FC_ID {text}")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ping", help="ELS ECHO to a port (like fcping)",
        description="Send FC-LS ECHO requests to a port and show the replies (like fcoe-utils' "
                    "fcping). TARGET is a WWPN or an N_Port_ID in hex.")
    p.add_argument("target", nargs="?", metavar="TARGET", help="WWPN or N_Port_ID (hex)")
    p.add_argument("-F", dest="fcid", type=_fcid, metavar="FC_ID",
                   help="destination N_Port_ID (hex)")
    p.add_argument("-P", dest="wwpn", type=common.wwn_arg, metavar="WWPN",
                   help="destination port name")
    p.add_argument("-N", dest="wwnn", type=common.wwn_arg, metavar="WWNN",
                   help="destination node name")
    p.add_argument("-c", dest="count", type=_count, metavar="COUNT",
                   help="stop after sending COUNT pings (default: until interrupted)")
    p.add_argument("-i", dest="interval", type=_interval, default=1.0, metavar="INTERVAL",
                   help="wait INTERVAL seconds between pings (default 1)")
    p.add_argument("-s", dest="size", type=_size, default=32, metavar="SIZE",
                   help=f"ECHO payload length in bytes, 4 to {MAX_SIZE} (default 32)")
    p.add_argument("-f", dest="flood", action="store_true", help="flood ping: no wait")
    p.add_argument("-q", dest="quiet", action="store_true", help="print only the summary")
    p.add_argument("-x", dest="hexdump", action="store_true", help="hex dump of the replies")
    p.add_argument("--timeout", type=_interval, default=ECHO_TIMEOUT, metavar="SECONDS",
                   help=f"wait this long for each reply (default {ECHO_TIMEOUT:g}; fcsoft's "
                        "own option)")
    common.add_connection_args(p, target=False)
    common.add_version(p, PROG, short=False)
    common.exit_on_syntax_error(p, common.Exit.SYNTAX_ERROR)
    p.set_defaults(run=common.tool_main(PROG, work))


def echo_payload(size: int, seq: int) -> bytes:
    """fcping's request: ECHO command word, sequence number, then 00 01 02 ... (`size` bytes
    in all; the sequence number only when it fits)."""
    buf = bytearray(max(size, 8))
    buf[0] = 0x10  # ECHO
    buf[4:8] = seq.to_bytes(4, "big")
    for i in range(8, size):
        buf[i] = (i - 8) & 0xFF
    return bytes(buf[:size])


def hex_dump(data: bytes) -> list[str]:
    """fcping's -x dump: offset in hex (width 6), 16 bytes a line in groups of 4."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        groups = " ".join(chunk[i:i + 4].hex() for i in range(0, len(chunk), 4))
        lines.append(f"{off:6x} {groups}")
    return lines


async def _resolve(port: NPort, args: argparse.Namespace) -> int:
    from fcsoft.initiator import CtRejected
    from fcsoft.wire import ns
    from fcsoft.wire.ct import NsCommand

    if args.fcid is not None:
        return int(args.fcid)
    if args.wwpn is not None:
        try:
            body = await port.ct(NsCommand.GID_PN, ns.GidPnRequest(args.wwpn).encode())
        except CtRejected:
            raise common.ToolError(f"cannot find fcid of destination @ wwpn "
                                   f"0x{int(args.wwpn):X}", EXIT_FAIL) from None
        return ns.GidPnAccept.decode(body).port_id
    try:  # no GID_NN at fcsoft's name server: walk the ports' node names
        body = await port.ct(NsCommand.GID_PT, ns.GidPtRequest(ns.PortType.NX_PORT).encode())
        for pid in ns.GidPtAccept.decode(body).port_ids:
            try:
                nn = await port.ct(NsCommand.GNN_ID, ns.GnnIdRequest(pid).encode())
            except CtRejected:
                continue
            if ns.GnnIdAccept.decode(nn).node_name == args.wwnn:
                return pid
    except CtRejected:
        pass
    raise common.ToolError(f"cannot find fcid of destination @ wwnn 0x{int(args.wwnn):X}",
                           EXIT_FAIL)


def _pick_target(args: argparse.Namespace) -> None:
    """Fold the positional TARGET into -F / -P; insist on exactly one destination."""
    given = sum(x is not None for x in (args.fcid, args.wwpn, args.wwnn))
    if args.target is not None:
        text = args.target
        bare = text[2:] if text[:2].lower() == "0x" else text
        try:
            if ":" in text or len(bare) == 16:
                args.wwpn = common.wwn_arg(text)
            else:
                args.fcid = _fcid(text)
        except argparse.ArgumentTypeError:
            raise common.ToolError(f"bad target {text}", EXIT_FAIL) from None
        given += 1
    if given == 0:
        raise common.ToolError("no target specified", EXIT_FAIL)
    if given > 1:
        raise common.ToolError("too many targets specified; only one is allowed.", EXIT_FAIL)


async def work(args: argparse.Namespace) -> int:
    import trio

    from fcsoft.initiator import ExchangeTimeout
    from fcsoft.wire.els import ElsCommand, Logo
    from fcsoft.wire.els_login import ServiceParameters

    _pick_target(args)
    async with common.fabric_login(args, "ping", fail_status=EXIT_FAIL) as port:
        d_id = await _resolve(port, args)
        logged_in = False
        if d_id < 0xFFF000:  # an N_Port: PLOGI first
            try:
                reply = await port.els(d_id, ServiceParameters.plogi(port.wwpn,
                                                                     port.wwnn).encode(),
                                       timeout=args.timeout)
                logged_in = reply[:1] == bytes([ElsCommand.LS_ACC])
            except (ExchangeTimeout, TimeoutError):
                pass
        sent = received = errors = accepted = 0
        transit = 0.0
        timed = 0
        stop = trio.Event()

        async def watch_signals() -> None:
            import signal

            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    stop.set()
                    return

        print(f"sending echo to 0x{d_id:X}", flush=True)
        async with trio.open_nursery() as nursery:
            if threading.current_thread() is threading.main_thread():
                nursery.start_soon(watch_signals)
            while not stop.is_set() and (args.count is None or sent < args.count):
                sent += 1
                payload = echo_payload(args.size, sent)
                t0 = time.monotonic()
                try:
                    reply = await port.els(d_id, payload, timeout=args.timeout)
                except (ExchangeTimeout, TimeoutError):
                    errors += 1
                    print(f"echo {sent:4d} error: {os.strerror(110)}", flush=True)
                else:
                    rtt = time.monotonic() - t0
                    received += 1
                    transit += rtt
                    timed += 1
                    op = reply[0] if reply else -1
                    if op == ElsCommand.LS_ACC:
                        n = len(payload)
                        if reply[1:n] == payload[1:n]:
                            msg = "accepted"
                        else:
                            errors += 1
                            msg = "accept data mismatches"
                    elif op == ElsCommand.LS_RJT:
                        errors += 1
                        msg = "REJECT received"
                    else:
                        errors += 1
                        msg = f"op {op:x} received"
                    if not args.quiet:
                        print(f"echo {sent:4d} {msg:<30s} {rtt * 1000:6.3f} ms", flush=True)
                    if args.hexdump:
                        print(f"response length {len(reply)}")
                        for line in hex_dump(reply):
                            print(line)
                        print(flush=True)
                    accepted += msg == "accepted"
                if args.count is not None and sent >= args.count:
                    break
                if not args.flood:
                    with trio.move_on_after(args.interval):
                        await stop.wait()
            nursery.cancel_scope.cancel()
        loss = 100.0 * (sent - received) / sent if sent else 0.0
        avg = transit * 1000 / timed if timed else 0.0
        print(f"{sent} frames sent, {received} received {errors} errors, {loss:.3f}% loss, "
              f"avg. rt time {avg:.3f} ms", flush=True)
        if logged_in:
            with trio.move_on_after(args.timeout):
                try:
                    await port.els(d_id, Logo(port.fcid, port.wwpn).encode(),
                                   timeout=args.timeout)
                except (ExchangeTimeout, TimeoutError, ConnectionError):
                    pass
        return 0 if accepted else EXIT_FAIL

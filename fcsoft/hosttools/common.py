"""What every host tool shares: the connection options, fabric login and logout, the exit
statuses, SCSI status -> exit status mapping, and sg3_utils-style hex dumps.

Theory of operation. Each tool is a one-shot host: it connects one TCP link to the fabric,
FLOGIs as `--initiator`, registers with the name server the way Linux libfc does (no SCR: a
one-shot tool wants no RSCNs), FDISCs every `--vport` in order, does its work from the last
N_Port logged in, then logs everything out again (PRLO/LOGO to the target, LOGO to the
fabric for each vport and the base port) before closing the link.

Exit statuses are sg3_utils' (`man sg3_utils`, EXIT STATUS), so that scripts written for
sg_persist, sg_inq, sg_luns and sg_readcap keep working: 0 good, 1 syntax error, the sense
key categories (2 not ready, 3 medium/hardware, 5 illegal request, 6 unit attention, 7 data
protect, 9 invalid opcode, 11 aborted command ...), 24 reservation conflict, 31 contradictory
options, 33 command timeout, 97 malformed response, 98 other sense, 99 anything else.
A fabric that cannot be reached or a target that cannot be logged into is the tools'
"unable to open DEVICE": 15.

Unit attentions the login itself causes (29h: power on or reset, I_T nexus loss) are what a
real host's SCSI layer sees and swallows when it scans a device before any tool runs; the
tools do the same with TEST UNIT READY (`settle`), so a fresh login alone never turns into
exit status 6. Any other unit attention (a reservation preempted, parameters changed ...)
is reported as the tool's own result: exit status 6.

This module imports trio and the initiator lazily, so `fcsoft --help` stays quick.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, NoReturn

from fcsoft import names
from fcsoft.errors import output_closed
from fcsoft.wire.wwn import WWN

if TYPE_CHECKING:
    from fcsoft.initiator import ITNexus, NPort, ScsiResult

DEFAULT_FABRIC = "127.0.0.1:3225"
DEFAULT_INITIATOR = "10:00:00:00:c9:00:00:01"
LOGIN_TIMEOUT = 10.0  # seconds for each fabric / port login exchange
COMMAND_TIMEOUT = 30.0  # seconds for each SCSI command
SETTLE_LIMIT = 8  # TEST UNIT READYs spent swallowing login unit attentions


class Exit(IntEnum):
    """sg3_utils exit statuses (sg3_utils(8) EXIT STATUS; sg_lib.h SG_LIB_*)."""

    OK = 0
    SYNTAX_ERROR = 1
    NOT_READY = 2
    MEDIUM_HARD = 3
    ILLEGAL_REQUEST = 5
    UNIT_ATTENTION = 6
    DATA_PROTECT = 7
    INVALID_OP = 9
    COPY_ABORTED = 10
    ABORTED_COMMAND = 11
    MISCOMPARE = 14
    FILE_ERROR = 15  # unable to open, close or use the DEVICE (here: fabric or target)
    NO_SENSE = 20
    RECOVERED = 21
    RES_CONFLICT = 24
    CONDITION_MET = 25
    BUSY = 26
    TASK_SET_FULL = 27
    ACA_ACTIVE = 28
    TASK_ABORTED = 29
    CONTRADICT = 31
    TIMEOUT = 33
    MALFORMED = 97
    SENSE = 98
    OTHER = 99


# sg_get_category_sense_str() wording, per exit status
_CATEGORY_TEXT = {
    Exit.OK: "No errors",
    Exit.SYNTAX_ERROR: "Syntax error",
    Exit.NOT_READY: "Not ready",
    Exit.MEDIUM_HARD: "Medium or hardware error",
    Exit.ILLEGAL_REQUEST: "Illegal request",
    Exit.UNIT_ATTENTION: "Unit attention",
    Exit.DATA_PROTECT: "Data protect",
    Exit.INVALID_OP: "Illegal request, invalid opcode",
    Exit.COPY_ABORTED: "Copy aborted",
    Exit.ABORTED_COMMAND: "Aborted command",
    Exit.MISCOMPARE: "Miscompare",
    Exit.FILE_ERROR: "File error",
    Exit.NO_SENSE: "No sense key",
    Exit.RECOVERED: "Recovered error",
    Exit.RES_CONFLICT: "Reservation conflict",
    Exit.CONDITION_MET: "Condition met",
    Exit.BUSY: "Busy",
    Exit.TASK_SET_FULL: "Task set full",
    Exit.ACA_ACTIVE: "ACA active",
    Exit.TASK_ABORTED: "Task aborted",
    Exit.TIMEOUT: "SCSI command timeout",
    Exit.MALFORMED: "Malformed response",
    Exit.SENSE: "Some other sense data problem",
    Exit.OTHER: "Some other error/warning has occurred, possible transport of driver issue",
}

# sg_if_can2stderr() wording: the closing "<tool> failed: ..." line sg3_utils prints
_FAILED_TEXT = {
    Exit.NOT_READY: "Device not ready",
    Exit.MEDIUM_HARD: "Medium or hardware error",
    Exit.UNIT_ATTENTION: "Device reported 'Unit attention'",
    Exit.DATA_PROTECT: "Device reported 'Data protect', read-only?",
    Exit.COPY_ABORTED: "Copy aborted",
    Exit.ABORTED_COMMAND: "Command aborted",
    Exit.MISCOMPARE: "Miscompare",
    Exit.RES_CONFLICT: "Reservation conflict",
    Exit.BUSY: "Device is busy, try again",
    Exit.TASK_ABORTED: "Task aborted",
    Exit.TIMEOUT: "Time out",
}


def category_text(status: int) -> str:
    """sg3_utils' short name of an exit status ("Reservation conflict")."""
    try:
        return _CATEGORY_TEXT[Exit(status)]
    except (ValueError, KeyError):
        return f"Sense category: {status}, try '-v' option for more information"


GENERIC_FAILURE = "Some error occurred, try again with '-v' or '-vv' for more information"


def failed_line(tool: str, status: int, fallback: str = GENERIC_FAILURE) -> str:
    """The closing line sg3_utils prints on stderr for a failed command (sg_if_can2stderr:
    "<tool> failed: Reservation conflict"), or `fallback` for the statuses it has no words
    for."""
    text = _FAILED_TEXT.get(status)  # type: ignore[call-overload]
    if text is None:
        return fallback
    return f"{tool} failed: {text}"


def report_failure(tool: str, status: int, verbose: int = 0,
                   fallback: str = GENERIC_FAILURE) -> None:
    """The closing line of a failed command on stderr, as sg3_utils prints it: only without
    -v (with it, the sense data already said what went wrong)."""
    if not verbose:
        err(failed_line(tool, status, fallback))


class ToolError(Exception):
    """A failure to report as one line on stderr and exit status `status`."""

    def __init__(self, message: str, status: int = Exit.OTHER) -> None:
        super().__init__(message)
        self.status = int(status)


# ---------------------------------------------------------------------------------------------
# SCSI status -> exit status (sg_err_category_sense / sg_cmds_process_resp)

_SENSE_KEY_EXIT = {
    0x0: Exit.NO_SENSE, 0x1: Exit.RECOVERED, 0x2: Exit.NOT_READY, 0x3: Exit.MEDIUM_HARD,
    0x4: Exit.MEDIUM_HARD, 0x5: Exit.ILLEGAL_REQUEST, 0x6: Exit.UNIT_ATTENTION,
    0x7: Exit.DATA_PROTECT, 0x8: Exit.MEDIUM_HARD, 0xA: Exit.COPY_ABORTED,
    0xB: Exit.ABORTED_COMMAND, 0xE: Exit.MISCOMPARE,
}
_STATUS_EXIT = {0x00: Exit.OK, 0x04: Exit.CONDITION_MET, 0x08: Exit.BUSY,
                0x18: Exit.RES_CONFLICT, 0x28: Exit.TASK_SET_FULL, 0x30: Exit.ACA_ACTIVE,
                0x40: Exit.TASK_ABORTED}


def sense_fields(sense: bytes) -> tuple[int, int, int] | None:
    """(sense key, ASC, ASCQ) of fixed or descriptor sense data, None if not sense data."""
    if len(sense) < 3:
        return None
    code = sense[0] & 0x7F
    if code in (0x72, 0x73):
        return sense[1] & 0xF, sense[2] if len(sense) > 2 else 0, sense[3] if len(sense) > 3 else 0
    if code in (0x70, 0x71):
        end = min(len(sense), sense[7] + 8) if len(sense) > 7 else len(sense)
        return (sense[2] & 0xF, sense[12] if end > 12 else 0, sense[13] if end > 13 else 0)
    return None


def exit_status(result: ScsiResult) -> int:
    """The sg3_utils exit status for a command's result."""
    if result.response_code not in (None, 0):
        return Exit.OTHER
    if result.status != 0x02:
        return int(_STATUS_EXIT.get(result.status, Exit.OTHER))
    fields = sense_fields(result.sense_data)
    if fields is None:
        return Exit.SENSE
    key, asc, ascq = fields
    if key == 0x5 and (asc, ascq) == (0x20, 0x00):
        return Exit.INVALID_OP
    if key == 0xB and asc == 0x10:
        return 40  # aborted command, protection information
    return int(_SENSE_KEY_EXIT.get(key, Exit.SENSE))


def is_login_unit_attention(result: ScsiResult) -> bool:
    """CHECK CONDITION, UNIT ATTENTION with ASC 29h (power on, reset, I_T nexus loss): what a
    fresh login brings, swallowed like a host's SCSI scan does."""
    fields = sense_fields(result.sense_data) if result.status == 0x02 else None
    return fields is not None and fields[0] == 0x6 and fields[1] == 0x29


# ---------------------------------------------------------------------------------------------
# argument parsing


def _parse_fabric(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def wwn_arg(text: str) -> WWN:
    """argparse type: a WWN as 8 colon-separated bytes or 16 hex digits (0x optional)."""
    try:
        return WWN(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def lun_arg(text: str) -> int:
    """argparse type: a LUN number 0..16383."""
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad LUN {text!r}") from None
    if not 0 <= n < 0x4000:
        raise argparse.ArgumentTypeError(f"LUN {n} is outside 0..16383")
    return n


def hex_arg(text: str) -> int:
    """argparse type: a hex number, 0x optional (sscanf "%x", as sg3_utils reads keys)."""
    t = text.strip()
    if t[:2].lower() == "0x":
        t = t[2:]
    try:
        return int(t, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad hex number {text!r}") from None


def num_arg(text: str) -> int:
    """argparse type: sg_get_num(): decimal, 0x.. or ..h hex, k/m/g multipliers."""
    t = text.strip()
    try:
        if t[:2].lower() == "0x":
            return int(t, 0)
        if t[-1:] in "hH" and len(t) > 1:
            return int(t[:-1], 16)
        mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "kb": 1000, "mb": 1000 ** 2}
        for suffix in ("kb", "mb", "k", "m", "g"):
            if t.lower().endswith(suffix):
                return int(t[:-len(suffix)]) * mult[suffix]
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number {text!r}") from None


def add_connection_args(p: argparse.ArgumentParser, *, target: bool = True,
                        vport: bool = True) -> None:
    """--fabric, --initiator, --vport and (for tools that address a LUN) --target/--lun."""
    g = p.add_argument_group("fabric")
    g.add_argument("--fabric", type=_parse_fabric, default=DEFAULT_FABRIC, metavar="HOST:PORT",
                   help=f"the fabric to log into (default {DEFAULT_FABRIC})")
    g.add_argument("--initiator", type=wwn_arg, default=WWN(DEFAULT_INITIATOR), metavar="WWPN",
                   help=f"our port name for FLOGI (default {DEFAULT_INITIATOR})")
    if vport:
        g.add_argument("--vport", type=wwn_arg, action="append", default=[], metavar="WWPN",
                       help="also log in an NPIV vport with FDISC (repeatable); the command "
                            "goes out from the last one given")
    if target:
        g.add_argument("--target", type=wwn_arg, metavar="WWPN",
                       help="target port (default: the FCP target with the lowest WWPN the "
                            "name server shows)")
        g.add_argument("--lun", type=lun_arg, default=0, metavar="N",
                       help="LUN number (default 0)")


def add_version(p: argparse.ArgumentParser, prog: str, *, short: bool = True) -> None:
    """--version (and sg3_utils' -V): print the version and exit 0."""
    from fcsoft import __version__

    names = ("-V", "--version") if short else ("--version",)
    p.add_argument(*names, action="version", version=f"{prog} {__version__}",
                   help="print the version and exit")


def exit_on_syntax_error(p: argparse.ArgumentParser, status: int = Exit.SYNTAX_ERROR) -> None:
    """Make `p` end with `status` (sg3_utils' 1, not argparse's 2) on a bad command line."""

    def error(message: str) -> NoReturn:
        p.print_usage(sys.stderr)
        p.exit(status, f"{p.prog}: error: {message}\n")

    def parse_known_args(args=None, namespace=None):  # type: ignore[no-untyped-def]
        # the subcommand reports its own unknown arguments (else the top-level parser
        # would, with argparse's status 2)
        ns, extras = argparse.ArgumentParser.parse_known_args(p, args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras

    p.error = error  # type: ignore[method-assign]
    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# output helpers


def hex_lines(data: bytes, no_ascii: int = 1) -> list[str]:
    """sg3_utils' hex dump (sg_lib dStrHex / hex2stdout): `no_ascii` 0 = offset, 16 bytes and
    their ASCII; > 0 = offset and bytes; < 0 = bytes only. An extra space after the 8th."""
    lines: list[str] = []
    if not data:
        return lines
    if no_ascii < 0:
        for start in range(0, len(data), 16):
            chunk = data[start:start + 16]
            left = " ".join(f"{b:02x}" for b in chunk[:8])
            right = " ".join(f"{b:02x}" for b in chunk[8:])
            lines.append(f"{left}  {right}".rstrip())
        return lines
    for start in range(0, len(data), 16):
        chunk = data[start:start + 16]
        buf = [" "] * 80
        addr = f"{start:02x}"
        buf[1:1 + len(addr)] = addr
        bpos = 5
        for i, b in enumerate(chunk):
            bpos += 3
            if bpos == 5 + 27:
                bpos += 1
            buf[bpos:bpos + 2] = f"{b:02x}"
            if not no_ascii:
                buf[60 + i] = chr(b) if 0x20 <= b < 0x7F else "."
        if no_ascii:
            lines.append("".join(buf).rstrip())
        elif len(chunk) == 16:
            lines.append("".join(buf[:76]))
        else:
            lines.append("".join(buf[:60 + len(chunk)]))
    return lines


def print_hex(data: bytes, no_ascii: int = 1) -> None:
    for line in hex_lines(data, no_ascii):
        print(line)


def write_raw(data: bytes) -> None:
    """Binary to stdout (sg3_utils' --raw)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def err(line: str) -> None:
    print(line, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# running a tool


def _find(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kinds)
            if found is not None:
                return found
    return None


def run(prog: str, work: Callable[[], Awaitable[int]]) -> int:
    """trio.run(work) with the fcsoft logs kept quiet (warnings and worse, on stderr), and every
    expected failure turned into one line on stderr and its exit status."""
    import trio

    from fcsoft import logs
    from fcsoft.initiator import ExchangeTimeout, ScsiTimeout

    logs.configure("console", level=logging.WARNING, stream=sys.stderr)
    try:
        return int(trio.run(work))
    except KeyboardInterrupt:
        return 128 + 2
    except BaseException as exc:  # sorted below, re-raised when unexpected
        if _find(exc, (BrokenPipeError,)) is not None:
            # stdout's reader went away (`fcsoft ns | head -1`): not a lost link; quietly
            return output_closed()
        found = _find(exc, (ToolError,))
        if isinstance(found, ToolError):
            err(f"{prog}: {found}")
            return found.status
        found = _find(exc, (ScsiTimeout,))
        if found is not None:
            err(f"{prog}: {found}")
            return Exit.TIMEOUT
        found = _find(exc, (ExchangeTimeout, TimeoutError))
        if found is not None:
            err(f"{prog}: no answer from the fabric or target ({found or 'timed out'})")
            return Exit.OTHER
        found = _find(exc, (ConnectionError, OSError))
        if found is not None:
            err(f"{prog}: link to the fabric lost: {found}")
            return Exit.OTHER
        raise


@asynccontextmanager
async def fabric_login(args: argparse.Namespace, tool: str, *,
                       fail_status: int = Exit.FILE_ERROR) -> AsyncIterator[NPort]:
    """Log into the fabric at args.fabric as args.initiator, then each args.vport in order;
    yield the last N_Port logged in. Everything is logged out again at the end. A failure
    to get there raises ToolError with `fail_status`."""
    import trio

    from fcsoft.initiator import ElsRejected, ExchangeTimeout, open_host

    host_addr, port_num = args.fabric
    where = f"{host_addr}:{port_num}"
    try:
        stream = await trio.open_tcp_stream(host_addr, port_num)
    except OSError as exc:
        cause = _find(exc.__cause__, (OSError,)) if exc.__cause__ is not None else None
        e = cause if isinstance(cause, OSError) else exc
        reason = (os.strerror(e.errno) if e.errno and e.errno > 0 else
                  e.strerror or str(e).removeprefix("all attempts to connect to "))
        raise ToolError(f"cannot reach the fabric at {where}: {reason}",
                        fail_status) from None
    stage = "login"
    try:
        async with open_host((host_addr, port_num), args.initiator, register=True, scr=False,
                             symbolic_name=f"fcsoft {tool}", timeout=LOGIN_TIMEOUT,
                             stream=stream) as host:
            ports: list[NPort] = [host]
            try:
                for wwpn in getattr(args, "vport", []) or []:
                    try:
                        ports.append(await host.add_vport(wwpn, scr=False,
                                                          symbolic_name=f"fcsoft {tool}"))
                    except ElsRejected as exc:
                        raise ToolError(f"FDISC as {wwpn} rejected by the fabric ("
                                        f"{names.rejected(exc.rjt.reason, exc.rjt.explanation)})",
                                        fail_status) from None
                stage = "work"
                yield ports[-1]
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    for p in reversed(ports):
                        if p.logged_in and not p.hl.closed_reason:
                            try:
                                await p.logout()
                            except (ElsRejected, ExchangeTimeout, ConnectionError, TimeoutError):
                                pass
    except BaseException as exc:
        if stage != "login" or _find(exc, (ToolError,)) is not None:
            raise
        found = _find(exc, (ElsRejected,))
        if isinstance(found, ElsRejected):
            raise ToolError(f"fabric login as {args.initiator} at {where} rejected "
                            f"({names.rejected(found.rjt.reason, found.rjt.explanation)})",
                            fail_status) from None
        if _find(exc, (ExchangeTimeout, TimeoutError)) is not None:
            raise ToolError(f"no answer to fabric login at {where}", fail_status) from None
        if _find(exc, (ConnectionError, OSError)) is not None:
            raise ToolError(f"fabric at {where} closed the link during login",
                            fail_status) from None
        raise


async def pick_target(port: NPort, wanted: WWN | None) -> WWN:
    """`wanted`, or else the FCP target with the lowest port name the name server shows us
    (the lowest name rather than the first N_Port_ID: the same one every time)."""
    if wanted is not None:
        return wanted
    from fcsoft.initiator import CtRejected

    try:
        targets = await port.discover()
    except CtRejected:
        targets = []
    if not targets:
        raise ToolError(f"no FCP target is visible to {port.wwpn}; give --target",
                        Exit.FILE_ERROR)
    return min(targets, key=lambda t: int(t.wwpn)).wwpn


@asynccontextmanager
async def scsi_login(args: argparse.Namespace, tool: str) -> AsyncIterator[ITNexus]:
    """fabric_login, then PLOGI + PRLI to the target (one I_T nexus); yields it."""
    from fcsoft.initiator import ElsRejected

    async with fabric_login(args, tool) as port:
        target = await pick_target(port, args.target)
        try:
            async with port.connect(target, timeout=COMMAND_TIMEOUT) as it:
                yield it
        except LookupError as exc:
            raise ToolError(f"unknown target {target}: {exc}", Exit.FILE_ERROR) from None
        except ElsRejected as exc:
            raise ToolError(f"login to target {target} failed: {exc}",
                            Exit.FILE_ERROR) from None


async def settle(it: ITNexus, lun: int, verbose: int = 0) -> ScsiResult | None:
    """Swallow the unit attentions our own login caused (29h), as a host's device scan does.
    Returns the result of a TEST UNIT READY that reported any other unit attention (which
    that command consumed, so the caller reports it as its own), else None. With -v the
    TEST UNIT READYs are shown like any command."""
    from .verbose import command

    for _ in range(SETTLE_LIMIT):
        r = await command(it, lun, "test unit ready", bytes(6), verbose=verbose)
        if not is_login_unit_attention(r):
            fields = sense_fields(r.sense_data) if r.status == 0x02 else None
            return r if fields is not None and fields[0] == 0x6 else None
    return None


def tool_main(prog: str, work: Callable[[argparse.Namespace], Awaitable[int]]
              ) -> Callable[[argparse.Namespace], int]:
    """The `run` function a subcommand sets: runs `work(args)` under `run`."""

    def main(args: argparse.Namespace) -> int:
        return run(prog, lambda: work(args))

    return main


def set_tool(p: argparse.ArgumentParser, prog: str,
             work: Callable[[argparse.Namespace], Awaitable[int]], *,
             short_version: bool = True) -> None:
    """Register `work` as the subcommand's run function, with --version (-V too, unless the
    tool uses that letter) and sg3_utils' syntax-error status."""
    add_version(p, prog, short=short_version)
    exit_on_syntax_error(p)
    p.set_defaults(run=tool_main(prog, work))


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


__all__ = [
    "DEFAULT_FABRIC",
    "DEFAULT_INITIATOR",
    "Exit",
    "ToolError",
    "add_connection_args",
    "add_version",
    "category_text",
    "err",
    "exit_on_syntax_error",
    "exit_status",
    "fabric_login",
    "failed_line",
    "hex_arg",
    "hex_lines",
    "is_login_unit_attention",
    "lun_arg",
    "num_arg",
    "pick_target",
    "plural",
    "print_hex",
    "report_failure",
    "run",
    "scsi_login",
    "sense_fields",
    "set_tool",
    "settle",
    "tool_main",
    "write_raw",
    "wwn_arg",
]

"""What `-v` and `-vv` show, as sg3_utils shows it (on stderr).

- `-v`: each command's CDB before it goes out ("    inquiry cdb: 12 00 00 00 24 00"), and
  when it fails the decoded sense data under the command's name: the response code and
  sense key ("Fixed format, current; Sense key: Illegal Request"), the ASC/ASCQ with its
  name ("Additional sense: Invalid field in parameter list"), the sense-key specific field
  ("  Sense Key Specific: Error in Data parameters: byte 8") and the sense bytes in hex;
  a status other than CHECK CONDITION is named ("scsi status: Reservation Conflict").
  (sg3_utils keeps the raw sense bytes for -vv; fcsoft shows them from -v on.)
- `-vv`: also the data-out parameter list in hex, and for every command the data-in and
  data-out lengths asked for and moved, with the residual.

The wording is sg3_utils' (sg_get_sense_str, sg_cmds_process_resp); the ASC/ASCQ names are
SPC-4 Annex D's as sg3_utils spells them.
"""

from __future__ import annotations

import struct
import sys
from typing import TYPE_CHECKING

from fcsoft.scsi.sense import ASC_NAMES

from .common import hex_lines

if TYPE_CHECKING:
    from fcsoft.initiator import ITNexus, ScsiResult

SENSE_KEYS = ("No Sense", "Recovered Error", "Not Ready", "Medium Error", "Hardware Error",
              "Illegal Request", "Unit Attention", "Data Protect", "Blank Check",
              "Vendor specific", "Copy Aborted", "Aborted Command", "Equal", "Volume Overflow",
              "Miscompare", "Completed")

STATUS_NAMES = {0x00: "Good", 0x02: "Check Condition", 0x04: "Condition Met", 0x08: "Busy",
                0x18: "Reservation Conflict", 0x28: "Task Set Full", 0x30: "ACA Active",
                0x40: "Task Aborted"}


def asc_text(asc: int, ascq: int) -> str:
    """sg_get_asc_ascq_str(): the name of an additional sense code."""
    name = ASC_NAMES.get((asc, ascq))
    if name is not None:
        return f"Additional sense: {name}"
    if asc >= 0x80:
        return f"vendor specific ASC={asc:02x}, ASCQ={ascq:02x} (hex)"
    if ascq >= 0x80:
        return f"ASC={asc:02x}, vendor specific qualification ASCQ={ascq:02x} (hex)"
    return f"ASC={asc:02x}, ASCQ={ascq:02x} (hex)"


def sense_lines(sense: bytes) -> list[str]:
    """sg_get_sense_str() with the raw bytes: the decoded sense data, line by line."""
    if not sense:
        return [" >>> sense buffer empty"]
    code = sense[0] & 0x7F
    raw = sense
    out: list[str] = []
    if code in (0x70, 0x71) and len(sense) > 2:
        kind = "Fixed format, current" if code == 0x70 else "Fixed format, <<<deferred>>>"
        length = min(len(sense), sense[7] + 8) if len(sense) > 7 else len(sense)
        raw = sense[:length]
        out.append(f"{kind}; Sense key: {SENSE_KEYS[sense[2] & 0xF]}")
        if length > 12:
            out.append(asc_text(sense[12], sense[13] if length > 13 else 0))
        if length > 6:
            info = struct.unpack_from(">I", sense, 3)[0]
            if sense[0] & 0x80:
                out.append(f"  Info fld=0x{info:x} [{info}] ")
        if length >= 18 and sense[15] & 0x80 and sense[2] & 0xF == 0x5:
            where = "Command" if sense[15] & 0x40 else "Data parameters"
            line = (f"  Sense Key Specific: Error in {where}: byte "
                    f"{struct.unpack_from('>H', sense, 16)[0]}")
            if sense[15] & 0x08:
                line += f" bit {sense[15] & 0x07}"
            out.append(line)
    elif code in (0x72, 0x73) and len(sense) > 3:
        kind = "Descriptor format, current" if code == 0x72 else \
            "Descriptor format, <<<deferred>>>"
        out.append(f"{kind}; Sense key: {SENSE_KEYS[sense[1] & 0xF]}")
        out.append(asc_text(sense[2], sense[3]))
    else:
        out.append(f"Unknown response code: 0x{code:x}")
    out.append(" Raw sense data (in hex):")
    out += ["        " + line for line in hex_lines(raw, -1)]
    return out


def show_cdb(name: str, cdb: bytes) -> None:
    """-v: the CDB about to be sent."""
    print(f"    {name} cdb: {cdb.hex(' ')}", file=sys.stderr)


def show_result(name: str, result: ScsiResult, *, data_in_len: int = 0,
                data_out_len: int = 0, verbose: int = 1) -> None:
    """-v: a failure's sense data or status; -vv: lengths moved and the residual."""
    err = sys.stderr
    if verbose > 1:
        if data_in_len:
            got = len(result.data)
            print(f"    {name}: pass-through requested {data_in_len} bytes (data-in), got "
                  f"{got} bytes, residual {result.residual}", file=err)
        if data_out_len:
            sent = max(0, data_out_len - max(0, result.residual))
            print(f"    {name}: pass-through requested {data_out_len} bytes (data-out), "
                  f"{sent} bytes sent, residual {result.residual}", file=err)
    if result.response_code not in (None, 0):
        from fcsoft.names import code
        from fcsoft.wire.fcp import FcpRspCode

        print(f"{name}: transport: FCP_RSP response code "
              f"{code(result.response_code, FcpRspCode)}", file=err)
    elif result.status == 0x02:
        print(f"{name}:", file=err)
        for line in sense_lines(result.sense_data):
            print(line, file=err)
    elif result.status != 0x00:
        status = STATUS_NAMES.get(result.status, f"0x{result.status:x}")
        print(f"{name}: scsi status: {status}", file=err)


async def command(it: ITNexus, lun: int, name: str, cdb: bytes, *, verbose: int,
                  data_out: bytes | None = None, data_in_len: int = 0) -> ScsiResult:
    """Send one command the way a tool does, showing what -v / -vv ask for."""
    if verbose:
        show_cdb(name, cdb)
        if verbose > 1 and data_out:
            print(f"    {name} parameter list:", file=sys.stderr)
            for line in hex_lines(data_out, -1):
                print(f"        {line}", file=sys.stderr)
    result = await it.scsi(lun, cdb, data_out=data_out, data_in_len=data_in_len)
    if verbose:
        show_result(name, result, data_in_len=data_in_len,
                    data_out_len=len(data_out or b""), verbose=verbose)
    return result


__all__ = ["ASC_NAMES", "SENSE_KEYS", "asc_text", "command", "sense_lines", "show_cdb",
           "show_result"]

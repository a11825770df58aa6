"""One way to print identities and codes: what fcsoft's logs, its JSON and its own output
layouts show for an N_Port_ID, a WWN and a protocol code.

- An N_Port_ID is six lowercase hex digits, no prefix: `010200`, `fffffc` (`fcid`).
- A WWN is eight colon-separated lowercase hex bytes: `50:01:43:80:00:00:00:01` (`wwn`).
- An exchange ID is `0x` and four lowercase hex digits: `0x1a2b` (`xid`).
- A code is its name and its value: `unable to perform command (0x09)`, `GPN_ID (0x0112)`,
  `check condition (0x02)` (`label` for a member of one of the code tables, `code` for a
  value that may not be in its table); sense data is its key, its additional sense code's
  name and the three codes as `fcsoft ctl lu-error` takes them:
  `medium error: unrecovered read error (3/11/00)` (`sense`).

Tools that copy the layout of sg3_utils or fcoe-utils print what those print instead (fcping's
`sending echo to 0x10100`, fcnsq's `Port Name: 5001438000000001`); this module is for
fcsoft's own layouts. `fcsoft.logs` renders log values with it, so a log call passes the
plain values (an int N_Port_ID, a WWN, an enum member) and never formats them itself.

Nothing here runs per frame: only log lines (which are written on exceptional paths) and
the tools' output use it.
"""

from __future__ import annotations

import re
from enum import Enum, IntEnum, IntFlag
from typing import Any

__all__ = ["asc", "code", "ct_command", "els_command", "fc_type", "fcid", "label", "opcode",
           "r_ctl", "rejected", "sense", "wwn", "xid"]

_HEX_ID = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,6})")


def fcid(value: int | str) -> str:
    """An N_Port_ID as six lowercase hex digits (`010200`); a string that is an N_Port_ID in
    hex (`0x10200`, `010200`, `FFFFFC`) is normalized, any other string is returned as is."""
    if isinstance(value, str):
        m = _HEX_ID.fullmatch(value.strip())
        return f"{int(m.group(1), 16):06x}" if m else value
    return f"{int(value) & 0xFFFFFF:06x}"


def wwn(value: int | str) -> str:
    """A WWN in colon form (`50:01:43:80:00:00:00:01`); a string in any form WWN.parse takes
    is normalized, any other string is returned as is."""
    from fcsoft.wire.wwn import WWN

    if isinstance(value, str):
        try:
            return str(WWN.parse(value))
        except ValueError:
            return value
    return str(WWN(int(value)))


def xid(value: int) -> str:
    """An OX_ID or RX_ID: `0x1a2b`."""
    return f"0x{int(value):04x}"


# -- code tables --------------------------------------------------------------------------
#
# A member's label is its name in words, lowercase, with the standards' spelling of the
# terms that have one (N_Port, S_ID, OX_ID-RX_ID, FC-4, CT_IU, ...); the tables below give
# the labels this rule would get wrong or that the standard words differently.

_TERMS = [(re.compile(rf"\b{pattern}\b"), term) for pattern, term in (
    ("ox id rx id", "OX_ID-RX_ID"), ("n port id", "N_Port_ID"), ("n port", "N_Port"),
    ("s id", "S_ID"), ("seq id", "SEQ_ID"), ("vc id", "VC_ID"), ("alias ids", "alias_IDs"),
    ("alias id", "alias_ID"), ("fc4", "FC-4"), ("ct iu", "CT_IU"), ("fcp cmnd", "FCP_CMND"),
    ("fcp data", "FCP_DATA"), ("fcp", "FCP"), ("lun", "LUN"), ("qos", "QoS"), ("mac", "MAC"),
    ("vn2vn", "VN2VN"), ("ip", "IP"), ("fip", "FIP"), ("els", "ELS"), ("aca", "ACA"),
    ("id", "ID"), ("ro", "RO"),
)]

#: labels the general rule would not give (keyed by table, then value)
_LABELS: dict[str, dict[int, str]] = {
    "LsRjtReason": {
        0x01: "invalid ELS command code", 0x09: "unable to perform command",
        0xFF: "vendor unique error",
    },
    "LsRjtExplanation": {
        0x01: "service parameter error: options",
        0x03: "service parameter error: initiator control",
        0x05: "service parameter error: recipient control",
        0x07: "service parameter error: receive data field size",
        0x09: "service parameter error: concurrent sequences",
        0x0B: "service parameter error: credit",
        0x15: "invalid S_ID of originator", 0x17: "invalid OX_ID-RX_ID combination",
        0x23: "attempt to abort invalid exchange", 0x25: "attempt to abort inactive exchange",
        0x29: "insufficient resources to support login",
    },
    "BaRjtReason": {0x01: "invalid command code", 0x09: "unable to perform command",
                    0xFF: "vendor unique error"},
    "BaRjtExplanation": {0x00: "no additional explanation",
                         0x03: "invalid OX_ID-RX_ID combination",
                         0x05: "sequence aborted, no sequence information provided"},
    "CtRejectReason": {0x09: "unable to perform command",
                       0x0E: "session could not be established", 0xFF: "vendor unique error"},
    "NsRejectExplanation": {0x06: "initial process associator not registered",
                            0x13: "no object registered in the specified scope",
                            0xF3: "database empty", 0xF6: "devices not in a common zone"},
    "FcpRspCode": {
        0: "task management function complete", 1: "FCP_DATA length invalid",
        2: "FCP_CMND fields invalid", 3: "FCP_DATA parameter mismatch with FCP_DATA_RO",
        4: "task management function not supported", 5: "task management function failed",
        9: "task management function incorrect LUN",
    },
    "RCtl": {
        0x00: "FC-4 device data", 0x80: "BA_NOP", 0x81: "ABTS", 0x82: "BA_RMC",
        0x84: "BA_ACC", 0x85: "BA_RJT", 0xC0: "ACK_1", 0xC1: "ACK_0", 0xC2: "P_RJT",
        0xC3: "F_RJT", 0xC4: "P_BSY", 0xC5: "F_BSY (data frame)", 0xC6: "F_BSY (link control)",
    },
    "FcType": {0x28: "NVMe"},
    "PrliResponseCode": {0x02: "no resources available",
                         0x05: "predefined configuration precludes establishing this image "
                               "pair"},
}
#: tables whose member names are the standards' own names for them (PLOGI, GPN_ID, FCP)
_AS_NAMED = {"ElsCommand", "NsCommand", "FcType", "CtResponseCode"}
#: hex digits a value of the table is printed with (2 otherwise)
_WIDTH = {"NsCommand": 4, "CtResponseCode": 4}


def _words(name: str) -> str:
    text = name.lower().replace("_", " ")
    for pattern, term in _TERMS:
        text = pattern.sub(term, text)
    return text


def _name(table: str, value: int, member_name: str | None) -> str | None:
    special = _LABELS.get(table, {}).get(value)
    if special is not None:
        return special
    if member_name is None or member_name.startswith("UNKNOWN_"):
        return None
    if table in _AS_NAMED:
        return member_name
    return _words(member_name)


def label(member: Enum) -> str:
    """`unable to perform command (0x09)`: a code table member's name and value."""
    table = type(member).__name__
    value = int(member.value)
    width = _WIDTH.get(table, 2)
    if isinstance(member, IntFlag) and member.name is not None and "|" in member.name:
        # several bits where one is expected (a task management flags byte, say)
        parts = [_name(table, int(m), m.name) or "unknown" for m in type(member) if m in member]
        return f"{' + '.join(parts)} (0x{value:0{width}x})"
    name = _name(table, value, member.name)
    return f"{name or 'unknown'} (0x{value:0{width}x})"


def code(value: int, table: type[IntEnum] | type[IntFlag], width: int | None = None) -> str:
    """`label` for a plain int that should be a member of `table`; a value the table lacks
    is `unknown (0x..)`."""
    try:
        member = table(value)
    except ValueError:
        name = _name(table.__name__, value, None)
        w = width or _WIDTH.get(table.__name__, 2)
        return f"{name or 'unknown'} (0x{value:0{w}x})"
    return label(member)


def els_command(value: int) -> str:
    """`PLOGI (0x03)`."""
    from fcsoft.wire.els_codes import ElsCommand

    return code(value, ElsCommand)


def ct_command(value: int) -> str:
    """`GPN_ID (0x0112)`."""
    from fcsoft.wire.ct import CtResponseCode, NsCommand

    return code(value, CtResponseCode if value >= 0x8000 else NsCommand, 4)


def r_ctl(value: int) -> str:
    """`ELS request (0x22)`."""
    from fcsoft.wire.header import RCtl

    return code(value, RCtl)


def fc_type(value: int) -> str:
    """`FCP (0x08)`."""
    from fcsoft.wire.header import FcType

    return code(value, FcType)


def opcode(value: int) -> str:
    """A SCSI operation code: `READ(10) (0x28)` (SPC-4 / SBC-4 names)."""
    from fcsoft.scsi.cdb import SUPPORTED_COMMANDS, Opcode

    # a command without service actions by its own name, else the operation code's
    name = next((c.name for c in SUPPORTED_COMMANDS
                 if c.opcode == value and c.service_action is None), None)
    if name is None:
        try:
            name = re.sub(r"_(\d+)$", r"(\1)", Opcode(value).name).replace("_", " ")
        except ValueError:
            name = "unknown"
    return f"{name} (0x{value:02x})"


def rejected(reason: Enum, explanation: Enum) -> str:
    """A reject's two codes: `unable to perform command (0x09), invalid port name (0x0d)`."""
    return f"{label(reason)}, {label(explanation)}"


def sense(value: Any) -> str:
    """Sense data (fcsoft.scsi.sense.Sense): `medium error: unrecovered read error
    (3/11/00)`; the additional sense code's name is SPC-4 Annex D's."""
    from fcsoft.scsi.sense import ASC_NAMES

    key = int(value.key)
    asc, ascq = value.code
    key_name = _words(value.key.name) if isinstance(value.key, Enum) else f"sense key {key:x}"
    asc_name = ASC_NAMES.get((asc, ascq))
    text = f"{key_name}: {_lower_first(asc_name)}" if asc_name else key_name
    return f"{text} ({key:x}/{asc:02x}/{ascq:02x})"


def asc(value: tuple[int, int]) -> str:
    """An (ASC, ASCQ) pair: `capacity data has changed (2a/09)`."""
    from fcsoft.scsi.sense import ASC_NAMES

    a, q = value
    name = ASC_NAMES.get((a, q))
    return f"{_lower_first(name) if name else 'unknown'} ({a:02x}/{q:02x})"


def _lower_first(text: str) -> str:
    # "Unrecovered read error" -> "unrecovered read error"; "SCSI bus reset occurred" and
    # "I_T nexus loss occurred" keep their capitals
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text

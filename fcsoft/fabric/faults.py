"""Fault rules: which frames an administrator asked the fabric to drop, delay, duplicate or
corrupt (`fcsoft ctl fault add`), and the matching that decides whether a frame is hit
(sans-IO: no clock, no randomness of its own; the shell applies the action).

A rule matches a frame when every criterion it has holds:

    s_id, d_id   the frame's S_ID / D_ID: an N_Port_ID, or a WWPN (its N_Port_ID at the
                 moment the frame passes; a FLOGI or FDISC names its WWPN in the payload)
    wwpn         the WWPN is the frame's source or destination (as for s_id / d_id)
    r_ctl, type  the header's R_CTL and TYPE bytes
    els          an ELS frame whose first payload byte is this command code (LS_ACC and
                 LS_RJT are codes too)
    ct           a CT frame (TYPE 20h) whose CT_IU command/response code is this one
    opcode       an FCP_CMND whose CDB starts with one of these operation codes
    direction    "in": frames entering the fabric from a port (every frame an N_Port sends,
                 whether the fabric routes it or answers it); "out": frames the fabric
                 itself originates (its accepts, RSCNs, name-server answers)

`count` limits how many frames the rule hits (it is spent when they are), `probability`
makes each match a hit only that often (both may be given: hits are counted after the
draw). Rules are tried in the order they were added; the first that hits decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els_codes import ElsCommand
from fcsoft.wire.header import FcHeader
from fcsoft.wire.wwn import WWN

__all__ = ["ACTIONS", "DIRECTIONS", "FaultRule", "FaultError", "parse_rule", "frame_opcode"]

ACTIONS = ("drop", "delay", "duplicate", "corrupt")
DIRECTIONS = ("in", "out", "any")
_ELS = 0x01
_CT = 0x20
_FCP = 0x08
_FCP_CMND = 0x06
_FLOGI_FDISC = (0x04, 0x51)
MAX_DELAY_MS = 60_000


class FaultError(ValueError):
    """A rule that cannot be installed: one line saying why."""


#: an address criterion: an N_Port_ID, or a WWPN resolved when a frame passes
Address = int | WWN


@dataclass(slots=True, eq=False)
class FaultRule:
    """One installed rule (see the module docstring)."""

    id: int
    action: str
    delay_ms: int = 0
    s_id: Address | None = None
    d_id: Address | None = None
    wwpn: WWN | None = None
    r_ctl: int | None = None
    type: int | None = None
    els: int | None = None
    ct: int | None = None
    opcodes: frozenset[int] | None = None
    direction: str = "any"
    probability: float | None = None
    count: int | None = None  # frames it may still hit (None: no limit)
    matched: int = 0  # frames that met every criterion
    hits: int = 0  # frames the action was applied to
    by_link: dict[int, int] = field(default_factory=dict)  # link id -> hits

    @property
    def spent(self) -> bool:
        return self.count is not None and self.count <= 0

    def describe(self) -> dict[str, Any]:
        """The rule as JSON-ready data (the control API's shape)."""
        def addr(a: Address | None) -> str | None:
            if a is None:
                return None
            return str(a) if isinstance(a, WWN) else f"{a:06x}"

        return {
            "id": self.id, "action": self.action,
            "delay_ms": self.delay_ms if self.action == "delay" else None,
            "s_id": addr(self.s_id), "d_id": addr(self.d_id),
            "wwpn": str(self.wwpn) if self.wwpn is not None else None,
            "r_ctl": f"{self.r_ctl:#04x}" if self.r_ctl is not None else None,
            "type": f"{self.type:#04x}" if self.type is not None else None,
            "els": _name(ElsCommand, self.els, 2) if self.els is not None else None,
            "ct": _name(NsCommand, self.ct, 4) if self.ct is not None else None,
            "opcodes": sorted(f"{o:#04x}" for o in self.opcodes) if self.opcodes else None,
            "direction": self.direction, "probability": self.probability,
            "count_left": self.count, "matched": self.matched, "hits": self.hits,
        }

    def matches(self, header: FcHeader, payload: bytes | memoryview, inbound: bool,
                fcid_of: Callable[[WWN], int | None]) -> bool:
        """Whether the frame meets every criterion (counting and the draw are the caller's)."""
        if self.direction != "any" and (self.direction == "in") != inbound:
            return False
        if self.r_ctl is not None and header.r_ctl != self.r_ctl:
            return False
        if self.type is not None and header.type != self.type:
            return False
        if self.els is not None and (header.type != _ELS or not payload
                                     or payload[0] != self.els):
            return False
        if self.ct is not None and (header.type != _CT or len(payload) < 10
                                    or (payload[8] << 8 | payload[9]) != self.ct):
            return False
        if self.opcodes is not None:
            op = frame_opcode(header, payload)
            if op is None or op not in self.opcodes:
                return False
        if self.s_id is not None and not _is(self.s_id, header.s_id, header, payload, fcid_of):
            return False
        if self.d_id is not None and not _is(self.d_id, header.d_id, header, payload, fcid_of,
                                             login=False):
            return False
        if self.wwpn is not None and not (
                _is(self.wwpn, header.s_id, header, payload, fcid_of)
                or _is(self.wwpn, header.d_id, header, payload, fcid_of, login=False)):
            return False
        return True


def frame_opcode(header: FcHeader, payload: bytes | memoryview) -> int | None:
    """The SCSI operation code of an FCP_CMND frame (CDB byte 0), else None."""
    if header.type == _FCP and header.r_ctl == _FCP_CMND and len(payload) > 12:
        return int(payload[12])
    return None


def _is(want: Address, fcid: int, header: FcHeader, payload: bytes | memoryview,
        fcid_of: Callable[[WWN], int | None], login: bool = True) -> bool:
    if not isinstance(want, WWN):
        return fcid == want
    if login and header.type == _ELS and len(payload) >= 28 and payload[0] in _FLOGI_FDISC:
        # a login has no N_Port_ID of its own yet: its port name is in the payload
        return WWN.from_bytes8(payload, 20) == want
    have = fcid_of(want)
    return have is not None and have == fcid


def _name(enum: Any, code: int, digits: int) -> str:
    try:
        return str(enum(code).name)
    except ValueError:
        return f"{code:#0{digits + 2}x}"


# -- parsing the control API's JSON -----------------------------------------------------

#: SCSI operation code groups `opcode` (and lu-error's --ops) take by name
OPCODE_GROUPS: dict[str, tuple[int, ...]] = {
    "read": (0x08, 0x28, 0xA8, 0x88),
    "write": (0x0A, 0x2A, 0xAA, 0x8A, 0x2E, 0xAE, 0x8E),
    "verify": (0x2F, 0xAF, 0x8F),
    "sync": (0x35, 0x91),
    "unmap": (0x42,),
    "write-same": (0x41, 0x93),
    "compare-and-write": (0x89,),
    "tur": (0x00,),
    "inquiry": (0x12,),
    "request-sense": (0x03,),
    "report-luns": (0xA0,),
    "readcap": (0x25, 0x9E),
    "mode-sense": (0x1A, 0x5A),
    "mode-select": (0x15, 0x55),
    "pr-in": (0x5E,),
    "pr-out": (0x5F,),
    "reserve": (0x16, 0x56),
    "release": (0x17, 0x57),
    "start-stop": (0x1B,),
    "maintenance-in": (0xA3,),
}


def parse_opcodes(value: Any, key: str = "opcodes") -> frozenset[int]:
    """Operation codes from a list (or comma-separated text) of group names (OPCODE_GROUPS),
    hex (0x28) or decimal numbers."""
    items: Iterable[Any]
    if isinstance(value, str):
        items = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise FaultError(f"{key}: expected a list of operation codes or names")
    out: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            code = item
        elif isinstance(item, str):
            text = item.strip().lower().replace("_", "-")
            if text in OPCODE_GROUPS:
                out.update(OPCODE_GROUPS[text])
                continue
            code = _int(text, key)
        else:
            raise FaultError(f"{key}: {item!r} is not an operation code")
        if not 0 <= code <= 0xFF:
            raise FaultError(f"{key}: operation code {code} is not 0..255")
        out.add(code)
    if not out:
        raise FaultError(f"{key}: no operation code given")
    return frozenset(out)


def _int(text: str, key: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise FaultError(f"{key}: {text!r} is not a number (use 0x.. for hex)") from None


def _byte(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise FaultError(f"{key}: expected a number 0..255")
    n = value if isinstance(value, int) else _int(str(value), key)
    if not 0 <= n <= 0xFF:
        raise FaultError(f"{key}: {n} is not 0..255")
    return n


def _address(value: Any, key: str) -> Address:
    text = str(value).strip()
    if ":" in text:
        try:
            return WWN.parse(text)
        except ValueError as exc:
            raise FaultError(f"{key}: {exc}") from None
    try:
        n = int(text, 16)
    except ValueError:
        raise FaultError(f"{key}: {text!r} is neither an N_Port_ID (6 hex digits) nor a "
                         "WWPN") from None
    if not 0 <= n <= 0xFFFFFF:
        raise FaultError(f"{key}: {text!r} is not a 24-bit N_Port_ID")
    return n


def _code(value: Any, enum: Any, key: str, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        text = str(value).strip()
        try:
            n = int(enum[text.upper().replace("-", "_")])
        except KeyError:
            n = _int(text, key)
    if not 0 <= n <= limit:
        raise FaultError(f"{key}: {value!r} is out of range")
    return n


_KEYS = {"action", "delay_ms", "s_id", "d_id", "wwpn", "r_ctl", "type", "els", "ct",
         "opcodes", "direction", "probability", "count"}


def parse_rule(rule_id: int, data: Mapping[str, Any]) -> FaultRule:
    """A FaultRule from the control API's JSON object; FaultError (one line) when it is
    malformed. Every key is checked before anything is built."""
    if not isinstance(data, Mapping):
        raise FaultError("expected a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise FaultError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    action = data.get("action")
    if action not in ACTIONS:
        raise FaultError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    rule = FaultRule(rule_id, str(action))
    if action == "delay":
        delay = data.get("delay_ms")
        if isinstance(delay, bool) or not isinstance(delay, int) or \
                not 0 < delay <= MAX_DELAY_MS:
            raise FaultError(f"delay_ms must be 1..{MAX_DELAY_MS} for a delay, not {delay!r}")
        rule.delay_ms = delay
    elif data.get("delay_ms") is not None:
        raise FaultError("delay_ms goes with action 'delay' only")
    if data.get("s_id") is not None:
        rule.s_id = _address(data["s_id"], "s_id")
    if data.get("d_id") is not None:
        rule.d_id = _address(data["d_id"], "d_id")
    if data.get("wwpn") is not None:
        w = _address(data["wwpn"], "wwpn")
        if not isinstance(w, WWN):
            raise FaultError("wwpn: expected a WWPN (8 colon-separated hex bytes)")
        rule.wwpn = w
    if data.get("r_ctl") is not None:
        rule.r_ctl = _byte(data["r_ctl"], "r_ctl")
    if data.get("type") is not None:
        rule.type = _byte(data["type"], "type")
    if data.get("els") is not None:
        rule.els = _code(data["els"], ElsCommand, "els", 0xFF)
    if data.get("ct") is not None:
        rule.ct = _code(data["ct"], NsCommand, "ct", 0xFFFF)
    if data.get("opcodes") is not None:
        rule.opcodes = parse_opcodes(data["opcodes"])
    direction = data.get("direction") or "any"
    if direction not in DIRECTIONS:
        raise FaultError(f"direction must be one of {', '.join(DIRECTIONS)}, not "
                         f"{direction!r}")
    rule.direction = str(direction)
    prob = data.get("probability")
    if prob is not None:
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or \
                not 0 < float(prob) <= 1:
            raise FaultError(f"probability must be more than 0 and at most 1, not {prob!r}")
        rule.probability = float(prob)
    count = data.get("count")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise FaultError(f"count must be a whole number of at least 1, not {count!r}")
        rule.count = count
    return rule

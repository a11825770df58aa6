"""Asymmetric logical unit access (ALUA, SPC-4 5.15): the target port groups of one array,
their access states, what a command meets through a port in each state, and REPORT TARGET
PORT GROUPS data (SPC-4 6.36).

One state per target port group, shared by every LU of the array (implicit ALUA only:
TPGS = 01b, no SET TARGET PORT GROUPS; the administrator changes states with `fcsoft ctl
alua`). Groups are one per port (group id = relative target port identifier) unless the
config's `[[array.port_group]]` entries say otherwise.

Commands through a port whose group is (SPC-4 5.15.2.4):
- active/optimized, active/non-optimized: everything;
- standby: INQUIRY, LOG SELECT/SENSE, MODE SELECT/SENSE, REPORT LUNS, RECEIVE/SEND
  DIAGNOSTIC, MAINTENANCE IN (REPORT TARGET PORT GROUPS, REPORT SUPPORTED OPERATION CODES
  ...), MAINTENANCE OUT, REQUEST SENSE, PERSISTENT RESERVE IN/OUT and the echo-buffer modes
  of READ/WRITE BUFFER; anything else gets NOT READY, 04/0B (TARGET PORT IN STANDBY STATE);
- unavailable: INQUIRY, REPORT LUNS, MAINTENANCE IN/OUT, REQUEST SENSE and the echo-buffer
  modes; anything else NOT READY, 04/0C (TARGET PORT IN UNAVAILABLE STATE);
- offline: INQUIRY, REPORT LUNS and REQUEST SENSE (so that a host can still identify the
  path); anything else NOT READY, 04/12 (TARGET PORT IN OFFLINE STATE).
A state change gives every nexus in contact with each LU the unit attention ASYMMETRIC
ACCESS STATE CHANGED (2A/06); the LU raises it (disk.py).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .sense import Asc, Sense, SenseKey

__all__ = ["ASYMMETRIC_ACCESS_STATE_CHANGED", "AluaState", "PortGroup", "PortGroups"]

ASYMMETRIC_ACCESS_STATE_CHANGED = Asc(0x2A, 0x06)
TARGET_PORT_IN_STANDBY_STATE = Asc(0x04, 0x0B)
TARGET_PORT_IN_UNAVAILABLE_STATE = Asc(0x04, 0x0C)
TARGET_PORT_IN_OFFLINE_STATE = Asc(0x04, 0x12)


class AluaState(enum.IntEnum):
    """ASYMMETRIC ACCESS STATE values (SPC-4 table 163)."""

    ACTIVE_OPTIMIZED = 0x0
    ACTIVE_NON_OPTIMIZED = 0x1
    STANDBY = 0x2
    UNAVAILABLE = 0x3
    OFFLINE = 0xE

    @property
    def label(self) -> str:
        """The name `fcsoft ctl alua` takes: active-optimized, standby ..."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> AluaState:
        key = str(text).strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"ALUA state must be one of {names}, not {text!r}") from None


#: SUPPORTED bits of a descriptor (byte 1): O_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP
_SUPPORTED = 0x40 | 0x08 | 0x04 | 0x02 | 0x01
#: STATUS CODE 02h: the state was altered by implicit asymmetric access behaviour
STATUS_ALTERED_IMPLICITLY = 0x02

_INQUIRY, _REQUEST_SENSE, _REPORT_LUNS = 0x12, 0x03, 0xA0
_MAINTENANCE_IN, _MAINTENANCE_OUT = 0xA3, 0xA4
_READ_BUFFER, _WRITE_BUFFER = 0x3C, 0x3B
_ECHO_BUFFER_MODES = (0x0A, 0x0B)  # echo buffer / echo buffer descriptor (READ BUFFER)
_STANDBY_OK = frozenset({
    _INQUIRY, 0x4C, 0x4D,  # LOG SELECT, LOG SENSE
    0x15, 0x55, 0x1A, 0x5A,  # MODE SELECT(6)/(10), MODE SENSE(6)/(10)
    _REPORT_LUNS, 0x1C, 0x1D,  # RECEIVE DIAGNOSTIC RESULTS, SEND DIAGNOSTIC
    _MAINTENANCE_IN, _MAINTENANCE_OUT, _REQUEST_SENSE,
    0x5E, 0x5F,  # PERSISTENT RESERVE IN/OUT
})
_UNAVAILABLE_OK = frozenset({_INQUIRY, _REPORT_LUNS, _MAINTENANCE_IN, _MAINTENANCE_OUT,
                             _REQUEST_SENSE})
_OFFLINE_OK = frozenset({_INQUIRY, _REPORT_LUNS, _REQUEST_SENSE})


@dataclass(slots=True)
class PortGroup:
    """One target port group: its id, its ports (relative target port identifiers) and
    its state."""

    id: int
    ports: tuple[int, ...]
    state: AluaState = AluaState.ACTIVE_OPTIMIZED
    status: int = 0  # STATUS CODE of its RTPG descriptor
    changes: int = field(default=0)


class PortGroups:
    """The target port groups of one array."""

    def __init__(self, groups: Mapping[int, Iterable[int]]) -> None:
        self.groups: dict[int, PortGroup] = {
            gid: PortGroup(gid, tuple(sorted(ports))) for gid, ports in sorted(groups.items())}
        self._of: dict[int, PortGroup] = {p: g for g in self.groups.values() for p in g.ports}
        #: every group active (optimized or not): no command is refused anywhere, which the
        #: LU checks first, so that the usual case costs one attribute read per command
        self.all_active = True

    def group_of(self, relative_port: int) -> PortGroup | None:
        return self._of.get(relative_port)

    def group_id(self, relative_port: int) -> int:
        g = self._of.get(relative_port)
        return g.id if g is not None else 0

    def state_of(self, relative_port: int) -> AluaState:
        g = self._of.get(relative_port)
        return g.state if g is not None else AluaState.ACTIVE_OPTIMIZED

    def set_state(self, group_id: int, state: AluaState) -> bool:
        """Change a group's state; True when it changed (KeyError for an unknown group)."""
        g = self.groups[group_id]
        if g.state == state:
            return False
        g.state = state
        g.status = STATUS_ALTERED_IMPLICITLY
        g.changes += 1
        self.all_active = all(x.state in (AluaState.ACTIVE_OPTIMIZED,
                                          AluaState.ACTIVE_NON_OPTIMIZED)
                              for x in self.groups.values())
        return True

    def check(self, cdb: bytes, relative_port: int) -> Sense | None:
        """The NOT READY sense a command meets through this port's state, or None."""
        state = self.state_of(relative_port)
        if state in (AluaState.ACTIVE_OPTIMIZED, AluaState.ACTIVE_NON_OPTIMIZED) or not cdb:
            return None
        op = cdb[0]
        if state is AluaState.STANDBY:
            allowed, code = _STANDBY_OK, TARGET_PORT_IN_STANDBY_STATE
        elif state is AluaState.UNAVAILABLE:
            allowed, code = _UNAVAILABLE_OK, TARGET_PORT_IN_UNAVAILABLE_STATE
        else:
            allowed, code = _OFFLINE_OK, TARGET_PORT_IN_OFFLINE_STATE
        if op in allowed:
            return None
        if state is not AluaState.OFFLINE and op in (_READ_BUFFER, _WRITE_BUFFER) and \
                len(cdb) > 1 and cdb[1] & 0x1F in _ECHO_BUFFER_MODES:
            return None
        return Sense(SenseKey.NOT_READY, code)

    def report(self, *, extended: bool = False) -> bytes:
        """REPORT TARGET PORT GROUPS parameter data (SPC-4 6.36.2), untruncated: one
        descriptor per group (state, supported states, group id, status code, its ports).
        `extended`: the extended header (FORMAT TYPE 001b, implicit transition time 0)."""
        body = b"".join(
            struct.pack(">BBHxBBB", int(g.state), _SUPPORTED, g.id, g.status, 0, len(g.ports))
            + b"".join(struct.pack(">2xH", p) for p in g.ports)
            for g in self.groups.values())
        if extended:
            return struct.pack(">IBBxx", len(body) + 4, 0x10, 0) + body
        return struct.pack(">I", len(body)) + body

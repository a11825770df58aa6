"""Persistent reservation state: types, registrations, reservation and the APTPL file.

APTPL state file (format "fcsoft-pr-aptpl", version 1): one UTF-8 JSON object,

    {
      "format": "fcsoft-pr-aptpl",
      "version": 1,
      "aptpl": true,                       # the last valid APTPL bit received
      "registrations": [                   # in registration order (READ KEYS order)
        {"initiator": "10:00:00:00:c9:00:00:01",   # initiator port WWPN
         "target": "50:01:43:80:00:00:00:01",      # target port WWPN
         "relative_port": 1,                       # its relative target port identifier
         "key": "0x00000000000000ab",              # reservation key, hex string (64-bit safe)
         "all_tg_pt": false}
      ],
      "reservation": null                  # or {"type": 1..8, "scope": 0,
                                           #     "holder": {"initiator": ..., "target": ...}}
    }                                      # ("holder" is null for types 7 and 8)

PRGENERATION is not stored: SPC-4 resets it to 0 at power on, APTPL or not (docs/behaviour.md 3).
APTPL=0 is written as `"aptpl": false` with no registrations and no reservation ("no
registrations", LIO's wording). Anything else that does not parse, or that contradicts
itself (a holder that is not registered, a duplicate nexus, a zero key), raises
`AptplStateError` naming the file: state is never silently dropped.

Writes are atomic and durable (docs/behaviour.md 3): a temporary file in the same directory is
written, flushed and fsync'ed, renamed over the final path, then the directory is fsync'ed,
all before the command that changed the state returns. A crash leaves either the old file
or the new one at the final path, never a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

from fcsoft.wire.wwn import WWN

from .types import Nexus

FORMAT = "fcsoft-pr-aptpl"
VERSION = 1


class PrType(IntEnum):
    """Persistent reservation types (SPC-4 6.15.2, table 170)."""

    WR_EX = 0x1     # Write Exclusive
    EX_AC = 0x3     # Exclusive Access
    WR_EX_RO = 0x5  # Write Exclusive - Registrants Only
    EX_AC_RO = 0x6  # Exclusive Access - Registrants Only
    WR_EX_AR = 0x7  # Write Exclusive - All Registrants
    EX_AC_AR = 0x8  # Exclusive Access - All Registrants

    @property
    def all_registrants(self) -> bool:
        """Types 7/8: every registrant is a reservation holder."""
        return self in (PrType.WR_EX_AR, PrType.EX_AC_AR)

    @property
    def registrants_only(self) -> bool:
        return self in (PrType.WR_EX_RO, PrType.EX_AC_RO)


class Registration(NamedTuple):
    """One registered I_T nexus: its reservation key and whether it was registered through
    ALL_TG_PT=1 (reported in READ FULL STATUS)."""

    key: int
    all_tg_pt: bool = False


@dataclass(frozen=True, slots=True)
class Reservation:
    """The persistent reservation. `holder` is the holding nexus, None for types 7/8 (where
    every registrant holds it). Scope is always 0h (LU_SCOPE)."""

    type: PrType
    holder: Nexus | None
    scope: int = 0


# --- APTPL file ----------------------------------------------------------------------------


class AptplStateError(ValueError):
    """The APTPL state file exists but cannot be used. The message names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: persistent reservation (APTPL) state is unusable: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PrState:
    """What survives a power loss with APTPL=1."""

    aptpl: bool
    registrations: dict[Nexus, Registration]
    reservation: Reservation | None


def _nexus_json(n: Nexus) -> dict[str, Any]:
    return {"initiator": str(n.initiator), "target": str(n.target)}


def dump_state(state: PrState) -> bytes:
    """The file contents for `state` (see the module docstring). With APTPL off nothing
    is kept: the file says "no registrations"."""
    if not state.aptpl:
        state = PrState(False, {}, None)
    regs = [{"initiator": str(n.initiator), "target": str(n.target),
             "relative_port": n.relative_port, "key": f"{r.key:#018x}",
             "all_tg_pt": r.all_tg_pt} for n, r in state.registrations.items()]
    res = state.reservation
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "aptpl": state.aptpl,
        "registrations": regs,
        "reservation": None if res is None else {
            "type": int(res.type), "scope": res.scope,
            "holder": None if res.holder is None else _nexus_json(res.holder)},
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _field(obj: Any, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise ValueError(f"{where}: missing {name!r}")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: {name!r} has the wrong type ({type(value).__name__})")
    return value


def _wwn(obj: Any, name: str, where: str) -> WWN:
    text = _field(obj, name, str, where)
    try:
        return WWN.parse(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not a WWN") from None


def parse_state(data: bytes, ports: dict[WWN, int] | None = None) -> PrState:
    """Parse file contents; raises ValueError (with a reason) on anything malformed.
    `ports` (target WWPN -> relative port id) overrides stored relative port ids, so a
    renumbered port keeps its registrations."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("top level is not an object")  # noqa: TRY004 (a parse error)
    if doc.get("format") != FORMAT:
        raise ValueError(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(f"version {doc.get('version')!r} is not supported (expected {VERSION})")
    aptpl = _field(doc, "aptpl", bool, "top level")
    raw_regs = _field(doc, "registrations", list, "top level")
    if "reservation" not in doc:
        raise ValueError("top level: missing 'reservation'")
    registrations: dict[Nexus, Registration] = {}
    by_pair: dict[tuple[WWN, WWN], Nexus] = {}
    for i, r in enumerate(raw_regs):
        where = f"registrations[{i}]"
        initiator = _wwn(r, "initiator", where)
        target = _wwn(r, "target", where)
        rtpi = _field(r, "relative_port", int, where)
        if not 0 <= rtpi <= 0xFFFF:
            raise ValueError(f"{where}: relative_port {rtpi} out of range")
        key_text = _field(r, "key", str, where)
        try:
            key = int(key_text, 16)
        except ValueError:
            raise ValueError(f"{where}: key {key_text!r} is not hex") from None
        if not 0 < key <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError(f"{where}: key {key_text!r} must be a non-zero 64-bit value")
        all_tg_pt = _field(r, "all_tg_pt", bool, where)
        if (initiator, target) in by_pair:
            raise ValueError(f"{where}: nexus {initiator}->{target} registered twice")
        nexus = Nexus(initiator, target, (ports or {}).get(target, rtpi))
        by_pair[(initiator, target)] = nexus
        registrations[nexus] = Registration(key, all_tg_pt)
    raw_res = doc["reservation"]
    reservation: Reservation | None = None
    if raw_res is not None:
        where = "reservation"
        try:
            rtype = PrType(_field(raw_res, "type", int, where))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        scope = _field(raw_res, "scope", int, where)
        if scope != 0:
            raise ValueError(f"{where}: scope {scope} is not LU_SCOPE (0)")
        if "holder" not in raw_res:
            raise ValueError(f"{where}: missing 'holder'")
        raw_holder = raw_res["holder"]
        holder: Nexus | None = None
        if rtype.all_registrants:
            if raw_holder is not None:
                raise ValueError(f"{where}: type {rtype.name} has no single holder")
            if not registrations:
                raise ValueError(f"{where}: {rtype.name} reservation with no registrants")
        else:
            if raw_holder is None:
                raise ValueError(f"{where}: type {rtype.name} needs a holder")
            pair = (_wwn(raw_holder, "initiator", f"{where}.holder"),
                    _wwn(raw_holder, "target", f"{where}.holder"))
            if pair not in by_pair:
                raise ValueError(f"{where}: holder {pair[0]}->{pair[1]} is not registered")
            holder = by_pair[pair]
        reservation = Reservation(rtype, holder, scope)
    if not aptpl and (registrations or reservation is not None):
        raise ValueError("APTPL is off yet registrations are stored")
    return PrState(aptpl, registrations, reservation)


def load_state(path: Path, ports: dict[WWN, int] | None = None) -> PrState | None:
    """The state stored at `path`; None when there is no file. Raises AptplStateError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AptplStateError(path, f"cannot read it ({e.strerror or e})") from e
    try:
        return parse_state(data, ports)
    except ValueError as e:
        raise AptplStateError(path, str(e)) from None


def write_state_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash at any point leaves the old or the new
    contents at `path`, never a mix: temp file in the same directory, write, flush, fsync,
    rename, fsync the directory."""
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

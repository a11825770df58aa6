"""The SCSI front of one storage array: its logical units, LUN masking, and dispatch.

One `ScsiArray` per configured array, shared by all of its target ports. It builds one
`LogicalUnit` per [[array.lun]] (one LU whatever port or LUN number reaches it: same NAA
identifier, same reservation state, docs/behaviour.md 3) and a LUN map per initiator from the
[[array.host]] entries, then routes each command by (initiator WWPN, LUN number):

- REPORT LUNS, to any LUN number (mapped or not, LUN 0 included), answers GOOD with the
  initiator's own LUN numbers; an empty list when none is mapped (docs/behaviour.md 3; not LIO's
  "LUN 0 always"). It clears REPORTED LUNS DATA HAS CHANGED for that nexus on every LU.
- A mapped LUN number goes to its LU (precheck / execute, see disk.py).
- An unmapped LUN number (SPC-4 / SAM-5, SAM-5 / SPC-4):
  INQUIRY answers standard data with peripheral qualifier 011b and type 1Fh (byte 0 = 7Fh);
  a VPD request gets page 00h (listing only itself) or INVALID FIELD IN CDB for other pages;
  REQUEST SENSE answers GOOD with ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED (25/00) as its
  sense data; anything else gets CHECK CONDITION, ILLEGAL REQUEST, 25/00.
- An initiator that is in no host entry sees no LUNs at all.

The maps can change at run time (`set_host_luns`, `map_lun`, `unmap_lun`); every nexus of
the host that has been in contact with the array then finds REPORTED LUNS DATA HAS CHANGED
(3F/0E) pending on each LU still mapped to it (LIO raises it the same way).

Relative target port identifiers are the ports' positions in `ports` (config order), from 1.
A command whose Nexus carries another relative port for a known target port is normalised
(the reservation engine keys its state the same way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fcsoft.config import MAX_LUN_NUMBER, ArrayConfig, LunConfig
from fcsoft.wire.wwn import WWN

from .alua import AluaState, PortGroups
from .backing import Backing
from .cdb import Opcode, check_reserved_bits, command_info
from .disk import LogicalUnit, report_luns_data
from .inquiry import (
    PQ_NOT_SUPPORTED,
    LuIdentity,
    lu_naa_designator,
    parse_inquiry_cdb,
    standard_inquiry,
    vpd_page,
)
from .sense import (
    INVALID_COMMAND_OPERATION_CODE,
    LOGICAL_UNIT_NOT_SUPPORTED,
    CheckCondition,
    Sense,
    SenseKey,
    illegal_request,
    invalid_field_in_cdb,
)
from .types import Command, Deferral, Nexus, Result

__all__ = ["ScsiArray", "aptpl_path_for", "default_engine_factory"]

_NOT_SUPPORTED = Sense(SenseKey.ILLEGAL_REQUEST, LOGICAL_UNIT_NOT_SUPPORTED)


def aptpl_path_for(lu: LogicalUnit) -> Path | None:
    """Where a LU keeps persistent reservations across power loss (APTPL): beside its
    backing file, with ".aptpl" appended; None for a memory-backed LU (APTPL unsupported)."""
    backing = lu.config.backing
    if backing == "memory":
        return None
    return Path(f"{backing}.aptpl")


def default_engine_factory(lu: LogicalUnit, *,
                           initiator_allowed: Callable[[WWN, WWN], bool] | None = None,
                           fault: str | None = None) -> Any:
    """The production reservation engine for `lu`: fcsoft.scsi.reservations.ReservationEngine
    (imported here, when first needed), sharing the LU's unit attentions."""
    from fcsoft.scsi.reservations import ReservationEngine

    extra: dict[str, Any] = {}
    if initiator_allowed is not None:
        extra["initiator_allowed"] = initiator_allowed
    if fault is not None:
        extra["fault"] = fault
    return ReservationEngine(lu.unit_attentions, lu.abort_tasks, dict(lu.ports),
                             aptpl_path=aptpl_path_for(lu), **extra)


class ScsiArray:
    """LUN masking and dispatch for one array (module docstring).

    `ports`: the target port WWPNs, relative port identifiers 1..n in this order (default:
    config.ports). `abort_tasks(victims, caller, luns)`: the transport's hook for PREEMPT AND
    ABORT (abort the outstanding commands of the `victims` nexuses addressed to LUN numbers
    in `luns`); it may return the nexuses that had commands aborted, or a count. `fault`:
    passed to the reservation engine (test switches, None in production). `engine_factory`
    replaces the default engine (tests). `backings`: LU name -> store, instead of opening
    what the config names (tests).
    """

    def __init__(self, config: ArrayConfig, ports: Sequence[WWN] | None = None, *,
                 abort_tasks: Callable[..., Any] | None = None, fault: str | None = None,
                 engine_factory: Callable[[LogicalUnit], Any] | None = None,
                 backings: Mapping[str, Backing] | None = None) -> None:
        self.config = config
        self.ports: tuple[WWN, ...] = tuple(WWN(p) for p in (config.ports if ports is None
                                                              else ports))
        self._rtpi = {wwpn: i + 1 for i, wwpn in enumerate(self.ports)}
        self.abort_tasks = abort_tasks
        self.fault = fault
        self._identity = LuIdentity(config.vendor, config.product, bytes(16), config.node_wwn,
                                    multiport=len(self.ports) > 1)
        # host name -> (initiators, LUN number -> LU name)
        self._hosts: dict[str, tuple[tuple[WWN, ...], dict[int, str]]] = {
            h.name: (h.initiators, dict(h.luns)) for h in config.hosts}
        self._maps: dict[WWN, dict[int, LogicalUnit]] = {}
        self._host_of: dict[WWN, str] = {}
        self._nexuses: set[Nexus] = set()  # every nexus that sent a command
        self.units: dict[str, LogicalUnit] = {}
        self.port_groups = PortGroups(self._group_map(config))
        #: some LU has a completion latency (fcsoft ctl lu-latency): the transport looks
        #: the LU up for each command only while this is set
        self.any_latency = False
        self._engine_factory = engine_factory
        backings = backings or {}
        try:
            for i, lun in enumerate(config.luns):
                lu = LogicalUnit(config, i, ports=self._rtpi, backing=backings.get(lun.name),
                                 engine_factory=engine_factory or self._engine_for)
                self._attach(lu)
        except BaseException:
            self.discard()
            raise
        self._rebuild()

    def _attach(self, lu: LogicalUnit) -> None:
        lu.on_abort_tasks = self._abort
        lu.lun_lister = self.luns_of
        lu.port_groups = self.port_groups
        self.units[lu.name] = lu

    def _group_map(self, config: ArrayConfig) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for wwpn, rtpi in self._rtpi.items():
            gid = config.port_group_of(rtpi) if wwpn in config.ports else rtpi
            groups.setdefault(gid, []).append(rtpi)
        return groups

    # --- run-time changes (fcsoft ctl): each validates everything before it changes anything

    def relative_port_of(self, port: WWN | int) -> int:
        """The relative target port identifier of a port given by WWPN or by that number;
        KeyError when the array has no such port."""
        if isinstance(port, WWN):
            rtpi = self._rtpi.get(port)
            if rtpi is None:
                raise KeyError(f"array {self.config.name!r} has no port {port}")
            return rtpi
        if not 1 <= port <= len(self.ports):
            raise KeyError(f"array {self.config.name!r} has no port {port} (1.."
                           f"{len(self.ports)})")
        return port

    def set_alua_state(self, port: WWN | int, state: AluaState) -> tuple[int, bool]:
        """Set the ALUA state of the target port group holding `port`; (group id, whether
        the state changed). Every LU's nexuses get 2A/06 on a change."""
        rtpi = self.relative_port_of(port)
        group = self.port_groups.group_of(rtpi)
        assert group is not None
        changed = self.port_groups.set_state(group.id, state)
        if changed:
            for lu in self.units.values():
                lu.alua_changed()
        return group.id, changed

    def nexuses_seeing(self, lu: LogicalUnit) -> list[Nexus]:
        """The nexuses in contact with the array whose initiator has `lu` mapped."""
        return [n for n in self._nexuses if self._reaches(n.initiator, lu)]

    def add_lu(self, lun: LunConfig) -> LogicalUnit:
        """A new LU (not mapped to anyone yet). ValueError (or ConfigError) when its name,
        NAA name or serial number is taken, or its backing cannot be opened; nothing
        changes then."""
        if lun.name in self.units:
            raise ValueError(f"array {self.config.name!r} already has an LU {lun.name!r}")
        new_config = dataclasses.replace(self.config, luns=(*self.config.luns, lun))
        naa = lun.naa or lu_naa_designator(self.config.node_wwn, lun.name)
        serial = lun.serial or naa.hex().upper()
        for other in self.units.values():
            if other.naa == naa:
                raise ValueError(f"NAA name {naa.hex()} is already LU {other.name!r}'s")
            if other.serial == serial:
                raise ValueError(f"serial number {serial!r} is already LU {other.name!r}'s")
            if lun.backing != "memory" and other.config.backing == lun.backing:
                raise ValueError(f"{lun.backing} is already the backing of LU {other.name!r}")
        lu = LogicalUnit(new_config, len(new_config.luns) - 1, ports=self._rtpi,
                         engine_factory=self._engine_factory or self._engine_for)
        self.config = new_config
        self._attach(lu)
        return lu

    def remove_lu(self, name: str) -> None:
        """Remove an unmapped LU and close its backing (a backing file stays where it is).
        KeyError for an unknown LU, ValueError while a host has it mapped."""
        lu = self.units.get(name)
        if lu is None:
            raise KeyError(f"array {self.config.name!r} has no LU {name!r}")
        for host, (_initiators, luns) in self._hosts.items():
            for number, lu_name in luns.items():
                if lu_name == name:
                    raise ValueError(f"LU {name!r} is mapped to host {host!r} as LUN "
                                     f"{number}: unmap it first")
        del self.units[name]
        self.config = dataclasses.replace(
            self.config, luns=tuple(c for c in self.config.luns if c.name != name))
        lu.close()

    def resize_lu(self, name: str, size: int) -> None:
        """Change an LU's size (LogicalUnit.resize: 2A/09 to the nexuses that see it)."""
        lu = self.units.get(name)
        if lu is None:
            raise KeyError(f"array {self.config.name!r} has no LU {name!r}")
        lu.resize(size, self.nexuses_seeing(lu))
        self.config = dataclasses.replace(self.config, luns=tuple(
            lu.config if c.name == name else c for c in self.config.luns))

    def hosts(self) -> dict[str, tuple[tuple[WWN, ...], dict[int, str]]]:
        """Every host entry: name -> (initiators, LUN number -> LU name), copies."""
        return {h: (inits, dict(luns)) for h, (inits, luns) in self._hosts.items()}

    def _engine_for(self, lu: LogicalUnit) -> Any:
        return default_engine_factory(
            lu, initiator_allowed=lambda initiator, _port: self._reaches(initiator, lu),
            fault=self.fault)

    # --- maps --------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        self._maps.clear()
        self._host_of.clear()
        for host, (initiators, luns) in self._hosts.items():
            lun_map = {number: self.units[name] for number, name in luns.items()}
            for wwpn in initiators:
                self._maps[wwpn] = lun_map
                self._host_of[wwpn] = host

    def _reaches(self, initiator: WWN, lu: LogicalUnit) -> bool:
        return any(u is lu for u in self._maps.get(initiator, {}).values())

    def luns_of(self, nexus: Nexus | WWN) -> list[int]:
        """The LUN numbers an initiator (or a nexus's initiator) sees, ascending."""
        initiator = nexus.initiator if isinstance(nexus, Nexus) else nexus
        return sorted(self._maps.get(initiator, ()))

    def lun_visible(self, nexus: Nexus, lun: int) -> bool:
        """Whether `lun` is mapped for the nexus's initiator (task management checks)."""
        return lun in self._maps.get(nexus.initiator, ())

    def lookup(self, nexus: Nexus, lun: int) -> LogicalUnit | None:
        """The LU behind LUN number `lun` for this nexus, None if unmapped."""
        return self._maps.get(nexus.initiator, {}).get(lun)

    def host_luns(self, host: str) -> dict[int, str]:
        """A host entry's current map: LUN number -> LU name (a copy)."""
        return dict(self._hosts[host][1])

    def set_host_luns(self, host: str, mapping: Mapping[int, str]) -> None:
        """Replace host `host`'s LUN map (LUN number -> LU name). Raises KeyError for an
        unknown host or LU, ValueError for a bad LUN number or an LU mapped twice."""
        initiators, _ = self._hosts[host]
        new = dict(mapping)
        names: set[str] = set()
        for number, name in new.items():
            self._check_number(number)
            if name not in self.units:
                raise KeyError(f"array {self.config.name!r} has no LU {name!r}")
            if name in names:
                raise ValueError(f"LU {name!r} is mapped twice for host {host!r}")
            names.add(name)
        self._change(host, initiators, new)

    def map_lun(self, who: str | WWN, lun: int, lu_name: str) -> None:
        """Map LU `lu_name` as LUN number `lun` for a host (by name) or an initiator (WWPN;
        one that is in no host entry gets an entry of its own, named after it)."""
        host = self._host_for(who, create=True)
        initiators, luns = self._hosts[host]
        self._check_number(lun)
        if lu_name not in self.units:
            raise KeyError(f"array {self.config.name!r} has no LU {lu_name!r}")
        if lun in luns:
            raise ValueError(f"LUN {lun} is already mapped for host {host!r} "
                             f"(to {luns[lun]!r})")
        if lu_name in luns.values():
            raise ValueError(f"LU {lu_name!r} is already mapped for host {host!r}")
        self._change(host, initiators, {**luns, lun: lu_name})

    def unmap_lun(self, who: str | WWN, lun: int) -> None:
        """Remove LUN number `lun` from a host's (or an initiator's host's) map. KeyError if
        it is not mapped."""
        host = self._host_for(who, create=False)
        initiators, luns = self._hosts[host]
        if lun not in luns:
            raise KeyError(f"LUN {lun} is not mapped for host {host!r}")
        self._change(host, initiators, {n: name for n, name in luns.items() if n != lun})

    @staticmethod
    def _check_number(number: int) -> None:
        if not 0 <= number <= MAX_LUN_NUMBER:
            raise ValueError(f"LUN number must be 0..{MAX_LUN_NUMBER}, not {number}")

    def _host_for(self, who: str | WWN, *, create: bool) -> str:
        if not isinstance(who, WWN):
            if who in self._hosts:
                return who
            try:
                who = WWN.parse(who)
            except ValueError:
                raise KeyError(f"array {self.config.name!r} has no host {who!r}") from None
        host = self._host_of.get(who)
        if host is not None:
            return host
        if not create:
            raise KeyError(f"initiator {who} is in no host entry of array "
                           f"{self.config.name!r}")
        name = str(who)
        if name in self._hosts:
            raise ValueError(f"a host entry named {name!r} already exists")
        self._hosts[name] = ((who,), {})
        self._rebuild()
        return name

    def _change(self, host: str, initiators: tuple[WWN, ...], luns: dict[int, str]) -> None:
        if luns == self._hosts[host][1]:
            return
        self._hosts[host] = (initiators, luns)
        self._rebuild()
        members = set(initiators)
        affected = [n for n in self._nexuses if n.initiator in members]
        for name in set(luns.values()):
            self.units[name].luns_changed(affected)

    # --- commands ---------------------------------------------------------------------------

    def _canonical(self, cmd: Command) -> Command:
        nexus = cmd.nexus
        rtpi = self._rtpi.get(nexus.target)
        if rtpi is None or rtpi == nexus.relative_port:
            return cmd
        return dataclasses.replace(cmd, nexus=Nexus(nexus.initiator, nexus.target, rtpi))

    def _nexus(self, nexus: Nexus) -> Nexus:
        rtpi = self._rtpi.get(nexus.target)
        if rtpi is None or rtpi == nexus.relative_port:
            return nexus
        return Nexus(nexus.initiator, nexus.target, rtpi)

    def deferral(self, cmd: Command) -> Deferral | None:
        """How a command that passed its precheck must be run (disk.py); None: at once."""
        lu = self.lookup(cmd.nexus, cmd.lun)
        return lu.deferral(cmd) if lu is not None else None

    def data_out_sink(self, cmd: Command) -> Callable[[int, memoryview], None] | None:
        """Where a WRITE's data may go as it arrives (disk.py), or None."""
        lu = self.lookup(cmd.nexus, cmd.lun)
        return lu.data_out_sink(cmd) if lu is not None else None

    def fast_read(self, nexus: Nexus, lun: int, cdb: bytes, expected: int
                  ) -> bytes | bytearray | memoryview | None:
        """A READ's data when the general path (precheck, then execute) would answer it
        GOOD with exactly `expected` bytes and nothing else to do (LogicalUnit.fast_read);
        None: take the general path. Only for a nexus that has been in contact before
        (its first command goes the general way, which records it) and whose target port
        keeps its relative port number."""
        rtpi = self._rtpi.get(nexus.target)
        if (rtpi is not None and rtpi != nexus.relative_port) or nexus not in self._nexuses:
            return None
        lu = self._maps.get(nexus.initiator, {}).get(lun)
        return lu.fast_read(nexus, cdb, expected) if lu is not None else None

    def precheck(self, cmd: Command) -> Result | None:
        """Masking, then the LU's precheck (disk.py); None when the command may go on."""
        cmd = self._canonical(cmd)
        self._nexuses.add(cmd.nexus)
        cdb = cmd.cdb
        op = cdb[0] if cdb else -1
        if op == Opcode.REPORT_LUNS:
            try:
                report_luns_data(self._validated(cdb), (), cmd.lun)
            except CheckCondition as exc:
                return Result.check(exc.sense)
            return None
        lu = self.lookup(cmd.nexus, cmd.lun)
        if lu is not None:
            return lu.precheck(cmd)
        if op in (Opcode.INQUIRY, Opcode.REQUEST_SENSE):
            return None  # answered by execute
        return Result.check(_NOT_SUPPORTED)

    def execute(self, cmd: Command) -> Result:
        """Run a command that passed `precheck`."""
        cmd = self._canonical(cmd)
        cdb = cmd.cdb
        op = cdb[0] if cdb else -1
        lu = self.lookup(cmd.nexus, cmd.lun)
        try:
            if op == Opcode.REPORT_LUNS:
                data = report_luns_data(self._validated(cdb), self.luns_of(cmd.nexus), cmd.lun)
                for unit in set(self._maps.get(cmd.nexus.initiator, {}).values()):
                    unit.report_luns_seen(cmd.nexus)
                return Result(data=data)
            if lu is not None:
                return lu.execute(cmd)
            if op == Opcode.INQUIRY:
                return self._unmapped_inquiry(cmd)
            if op == Opcode.REQUEST_SENSE:
                cdb = self._validated(cdb)
                return Result(data=_NOT_SUPPORTED.encode()[:cdb[4]])
        except CheckCondition as exc:
            return Result.check(exc.sense)
        return Result.check(_NOT_SUPPORTED)

    @staticmethod
    def _validated(cdb: bytes) -> bytes:
        """The CDB padded to its length, with its reserved bits checked."""
        info = command_info(cdb[0])
        if info is None:
            raise illegal_request(INVALID_COMMAND_OPERATION_CODE, 0)
        if len(cdb) < info.cdb_length:
            cdb = bytes(cdb).ljust(info.cdb_length, b"\0")
        check_reserved_bits(cdb, info)
        return cdb

    def _unmapped_inquiry(self, cmd: Command) -> Result:
        evpd, page, alloc = parse_inquiry_cdb(self._validated(cmd.cdb))
        if not evpd:
            data = standard_inquiry(self._identity, PQ_NOT_SUPPORTED)
        elif page == 0x00:
            data = vpd_page(0x00, self._identity, None,  # type: ignore[arg-type]
                            target_port=cmd.nexus.target, relative_port=0,
                            peripheral=PQ_NOT_SUPPORTED, pages=(0x00,))
        else:
            raise invalid_field_in_cdb(2)
        return Result(data=data[:alloc])

    def data_out_length(self, cmd: Command) -> int:
        """Bytes of data-out the command's CDB asks for (0 if none, or unmapped)."""
        lu = self.lookup(cmd.nexus, cmd.lun)
        return 0 if lu is None else lu.data_out_length(cmd.cdb)

    # --- events ------------------------------------------------------------------------------

    def nexus_lost(self, nexus: Nexus) -> None:
        """I_T nexus loss (logout, link loss, RSCN): every LU drops what dies with it (SPC-2
        reservations) and queues I_T NEXUS LOSS OCCURRED for when it comes back."""
        nexus = self._nexus(nexus)
        for lu in self.units.values():
            lu.nexus_lost(nexus)

    def lun_reset(self, nexus: Nexus, lun: int) -> bool:
        """LOGICAL UNIT RESET of the LU behind `lun` for this nexus; False if unmapped."""
        lu = self.lookup(self._nexus(nexus), lun)
        if lu is None:
            return False
        lu.reset("lun")
        return True

    def target_reset(self, nexus: Nexus) -> None:
        """TARGET RESET: every LU of the array is reset."""
        for lu in self.units.values():
            lu.reset("target")

    def _abort(self, lu: LogicalUnit, victims: set[Nexus], caller: Nexus) -> Iterable[Nexus] | None:
        """A reservation engine's abort request, passed to the transport's hook with the
        LUN numbers through which the victims reach `lu`."""
        if self.abort_tasks is None:
            return ()
        luns: Collection[int] = {number for v in victims
                                 for number, unit in self._maps.get(v.initiator, {}).items()
                                 if unit is lu}
        aborted = self.abort_tasks(victims, caller, luns)
        if isinstance(aborted, int) and not isinstance(aborted, bool):
            return None if aborted else ()  # a count: who exactly is unknown
        return aborted  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close every LU's backing store (file locks are released). Idempotent."""
        for lu in self.units.values():
            lu.close()

    def discard(self) -> None:
        """`close`, and remove the backing files opening the LUs created (a failed start)."""
        for lu in self.units.values():
            lu.discard()

    def __enter__(self) -> ScsiArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

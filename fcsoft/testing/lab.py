"""`LabHandle`: what the `fcsoft_lab` fixture gives a test — hosts to log in with, and the
running fabric and arrays for run-time changes and assertions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fcsoft.config import Config, load_builtin, load_config, parse_config
from fcsoft.initiator import open_host
from fcsoft.wire.wwn import WWN

if TYPE_CHECKING:
    from fcsoft.control.ops import LabControl


def load_lab_config(source: str | Path | None, base_dir: Path | None = None) -> Config:
    """None: the built-in lab; text containing a newline or '=': TOML; else a file path
    (relative to `base_dir`)."""
    if source is None:
        return load_builtin()
    if isinstance(source, str) and ("\n" in source or "=" in source):
        return parse_config(source, source="<fcsoft_config marker>", base_dir=base_dir)
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return load_config(path)


class LabHandle:
    """A running fabric with its arrays (fcsoft.server.process.Lab underneath)."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the fabric listens on."""
        return self.lab.address

    @property
    def config(self) -> Config:
        return self.lab.config

    # -- hosts -----------------------------------------------------------------------
    def host(self, wwpn: WWN | str, wwnn: WWN | str | None = None, **kw: Any) -> Any:
        """`async with fcsoft_lab.host(wwpn) as host:` a host N_Port logged in over TCP
        and registered (see fcsoft.initiator.open_host for the options)."""
        return open_host(self.address, wwpn, wwnn, **kw)

    # -- the fabric ------------------------------------------------------------------
    @property
    def fabric(self) -> Any:
        """The fabric core (fcsoft.fabric.Fabric): counters, port records, zoning."""
        return self.lab.fabric

    def name_server(self) -> list[Any]:
        """Every name-server record, in N_Port_ID order (fcsoft.fabric.records.PortRecord)."""
        return [r for r in self.lab.fabric.db if r.in_name_server]

    def logged_in(self, wwpn: WWN | str) -> bool:
        return self.lab.fabric.port(wwpn) is not None

    def set_zones(self, zones: Mapping[str, Iterable[WWN | str]] | None,
                  default_zone: str | None = None) -> None:
        """Replace the zone set (name -> member WWPNs); RSCNs follow."""
        z = None if zones is None else {k: [WWN(m) for m in v] for k, v in zones.items()}
        self.lab.server.apply(lambda now: self.lab.fabric.set_zoning(z, now, default_zone))

    def logout(self, wwpn: WWN | str) -> bool:
        """Log one port out of the fabric, as a switch administrator would."""
        return bool(self.lab.server.apply(lambda now: self.lab.fabric.logout_port(wwpn, now)))

    def drop_link(self, wwpn: WWN | str) -> bool:
        """Close the TCP (or in-process) link the port with `wwpn` is logged in over."""
        rec = self.lab.fabric.port(wwpn)
        if rec is None:
            return False
        link = self.lab.server.links.get(rec.link_id)
        if link is None:
            return False
        link.close("dropped by the test")
        return True

    # -- arrays ----------------------------------------------------------------------
    def array(self, name: str | None = None) -> Any:
        """The running array (fcsoft.server.array_runner.ArrayRuntime); the only one when
        `name` is None."""
        if name is None:
            if len(self.lab.arrays) != 1:
                raise ValueError("this lab has several arrays: name one")
            return self.lab.arrays[0]
        return self.lab.array(name)

    def scsi(self, name: str | None = None) -> Any:
        """The array's SCSI front (fcsoft.scsi.array.ScsiArray): LUN maps, LUs,
        reservation state."""
        return self.array(name).scsi

    def target_ports(self, name: str | None = None) -> list[WWN]:
        return [p.wwpn for p in self.array(name).ports]

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await self.lab.wait_ready(timeout)

    # -- the control operations (the same code as the HTTP API: fcsoft.control.ops) ----
    @property
    def control(self) -> LabControl:
        """Every operation of `fcsoft ctl`, returning what the API returns as JSON."""
        return self.lab.control  # type: ignore[no-any-return]

    @property
    def control_address(self) -> tuple[str, int] | None:
        """Where the control API listens, when the config has [control] listen."""
        return self.lab.control_address  # type: ignore[no-any-return]

    def switchshow(self) -> dict[str, Any]:
        """Links, N_Ports (NPIV under their link), disabled ports, counters, faults."""
        return self.control.switchshow()

    def zoneshow(self) -> dict[str, Any]:
        """Zones, the default zone and who sees whom."""
        return self.control.zoneshow()

    def portshow(self, port: WWN | str | int) -> dict[str, Any]:
        """One port by WWPN or N_Port_ID: login, link counters, discards, sessions."""
        return self.control.portshow(port)

    def zone_set(self, name: str, members: Iterable[WWN | str]) -> dict[str, Any]:
        """Create or replace one zone (the others stay); RSCNs follow."""
        return self.control.zone_set(name, [str(m) for m in members])

    def zone_delete(self, name: str) -> dict[str, Any]:
        return self.control.zone_delete(name)

    def disable_port(self, wwpn: WWN | str) -> dict[str, Any]:
        """`fcsoft ctl port disable`: an array port's link goes down and stays down; a
        host's link (or ENode) is dropped and its logins refused until enabled."""
        return self.control.port_disable(wwpn)

    async def enable_port(self, wwpn: WWN | str, *, wait: float = 10.0) -> dict[str, Any]:
        """`fcsoft ctl port enable` (async: waits up to `wait` seconds for an array port to
        log in again; 0 returns at once)."""
        return await self.control.port_enable(wwpn, wait=wait)

    async def wait_port_online(self, wwpn: WWN | str, timeout: float = 10.0) -> bool:
        """Wait until the port is logged in (and registered, for an array port)."""
        return await self.control.wait_port_online(wwpn, timeout)

    def set_alua(self, array: str, port: WWN | str | int, state: str) -> dict[str, Any]:
        """ALUA state of the target port group holding `port` (WWPN or relative port)."""
        return self.control.alua(array, str(port), state)

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """Install a fault rule: action="drop"|"delay"|"duplicate"|"corrupt", delay_ms,
        s_id, d_id, wwpn, r_ctl, type, els, ct, opcodes, direction, probability, count."""
        return self.control.fault_add(spec)

    def clear_faults(self, rule_id: int | None = None) -> dict[str, Any]:
        return self.control.fault_clear(rule_id)

    def lu_error(self, array: str, lu: str, **spec: Any) -> dict[str, Any]:
        """Make an LU fail: sense="3/11/00" or status="busy"|"task-set-full", ops, count,
        probability (`fcsoft ctl lu-error`)."""
        return self.control.lu_error(array, lu, **spec)

    def lu_latency(self, array: str, lu: str, ms: int) -> dict[str, Any]:
        """Complete the LU's commands `ms` milliseconds late (0: on time)."""
        return self.control.lu_latency(array, lu, ms)

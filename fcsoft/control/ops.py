"""`LabControl`: every operation on a running lab, in one place, behind both the HTTP API
(fcsoft.control.api) and the pytest handle (fcsoft.testing.lab.LabHandle).

Views return JSON-ready data (dicts, lists, strings, numbers: docs/control.md gives the
shapes); changes validate everything they are given before they change anything, log what
changed, and raise `ControlError` (an HTTP status and a one-line reason) for bad input, so
that no request leaves half a change behind. Everything here runs in the lab's trio thread;
the only methods that wait are async (`port_enable`, `wait_port_online`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from fcsoft import logs, names
from fcsoft.config import ConfigError, LunConfig, parse_size
from fcsoft.fabric.faults import FaultError, parse_opcodes
from fcsoft.logs import get_logger
from fcsoft.scsi.alua import AluaState
from fcsoft.scsi.inject import InjectedError
from fcsoft.wire.ns import FcpFeatures
from fcsoft.wire.wwn import WWN

if TYPE_CHECKING:
    from fcsoft.server.array_runner import ArrayRuntime, PortDriver
    from fcsoft.server.process import Lab

__all__ = ["ControlError", "LabControl", "parse_port_id"]

FCP_TYPE = 0x08


class ControlError(Exception):
    """A request that cannot be carried out: `status` (HTTP, 4xx) and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message.replace("\n", " "))
        self.status = status
        self.message = str(self)


def _bad(message: str) -> ControlError:
    return ControlError(400, message)


def _missing(message: str) -> ControlError:
    return ControlError(404, message)


def _conflict(message: str) -> ControlError:
    return ControlError(409, message)


def _wwn(value: Any, what: str = "WWPN") -> WWN:
    if isinstance(value, WWN):
        return value
    try:
        return WWN.parse(str(value))
    except (ValueError, TypeError):
        raise _bad(f"bad {what} {str(value)[:60]!r} (use 8 colon-separated hex bytes)") \
            from None


def parse_port_id(text: str) -> WWN | int:
    """A WWPN (colon form, or 16 hex digits) or an N_Port_ID (6 hex digits, 0x allowed)."""
    t = str(text).strip()
    bare = t.lower().removeprefix("0x")
    if len(bare) <= 6 and bare and all(c in "0123456789abcdef" for c in bare):
        return int(bare, 16)
    return _wwn(t, "WWPN or N_Port_ID")


def _fcid(value: int | None) -> str | None:
    return None if value is None else names.fcid(value)


def _host_name(host: str) -> str:
    """A host argument as the array names its entry: an initiator WWPN in colon form."""
    try:
        return str(WWN.parse(host))
    except ValueError:
        return host


def _role(rec: Any) -> str:
    features = rec.fc4_features.get(FCP_TYPE, 0)
    roles = [name for bit, name in ((FcpFeatures.INITIATOR, "initiator"),
                                    (FcpFeatures.TARGET, "target")) if features & bit]
    return "+".join(roles) or ("fcp" if FCP_TYPE in rec.fc4_types else "")


class LabControl:
    """Operations on one running `Lab` (fcsoft.server.process)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.log = get_logger(component="control")
        self._state_cache: tuple[float, str] | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def fabric(self) -> Any:
        return self.lab.fabric

    @property
    def server(self) -> Any:
        return self.lab.server

    def _array(self, name: str) -> ArrayRuntime:
        try:
            return self.lab.array(name)
        except KeyError:
            have = ", ".join(a.name for a in self.lab.arrays) or "none"
            raise _missing(f"no array named {name!r} (arrays: {have})") from None

    def _lu(self, array: str, name: str) -> Any:
        runtime = self._array(array)
        lu = runtime.scsi.units.get(name)
        if lu is None:
            raise _missing(f"array {array!r} has no LU {name!r}")
        return lu

    def _array_port(self, wwpn: WWN) -> tuple[ArrayRuntime, PortDriver] | None:
        for runtime in self.lab.arrays:
            driver = runtime.driver(wwpn)
            if driver is not None:
                return runtime, driver
        return None

    def _link_kind(self, link: Any) -> str:
        from fcsoft.server.fcoe_server import EnodeLink

        if isinstance(link, EnodeLink):
            return "fcoe"
        peers = {f"{a.name}/{p.relative_port}" for a in self.lab.arrays for p in a.ports}
        return "array" if link.peer in peers else "tcp"

    def _zones_of(self, wwpn: WWN) -> list[str]:
        return sorted(self.fabric.zoning.zones_of(wwpn))

    def _port_record(self, rec: Any, link: Any) -> dict[str, Any]:
        fab_link = self.fabric.links.get(rec.link_id)
        base = fab_link.base_fcid if fab_link is not None else None
        return {
            "fcid": _fcid(rec.fcid), "wwpn": str(rec.wwpn), "wwnn": str(rec.wwnn),
            "login": "FLOGI" if rec.fcid == base else "FDISC",
            "symbolic_name": rec.symbolic_port_name.decode("utf-8", "replace"),
            "role": _role(rec), "zones": self._zones_of(rec.wwpn),
            "link": rec.link_id,
        }

    def _link_counters(self, link_id: int) -> dict[str, int]:
        out: Counter[str] = Counter()
        record = self.fabric.links.get(link_id)
        if record is not None:
            out.update(record.counters)
        link = self.server.links.get(link_id)
        if link is not None:
            out.update(getattr(link, "counters", {}))
        faults = self.server.faults
        if faults is not None and faults.by_link.get(link_id):
            out["faults_injected"] = faults.by_link[link_id]
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ views
    def switchshow(self) -> dict[str, Any]:
        """The fabric: identity, every link with its N_Ports (NPIV ones under their link),
        disabled ports, counters and injected faults."""
        fab = self.fabric
        links = []
        for link_id, link in sorted(self.server.links.items()):
            record = fab.links.get(link_id)
            ports = []
            if record is not None:
                for fcid in sorted(record.fcids, key=lambda f: (f != record.base_fcid, f)):
                    rec = fab.db.get(fcid)
                    if rec is not None:
                        ports.append(self._port_record(rec, link))
            state = record.state.value if record is not None else "down"
            links.append({"id": link_id, "name": link.name, "peer": link.peer,
                          "kind": self._link_kind(link),
                          "state": "online" if ports else state, "ports": ports,
                          "counters": self._link_counters(link_id)})
        faults = self.server.faults
        return {
            "fabric": {"name": fab.conf.name, "domain_id": fab.domain_id,
                       "wwn": str(fab.fabric_name), "default_zone": fab.zoning.default_zone,
                       "zones": len(fab.zoning.zones), "links": len(links),
                       "ports": len(fab.db),
                       "address": f"{self.lab.address[0]}:{self.lab.address[1]}"},
            "links": links,
            "disabled": [self._disabled_entry(w) for w in sorted(fab.disabled)],
            "counters": dict(sorted(fab.counters.items())),
            "faults": {"rules": len(faults.rules) if faults is not None else 0,
                       "injected": dict(faults.counters) if faults is not None else {}},
        }

    def _disabled_entry(self, wwpn: WWN) -> dict[str, Any]:
        kind = "array" if self._array_port(wwpn) is not None else "host"
        return {"wwpn": str(wwpn), "kind": kind,
                "logged_in": self.fabric.port(wwpn) is not None}

    def nsshow(self) -> list[dict[str, Any]]:
        """Every name-server object, in N_Port_ID order."""
        db = self.fabric.db
        out = []
        for rec in db:
            if not rec.in_name_server:
                continue
            out.append({
                "fcid": _fcid(rec.fcid), "wwpn": str(rec.wwpn), "wwnn": str(rec.wwnn),
                "port_type": rec.port_type,
                "symbolic_port_name": rec.symbolic_port_name.decode("utf-8", "replace"),
                "symbolic_node_name": db.symbolic_node_names.get(rec.wwnn, b"").decode(
                    "utf-8", "replace"),
                "fc4_types": sorted(f"{t:#04x}" for t in rec.fc4_types),
                "fc4_features": {f"{t:#04x}": f for t, f in sorted(rec.fc4_features.items())},
                "role": _role(rec), "scr": rec.scr_function, "link": rec.link_id,
            })
        return out

    def zoneshow(self, *, visibility: bool = True) -> dict[str, Any]:
        """Zones with their members (online or not), the default zone, who sees whom
        (`visibility`: a list per logged-in port, so quadratic in their number)."""
        fab = self.fabric
        zoning = fab.zoning
        zones = [{"name": name, "members": [
            {"wwpn": str(m), "online": fab.port(m) is not None} for m in sorted(members)]}
            for name, members in sorted(zoning.zones.items())]
        out = {"default_zone": zoning.default_zone, "zoned": zoning.zoned,
               "default_applies": not zoning.zoned, "zones": zones}
        if visibility:
            ports = list(fab.db)
            out["visibility"] = [
                {"wwpn": str(p.wwpn), "fcid": _fcid(p.fcid),
                 "sees": [str(q.wwpn) for q in ports
                          if q is not p and zoning.visible(p.wwpn, q.wwpn)]} for p in ports]
        return out

    def portshow(self, port: str | WWN | int) -> dict[str, Any]:
        """One port by WWPN or N_Port_ID: its login, link and counters (frames, discards by
        reason, injected faults), name-server entry, zones, and the sessions (PLOGI) it
        has with array ports, or, for an array port, with initiators."""
        key = parse_port_id(port) if isinstance(port, str) else port
        fab = self.fabric
        rec = fab.db.get(key) if not isinstance(key, WWN) else fab.port(key)
        wwpn = rec.wwpn if rec is not None else key
        array_port = self._array_port(wwpn) if isinstance(wwpn, WWN) else None
        if rec is None and array_port is None and wwpn not in fab.disabled:
            what = f"N_Port_ID {key:06x}" if isinstance(key, int) and \
                not isinstance(key, WWN) else f"WWPN {key}"
            raise _missing(f"no port with {what} is logged in")
        out: dict[str, Any] = {"wwpn": str(wwpn), "state": "online" if rec else "offline",
                               "disabled": wwpn in fab.disabled}
        if rec is not None:
            link = self.server.links.get(rec.link_id)
            out.update(self._port_record(rec, link))
            out["link"] = {"id": rec.link_id, "name": getattr(link, "name", "?"),
                           "peer": getattr(link, "peer", "?"),
                           "kind": self._link_kind(link) if link is not None else "?",
                           "counters": self._link_counters(rec.link_id)}
            out["name_server"] = {"registered": rec.in_name_server,
                                  "session": rec.ns_session, "scr": rec.scr_function,
                                  "fc4_types": sorted(f"{t:#04x}" for t in rec.fc4_types),
                                  "rscns": rec.rscns}
            record = fab.links.get(rec.link_id)
            out["discards"] = {k.removeprefix("discard_"): v for k, v in
                               sorted(record.counters.items()) if k.startswith("discard_")} \
                if record is not None else {}
        else:
            out["zones"] = self._zones_of(wwpn) if isinstance(wwpn, WWN) else []
        faults = self.server.faults
        out["faults_injected"] = (faults.by_link.get(rec.link_id, 0)
                                  if faults is not None and rec is not None else 0)
        if array_port is not None:
            runtime, driver = array_port
            tp = driver.port
            out["array"] = runtime.name
            out["relative_port"] = tp.relative_port
            out["port_group"] = runtime.scsi.port_groups.group_id(tp.relative_port)
            out["alua_state"] = runtime.scsi.port_groups.state_of(tp.relative_port).label
            out["target_counters"] = dict(sorted(tp.counters.items()))
            out["sessions"] = [{"initiator": str(s.wwpn), "s_id": _fcid(s.s_id),
                                "prli": s.image_pair, "outstanding": len(s.exchanges)}
                               for s in tp.sessions.values()]
        else:
            out["sessions"] = [
                {"array": a.name, "target": str(p.wwpn), "prli": s.image_pair,
                 "outstanding": len(s.exchanges)}
                for a in self.lab.arrays for p in a.ports for s in p.sessions.values()
                if s.wwpn == wwpn]
        return out

    def arrays(self) -> list[dict[str, Any]]:
        """Every array: identity, ports (state, N_Port_ID, port group, ALUA state, sessions),
        port groups, LU and host counts."""
        out = []
        for runtime in self.lab.arrays:
            scsi = runtime.scsi
            ports = []
            for driver in runtime.drivers:
                tp = driver.port
                ports.append({
                    "wwpn": str(tp.wwpn), "relative_port": tp.relative_port,
                    "fcid": _fcid(tp.fcid) if tp.ready else None,
                    "state": "disabled" if driver.disabled else
                    ("online" if tp.ready else tp.fabric.state.value),
                    "port_group": scsi.port_groups.group_id(tp.relative_port),
                    "alua_state": scsi.port_groups.state_of(tp.relative_port).label,
                    "sessions": len(tp.sessions)})
            out.append({
                "name": runtime.name, "node_wwn": str(runtime.conf.node_wwn),
                "vendor": runtime.conf.vendor, "product": runtime.conf.product,
                "ports": ports,
                "port_groups": [{"id": g.id, "ports": list(g.ports), "state": g.state.label}
                                for g in scsi.port_groups.groups.values()],
                "luns": len(scsi.units), "hosts": len(scsi.hosts())})
        return out

    def luns(self, array: str) -> dict[str, Any]:
        """An array's LUs (size, backing, identity, where they are mapped, injected errors,
        latency, reservation holders) and its host entries."""
        runtime = self._array(array)
        scsi = runtime.scsi
        hosts = scsi.hosts()
        lus = []
        for lu in scsi.units.values():
            backing = lu.config.backing
            maps = [{"host": h, "lun": n} for h, (_i, m) in hosts.items()
                    for n, name in sorted(m.items()) if name == lu.name]
            res = lu.reservations
            lus.append({
                "name": lu.name, "size": lu.blocks * lu.block_size, "blocks": lu.blocks,
                "block_size": lu.block_size,
                "backing": "memory" if backing == "memory" else f"file:{backing}",
                "naa": lu.naa.hex(), "serial": lu.serial, "maps": maps,
                "error": lu.injected.describe() if lu.injected is not None else None,
                "latency_ms": getattr(lu, "latency_ms", 0),
                "reservation": self._reservation(res),
                "registrations": len(res.registrations),
            })
        return {"array": runtime.name, "luns": lus,
                "hosts": [{"name": h, "initiators": [str(i) for i in inits],
                           "luns": {str(n): name for n, name in sorted(m.items())}}
                          for h, (inits, m) in hosts.items()]}

    @staticmethod
    def _reservation(res: Any) -> dict[str, Any] | None:
        r = res.reservation
        spc2 = res.spc2_holder
        if r is None and spc2 is None:
            return None
        if r is None:
            return {"type": "SPC-2 RESERVE", "holders": [str(spc2.initiator)],
                    "target": str(spc2.target)}
        return {"type": r.type.name, "scope": r.scope,
                "holders": sorted({str(n.initiator) for n in res.holders}),
                "all_registrants": r.holder is None}

    def pr(self, array: str, lu_name: str) -> dict[str, Any]:
        """An LU's persistent reservation state: PRGENERATION, APTPL, registrations (with
        who holds the reservation), the reservation, an SPC-2 reservation."""
        lu = self._lu(array, lu_name)
        res = lu.reservations
        holders = res.holders
        regs = [{"initiator": str(n.initiator), "target": str(n.target),
                 "relative_port": n.relative_port, "key": f"{reg.key:#018x}",
                 "all_tg_pt": reg.all_tg_pt, "holder": n in holders}
                for n, reg in res.registrations.items()]
        r = res.reservation
        reservation = None
        if r is not None:
            reservation = {"type": r.type.name, "type_code": int(r.type), "scope": r.scope,
                           "holder": None if r.holder is None else
                           {"initiator": str(r.holder.initiator),
                            "target": str(r.holder.target)},
                           "all_registrants": r.holder is None}
        spc2 = res.spc2_holder
        return {"array": array, "lu": lu_name, "generation": res.generation,
                "aptpl": res.aptpl_active, "registrations": regs,
                "reservation": reservation,
                "spc2_reservation": None if spc2 is None else
                {"initiator": str(spc2.initiator), "target": str(spc2.target)}}

    def counters(self) -> dict[str, Any]:
        """Every counter: the fabric's, each link's, each array port's, injected faults."""
        faults = self.server.faults
        return {
            "fabric": dict(sorted(self.fabric.counters.items())),
            "links": {str(i): self._link_counters(i) for i in sorted(self.server.links)},
            "array_ports": {str(p.wwpn): dict(sorted(p.counters.items()))
                            for a in self.lab.arrays for p in a.ports},
            "fcoe": {f.settings.name: dict(sorted(f.forwarder.counters.items()))
                     for f in self.lab.fcfs},
            "faults": dict(faults.counters) if faults is not None else {},
        }

    def state(self) -> dict[str, Any]:
        """Everything the web page draws, in one object (zoneshow without `visibility`)."""
        return {"switch": self.switchshow(), "zones": self.zoneshow(visibility=False),
                "arrays": [{**a, **self.luns(a["name"])} for a in self.arrays()],
                "faults": self.fault_list(), "log_level": logs.current_level()}

    def state_json(self, max_age: float = 0.0) -> str:
        """`state()` as compact JSON, computed at most once per `max_age` seconds however
        many pages are watching (the event streams share it)."""
        now = trio.current_time()
        cached = self._state_cache
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        text = json.dumps(self.state(), separators=(",", ":"))
        self._state_cache = (now, text)
        return text

    # ------------------------------------------------------------------ zoning
    def _set_zoning(self, zones: dict[str, list[WWN]] | None, default: str | None) -> None:
        fab = self.fabric
        self.server.apply(lambda now: fab.set_zoning(zones, now, default))

    def _zones(self) -> dict[str, list[WWN]]:
        return {k: sorted(v) for k, v in self.fabric.zoning.zones.items()}

    def zone_set(self, name: str, members: list[str]) -> dict[str, Any]:
        """Create or replace zone `name` with `members` (WWPNs); RSCNs follow."""
        if not isinstance(name, str) or not name.strip() or not name.isprintable() or \
                len(name) > 64:
            raise _bad(f"bad zone name {str(name)[:60]!r} (1..64 printable characters)")
        if not isinstance(members, list) or not members:
            raise _bad("a zone needs at least one member WWPN")
        wwpns = [_wwn(m) for m in members]
        if len(set(wwpns)) != len(wwpns):
            dup = next(w for w in wwpns if wwpns.count(w) > 1)
            raise _bad(f"{dup} is listed twice")
        zones = self._zones()
        old = zones.get(name)
        zones[name] = wwpns
        self._set_zoning(zones, None)
        self.log.info("zone set", zone=name, members=[str(w) for w in wwpns],
                      previous=[str(w) for w in old] if old is not None else None)
        return self.zoneshow()

    def zone_delete(self, name: str) -> dict[str, Any]:
        zones = self._zones()
        if name not in zones:
            raise _missing(f"no zone named {name!r}")
        del zones[name]
        self._set_zoning(zones, None)
        self.log.info("zone deleted", zone=name)
        return self.zoneshow()

    def zone_default(self, mode: str) -> dict[str, Any]:
        if mode not in ("allow", "deny"):
            raise _bad(f"default zone must be 'allow' or 'deny', not {str(mode)[:20]!r}")
        self._set_zoning(self._zones(), mode)
        self.log.info("default zone set", default_zone=mode,
                      applies=not self.fabric.zoning.zoned)
        return self.zoneshow()

    # ------------------------------------------------------------------ ports
    def port_disable(self, wwpn: str | WWN) -> dict[str, Any]:
        """Disable a port. An array port: its link goes down and stays down (the fabric
        logs it out, RSCNs follow). A host's FLOGI port (TCP link or FCoE ENode): its
        link is dropped (an ENode gets Clear Virtual Links) and its FLOGI refused until
        enabled. An NPIV port: logged out (LOGO from the fabric) and its FDISC refused."""
        w = _wwn(wwpn)
        fab = self.fabric
        array_port = self._array_port(w)
        rec = fab.port(w)
        if array_port is None and rec is None and w not in fab.disabled:
            raise _missing(f"no port with WWPN {w} is logged in or belongs to an array")
        changed = fab.set_port_disabled(w, True)
        kind = "array"
        if array_port is not None:
            changed = array_port[1].disable() or changed
        elif rec is not None:
            link = self.server.links.get(rec.link_id)
            record = fab.links.get(rec.link_id)
            kind = self._link_kind(link) if link is not None else "tcp"
            if record is not None and rec.fcid == record.base_fcid and link is not None:
                link.close("port disabled")
            else:
                kind += "-npiv"
                self.server.apply(lambda now: fab.logout_port(w, now, "port disabled"))
        else:
            kind = "host"
        self.log.info("port disabled by the administrator", wwpn=w, kind=kind,
                      changed=changed)
        return {"wwpn": str(w), "kind": kind, "disabled": True, "changed": changed}

    async def port_enable(self, wwpn: str | WWN, *, wait: float = 0.0) -> dict[str, Any]:
        """Enable a disabled port: an array port logs in again (with `wait`, this returns
        once it has, or after that many seconds); a host may log in again."""
        w = _wwn(wwpn)
        fab = self.fabric
        array_port = self._array_port(w)
        if array_port is None and w not in fab.disabled:
            if fab.port(w) is None:
                raise _missing(f"no port with WWPN {w} is disabled, logged in or belongs to "
                               "an array")
        changed = fab.set_port_disabled(w, False)
        if array_port is not None:
            changed = array_port[1].enable() or changed
        self.log.info("port enabled by the administrator", wwpn=w, changed=changed)
        online = fab.port(w) is not None
        if array_port is not None and wait > 0:
            online = await self.wait_port_online(w, timeout=wait)
        return {"wwpn": str(w), "disabled": False, "changed": changed, "online": online}

    async def wait_port_online(self, wwpn: str | WWN, timeout: float = 10.0) -> bool:
        """Wait until the port is logged in (an array port: registered too); False when
        `timeout` seconds pass first."""
        w = _wwn(wwpn)
        array_port = self._array_port(w)
        with trio.move_on_after(timeout):
            while True:
                if array_port is not None:
                    if array_port[1].port.ready and self.fabric.port(w) is not None:
                        return True
                elif self.fabric.port(w) is not None:
                    return True
                await trio.sleep(0.02)
        return False

    # ------------------------------------------------------------------ LUs and maps
    def lun_add(self, array: str, name: str, size: str | int, *, block_size: int = 512,
                backing: str = "memory") -> dict[str, Any]:
        """A new LU, not mapped yet. `backing`: "memory" or "file:/absolute/path" (created
        sparse when missing, grown when smaller)."""
        runtime = self._array(array)
        try:
            nbytes = parse_size(size)
        except (ValueError, TypeError) as exc:
            raise _bad(f"size: {exc}") from None
        if isinstance(block_size, bool) or not isinstance(block_size, int):
            raise _bad(f"block_size must be 512 or 4096, not {block_size!r}")
        where: Any = "memory"
        if backing != "memory":
            text = backing.removeprefix("file:") if isinstance(backing, str) else ""
            if not text or not Path(text).is_absolute():
                raise _bad(f"backing must be 'memory' or 'file:' and an absolute path, not "
                           f"{str(backing)[:80]!r}")
            where = Path(text)
        try:
            lun = LunConfig(name, nbytes, block_size, where)
            runtime.scsi.add_lu(lun)
        except ConfigError as exc:
            raise _bad(f"{exc.key}: {exc.problem}" if exc.key else exc.problem) from None
        except KeyError as exc:
            raise _missing(str(exc.args[0])) from None
        except (ValueError, OSError) as exc:
            raise _conflict(str(exc)) from None
        self.log.info("LU added", array=array, lu=name, size=nbytes, block_size=block_size,
                      backing=str(where))
        return next(u for u in self.luns(array)["luns"] if u["name"] == name)

    def lun_resize(self, array: str, name: str, size: str | int) -> dict[str, Any]:
        """Change an LU's size; every nexus that sees it gets 2A/09."""
        runtime = self._array(array)
        lu = self._lu(array, name)
        try:
            nbytes = parse_size(size)
        except (ValueError, TypeError) as exc:
            raise _bad(f"size: {exc}") from None
        old = lu.blocks * lu.block_size
        try:
            runtime.scsi.resize_lu(name, nbytes)
        except (ValueError, OSError) as exc:
            raise _conflict(str(exc)) from None
        self.log.info("LU resized", array=array, lu=name, size=nbytes, from_size=old)
        return next(u for u in self.luns(array)["luns"] if u["name"] == name)

    def lun_remove(self, array: str, name: str) -> dict[str, Any]:
        runtime = self._array(array)
        self._lu(array, name)
        try:
            runtime.scsi.remove_lu(name)
        except ValueError as exc:
            raise _conflict(str(exc)) from None
        self.log.info("LU removed", array=array, lu=name)
        return {"array": array, "removed": name}

    def _lun_number(self, lun: Any) -> int:
        try:
            n = int(lun)
        except (TypeError, ValueError):
            raise _bad(f"bad LUN number {str(lun)[:20]!r}") from None
        if isinstance(lun, bool) or not 0 <= n <= 16383:
            raise _bad(f"LUN number must be 0..16383, not {lun!r}")
        return n

    def map(self, array: str, host: str, lun: Any, lu_name: str) -> dict[str, Any]:
        """Map LU `lu_name` as LUN `lun` for a host entry (by name) or an initiator WWPN
        (one in no host entry gets an entry of its own); its nexuses get 3F/0E."""
        runtime = self._array(array)
        number = self._lun_number(lun)
        self._lu(array, lu_name)
        try:
            runtime.scsi.map_lun(host, number, lu_name)
        except KeyError as exc:
            raise _missing(str(exc.args[0])) from None
        except ValueError as exc:
            raise _conflict(str(exc)) from None
        self.log.info("LUN mapped", array=array, host=_host_name(host), lun=number, lu=lu_name)
        return self.luns(array)

    def unmap(self, array: str, host: str, lun: Any) -> dict[str, Any]:
        runtime = self._array(array)
        number = self._lun_number(lun)
        try:
            runtime.scsi.unmap_lun(host, number)
        except KeyError as exc:
            raise _missing(str(exc.args[0])) from None
        self.log.info("LUN unmapped", array=array, host=_host_name(host), lun=number)
        return self.luns(array)

    def alua(self, array: str, port: str | int, state: str) -> dict[str, Any]:
        """Set the ALUA state of the target port group holding `port` (a WWPN or relative
        port number); every nexus of every LU of the array gets 2A/06."""
        runtime = self._array(array)
        try:
            new = AluaState.parse(state)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        key: WWN | int
        text = str(port).strip()
        key = int(text) if text.isdigit() else _wwn(text, "port (WWPN or relative port)")
        try:
            group, changed = runtime.scsi.set_alua_state(key, new)
        except KeyError as exc:
            raise _missing(str(exc.args[0])) from None
        port_key = {"wwpn": key} if isinstance(key, WWN) else {"relative_port": key}
        self.log.info("ALUA state set", array=array, **port_key, port_group=group,
                      state=new.label, changed=changed)
        return {"array": array, "port_group": group, "state": new.label, "changed": changed,
                "port_groups": [{"id": g.id, "ports": list(g.ports), "state": g.state.label}
                                for g in runtime.scsi.port_groups.groups.values()]}

    def log_level(self, level: str) -> dict[str, Any]:
        try:
            logs.set_level(level)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.log.warning("log level set", level=logs.current_level())
        return {"level": logs.current_level()}

    # ------------------------------------------------------------------ faults
    def fault_add(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Install a fault rule (fcsoft.fabric.faults: criteria, action, count/probability)."""
        try:
            injector = self.server.fault_injector()
            rule = injector.add(spec)
        except FaultError as exc:
            raise _bad(str(exc)) from None
        return rule.describe()  # type: ignore[no-any-return]

    def fault_list(self) -> dict[str, Any]:
        faults = self.server.faults
        if faults is None:
            return {"rules": [], "injected": {}, "held_back": 0}
        return faults.describe()  # type: ignore[no-any-return]

    def fault_clear(self, rule_id: Any = None) -> dict[str, Any]:
        faults = self.server.faults
        if rule_id is None:
            removed = faults.clear() if faults is not None else 0
            return {"removed": removed}
        try:
            n = int(rule_id)
        except (TypeError, ValueError):
            raise _bad(f"bad fault id {str(rule_id)[:20]!r}") from None
        if faults is None or faults.remove(n) is None:
            raise _missing(f"no fault with id {n}")
        return {"removed": 1}

    def lu_error(self, array: str, lu_name: str, *, sense: str | None = None,
                 status: str | None = None, ops: Any = None, count: int | None = None,
                 probability: float | None = None) -> dict[str, Any]:
        """Make an LU answer CHECK CONDITION with `sense` (KEY/ASC/ASCQ), or BUSY / TASK SET
        FULL, for the operation codes `ops` (default: every command but INQUIRY, REPORT
        LUNS and REQUEST SENSE), `count` times and/or with `probability`."""
        lu = self._lu(array, lu_name)
        try:
            opcodes = parse_opcodes(ops, "ops") if ops not in (None, "", []) else None
            injected = InjectedError.build(sense=sense, status=status, opcodes=opcodes,
                                           count=count, probability=probability)
        except (FaultError, ValueError) as exc:
            raise _bad(str(exc)) from None
        lu.injected = injected
        # the log names the status, sense and operation codes (the API answers them in
        # the forms it takes)
        self.log.info("LU error injected", array=array, lu=lu_name, status=injected.status,
                      sense=injected.sense,
                      opcodes=sorted(injected.opcodes) if injected.opcodes else None, **{
                          k: v for k, v in injected.describe().items()
                          if v is not None and k not in ("hits", "status", "sense", "opcodes")})
        return injected.describe()

    def lu_error_clear(self, array: str, lu_name: str) -> dict[str, Any]:
        lu = self._lu(array, lu_name)
        had = lu.injected
        lu.injected = None
        self.log.info("LU error cleared", array=array, lu=lu_name,
                      hits=had.hits if had is not None else 0)
        return {"cleared": had is not None}

    def lu_latency(self, array: str, lu_name: str, ms: Any) -> dict[str, Any]:
        """Complete every command to the LU `ms` milliseconds late (0: no delay)."""
        lu = self._lu(array, lu_name)
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= 60_000:
            raise _bad(f"latency must be 0..60000 milliseconds, not {ms!r}")
        lu.latency_ms = ms
        scsi = self._array(array).scsi
        scsi.any_latency = any(u.latency_ms for u in scsi.units.values())
        self.log.info("LU latency set", array=array, lu=lu_name, ms=ms)
        return {"array": array, "lu": lu_name, "latency_ms": ms}

"""`fcsoft ctl`: the control API's command-line client (docs/control.md).

    fcsoft ctl [--control URL] [--token-file FILE] [--json] COMMAND ...

Human tables by default, the server's JSON with --json. Exit status: 0 done, 1 the server
refused (its one-line reason on stderr), 2 bad usage, 3 the server cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fcsoft.errors import UserError

DEFAULT_URL = "http://127.0.0.1:3227"
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
ALUA_STATES = ("active-optimized", "active-non-optimized", "standby", "unavailable",
               "offline")

__all__ = ["add_parser", "request", "run_command", "DEFAULT_URL"]


class Refused(UserError):
    """The server answered with an error."""


def request(base: str, method: str, path: str, body: Any = None, *, token: str | None = None,
            timeout: float = 30.0) -> Any:
    """One API call: the decoded JSON answer. Raises UserError with status 1 (refused) or
    3 (unreachable)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError):
            message = f"HTTP {exc.code} {exc.reason}"
        raise Refused(str(message), EXIT_REFUSED) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach the control API at {base}: {reason}",
                        EXIT_UNREACHABLE) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise UserError(f"{base} did not answer JSON (is it fcsoft's control API?)",
                        EXIT_UNREACHABLE) from None


# -- tables ------------------------------------------------------------------------------


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    return "\n".join(lines)


def _counters(c: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in c.items()) or "-"


# the API answers codes as hex text ("0x08"); the tables name them (fcsoft.names)
def _fc4_types(codes: list[str]) -> str:
    from fcsoft.names import fc_type

    return ", ".join(fc_type(int(c, 16)) for c in codes) or "-"


def _code(key: str, text: str) -> str:
    from fcsoft import names

    named = {"r_ctl": names.r_ctl, "type": names.fc_type}.get(key)
    try:
        return named(int(text, 16)) if named is not None else text
    except ValueError:
        return text


def _sense(text: str) -> str:
    from fcsoft.names import sense
    from fcsoft.scsi.inject import parse_sense

    try:
        return sense(parse_sense(text))
    except ValueError:
        return text


def show_switch(d: dict[str, Any]) -> str:
    f = d["fabric"]
    out = [(f"fabric {f['name']}  domain {f['domain_id']}  wwn {f['wwn']}  listening "
            f"{f['address']}"),
           (f"zones {f['zones']} (default zone {f['default_zone']})  links {f['links']}  "
            f"N_Ports {f['ports']}"), ""]
    rows = []
    for link in d["links"]:
        first = True
        for p in link["ports"] or [None]:
            lead = [link["id"], link["kind"], link["peer"], link["state"]] if first \
                else ["", "", "", ""]
            if p is None:
                rows.append(lead + ["", "", "", "", ""])
            else:
                rows.append(lead + [p["fcid"], p["wwpn"], p["login"], p["role"],
                                    ",".join(p["zones"])])
            first = False
    out.append(_table(rows, ["link", "kind", "peer", "state", "fcid", "wwpn", "login", "role",
                             "zones"]))
    out.append("")
    for link in d["links"]:
        out.append(f"link {link['id']} ({link['name']}): {_counters(link['counters'])}")
    for x in d["disabled"]:
        out.append(f"disabled: {x['wwpn']} ({x['kind']}"
                   f"{', still logged in' if x['logged_in'] else ''})")
    faults = d["faults"]
    out.append(f"faults: {faults['rules']} rule(s), injected {_counters(faults['injected'])}")
    out.append(f"fabric counters: {_counters(d['counters'])}")
    return "\n".join(out)


def show_ns(d: list[dict[str, Any]]) -> str:
    return _table([[r["fcid"], r["wwpn"], r["wwnn"], _fc4_types(r["fc4_types"]), r["role"],
                    r["scr"], r["symbolic_port_name"]] for r in d],
                  ["fcid", "wwpn", "wwnn", "fc4", "role", "scr", "symbolic name"])


def show_zones(d: dict[str, Any]) -> str:
    applies = " (applies: no zone defined)" if d["default_applies"] else " (not applied)"
    out = [f"default zone: {d['default_zone']}{applies}"]
    for z in d["zones"]:
        members = ", ".join(m["wwpn"] + ("" if m["online"] else " (offline)")
                            for m in z["members"])
        out.append(f"zone {z['name']}: {members}")
    out.append("")
    out.append(_table([[v["fcid"], v["wwpn"], ", ".join(v["sees"]) or "-"]
                       for v in d["visibility"]], ["fcid", "wwpn", "sees"]))
    return "\n".join(out)


def show_port(d: dict[str, Any]) -> str:
    out = [f"wwpn {d['wwpn']}  {d['state']}{'  DISABLED' if d['disabled'] else ''}"]
    if "fcid" in d:
        link = d["link"]
        out.append(f"fcid {d['fcid']}  wwnn {d['wwnn']}  {d['login']}  role {d['role'] or '-'}"
                   f"  zones {','.join(d['zones']) or '-'}")
        out.append(f"link {link['id']} {link['kind']} {link['name']} peer {link['peer']}")
        out.append(f"frames: {_counters(link['counters'])}")
        out.append(f"discards: {_counters(d['discards'])}")
        ns = d["name_server"]
        out.append(f"name server: registered={ns['registered']} session={ns['session']} "
                   f"scr={ns['scr']} fc4={_fc4_types(ns['fc4_types'])} "
                   f"rscns={ns.get('rscns', 0)}")
    out.append(f"faults injected: {d['faults_injected']}")
    if "array" in d:
        out.append(f"array {d['array']} port {d['relative_port']}  port group "
                   f"{d['port_group']} {d['alua_state']}")
        out.append(f"target counters: {_counters(d['target_counters'])}")
        rows = [[s["initiator"], s["s_id"], s["prli"], s["outstanding"]] for s in d["sessions"]]
        out.append(_table(rows, ["initiator", "s_id", "prli", "outstanding"]))
    else:
        rows = [[s["array"], s["target"], s["prli"], s["outstanding"]] for s in d["sessions"]]
        out.append(_table(rows, ["array", "target", "prli", "outstanding"]))
    return "\n".join(out)


def show_arrays(d: list[dict[str, Any]]) -> str:
    out = []
    for a in d:
        out.append(f"array {a['name']}  node {a['node_wwn']}  {a['vendor']} {a['product']}  "
                   f"LUs {a['luns']}  hosts {a['hosts']}")
        out.append(_table([[p["relative_port"], p["wwpn"], p["fcid"], p["state"],
                            p["port_group"], p["alua_state"], p["sessions"]]
                           for p in a["ports"]],
                          ["port", "wwpn", "fcid", "state", "tpg", "alua", "sessions"]))
        out.append("")
    return "\n".join(out).rstrip()


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n}B"


def show_luns(d: dict[str, Any]) -> str:
    rows = []
    for u in d["luns"]:
        maps = ", ".join(f"{m['host']}:{m['lun']}" for m in u["maps"]) or "-"
        res = u["reservation"]
        extra = []
        if u["error"]:
            e = u["error"]
            extra.append(f"error {_sense(e['sense']) if e['sense'] else e['status']}")
        if u["latency_ms"]:
            extra.append(f"latency {u['latency_ms']}ms")
        rows.append([u["name"], _size(u["size"]), u["block_size"], u["backing"], maps,
                     (f"{res['type']} {','.join(res['holders'])}" if res else "-"),
                     " ".join(extra)])
    out = [_table(rows, ["lu", "size", "block", "backing", "maps (host:lun)", "reservation",
                         ""]), ""]
    for h in d["hosts"]:
        luns = ", ".join(f"{n}={name}" for n, name in h["luns"].items()) or "-"
        out.append(f"host {h['name']}: {', '.join(h['initiators'])}  luns {luns}")
    return "\n".join(out)


def show_pr(d: dict[str, Any]) -> str:
    aptpl = "on" if d["aptpl"] else "off"
    out = [f"{d['array']}/{d['lu']}: PRGENERATION {d['generation']:#x}  APTPL {aptpl}"]
    r = d["reservation"]
    if r is None:
        out.append("reservation: none")
    else:
        holder = "all registrants" if r["all_registrants"] else \
            f"{r['holder']['initiator']} via {r['holder']['target']}"
        out.append(f"reservation: {r['type']} (type {r['type_code']}) held by {holder}")
    if d["spc2_reservation"]:
        s = d["spc2_reservation"]
        out.append(f"SPC-2 reservation: {s['initiator']} via {s['target']}")
    out.append(_table([[g["initiator"], g["target"], g["relative_port"], g["key"],
                        g["all_tg_pt"], "*" if g["holder"] else ""]
                       for g in d["registrations"]],
                      ["initiator", "target", "rtpi", "key", "all_tg_pt", "holder"]))
    return "\n".join(out)


def show_counters(d: dict[str, Any]) -> str:
    out = [f"fabric: {_counters(d['fabric'])}"]
    out += [f"link {k}: {_counters(v)}" for k, v in d["links"].items()]
    out += [f"array port {k}: {_counters(v)}" for k, v in d["array_ports"].items()]
    out += [f"fcoe {k}: {_counters(v)}" for k, v in d["fcoe"].items()]
    out.append(f"faults: {_counters(d['faults'])}")
    return "\n".join(out)


def show_faults(d: dict[str, Any]) -> str:
    rows = []
    for r in d["rules"]:
        what = " ".join(f"{k}={_code(k, r[k])}" for k in ("s_id", "d_id", "wwpn", "r_ctl",
                                                           "type", "els", "ct")
                        if r.get(k) is not None)
        if r.get("opcodes"):
            from fcsoft.names import opcode

            what += " opcodes=" + ",".join(opcode(int(o, 16)) for o in r["opcodes"])
        action = r["action"] + (f" {r['delay_ms']}ms" if r.get("delay_ms") else "")
        rows.append([r["id"], action, r["direction"], what or "any frame",
                     r["probability"] if r["probability"] is not None else "-",
                     r["count_left"] if r["count_left"] is not None else "-",
                     r["matched"], r["hits"]])
    return _table(rows, ["id", "action", "dir", "match", "prob", "left", "matched", "hits"]) + \
        f"\ninjected: {_counters(d['injected'])}"


def show_plain(d: Any) -> str:
    if isinstance(d, dict):
        return "\n".join(f"{k}: {v}" for k, v in d.items())
    return str(d)


# -- the command line ----------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ctl", help="see and change a running lab (the control API)",
                       description="Talk to the control API of a running `fcsoft serve` "
                       "(started with --control or [control] listen). Exit status: 0 done, 1 "
                       "refused by the server, 2 bad usage, 3 server unreachable.")
    p.add_argument("--control", metavar="URL",
                   default=os.environ.get("FCSOFT_CONTROL", DEFAULT_URL),
                   help=f"the control API (default: $FCSOFT_CONTROL or {DEFAULT_URL})")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the bearer token (default: $FCSOFT_CONTROL_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the server's JSON")
    cmds = p.add_subparsers(dest="ctl_command", metavar="COMMAND")
    cmds.required = True
    cmds.add_parser("switchshow", help="links, N_Ports and NPIV ports, counters")
    cmds.add_parser("nsshow", help="name-server objects")
    cmds.add_parser("zoneshow", help="zones, default zone, who sees whom")
    x = cmds.add_parser("portshow", help="one port: logins, sessions, frames, discards")
    x.add_argument("port", metavar="WWPN|FCID")
    cmds.add_parser("arrays", help="arrays, their ports and ALUA states")
    x = cmds.add_parser("luns", help="an array's LUs and host maps")
    x.add_argument("array")
    x = cmds.add_parser("pr", help="an LU's persistent reservation state")
    x.add_argument("array")
    x.add_argument("lu")
    cmds.add_parser("counters", help="every counter")

    z = cmds.add_parser("zone", help="zone set|delete|default")
    zs = z.add_subparsers(dest="zone_command", metavar="ACTION")
    zs.required = True
    x = zs.add_parser("set", help="create or replace a zone")
    x.add_argument("name")
    x.add_argument("members", nargs="+", metavar="WWPN")
    x = zs.add_parser("delete", help="remove a zone")
    x.add_argument("name")
    x = zs.add_parser("default", help="the default zone (used while no zone exists)")
    x.add_argument("mode", choices=("allow", "deny"))

    pt = cmds.add_parser("port", help="port disable|enable WWPN")
    pts = pt.add_subparsers(dest="port_command", metavar="ACTION")
    pts.required = True
    x = pts.add_parser("disable", help="take a port's link down and keep it down")
    x.add_argument("wwpn")
    x = pts.add_parser("enable", help="let a disabled port log in again")
    x.add_argument("wwpn")
    x.add_argument("--no-wait", action="store_true",
                   help="do not wait for an array port to log in again")

    lun = cmds.add_parser("lun", help="lun add|resize|remove")
    luns = lun.add_subparsers(dest="lun_command", metavar="ACTION")
    luns.required = True
    x = luns.add_parser("add", help="a new LU (map it with `map`)")
    x.add_argument("array")
    x.add_argument("name")
    x.add_argument("--size", required=True)
    x.add_argument("--block-size", type=int, default=512, choices=(512, 4096))
    x.add_argument("--backing", default="memory", metavar="memory|file:PATH")
    x = luns.add_parser("resize", help="change an LU's size (2A/09 to its nexuses)")
    x.add_argument("array")
    x.add_argument("name")
    x.add_argument("--size", required=True)
    x = luns.add_parser("remove", help="remove an unmapped LU")
    x.add_argument("array")
    x.add_argument("name")

    x = cmds.add_parser("map", help="map an LU as LUN for a host (name or initiator WWPN)")
    x.add_argument("array")
    x.add_argument("host")
    x.add_argument("lun", type=int)
    x.add_argument("name")
    x = cmds.add_parser("unmap", help="remove a LUN from a host's map")
    x.add_argument("array")
    x.add_argument("host")
    x.add_argument("lun", type=int)
    x = cmds.add_parser("alua", help="set the ALUA state of a port's target port group")
    x.add_argument("array")
    x.add_argument("port", metavar="PORT", help="WWPN or relative port number")
    x.add_argument("state", choices=ALUA_STATES)
    x = cmds.add_parser("log-level", help="change what the server logs")
    x.add_argument("level", choices=("debug", "info", "warning", "error"))

    f = cmds.add_parser("fault", help="fault add|list|clear")
    fs = f.add_subparsers(dest="fault_command", metavar="ACTION")
    fs.required = True
    x = fs.add_parser("add", help="drop, delay, duplicate or corrupt matching frames",
                      description="ACTION is drop, delay MS, duplicate or corrupt.")
    x.add_argument("action", choices=("drop", "delay", "duplicate", "corrupt"))
    x.add_argument("ms", nargs="?", type=int, help="milliseconds, for delay")
    x.add_argument("--s-id", metavar="FCID|WWPN")
    x.add_argument("--d-id", metavar="FCID|WWPN")
    x.add_argument("--wwpn", help="frames from or to this port")
    x.add_argument("--r-ctl", metavar="N")
    x.add_argument("--type", metavar="N", help="FC-4 TYPE (0x01 ELS, 0x08 FCP, 0x20 CT)")
    x.add_argument("--els", metavar="CMD", help="ELS command (PLOGI, PRLI, LS_ACC, 0x03 ...)")
    x.add_argument("--ct", metavar="CMD", help="CT command (GPN_FT, GID_PN, 0x0112 ...)")
    x.add_argument("--opcode", metavar="OPS", help="SCSI opcodes: read,write,0x28 ...")
    x.add_argument("--direction", choices=("in", "out", "any"), default="any",
                   help="in: frames ports send into the fabric; out: frames the fabric "
                   "originates")
    x.add_argument("--prob", type=float, metavar="P", help="hit each match with probability P")
    x.add_argument("--count", type=int, metavar="N", help="hit N frames, then stop")
    fs.add_parser("list", help="installed rules and their hits")
    x = fs.add_parser("clear", help="remove one rule, or all")
    x.add_argument("id", nargs="?", type=int)

    x = cmds.add_parser("lu-error", help="make an LU fail commands (or --clear)")
    x.add_argument("array")
    x.add_argument("name")
    g = x.add_mutually_exclusive_group(required=True)
    g.add_argument("--sense", metavar="K/ASC/ASCQ", help="e.g. 2/04/01 or 3/11/00")
    g.add_argument("--status", choices=("busy", "task-set-full"))
    g.add_argument("--clear", action="store_true", help="stop failing")
    x.add_argument("--ops", metavar="OPS", help="read,write,sync,tur,0x28 ... (default: all "
                   "but INQUIRY, REPORT LUNS, REQUEST SENSE)")
    h = x.add_mutually_exclusive_group()
    h.add_argument("--count", type=int, metavar="N")
    h.add_argument("--prob", type=float, metavar="P")
    x = cmds.add_parser("lu-latency", help="complete an LU's commands MS milliseconds late")
    x.add_argument("array")
    x.add_argument("name")
    x.add_argument("ms", type=int)
    p.set_defaults(run=run)


def _q(text: Any) -> str:
    return quote(str(text), safe="")


def _token(args: argparse.Namespace) -> str | None:
    from .server import TokenError, read_token

    if args.token_file:
        try:
            return read_token(Path(args.token_file))
        except TokenError as exc:
            raise UserError(str(exc), EXIT_USAGE) from None
    return os.environ.get("FCSOFT_CONTROL_TOKEN") or None


def _call(args: argparse.Namespace) -> tuple[Any, Any]:
    """(the server's answer, the function that renders it)."""
    c = args.ctl_command
    if c == "switchshow":
        return ("GET", "/api/switch", None), show_switch
    if c == "nsshow":
        return ("GET", "/api/ns", None), show_ns
    if c == "zoneshow":
        return ("GET", "/api/zones", None), show_zones
    if c == "portshow":
        return ("GET", f"/api/ports/{_q(args.port)}", None), show_port
    if c == "arrays":
        return ("GET", "/api/arrays", None), show_arrays
    if c == "luns":
        return ("GET", f"/api/arrays/{_q(args.array)}/luns", None), show_luns
    if c == "pr":
        return ("GET", f"/api/arrays/{_q(args.array)}/luns/{_q(args.lu)}/pr", None), show_pr
    if c == "counters":
        return ("GET", "/api/counters", None), show_counters
    if c == "zone":
        if args.zone_command == "set":
            return ("PUT", f"/api/zones/{_q(args.name)}", {"members": args.members}), \
                show_zones
        if args.zone_command == "delete":
            return ("DELETE", f"/api/zones/{_q(args.name)}", None), show_zones
        return ("PUT", "/api/default-zone", {"default_zone": args.mode}), show_zones
    if c == "port":
        if args.port_command == "disable":
            return ("POST", f"/api/ports/{_q(args.wwpn)}/disable", {}), show_plain
        return ("POST", f"/api/ports/{_q(args.wwpn)}/enable",
                {"wait": 0 if args.no_wait else 10}), show_plain
    if c == "lun":
        base = f"/api/arrays/{_q(args.array)}/luns"
        if args.lun_command == "add":
            backing = args.backing
            if backing != "memory":
                path = backing.removeprefix("file:")
                backing = "file:" + str(Path(path).expanduser().absolute())
            return ("POST", base, {"name": args.name, "size": args.size,
                                   "block_size": args.block_size,
                                   "backing": backing}), show_plain
        if args.lun_command == "resize":
            return ("PATCH", f"{base}/{_q(args.name)}", {"size": args.size}), show_plain
        return ("DELETE", f"{base}/{_q(args.name)}", None), show_plain
    if c == "map":
        return ("PUT", f"/api/arrays/{_q(args.array)}/maps/{_q(args.host)}/{args.lun}",
                {"lu": args.name}), show_luns
    if c == "unmap":
        return ("DELETE", f"/api/arrays/{_q(args.array)}/maps/{_q(args.host)}/{args.lun}",
                None), show_luns
    if c == "alua":
        return ("PUT", f"/api/arrays/{_q(args.array)}/ports/{_q(args.port)}/alua",
                {"state": args.state}), show_plain
    if c == "log-level":
        return ("PUT", "/api/log-level", {"level": args.level}), show_plain
    if c == "fault":
        if args.fault_command == "list":
            return ("GET", "/api/faults", None), show_faults
        if args.fault_command == "clear":
            path = "/api/faults" + (f"/{args.id}" if args.id is not None else "")
            return ("DELETE", path, None), show_plain
        if args.action == "delay" and args.ms is None:
            raise UserError("fault add delay needs MS (milliseconds)", EXIT_USAGE)
        if args.action != "delay" and args.ms is not None:
            raise UserError(f"fault add {args.action} takes no MS", EXIT_USAGE)
        spec = {"action": args.action, "delay_ms": args.ms, "s_id": args.s_id,
                "d_id": args.d_id, "wwpn": args.wwpn, "r_ctl": args.r_ctl, "type": args.type,
                "els": args.els, "ct": args.ct, "opcodes": args.opcode,
                "direction": args.direction, "probability": args.prob, "count": args.count}
        return ("POST", "/api/faults", {k: v for k, v in spec.items() if v is not None}), \
            show_plain
    if c == "lu-error":
        path = f"/api/arrays/{_q(args.array)}/luns/{_q(args.name)}/error"
        if args.clear:
            return ("DELETE", path, None), show_plain
        spec = {"sense": args.sense, "status": args.status, "ops": args.ops,
                "count": args.count, "probability": args.prob}
        return ("PUT", path, {k: v for k, v in spec.items() if v is not None}), show_plain
    if c == "lu-latency":
        return ("PUT", f"/api/arrays/{_q(args.array)}/luns/{_q(args.name)}/latency",
                {"ms": args.ms}), show_plain
    raise UserError(f"unknown ctl command {c!r}", EXIT_USAGE)


class _Parser(argparse.ArgumentParser):
    """argparse that raises a usage error instead of printing it and exiting."""

    def error(self, message: str) -> Any:
        raise UserError(f"{self.prog}: {message}", EXIT_USAGE)


def run_command(argv: Sequence[str], *, control: str | None = None,
                token: str | None = None, timeout: float = 30.0) -> tuple[Any, str]:
    """Run one `fcsoft ctl` command in this process, for scripts and examples: `argv` is
    what follows `fcsoft ctl` (`["port", "disable", "50:01:43:80:00:00:00:01"]`). Returns
    the server's answer and the text `fcsoft ctl` prints for it. Raises UserError with the
    line and exit status `fcsoft ctl` would give (2 bad usage, 1 refused, 3 unreachable).
    Blocking (urllib): from trio, call it with trio.to_thread.run_sync."""
    parser = _Parser(prog="fcsoft", add_help=False)
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ctl", *argv])
    url = control or args.control
    (method, path, body), render = _call(args)
    answer = request(url, method, path, body, token=token or _token(args), timeout=timeout)
    return answer, render(answer)


def run(args: argparse.Namespace) -> int:
    (method, path, body), render = _call(args)
    answer = request(args.control, method, path, body, token=_token(args))
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(answer))
    return 0

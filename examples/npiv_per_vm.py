#!/usr/bin/env python3
"""NPIV per VM with a real Linux guest: each VM's virtual HBA is an NPIV vport with a WWPN
of its own, and the SAN's zoning and LUN masking follow that WWPN, so one VM never sees
the other's storage, and removing a VM's vport logs it out of the fabric.

    examples/npiv_per_vm.py [--json FILE] [--console-log FILE] [--kvm] [-v]

The guest plays the KVM host: its FCoE port (the ENode, 20:00 + its MAC) is the host's
HBA, zoned with nothing, and each VM gets an NPIV vport on it (vport_create in sysfs, an
FDISC on the fabric), as libvirt does for a VM whose disks come from an NPIV vport. The
VMs' LUNs show up under their vport's SCSI host, where a hypervisor would hand them to the
VM. (One guest with two vports rather than two guests: it is the talk's layout, both VMs'
N_Ports share one F_Port, which is where NPIV matters to the fabric, and it costs one boot.)

It starts a lab in this process (a fabric, an FCoE Forwarder, the control API and array1
with ports P1 and P2), provisions the two VMs through the control API as a SAN admin
would, before either exists (printing each `fcsoft ctl` command):

    VM A  vport c0:50:76:00:00:0a:00:01  zone vm-a = A, P1, P2  LUN 0 = a-disk (32 MiB)
    VM B  vport c0:50:76:00:00:0b:00:01  zone vm-b = B, P1, P2  LUN 0 = b-disk (24 MiB),
                                                  LUN 1 = b-data (16 MiB, 4 KiB blocks)

then boots the guest, creates the two vports and shows, for each VM: its N_Port_ID on the
ENode's link, the remote ports its discovery (GPN_FT) found, the fabric's view of who sees
whom, the SCSI devices and REPORT LUNS (sg_luns) under its vport, the LUs' identities, and
data each VM writes to its LUN 0 that the other never reads. Finally it deletes VM A's
vport (vport_delete) and shows the logout: A gone from the name server, an RSCN to each
array port (which end A's sessions), none to VM B (not zoned with A), whose disks go on
working.

Exit status 0 when every check held, 1 otherwise. It needs what the guest lab needs
(README, "Attaching a real Linux initiator").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":  # run from a checkout: use (or create) its .venv, as bin/fcsoft does
    try:
        import fcsoft  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bin"))
        import _bootstrap

        python = _bootstrap.ensure(set())
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import trio  # noqa: E402

from fcsoft.config import parse_config  # noqa: E402
from fcsoft.control.cli import run_command  # noqa: E402
from fcsoft.errors import UserError  # noqa: E402
from fcsoft.guest.npiv import delete_vport, remote_ports  # noqa: E402
from fcsoft.guest.verified_io import VerifiedIo  # noqa: E402
from fcsoft.server.process import run_process  # noqa: E402
from fcsoft.testing import open_guest  # noqa: E402
from fcsoft.wire.wwn import WWN  # noqa: E402

P1 = WWN("50:01:43:80:00:00:00:01")
P2 = WWN("50:01:43:80:00:00:00:02")
HOST_MAC = "52:54:00:fc:00:22"
ENODE = WWN("20:00:52:54:00:fc:00:22")  # the KVM host's HBA: 20:00 + the guest's MAC
VA = WWN("c0:50:76:00:00:0a:00:01")  # VM A's vport
VB = WWN("c0:50:76:00:00:0b:00:01")  # VM B's vport
NAMES = {P1: "P1", P2: "P2", VA: "VM A", VB: "VM B", ENODE: "host"}
MIB = 1 << 20

# the VMs: name, vport, zone, {LUN: (LU name, size, block size)}
VMS = {
    "A": (VA, "vm-a", {0: ("a-disk", "32MiB", 512)}),
    "B": (VB, "vm-b", {0: ("b-disk", "24MiB", 512), 1: ("b-data", "16MiB", 4096)}),
}

CONFIG = f"""
[fabric]
name = "lab"
listen = "127.0.0.1:0"
rscn_coalesce_ms = 10

[control]
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{P1}", "{P2}"]
"""


@dataclass
class Options:
    kvm: bool = False
    console_log: str | None = None
    verbose: bool = False


@dataclass
class VmView:
    """What one VM's vport sees."""

    vport: str
    fc_host: str = ""
    fcid: str = ""
    remote_ports: list[str] = field(default_factory=list)  # WWPNs of its rports (not FFFFxx)
    fabric_sees: list[str] = field(default_factory=list)  # the control API's visibility
    devices: list[str] = field(default_factory=list)  # "P1 LUN 0" ...
    report_luns: list[int] = field(default_factory=list)
    wwids: dict[str, str] = field(default_factory=dict)  # "LUN n" -> wwid (both paths)
    reads_own_data: bool = False
    reads_other_data: bool = False


@dataclass
class Report:
    kernel: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    host_groups: dict[str, list[str]] = field(default_factory=dict)  # array1's, by name
    link_ports: list[str] = field(default_factory=list)  # the ENode's link: its N_Ports
    host_remote_ports: list[str] = field(default_factory=list)  # what the ENode itself sees
    vms: dict[str, VmView] = field(default_factory=dict)
    # the deletion of VM A's vport
    delete_seconds: float = 0.0  # from vport_delete until the fabric had logged it out
    a_in_name_server_after: bool = True
    a_fc_host_after: bool = True
    rscns_before: dict[str, int] = field(default_factory=dict)
    rscns_after: dict[str, int] = field(default_factory=dict)
    array_sessions_with_a_after: list[str] = field(default_factory=list)
    b_remote_ports_after: list[str] = field(default_factory=list)
    b_devices_after: list[str] = field(default_factory=list)
    b_reads_after: bool = False
    b_io: int = 0  # VM B's verified I/Os from vport_delete until the guest had settled
    b_io_stall: float = 0.0  # the longest time without one completing then
    b_io_failed: int = 0
    b_io_miscompared: int = 0
    duration: float = 0.0


class ScenarioError(Exception):
    """The scenario could not go on."""


def name_of(wwpn: WWN | str | None) -> str:
    if wwpn is None:
        return "?"
    w = WWN.parse(wwpn) if isinstance(wwpn, str) else wwpn
    return NAMES.get(w, str(w))


class Ctl:
    """`fcsoft ctl` against the lab's control API, in this process; prints each command."""

    def __init__(self, url: str, say: Callable[[str], None], verbose: bool) -> None:
        self.url = url
        self.say = say
        self.verbose = verbose

    async def __call__(self, *argv: str, quiet: bool = False) -> Any:
        if not quiet:
            self.say(f"    $ fcsoft ctl {' '.join(argv)}")
        answer, text = await trio.to_thread.run_sync(
            functools.partial(run_command, list(argv), control=self.url))
        if self.verbose and not quiet:
            for line in text.splitlines():
                self.say(f"      {line}")
        return answer


def pattern(vm: str) -> bytes:
    """What VM `vm` writes to its LUN 0 (1 MiB)."""
    seed = hashlib.sha256(f"fcsoft npiv vm {vm}".encode()).digest()
    return (seed * (MIB // len(seed)))[:MIB]


async def scenario(lab: Any, opts: Options, say: Callable[[str], None] = print) -> Report:
    """Run the scenario against `lab` (fcsoft.server.process.Lab, started with CONFIG)."""
    report = Report()
    t_start = time.monotonic()
    host, port = lab.control_address
    ctl = Ctl(f"http://{host}:{port}", say, opts.verbose)
    say(f"lab: fabric {lab.address[0]}:{lab.address[1]}, FCoE forwarder "
        f"{lab.fcf().address[0]}:{lab.fcf().address[1]}, control API {ctl.url}; "
        f"array1 ports P1 = {P1}, P2 = {P2}")

    say("\n== 1. the SAN admin provisions two VMs by their vports' WWPNs (neither exists "
        "yet)")
    for vm, (wwpn, zone, luns) in VMS.items():
        say(f"  VM {vm}: vport {wwpn}")
        for lun, (lu, size, block) in luns.items():
            await ctl("lun", "add", "array1", lu, "--size", size, "--block-size",
                      str(block))
            await ctl("map", "array1", str(wwpn), str(lun), lu)
        await ctl("zone", "set", zone, str(wwpn), str(P1), str(P2))
    groups = (await ctl("luns", "array1", quiet=True))["hosts"]
    report.host_groups = {h["name"]: [*h["initiators"], *(f"LUN {n}={lu}" for n, lu in
                                                         h["luns"].items())] for h in groups}
    say("  array1's host groups (an initiator mapped by WWPN gets one of its own): " + "; ".join(
        f"{name}: {', '.join(v)}" for name, v in report.host_groups.items()))

    say("\n== 2. the KVM host boots; its own port (the ENode) is in no zone")
    async with open_guest(fcoe=lab.fcf().address, mac=HOST_MAC, kvm=opts.kvm,
                          console_log=opts.console_log) as g:
        report.kernel = g.kernel
        report.timings = {k: round(v, 1) for k, v in g.timings.items()}
        say(f"  guest up ({g.kernel}): " + ", ".join(
            f"{k} {v:.1f} s" for k, v in g.timings.items()))
        hosts = await g.fc_hosts()
        (phys,) = [h for h in hosts if h.port_name == ENODE]
        rports = [r for r in await remote_ports(g) if not r.well_known]
        report.host_remote_ports = [name_of(r.wwpn) for r in rports
                                    if r.host == phys.name]
        say(f"  {phys.name}: {ENODE} at {phys.port_id}, {phys.port_state}; remote ports: "
            f"{report.host_remote_ports or 'none'}")

        say("\n== 3. the VMs start: one NPIV vport each (vport_create, FDISC)")
        for vm, (wwpn, _zone, _luns) in VMS.items():
            t = time.monotonic()
            await g.create_vport(wwpn)
            await g.wait_online()
            await g.settle()
            say(f"  VM {vm}: vport {wwpn} online and scanned in "
                f"{time.monotonic() - t:.1f} s")
        sw = await ctl("switchshow", quiet=True)
        link = next(ln for ln in sw["links"]
                    if any(p["wwpn"] == str(ENODE) for p in ln["ports"]))
        report.link_ports = [f"{p['fcid']} {name_of(p['wwpn'])} {p['login']}"
                             for p in link["ports"]]
        say(f"  the fabric: the host's link {link['name']} carries "
            + "; ".join(report.link_ports))

        say("\n== 4. what each VM sees")
        zones = await ctl("zoneshow", quiet=True)
        visibility = {v["wwpn"]: v["sees"] for v in zones.get("visibility", [])}
        hosts = await g.fc_hosts()
        rports = [r for r in await remote_ports(g) if not r.well_known]
        devices = await g.scsi_devices()
        for vm, (wwpn, _zone, _luns) in VMS.items():
            view = VmView(str(wwpn))
            (fh,) = [h for h in hosts if h.port_name == wwpn]
            view.fc_host, view.fcid = fh.name, fh.port_id
            view.remote_ports = sorted(name_of(r.wwpn) for r in rports if r.host == fh.name)
            view.fabric_sees = sorted(name_of(w) for w in visibility.get(str(wwpn), []))
            mine = [d for d in devices if d.hctl.split(":")[0] == fh.name[4:]]
            view.devices = sorted(f"{name_of(d.target)} LUN {d.lun}" for d in mine)
            say(f"  VM {vm} ({fh.name}, N_Port_ID {fh.port_id}):")
            say(f"    remote ports its discovery found: {', '.join(view.remote_ports)}; "
                f"the fabric says it sees: {', '.join(view.fabric_sees)}")
            say(f"    SCSI devices: {', '.join(view.devices)}")
            lun0 = next(d for d in mine if d.lun == 0 and d.target == P1)
            res = await g.run(f"sg_luns {lun0.sg}", check=True)
            view.report_luns = [int(x[:4], 16) & 0x3FFF for x in
                                re.findall(r"^\s+(\w{16})$", res.output, re.M)]
            say(f"    REPORT LUNS (sg_luns {lun0.sg}): {view.report_luns}")
            for d in mine:
                wwid = (await g.run(f"cat /sys/class/scsi_device/{d.hctl}/device/wwid",
                                    check=True)).output.strip()
                key = f"LUN {d.lun}"
                if view.wwids.setdefault(key, wwid) != wwid:
                    view.wwids[key] = f"differs by path: {view.wwids[key]} / {wwid}"
            say("    identities: " + ", ".join(f"{k} {v}" for k, v in
                                              sorted(view.wwids.items())))
            report.vms[vm] = view

        say("\n== 5. each VM writes 1 MiB to its LUN 0 (through P1) and reads it back "
            "(through P2)")
        by_vm = {}
        for vm in VMS:
            fh = report.vms[vm].fc_host
            mine = {(d.target, d.lun): d for d in devices if d.hctl.split(":")[0] == fh[4:]}
            by_vm[vm] = mine
            await g.put_file(f"/tmp/{vm}.pattern", pattern(vm))
            await g.run(f"dd if=/tmp/{vm}.pattern of={mine[(P1, 0)].block} bs=64k "
                        "oflag=direct 2>/dev/null", check=True)
        for vm in VMS:
            got = (await g.run(f"dd if={by_vm[vm][(P2, 0)].block} bs=64k count=16 "
                               "iflag=direct 2>/dev/null | md5sum", check=True)).output
            digest = got.split()[0]
            view = report.vms[vm]
            view.reads_own_data = digest == hashlib.md5(pattern(vm)).hexdigest()
            other = next(v for v in VMS if v != vm)
            view.reads_other_data = digest == hashlib.md5(pattern(other)).hexdigest()
            say(f"  VM {vm} reads back {'its own data' if view.reads_own_data else digest}"
                f"{' and VM ' + other + chr(39) + 's!' if view.reads_other_data else ''}")

        say("\n== 6. VM A goes away: its vport is deleted (vport_delete)")
        watched = {"P1": P1, "P2": P2, "VM B": VB, "host": ENODE}
        for who, w in watched.items():
            report.rscns_before[who] = (await ctl("portshow", str(w), quiet=True)
                                        )["name_server"]["rscns"]
        # VM B's I/O goes on meanwhile: verified writes and read-backs on its LUN 1
        b1 = by_vm["B"][(P1, 1)].block
        vio = VerifiedIo(g, b1, blocks=1024, writes=10**9)
        await vio.start()
        await vio.wait_writes(20)
        u0 = await vio.clock()
        t = time.monotonic()
        await delete_vport(g, VA)
        with trio.move_on_after(30):
            while lab.fabric.port(VA) is not None:
                await trio.sleep(0.05)
        report.delete_seconds = round(time.monotonic() - t, 2)
        ns = await ctl("nsshow", quiet=True)
        report.a_in_name_server_after = any(e["wwpn"] == str(VA) for e in ns)
        say(f"  the fabric logged VM A out {report.delete_seconds:.2f} s after "
            f"vport_delete; in the name server now: "
            + ", ".join(name_of(e["wwpn"]) for e in ns))
        await trio.sleep(1.0)  # the RSCNs' coalescing window and their LS_ACCs
        for who, w in watched.items():
            report.rscns_after[who] = (await ctl("portshow", str(w), quiet=True)
                                       )["name_server"]["rscns"]
        say("  RSCNs the fabric sent (portshow): " + ", ".join(
            f"{who} {report.rscns_before[who]} -> {report.rscns_after[who]}"
            for who in watched))
        for p in (P1, P2):
            show = await ctl("portshow", str(p), quiet=True)
            report.array_sessions_with_a_after += [
                f"{name_of(p)}: {s['initiator']}" for s in show["sessions"]
                if s["initiator"] == str(VA)]
        say(f"  array sessions with VM A left: "
            f"{report.array_sessions_with_a_after or 'none'}")
        await g.settle()
        u1 = await vio.clock()
        io = await vio.stop()
        window = io.window(u0, u1)
        report.b_io = len(window)
        report.b_io_stall = io.stall(u0, u1)
        report.b_io_failed = len(io.failed)
        report.b_io_miscompared = len(io.miscompared)
        say(f"  VM B's verified I/O on its LUN 1 ({b1}) while A went away: {report.b_io} I/Os "
            f"in {u1 - u0:.1f} s, longest time without a completed I/O "
            f"{report.b_io_stall:.2f} s, {report.b_io_failed} failed, "
            f"{report.b_io_miscompared} miscompared")
        report.a_fc_host_after = any(h.port_name == VA for h in await g.fc_hosts())
        rports = [r for r in await remote_ports(g) if not r.well_known]
        fb = report.vms["B"].fc_host
        report.b_remote_ports_after = sorted(
            f"{name_of(r.wwpn)} {r.state}" for r in rports if r.host == fb)
        devices = await g.scsi_devices()
        report.b_devices_after = sorted(
            f"{name_of(d.target)} LUN {d.lun}" for d in devices
            if d.hctl.split(":")[0] == fb[4:])
        b0 = next(d for d in devices if d.hctl.split(":")[0] == fb[4:]
                  and d.target == P1 and d.lun == 0)
        got = (await g.run(f"dd if={b0.block} bs=64k count=16 iflag=direct 2>/dev/null "
                           "| md5sum", check=True)).output.split()[0]
        report.b_reads_after = got == hashlib.md5(pattern("B")).hexdigest()
        a_host = "is still there" if report.a_fc_host_after else "is gone"
        say(f"  in the guest: VM A's fc_host {a_host}; "
            f"VM B's remote ports {', '.join(report.b_remote_ports_after)}, devices "
            f"{', '.join(report.b_devices_after)}; VM B reads its data: "
            f"{'yes' if report.b_reads_after else 'NO'}")
    report.duration = round(time.monotonic() - t_start, 1)
    return report


async def run(opts: Options) -> Report:
    """The lab of CONFIG in this process, and the scenario against it."""
    async with trio.open_nursery() as nursery:
        lab = await nursery.start(functools.partial(
            run_process, parse_config(CONFIG), ("127.0.0.1", 0), None, wait_ready=True))
        report = await scenario(lab, opts)
        nursery.cancel_scope.cancel()
    return report


def problems(report: Report) -> list[str]:
    """What went against expectations, one line each (empty: all held)."""
    out = []
    for vm, (wwpn, _zone, _luns) in VMS.items():
        holding = [name for name, v in report.host_groups.items() if str(wwpn) in v]
        if len(holding) != 1:
            out.append(f"VM {vm}'s WWPN is in the host groups {holding}, not in one")
    if len(report.host_groups) != len(VMS):
        out.append(f"array1 has the host groups {list(report.host_groups)}")
    if report.host_remote_ports:
        out.append(f"the host's own port (in no zone) sees {report.host_remote_ports}")
    want = {"A": {"devices": ["P1 LUN 0", "P2 LUN 0"], "luns": [0]},
            "B": {"devices": ["P1 LUN 0", "P1 LUN 1", "P2 LUN 0", "P2 LUN 1"],
                  "luns": [0, 1]}}
    for vm, view in report.vms.items():
        if view.remote_ports != ["P1", "P2"]:
            out.append(f"VM {vm}'s discovery found {view.remote_ports}, not P1 and P2 only")
        if view.fabric_sees != ["P1", "P2"]:
            out.append(f"the fabric says VM {vm} sees {view.fabric_sees}")
        if view.devices != want[vm]["devices"]:
            out.append(f"VM {vm} has the devices {view.devices}")
        if sorted(view.report_luns) != want[vm]["luns"]:
            out.append(f"REPORT LUNS for VM {vm}: {view.report_luns}")
        if any(v.startswith("differs") for v in view.wwids.values()):
            out.append(f"VM {vm}: a LUN's identity differs between its paths: {view.wwids}")
        if not view.reads_own_data or view.reads_other_data:
            out.append(f"VM {vm} did not read back its own data")
    if len(report.vms) == 2 and report.vms["A"].wwids.get("LUN 0") == \
            report.vms["B"].wwids.get("LUN 0"):
        out.append("VM A's and VM B's LUN 0 are the same LU")
    if len(report.link_ports) != 3:
        out.append(f"the host's link should carry its FLOGI and two FDISC ports: "
                   f"{report.link_ports}")
    if report.a_in_name_server_after:
        out.append("VM A's vport is still in the name server after vport_delete")
    if report.a_fc_host_after:
        out.append("VM A's fc_host is still in the guest after vport_delete")
    for who in ("P1", "P2"):
        if report.rscns_after.get(who, 0) <= report.rscns_before.get(who, 0):
            out.append(f"{who} got no RSCN when VM A logged out")
    for who in ("VM B", "host"):
        if report.rscns_after.get(who) != report.rscns_before.get(who):
            out.append(f"{who} got an RSCN about VM A, with which it shares no zone")
    if report.array_sessions_with_a_after:
        out.append(f"the array kept sessions with VM A: {report.array_sessions_with_a_after}")
    if report.b_remote_ports_after != ["P1 Online", "P2 Online"]:
        out.append(f"VM B's remote ports after A left: {report.b_remote_ports_after}")
    if report.b_devices_after != want["B"]["devices"]:
        out.append(f"VM B's devices after A left: {report.b_devices_after}")
    if not report.b_reads_after:
        out.append("VM B could not read its data after A left")
    if report.b_io == 0 or report.b_io_failed or report.b_io_miscompared:
        out.append(f"VM B's I/O while A went away: {report.b_io} I/Os, {report.b_io_failed} "
                   f"failed, {report.b_io_miscompared} miscompared")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="FILE", help="write the findings as JSON to FILE")
    p.add_argument("--console-log", metavar="FILE", help="keep the guest's console here")
    p.add_argument("--kvm", action="store_true", help="try KVM before TCG")
    p.add_argument("-v", "--verbose", action="store_true", help="print ctl's answers too")
    args = p.parse_args(argv)
    from fcsoft.guest.errors import GuestError
    from fcsoft.logs import configure

    configure(level=30)  # the lab's own log: warnings and errors only
    opts = Options(kvm=args.kvm, console_log=args.console_log, verbose=args.verbose)
    try:
        report = trio.run(run, opts)
    except (ScenarioError, GuestError, UserError) as exc:
        print(f"npiv_per_vm: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    found = problems(report)
    print(f"\nrun time {report.duration:.0f} s: "
          + ("every check held" if not found else f"{len(found)} unexpected"))
    for line in found:
        print(f"UNEXPECTED: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

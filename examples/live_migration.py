#!/usr/bin/env python3
"""Live migration of a VM with its own Fibre Channel identity, end to end with a real guest.

A Linux guest (QEMU, TCG) runs the kernel's FCoE initiator (libfc) against fcsoft's FCoE
Forwarder. It has an NPIV vport with one of "its" two WWPNs (the KVM Forum talk "OMG,
NPIV! Virtualizing Fibre Channel with Linux and KVM": a VM owns two WWPNs and uses them
alternately, so that the destination can log in before the source logs out), holds a
persistent reservation (Write Exclusive - Registrants Only) with it, and writes and reads
back verified blocks the whole time. Then, `--rounds` times:

1. QEMU live migration: a destination QEMU (`-incoming`) opens its own connection to the
   FCF; `migrate` on the source's monitor; the destination announces the NIC's MAC (RARP)
   and the FCF, learning MACs like an Ethernet switch, sends to the ENode there. The ENode
   and its vport keep their logins (same N_Port_IDs, no new FLOGI or FDISC), the
   reservation stays, and the I/O goes on.
2. The other WWPN logs in from the destination (a vport created after the move, so its
   FDISC travels the destination's connection); the I/O pauses between two commands (as
   QEMU's switch-over does), the reservation moves to the new WWPN (REGISTER AND MOVE from
   the old one, or, every other round, the QEMU migrate-pr pattern: register the same key
   from the new WWPN, then PREEMPT), the I/O goes on through the new WWPN's disk, and the
   old WWPN's vport is deleted: its LOGO ends the source's login.

At the end every block is read back through the last WWPN in the guest and straight from
the array's memory, and it prints each event's figures: QEMU's downtime, the longest time
between two writes landing on the array (the host's clock: what the world saw), the longest
gap in the guest's own I/O log (the guest's clock, which stops while QEMU has it stopped),
and commands Linux had to abort and retry.

    examples/live_migration.py [--rounds N] [--memory MIB] [--scsi-timeout S]
                               [--console-log FILE] [--trace FILE.pcapng] [-v]

It runs its own lab in process (fabric, FCF, one array) on 127.0.0.1 with free ports and
needs what `fcsoft guest` needs (README: "Attaching a real Linux initiator"): Debian with
qemu-system-x86, busybox-static, kmod, sg3-utils. It takes a minute or two. Run it from a
checkout: it creates .venv on first use, as bin/fcsoft does.

`scenario()` is also what tests/guest/test_live_migration.py runs, with checks at each step.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run from a checkout: re-run inside .venv (bin/_bootstrap.py)
    try:
        import fcsoft  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bin"))
        import _bootstrap  # type: ignore[import-not-found]

        python = _bootstrap.ensure(set())
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])

import trio

from fcsoft.guest import IoReport, MigrationResult, VerifiedIo
from fcsoft.guest.fcoe import parse_vport, vport_create_arg
from fcsoft.testing import Guest, open_guest
from fcsoft.testing.lab import LabHandle
from fcsoft.wire.wwn import WWN

MAC = "52:54:00:fc:20:01"  # the VM's FCoE NIC: its ENode is 20:00:52:54:00:fc:20:01
ENODE = WWN("20:00:" + MAC)
WWPN_A = WWN("c0:50:76:00:00:14:00:0a")  # the VM's two NPIV WWPNs
WWPN_B = WWN("c0:50:76:00:00:14:00:0b")
P1 = WWN("50:01:43:80:00:00:00:01")  # the array's ports: the VM's I/O goes through P1
P2 = WWN("50:01:43:80:00:00:00:02")
NAMES = {WWPN_A: "A", WWPN_B: "B"}
KEY = 0x14AB5  # the VM's reservation key, the same from both WWPNs
LU = "vm"
LU_MIB = 64
BLOCK = 4096

CONFIG = f"""
[fabric]
name = "lab"
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{P1}", "{P2}"]

[[array.lun]]
name = "{LU}"
size = "{LU_MIB}MiB"

# the VM's LUN follows the VM: mapped to its two WWPNs, not to the ENode (the "HBA")
[[array.host]]
name = "vm"
initiators = ["{WWPN_A}", "{WWPN_B}"]
luns = {{ 0 = "{LU}" }}
"""


@dataclass
class Step:
    """Where the scenario is, for a caller's checks (`on_step`)."""

    name: str  # "reserved", "migrating", "migrated", "switched", "stopped"
    round: int  # 1, 2, ... (0 before the first migration)
    guest: Guest
    wwpn: WWN  # the WWPN the VM's I/O uses (and the reservation is held by) now
    previous: WWN | None = None  # "switched": the WWPN whose login just ended
    method: str = ""  # "switched": "register-and-move" or "preempt"
    migration: MigrationResult | None = None  # "migrated"
    report: IoReport | None = None  # "stopped"


@dataclass
class Event:
    """One migration or WWPN switch with its figures."""

    name: str
    t0: float  # host clock (trio)
    t1: float = 0.0
    uptime0: float = 0.0  # guest clock
    uptime1: float = 0.0
    downtime_ms: int | None = None
    aborts: int = 0
    host_stall: float = 0.0  # longest time between two writes landing on the array
    guest_stall: float = 0.0  # longest gap in the guest's I/O log


@dataclass
class Result:
    events: list[Event] = field(default_factory=list)
    report: IoReport | None = None
    blocks_checked: int = 0  # blocks read back from the array, all as written
    guest_checked: int = 0  # blocks read back in the guest through the last WWPN
    timings: dict[str, float] = field(default_factory=dict)


class LandingWatch:
    """Watches the I/O loop's writes land in the LU's memory, on the host's clock: the
    times at which write 0, 1, 2, ... became visible (polled every `interval` s)."""

    def __init__(self, backing: Any, io: VerifiedIo, interval: float = 0.005) -> None:
        self.backing = backing
        self.io = io
        self.interval = interval
        self.times: list[float] = []
        self.cancel_scope = trio.CancelScope()

    async def run(self) -> None:
        """Watch until `cancel_scope` is cancelled."""
        with self.cancel_scope:
            await self._watch()

    async def _watch(self) -> None:
        io, bs = self.io, self.io.block_size
        while True:
            n = len(self.times)
            while n < io.blocks and bytes(self.backing.read((io.first_block + n) * bs, bs)) \
                    == io.expected_block(n):
                self.times.append(trio.current_time())
                n += 1
            await trio.sleep(self.interval)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between two landings whose interval overlaps [start, end]."""
        best = 0.0
        for a, b in zip(self.times, self.times[1:], strict=False):
            if b >= start and a <= end:
                best = max(best, b - a)
        return best

    async def wait_for(self, count: int, timeout: float = 120.0) -> None:
        with trio.fail_after(timeout):
            while len(self.times) < count:
                await trio.sleep(0.02)


async def uptime(g: Guest) -> float:
    return float((await g.run("cut -d' ' -f1 /proc/uptime", check=True)).output.strip())


async def physical_host(g: Guest) -> str:
    (host,) = [h.name for h in await g.fc_hosts() if h.port_name == g.wwpn]
    return host


async def disk_of(g: Guest, wwpn: WWN) -> tuple[str, str, str]:
    """(fc_host, sg node, block node) of LUN 0 behind array port P1 seen by vport `wwpn`."""
    (host,) = [h.name for h in await g.fc_hosts() if h.port_name == wwpn]
    number = host.removeprefix("host")
    (dev,) = [d for d in await g.scsi_devices()
              if d.hctl.split(":")[0] == number and d.target == P1 and d.lun == 0]
    return host, dev.sg, dev.block


def aborts(lab: Any) -> int:
    """ABTS the array ports accepted so far: commands Linux aborted to retry them."""
    return sum(p.counters["abts_accepted"] for a in lab.arrays for p in a.ports)


async def scenario(lab: Any, *, rounds: int = 2, memory_mib: int = 256,
                   scsi_timeout: int = 5, console_log: str | Path | None = None,
                   say: Callable[[str], None] = print,
                   on_step: Callable[[Step], Awaitable[None] | None] | None = None) -> Result:
    """Run the scenario against `lab` (fcsoft.server.process.Lab, with the fabric, FCF and
    array of CONFIG); `on_step` is called (and awaited) at each step."""
    handle = LabHandle(lab)
    lu = handle.scsi("array1").units[LU]
    result = Result()
    start = trio.current_time()

    def note(text: str) -> None:
        say(f"[{trio.current_time() - start:6.1f} s] {text}")

    async def step(s: Step) -> None:
        if on_step is not None:
            done = on_step(s)
            if done is not None:
                await done

    fcf = lab.fcf()
    enode_mac = bytes.fromhex(MAC.replace(":", ""))
    note(f"lab: fabric {lab.address[0]}:{lab.address[1]}, FCF {fcf.address[0]}:"
         f"{fcf.address[1]}, array1 LU {LU!r} ({LU_MIB} MiB) mapped to the VM's WWPNs "
         f"A {WWPN_A} and B {WWPN_B} only")
    async with open_guest(fcoe=fcf.address, mac=MAC, vports=[str(WWPN_A)],
                          memory_mib=memory_mib, console_log=console_log) as g, \
            trio.open_nursery() as nursery:
        result.timings = dict(g.timings)
        note(f"guest booted in {g.timings['boot']:.1f} s, FCoE login "
             f"{g.timings['online']:.1f} s; ENode {ENODE} and vport {WWPN_A} Online "
             f"(N_Port_IDs {handle.fabric.port(ENODE).fcid:06x}, "
             f"{handle.fabric.port(WWPN_A).fcid:06x})")
        phys = await physical_host(g)
        wwpn = WWPN_A
        _host, sg, block = await disk_of(g, wwpn)
        await g.run(f"echo {scsi_timeout} > /sys/block/{block[5:]}/device/timeout", check=True)
        await g.run(f"sg_persist -n -o -G -S {KEY:x} {sg}", check=True)
        await g.run(f"sg_persist -n -o -R -K {KEY:x} -T 5 {sg}", check=True)
        note(f"{wwpn} registered key {KEY:#x} and reserved LUN 0 (Write Exclusive, "
             f"registrants only) from {sg}")
        await step(Step("reserved", 0, g, wwpn))

        io = VerifiedIo(g, block, blocks=LU_MIB * (1 << 20) // BLOCK)
        watch = LandingWatch(lu.backing, io)
        await io.start()
        nursery.start_soon(watch.run)
        t = trio.current_time()
        await watch.wait_for(40)
        note(f"verified I/O running on {block} ({wwpn} via {P1}): "
             f"{40 / (trio.current_time() - t):.0f} writes/s, each read back")

        for rnd in range(1, rounds + 1):
            # -- 1. QEMU live migration ------------------------------------------------
            ev = Event(f"migration {rnd}", trio.current_time(), uptime0=await uptime(g))
            before_aborts = aborts(lab)
            segment = fcf.forwarder.enodes[enode_mac].segment
            await step(Step("migrating", rnd, g, wwpn))
            m = await g.migrate()
            landed = len(watch.times)
            await watch.wait_for(landed + 20)
            ev.t1, ev.uptime1 = trio.current_time(), await uptime(g)
            ev.downtime_ms = m.downtime_ms
            ev.aborts = aborts(lab) - before_aborts
            result.events.append(ev)
            enode = fcf.forwarder.enodes[enode_mac]
            note(f"{m.summary()}")
            note(f"  the ENode moved from connection {segment} to {enode.segment}; "
                 f"{ENODE} and {wwpn} kept N_Port_IDs {handle.fabric.port(ENODE).fcid:06x} "
                 f"and {handle.fabric.port(wwpn).fcid:06x}; I/O went on")
            await step(Step("migrated", rnd, g, wwpn, migration=m))

            # -- 2. the other WWPN logs in from the destination, takes over, the old
            #       one logs out ---------------------------------------------------------
            new = WWPN_B if wwpn == WWPN_A else WWPN_A
            await g.create_vport(new, host=phys)
            await g.wait_online()
            await g.settle()
            _nhost, nsg, nblock = await disk_of(g, new)
            await g.run(f"echo {scsi_timeout} > /sys/block/{nblock[5:]}/device/timeout",
                        check=True)
            note(f"{new} logged in from the destination (N_Port_ID "
                 f"{handle.fabric.port(new).fcid:06x}), LUN 0 is {nblock}")
            method = "register-and-move" if rnd % 2 == 1 else "preempt"
            ev = Event(f"switch {rnd}: {NAMES[wwpn]} -> {NAMES[new]} ({method})",
                       trio.current_time(),
                       uptime0=await uptime(g))
            before_aborts = aborts(lab)
            await io.pause()
            if method == "register-and-move":
                # the holder moves its reservation to (new WWPN, P1) and unregisters
                rtpi = handle.scsi("array1").relative_port_of(P1)
                await g.run(f"sg_persist -n -o -M -U -K {KEY:x} -S {KEY:x} -T 5 -Q {rtpi} "
                            f"-X fcp,{int(new):016x} {sg}", check=True)
            else:
                # QEMU's migrate-pr: the same key from the new WWPN, then PREEMPT
                await g.run(f"sg_persist -n -o -G -S {KEY:x} {nsg}", check=True)
                await g.run(f"sg_persist -n -o -P -K {KEY:x} -S {KEY:x} -T 5 {nsg}",
                            check=True)
            await io.resume(device=nblock)
            landed = len(watch.times)
            await watch.wait_for(landed + 20)
            ev.t1, ev.uptime1 = trio.current_time(), await uptime(g)
            ev.aborts = aborts(lab) - before_aborts
            result.events.append(ev)
            old = wwpn
            wwpnn = vport_create_arg(*parse_vport(str(old)))
            await g.run(f"echo {wwpnn} > /sys/class/fc_host/{phys}/vport_delete", check=True)
            with trio.fail_after(30):
                while handle.fabric.port(old) is not None:
                    await trio.sleep(0.05)
            holder = handle.control.pr("array1", LU)["reservation"]["holder"]["initiator"]
            note(f"reservation moved ({method}) to {holder}; I/O on {nblock}; {old}'s vport "
                 "deleted: logged out of the fabric")
            wwpn, sg, block = new, nsg, nblock
            await step(Step("switched", rnd, g, wwpn, previous=old, method=method))

        report = await io.stop()
        result.report = report
        watch.cancel_scope.cancel()
        # the guest-clock gaps of each event, now that the log is in
        for ev in result.events:
            ev.guest_stall = report.longest_gap(ev.uptime0, ev.uptime1)[0]
            ev.host_stall = watch.longest_gap(ev.t0, ev.t1)
        written = report.written
        count = len(written)
        # every block read back: in the guest through the last WWPN, and on the array
        res = await g.run(f"dd if={block} bs={BLOCK} count={count} iflag=direct 2>/dev/null "
                          "| md5sum", check=True, timeout=300)
        expected = io.expected(count)
        if res.output.split()[0] == hashlib.md5(expected).hexdigest():
            result.guest_checked = count
        on_array = bytes(lu.backing.read(0, count * BLOCK))
        result.blocks_checked = sum(
            1 for i in range(count)
            if on_array[i * BLOCK:(i + 1) * BLOCK] == expected[i * BLOCK:(i + 1) * BLOCK])
        await step(Step("stopped", rounds, g, wwpn, report=report))

    note(f"I/O: {report.writes} writes and {report.reads} reads, {len(report.failed)} "
         f"failed, {len(report.miscompared)} miscompared; {result.guest_checked} of {count} "
         f"blocks read back in the guest through {wwpn} and {result.blocks_checked} on the "
         "array as written")
    say("")
    say(f"A = {WWPN_A}, B = {WWPN_B}; stall: the longest time between two completed "
        "writes (host: landing on the array; guest: the guest's clock, which stands still "
        "while QEMU has the guest stopped); aborts: commands Linux aborted and retried")
    say(f"{'event':<38} {'downtime':>9} {'stall (host)':>13} {'stall (guest)':>14} "
        f"{'aborts':>7}")
    for ev in result.events:
        down = f"{ev.downtime_ms} ms" if ev.downtime_ms is not None else "-"
        say(f"{ev.name:<38} {down:>9} {ev.host_stall * 1000:>10.0f} ms "
            f"{ev.guest_stall * 1000:>11.0f} ms {ev.aborts:>7}")
    return result


async def _main(args: argparse.Namespace) -> int:
    from fcsoft import logs
    from fcsoft.config import parse_config
    from fcsoft.server.process import run_process

    logs.configure("console", logs.parse_level("info" if args.verbose else "warning"))
    trace = Path(args.trace) if args.trace else None
    async with trio.open_nursery() as nursery:
        lab = await nursery.start(lambda task_status: run_process(
            parse_config(CONFIG), ("127.0.0.1", 0), trace, wait_ready=True,
            task_status=task_status))
        result = await scenario(lab, rounds=args.rounds, memory_mib=args.memory,
                                scsi_timeout=args.scsi_timeout, console_log=args.console_log)
        nursery.cancel_scope.cancel()
    report = result.report
    ok = (report is not None and not report.failed and not report.miscompared
          and result.blocks_checked == result.guest_checked == len(report.written))
    print("live migration: OK" if ok else "live migration: FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2,
                        help="migrations, each followed by a WWPN switch (default 2)")
    parser.add_argument("--memory", type=int, default=256, help="guest memory, MiB")
    parser.add_argument("--scsi-timeout", type=int, default=5,
                        help="the guest disks' SCSI command timeout, s (Linux: 30)")
    parser.add_argument("--console-log", help="keep the guest's console here")
    parser.add_argument("--trace", help="write the fabric's trace (.pcap or .pcapng)")
    parser.add_argument("-v", "--verbose", action="store_true", help="the lab's log")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    from fcsoft.guest import GuestError

    try:
        return trio.run(_main, args)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        leaf = exc
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]  # trio's nurseries wrap what they pass on
        if isinstance(leaf, GuestError):  # one line for people, not a traceback
            print(f"live_migration: {leaf}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())

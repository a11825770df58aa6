#!/usr/bin/env python3
"""Multipath with a real Linux guest: multipath-tools' multipathd over both ports of an
array's LU, under continuous verified I/O, while the lab takes each path away and brings
it back (port disable/enable and zoning, through the control API) and ALUA states steer
which path carries the I/O.

    examples/multipath.py [--fast-io-fail-tmo S] [--dev-loss-tmo S] [--block-size N]
                          [--json FILE] [--console-log FILE] [--kvm] [-v]

It starts a lab in this process (a fabric, an FCoE Forwarder, the control API and array1
with ports P1 and P2 in front of one 64 MiB LU), boots a Debian kernel in QEMU whose FCoE
initiator logs in through the forwarder, starts multipathd in the guest (one map, two
paths, grouped by ALUA priority, failback immediate, the rports' fast_io_fail_tmo 5 s and
dev_loss_tmo 120 s), and starts fcsoft.guest.VerifiedIo on the map: a loop in the guest
that writes 4 KiB blocks of a known pattern through the map with O_DIRECT, going round 8
MiB of the LU, and reads each back a few writes later and compares, until it is stopped.
Then, one event at a time, printing each `fcsoft ctl` command it sends:

    ALUA: P2 active/non-optimized          I/O moves to P1 only
    port disable P1 / port enable P1       failover to P2, failback to P1
    ALUA: P1 non-optimized, P2 optimized   I/O moves to P2
    port disable P2 / port enable P2       failover to P1, failback to P2
    zone P2 out / back in                  the same through zoning
    zone P1 (the idle path) out / back in  no failover: nothing was going that way

After each event it waits until the kernel's map shows the expected paths failed and in
use, watches the I/O for two more seconds, and prints the figures: how long the change
took to show, the longest time without a completed I/O (the stall), the I/Os done, failed
and miscompared, and where the I/O went (the guest's per-path counters, and the commands
each array port served), and how often the kernel's ALUA handler retried REPORT TARGET
PORT GROUPS after a unit attention (each such retry holds the map's I/O for 2 s). At the
end the I/O stops and every block written is checked on the array's LU: each holds what
the guest wrote there last. README, "Multipath", explains the figures.

Exit status 0 when the scenario ran and every check held, 1 otherwise. It needs what the
guest lab needs (README, "Attaching a real Linux initiator") and multipath-tools and
dmsetup on the host (apt-get install multipath-tools dmsetup), copied into the guest.
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
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import trio  # noqa: E402

from fcsoft.config import parse_config  # noqa: E402
from fcsoft.control.cli import run_command  # noqa: E402
from fcsoft.guest.image import FCOE_MODULES, MULTIPATH_MODULES  # noqa: E402
from fcsoft.guest.multipath import (  # noqa: E402
    MapState,
    MultipathSettings,
    map_state,
    rport_timeouts,
    start_multipathd,
)
from fcsoft.guest.verified_io import VerifiedIo  # noqa: E402
from fcsoft.server.process import run_process  # noqa: E402
from fcsoft.testing import open_guest  # noqa: E402
from fcsoft.testing.lab import LabHandle  # noqa: E402
from fcsoft.wire.wwn import WWN  # noqa: E402

P1 = WWN("50:01:43:80:00:00:00:01")
P2 = WWN("50:01:43:80:00:00:00:02")
GUEST_MAC = "52:54:00:fc:00:21"
GUEST = WWN("20:00:52:54:00:fc:00:21")  # the guest's ENode: 20:00 + its MAC
NAMES = {P1: "P1", P2: "P2"}
SETTLE_TIMEOUT = 90.0  # seconds an event may take to show in the guest's map
STEADY = 2.0  # seconds the I/O is watched once an event has shown

CONFIG = f"""
[fabric]
name = "lab"
listen = "127.0.0.1:0"

[control]
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[zone]]
name = "mp"
members = ["{GUEST}", "{P1}", "{P2}"]

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{P1}", "{P2}"]

[[array.lun]]
name = "data"
size = "64MiB"

[[array.host]]
name = "vm"
initiators = ["{GUEST}"]
luns = {{ 0 = "data" }}
"""


@dataclass
class Options:
    fast_io_fail_tmo: int = 5
    dev_loss_tmo: int = 120
    block_size: int = 4096
    blocks: int = 2048  # the I/O goes round this many blocks (8 MiB) until it is stopped
    kvm: bool = False
    console_log: str | None = None
    verbose: bool = False


@dataclass
class Event:
    """One change and what the guest's I/O saw of it (times on the guest's clock)."""

    title: str
    commands: list[str]
    expect_using: list[str]  # the array ports I/O must go through once it has shown
    expect_failed: list[str]  # the paths the kernel must have failed
    settle: float = 0.0  # seconds from the first command until the map showed it
    stall: float = 0.0  # the longest time without a completed I/O, from the command on
    ios: int = 0  # I/Os completed from the command until the end of the steady window
    failed: int = 0
    miscompared: int = 0
    path_ios: dict[str, int] = field(default_factory=dict)  # guest: per path, steady window
    array_commands: dict[str, int] = field(default_factory=dict)  # per array port, same
    using: list[str] = field(default_factory=list)  # what the map used after it showed
    # the guest kernel's "alua: rtpg retry": a path came back, the ALUA handler's REPORT
    # TARGET PORT GROUPS met the new nexus's unit attention and is retried 2 s later, with
    # the map's I/O queued meanwhile
    rtpg_retries: int = 0
    start: float = 0.0
    end: float = 0.0


@dataclass
class Report:
    kernel: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    rports: dict[str, list[str]] = field(default_factory=dict)  # port: [fast_io_fail, loss]
    map_name: str = ""
    topology: str = ""
    events: list[Event] = field(default_factory=list)
    ios: int = 0
    failed: int = 0
    miscompared: int = 0
    blocks_checked: int = 0
    block_mismatches: list[str] = field(default_factory=list)
    io_errors: str = ""
    duration: float = 0.0


class ScenarioError(Exception):
    """The scenario could not go on (an event never showed in the guest, ...)."""


def name_of(wwpn: WWN | None) -> str:
    return NAMES.get(wwpn, str(wwpn)) if wwpn is not None else "?"


class Ctl:
    """`fcsoft ctl` against the lab's control API, in this process (the same parser,
    request and answer as the command line); prints each command line."""

    def __init__(self, url: str, say: Callable[[str], None], verbose: bool) -> None:
        self.url = url
        self.say = say
        self.verbose = verbose

    async def __call__(self, *argv: str) -> Any:
        self.say(f"    $ fcsoft ctl {' '.join(argv)}")
        answer, text = await trio.to_thread.run_sync(
            functools.partial(run_command, list(argv), control=self.url))
        if self.verbose:
            for line in text.splitlines():
                self.say(f"      {line}")
        return answer


class Scenario:
    def __init__(self, guest: Any, vio: VerifiedIo, map_name: str, ctl: Ctl,
                 say: Callable[[str], None], report: Report) -> None:
        self.g = guest
        self.vio = vio
        self.map_name = map_name
        self.ctl = ctl
        self.say = say
        self.report = report
        self.rtpg_seen = 0

    async def state(self) -> MapState:
        return await map_state(self.g, self.map_name)

    async def array_commands(self) -> dict[str, int]:
        out = {}
        for port in (P1, P2):
            answer = await self.ctl_quiet("portshow", str(port))
            out[name_of(port)] = int(answer.get("target_counters", {}).get("commands", 0))
        return out

    async def ctl_quiet(self, *argv: str) -> Any:
        answer, _ = await trio.to_thread.run_sync(
            functools.partial(run_command, list(argv), control=self.ctl.url))
        return answer

    async def wait_for(self, event: Event, t0: float) -> MapState:
        """Poll the map until it shows `event`'s expectations."""
        deadline = trio.current_time() + SETTLE_TIMEOUT
        while True:
            st = await self.state()
            using = sorted(name_of(p.target) for p in st.using)
            failed = sorted(name_of(p.target) for p in st.paths if not p.active)
            if using == event.expect_using and failed == event.expect_failed:
                return st
            if trio.current_time() > deadline:
                raise ScenarioError(
                    f"{event.title}: after {SETTLE_TIMEOUT:g} s the map still uses "
                    f"{using or 'no path'} with {failed or 'no path'} failed (expected "
                    f"{event.expect_using}, {event.expect_failed or 'none'} failed); "
                    f"multipathd's log is /run/multipathd.log in the guest")
            await trio.sleep(0.5)

    async def io_after(self, t: float, count: int = 3, timeout: float = 60.0) -> None:
        """Wait until `count` more I/Os completed after guest time `t`."""
        with trio.move_on_after(timeout):
            while True:
                report = await self.vio.poll()
                if sum(1 for r in report.records[-count * 2:] if r.uptime >= t) >= count:
                    return
                await trio.sleep(0.25)
        raise ScenarioError(f"no I/O completed within {timeout:g} s after the change")

    async def event(self, title: str, commands: Sequence[Sequence[str]],
                    using: Sequence[WWN], failed: Sequence[WWN] = ()) -> Event:
        ev = Event(title, [" ".join(c) for c in commands],
                   sorted(name_of(p) for p in using), sorted(name_of(p) for p in failed))
        self.say(f"\n== {len(self.report.events)}. {title}")
        await self.vio.poll()
        t0 = await self.vio.clock()
        for argv in commands:
            await self.ctl(*argv)
        st = await self.wait_for(ev, t0)
        ev.settle = max(0.0, st.uptime - t0)
        await self.io_after(st.uptime)
        before = await self.state()
        array_before = await self.array_commands()
        await trio.sleep(STEADY)
        after = await self.state()
        array_after = await self.array_commands()
        io = await self.vio.poll()
        ev.start, ev.end = t0, after.uptime
        window = io.window(t0, after.uptime)
        ev.stall = io.stall(t0, after.uptime)
        ev.ios = len(window)
        ev.failed = sum(1 for r in window if r.status != 0)
        ev.miscompared = sum(1 for r in window if r.op == "R" and r.verdict == "bad")
        ev.using = sorted(name_of(p.target) for p in after.using)
        for p in after.paths:
            ev.path_ios[name_of(p.target)] = p.ios - before.path(p.target).ios \
                if p.target is not None else 0
        ev.array_commands = {k: array_after[k] - array_before.get(k, 0) for k in array_after}
        self.say(f"    the map shows it after {ev.settle:.1f} s: I/O through "
                 f"{', '.join(ev.using) or 'no path'}"
                 + (f", {', '.join(ev.expect_failed)} failed" if ev.expect_failed else ""))
        self.say(f"    longest time without a completed I/O: {ev.stall:.2f} s; {ev.ios} I/Os, "
                 f"{ev.failed} failed, {ev.miscompared} miscompared")
        self.say(f"    next {STEADY:g} s: guest path I/Os "
                 + ", ".join(f"{k} {v}" for k, v in sorted(ev.path_ios.items()))
                 + "; array port commands "
                 + ", ".join(f"{k} {v}" for k, v in sorted(ev.array_commands.items())))
        ev.rtpg_retries = await self.rtpg_retries() - self.rtpg_seen
        self.rtpg_seen += ev.rtpg_retries
        if ev.rtpg_retries:
            self.say(f"    the kernel's ALUA handler retried REPORT TARGET PORT GROUPS "
                     f"{ev.rtpg_retries} time(s) after a unit attention (I_T nexus loss) on "
                     f"the path that came back: it waits 2 s, the map's I/O queued meanwhile")
        self.report.events.append(ev)
        return ev

    async def rtpg_retries(self) -> int:
        """How many "alua: rtpg retry" lines the guest's kernel has logged."""
        res = await self.g.run("dmesg | grep -c 'alua: rtpg retry'")
        return int(res.output.strip() or 0)


async def scenario(lab: Any, opts: Options, say: Callable[[str], None] = print) -> Report:
    """Run the whole scenario against `lab` (fcsoft.server.process.Lab, started with
    CONFIG); returns its figures. Raises ScenarioError (or a guest-lab error) when it
    cannot go on."""
    report = Report()
    t_start = time.monotonic()
    settings = MultipathSettings(fast_io_fail_tmo=opts.fast_io_fail_tmo,
                                 dev_loss_tmo=opts.dev_loss_tmo)
    report.settings = dataclasses.asdict(settings)
    lu = LabHandle(lab).scsi("array1").units["data"]
    host, port = lab.control_address
    ctl = Ctl(f"http://{host}:{port}", say, opts.verbose)
    say(f"lab: fabric {lab.address[0]}:{lab.address[1]}, FCoE forwarder "
        f"{lab.fcf().address[0]}:{lab.fcf().address[1]}, control API {ctl.url}")
    say(f"array1: P1 = {P1}, P2 = {P2}, LUN 0 (64 MiB) mapped to the guest {GUEST}; "
        f"zone mp = guest, P1, P2")
    say("booting the guest (QEMU, TCG) ...")
    async with open_guest(fcoe=lab.fcf().address, mac=GUEST_MAC, kvm=opts.kvm,
                          modules=FCOE_MODULES + MULTIPATH_MODULES,
                          console_log=opts.console_log) as g:
        report.kernel = g.kernel
        report.timings = {k: round(v, 1) for k, v in g.timings.items()}
        say(f"guest up ({g.kernel}): " + ", ".join(
            f"{k} {v:.1f} s" for k, v in g.timings.items()))
        t = time.monotonic()
        maps = await start_multipathd(g, settings)
        if len(maps) != 1:
            raise ScenarioError(f"multipathd set up {len(maps)} maps, expected 1")
        m = maps[0]
        report.map_name = m.name
        report.timings["multipathd"] = round(time.monotonic() - t, 1)
        report.rports = {name_of(w): list(v) for w, v in (await rport_timeouts(g)).items()}
        report.topology = (await g.run("multipath -ll", check=True)).output
        say(f"multipathd: map {m.name} ({m.wwid}) on {m.device}; rports "
            + ", ".join(f"{k} fast_io_fail_tmo={v[0]} dev_loss_tmo={v[1]}"
                        for k, v in sorted(report.rports.items())))
        for line in report.topology.splitlines():
            say(f"    {line}")
        vio = VerifiedIo(g, m.device, blocks=opts.blocks, block_size=opts.block_size,
                         writes=10**9)
        await vio.start()
        say(f"verified I/O: write {opts.block_size} bytes at a time round {opts.blocks} "
            f"blocks of {m.device}, each read back and compared, O_DIRECT")
        s = Scenario(g, vio, m.name, ctl, say, report)
        both = [str(GUEST), str(P1), str(P2)]
        await s.event("baseline: both ports active/optimized", [], using=[P1, P2])
        await s.event("ALUA: P2 active/non-optimized",
                      [["alua", "array1", "2", "active-non-optimized"]], using=[P1])
        await s.event("port disable P1 (the path in use)",
                      [["port", "disable", str(P1)]], using=[P2], failed=[P1])
        await s.event("port enable P1", [["port", "enable", str(P1)]], using=[P1])
        await s.event("ALUA: P1 active/non-optimized, P2 active/optimized",
                      [["alua", "array1", "1", "active-non-optimized"],
                       ["alua", "array1", "2", "active-optimized"]], using=[P2])
        await s.event("port disable P2 (the path in use)",
                      [["port", "disable", str(P2)]], using=[P1], failed=[P2])
        await s.event("port enable P2", [["port", "enable", str(P2)]], using=[P2])
        await s.event("zoning: P2 (the path in use) out of the guest's zone",
                      [["zone", "set", "mp", str(GUEST), str(P1)]], using=[P1], failed=[P2])
        await s.event("zoning: P2 back", [["zone", "set", "mp", *both]], using=[P2])
        await s.event("zoning: P1 (the idle path) out of the guest's zone",
                      [["zone", "set", "mp", str(GUEST), str(P2)]], using=[P2], failed=[P1])
        await s.event("zoning: P1 back", [["zone", "set", "mp", *both]], using=[P2])
        say("\nstopping the I/O ...")
        io = await vio.stop()
    report.ios = len(io.records)
    report.failed = len(io.failed)
    report.miscompared = len(io.miscompared)
    report.io_errors = io.errors
    # every block holds what the guest wrote there last: read on the array's LU
    for block, writes in sorted(vio.last_writes(io).items()):
        got = bytes(lu.backing.read(block * opts.block_size, opts.block_size))
        report.blocks_checked += 1
        if not any(got == vio.expected_block(w) for w in writes):
            report.block_mismatches.append(
                f"block {block}: holds other data than write {writes} put there")
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
    if report.failed or report.miscompared:
        out.append(f"{report.failed} I/Os failed and {report.miscompared} miscompared "
                   f"(the guest's dd said: {report.io_errors.strip()[-300:]!r})")
    if report.block_mismatches:
        out.append(f"{len(report.block_mismatches)} blocks do not hold the last data "
                   f"written: {report.block_mismatches[0]}")
    for ev in report.events:
        quiet = [k for k, v in ev.path_ios.items() if k not in ev.expect_using and v]
        if quiet:
            out.append(f"{ev.title}: I/O went through {quiet} too: {ev.path_ios}")
        if not any(ev.path_ios.get(k, 0) for k in ev.expect_using):
            out.append(f"{ev.title}: no I/O through {ev.expect_using}: {ev.path_ios}")
    for port, (fast_io_fail, loss) in report.rports.items():
        want = (str(report.settings.get("fast_io_fail_tmo")),
                str(report.settings.get("dev_loss_tmo")))
        if (fast_io_fail, loss) != want:
            out.append(f"{port}'s rport has fast_io_fail_tmo={fast_io_fail} "
                       f"dev_loss_tmo={loss}, not {want[0]} / {want[1]}")
    return out


def summary(report: Report) -> str:
    rows = [["event", "shown after", "longest gap", "I/Os", "failed", "miscompared",
             "I/O through", "RTPG retries"]]
    for i, ev in enumerate(report.events):
        rows.append([f"{i}. {ev.title}", f"{ev.settle:.1f} s", f"{ev.stall:.2f} s",
                     str(ev.ios), str(ev.failed), str(ev.miscompared),
                     ", ".join(ev.using), str(ev.rtpg_retries or "")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"\nall I/O: {report.ios} I/Os, {report.failed} failed, "
                 f"{report.miscompared} miscompared; {report.blocks_checked} blocks checked on "
                 f"the array's LU: {len(report.block_mismatches)} wrong")
    lines.append(f"run time {report.duration:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fast-io-fail-tmo", type=int, default=5, metavar="S",
                   help="seconds before I/O on a lost path fails over (default 5)")
    p.add_argument("--dev-loss-tmo", type=int, default=120, metavar="S",
                   help="seconds before a lost path's devices are removed (default 120)")
    p.add_argument("--block-size", type=int, default=4096, metavar="N",
                   help="bytes per verified I/O, a multiple of 512 (default 4096)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    p.add_argument("--console-log", metavar="FILE", help="keep the guest's console here")
    p.add_argument("--kvm", action="store_true", help="try KVM before TCG")
    p.add_argument("-v", "--verbose", action="store_true", help="print ctl's answers too")
    args = p.parse_args(argv)
    opts = Options(fast_io_fail_tmo=args.fast_io_fail_tmo, dev_loss_tmo=args.dev_loss_tmo,
                   block_size=args.block_size, kvm=args.kvm, console_log=args.console_log,
                   verbose=args.verbose)
    try:
        MultipathSettings(fast_io_fail_tmo=opts.fast_io_fail_tmo,
                          dev_loss_tmo=opts.dev_loss_tmo)
        if opts.block_size < 512 or opts.block_size % 512:
            raise ValueError("--block-size must be a multiple of 512")
    except ValueError as exc:
        p.error(str(exc))
    from fcsoft.guest.errors import GuestError
    from fcsoft.logs import configure

    configure(level=30)  # the lab's own log: warnings and errors only
    try:
        report = trio.run(run, opts)
    except (ScenarioError, GuestError) as exc:
        print(f"multipath: {exc}", file=sys.stderr)
        return 1
    print("\n" + summary(report))
    if args.json:
        Path(args.json).write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    found = problems(report)
    for line in found:
        print(f"UNEXPECTED: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

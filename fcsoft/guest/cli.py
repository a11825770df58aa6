"""`fcsoft guest`: boot a Linux guest attached to an FCF, run commands in it.

    fcsoft guest [--fcoe HOST:PORT]... [--wwpn WWPN | --mac MAC] [--vport WWPN[,WWNN]]...
                 [--run CMD]... [--script FILE] [--timeout S] [--kvm] [--kernel FILE]
                 [--modules DIR] [--mtu N] [--memory MIB] [--no-wait] [--login-timeout S]
                 [--boot-timeout S] [--console-log FILE] [-v]
    fcsoft guest --lio --fcoe HOST:PORT... [--lun N:SIZE[:file]]... [--acl WWPN[=N,...]]...
                 [--time S] [--wwpn WWPN | --mac MAC] [...]

Boots QEMU with the cached kernel and initramfs (built on first use), loads the FCoE
modules, brings up FCoE on the NIC attached to the FCF at --fcoe, waits until the fc_host
is Online and the SCSI scan has settled, creates the --vport NPIV ports, then runs each
--run command (or the --script file; `-` is stdin) with `sh` in the guest. Their stdout and
stderr are copied to ours; the exit status is the first failing command's, or 0. Without
--run or --script a summary of the guest's fc_hosts and SCSI devices is printed.

With --lio the guest is an FC target instead (Linux LIO over tcm_fc, fcsoft.guest.lio):
every --fcoe NIC is a target port serving the --lun LUNs (memory backstores, or files in
the guest with `:file`; default one LUN 0 of 64 MiB) to the --acl initiators. Once every
port is Online on the fabric, their WWPNs are printed on stdout, one per line, and the
target stays up until SIGINT or SIGTERM, or for --time seconds; then QEMU is killed and
the exit status is 0.

Exit statuses: the commands' own, 124 when a command runs past --timeout, 1 when the guest
cannot be built or booted or the login does not happen, 2 for bad usage, 130 / 143 when
interrupted (SIGINT / SIGTERM) while running commands (0 for an LIO target told to stop).
QEMU is killed in every case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_TIMEOUT = 124  # as timeout(1)

SUMMARY = (
    "for h in /sys/class/fc_host/host*; do\n"
    "  [ -d \"$h\" ] || continue\n"
    "  echo \"${h##*/}: port_name $(cat $h/port_name) node_name $(cat $h/node_name)"
    " port_id $(cat $h/port_id) $(cat $h/port_state)\"\n"
    "done\n"
    "for r in /sys/class/fc_remote_ports/rport-*; do\n"
    "  [ -d \"$r\" ] || continue\n"
    "  echo \"${r##*/}: port_name $(cat $r/port_name) port_id $(cat $r/port_id)"
    " $(cat $r/roles) $(cat $r/port_state)\"\n"
    "done\n"
    "for d in /sys/class/scsi_device/*; do\n"
    "  [ -d \"$d\" ] || continue\n"
    "  sg=$(ls $d/device/scsi_generic 2>/dev/null)\n"
    "  echo \"${d##*/}: $(cat $d/device/vendor) $(cat $d/device/model) ${sg:+/dev/$sg}\"\n"
    "done\n"
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "guest", help="boot a Linux guest whose FCoE initiator logs into an FCF",
        description="Boot a Linux guest (QEMU) whose software FCoE initiator is attached to "
                    "the FCF at --fcoe, run commands in it and print their output; exits "
                    "with the commands' status. Builds and caches the kernel and initramfs "
                    "under $XDG_CACHE_HOME/fcsoft on first use.")
    p.add_argument("--fcoe", metavar="HOST:PORT", action="append", default=[],
                   help="the FCF's -netdev stream listener (without it: no FCoE NIC); "
                        "repeatable, one NIC each")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--wwpn", metavar="WWPN",
                     help="the ENode's port name, 20:00:xx:xx:xx:xx:xx:xx (sets the MAC)")
    who.add_argument("--mac", metavar="MAC",
                     help="the ENode's MAC (WWPN 20:00:MAC, WWNN 10:00:MAC; default: "
                          "52:54:00:fc:00:01, which the built-in lab maps)")
    p.add_argument("--vport", action="append", default=[], metavar="WWPN[,WWNN]",
                   help="create an NPIV vport once logged in (repeatable; the WWNN defaults "
                        "to 10:00 and the WWPN's last six bytes)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--run", action="append", dest="commands", metavar="CMD",
                      help="a shell command to run in the guest (repeatable; stops at the "
                           "first failure)")
    what.add_argument("--script", metavar="FILE", help="a shell script to run (- for stdin)")
    p.add_argument("--timeout", type=_seconds, default=120.0, metavar="S",
                   help="seconds each command may run (default: 120)")
    p.add_argument("--kvm", action="store_true",
                   help="try KVM (falls back to TCG when /dev/kvm cannot be used)")
    p.add_argument("--kernel", metavar="FILE", help="boot this bzImage instead of Debian's")
    p.add_argument("--modules", metavar="DIR",
                   help="the --kernel's module tree (its lib/modules/VERSION directory)")
    p.add_argument("--mtu", type=int, default=None, metavar="N",
                   help="the FCoE NIC's MTU (default: 2500, full-size FC frames; 1500 caps "
                        "the FC payload at 1452 bytes)")
    p.add_argument("--memory", type=int, default=None, metavar="MIB",
                   help="guest memory in MiB (default: 512, more for --lio LUNs)")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for the fabric login (run the commands once FCoE is "
                        "started)")
    p.add_argument("--login-timeout", type=_seconds, default=90.0, metavar="S",
                   help="seconds to wait for the fc_host to come Online (default: 90)")
    p.add_argument("--boot-timeout", type=_seconds, default=180.0, metavar="S",
                   help="seconds to wait for the guest to boot (default: 180)")
    p.add_argument("--console-log", metavar="FILE",
                   help="keep the guest's console log in FILE")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="report progress and timings on stderr")
    lio = p.add_argument_group("FC target (LIO)")
    lio.add_argument("--lio", action="store_true",
                     help="make the guest a Linux LIO FC target on every --fcoe port; print "
                          "their WWPNs once Online and stay up until SIGINT/SIGTERM")
    lio.add_argument("--lun", action="append", default=[], metavar="N:SIZE[:file]",
                     help="a LUN of the target: number, size (64MiB, 1GiB ...), and ':file' "
                          "for a file backstore instead of memory (repeatable; default "
                          "0:64MiB)")
    lio.add_argument("--acl", action="append", default=[], metavar="WWPN[=N,...]",
                     help="an initiator allowed in, seeing every LUN or the LUNs listed "
                          "(WWPN= for none; repeatable)")
    lio.add_argument("--time", type=_seconds, default=None, metavar="S",
                     help="stop the target after S seconds (default: run until stopped)")
    p.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number of seconds {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"seconds must be more than 0, not {text!r}")
    return value


def _commands(args: argparse.Namespace) -> list[str]:
    from fcsoft.cli import EXIT_USAGE, UserError

    if args.commands:
        return list(args.commands)
    if args.script is None:
        return [SUMMARY]
    try:
        if args.script == "-":
            return [sys.stdin.read()]
        return [Path(args.script).read_text()]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"--script: cannot read {args.script}: {reason}", EXIT_USAGE) from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """open_guest's keyword arguments, checked; UserError (status 2) on bad usage."""
    from fcsoft.cli import EXIT_USAGE, UserError
    from fcsoft.guest import fcoe as fc
    from fcsoft.guest.session import DEFAULT_MTU

    def usage(message: str) -> UserError:
        return UserError(message, EXIT_USAGE)

    fcoes = []
    for text in args.fcoe:
        from fcsoft.config import parse_listen

        try:
            address = parse_listen(text)
        except ValueError as exc:
            raise usage(f"--fcoe: {exc}") from None
        if address[1] == 0:
            raise usage("--fcoe: give the FCF's port (not 0)")
        fcoes.append(address)
    fcoe: Any = fcoes[0] if len(fcoes) == 1 else (fcoes or None)
    mac = None
    try:
        if args.wwpn is not None:
            mac = fc.mac_from_wwpn(args.wwpn)
        elif args.mac is not None:
            mac = fc.parse_mac(args.mac)
    except ValueError as exc:
        raise usage(f"--{'wwpn' if args.wwpn else 'mac'}: {exc}") from None
    vports = []
    for v in args.vport:
        try:
            vports.append(fc.parse_vport(v))
        except ValueError as exc:
            raise usage(f"--vport: {exc}") from None
    if vports and fcoe is None:
        raise usage("--vport needs --fcoe")
    if vports and args.no_wait:
        raise usage("--vport needs the login: drop --no-wait")
    if args.modules and not args.kernel:
        raise usage("--modules goes with --kernel")
    for opt, value in (("--kernel", args.kernel), ("--modules", args.modules)):
        if value is not None and not Path(value).exists():
            raise usage(f"{opt}: {value}: no such file or directory")
    lio = _lio_spec(args, fcoe is not None, usage)
    mtu = DEFAULT_MTU if args.mtu is None else args.mtu
    if not 576 <= mtu <= 9000:
        raise usage(f"--mtu: {mtu} is out of range (576 to 9000)")
    if args.memory is not None and not 128 <= args.memory <= 65536:
        raise usage(f"--memory: {args.memory} MiB is out of range (128 to 65536)")
    if lio is not None and args.memory is not None and args.memory < lio.min_memory_mib():
        raise usage(f"--memory: {args.memory} MiB is too little for the LUNs: give at least "
                    f"{lio.min_memory_mib()}")
    return {
        "fcoe": fcoe, "mac": mac, "vports": vports, "kvm": args.kvm, "kernel": args.kernel,
        "kernel_modules": args.modules, "mtu": mtu, "memory_mib": args.memory, "lio": lio,
        "wait_online": not args.no_wait, "login_timeout": args.login_timeout,
        "boot_timeout": args.boot_timeout, "console_log": args.console_log,
    }


def _lio_spec(args: argparse.Namespace, has_fcoe: bool, usage: Any) -> Any:
    """The LioSpec of --lio, --lun and --acl (None without --lio); usage errors."""
    from fcsoft.guest import lio as lio_

    if not args.lio:
        for option, given in (("--lun", args.lun), ("--acl", args.acl),
                              ("--time", args.time is not None)):
            if given:
                raise usage(f"{option} goes with --lio")
        return None
    if not has_fcoe:
        raise usage("--lio needs --fcoe (each FCoE NIC is a target port)")
    for option, given in (("--run", args.commands), ("--script", args.script),
                          ("--vport", args.vport), ("--no-wait", args.no_wait)):
        if given:
            raise usage(f"{option} does not go with --lio (the target runs until stopped)")
    try:
        luns = tuple(lio_.parse_lun(t) for t in args.lun) or (lio_.LioLun(0, 64 << 20),)
    except ValueError as exc:
        raise usage(f"--lun: {exc}") from None
    try:
        acls = tuple(lio_.parse_acl(t) for t in args.acl)
        return lio_.LioSpec(luns, acls)
    except ValueError as exc:
        raise usage(f"--{'acl' if args.acl else 'lun'}: {exc}") from None


def _write(stream: Any, data: bytes) -> None:
    if data:
        stream.buffer.write(data)
        stream.buffer.flush()


def run(args: argparse.Namespace) -> int:
    """Boot, run the commands, report; the exit status."""
    import signal

    import trio

    from fcsoft.cli import UserError, _find
    from fcsoft.guest.errors import GuestError, GuestTimeout
    from fcsoft.guest.session import open_guest

    options = _options(args)
    commands = [] if options["lio"] is not None else _commands(args)
    status = 0

    def note(text: str) -> None:
        if args.verbose:
            print(f"fcsoft: {text}", file=sys.stderr, flush=True)

    async def session() -> None:
        nonlocal status
        async with open_guest(**options) as g:
            if g.mac is not None:
                note(f"guest up: ENode MAC {g.mac}, WWPN {g.wwpn}, WWNN {g.wwnn}")
            note("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in g.timings.items()))
            if g.lio is not None:
                await _serve_target(g, args.time)
                return
            for command in commands:
                try:
                    res = await g.run(command, timeout=args.timeout)
                except GuestTimeout as exc:
                    _write(sys.stdout, exc.stdout)
                    _write(sys.stderr, exc.stderr)
                    raise UserError(str(exc), EXIT_TIMEOUT) from None
                _write(sys.stdout, res.stdout)
                _write(sys.stderr, res.stderr)
                if res.status != 0:
                    status = res.status
                    return

    async def main() -> None:
        nonlocal status
        async with trio.open_nursery() as nursery:
            async def on_signal() -> None:
                nonlocal status
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        # an LIO target is a server: being told to stop is its normal end
                        status = 0 if options["lio"] is not None else 128 + signum
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(on_signal)
            await session()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except (GuestError, UserError, ValueError, BaseExceptionGroup) as exc:
        user = _find(exc, UserError)
        if user is not None:
            raise user from None
        err = _find(exc, GuestError) or _find(exc, ValueError)
        if err is None:
            raise
        raise UserError(str(err)) from None
    return status


async def _serve_target(g: Any, seconds: float | None) -> None:
    """Print the target ports' WWPNs (stdout) and what they serve (stderr), then wait."""
    import trio

    from fcsoft.guest import lio as lio_
    from fcsoft.names import fcid  # sysfs says 0x010200; fcsoft prints 010200

    hosts = {h.port_name: h for h in await g.fc_hosts()}
    for wwpn in g.target_ports:
        print(wwpn, flush=True)
    for wwpn in g.target_ports:
        host = hosts.get(wwpn)
        where = f"N_Port_ID {fcid(host.port_id)}" if host is not None else "N_Port_ID unknown"
        print(f"fcsoft: LIO target port {wwpn} ({where}) online", file=sys.stderr,
              flush=True)
    until = f"for {seconds:g} s" if seconds is not None else "until SIGINT or SIGTERM"
    print(f"fcsoft: serving {lio_.describe(g.lio)}; up {until}", file=sys.stderr, flush=True)
    if seconds is None:
        await trio.sleep_forever()
    await trio.sleep(seconds)

"""`open_guest`: boot a Linux guest with an FCoE initiator, run commands in it, kill it.

    async with open_guest(fcoe=("127.0.0.1", 3260), mac="52:54:00:aa:00:01") as g:
        res = await g.run("sg_luns /dev/sg0")
        print(res.status, res.output)

Theory of operation. `open_guest` builds (or finds in the cache) the kernel and initramfs
(fcsoft.guest.image), makes a private temporary directory for QEMU's two unix sockets (the
command agent and QMP) and its own stderr, starts QEMU (fcsoft.guest.qemu) and waits for the
agent's READY line. Then, through the agent, it loads the modules, brings up an FCoE
controller on each FCoE NIC, waits until every fc_host is Online and the SCSI scan has
settled, creates the NPIV vports and waits again, and hands the `Guest` to the caller.

One guest runs any number of commands, one at a time (`Guest.run`), each with its own
timeout enforced inside the guest (the agent kills the command's whole session) and, with
a margin, by the host (a guest that stops answering is declared hung).

`Guest.migrate()` live-migrates the running guest to a new QEMU process (fcsoft.guest.
migration): its FCoE NICs keep their MACs and open new connections to the FCFs, and the
agent, the control port and the monitor move to the new QEMU, even under a running command.

However the block ends (normally, by an exception, by cancellation), QEMU is killed and the
temporary directory removed. The kernel's console goes to a log file under
`$XDG_CACHE_HOME/fcsoft/guest/logs/` (or `console_log=`); error messages name it. It is
deleted when the block ends normally and kept when it ends with an exception (the 20 newest
are kept), unless the caller chose the path, in which case it is always kept.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio

from fcsoft.wire.wwn import WWN

from . import fcoe as fc
from . import image as img
from . import lio as lio_
from . import qemu as qm
from .errors import BootError, GuestError, GuestTimeout

if TYPE_CHECKING:
    from .migration import MigrationResult
from .protocol import AgentParser, Ready, Reply, encode_kill, encode_request
from .qmp import Qmp

Address = tuple[str, int]

DEFAULT_TIMEOUT = 120.0  # seconds a command may run unless told otherwise
BOOT_TIMEOUT = 180.0  # from QEMU's start to the agent's READY
LOGIN_TIMEOUT = 90.0  # for every fc_host to come Online
SETTLE_QUIET = 2.0  # seconds without change that mean the SCSI scan has settled
DEFAULT_MTU = 2500  # FCoE NIC MTU: room for full-size FC frames (FCoE needs 2158 bytes)
HUNG_MARGIN = 30.0  # extra seconds the host waits for a reply past a command's timeout
KEEP_LOGS = 20
WORKDIR_PREFIX = "fcsoft-guest-"
# no IPv6: the FCoE NIC then sends FCoE and FIP only (no neighbour discovery or MLD)
KERNEL_ARGS = ("ipv6.disable=1",)

_log_counter = count(1)
_macs_in_use: set[str] = set()  # by this process's guests: default MACs skip them


@dataclass(frozen=True)
class CommandResult:
    """What a command in the guest returned."""

    command: str
    status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def output(self) -> str:
        """stdout as text (UTF-8, undecodable bytes replaced)."""
        return self.stdout.decode(errors="replace")

    @property
    def errors(self) -> str:
        """stderr as text."""
        return self.stderr.decode(errors="replace")

    def check(self) -> CommandResult:
        """Self when the status is 0, else CommandFailed."""
        if self.status != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(GuestError):
    """A command that had to succeed exited with a non-zero status."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        last = [ln for ln in result.errors.splitlines() if ln.strip()]
        detail = f": {last[-1].strip()}" if last else ""
        super().__init__(f"guest command {_short(result.command)} exited with status "
                         f"{result.status}{detail}")


@dataclass(frozen=True)
class FcHost:
    """One /sys/class/fc_host entry (a physical FCoE port or an NPIV vport)."""

    name: str
    port_name: WWN | None
    node_name: WWN | None
    port_id: str
    port_state: str
    symbolic_name: str


@dataclass(frozen=True)
class ScsiDevice:
    """One SCSI device the guest sees: `sg` ("/dev/sg0"), `block` ("/dev/sda" or ""), the
    H:C:T:L address, the LUN, and the WWPN of the target port it was found behind."""

    hctl: str
    sg: str
    block: str
    target: WWN | None
    vendor: str
    model: str

    @property
    def lun(self) -> int:
        return int(self.hctl.rsplit(":", 1)[1])


def _short(command: str, limit: int = 60) -> str:
    one = " ".join(command.split())
    return repr(one if len(one) <= limit else one[: limit - 3] + "...")


def _wwn_or_none(text: str) -> WWN | None:
    try:
        return WWN.parse(text)
    except ValueError:
        return None


class Guest:
    """A booted guest; commands go through its agent. Made by `open_guest`."""

    def __init__(self, agent: trio.SocketStream, control: trio.SocketStream, qmp: Qmp,
                 proc: qm.QemuProcess, console_log: Path, kernel: str,
                 macs: Sequence[str]) -> None:
        self._agent = agent  # read side: the agent's replies
        self._agent_out = agent  # write side: requests (after a migration, the destination)
        # agent streams of later QEMUs (migrations): read on once `_agent` ends
        self._agent_next: list[trio.SocketStream] = []
        self._send_lock = trio.Lock()  # held by a migration: no request is cut in two
        self._control = control
        self._parser = AgentParser()
        self._events: list[Ready | Reply] = []
        self._lock = trio.Lock()
        self._ids = count(1)
        self._broken: str | None = None
        self.qmp = qmp
        self.process = proc
        self.console_log = console_log
        self.kernel = kernel
        self.macs = list(macs)
        self.timings: dict[str, float] = {}
        #: an LIO target guest: what it serves, and its target ports (one per FCoE NIC)
        self.lio: lio_.LioSpec | None = None
        self.target_ports: list[WWN] = []
        #: how QEMU was started and where its sockets live (for migrations)
        self.qemu_config: qm.QemuConfig | None = None
        self.workdir: Path | None = None
        #: the migrations this guest went through, in order
        self.migrations: list[MigrationResult] = []
        self._cleanups: list[Any] = []  # async callables: the later QEMUs and their streams

    # -- identity --------------------------------------------------------------------
    @property
    def mac(self) -> str | None:
        """The first FCoE NIC's MAC (None without FCoE)."""
        return self.macs[0] if self.macs else None

    @property
    def wwpn(self) -> WWN | None:
        """The first ENode's port name, 20:00:MAC."""
        return fc.wwpn_for_mac(self.macs[0]) if self.macs else None

    @property
    def wwnn(self) -> WWN | None:
        """The first ENode's node name, 10:00:MAC."""
        return fc.wwnn_for_mac(self.macs[0]) if self.macs else None

    # -- commands --------------------------------------------------------------------
    async def run(self, command: str, *, timeout: float | None = DEFAULT_TIMEOUT,
                  input: bytes = b"", check: bool = False) -> CommandResult:
        """Run `command` with `sh` in the guest; its status, stdout and stderr.

        `input` is the command's stdin. GuestTimeout (with the output so far) when it runs
        longer than `timeout` seconds (None: no limit); with `check`, CommandFailed when
        its status is not 0."""
        async with self._lock:
            if self._broken is not None:
                raise GuestError(self._broken)
            rid = next(self._ids)
            await self._send(encode_request(rid, command.encode(), input, timeout))
            limit = float("inf") if timeout is None else timeout + max(HUNG_MARGIN, timeout)
            try:
                with trio.move_on_after(limit) as scope:
                    reply = await self._reply(rid)
            except trio.Cancelled:
                await self._kill(rid)  # the caller gave up: so does the guest
                raise
            if scope.cancelled_caught:
                await self._kill(rid)
                self._broken = (f"the guest stopped answering (command {_short(command)}); "
                                f"console log: {self.console_log}")
                raise GuestError(self._broken)
        if reply.timed_out:
            raise GuestTimeout(f"guest command {_short(command)} timed out after "
                               f"{timeout:g} s", reply.stdout, reply.stderr)
        result = CommandResult(command, reply.status, reply.stdout, reply.stderr)
        return result.check() if check else result

    async def _kill(self, rid: int) -> None:
        """Ask the agent to kill request `rid` (best effort, shielded, within 2 s)."""
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            async with self._send_lock:
                try:
                    await self._control.send_all(encode_kill(rid))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:  # waits for a migration under way to finish
            # shielded: a request cut short by a cancellation would leave the agent reading
            # the next request as the rest of this one
            with trio.CancelScope(shield=True):
                try:
                    await self._agent_out.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._broken = await self._gone()
                    raise GuestError(self._broken) from None

    async def _event(self) -> Ready | Reply:
        while not self._events:
            try:
                data = await self._agent.receive_some(1 << 20)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                if self._agent_next:
                    # the source QEMU of a migration is gone, and all it passed on has
                    # been read: the rest of the stream comes from the destination
                    old, self._agent = self._agent, self._agent_next.pop(0)
                    with trio.CancelScope(shield=True):
                        await old.aclose()
                    continue
                self._broken = await self._gone()
                raise GuestError(self._broken)
            self._events += self._parser.feed(data)
        return self._events.pop(0)

    async def _reply(self, rid: int) -> Reply:
        while True:
            event = await self._event()
            if isinstance(event, Reply) and event.id == rid:
                return event
            if isinstance(event, Ready):
                self._broken = f"the guest rebooted; console log: {self.console_log}"
                raise GuestError(self._broken)
            # a reply to a request whose caller was cancelled: drop it

    async def _gone(self) -> str:
        """Why the agent's connection ended, as one line."""
        with trio.move_on_after(5):
            await self.process.wait()
        return describe_exit(self.process, self.console_log)

    async def wait_until(self, condition: str, timeout: float, *, interval: float = 0.25,
                         what: str | None = None) -> None:
        """Wait until the shell `condition` succeeds in the guest (polled every `interval`
        seconds there); GuestTimeout after `timeout` seconds."""
        script = (f"until ( {condition}\n) >/dev/null 2>&1; do sleep {interval:g}; done")
        try:
            await self.run(script, timeout=timeout)
        except GuestTimeout:
            raise GuestTimeout(f"{what or _short(condition)}: still not so after "
                               f"{timeout:g} s (console log: {self.console_log})") from None

    async def wait_online(self, timeout: float = LOGIN_TIMEOUT) -> None:
        """Wait until there is an fc_host and every fc_host's port_state is Online."""
        try:
            await self.wait_until(fc.ALL_ONLINE, timeout)
        except GuestTimeout:
            states = ", ".join(f"{h.name} {h.port_state}" for h in await self.fc_hosts())
            raise GuestTimeout(f"the fabric login did not complete within {timeout:g} s "
                               f"({states or 'no fc_host'}; console log: "
                               f"{self.console_log})") from None

    async def settle(self, quiet: float = SETTLE_QUIET, timeout: float = 120.0) -> None:
        """Wait until remote ports, their states and SCSI devices have not changed for
        `quiet` seconds (the SCSI scan has settled)."""
        try:
            await self.run(fc.settle_script(quiet), timeout=timeout)
        except GuestTimeout:
            raise GuestTimeout(f"the SCSI scan did not settle within {timeout:g} s "
                               f"(console log: {self.console_log})") from None

    async def fc_hosts(self) -> list[FcHost]:
        """Every fc_host in the guest, with its names, N_Port_ID and state."""
        res = await self.run(fc.FC_HOSTS, check=True)
        hosts = []
        for line in res.output.splitlines():
            fields = dict(f.split("=", 1) for f in line.split("\t") if "=" in f)
            hosts.append(FcHost(
                name=fields.get("name", ""),
                port_name=_wwn_or_none(fields.get("port_name", "")),
                node_name=_wwn_or_none(fields.get("node_name", "")),
                port_id=fields.get("port_id", ""),
                port_state=fields.get("port_state", ""),
                symbolic_name=fields.get("symbolic_name", ""),
            ))
        return hosts

    async def scsi_devices(self) -> list[ScsiDevice]:
        """Every SCSI device in the guest, with its sg and block nodes and target port."""
        res = await self.run(fc.SCSI_DEVICES, check=True)
        found = []
        for line in res.output.splitlines():
            f = dict(x.split("=", 1) for x in line.split("\t") if "=" in x)
            found.append(ScsiDevice(
                hctl=f.get("hctl", ""),
                sg=f"/dev/{f['sg']}" if f.get("sg") else "",
                block=f"/dev/{f['block']}" if f.get("block") else "",
                target=_wwn_or_none(f.get("target", "")),
                vendor=f.get("vendor", "").strip(),
                model=f.get("model", "").strip(),
            ))
        return found

    async def create_vport(self, wwpn: WWN | str, wwnn: WWN | str | None = None,
                           host: str | None = None) -> None:
        """Create an NPIV vport on `host` (default: the first FCoE fc_host). The WWNN
        defaults to 10:00 followed by the WWPN's last six bytes."""
        port = WWN(wwpn) if isinstance(wwpn, str) else wwpn
        node = (fc.parse_vport(str(port))[1] if wwnn is None
                else (WWN(wwnn) if isinstance(wwnn, str) else wwnn))
        if host is None:
            physical = [h for h in await self.fc_hosts() if "fcoe" in h.symbolic_name.lower()
                        or h.port_name == self.wwpn]
            if not physical:
                raise GuestError("no FCoE fc_host to create a vport on")
            host = physical[0].name
        arg = fc.vport_create_arg(port, node)
        await self.run(f"echo {arg} > /sys/class/fc_host/{host}/vport_create", check=True)

    async def migrate(self, *, max_bandwidth: int | None = None,
                      downtime_limit_ms: int | None = None,
                      timeout: float = 300.0) -> MigrationResult:
        """Live-migrate the guest to a new QEMU process on this machine and return the
        figures (QEMU's downtime and total time, RAM sent, the lab's own timings).

        The destination QEMU has the same devices and MACs; its FCoE NICs open their own
        connections to the FCFs. Commands (even one running now), `qmp` and `process` go
        on with the destination; the source QEMU is killed. `max_bandwidth` (bytes/s)
        defaults to 4 GiB/s instead of QEMU's 32 MiB/s, both ends being on one machine;
        `downtime_limit_ms` is QEMU's downtime-limit (default 300). MigrationError (a
        GuestError) when it fails or takes longer than `timeout` s: the guest then runs on
        in the source QEMU. Commands started while it runs wait for it to end. See
        fcsoft.guest.migration."""
        from . import migration

        return await migration.migrate(
            self, max_bandwidth=(migration.LOCAL_BANDWIDTH if max_bandwidth is None
                                 else max_bandwidth),
            downtime_limit_ms=downtime_limit_ms, timeout=timeout)

    async def dmesg(self) -> str:
        """The guest kernel's log."""
        return (await self.run("dmesg", check=True)).output

    def console_text(self) -> str:
        """The console log so far."""
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write `data` to `path` in the guest."""
        quoted = "'" + path.replace("'", "'\\''") + "'"
        await self.run(f"cat > {quoted} && chmod {mode:o} {quoted}", input=data, check=True)


def describe_exit(proc: qm.QemuProcess, console_log: Path) -> str:
    """One line on why a guest is gone: QEMU's exit status and message, a kernel panic."""
    status = proc.returncode
    if status is None:
        return f"the guest agent's connection closed (console log: {console_log})"
    try:
        console = console_log.read_text(errors="replace")
    except OSError:
        console = ""
    panic = [ln for ln in console.splitlines() if "Kernel panic" in ln]
    if panic:
        return f"the guest kernel panicked: {panic[-1].strip()} (console log: {console_log})"
    message = proc.stderr_line()
    how = f"QEMU exited with status {status}" + (f": {message}" if message else "")
    return f"{how} (console log: {console_log})"


def _remove_orphaned_workdirs() -> None:
    """Remove the temporary directories of guest labs whose process died without cleaning
    up (SIGKILL): their names carry the owner's process ID."""
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = d.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or d.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            continue


def _new_log_path() -> Path:
    logs = img.cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    old = sorted(logs.glob("console-*.log"), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - KEEP_LOGS + 1)]:
        stale.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return logs / f"console-{stamp}-{os.getpid()}-{next(_log_counter)}.log"


def _parse_address(addr: Address | str) -> Address:
    if isinstance(addr, str):
        from fcsoft.config import parse_listen

        return parse_listen(addr)
    host, port = addr
    return str(host), int(port)


@dataclass
class _Plan:
    """open_guest's arguments, checked: what to build and boot."""

    nics: list[qm.FcoeNic]
    vports: list[tuple[WWN, WWN]]
    modules: tuple[str, ...]
    memory_mib: int = 512
    lio: lio_.LioSpec | None = None


def _addresses(fcoe: Address | str | Sequence[Address | str] | None) -> list[Address]:
    """One (host, port) per FCoE NIC."""
    if fcoe is None:
        return []
    if isinstance(fcoe, str):
        return [_parse_address(fcoe)]
    if isinstance(fcoe, tuple) and len(fcoe) == 2 and isinstance(fcoe[1], int):
        return [_parse_address(fcoe)]
    return [_parse_address(a) for a in cast(Sequence[Address | str], fcoe)]


def _plan(fcoe: Address | str | Sequence[Address | str] | None,
          mac: str | Sequence[str] | None, wwpn: str | None,
          vports: Sequence[str | tuple[WWN, WWN]], modules: Sequence[str] | None,
          mtu: int, memory_mib: int | None = None, lio: lio_.LioSpec | None = None) -> _Plan:
    """Check and normalize the arguments (ValueError with a one-line reason)."""
    addrs = _addresses(fcoe)
    if wwpn is not None:
        if mac is not None:
            raise ValueError("give the WWPN or the MAC, not both (the WWPN is 20:00:MAC)")
        mac = fc.mac_from_wwpn(wwpn)
    if mac is None:
        macs = fc.default_macs(len(addrs), _macs_in_use,
                               fc.TARGET_MAC if lio is not None else fc.DEFAULT_MAC)
    elif isinstance(mac, str):
        first = fc.parse_mac(mac)
        base = int(first.replace(":", ""), 16)
        macs = [first] + [fc.parse_mac(f"{base + i:012x}") for i in range(1, len(addrs))]
    else:
        macs = [fc.parse_mac(m) for m in mac]
        if len(macs) != len(addrs):
            raise ValueError(f"{len(macs)} MACs for {len(addrs)} FCoE ports")
    host_mtu = mtu if mtu > 1500 else None
    nics = [qm.FcoeNic(h, p, m, host_mtu) for (h, p), m in zip(addrs, macs, strict=True)]
    vps = [fc.parse_vport(v) if isinstance(v, str) else v for v in vports]
    if vps and not nics:
        raise ValueError("vports need an FCoE port (fcoe=HOST:PORT)")
    if modules is None:
        modules = img.FCOE_MODULES if nics else ()
    memory = 512 if memory_mib is None else memory_mib
    if lio is not None:
        if not nics:
            raise ValueError("an LIO target needs an FCoE port (fcoe=HOST:PORT)")
        # the target modules first: libfc registers the FCP target feature only when
        # tcm_fc is loaded before the local port is created
        modules = tuple(lio_.TARGET_MODULES) + tuple(
            m for m in modules if m not in lio_.TARGET_MODULES)
        need = lio.min_memory_mib()
        if memory_mib is None:
            memory = max(memory, need)
        elif memory_mib < need:
            raise ValueError(f"{memory_mib} MiB of guest memory is too little for the LIO "
                             f"target's backstores: give at least {need} MiB")
    return _Plan(nics, vps, tuple(modules), memory, lio)


@asynccontextmanager
async def open_guest(
    fcoe: Address | str | Sequence[Address | str] | None = None,
    *,
    mac: str | Sequence[str] | None = None,
    wwpn: str | None = None,
    vports: Sequence[str | tuple[WWN, WWN]] = (),
    modules: Sequence[str] | None = None,
    image: img.ImageSpec | None = None,
    kernel: str | Path | None = None,
    kernel_modules: str | Path | None = None,
    kvm: bool = False,
    memory_mib: int | None = None,
    mtu: int = DEFAULT_MTU,
    lio: lio_.LioSpec | None = None,
    boot_timeout: float = BOOT_TIMEOUT,
    login_timeout: float = LOGIN_TIMEOUT,
    wait_online: bool = True,
    settle: float | None = SETTLE_QUIET,
    console_log: str | Path | None = None,
    kernel_args: Sequence[str] = (),
    qemu_args: Sequence[str] = (),
) -> AsyncIterator[Guest]:
    """Boot a guest and yield it as a `Guest`; QEMU is killed when the block ends.

    - `fcoe`: the FCF's (host, port) or "HOST:PORT" (a list of them: one NIC each), or None
      for a guest without FCoE.
    - `mac` or `wwpn` (20:00:MAC) choose the ENode's MAC (default: 52:54:00:fc:00:01, or
      the next one up that no other guest of this process uses; 52:54:00:fc:10:01 and up
      for an LIO target; further NICs count up from the first MAC); `vports`: NPIV WWPNs
      ("WWPN" or "WWPN,WWNN"), created once the ENode is Online.
    - `modules` loaded at boot (default: the FCoE initiator's when there is an FCoE port);
      `image` says which modules and programs the initramfs holds; `kernel` and
      `kernel_modules` replace Debian's kernel with a bzImage and its lib/modules/VERSION.
    - `wait_online=False` returns once FCoE has been started, without waiting for the
      fabric login; `settle` is the quiet time that means the SCSI scan is over (None: no
      wait).
    - `lio`: make the guest an FC target: LIO over tcm_fc serving the LUNs and ACLs of the
      `LioSpec` on every FCoE port (fcsoft.guest.lio); configured before FCoE starts, so
      the ports log in as FCP targets. `Guest.target_ports` names them.
    - `memory_mib`: guest memory (default 512 MiB, more when an LIO target's backstores
      need it).
    - `mtu`: the FCoE NICs' MTU; above 1500 it is advertised with virtio-net's host_mtu.
      The default, 2500, lets libfcoe use full-size FC frames (2112-byte payload); at 1500
      the FC payload is at most 1452 bytes.
    - `kernel_args` are added to the kernel command line, `qemu_args` to QEMU's.

    Raises ValueError for bad arguments, MissingTool, BootError, GuestError.
    """
    plan = _plan(fcoe, mac, wwpn, vports, modules, mtu, memory_mib, lio)
    qm.find_qemu()  # before a long image build: a missing QEMU is reported at once
    t0 = time.monotonic()
    spec = image or img.ImageSpec()
    missing = [m for m in plan.modules if img.normalize_module(m) not in
               {img.normalize_module(x) for x in spec.modules}]
    if missing:
        spec = dataclasses.replace(spec, modules=spec.modules + tuple(missing))
    files = await trio.to_thread.run_sync(
        img.build, spec, Path(kernel) if kernel else None,
        Path(kernel_modules) if kernel_modules else None)
    t_image = time.monotonic() - t0
    log = Path(console_log) if console_log else _new_log_path()
    keep_log = console_log is not None
    try:
        log.write_bytes(b"")
    except OSError as exc:
        raise GuestError(f"cannot write the console log {log}: {exc.strerror}") from None
    _remove_orphaned_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    ok = False
    macs = {n.mac for n in plan.nics} - _macs_in_use
    _macs_in_use.update(macs)
    try:
        async with _booted(plan, files, log, workdir, kvm, plan.memory_mib, boot_timeout,
                           (*KERNEL_ARGS, *kernel_args), qemu_args) as guest:
            guest.timings["image"] = t_image
            await _bring_up(guest, plan, mtu, login_timeout, wait_online, settle)
            yield guest
        ok = True
    finally:
        _macs_in_use.difference_update(macs)
        shutil.rmtree(workdir, ignore_errors=True)
        if ok and not keep_log:
            log.unlink(missing_ok=True)


async def _listen_unix(path: Path) -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen(1)
    return sock


@asynccontextmanager
async def _booted(plan: _Plan, files: img.BootFiles, log: Path, workdir: Path, kvm: bool,
                  memory_mib: int, boot_timeout: float, kernel_args: Sequence[str],
                  qemu_args: Sequence[str]) -> AsyncIterator[Guest]:
    """Start QEMU and yield the Guest once its agent is READY; kill QEMU at the end."""
    agent_sock = await _listen_unix(workdir / "agent.sock")
    control_sock = await _listen_unix(workdir / "control.sock")
    qmp_sock = await _listen_unix(workdir / "qmp.sock")
    config = qm.QemuConfig(kernel=files.kernel, initrd=files.initrd, console_log=log,
                           agent_socket=workdir / "agent.sock",
                           control_socket=workdir / "control.sock",
                           qmp_socket=workdir / "qmp.sock", nics=plan.nics,
                           memory_mib=memory_mib, kvm=kvm, kernel_args=kernel_args,
                           extra_args=list(qemu_args))
    listeners = (agent_sock, control_sock, qmp_sock)
    try:
        t0 = time.monotonic()
        proc = qm.spawn(config, workdir / "qemu.log")
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    streams: list[trio.SocketStream | Qmp] = []
    guest: Guest | None = None
    try:
        ready: Ready | None = None

        async def connect() -> None:
            nonlocal ready, guest
            qmp_conn, _ = await qmp_sock.accept()
            qmp = Qmp(trio.SocketStream(qmp_conn))
            streams.append(qmp)
            agent_conn, _ = await agent_sock.accept()
            agent = trio.SocketStream(agent_conn)
            streams.append(agent)
            control_conn, _ = await control_sock.accept()
            control = trio.SocketStream(control_conn)
            streams.append(control)
            await qmp.handshake()
            await _check_fcf_links(qmp, plan.nics)
            guest = Guest(agent, control, qmp, proc, log, "", [n.mac for n in plan.nics])
            event = await guest._event()
            if not isinstance(event, Ready):
                raise BootError(f"the guest agent did not start with READY (console log: "
                                f"{log})")
            ready = event

        scope = trio.CancelScope(deadline=trio.current_time() + boot_timeout)
        failure: GuestError | None = None

        async def watch() -> None:
            await proc.wait()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            with scope:
                try:
                    await connect()
                except GuestError as exc:
                    failure = exc
            nursery.cancel_scope.cancel()
        if ready is None or guest is None:
            if proc.returncode is not None:
                raise BootError(describe_exit(proc, log))
            if failure is not None:
                raise failure
            raise BootError(f"the guest did not boot within {boot_timeout:g} s (console log: "
                            f"{log})")
        guest.kernel = ready.kernel
        guest.timings["boot"] = time.monotonic() - t0
        guest.qemu_config = config
        guest.workdir = workdir
        yield guest
    finally:
        with trio.CancelScope(shield=True):
            await proc.kill()
            for s in streams:
                await s.aclose()
            for sock in listeners:
                sock.close()
            if guest is not None:
                for cleanup in reversed(guest._cleanups):  # QEMUs of migrations
                    await cleanup()


async def _check_fcf_links(qmp: Qmp, nics: Sequence[qm.FcoeNic],
                           limit: float = 10.0) -> None:
    """Wait until QEMU has connected every FCoE NIC's stream to its FCF; BootError naming
    the FCF when a connection failed. (QEMU 7.2 starts the guest anyway and only reports
    "connection error" in `info network`.)"""
    deadline = trio.current_time() + limit
    while True:
        info = await qmp.execute("human-monitor-command", **{"command-line": "info network"})
        pending = []
        for i, nic in enumerate(nics):
            line = next((ln for ln in str(info).splitlines() if f"fcoe{i}:" in ln), "")
            if "connection error" in line:
                raise BootError(f"cannot connect to the FCF at {nic.host}:{nic.port} "
                                "(nothing listening, or unreachable)")
            if "tcp:" not in line:
                pending.append(nic)
        if not pending:
            return
        if trio.current_time() > deadline:
            nic = pending[0]
            raise BootError(f"no connection to the FCF at {nic.host}:{nic.port} after "
                            f"{limit:g} s")
        await trio.sleep(0.05)


async def _bring_up(guest: Guest, plan: _Plan, mtu: int, login_timeout: float,
                    wait_online: bool, settle: float | None) -> None:
    """Load the modules, start FCoE, wait for the login and the scan, create vports."""
    t = time.monotonic()
    if plan.lio is not None:
        await guest.run(lio_.PREPARE_SCRIPT, check=True)
    if plan.modules:
        await guest.run(fc.load_modules_script(plan.modules), check=True)
    if not plan.nics:
        return
    if plan.lio is not None:
        ports = [fc.wwpn_for_mac(n.mac) for n in plan.nics]
        res = await guest.run(lio_.configure_script(plan.lio, ports))
        if res.status != 0:
            last = [ln for ln in res.errors.splitlines() if ln.strip()]
            raise GuestError("configuring the LIO target failed"
                             + (f": {last[-1].strip()}" if last else "")
                             + f" (console log: {guest.console_log})")
        guest.lio = plan.lio
        guest.target_ports = ports
        guest.timings["lio"] = time.monotonic() - t
    await guest.run(fc.fcoe_up_script([n.mac for n in plan.nics], mtu if mtu != 1500 else None),
                    check=True)
    guest.timings["fcoe_up"] = time.monotonic() - t
    if not wait_online:
        return
    t = time.monotonic()
    await guest.wait_online(login_timeout)
    guest.timings["online"] = time.monotonic() - t
    if plan.vports:
        for wwpn, wwnn in plan.vports:
            await guest.create_vport(wwpn, wwnn)
        await guest.wait_online(login_timeout)
    if settle is not None:
        t = time.monotonic()
        await guest.settle(settle)
        guest.timings["settle"] = time.monotonic() - t


@asynccontextmanager
async def open_lio_target(
    fcoe: Address | str | Sequence[Address | str],
    *,
    luns: Sequence[lio_.LioLun | str] = ("0:64MiB",),
    acls: Sequence[lio_.LioAcl | WWN | str] = (),
    ports: int | None = None,
    **options: Any,
) -> AsyncIterator[Guest]:
    """Boot a guest that is a Linux FC target (LIO over tcm_fc) and yield it once every
    target port is Online on the fabric; `Guest.target_ports` are their WWPNs.

    - `luns`: `LioLun`s or "N:SIZE[:file]" strings (memory backstores unless ":file");
    - `acls`: the initiators allowed in: WWPNs (every LUN), "WWPN=N,N..." strings or
      `LioAcl`s;
    - `ports`: how many target ports (FCoE NICs) on the FCF at `fcoe` (default: one per
      address given);
    - anything else goes to `open_guest` (mac, wwpn, console_log, memory_mib ...).
    """
    spec = lio_.LioSpec(
        tuple(lio_.parse_lun(x) if isinstance(x, str) else x for x in luns),
        tuple(_acl(x) for x in acls))
    addresses = _addresses(fcoe)
    if ports is not None:
        if ports < 1 or len(addresses) != 1:
            raise ValueError("ports= needs one FCF address and a count of at least 1")
        addresses = addresses * ports
    async with open_guest(addresses, lio=spec, **options) as guest:
        yield guest


def _acl(item: lio_.LioAcl | WWN | str) -> lio_.LioAcl:
    if isinstance(item, lio_.LioAcl):
        return item
    if isinstance(item, str):
        return lio_.parse_acl(item)
    return lio_.LioAcl(item)

"""Live migration of a running guest to a new QEMU on the same machine (`Guest.migrate`).

    async with open_guest(fcoe=fcf) as g:
        result = await g.migrate()          # the guest now runs in another QEMU process
        print(result.summary())             # QEMU's downtime, total time, RAM sent

Theory of operation. The destination is a second QEMU started with the source's command
line (fcsoft.guest.qemu.QemuConfig) and `-incoming unix:PATH`, with sockets of its own for
the agent, the control port and QMP, and the console log appended to the same file. Its
FCoE NICs open their own `-netdev stream` connections to the FCFs: new Ethernet segments,
with the same MAC addresses as the source's, as a host's NIC would be plugged into another
switch port. Once its monitor answers and its links are connected, the source's monitor
gets `migrate-set-parameters` (the bandwidth limit raised, both ends being on one machine)
and `migrate`; `query-migrate` is polled until the migration completes (or fails: the
destination is killed and the source runs on, as QEMU leaves it). When the destination
runs, the `Guest` switches over: commands go to the destination's agent, its monitor
becomes `Guest.qmp`, its process `Guest.process`, and the source is killed.

The agent's byte stream is spliced, never lost or doubled: what the guest wrote before the
source stopped went to the source's agent socket, the rest (including what was still queued
in the guest's virtqueue, migrated with the device state) goes to the destination's. The
host reads the source's socket to its end (the source is killed once the migration
completes) and then goes on with the destination's, so a command running across the
migration returns its whole output. No new request is sent while a migration is under way:
bytes still in the source's socket when it stops would be lost.

After the switch-over the destination QEMU announces the NIC's MAC with RARP frames (QEMU's
announce-self); an FCF that learns MAC addresses, as fcsoft's does, then sends to the ENode
on the destination's connection. Frames it sent to the source during the downtime are
lost, as on a real network: Linux's SCSI error handling recovers those commands (abort and
retry) after the command timeout.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import trio

from . import qemu as qm
from .errors import GuestError
from .qmp import Qmp, QmpError

if TYPE_CHECKING:
    from .session import Guest

# QEMU's default bandwidth limit is 32 MiB/s, meant for a network between hosts; source and
# destination here are on one machine, so the lab lifts it
LOCAL_BANDWIDTH = 4 << 30  # bytes per second
_attempts = itertools.count(1)
POLL = 0.05  # seconds between query-migrate polls
DESTINATION_TIMEOUT = 30.0  # for the destination's monitor, agent and FCF links


class MigrationError(GuestError):
    """The migration failed or did not finish in time; the guest runs on in the source
    (unless the message says otherwise)."""


@dataclass(frozen=True)
class MigrationResult:
    """One migration's figures: QEMU's own (from `query-migrate` on the source) and the
    lab's, measured with the host's clock."""

    number: int  # 1 for a guest's first migration
    status: str  # "completed"
    total_ms: int  # QEMU: from `migrate` to completion
    downtime_ms: int  # QEMU: how long the guest was stopped (source stop -> destination run)
    setup_ms: int
    ram_transferred: int  # bytes
    ram_total: int  # bytes of guest RAM
    dirty_passes: int  # RAM dirty-sync passes
    destination_ready_s: float  # the destination QEMU's start to its monitor and links up
    migrate_s: float  # `migrate` to `completed`, as the host saw it
    resume_s: float  # `completed` to the destination `running`
    wall_s: float  # the whole Guest.migrate call
    source_pid: int
    destination_pid: int
    raw: dict[str, Any]  # the last query-migrate answer

    def summary(self) -> str:
        """One line for people."""
        return (f"migration {self.number}: downtime {self.downtime_ms} ms, total "
                f"{self.total_ms} ms (setup {self.setup_ms} ms), "
                f"{self.ram_transferred / (1 << 20):.1f} MiB of "
                f"{self.ram_total / (1 << 20):.0f} MiB RAM sent in {self.dirty_passes} "
                f"passes; destination ready in {self.destination_ready_s:.2f} s, "
                f"switch-over {self.resume_s * 1000:.0f} ms, {self.wall_s:.2f} s in all")


async def _accept(listener: trio.socket.SocketType, proc: qm.QemuProcess) -> trio.SocketStream:
    """The connection QEMU makes to `listener`; MigrationError should QEMU exit first."""
    while True:
        with trio.move_on_after(0.1):
            conn, _ = await listener.accept()
            return trio.SocketStream(conn)
        if proc.returncode is not None:
            raise MigrationError("the destination QEMU exited at start")


async def _poll_completion(qmp: Qmp, timeout: float) -> dict[str, Any]:
    """Poll `query-migrate` until the migration ends; its last answer."""
    deadline = trio.current_time() + timeout
    while True:
        info: dict[str, Any] = await qmp.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return info
        if status in ("failed", "cancelled"):
            why = info.get("error-desc", status)
            raise MigrationError(f"the migration {status}: {why}; the guest runs on in the "
                                 "source QEMU")
        if trio.current_time() > deadline:
            try:
                await qmp.execute("migrate_cancel")
            except QmpError:
                pass
            raise MigrationError(f"the migration did not complete within {timeout:g} s "
                                 f"(status {status}); cancelled, the guest runs on in the "
                                 "source QEMU")
        await trio.sleep(POLL)


async def _wait_running(qmp: Qmp, timeout: float) -> None:
    deadline = trio.current_time() + timeout
    while True:
        status = (await qmp.execute("query-status")).get("status")
        if status == "running":
            return
        if trio.current_time() > deadline:
            raise MigrationError(f"the destination QEMU is {status!r}, not running, "
                                 f"{timeout:g} s after the migration completed")
        await trio.sleep(0.01)


async def migrate(guest: Guest, *, max_bandwidth: int | None = LOCAL_BANDWIDTH,
                  downtime_limit_ms: int | None = None,
                  timeout: float = 300.0) -> MigrationResult:
    """Migrate `guest` to a new QEMU process; see the module docstring and Guest.migrate."""
    if guest.qemu_config is None or guest.workdir is None:
        raise GuestError("this guest was not started by open_guest: it cannot be migrated")
    # one at a time, and no request may be cut in two by the switch-over
    async with guest._send_lock:
        return await _migrate(guest, max_bandwidth, downtime_limit_ms, timeout)


async def _migrate(guest: Guest, max_bandwidth: int | None, downtime_limit_ms: int | None,
                   timeout: float) -> MigrationResult:
    from .session import _check_fcf_links, _listen_unix, describe_exit

    config, workdir = guest.qemu_config, guest.workdir
    assert config is not None and workdir is not None
    if guest._broken is not None:
        raise GuestError(guest._broken)
    t_start = time.monotonic()
    n = next(_attempts)  # names this attempt's sockets and log (a failed one leaves them)
    dst_cfg = replace(config, agent_socket=workdir / f"agent-m{n}.sock",
                      control_socket=workdir / f"control-m{n}.sock",
                      qmp_socket=workdir / f"qmp-m{n}.sock",
                      incoming=f"unix:{workdir / f'migrate-m{n}.sock'}",
                      console_append=True)
    listeners = [await _listen_unix(p) for p in
                 (dst_cfg.qmp_socket, dst_cfg.agent_socket, dst_cfg.control_socket)]
    owned: list[Any] = []
    proc: qm.QemuProcess | None = None
    switched = False
    try:
        proc = qm.spawn(dst_cfg, workdir / f"qemu-m{n}.log")
        try:
            with trio.fail_after(DESTINATION_TIMEOUT):
                qmp = Qmp(await _accept(listeners[0], proc))
                owned.append(qmp)
                agent = await _accept(listeners[1], proc)
                owned.append(agent)
                control = await _accept(listeners[2], proc)
                owned.append(control)
                await qmp.handshake()
                await _check_fcf_links(qmp, config.nics)
                status = (await qmp.execute("query-status")).get("status")
                if status != "inmigrate":
                    raise MigrationError(f"the destination QEMU is {status!r}, not "
                                         "waiting for a migration")
        except trio.TooSlowError:
            raise MigrationError(
                "the destination QEMU did not come up within "
                f"{DESTINATION_TIMEOUT:g} s" + (
                    f": {describe_exit(proc, guest.console_log)}"
                    if proc.returncode is not None else "")) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, QmpError,
                MigrationError) as exc:
            with trio.move_on_after(2):
                await proc.wait()
            if proc.returncode is None:
                raise MigrationError(f"the destination QEMU failed: {exc}") from None
            raise MigrationError("the destination QEMU failed: "
                                 f"{describe_exit(proc, guest.console_log)}") from None
        t_ready = time.monotonic()
        params: dict[str, Any] = {}
        if max_bandwidth is not None:
            params["max-bandwidth"] = int(max_bandwidth)
        if downtime_limit_ms is not None:
            params["downtime-limit"] = int(downtime_limit_ms)
        if params:
            await guest.qmp.execute("migrate-set-parameters", **params)
        await guest.qmp.execute("migrate", uri=dst_cfg.incoming)
        info = await _poll_completion(guest.qmp, timeout)
        t_done = time.monotonic()
        # from here on the guest lives in the destination (the source will not run again)
        source, source_qmp, source_control = guest.process, guest.qmp, guest._control
        guest._agent_next.append(agent)
        guest._agent_out = agent
        guest._control = control
        guest.qmp = qmp
        guest.process = proc
        guest._cleanups.append(proc.kill)
        for s in (qmp, agent, control):
            guest._cleanups.append(s.aclose)
        switched = True
        await _wait_running(qmp, 30.0)
        t_running = time.monotonic()
        # the source's end of the agent stream ends when it dies: the reader then goes
        # on with the destination's
        await source.kill()
        for s in (source_qmp, source_control):
            with trio.CancelScope(shield=True):
                await s.aclose()
    except BaseException as exc:
        if proc is not None and not switched:
            with trio.CancelScope(shield=True):
                await proc.kill()
                for s in owned:
                    await s.aclose()
        elif switched and not isinstance(exc, trio.Cancelled):
            guest._broken = (f"the guest was lost after its migration: {exc} "
                             f"(console log: {guest.console_log})")
        raise
    finally:
        for sock in listeners:
            sock.close()
    ram = info.get("ram", {})
    result = MigrationResult(
        number=len(guest.migrations) + 1, status=str(info.get("status")),
        total_ms=int(info.get("total-time", 0)),
        downtime_ms=int(info.get("downtime", 0)), setup_ms=int(info.get("setup-time", 0)),
        ram_transferred=int(ram.get("transferred", 0)), ram_total=int(ram.get("total", 0)),
        dirty_passes=int(ram.get("dirty-sync-count", 0)),
        destination_ready_s=t_ready - t_start, migrate_s=t_done - t_ready,
        resume_s=t_running - t_done, wall_s=time.monotonic() - t_start,
        source_pid=source.pid, destination_pid=proc.pid, raw=info)
    guest.migrations.append(result)
    return result


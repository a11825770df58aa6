"""The trio shell around an array: its SCSI front, one TargetPort per configured port, and
a link for each port to the fabric: attached by function call to a fabric in the same
process (`fcsoft serve`, a LocalLink), or over TCP (`fcsoft array --fabric`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from fcsoft.logs import get_logger
from fcsoft.scsi.types import Deferral, Nexus
from fcsoft.target import TargetPort
from fcsoft.wire.encap import Frame, FrameRun, each_frame
from fcsoft.wire.fcp import ScsiStatus

from .fabric_server import FabricServer, LocalLink
from .link import Link, flusher
from .timers import TimerLoop

_FCP = 0x08  # FC-FS TYPE of FCP frames
RECONNECT_DELAY = 1.0  # seconds between attempts to reach a remote fabric
IO_THREADS = 16  # worker threads an array's file I/O may use at once


class PortDriver:
    """Runs one TargetPort over one link at a time: a TCP Link (it is then the Link's
    LinkHandler) or a LocalLink. Commands the SCSI layer wants run later (file I/O in a
    worker thread, an injected delay) run in tasks of the port's nursery; `limiter` bounds
    the threads (shared by the array's ports)."""

    def __init__(self, port: TargetPort, limiter: trio.CapacityLimiter | None = None) -> None:
        self.port = port
        self.link: Link | LocalLink | None = None
        self.timers = TimerLoop(port)
        self.limiter = limiter
        self._nursery: trio.Nursery | None = None
        #: set while the port may have a link; cleared by `disable` (fcsoft ctl port disable)
        self.enabled = trio.Event()
        self.enabled.set()

    @property
    def disabled(self) -> bool:
        return not self.enabled.is_set()

    def disable(self) -> bool:
        """Take the port's link down and keep it down (the fabric logs the port out and
        sends RSCNs); False when it already was disabled."""
        if self.disabled:
            return False
        self.enabled = trio.Event()
        if self.link is not None:
            self.link.close("port disabled")
        return True

    def enable(self) -> bool:
        """Let the port bring its link up again (FLOGI and registrations follow); False
        when it was not disabled."""
        if not self.disabled:
            return False
        self.enabled.set()
        return True

    def _deliver(self, frame: Frame) -> None:
        if frame.header.type == _FCP:  # the data path: no clock read, no timer to move
            self.port.frame_received(frame, 0.0)
            return
        self.port.frame_received(frame, trio.current_time())
        self.timers.poke()

    def _deliver_run(self, frames: list[Frame | FrameRun]) -> None:
        """Routed frames of one S_ID (a write's data frames, mostly: runs of them)."""
        if all(f.header.type == _FCP for f in frames):
            self.port.fcp_frames(frames)
            return
        for frame in each_frame(frames):
            self._deliver(frame)

    # -- deferred commands (fcsoft.target.fcp) -----------------------------------------
    def _defer(self, run: Callable[[], Any], done: Callable[[Any], None],
               deferral: Deferral) -> None:
        if self._nursery is None:
            done(run())
            return
        self._nursery.start_soon(self._deferred, run, done, deferral)

    async def _deferred(self, run: Callable[[], Any], done: Callable[[Any], None],
                        deferral: Deferral) -> None:
        if deferral.thread:
            result = await trio.to_thread.run_sync(run, limiter=self.limiter)
        else:
            result = run()
        if deferral.delay > 0:  # an injected LU latency holds the completion back
            await trio.sleep(deferral.delay)
        f = flusher()
        f.begin()  # the answer goes out with whatever else this step queues
        try:
            done(result)
        finally:
            f.end()
        self.timers.poke()

    def _running(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        if self.limiter is None:
            self.limiter = trio.CapacityLimiter(IO_THREADS)
        self.port.defer = self._defer

    def _stopped(self) -> None:
        self._nursery = None
        self.port.defer = None

    async def run_local(self, server: FabricServer, peer: str, *,
                        task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Attach the port to `server`, a fabric in this process, and drive it until its
        link is closed (a port disabled, a test dropping it) or the task is cancelled."""
        closed = trio.Event()
        link = server.attach_local(peer, self._deliver, lambda _reason: closed.set(),
                                   self._deliver_run)
        if link is None:
            task_status.started(None)
            return
        self.link = link
        self.port.transmit = link.transmit
        try:
            async with trio.open_nursery() as nursery:
                self._running(nursery)
                nursery.start_soon(self.timers.run)
                self.port.link_up(trio.current_time())
                self.timers.poke()
                task_status.started(link)
                await closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._stopped()
            link.close("cancelled")
            self.port.link_down(trio.current_time())
            self.port.transmit = lambda _d: False

    def frame_received(self, link: Link, frame: Frame) -> None:
        self.port.frame_received(frame, trio.current_time())
        self.timers.poke()

    #: over TCP too, a sequence's data frames that came in one read arrive as one FrameRun
    takes_runs = True

    def frames_received(self, link: Link, frames: list[Frame | FrameRun]) -> None:
        """The frames of one read from the fabric over TCP, together: FCP as one batch
        (a write's data frames, runs of them), anything else frame by frame."""
        self._deliver_run(frames)

    def link_closed(self, link: Link, reason: str) -> None:
        self.port.link_down(trio.current_time())
        self.port.transmit = lambda _d: False

    async def run(self, stream: trio.abc.Stream, peer: str) -> None:
        """Drive the port over `stream` until the link closes."""
        link = Link(stream, self, peer=peer, name=f"port-{self.port.wwpn}",
                    r_a_tov=self.port.fabric.r_a_tov)
        self.link = link
        self.port.transmit = link.send
        try:
            async with trio.open_nursery() as nursery:
                self._running(nursery)
                nursery.start_soon(self.timers.run)
                self.port.link_up(trio.current_time())
                self.timers.poke()
                await link.run()
                nursery.cancel_scope.cancel()
        finally:
            self._stopped()


class ArrayRuntime:
    """One configured array: SCSI front shared by its ports, and the ports."""

    def __init__(self, conf: Any, *, fault: str | None = None, e_d_tov: float = 2.0,
                 r_a_tov: float = 10.0, max_burst: int = 256 * 1024,
                 scsi: Any = None) -> None:
        self.conf = conf
        self.name = conf.name
        self.log = get_logger(component="array", array=conf.name)
        if scsi is None:
            from fcsoft.scsi.array import ScsiArray

            scsi = ScsiArray(conf, abort_tasks=self.abort_tasks, fault=fault)
        self.scsi = scsi
        self.ports = [
            TargetPort(wwpn, conf.node_wwn, self.scsi, relative_port=i + 1,
                       symbolic_name=f"fcsoft {conf.name} port {i + 1}",
                       symbolic_node_name=f"fcsoft {conf.name} {conf.vendor} {conf.product}",
                       e_d_tov=e_d_tov,
                       r_a_tov=r_a_tov, max_burst=max_burst, name=f"{conf.name}/{i + 1}")
            for i, wwpn in enumerate(conf.ports)]
        for p in self.ports:
            p.abort_everywhere = self.abort_everywhere  # type: ignore[attr-defined]
        self.drivers = [PortDriver(p) for p in self.ports]
        self._limiter: trio.CapacityLimiter | None = None

    def _shared_limiter(self) -> trio.CapacityLimiter:
        """One bound on worker threads for all of the array's ports (made in trio)."""
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(IO_THREADS)
            for d in self.drivers:
                d.limiter = self._limiter
        return self._limiter

    def abort_everywhere(self, pred: Callable[[Any], bool], issuer: Any = None) -> int:
        return sum(p.fcp.abort_matching(pred, issuer=issuer) for p in self.ports)

    def abort_tasks(self, victims: set[Nexus], by: Nexus, luns: Any = None) -> set[Nexus]:
        """PREEMPT AND ABORT from the SCSI layer: the victims' outstanding commands complete
        with TASK ABORTED status, as the control mode page's TAS=1 promises (SAM-5 5.6).
        With TAS=1 no COMMANDS CLEARED BY ANOTHER INITIATOR unit attention follows, so the
        set of nexuses owed one is empty."""
        def pred(x: Any) -> bool:
            return x.session.nexus in victims and (luns is None or x.lun in luns)

        aborted = sum(p.fcp.abort_matching(pred, status=ScsiStatus.TASK_ABORTED)
                      for p in self.ports)
        if aborted:
            self.log.info("tasks aborted", count=aborted, initiator=by.initiator,
                          target=by.target, victims=sorted(str(v) for v in victims))
        return set()

    def close(self) -> None:
        self.scsi.close()

    async def run_in_process(self, server: FabricServer, nursery: trio.Nursery) -> None:
        """Attach every port to `server`, a fabric in this process, by function call. A
        port whose link goes down attaches again after RECONNECT_DELAY, unless it was
        disabled: then once it is enabled."""
        self._shared_limiter()
        for driver in self.drivers:
            await nursery.start(self._keep_in_process, driver, server)

    async def _keep_in_process(self, driver: PortDriver, server: FabricServer, *,
                               task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        peer = f"{self.name}/{driver.port.relative_port}"
        first = True
        while True:
            if not first:
                if driver.disabled:
                    await driver.enabled.wait()
                else:
                    await trio.sleep(RECONNECT_DELAY)
                    if driver.disabled:
                        continue
            if first:
                await driver.run_local(server, peer, task_status=task_status)
                first = False
            else:
                await driver.run_local(server, peer)

    def driver(self, wwpn: Any) -> PortDriver | None:
        """The driver of the port with this WWPN, if the array has it."""
        for d in self.drivers:
            if d.port.wwpn == wwpn:
                return d
        return None

    async def run_remote(self, host: str, port: int) -> None:
        """Connect every port to a fabric over TCP, reconnecting when a link drops."""
        async def keep(driver: PortDriver) -> None:
            while True:
                try:
                    stream = await trio.open_tcp_stream(host, port)
                except OSError as exc:
                    self.log.warning("cannot reach fabric", address=f"{host}:{port}",
                                     reason=str(exc), retry_in=RECONNECT_DELAY)
                else:
                    await driver.run(stream, f"{host}:{port}")
                await trio.sleep(RECONNECT_DELAY)

        self._shared_limiter()
        async with trio.open_nursery() as nursery:
            for d in self.drivers:
                nursery.start_soon(keep, d)
